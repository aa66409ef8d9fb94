"""Build the agent artifact: build/agent/vigil-agent-<version>.tar.gz (+ .sha256).

    python agent/packaging/build.py [--out build/agent] [--wheels DIR]

The tarball holds the agent, the three modules of the core it imports (vigil/__init__, events,
wire), the systemd unit, the default configuration, install.sh and requirements.txt. With
--wheels, a directory of pre-downloaded wheels is bundled so instances install offline.
Deterministic: sorted entries, fixed mtimes and owners, so the same tree gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ["__init__.py", "events.py", "wire.py"]
REQUIREMENTS = "msgspec==0.22.0\ndnslib==0.9.26\nboto3==1.44.8\nisal==1.9.1\n"
MTIME = 1_700_000_000


def version() -> str:
    sys.path.insert(0, str(ROOT / "agent"))
    from vigil_agent import __version__

    return __version__


def files(wheels: Path | None) -> list[tuple[str, bytes, int]]:
    out: list[tuple[str, bytes, int]] = []
    for name in CORE:
        out.append((f"lib/vigil/{name}", (ROOT / "layers/core/vigil" / name).read_bytes(), 0o644))
    for p in sorted((ROOT / "agent/vigil_agent").glob("*.py")):
        out.append((f"lib/vigil_agent/{p.name}", p.read_bytes(), 0o644))
    bpf = ROOT / "agent/vigil_agent/vigil.bpf.o"  # CO-RE: built once, runs on any BTF kernel
    if not bpf.exists():
        raise SystemExit(f"{bpf} is missing: `make agent-bpf` builds it (make agent-package does)")
    out.append(("lib/vigil_agent/vigil.bpf.o", bpf.read_bytes(), 0o644))
    out.append(("src/vigil.bpf.c", (ROOT / "agent/bpf/vigil.bpf.c").read_bytes(), 0o644))
    fast = ROOT / "agent/vigil_agent/libvigilfast.so"  # the ring's fast path, the DNS reader: C, libc only
    if not fast.exists():
        raise SystemExit(f"{fast} is missing: `make agent-native` builds it (make agent-package does)")
    out.append(("lib/vigil_agent/libvigilfast.so", fast.read_bytes(), 0o755))
    for src in ("fastpath.c", "dnsfast.c", "put.h"):
        out.append((f"src/{src}", (ROOT / "agent/native" / src).read_bytes(), 0o644))
    pk = ROOT / "agent/packaging"
    out.append(("packaging/vigil-agent.service", (pk / "vigil-agent.service").read_bytes(), 0o644))
    out.append(("packaging/agent.toml", (pk / "agent.toml").read_bytes(), 0o644))
    out.append(("install.sh", (pk / "install.sh").read_bytes(), 0o755))
    out.append(("requirements.txt", REQUIREMENTS.encode(), 0o644))
    out.append(("VERSION", version().encode() + b"\n", 0o644))
    if wheels:
        for w in sorted(wheels.glob("*.whl")):
            out.append((f"wheels/{w.name}", w.read_bytes(), 0o644))
    return out


def build(out_dir: Path, wheels: Path | None = None) -> Path:
    ver = version()
    prefix = f"vigil-agent-{ver}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in files(wheels):
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{prefix}.tar.gz"
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=MTIME) as g:
        g.write(buf.getvalue())
    path.write_bytes(gz.getvalue())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (out_dir / f"{prefix}.tar.gz.sha256").write_text(f"{digest}  {path.name}\n")
    (out_dir / "vigil-agent-latest.tar.gz").write_bytes(path.read_bytes())
    return path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "build/agent"))
    ap.add_argument("--wheels", default=None)
    a = ap.parse_args()
    path = build(Path(a.out), Path(a.wheels) if a.wheels else None)
    print(f"{path} ({path.stat().st_size} bytes)")
    print((path.parent / f"{path.name}.sha256").read_text().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
