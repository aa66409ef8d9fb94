"""The proc connector (CN_PROC): exit notifications, so the process table forgets the dead, and
exec notifications, so the table reads a new program's fds 0-2 while it still runs.

The kernel sends an exec notification from inside execve, before the audit records of that exec
(kauditd delivers them later): a shell that exits within milliseconds (a reverse shell's one command,
`curl | sh` from a fast server) is gone by the time its audit records are read, but usually not
when its notification is. Since Linux 6.6 a listener can ask for some event types (a bit mask);
the agent subscribes to EXIT, and EXEC when it wants them (older kernels ignore the filter and
send everything, which the parsers skip).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000
_HDR = struct.Struct("=IHHII")
_CN = struct.Struct("=IIIIHH")
_EV = struct.Struct("=IIQ")  # what, cpu, timestamp
_EXIT = struct.Struct("=iiIIii")  # pid, tgid, exit_code, exit_signal, parent pid, parent tgid
_EXEC = struct.Struct("=ii")  # pid, tgid
NLMSG_DONE = 3


def _control(op: int, events: int = PROC_EVENT_EXIT) -> bytes:
    data = struct.pack("=II", op, events)
    cn = _CN.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(data), 0) + data
    return _HDR.pack(_HDR.size + len(cn), NLMSG_DONE, 0, 0, 0) + cn


def open_exits(rcvbuf: int = 4 << 20) -> socket.socket:
    s = socket.socket(
        socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK, NETLINK_CONNECTOR
    )
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)
    s.bind((0, CN_IDX_PROC))
    s.send(_control(PROC_CN_MCAST_LISTEN))
    return s


def open_execs(rcvbuf: int = 4 << 20) -> socket.socket:
    """A blocking socket of exec notifications only (the exec watcher's)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_CONNECTOR)
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)
    s.bind((0, CN_IDX_PROC))
    s.send(_control(PROC_CN_MCAST_LISTEN, PROC_EVENT_EXEC))
    s.settimeout(0.5)  # to see ``stop`` (the thread is a daemon too)
    return s


class ExecWatcher(threading.Thread):
    """Calls ``on_exec(tgid)`` for every exec the proc connector announces, from its own thread, as
    soon as the notification arrives: the agent's main loop reads its sockets in coalesced rounds
    (0.1-0.25 s apart), by which time a program that ran for a few milliseconds is gone. Errors in
    ``on_exec`` are counted, never raised (a gone process is the common case, not an error)."""

    def __init__(self, sock: socket.socket, on_exec: Callable[[int], None]) -> None:
        super().__init__(name="vigil-exec-watch", daemon=True)
        self.sock = sock
        self.on_exec = on_exec
        self.stopping = False
        self.seen = 0
        self.errors = 0

    def run(self) -> None:
        recv, on_exec = self.sock.recv, self.on_exec
        while not self.stopping:
            try:
                data = recv(4096)
            except TimeoutError:
                continue
            except OSError:  # ENOBUFS (notifications lost: those execs keep what /proc says), or closed
                if self.stopping:
                    return
                continue
            pid = parse_exec(data)
            if pid is None:
                continue
            self.seen += 1
            try:
                on_exec(pid)
            except Exception:
                self.errors += 1

    def stop(self) -> None:
        self.stopping = True
        self.join(timeout=2)
        self.sock.close()


def parse_exit(data: bytes) -> tuple[int, int] | None:
    """(tgid, exit code) for the exit of a whole process (thread exits are skipped)."""
    off = _HDR.size + _CN.size
    if len(data) < off + _EV.size + _EXIT.size:
        return None
    what, _cpu, _ts = _EV.unpack_from(data, off)
    if what != PROC_EVENT_EXIT:
        return None
    pid, tgid, code, _sig, _ppid, _ptgid = _EXIT.unpack_from(data, off + _EV.size)
    if pid != tgid:
        return None
    return tgid, code


def parse_exec(data: bytes) -> int | None:
    """The tgid of a process that just exec'd (an exec by a thread other than the leader counts:
    execve makes it the leader)."""
    off = _HDR.size + _CN.size
    if len(data) < off + _EV.size + _EXEC.size:
        return None
    what, _cpu, _ts = _EV.unpack_from(data, off)
    if what != PROC_EVENT_EXEC:
        return None
    _pid, tgid = _EXEC.unpack_from(data, off + _EV.size)
    return tgid if tgid > 0 else None
