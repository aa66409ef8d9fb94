"""Running ``vigil-agent --stdout`` as a subprocess and waiting for the events a test caused.

Events are kept as the agent wrote them (fields at their default omitted: tests check that), except
heartbeats, which are read the way every consumer reads them (docs/wire-format.md: absent means
default): decoded by the wire contract, with every field present, so a degraded agent's "no sensor
active" is an explicit ``sensors_active == []``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from vigil import wire

ROOT = Path(__file__).resolve().parents[2]


def heartbeat_as_read(line: bytes) -> dict[str, Any]:
    """A heartbeat line decoded by the wire contract, every field present (defaults applied)."""
    hb = wire.decode_line(line.rstrip(b"\r\n"))
    if not isinstance(hb, wire.Heartbeat):
        raise ValueError(f"not a heartbeat: {type(hb).__name__}")
    return {"kind": "heartbeat", **_every_field(hb)}


def _every_field(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return {f.encode_name: _every_field(getattr(value, f.name)) for f in msgspec.structs.fields(value)}
    if isinstance(value, dict):
        return {k: _every_field(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_every_field(v) for v in value]
    return value


def kernel_skip_reason() -> str | None:
    if sys.platform != "linux":
        return "agent tests need Linux"
    if os.geteuid() != 0:
        return "agent tests need root (audit netlink, AF_PACKET, pidfd_getfd)"
    return None


class RunningAgent:
    def __init__(self, proc: subprocess.Popen[bytes], key: str, workdir: Path) -> None:
        self.proc = proc
        self.key = key
        self.workdir = workdir
        self.mode = "ebpf"  # which sensor produces exec/connect/accept: "ebpf" or "audit"
        self.native = True  # eBPF records through the native fast path (else all in Python)
        self.events: list[dict] = []
        self.bad_lines: list[bytes] = []
        self.stderr: list[str] = []
        self.lock = threading.Lock()
        self._t_out = threading.Thread(target=self._read_out, daemon=True)
        self._t_err = threading.Thread(target=self._read_err, daemon=True)
        self._t_out.start()
        self._t_err.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                try:
                    ev = json.loads(line)
                    if ev.get("kind") == "heartbeat":
                        ev = heartbeat_as_read(line)
                except (ValueError, msgspec.ValidationError):  # a cut line (checked at teardown)
                    self.bad_lines.append(line[:200])
                    continue
                with self.lock:
                    self.events.append(ev)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def wait_for(self, pred: Callable[[dict], bool], timeout: float = 20.0, what: str = "event") -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            with self.lock:
                batch = self.events[seen:]
                seen = len(self.events)
            for ev in batch:
                if pred(ev):
                    return ev
            if self.proc.poll() is not None and seen == len(self.events):
                break
            time.sleep(0.05)
        tail = "".join(self.stderr[-20:])
        hbs = self.all(lambda e: e["kind"] == "heartbeat")
        health = (
            f"; last heartbeat: cpu {hbs[-1]['cpu_percent']}%, shedding {hbs[-1]['degraded']}, "
            f"counters {hbs[-1]['counters']}"
            if hbs
            else ""
        )
        raise AssertionError(
            f"no {what} from the agent (saw {len(self.events)} events{health}); agent stderr:\n{tail}"
        )

    def all(self, pred: Callable[[dict], bool]) -> list[dict]:
        with self.lock:
            return [e for e in self.events if pred(e)]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._t_out.join(timeout=5)
        return self.proc.returncode


def _identity_files(workdir: Path, instance_id: str) -> tuple[Path, Path]:
    """A signed identity from files (local.identity's test authority): the agent never asks the
    real IMDS (169.254.169.254) in tests, and its heartbeat then reports no identity problem."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from local.identity import test_authority
    from vigil import wire

    host = wire.Host(instance_id=instance_id, account_id="123456789012", region="us-east-1")
    return test_authority().agent_files(workdir / "identity", host)


def write_config(workdir: Path, key: str, extra: str = "") -> Path:
    cfg = workdir / "agent.toml"
    instance_id = f"i-0a9e0000000{key[-6:]}"
    doc, sig = _identity_files(workdir, instance_id)
    cfg.write_text(
        f"""
[identity]
document_file = "{doc}"
signature_file = "{sig}"

[agent]
instance_id = "{instance_id}"
account_id = "123456789012"
region = "us-east-1"
state_dir = "{workdir / "state"}"
heartbeat_s = 2.0
flush_s = 0.2
stretch_s = 0.2
audit_key = "{key}"

[watch]
paths = ["{workdir / "watched"}"]
unix_sockets = ["{workdir / "docker.sock"}"]

[limits]
cpu_percent = 90.0
rss_mb = 512
{extra}
"""
    )
    return cfg


def start_agent(workdir: Path, key: str, extra: str = "", wrapper: list[str] | None = None) -> RunningAgent:
    (workdir / "watched").mkdir(exist_ok=True)
    cfg = write_config(workdir, key, extra)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "layers/core"), str(ROOT / "agent"), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.Popen(
        [*(wrapper or []), sys.executable, "-m", "vigil_agent.main", "--stdout", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=str(workdir),
    )
    agent = RunningAgent(proc, key, workdir)
    agent.wait_for(lambda e: e["kind"] == "heartbeat", timeout=30, what="first heartbeat")
    return agent


def marker() -> str:
    return f"vigil-marker-{uuid.uuid4().hex[:12]}"
