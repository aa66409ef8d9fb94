"""Building blocks of the EC2 finding types (not a detection: the registry skips ``_`` modules).

Flow records (``NetworkFlow``) are unidirectional: one TCP connection is two records, the
initiator's (client -> server) and the responder's. ``initiated`` tells them apart: with
``tcp-flags`` (v3+) a record with SYN and without SYN-ACK is the initiator's; without it, the
side with the higher (ephemeral) port is the client. A flow is ``local_initiated`` when the
instance opened it (outbound) and ``remote_initiated`` when a remote host did (inbound).

Windowed counts live in the State table like the runtime detections': ``DistinctInWindow``
remembers each member once per window and adds 1 to the window's counter, so a repeated record
(the same connection in the next aggregation interval) never counts twice.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Final

from vigil.detection import Context, Detection
from vigil.detections._common import ThreatListDns
from vigil.events import ApiActivity, DnsActivity, NetworkFlow
from vigil.intel import Indicator, Intel
from vigil.intel.builtin import builtin_intel
from vigil.normalize.vpcflow import is_internal

FLOW: Final = frozenset({"vpc_flow"})
RESOLVER: Final = frozenset({"resolver_query"})
SYN: Final = 0x02
SYN_ACK: Final = 0x12
PROBE_PACKETS: Final = 4  # a probe: a SYN (and maybe the closing ACK/RST), never a conversation
WINDOW_NS: Final = 600 * 1_000_000_000  # 10 minutes
WINDOW_TTL_S: Final = 1200


def local(e: NetworkFlow) -> tuple[str, int]:
    if e.direction == "Inbound":
        return e.dst_endpoint.ip, e.dst_endpoint.port
    return e.src_endpoint.ip, e.src_endpoint.port


def remote(e: NetworkFlow) -> tuple[str, int]:
    if e.direction == "Inbound":
        return e.src_endpoint.ip, e.src_endpoint.port
    return e.dst_endpoint.ip, e.dst_endpoint.port


def initiated(e: NetworkFlow) -> bool:
    """Whether this record is the initiator's half of its connection (see the module doc)."""
    if e.protocol_num == 6 and e.tcp_flags >= 0:
        return bool(e.tcp_flags & SYN) and (e.tcp_flags & SYN_ACK) != SYN_ACK
    return e.src_endpoint.port > e.dst_endpoint.port


def local_initiated(e: NetworkFlow) -> bool:
    return e.direction == "Outbound" and initiated(e)


def remote_initiated(e: NetworkFlow) -> bool:
    return e.direction == "Inbound" and initiated(e)


def probe_like(e: NetworkFlow) -> bool:
    return e.action == "REJECT" or e.packets <= PROBE_PACKETS


@functools.lru_cache(maxsize=65_536)
def external(ip: str) -> bool:
    """A public address (memoized: a fleet talks to the same hosts over and over)."""
    return bool(ip) and not is_internal(ip)


def ip_details(ip: str) -> dict[str, str]:
    return {"ipAddressV6" if ":" in ip else "ipAddressV4": ip} if ip else {}


def connection_action(e: NetworkFlow, *, direction: str | None = None) -> dict[str, Any]:
    """``service.action`` NETWORK_CONNECTION for a flow record, from the instance's side."""
    lip, lport = local(e)
    rip, rport = remote(e)
    d = direction or (
        "INBOUND" if e.direction == "Inbound" else "OUTBOUND" if e.direction == "Outbound" else "UNKNOWN"
    )
    action: dict[str, Any] = {
        "connectionDirection": d,
        "protocol": (e.protocol_name or str(e.protocol_num)).upper(),
        "blocked": e.action == "REJECT",
        "remoteIpDetails": ip_details(rip),
        "remotePortDetails": {"port": rport},
        "localIpDetails": ip_details(lip),
        "localPortDetails": {"port": lport},
    }
    if e.interface_uid:
        action["localNetworkInterface"] = e.interface_uid
    return {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": action}


def port_probe_action(e: NetworkFlow, port_name: str = "") -> dict[str, Any]:
    """``service.action`` PORT_PROBE: a remote host probed a local port."""
    lip, lport = local(e)
    rip, _ = remote(e)
    port: dict[str, Any] = {"port": lport}
    if port_name:
        port["portName"] = port_name
    detail = {"localPortDetails": port, "localIpDetails": ip_details(lip), "remoteIpDetails": ip_details(rip)}
    return {
        "actionType": "PORT_PROBE",
        "portProbeAction": {"blocked": e.action == "REJECT", "portProbeDetails": [detail]},
    }


def window(e: Any) -> int:
    return int(e.time) // WINDOW_NS


class DistinctInWindow(Detection):
    """Fires once ``threshold`` distinct ``member``s of one ``group`` were seen in a window.

    Subclasses say which flows count (``candidate``), what groups them (``group``, e.g. the remote
    host) and what is counted (``member``, e.g. the destination port)."""

    stateful = True
    kinds = FLOW
    prefix: ClassVar[str]
    threshold: ClassVar[int]

    def candidate(self, e: NetworkFlow) -> bool:
        raise NotImplementedError

    def group(self, e: NetworkFlow) -> str:
        raise NotImplementedError

    def member(self, e: NetworkFlow) -> str:
        raise NotImplementedError

    def _keys(self, e: NetworkFlow) -> tuple[str, str]:
        base = f"{self.prefix}|{e.device.instance_uid}|{self.group(e)}|{window(e)}"
        return f"{base}|{self.member(e)}", f"{base}#n"

    def state_keys(self, event: NetworkFlow) -> tuple[str, ...]:
        return self._keys(event) if self.candidate(event) else ()

    def match(self, event: NetworkFlow, ctx: Context) -> bool:
        if not self.candidate(event):
            return False
        seen_key, counter = self._keys(event)
        if not ctx.state.seen(seen_key):
            ctx.state.remember(seen_key, WINDOW_TTL_S)
            ctx.state.add(counter, 1, WINDOW_TTL_S)
        return ctx.state.count(counter) >= self.threshold

    def dedup_key(self, event: NetworkFlow) -> str:
        return self.group(event)

    def action(self, event: NetworkFlow, ctx: Context) -> dict[str, Any] | None:
        return connection_action(event)


def ip_hit_category(e: NetworkFlow, ctx: Context) -> tuple[str, bool] | None:
    """(category, custom) of the remote address's threat-list entry, or None."""
    rip, _ = remote(e)
    hit = ctx.intel.match_ip(rip) if rip else None
    return None if hit is None else (hit.indicator.category, hit.indicator.custom)


def remote_listed(event: NetworkFlow, ctx: Context) -> bool:
    """Shared gate of the EC2 threat-list flow types: the remote address is on some list."""
    return ip_hit_category(event, ctx) is not None


class ThreatListFlow(Detection):
    """A flow the instance opened to an address on one of AWS's (not a customer's) threat lists of
    ``category``; customer lists raise UnauthorizedAccess:EC2/MaliciousIPCaller.Custom instead."""

    category: ClassVar[str]
    kinds = FLOW
    gate = remote_listed

    def match(self, event: NetworkFlow, ctx: Context) -> bool:
        if not local_initiated(event):
            return False
        return ip_hit_category(event, ctx) == (self.category, False)

    def dedup_key(self, event: NetworkFlow) -> str:
        return remote(event)[0]

    def threat_intel(self, event: NetworkFlow, ctx: Context) -> list[dict[str, Any]]:
        from vigil.detections._common import evidence

        return evidence(ctx.intel.match_ip(remote(event)[0]))

    def action(self, event: NetworkFlow, ctx: Context) -> dict[str, Any] | None:
        return connection_action(event)


class ThreatListResolver(ThreatListDns):
    """A Resolver-logged query for a domain on one of AWS's threat lists of ``category``; customer
    lists raise Impact:EC2/MaliciousDomainRequest.Custom instead."""

    kinds = RESOLVER

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        hit = ctx.intel.match_domain(event.query.hostname)
        return hit is not None and hit.indicator.category == self.category and not hit.indicator.custom


def aws_intel(category: str, *values: str) -> Intel:
    """The built-in set plus ``values`` as an AWS-curated (not customer) list of ``category``."""
    intel = builtin_intel()
    from vigil.intel.formats import parse_txt

    intel.extend(
        Indicator(i.value, category, "ExampleAwsList", "", False)
        for i in parse_txt(
            "\n".join(values), name="ExampleAwsList", category=category, custom=False
        ).indicators
    )
    return intel


ATTEMPTS: Final = 20  # connections to the service port from one host (or to one host) per window


class BruteForce(DistinctInWindow):
    """Many connections between the instance and one remote host on a login ``ports``: inbound,
    the instance is the TARGET (Low); outbound, it is the ACTOR attacking someone else (High).
    Each connection is counted once, by its client port."""

    ports: ClassVar[frozenset[int]]
    threshold = ATTEMPTS

    def candidate(self, e: NetworkFlow) -> bool:
        if e.protocol_num != 6 or e.action == "REJECT":
            return False
        if e.direction == "Inbound":
            return remote_initiated(e) and e.dst_endpoint.port in self.ports
        return local_initiated(e) and e.dst_endpoint.port in self.ports

    def group(self, e: NetworkFlow) -> str:
        return f"{e.direction}|{remote(e)[0]}"

    def member(self, e: NetworkFlow) -> str:
        return str(e.src_endpoint.port)

    def resource_role(self, event: NetworkFlow) -> Any:
        return "TARGET" if event.direction == "Inbound" else "ACTOR"

    def severity(self, event: NetworkFlow) -> float:
        return 2.0 if event.direction == "Inbound" else 8.0


def attempts(
    port: int, n: int, *, inbound: bool = True, attacker: str = "198.51.100.23"
) -> tuple[NetworkFlow, ...]:
    """``n`` login attempts (short TCP connections) to ``port``, from ``attacker`` or to it."""
    from vigil import sample as s

    if inbound:
        return tuple(
            s.flow(attacker, 41000 + i, s.LOCAL_IP, port, packets=12, nbytes=2900, t=i * 1_000_000_000)
            for i in range(n)
        )
    return tuple(
        s.flow(s.LOCAL_IP, 41000 + i, attacker, port, packets=12, nbytes=2900, t=i * 1_000_000_000)
        for i in range(n)
    )


FLOOD_PACKETS: Final = 30_000  # packets to one public host within a minute (500/s): a flood
FLOOD_RECORD_MIN: Final = 1_000  # a record below this many packets is no part of a flood (saves state writes)
FLOOD_WINDOW_NS: Final = 60 * 1_000_000_000
SMALL_PACKET: Final = 120  # bytes: a TCP flood's packets are bare SYNs/ACKs; bulk data is ~1,400
# TCP-only service ports: UDP there is a flood, not a protocol. Not 80, 443 or 3389: UDP is a
# transport of theirs too (HTTP/3 and QUIC on 443, RDP's UDP transport on 3389), and GuardDuty's
# own tester floods UDP port 80 expecting DenialOfService.Udp (recorded: tester_dos_udp.*).
TCP_SERVICE_PORTS: Final = frozenset({21, 22, 23, 25, 110, 143, 445, 993, 995, 1433, 3306, 5432, 8080})


class DenialOfService(Detection):
    """Outbound traffic of one ``flood`` class to one public host: ``FLOOD_PACKETS`` within a
    minute, summed over flow records that each carry at least ``record_min`` packets
    (``FLOOD_RECORD_MIN`` unless the subtype says otherwise: a flood from a new source port per
    packet is thousands of one- or two-packet records, see DenialOfService.Dns)."""

    stateful = True
    kinds = FLOW
    record_min: ClassVar[int] = FLOOD_RECORD_MIN

    def flood(self, e: NetworkFlow) -> bool:
        """Whether this record is of the subclass's traffic class (the subtype's protocol/port rule)."""
        raise NotImplementedError

    def candidate(self, e: NetworkFlow) -> bool:
        return (
            e.direction == "Outbound"
            and e.packets >= self.record_min
            and external(e.dst_endpoint.ip)
            and self.flood(e)
        )

    def _key(self, e: NetworkFlow) -> str:
        t = self.meta.type.rsplit(".", 1)[-1]
        return f"ec2dos{t}|{e.device.instance_uid}|{e.dst_endpoint.ip}|{e.time // FLOOD_WINDOW_NS}"

    def state_keys(self, event: NetworkFlow) -> tuple[str, ...]:
        return (self._key(event),) if self.candidate(event) else ()

    def match(self, event: NetworkFlow, ctx: Context) -> bool:
        if not self.candidate(event):
            return False
        key = self._key(event)
        ctx.state.add(key, event.packets, 180)
        return ctx.state.count(key) >= FLOOD_PACKETS

    def dedup_key(self, event: NetworkFlow) -> str:
        return event.dst_endpoint.ip

    def action(self, event: NetworkFlow, ctx: Context) -> dict[str, Any] | None:
        return connection_action(event, direction="OUTBOUND")


def flood_records(
    proto: int,
    port: int,
    *,
    packets: int = 16_000,
    records: int = 2,
    dst: str = "203.0.113.80",
    size: int = 512,
    step_ns: int = 1_000_000_000,
) -> tuple[NetworkFlow, ...]:
    from vigil import sample as s

    return tuple(
        s.flow(
            s.LOCAL_IP,
            33000 + i,
            dst,
            port,
            proto=proto,
            packets=packets,
            nbytes=packets * size,
            t=i * step_ns,
        )
        for i in range(records)
    )


def custom_ip_hit(e: NetworkFlow, ctx: Context) -> bool:
    hit = ip_hit_category(e, ctx)
    return hit is not None and hit[1]


# --- PortProbeUnprotectedPort / PortProbeEMRUnprotectedPort ---------------------------------------
PROBERS: Final = 5  # distinct public hosts probing one open local port within the window
OPEN_MIN_PACKETS: Final = 2  # a remote's half of a handshake that got an answer: the port is open
NEVER_PROBED_PORTS: Final = frozenset({80, 443})  # GuardDuty: never for 80/443 (meant to be public)
# Ports of EMR's web UIs and services (YARN ResourceManager/NodeManager, HDFS NameNode, Spark
# history, Livy, Hue, Zeppelin, HBase, Presto/Trino coordinator)
EMR_PORTS: Final = frozenset({8088, 8042, 50070, 9870, 18080, 8998, 8888, 8890, 16010, 8889, 20888})


class PortProbe(DistinctInWindow):
    """Known scanners find open ports: ``PROBERS`` distinct public hosts each opened a short
    connection (2 to ``PROBE_PACKETS`` packets, ACCEPTed: no security group, network ACL or host
    firewall dropped it) to one local port within ten minutes. GuardDuty matches the probers
    against its list of known scanners; we count distinct probers instead, which ordinary clients of
    a private service do not produce (their connections carry a conversation: more packets)."""

    threshold = PROBERS
    ports_of_interest: ClassVar[frozenset[int] | None] = None  # None = every port but the excluded ones
    excluded: ClassVar[frozenset[int]] = NEVER_PROBED_PORTS

    def candidate(self, e: NetworkFlow) -> bool:
        if e.action != "ACCEPT" or e.protocol_num != 6 or not remote_initiated(e):
            return False
        if not OPEN_MIN_PACKETS <= e.packets <= PROBE_PACKETS or not external(remote(e)[0]):
            return False
        port = e.dst_endpoint.port
        if self.ports_of_interest is not None:
            return port in self.ports_of_interest
        return port not in self.excluded

    def group(self, e: NetworkFlow) -> str:
        return str(e.dst_endpoint.port)

    def member(self, e: NetworkFlow) -> str:
        return remote(e)[0]

    def resource_role(self, event: NetworkFlow) -> Any:
        return "TARGET"

    def action(self, event: NetworkFlow, ctx: Context) -> dict[str, Any] | None:
        return port_probe_action(event)


def probes(port: int, n: int, *, packets: int = 3, action: str = "ACCEPT") -> tuple[NetworkFlow, ...]:
    """``n`` public hosts each opening one short connection to local ``port``."""
    from vigil import sample as s

    return tuple(
        s.flow(f"198.51.100.{10 + i}", 50000 + i, s.LOCAL_IP, port, packets=packets, action=action, t=i)
        for i in range(n)
    )


# --- per-instance baselines over flow logs ------------------------------------------------------
DAY_NS: Final = 86_400 * 1_000_000_000
BASELINE_TTL_S: Final = 30 * 86_400  # a baseline entry is forgotten after 30 days without use
ACTIVE_TTL_S: Final = 3 * 86_400


@functools.lru_cache(maxsize=16_384)
def _active_keys(instance: str, day: int) -> tuple[str, str]:
    return f"ec2active|{instance}|{day}", f"ec2active|{instance}|{day - 1}"


def active_keys(e: Any) -> tuple[str, str]:
    """(today's, yesterday's) activity key of the event's instance."""
    return _active_keys(e.device.instance_uid, int(e.time) // DAY_NS)


def sends_to_public(e: NetworkFlow, ctx: Context | None = None) -> bool:
    """Shared gate of the baseline types: an accepted outbound record to a public address (every
    one of their candidates is one; the rest of the flow records never reach them)."""
    return e.action == "ACCEPT" and e.direction == "Outbound" and external(e.dst_endpoint.ip)


def armed(e: Any, ctx: Context) -> bool:
    """Records that the instance sent traffic to a public host today and says whether it did
    yesterday (UTC): a baseline rule judges only instances whose baseline spans at least the
    previous day (its learning period), so a new instance's first day never looks unusual."""
    today, yesterday = active_keys(e)
    if not ctx.state.seen(today):
        ctx.state.remember(today, ACTIVE_TTL_S)
    return ctx.state.seen(yesterday)


class FlowBaseline(Detection):
    """Fires the first time an armed instance (``armed``) shows a ``candidate`` flow whose
    ``baseline_key`` (e.g. the remote port, the resolver) is not in its baseline; every candidate
    is added to the baseline, during learning too, so it fires once per new value."""

    stateful = True
    kinds = FLOW
    gate = sends_to_public
    prefix: ClassVar[str]

    def candidate(self, e: NetworkFlow) -> bool:
        raise NotImplementedError

    def value(self, e: NetworkFlow) -> str:
        raise NotImplementedError

    def _key(self, e: NetworkFlow) -> str:
        return f"{self.prefix}|{e.device.instance_uid}|{self.value(e)}"

    def state_keys(self, event: NetworkFlow) -> tuple[str, ...]:
        if not sends_to_public(event):
            return ()
        return (*active_keys(event), self._key(event)) if self.candidate(event) else active_keys(event)

    def match(self, event: NetworkFlow, ctx: Context) -> bool:
        if not sends_to_public(event):
            return False
        is_armed = armed(event, ctx)
        if not self.candidate(event):
            return False
        key = self._key(event)
        if ctx.state.seen(key):
            return False
        ctx.state.remember(key, BASELINE_TTL_S)
        return is_armed

    def dedup_key(self, event: NetworkFlow) -> str:
        return self.value(event)

    def action(self, event: NetworkFlow, ctx: Context) -> dict[str, Any] | None:
        return connection_action(event)


def outbound(e: NetworkFlow) -> bool:
    """An accepted connection the instance opened to a public address."""
    return e.action == "ACCEPT" and local_initiated(e) and external(e.dst_endpoint.ip)


def yesterday_then(*events: NetworkFlow) -> tuple[NetworkFlow, ...]:
    """A day of ordinary baseline traffic (HTTPS to one host, the day before), then ``events``."""
    from vigil import sample as s

    return (s.flow(s.LOCAL_IP, 40100, "203.0.113.10", 443, packets=20, t=-DAY_NS), *events)


# Well-known public DNS-over-HTTPS / DNS-over-TLS resolvers' anycast addresses (the providers'
# published service addresses): DoH to one of them is DNS that bypasses the VPC's Resolver.
PUBLIC_RESOLVERS: Final = frozenset(
    {
        "1.1.1.1", "1.0.0.1", "1.1.1.2", "1.0.0.2", "1.1.1.3", "1.0.0.3",  # Cloudflare
        "8.8.8.8", "8.8.4.4",  # Google
        "9.9.9.9", "149.112.112.112", "9.9.9.10", "149.112.112.10", "9.9.9.11",  # Quad9
        "208.67.222.222", "208.67.220.220",  # OpenDNS
        "94.140.14.14", "94.140.15.15",  # AdGuard
        "185.228.168.9", "185.228.169.9",  # CleanBrowsing
        "76.76.2.0", "76.76.10.0",  # Control D
        "194.242.2.2",  # Mullvad
        "45.90.28.0", "45.90.30.0",  # NextDNS
        "2606:4700:4700::1111", "2606:4700:4700::1001", "2001:4860:4860::8888", "2001:4860:4860::8844",
        "2620:fe::fe", "2620:fe::9",
    }
)  # fmt: skip


# --- InstanceCredentialExfiltration.OutsideAWS / .InsideAWS -------------------------------------
API: Final = frozenset({"api_call"})
ICE_LEARN_HOURS: Final = 1  # the clock hour of the first call and this many after it are learning
ICE_TTL_S: Final = 30 * 86_400
HOUR_NS: Final = 3600 * 1_000_000_000


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple[Any, ...]:
    import ipaddress

    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def in_ranges(ip: str, cidrs: tuple[str, ...]) -> bool:
    import ipaddress

    if not cidrs:
        return False
    addr = ipaddress.ip_address(ip)
    return any(addr.version == n.version and addr in n for n in _networks(cidrs))


def inside_aws(e: ApiActivity, ctx: Context) -> bool:
    """Whether the call came from inside AWS: through a VPC endpoint, from a private address (a
    VPC), or from an address in ``settings["aws_ip_ranges"]`` (AWS's published ip-ranges.json
    prefixes, as CIDR strings, when the deployment supplies them)."""
    if e.vpc_endpoint_uid or is_internal(e.src_ip):
        return True
    return in_ranges(e.src_ip, tuple(ctx.settings.get("aws_ip_ranges", ())))


def instance_call(e: ApiActivity) -> bool:
    """A call with an instance role's credentials from a network address (AWS services acting on
    the role's behalf put their own name, e.g. ``ec2.amazonaws.com``, in sourceIPAddress)."""
    return e.instance_credentials and bool(e.device.instance_uid) and _is_ip(e.src_ip)


def ice_keys(e: ApiActivity) -> tuple[str, str, str, str]:
    inst = e.device.instance_uid
    hour = int(e.time) // HOUR_NS
    return (
        f"ec2ice|{inst}|home",
        f"ec2ice|{inst}|learn|{hour}",
        f"ec2ice|{inst}|learn|{hour - ICE_LEARN_HOURS}",
        f"ec2ice|{inst}|addr|{e.src_ip}",
    )


class InstanceCredentialExfiltration(Detection):
    """An instance role's session used from an address that is not one of the instance's own.

    What the detection can know from CloudTrail alone: the session names its instance (the session
    name is the instance id) and each call's source address. The instance's own addresses (its
    public IP or Elastic IP, its NAT gateway's addresses, its private address through a VPC
    endpoint) are learned: every address the session is used from during the learning window (the
    clock hour of the instance's first call and the next one) is the instance's, and after it an
    address seen for the first time fires once and joins the baseline (GuardDuty: "learns recurring
    remote hosts"). Addresses on a trusted IP list never fire (put NAT gateway EIPs there).
    ``inside`` says which of the two types this is (``inside_aws``)."""

    stateful = True
    kinds = API
    inside: ClassVar[bool]

    def state_keys(self, event: ApiActivity) -> tuple[str, ...]:
        return ice_keys(event) if instance_call(event) else ()

    def match(self, event: ApiActivity, ctx: Context) -> bool:
        if not instance_call(event):
            return False
        home, learn_now, learn_before, addr = ice_keys(event)
        if not ctx.state.seen(home):  # the instance's first call (either type records it): learning starts
            ctx.state.remember(home, ICE_TTL_S)
            ctx.state.remember(learn_now, 3 * 3600)
        if inside_aws(event, ctx) != self.inside or ctx.state.seen(addr):
            return False
        ctx.state.remember(addr, ICE_TTL_S)
        learning = ctx.state.seen(learn_now) or ctx.state.seen(learn_before)
        return not learning and not ctx.intel.is_trusted_ip(event.src_ip)

    def dedup_key(self, event: ApiActivity) -> str:
        return event.src_ip


def credential_use(*calls: tuple[str, int], vpc_endpoint: str = "") -> tuple[ApiActivity, ...]:
    """The instance's own call at first boot, then ``calls`` as (source address, seconds later)."""
    from vigil import sample as s

    first = s.api_call("203.0.113.5", "GetCallerIdentity", service="sts.amazonaws.com")
    return (first, *(s.api_call(ip, t=sec * 1_000_000_000, vpc_endpoint=vpc_endpoint) for ip, sec in calls))
