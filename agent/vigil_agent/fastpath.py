"""The native fast path for the eBPF ring (agent/native/fastpath.c, built as libvigilfast.so).

libbpf hands each ring record to the C function ``vf_sample`` instead of a Python callback. It
writes the wire line of a connect/accept/listen of a process this module registered
(:meth:`FastPath.set`), and of an exec whose parent, binary hash, user and fds Python has
already taught it (``set``, ``set_hash``, ``set_user``, ``set_stdio``), registering the new
process; it queues every other record, in order, for Python (:meth:`FastPath.take`): one call per
pass over the ring instead of one per record. The lines are byte for byte what msgspec writes for
the same event, so nothing downstream can tell the paths apart; Python's process table takes a
process C wrote from :meth:`FastPath.get` when a later record needs it.

Optional like the sensor: without the library (or with ``sensors.ebpf_native = false``) every
record goes through Python, as before.

The same library reads the DNS capture socket (agent/native/dnsfast.c, :class:`DnsReader`,
``sensors.dns_native``): packets in bursts, the common UDP messages parsed as dnscap.quick_parse
parses them, the rest handed to Python as read.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterable

import msgspec

from vigil import wire
from vigil_agent.bpfsensor import _SAMPLE_CB, AF_INET, AF_INET6, EV_ACCEPT, EV_CONNECT, EV_LISTEN

LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libvigilfast.so")
VF_FULL = -errno.ENOBUFS  # a pass stopped with its buffers full: take them, consume again
EV_DNS_NOTED = 64  # a queued DNS connect whose line C wrote: Python only attributes its queries
MAX_PORTS, MAX_COMMS = 8, 32
MAX_PROCS = 4096  # registered blocks (processes that exec'd or made a connection); the rest: Python
MAX_PROC_BYTES = 8 << 20
FOLDS_MAX = 1024  # connects and accepts C folds repeats into per batch (fastpath.c: FOLDS_MAX)
NO_START = (1 << 64) - 1  # registered for its children's lineage only: no record matches it

_LEN = struct.Struct("<I")


class _Ctx(ctypes.Structure):
    """The public head of ``struct vf_ctx`` (the C file is the reference)."""

    _fields_ = [
        ("wall_offset", ctypes.c_int64),
        ("seq", ctypes.c_uint64),
        ("self_pid", ctypes.c_uint32),
        ("shed_net", ctypes.c_uint32),
        ("n_ports", ctypes.c_uint32),
        ("ports", ctypes.c_uint16 * MAX_PORTS),
        ("n_comms", ctypes.c_uint32),
        ("comms", (ctypes.c_char * 16) * MAX_COMMS),
        ("out", ctypes.c_void_p),
        ("out_len", ctypes.c_uint64),
        ("lines", ctypes.c_uint64),
        ("shed", ctypes.c_uint64),
        ("ignored", ctypes.c_uint64),
        ("fast", ctypes.c_uint64),
        ("dropped", ctypes.c_uint64),
        ("slow", ctypes.c_void_p),
        ("slow_len", ctypes.c_uint64),
        ("n_slow", ctypes.c_uint64),
        ("n_procs", ctypes.c_uint32),
        ("exec_on", ctypes.c_uint32),
        ("proc_bytes", ctypes.c_uint64),
        ("execs", ctypes.c_uint64),
        ("btime_ns", ctypes.c_int64),
        ("tick_ns", ctypes.c_uint64),
        ("boot", ctypes.c_char * 40),
        ("urgent", ctypes.c_uint64),
        ("v2", ctypes.c_uint32),
        ("epoch", ctypes.c_uint32),
        ("next_ref", ctypes.c_uint32),
        ("omit_uid", ctypes.c_uint32),
        ("soft_max", ctypes.c_uint64),
        ("expanded", ctypes.c_uint64),
        ("soft_expanded", ctypes.c_uint64),
        ("fold", ctypes.c_uint32),
        ("n_folds", ctypes.c_uint32),
        ("folded", ctypes.c_uint64),
    ]


class _DnsCtx(ctypes.Structure):
    """The public head of ``struct vd_ctx`` (agent/native/dnsfast.c)."""

    _fields_ = [
        ("out", ctypes.c_void_p),
        ("out_len", ctypes.c_uint64),
        ("items", ctypes.c_uint64),
        ("parsed", ctypes.c_uint64),
        ("raw", ctypes.c_uint64),
        ("errors", ctypes.c_uint64),
    ]


# one packet as dnsfast.c reads it: (time, qr, src, sport, dst, dport, id, hostname, qtype, rcode,
# answers, raw); qr -1: the packet (raw) is Python's to read (TCP, or a message for dnslib)
DnsItem = tuple[int, int, str, int, str, int, int, str, str, str, list[wire.DnsAnswer], bytes]
_decode_items = msgspec.json.Decoder(list[DnsItem]).decode


def load(path: str = LIBRARY) -> ctypes.CDLL:
    if not os.path.exists(path):
        raise OSError(errno.ENOENT, f"{path} is missing (build it with `make agent-native`)")
    lib = ctypes.CDLL(path)
    vp, u32, u64, cp = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_char_p
    for name, res, args in (
        ("vf_new", ctypes.POINTER(_Ctx), [u32, u64]),
        ("vf_set", ctypes.c_int, [vp, u32, u64, cp, u32, cp, cp, u32, cp, u32, u32, ctypes.c_uint8]),
        ("vf_get", u32, [vp, u32, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint8)]),
        ("vf_set_hash", ctypes.c_int, [vp, u32, u64, ctypes.c_int64, ctypes.c_int64, cp]),
        ("vf_set_user", ctypes.c_int, [vp, u32, cp]),
        ("vf_set_stdio", ctypes.c_int, [vp, cp, cp, u32]),
        ("vf_forget", None, [vp, u32]),
        ("vf_folds", u32, [vp, u32, ctypes.POINTER(u64), u32]),
        ("vf_clear", None, [vp]),
        ("vf_reset", None, [vp]),
        ("vf_free", None, [vp]),
        ("vd_new", ctypes.POINTER(_DnsCtx), []),
        ("vd_read", ctypes.c_long, [vp, ctypes.c_int, u32]),
        ("vd_packet", ctypes.c_int, [vp, cp, ctypes.c_size_t, ctypes.c_int64]),
        ("vd_reset", None, [vp]),
        ("vd_free", None, [vp]),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


class FastPath:
    def __init__(
        self,
        *,
        self_pid: int,
        dns_ports: Iterable[int],
        exclude_comm: Iterable[str],
        boot: str = "",
        btime_ns: int = 0,
        omit_uid: bool = False,
        path: str = LIBRARY,
        max_procs: int = MAX_PROCS,
    ) -> None:
        """``boot``, ``btime_ns``: the process table's boot id and boot time, for the execs C
        writes (their uuids and start times); without a boot id every exec goes to Python.
        ``omit_uid``: the batch header carries that same boot (``Host.boot_id``/``boot_time``), so
        C's "proc" lines leave out the uuids the ingest derives from it (C checks each one)."""
        ports = sorted(set(dns_ports))
        comms = [c.encode()[:16] for c in sorted(set(exclude_comm))]
        if len(ports) > MAX_PORTS or len(comms) > MAX_COMMS:
            raise OSError(errno.E2BIG, f"more than {MAX_PORTS} DNS ports or {MAX_COMMS} excluded processes")
        self.lib = load(path)
        ptr = self.lib.vf_new(max_procs, MAX_PROC_BYTES)
        if not ptr:
            raise OSError(errno.ENOMEM, "cannot allocate the fast path's context")
        self.ptr = ctypes.cast(ptr, ctypes.c_void_p).value
        self.ctx = c = ptr.contents
        c.self_pid = self_pid
        c.n_ports = len(ports)
        for i, p in enumerate(ports):
            c.ports[i] = p
        c.boot = boot.encode()[:39]
        c.btime_ns = btime_ns
        c.tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        c.omit_uid = int(omit_uid and c.tick_ns == wire.CLOCK_TICK_NS)
        self.exec_ready = bool(boot)
        self._folds_buf = (ctypes.c_uint64 * (3 * FOLDS_MAX))()  # vf_folds' output, reused at every seal
        c.n_comms = len(comms)
        for i, name in enumerate(comms):
            c.comms[i].value = name
        self.sample = _SAMPLE_CB(("vf_sample", self.lib))  # the C function, passed to libbpf
        self._set = self.lib.vf_set
        self.registered: set[int] = set()  # pids set here and not forgotten here (a superset of C's)
        self.users: set[int] = set()

    def set(
        self,
        pid: int,
        start_ns: int,
        block: bytes | None,
        *,
        uuid: str = "",
        brief: bytes | None = None,
        lineage: list[bytes] | None = None,
    ) -> bool:
        """Register a process: its encoded block (``None``: its records are dropped, it is
        excluded); with its ``brief``, ``uuid`` and ``lineage`` (encoded briefs, nearest first) C
        can also write its children's execs. ``start_ns`` is its start as records carry it
        (NO_START: for its children only), so a record of a reused pid does not match. False when
        the table is full (Python keeps the pid)."""
        lin = b"\0".join(lineage or ())
        if self._set(
            self.ptr, pid, start_ns, block, len(block) if block else 0, uuid.encode(), brief,
            len(brief) if brief else 0, lin, len(lin), len(lineage or ()), 1,
        ):  # fmt: skip
            return False
        self.registered.add(pid)
        return True

    def get(self, pid: int) -> tuple[bytes, bool] | None:
        """The block of a process C wrote the exec of, and whether it has exited already
        (Python's table then holds it too, and C queues its exit for Python)."""
        ptr, dead = ctypes.c_void_p(), ctypes.c_uint8()
        n = self.lib.vf_get(self.ptr, pid, ctypes.byref(ptr), ctypes.byref(dead))
        if not n:
            return None
        self.registered.add(pid)  # held by both now: Python forgets it at its exit
        return ctypes.string_at(ptr, n), bool(dead.value)

    def set_hash(self, key: tuple[int, int, int, int], sha256: str) -> None:
        """An executable's sha256 by (dev, inode, mtime ns, size), as the exec records key it."""
        dev, ino, mtime_ns, size = key
        self.lib.vf_set_hash(self.ptr, dev, ino, mtime_ns, size, sha256.encode())

    def set_user(self, uid: int, name: str) -> None:
        if uid not in self.users:
            self.users.add(uid)
            self.lib.vf_set_user(self.ptr, uid, name.encode())

    def set_stdio(self, raw: bytes, encoded: bytes) -> None:
        """What an fd record (FDINFO bytes) is, as its Stdio block (b"": no such fd)."""
        self.lib.vf_set_stdio(self.ptr, raw, encoded, len(encoded))

    @staticmethod
    def takes(kind: int, family: int) -> bool:
        """Whether C handles net-layout records like this one once their process is registered
        (it never does unix sockets or /proc/<pid>/mem). A connect to a DNS port gets its line in
        C and comes back to Python as EV_DNS_NOTED, for the attribution of its queries."""
        return kind in (EV_CONNECT, EV_ACCEPT, EV_LISTEN) and family in (AF_INET, AF_INET6)

    def folds(self, epoch: int) -> list[tuple[int, int, int]]:
        """(seq, repeats, last time ns) of each connect or accept C wrote in batch ``epoch`` and
        folded repeats into (``ctx.fold``), for the batch's repeats line (wire.Repeats)."""
        buf = self._folds_buf
        n = self.lib.vf_folds(self.ptr, epoch, buf, FOLDS_MAX)
        return [(buf[3 * i], buf[3 * i + 1], buf[3 * i + 2]) for i in range(n)]

    def forget(self, pid: int) -> None:
        """Drop pid's block (C drops it by itself at the pid's exec or exit record; this is for a
        process Python registered after C saw its exit, within one pass)."""
        if pid in self.registered:
            self.registered.discard(pid)
            self.lib.vf_forget(self.ptr, pid)

    def clear(self) -> None:
        self.registered.clear()
        self.users.clear()
        self.lib.vf_clear(self.ptr)

    def take(self, *, view: bool = False) -> tuple[bytes | memoryview, int, list[bytes]]:
        """What the pass left: the lines (joined by newlines, without the last one), their count,
        and the records queued for Python, oldest first. ``view``: the lines as a view of C's
        buffer instead of a copy (3.6 MB/s on the bench), valid until the next pass only."""
        c = self.ctx
        n = c.lines
        lines: bytes | memoryview = b""
        if n and view:
            lines = memoryview((ctypes.c_char * (c.out_len - 1)).from_address(c.out)).cast("B")
        elif n:
            lines = ctypes.string_at(c.out, c.out_len - 1)
        records: list[bytes] = []
        if c.n_slow:
            buf = ctypes.string_at(c.slow, c.slow_len)
            off, end = 0, len(buf)
            unpack = _LEN.unpack_from
            while off < end:
                (size,) = unpack(buf, off)
                records.append(buf[off + 4 : off + 4 + size])
                off += (4 + size + 7) & ~7
        self.lib.vf_reset(self.ptr)
        return lines, n, records

    def close(self) -> None:
        if self.ptr:
            self.lib.vf_free(self.ptr)
            self.ptr = None


class DnsReader:
    """The DNS capture socket read and parsed in C (agent/native/dnsfast.c): one call reads a
    burst of packets and returns them as items, UDP messages already parsed exactly as
    dnscap.quick_parse parses them, everything else as the raw packet for Python's path."""

    def __init__(self, path: str = LIBRARY) -> None:
        self.lib = load(path)
        ptr = self.lib.vd_new()
        if not ptr:
            raise OSError(errno.ENOMEM, "cannot allocate the DNS reader's context")
        self.ptr = ctypes.cast(ptr, ctypes.c_void_p).value
        self.ctx = ptr.contents

    def read(self, fd: int, max_packets: int) -> list[DnsItem]:
        """Up to ``max_packets`` packets from the (non-blocking) socket ``fd``, oldest first."""
        self.lib.vd_read(self.ptr, fd, max_packets)
        return self.take()

    def feed(self, packet: bytes, time_ns: int) -> list[DnsItem]:
        """One packet as if read (tests hold C's reading to Python's with it)."""
        if self.lib.vd_packet(self.ptr, packet, len(packet), time_ns):
            raise MemoryError("dnsfast: no memory for an item")
        return self.take()

    def take(self) -> list[DnsItem]:
        c = self.ctx
        if not c.items:
            return []
        data = b"[" + ctypes.string_at(c.out, c.out_len) + b"]"
        self.lib.vd_reset(self.ptr)
        return _decode_items(data)

    @property
    def errors(self) -> int:
        """Packets lost here: failed reads, or no memory for their item."""
        return int(self.ctx.errors)

    def close(self) -> None:
        if self.ptr:
            self.lib.vd_free(self.ptr)
            self.ptr = None
