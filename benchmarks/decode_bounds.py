"""Memory of decoding hostile records (issue 13): each case in a fresh subprocess.

Prints, per case: the record's size, what decode_record made of it, the tracemalloc peak of the
decode and the process's max RSS growth (ru_maxrss after - before). docs/wire-format.md "Bounds"
quotes the numbers.

    python benchmarks/decode_bounds.py
"""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def bomb(inflated: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join(c.compress(chunk) for _ in range(inflated >> 20)) + c.flush()


def case(name: str) -> bytes:
    if name == "bomb_1gib":  # the issue's: ~1 MB of gzip inflating to 1 GiB of zeros
        return bomb(1 << 30)
    if name == "empty_objects_flood":  # the issue's: 66 KB of gzip'd `{}` lines (22.7 M lines)
        return gzip.compress(b"{}\n" * 22_700_000, 9)
    if name == "empty_objects_in_bounds":  # as many `{}` lines as the line bound lets through
        from vigil import bounds

        return gzip.compress(b"{}\n" * bounds.MAX_LINES, 9)
    if name == "busy_mix_8mib":  # a legitimate batch at the raw bound
        from workload import batches, generate

        out, size = [], 0
        for rec in batches(generate(20_000)):
            for line in rec.split(b"\n"):
                if line and size + len(line) + 1 <= 8 << 20:
                    out.append(line)
                    size += len(line) + 1
        return gzip.compress(b"\n".join(out) + b"\n", 6)
    raise SystemExit(f"unknown case {name}")


def child(name: str) -> None:
    from vigil import wire

    data = case(name)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    d = wire.decode_record(data)
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "case": name,
                "record_bytes": len(data),
                "events": len(d.events),
                "errors": len(d.errors),
                "bad_lines": d.bad_lines,
                "rejected_whole": d.rejected_whole,
                "reason": d.errors[0].reason[:100] if d.errors else "",
                "tracemalloc_peak_mb": round(peak / 2**20, 1),
                "max_rss_growth_mb": round((rss1 - rss0) / 1024, 1),
                "seconds": round(dt, 3),
            }
        )
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return
    for name in ("bomb_1gib", "empty_objects_flood", "empty_objects_in_bounds", "busy_mix_8mib"):
        subprocess.run([sys.executable, __file__, "--child", name], check=True)


if __name__ == "__main__":
    main()
