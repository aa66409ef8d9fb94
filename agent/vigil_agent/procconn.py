"""The proc connector (CN_PROC): exit notifications, so the process table forgets the dead.

Since Linux 6.6 a listener can ask for one event type; the agent subscribes to EXIT only (older
kernels ignore the filter and send everything, which the parser skips).
"""

from __future__ import annotations

import contextlib
import socket
import struct

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_EXIT = 0x80000000
_HDR = struct.Struct("=IHHII")
_CN = struct.Struct("=IIIIHH")
_EV = struct.Struct("=IIQ")  # what, cpu, timestamp
_EXIT = struct.Struct("=iiIIii")  # pid, tgid, exit_code, exit_signal, parent pid, parent tgid
NLMSG_DONE = 3


def _control(op: int) -> bytes:
    data = struct.pack("=II", op, PROC_EVENT_EXIT)
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
