"""DNS capture: AF_PACKET on all interfaces, a classic-BPF filter that lets only port-53 UDP/TCP
through (so the kernel, not Python, discards everything else), dnslib for the messages, and
attribution to the process whose connect() to the resolver the audit stream showed.

Attribution: a connect() to a resolver seen by audit gives (process, resolver, local port when the
socket could be inspected). A query is matched by its client port first; failing that, to the
oldest unmatched connect to the same resolver made shortly before. Unmatched queries are still
reported, without a process.
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
from collections import deque
from dataclasses import dataclass, field

import dnslib

from vigil import wire

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SKF_AD_OFF = -0x1000
SKF_AD_PKTTYPE = 4
SKF_AD_IFINDEX = 8
PACKET_OUTGOING = 4


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


# cBPF opcodes
LD_B_ABS, LD_H_ABS, LD_W_ABS, LD_H_IND = 0x30, 0x28, 0x20, 0x48
LDX_B_MSH, ALU_RSH_K, JEQ_K, JSET_K, RET_K = 0xB1, 0x74, 0x15, 0x45, 0x06


def bpf_program(ports: list[int], lo_ifindex: int) -> list[tuple[int, int, int, int]]:
    """Accept IPv4/IPv6 UDP/TCP packets with either port in ``ports``; drop loopback's outgoing
    copy (each loopback packet is seen twice). The socket is SOCK_DGRAM: offset 0 = IP header."""
    prog: list[tuple[int, object, object, int]] = []
    labels: dict[str, int] = {}

    def op(code: int, k: int = 0, jt: object = 0, jf: object = 0) -> None:
        prog.append((code, jt, jf, k & 0xFFFFFFFF))

    def label(name: str) -> None:
        labels[name] = len(prog)

    op(LD_W_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE)
    op(JEQ_K, PACKET_OUTGOING, 0, "ipver")
    op(LD_W_ABS, SKF_AD_OFF + SKF_AD_IFINDEX)
    op(JEQ_K, lo_ifindex, "drop", 0)
    label("ipver")
    op(LD_B_ABS, 0)
    op(ALU_RSH_K, 4)
    op(JEQ_K, 4, 0, "v6")
    op(LD_B_ABS, 9)
    op(JEQ_K, 17, "v4ports", 0)
    op(JEQ_K, 6, "v4ports", "drop")
    label("v4ports")
    op(LD_H_ABS, 6)
    op(JSET_K, 0x1FFF, "drop", 0)
    op(LDX_B_MSH, 0)
    for off in (0, 2):
        op(LD_H_IND, off)
        for p in ports:
            op(JEQ_K, p, "accept", 0)
    op(RET_K, 0)
    label("v6")
    op(JEQ_K, 6, 0, "drop")
    op(LD_B_ABS, 6)
    op(JEQ_K, 17, "v6ports", 0)
    op(JEQ_K, 6, "v6ports", "drop")
    label("v6ports")
    for off in (40, 42):
        op(LD_H_ABS, off)
        for p in ports:
            op(JEQ_K, p, "accept", 0)
    label("drop")
    op(RET_K, 0)
    label("accept")
    op(RET_K, 0xFFFF)

    out = []
    for i, (code, jt, jf, k) in enumerate(prog):

        def rel(j: object, i: int = i) -> int:
            return labels[j] - i - 1 if isinstance(j, str) else int(j)  # type: ignore[call-overload]

        out.append((code, rel(jt), rel(jf), k))
    return out


def open_capture(ports: list[int], rcvbuf: int = 4 << 20) -> socket.socket:
    s = socket.socket(
        socket.AF_PACKET,
        socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
        socket.htons(ETH_P_ALL),
    )
    try:
        lo = socket.if_nametoindex("lo")
    except OSError:
        lo = 1
    prog = bpf_program(ports, lo)
    arr = (_SockFilter * len(prog))(*[_SockFilter(c, jt, jf, k) for c, jt, jf, k in prog])
    fprog = _SockFprog(len(prog), arr)
    s.setsockopt(
        socket.SOL_SOCKET,
        SO_ATTACH_FILTER,
        bytes(ctypes.string_at(ctypes.addressof(fprog), ctypes.sizeof(fprog))),
    )
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)
    # anything queued before the filter was attached is not DNS-filtered: drain it
    while True:
        try:
            s.recv(65535)
        except BlockingIOError:
            break
    return s


@dataclass(slots=True)
class Packet:
    src: str
    dst: str
    sport: int
    dport: int
    protocol: str
    payload: bytes  # UDP: one DNS message; TCP: the segment's data (a piece of the stream)
    seq: int = 0  # TCP: the sequence number of the payload's first byte
    flags: int = 0  # TCP: FIN 1, SYN 2, RST 4


TCP_FIN, TCP_SYN, TCP_RST = 1, 2, 4


def _ip(raw: bytes) -> str:
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    ip = socket.inet_ntop(socket.AF_INET6, raw)
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


def parse_packet(data: bytes) -> Packet | None:
    if not data:
        return None
    ver = data[0] >> 4
    if ver == 4 and len(data) >= 20:
        ihl = (data[0] & 0xF) * 4
        if ihl < 20:
            return None
        proto, src, dst, l4 = data[9], data[12:16], data[16:20], data[ihl:]
    elif ver == 6 and len(data) >= 40:
        proto, src, dst, l4 = data[6], data[8:24], data[24:40], data[40:]
    else:
        return None
    if len(l4) < 8:
        return None
    sport, dport = struct.unpack_from("!HH", l4)
    if proto == 17:
        return Packet(_ip(src), _ip(dst), sport, dport, "udp", l4[8:])
    if proto == 6 and len(l4) >= 20:
        (seq,) = struct.unpack_from("!I", l4, 4)
        return Packet(_ip(src), _ip(dst), sport, dport, "tcp", l4[(l4[12] >> 4) * 4 :], seq, l4[13] & 7)
    return None


@dataclass(slots=True)
class _Stream:
    next: int  # the sequence number expected next
    buf: bytes
    seen: int  # ns


class TcpStreams:
    """DNS over TCP: each direction of a connection as a byte stream, in sequence-number order,
    cut into messages by their 2-byte length prefix (RFC 1035 4.2.2). A message may span segments
    (large answers; clients that write the length and the message separately) and a segment may
    hold several messages. Retransmitted bytes are skipped; a hole in a stream (a segment the
    capture missed) or a stream cut mid-message is counted in ``lost``, never silently dropped.
    Bounded: ``max_streams`` streams of at most one message each, idle ones expire."""

    def __init__(self, *, max_streams: int = 512, idle_ns: int = 10_000_000_000) -> None:
        self.streams: dict[tuple[str, int, str, int], _Stream] = {}
        self.max_streams = max_streams
        self.idle_ns = idle_ns
        self.lost = 0  # messages (or parts of a stream) that could not be put together

    def feed(self, p: Packet, now_ns: int) -> list[bytes]:
        key = (p.src, p.sport, p.dst, p.dport)
        st = self.streams.get(key)
        if p.flags & TCP_SYN:
            self._open(key, (p.seq + 1) & 0xFFFFFFFF, now_ns)
            return []
        data = p.payload
        out: list[bytes] = []
        if data:
            if st is None:  # joined mid-connection: take this segment as a message start
                st = self._open(key, p.seq, now_ns)
            gap = (p.seq - st.next) & 0xFFFFFFFF
            if gap:
                behind = (st.next - p.seq) & 0xFFFFFFFF
                if behind < 1 << 30:  # a retransmission: skip what was had already
                    data = data[behind:]
                else:  # bytes the capture never saw: resynchronise at this segment
                    self.lost += 1
                    st.buf = b""
                    st.next = p.seq
            if data:
                st.next = (st.next + len(data)) & 0xFFFFFFFF
                buf = st.buf + data if st.buf else data
                while len(buf) >= 2:
                    n = (buf[0] << 8) | buf[1]
                    if len(buf) < 2 + n:
                        break
                    out.append(buf[2 : 2 + n])
                    buf = buf[2 + n :]
                st.buf = buf
                st.seen = now_ns
        if p.flags & (TCP_FIN | TCP_RST) and st is not None:
            if st.buf:
                self.lost += 1  # the stream ended inside a message
            del self.streams[key]
        return out

    def _open(self, key: tuple[str, int, str, int], seq: int, now_ns: int) -> _Stream:
        old = self.streams.pop(key, None)
        if old is not None and old.buf:
            self.lost += 1
        if len(self.streams) >= self.max_streams:
            self.expire(now_ns)
            if len(self.streams) >= self.max_streams:  # still full: the oldest goes
                oldest = next(iter(self.streams))
                if self.streams.pop(oldest).buf:
                    self.lost += 1
        st = self.streams[key] = _Stream(seq, b"", now_ns)
        return st

    def expire(self, now_ns: int) -> None:
        for key, st in list(self.streams.items()):
            if now_ns - st.seen > self.idle_ns:
                if st.buf:
                    self.lost += 1
                del self.streams[key]


_LDH = frozenset(b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz*")
_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_QTYPES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    65: "HTTPS",
    255: "ANY",
}
_NAMED_RDATA = frozenset((2, 5, 12))  # NS, CNAME, PTR: the rdata is one (compressible) name
_HDR = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")

# (id, qr, rcode, hostname, qtype, answers): a DNS message as the tracker uses it
Message = tuple[int, int, str, str, str, list[wire.DnsAnswer]]


def _name(msg: bytes, off: int) -> tuple[str, int] | None:
    """A (possibly compressed) name at ``off`` -> (dotted name with a trailing dot as dnslib writes
    it, offset after it); None for anything dnslib would print differently (escapes) or garbage."""
    labels: list[str] = []
    end = -1
    jumps = 0
    n = len(msg)
    while True:
        if off >= n:
            return None
        ln = msg[off]
        if ln == 0:
            off += 1
            break
        if ln & 0xC0 == 0xC0:
            if off + 1 >= n or jumps > 16:
                return None
            if end < 0:
                end = off + 2
            off = (ln & 0x3F) << 8 | msg[off + 1]
            jumps += 1
            continue
        if ln & 0xC0 or off + 1 + ln > n:
            return None
        label = msg[off + 1 : off + 1 + ln]
        if not _LDH.issuperset(label):
            return None
        labels.append(label.decode("ascii"))
        off += 1 + ln
    return ".".join(labels) + ".", (end if end >= 0 else off)


def quick_parse(msg: bytes) -> Message | None:
    """The common DNS messages (one question; A/AAAA/CNAME/NS/PTR answers; plain names) without
    dnslib, which costs ~10x more per packet. None: let dnslib do it (same output)."""
    if len(msg) < 12:
        return None
    ident, flags, qd, an, _ns, _ar = _HDR.unpack_from(msg)
    if qd != 1:
        return None
    q = _name(msg, 12)
    if q is None or q[1] + 4 > len(msg):
        return None
    qname, off = q
    qtype = _QTYPES.get(msg[off] << 8 | msg[off + 1])
    if qtype is None:
        return None
    off += 4
    qr = flags >> 15
    rcode = _RCODES.get(flags & 0xF)
    if rcode is None:
        return None
    answers: list[wire.DnsAnswer] = []
    for _ in range(min(an, 32) if qr else 0):
        r = _name(msg, off)
        if r is None or r[1] + 10 > len(msg):
            return None
        off = r[1]
        rtype, _cls, ttl, rdlen = _RR.unpack_from(msg, off)
        off += 10
        if off + rdlen > len(msg):
            return None
        if rtype == 1 and rdlen == 4:
            rdata = socket.inet_ntop(socket.AF_INET, msg[off : off + 4])
        elif rtype == 28 and rdlen == 16:
            rdata = socket.inet_ntop(socket.AF_INET6, msg[off : off + 16])
        elif rtype in _NAMED_RDATA:
            t = _name(msg, off)
            if t is None:
                return None
            rdata = t[0]
        else:
            return None
        answers.append(wire.DnsAnswer(type=_QTYPES[rtype], rdata=rdata, ttl=ttl))
        off += rdlen
    return ident, qr, rcode, qname.rstrip("."), qtype, answers


def dnslib_parse(payload: bytes) -> Message | None:
    try:
        msg = dnslib.DNSRecord.parse(payload)
    except Exception:  # dnslib raises several types on garbage
        return None
    if not msg.questions:
        return msg.header.id, msg.header.qr, "", "", "", []
    q = msg.questions[0]
    answers = []
    if msg.header.qr:
        answers = [
            wire.DnsAnswer(type=str(dnslib.QTYPE.get(rr.rtype, rr.rtype)), rdata=str(rr.rdata), ttl=rr.ttl)
            for rr in msg.rr[:32]
        ]
    return (
        msg.header.id,
        msg.header.qr,
        str(dnslib.RCODE.get(msg.header.rcode, msg.header.rcode)),
        str(q.qname).rstrip("."),
        str(dnslib.QTYPE.get(q.qtype, str(q.qtype))),
        answers,
    )


def parse_message(payload: bytes) -> Message | None:
    try:
        m = quick_parse(payload)
    except (IndexError, struct.error, ValueError):
        m = None
    return m if m is not None else dnslib_parse(payload)


@dataclass(slots=True)
class Pending:
    time_ns: int
    hostname: str
    qtype: str
    protocol: str
    client_ip: str
    client_port: int
    resolver_ip: str
    resolver_port: int
    process: wire.Process | None = None
    rcode: str = ""
    answers: list[wire.DnsAnswer] = field(default_factory=list)
    answered: bool = False


@dataclass(slots=True)
class Connect:
    time_ns: int
    resolver_ip: str
    process: wire.Process
    used: bool = False


class DnsTracker:
    """Pairs queries with responses and with the processes that sent them."""

    def __init__(
        self, *, hold_ns: int = 300_000_000, timeout_ns: int = 2_000_000_000, max_pending: int = 4096
    ) -> None:
        self.pending: dict[tuple[str, int, int, str], Pending] = {}
        self.owners: dict[
            tuple[str, int], tuple[wire.Process, int]
        ] = {}  # (proto, port) -> (process, expiry)
        self.connects: deque[Connect] = deque(maxlen=256)
        self.hold_ns = hold_ns
        self.timeout_ns = timeout_ns
        self.max_pending = max_pending
        self.malformed = 0  # messages no parser could read
        self.overflow = 0  # queries not tracked: max_pending were waiting
        self.tcp = TcpStreams()

    # audit side ----------------------------------------------------------------------------
    def note_connect(
        self, process: wire.Process, resolver_ip: str, protocol: str, local_port: int, time_ns: int
    ) -> None:
        if local_port:
            self.owners[(protocol, local_port)] = (process, time_ns + self.timeout_ns)
            for p in self.pending.values():
                if p.process is None and p.client_port == local_port and p.protocol == protocol:
                    p.process = process
            return
        for p in sorted(self.pending.values(), key=lambda p: p.time_ns):
            if p.process is None and p.resolver_ip == resolver_ip and p.time_ns >= time_ns - 50_000_000:
                self._own(p, process)
                return
        self.connects.append(Connect(time_ns, resolver_ip, process))

    def _own(self, p: Pending, process: wire.Process) -> None:
        p.process = process
        self.owners[(p.protocol, p.client_port)] = (process, p.time_ns + self.timeout_ns)
        for q in self.pending.values():  # the AAAA query on the same socket
            if q.process is None and q.client_port == p.client_port and q.protocol == p.protocol:
                q.process = process

    # packet side ---------------------------------------------------------------------------
    def on_packet(self, data: bytes, now_ns: int) -> None:
        pkt = parse_packet(data)
        if pkt is None:
            return
        if pkt.protocol == "udp":
            self._on_message(pkt, pkt.payload, now_ns)
            return
        for msg in self.tcp.feed(pkt, now_ns):
            self._on_message(pkt, msg, now_ns)

    def _on_message(self, pkt: Packet, payload: bytes, now_ns: int) -> None:
        m = parse_message(payload)
        if m is None:
            self.malformed += 1
            return
        self.on_message(pkt.protocol, pkt.src, pkt.sport, pkt.dst, pkt.dport, *m, now_ns)

    def on_message(
        self,
        protocol: str,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        ident: int,
        qr: int,
        rcode: str,
        hostname: str,
        qtype: str,
        answers: list[wire.DnsAnswer],
        now_ns: int,
    ) -> None:
        """A parsed message (here, or by the native reader: fastpath.DnsReader)."""
        if not hostname and not qtype:
            return  # no question
        if qr == 0:
            key = (src, sport, ident, hostname)
            if key in self.pending:
                return  # retransmission
            if len(self.pending) >= self.max_pending:
                self.overflow += 1
                return
            p = Pending(now_ns, hostname, qtype, protocol, src, sport, dst, dport)
            owner = self.owners.get((protocol, sport))
            if owner is not None and owner[1] >= now_ns:
                p.process = owner[0]
            else:
                for c in self.connects:
                    if not c.used and c.resolver_ip == dst and now_ns - c.time_ns < self.timeout_ns:
                        c.used = True
                        p.process = c.process
                        self.owners[(protocol, sport)] = (c.process, now_ns + self.timeout_ns)
                        break
            self.pending[key] = p
        else:
            p2 = self.pending.get((dst, dport, ident, hostname))
            if p2 is None:
                return
            p2.answered = True
            p2.rcode = rcode
            p2.answers = answers

    def ready(self, now_ns: int) -> list[Pending]:
        """Queries to report now: answered and attributed (or held long enough), or timed out."""
        out = []
        for key, p in list(self.pending.items()):
            age = now_ns - p.time_ns
            if (p.answered and (p.process is not None or age >= self.hold_ns)) or age >= self.timeout_ns:
                out.append(p)
                del self.pending[key]
        if len(self.owners) > 4096:
            self.owners = {k: v for k, v in self.owners.items() if v[1] >= now_ns}
        if self.tcp.streams:
            self.tcp.expire(now_ns)
        return out

    @property
    def lost(self) -> int:
        """DNS messages captured but not reported: unreadable, untracked, or not reassembled."""
        return self.malformed + self.overflow + self.tcp.lost
