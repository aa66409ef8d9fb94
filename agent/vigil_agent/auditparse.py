"""Audit record parsing: group netlink records by serial until EOE, decode the few fields we use.

Kept cheap on purpose (the CPU goal is ~25 µs per event all-in): record types we never read
(PROCTITLE, BPRM_FCAPS, ...) are dropped on their type before any text is touched, and a record's
key=value text is split once, lazily, only when its group is complete.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_ntop = socket.inet_ntop
_AF_INET = socket.AF_INET

SYSCALL = 1300
PATH = 1302
SOCKADDR = 1306
CWD = 1307
EXECVE = 1309
OBJ_PID = 1318
EOE = 1320
KERN_MODULE = 1330
WANTED = frozenset({SYSCALL, PATH, SOCKADDR, CWD, EXECVE, OBJ_PID, EOE, KERN_MODULE})

_NO_FIELDS: dict[str, str] = {}  # shared, never written: a group before its SYSCALL record
MAX_ARGS = 128
MAX_ARGV_CHARS = 8192

_NLHDR = struct.Struct("=IH")


def fields(body: str) -> dict[str, str]:
    """``a=1 b="x" c=(null)`` -> {"a": "1", "b": '"x"', "c": "(null)"} (values decoded by value())."""
    if body.count("=") == body.count(" ") + 1:  # the usual case: every token is one key=value
        it = iter(body.replace("=", " ").split(" "))
        return dict(zip(it, it, strict=False))
    out: dict[str, str] = {}
    for kv in body.split(" "):
        k, sep, v = kv.partition("=")
        if sep:
            out[k] = v
    return out


def value(raw: str | None) -> str | None:
    """Audit's encoding of untrusted strings: "quoted", HEX (anything unprintable), or (null)."""
    if raw is None or raw == "(null)" or raw == "(none)":
        return None
    if raw[:1] == '"':
        return raw[1:-1]
    try:
        return bytes.fromhex(raw).decode("utf-8", "replace")
    except ValueError:
        return raw


class Group:
    """All records of one audit event (one serial)."""

    __slots__ = (
        "cwd",
        "execve",
        "has_syscall",
        "module",
        "obj_pid",
        "paths",
        "serial",
        "sockaddr",
        "syscall",
        "time_ns",
    )

    def __init__(self, time_ns: int, serial: int) -> None:
        self.time_ns = time_ns
        self.serial = serial
        self.syscall: dict[str, str] = _NO_FIELDS
        self.execve: list[str] = []  # bodies of EXECVE records, in order
        self.paths: list[dict[str, str]] = []
        self.sockaddr = ""
        self.cwd = ""
        self.obj_pid: dict[str, str] | None = None
        self.module = ""
        self.has_syscall = False

    def argv(self) -> list[str]:
        return parse_execve(" ".join(self.execve))

    def path_names(self) -> list[tuple[str, str]]:
        """(name, nametype) of PATH records in item order."""
        out = []
        for p in self.paths:
            out.append((value(p.get("name")) or "", p.get("nametype", "")))
        return out


def bounded_argv(args: Iterable[str]) -> list[str]:
    """At most ``MAX_ARGS`` arguments and ``MAX_ARGV_CHARS`` characters, the cut marked with "…"
    (what the ingest's bounds take, docs/wire-format.md §4, whatever a process put in its argv)."""
    out: list[str] = []
    total = 0
    for s in itertools.islice(args, MAX_ARGS):
        total += len(s)
        if total > MAX_ARGV_CHARS:
            out.append(s[: max(0, MAX_ARGV_CHARS - (total - len(s)))] + "…")
            break
        out.append(s)
    return out


def parse_execve(body: str) -> list[str]:
    f = fields(body)
    try:
        argc = int(f.get("argc", "0"))
    except ValueError:
        argc = 0

    def args() -> Iterator[str]:  # lazily: the bound stops the decoding where it cuts
        for i in range(argc):
            raw = f.get(f"a{i}")
            if raw is None:  # long argument split in chunks a<i>[0], a<i>[1], ... (hex)
                chunks = []
                j = 0
                while (c := f.get(f"a{i}[{j}]")) is not None:
                    chunks.append(c)
                    j += 1
                yield value("".join(chunks)) or "" if chunks else ""
            else:
                yield value(raw) or ""

    return bounded_argv(args())


def parse_time_serial(header: str) -> tuple[int, int]:
    """``1795818147.269:158`` -> (epoch ns, serial)."""
    ts, _, serial = header.partition(":")
    sec, _, ms = ts.partition(".")
    return int(sec) * 1_000_000_000 + int(ms or 0) * 1_000_000, int(serial)


class Assembler:
    """Feeds raw netlink datagrams; returns complete groups when their EOE arrives.

    Groups that never see an EOE (records lost) are flushed by ``expire`` after ``max_age_ns``.
    """

    def __init__(self, max_age_ns: int = 2_000_000_000) -> None:
        self.pending: dict[int, Group] = {}
        self.max_age_ns = max_age_ns
        self.incomplete = 0

    def feed(self, data: bytes) -> Group | None:
        return self.feed_at(data, 0, len(data))

    def feed_at(self, buf: bytes | bytearray, off: int, n: int) -> Group | None:
        """One netlink datagram of ``n`` bytes at ``buf[off:]`` (a recvmmsg slot, or a whole
        ``bytes``). Unwanted record types are dropped on their type with nothing allocated."""
        if n < 24:
            return None
        mtype = buf[off + 4] | buf[off + 5] << 8
        if mtype not in WANTED:
            return None
        length = int.from_bytes(buf[off : off + 4], "little")
        end = off + (min(length, n) if length >= 16 else n)
        # "audit(1795818147.269:158): body"
        start = off + 16
        close = buf.find(b")", start + 6, end)
        if close < 0:
            return None
        colon = buf.find(b":", start + 6, close)
        try:
            serial = int(buf[colon + 1 : close])
        except ValueError:
            return None
        pending = self.pending
        g = pending.get(serial)
        if mtype == EOE:
            if g is not None:
                del pending[serial]
                return g if g.has_syscall else None
            return None
        if g is None:
            try:
                dot = buf.find(b".", start + 6, colon)
                t = int(buf[start + 6 : dot]) * 1_000_000_000 + int(buf[dot + 1 : colon]) * 1_000_000
            except ValueError:
                t = 0
            g = pending[serial] = Group(t, serial)
        body = buf[close + 3 : end].decode("latin-1")
        if mtype == SYSCALL:
            g.syscall = fields(body)
            g.has_syscall = True
        elif mtype == SOCKADDR:
            g.sockaddr = body[6:] if body.startswith("saddr=") else ""
        elif mtype == EXECVE:
            g.execve.append(body)
        elif mtype == PATH:
            g.paths.append(fields(body))
        elif mtype == CWD:
            g.cwd = value(body[4:]) or "" if body.startswith("cwd=") else ""
        elif mtype == OBJ_PID:
            g.obj_pid = fields(body)
        elif mtype == KERN_MODULE:
            g.module = value(body[5:]) or "" if body.startswith("name=") else ""
        return None

    def expire(self, now_ns: int) -> list[Group]:
        old = [s for s, g in self.pending.items() if now_ns - g.time_ns > self.max_age_ns]
        out = []
        for s in old:
            g = self.pending.pop(s)
            self.incomplete += 1
            if g.has_syscall:
                out.append(g)
        return out


@dataclass(frozen=True, slots=True)
class SockAddr:
    family: str  # inet|inet6|unix|other
    ip: str = ""
    port: int = 0
    path: str = ""


def parse_sockaddr(hexstr: str) -> SockAddr | None:
    try:
        raw = bytes.fromhex(hexstr)
    except ValueError:
        return None
    if len(raw) < 2:
        return None
    fam = raw[0] | raw[1] << 8
    if fam == 2 and len(raw) >= 8:
        return SockAddr("inet", _ntop(_AF_INET, raw[4:8]), raw[2] << 8 | raw[3])
    if fam == 10 and len(raw) >= 24:
        ip = ipaddress.IPv6Address(raw[8:24])
        return SockAddr("inet6", str(ip.ipv4_mapped or ip), raw[2] << 8 | raw[3])
    if fam == 1:
        p = raw[2:]
        if p[:1] == b"\0":
            return SockAddr("unix", path="@" + p[1:].split(b"\0", 1)[0].decode("utf-8", "replace"))
        return SockAddr("unix", path=p.split(b"\0", 1)[0].decode("utf-8", "replace"))
    return SockAddr("other")
