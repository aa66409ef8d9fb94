"""The native DNS reader (agent/native/dnsfast.c) against the Python path it replaces.

For every packet C either reports the message exactly as dnscap.parse_packet + quick_parse read
it, or hands the packet to Python untouched, or skips it where Python skips it. Packets are built
here (and fuzzed); one test reads them through a real socket.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import dnslib
import pytest
from dns_packets import dns_samples, tcp6, udp4, udp6
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil_agent import dnscap, fastpath

pytestmark = pytest.mark.skipif(
    not Path(fastpath.LIBRARY).exists(), reason="libvigilfast.so not built (make agent-native)"
)
T = 1_764_000_000_123_456_789


@pytest.fixture(scope="module")
def reader():  # type: ignore[no-untyped-def]
    r = fastpath.DnsReader()
    yield r
    r.close()


def python_items(packet: bytes, t: int) -> list[fastpath.DnsItem]:
    """What the C reader must return for one packet, from the Python functions it replaces."""
    p = dnscap.parse_packet(packet)
    if p is None:
        return []
    if p.protocol == "udp":
        try:
            m = dnscap.quick_parse(p.payload)
        except (IndexError, struct.error, ValueError):
            m = None
        if m is not None:
            ident, qr, rcode, host, qtype, answers = m
            return [(t, qr, p.src, p.sport, p.dst, p.dport, ident, host, qtype, rcode, answers, b"")]
    return [(t, -1, "", 0, "", 0, 0, "", "", "", [], packet)]


def test_samples_read_as_python_reads_them(reader) -> None:  # type: ignore[no-untyped-def]
    parsed = 0
    for msg in dns_samples():
        for packet in (
            udp4("10.0.0.5", "10.0.0.2", 40000, 53, msg),
            udp6("fd00::5", "fd00::53", 40001, 53, msg),
            udp6("::ffff:10.0.0.5", "::ffff:10.0.0.2", 40002, 53, msg),
        ):
            got = reader.feed(packet, T)
            assert got == python_items(packet, T)
            parsed += got[0][1] >= 0
    assert parsed == 3 * 5  # the TXT answer and the escaped name are Python's (dnslib)
    item = reader.feed(udp6("::ffff:10.0.0.5", "fd00::53", 40002, 53, dns_samples()[1]), T)[0]
    assert item[2] == "10.0.0.5" and item[4] == "fd00::53"
    assert item[7:10] == ("q1.run.bench.test", "A", "NOERROR") and item[10][0].rdata == "10.9.8.7"


def test_tcp_and_non_dns_packets(reader) -> None:  # type: ignore[no-untyped-def]
    msg = dns_samples()[0]
    framed = struct.pack("!H", len(msg)) + msg
    tcp = tcp6("fd00::1", "fd00::53", 5555, 53, framed)
    assert reader.feed(tcp, T) == [(T, -1, "", 0, "", 0, 0, "", "", "", [], tcp)]
    for junk in (
        b"",
        b"\x45" + b"\0" * 10,
        b"\x60" + b"\0" * 30,
        udp4("1.1.1.1", "2.2.2.2", 1, 53, b"")[:25],
    ):
        assert reader.feed(junk, T) == python_items(junk, T) == []
    icmp = bytearray(udp4("1.1.1.1", "2.2.2.2", 1, 53, msg))
    icmp[9] = 1
    assert reader.feed(bytes(icmp), T) == []


_LABEL = st.one_of(
    st.text(alphabet="abcXYZ019-_*", min_size=1, max_size=12).map(str.encode),
    st.binary(min_size=0, max_size=70),  # odd bytes, empty or over-long labels
)


@st.composite
def _name(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 5)) == 0:
        return struct.pack("!H", 0xC000 | draw(st.sampled_from([12, 12, 0, 40, 3000])))
    out = b"".join(bytes([min(len(label), 255)]) + label for label in draw(st.lists(_LABEL, max_size=4)))
    if draw(st.booleans()):
        return out + b"\xc0\x0c"  # a suffix by pointer
    return out + b"\0"


@st.composite
def _message(draw: st.DrawFn) -> bytes:
    qr = draw(st.booleans())
    flags = (0x8180 if qr else 0x0100) | draw(st.sampled_from([0, 0, 3, 2, 9]))
    answers = draw(st.integers(0, 4))
    msg = struct.pack("!HHHHHH", draw(st.integers(0, 0xFFFF)), flags, draw(st.sampled_from([1, 1, 1, 0, 2])),
                      answers, 0, 0)  # fmt: skip
    msg += draw(_name()) + struct.pack("!HH", draw(st.sampled_from([1, 28, 5, 16, 15, 99, 255])), 1)
    for _ in range(answers):
        rtype = draw(st.sampled_from([1, 28, 5, 2, 12, 16, 46]))
        rdata = {1: b"\x0a\x09\x08\x07", 28: socket.inet_pton(socket.AF_INET6, "2001:db8::7")}.get(rtype)
        if rdata is None or draw(st.integers(0, 9)) == 0:
            rdata = draw(_name()) if rtype in (2, 5, 12) else draw(st.binary(max_size=20))
        msg += (
            draw(_name())
            + struct.pack("!HHIH", rtype, 1, draw(st.integers(0, 2**32 - 1)), len(rdata))
            + rdata
        )
    cut = draw(st.integers(0, 30))
    return msg[: len(msg) - cut] if cut < 5 else msg


@settings(max_examples=600, deadline=None)
@given(_message(), st.booleans())
def test_fuzzed_messages_read_as_python_reads_them(msg: bytes, v6: bool) -> None:
    r = fastpath.DnsReader()
    try:
        packet = (
            udp6("fd00::5", "fd00::53", 53, 41000, msg)
            if v6
            else udp4("10.0.0.53", "10.0.0.5", 53, 41000, msg)
        )
        assert r.feed(packet, T) == python_items(packet, T)
    finally:
        r.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_read_as_python_reads_it(raw: bytes) -> None:
    r = fastpath.DnsReader()
    try:
        for packet in (raw, udp4("10.0.0.53", "10.0.0.5", 53, 41000, raw)):
            assert r.feed(packet, T) == python_items(packet, T)
    finally:
        r.close()


def test_reads_a_socket_in_order_up_to_the_burst(reader) -> None:  # type: ignore[no-untyped-def]
    """Through a real descriptor (a datagram socketpair stands in for AF_PACKET's): packets in the
    order sent, at most ``max_packets`` a call, then nothing (EAGAIN) without blocking."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        b.setblocking(False)
        sent = []
        for i in range(5):
            q = dnslib.DNSRecord.question(f"n{i}.example.org", "AAAA")
            sent.append(udp4("127.0.0.1", "127.0.0.53", 30000 + i, 53, q.pack()))
            a.send(sent[-1])
        first = reader.read(b.fileno(), 3)
        rest = reader.read(b.fileno(), 100)
        assert [i[7] for i in first + rest] == [f"n{i}.example.org" for i in range(5)]
        assert [i[3] for i in first + rest] == [30000 + i for i in range(5)]
        assert all(i[8] == "AAAA" and i[1] == 0 for i in first + rest)
        assert reader.read(b.fileno(), 100) == [] and reader.errors == 0
    finally:
        a.close()
        b.close()


def test_tracker_reports_the_same_queries_either_way(reader) -> None:  # type: ignore[no-untyped-def]
    """The agent's two paths into DnsTracker (Python parsing every packet; the native reader's
    items) end in the same reported queries, TCP and dnslib's messages included."""
    msgs = dns_samples()
    packets = []
    txt = dnslib.DNSRecord.parse(msgs[5])  # its query: the TXT answer is dnslib's to read
    txt.header.qr, txt.rr = 0, []
    for i, (q, r) in enumerate(
        [(msgs[0], msgs[1]), (msgs[2], msgs[3]), (txt.pack(), msgs[5]), (msgs[6], msgs[4])]
    ):
        packets.append(udp4("10.0.0.5", "10.0.0.2", 40000 + i, 53, q))
        packets.append(udp4("10.0.0.2", "10.0.0.5", 53, 40000 + i, r))
    framed = struct.pack("!H", len(msgs[0])) + msgs[0]
    packets.append(tcp6("fd00::1", "fd00::53", 5555, 53, framed))
    py, native = dnscap.DnsTracker(), dnscap.DnsTracker()
    for n, packet in enumerate(packets):
        py.on_packet(packet, T + n)
        for t, qr, src, sport, dst, dport, ident, host, qtype, rcode, answers, raw in reader.feed(
            packet, T + n
        ):
            if qr < 0:
                native.on_packet(raw, t)
            else:
                native.on_message("udp", src, sport, dst, dport, ident, qr, rcode, host, qtype, answers, t)
    a, b = py.ready(T + 10**10), native.ready(T + 10**10)
    assert len(a) == 5 and a == b
    assert {p.hostname for p in a if p.answered} == {"q1.run.bench.test", "www.Example.com", "t.example"}


def test_the_context_struct_matches_the_c_layout() -> None:
    """_DnsCtx mirrors the head of struct vd_ctx: a field out of place would misread the items."""
    src = (Path(__file__).resolve().parents[2] / "agent/native/dnsfast.c").read_text()
    body = src[src.index("struct vd_ctx {") : src.index("/* private")]
    fields = [ln.split(";")[0].split() for ln in body.splitlines()[1:] if ";" in ln]
    assert [f[-1].lstrip("*") for f in fields] == [n for n, _ in fastpath._DnsCtx._fields_]
    assert [f[0] for f in fields] == ["char"] + ["uint64_t"] * 5
