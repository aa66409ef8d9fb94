"""Linux audit over netlink, in pure Python: status, enable, rules, and the multicast reader.

Rules are encoded as ``struct audit_rule_data`` (linux/audit.h) and sent with AUDIT_ADD_RULE;
the agent keeps the exact bytes it added and deletes exactly those (AUDIT_DEL_RULE matches a rule
by its full content), so rules of auditd or of an administrator are never touched.
Events are read from the multicast group AUDIT_NLGRP_READLOG, which coexists with auditd.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket
import struct
from dataclasses import dataclass, field

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1

# message types
AUDIT_GET = 1000
AUDIT_SET = 1001
AUDIT_LIST_RULES = 1013
AUDIT_ADD_RULE = 1011
AUDIT_DEL_RULE = 1012
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4

AUDIT_STATUS_ENABLED = 0x1
AUDIT_STATUS_BACKLOG_LIMIT = 0x10

# rule lists, actions
AUDIT_FILTER_EXIT = 0x04
AUDIT_FILTER_EXCLUDE = 0x05  # record types the kernel never creates (global: every reader)
AUDIT_ALWAYS = 2
AUDIT_BITMASK_SIZE = 64
AUDIT_MAX_FIELDS = 64

# fields
AUDIT_PID = 0
AUDIT_ARCH = 11
AUDIT_MSGTYPE = 12
AUDIT_EXIT = 103
AUDIT_SUCCESS = 104
AUDIT_WATCH = 105
AUDIT_PERM = 106
AUDIT_DIR = 107
AUDIT_EXE = 112
AUDIT_ARG0 = 200
AUDIT_ARG1 = 201
AUDIT_FILTERKEY = 210

# operators
OPS = {
    "=": 0x40000000,
    "!=": 0x30000000,
    "<": 0x10000000,
    ">": 0x20000000,
    "<=": 0x50000000,
    ">=": 0x60000000,
    "&": 0x08000000,
}
STRING_FIELDS = {AUDIT_WATCH, AUDIT_DIR, AUDIT_EXE, AUDIT_FILTERKEY}

AUDIT_PERM_EXEC, AUDIT_PERM_WRITE, AUDIT_PERM_READ, AUDIT_PERM_ATTR = 1, 2, 4, 8

ARCH_X86_64 = 0xC000003E
ARCH_I386 = 0x40000003
ARCH_AARCH64 = 0xC00000B7

_RULE_HDR = struct.Struct(
    f"=III{AUDIT_BITMASK_SIZE}I{AUDIT_MAX_FIELDS}I{AUDIT_MAX_FIELDS}I{AUDIT_MAX_FIELDS}II"
)
_NLMSGHDR = struct.Struct("=IHHII")
# struct audit_status: mask enabled failure pid rate_limit backlog_limit lost backlog
#                      feature_bitmap backlog_wait_time backlog_wait_time_actual
_STATUS = struct.Struct("=11I")


@dataclass(frozen=True)
class AuditStatus:
    enabled: int
    failure: int
    pid: int
    rate_limit: int
    backlog_limit: int
    lost: int
    backlog: int


@dataclass(frozen=True)
class Rule:
    """One exit-filter rule. ``fields`` are (field id, op, value); strings go to the buffer."""

    fields: tuple[tuple[int, str, int | str], ...]
    syscalls: tuple[int, ...] = ()  # empty: all syscalls (watch rules)
    label: str = ""  # what it is for (logs, docs)
    listnr: int = AUDIT_FILTER_EXIT

    def encode(self) -> bytes:
        mask = [0] * AUDIT_BITMASK_SIZE
        if self.syscalls:
            for nr in self.syscalls:
                mask[nr // 32] |= 1 << (nr % 32)
        else:
            mask = [0xFFFFFFFF] * AUDIT_BITMASK_SIZE
        fields = [0] * AUDIT_MAX_FIELDS
        values = [0] * AUDIT_MAX_FIELDS
        flags = [0] * AUDIT_MAX_FIELDS
        buf = b""
        for i, (fid, op, val) in enumerate(self.fields):
            fields[i] = fid
            flags[i] = OPS[op]
            if fid in STRING_FIELDS:
                raw = str(val).encode()
                values[i] = len(raw)
                buf += raw
            else:
                values[i] = int(val) & 0xFFFFFFFF
        hdr = _RULE_HDR.pack(
            self.listnr, AUDIT_ALWAYS, len(self.fields), *mask, *fields, *values, *flags, len(buf)
        )
        return hdr + buf


class AuditError(OSError):
    pass


@dataclass
class AuditControl:
    """The unicast control socket: status, enable, add/delete rules (needs CAP_AUDIT_CONTROL)."""

    sock: socket.socket = field(init=False)
    _seq: int = 0

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_AUDIT)
        self.sock.bind((0, 0))
        self.sock.settimeout(2.0)

    def close(self) -> None:
        self.sock.close()

    def _request(self, mtype: int, payload: bytes) -> list[tuple[int, bytes]]:
        self._seq += 1
        seq = self._seq
        msg = (
            _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), mtype, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + payload
        )
        self.sock.sendto(msg, (0, 0))
        replies: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, rtype, _flags, rseq, _pid = _NLMSGHDR.unpack_from(data, off)
                body = data[off + _NLMSGHDR.size : off + length]
                off += (length + 3) & ~3
                if rseq != seq:
                    continue
                if rtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", body)
                    if err:
                        raise AuditError(-err, f"audit netlink type {mtype}: {os.strerror(-err)}")
                    return replies  # the ACK ends the request
                if rtype == NLMSG_DONE:
                    return replies
                replies.append((rtype, body))
                if length == 0:
                    return replies

    def status(self) -> AuditStatus:
        replies = self._request(AUDIT_GET, b"")
        if not replies:  # the status reply can follow the ack on some kernels
            data = self.sock.recv(65536)
            replies = [(AUDIT_GET, data[_NLMSGHDR.size :])]
        body = replies[0][1].ljust(_STATUS.size, b"\0")
        _mask, enabled, failure, pid, rate, backlog_limit, lost, backlog, *_ = _STATUS.unpack_from(body)
        return AuditStatus(enabled, failure, pid, rate, backlog_limit, lost, backlog)

    def _set(self, mask: int, **vals: int) -> None:
        names = (
            "mask",
            "enabled",
            "failure",
            "pid",
            "rate_limit",
            "backlog_limit",
            "lost",
            "backlog",
            "feature_bitmap",
            "backlog_wait_time",
            "backlog_wait_time_actual",
        )
        data = {n: 0 for n in names}
        data.update(vals, mask=mask)
        self._request(AUDIT_SET, _STATUS.pack(*(data[n] for n in names)))

    def set_enabled(self, enabled: int) -> None:
        self._set(AUDIT_STATUS_ENABLED, enabled=enabled)

    def set_backlog_limit(self, limit: int) -> None:
        self._set(AUDIT_STATUS_BACKLOG_LIMIT, backlog_limit=limit)

    def add_rule(self, blob: bytes) -> None:
        self._request(AUDIT_ADD_RULE, blob)

    def del_rule(self, blob: bytes) -> None:
        self._request(AUDIT_DEL_RULE, blob)

    def list_rules(self) -> list[bytes]:
        """Raw audit_rule_data blobs of every rule in the kernel (used by tests and cleanup)."""
        self._seq += 1
        seq = self._seq
        msg = _NLMSGHDR.pack(_NLMSGHDR.size, AUDIT_LIST_RULES, NLM_F_REQUEST | NLM_F_ACK, seq, 0)
        self.sock.sendto(msg, (0, 0))
        out: list[bytes] = []
        while True:
            data = self.sock.recv(1 << 20)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, rtype, _f, rseq, _p = _NLMSGHDR.unpack_from(data, off)
                body = data[off + _NLMSGHDR.size : off + length]
                off += (length + 3) & ~3
                if rseq != seq:
                    continue
                if rtype == NLMSG_DONE:
                    return out
                if rtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", body)
                    if err:
                        raise AuditError(-err, os.strerror(-err))
                    continue
                if rtype == AUDIT_LIST_RULES:
                    out.append(body)


def rule_key(blob: bytes) -> str:
    """The filter key of a raw rule blob ("" when none); lets cleanup find leftovers by key."""
    head = _RULE_HDR.unpack_from(blob)
    count = head[2]
    fields = head[3 + AUDIT_BITMASK_SIZE : 3 + AUDIT_BITMASK_SIZE + AUDIT_MAX_FIELDS]
    values = head[3 + AUDIT_BITMASK_SIZE + AUDIT_MAX_FIELDS : 3 + AUDIT_BITMASK_SIZE + 2 * AUDIT_MAX_FIELDS]
    buf = blob[_RULE_HDR.size :]
    off = 0
    for i in range(count):
        if fields[i] in STRING_FIELDS:
            s = buf[off : off + values[i]]
            off += values[i]
            if fields[i] == AUDIT_FILTERKEY:
                return s.decode(errors="replace")
    return ""


def open_reader(rcvbuf: int = 16 << 20) -> socket.socket:
    """A socket on the audit multicast group (needs CAP_AUDIT_READ). Non-blocking."""
    s = socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK, NETLINK_AUDIT
    )
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE (CAP_NET_ADMIN)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((0, AUDIT_NLGRP_READLOG))
    return s


def is_overrun(exc: OSError) -> bool:
    """ENOBUFS on a netlink socket: the kernel dropped multicast messages for us (counted as loss)."""
    return exc.errno == errno.ENOBUFS


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_IoVec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


_libc = ctypes.CDLL(None, use_errno=True)
_recvmmsg = getattr(_libc, "recvmmsg", None)
if _recvmmsg is not None:
    _recvmmsg.restype = ctypes.c_int
    _recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
MSG_DONTWAIT = 0x40


class BatchReader:
    """recvmmsg(2): up to ``vlen`` datagrams per system call into fixed slots of one bytearray.

    Audit multicasts one record per datagram (~5 per event), so reading them one ``recv`` at a time
    was most of the agent's system-call count. ``recv()`` returns the lengths of the datagrams now
    in ``buf`` (datagram i starts at ``i * slot``); it raises BlockingIOError when none is queued,
    and OSError(ENOBUFS) for a multicast overrun like ``socket.recv`` does. Only the first page or
    so of each slot is ever touched, so the resident cost is ~vlen pages (0.5 MiB).
    """

    def __init__(self, sock: socket.socket, vlen: int = 128, slot: int = 9216) -> None:
        if _recvmmsg is None:
            raise OSError(errno.ENOSYS, "recvmmsg not available")
        self.sock = sock
        self.fd = sock.fileno()
        self.vlen = vlen
        self.slot = slot
        # anonymous mmap: zero pages cost nothing until the kernel writes a record into them (a
        # bytearray would be memset, all of it resident); it has find() and slicing like bytes
        self.buf = mmap.mmap(-1, vlen * slot)
        self._cbuf = (ctypes.c_char * len(self.buf)).from_buffer(self.buf)
        base = ctypes.addressof(self._cbuf)
        self._iov = (_IoVec * vlen)()
        self._msgs = (_MMsgHdr * vlen)()
        for i in range(vlen):
            self._iov[i].iov_base = base + i * slot
            self._iov[i].iov_len = slot
            h = self._msgs[i].msg_hdr
            h.msg_iov = ctypes.pointer(self._iov[i])
            h.msg_iovlen = 1
        self._msgs_addr = ctypes.addressof(self._msgs)
        self._hdrs = memoryview(self._msgs).cast("B")
        self._stride = ctypes.sizeof(_MMsgHdr)
        self._off = _MMsgHdr.msg_len.offset
        self._lens: dict[int, struct.Struct] = {}  # n -> a Struct reading n msg_len fields at once

    def recv(self) -> tuple[int, ...]:
        n = _recvmmsg(self.fd, self._msgs_addr, self.vlen, MSG_DONTWAIT, None)
        if n < 0:
            e = ctypes.get_errno()
            if e in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise BlockingIOError(e, os.strerror(e))
            raise OSError(e, os.strerror(e))
        st = self._lens.get(n)
        if st is None:
            pad = self._stride - self._off - 4
            st = self._lens[n] = struct.Struct("=" + f"{self._off}xI{pad}x" * n)
        return st.unpack_from(self._hdrs)
