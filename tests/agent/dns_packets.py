"""DNS packets as the capture socket reads them (IP header first), for the DNS tests."""

from __future__ import annotations

import socket
import struct

import dnslib


def udp4(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + 8 + len(payload),
        0,
        0,
        64,
        17,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return ip + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp6(
    src: str, dst: str, sport: int, dport: int, payload: bytes, *, seq: int = 0, flags: int = 0x18
) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 1000, 0, 0) + payload
    ip = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        len(tcp),
        6,
        64,
        socket.inet_pton(socket.AF_INET6, src),
        socket.inet_pton(socket.AF_INET6, dst),
    )
    return ip + tcp


def dns_samples() -> list[bytes]:
    q = dnslib.DNSRecord.question("q1.run.bench.test", "A")
    r = q.reply()
    r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.A, rdata=dnslib.A("10.9.8.7"), ttl=5))
    q2 = dnslib.DNSRecord.question("www.Example.com", "AAAA")
    r2 = q2.reply()
    r2.add_answer(
        dnslib.RR("www.Example.com", dnslib.QTYPE.CNAME, rdata=dnslib.CNAME("edge.example.net"), ttl=60)
    )
    r2.add_answer(dnslib.RR("edge.example.net", dnslib.QTYPE.AAAA, rdata=dnslib.AAAA("2001:db8::1"), ttl=60))
    r3 = dnslib.DNSRecord.question("nx.example", "MX").reply()
    r3.header.rcode = 3
    r4 = dnslib.DNSRecord.question("t.example", "TXT").reply()
    r4.add_answer(dnslib.RR("t.example", dnslib.QTYPE.TXT, rdata=dnslib.TXT("hi")))
    odd = dnslib.DNSRecord.question("we ird.example", "A").pack()
    return [q.pack(), r.pack(), q2.pack(), r2.pack(), r3.pack(), r4.pack(), odd]


def udp6(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        len(udp),
        17,
        64,
        socket.inet_pton(socket.AF_INET6, src),
        socket.inet_pton(socket.AF_INET6, dst),
    )
    return ip + udp
