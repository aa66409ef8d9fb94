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

from typing import Any, ClassVar, Final

from vigil.detection import Context, Detection
from vigil.detections._common import ThreatListDns
from vigil.events import DnsActivity, NetworkFlow
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


def external(ip: str) -> bool:
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
TCP_SERVICE_PORTS: Final = frozenset(
    {21, 22, 23, 25, 80, 110, 143, 443, 445, 993, 995, 1433, 3306, 3389, 5432, 8080}
)


class DenialOfService(Detection):
    """Outbound traffic of one ``flood`` class to one public host: ``FLOOD_PACKETS`` within a
    minute, summed over flow records that each carry at least ``FLOOD_RECORD_MIN`` packets."""

    stateful = True
    kinds = FLOW

    def flood(self, e: NetworkFlow) -> bool:
        """Whether this record is of the subclass's traffic class (the subtype's protocol/port rule)."""
        raise NotImplementedError

    def candidate(self, e: NetworkFlow) -> bool:
        return (
            e.direction == "Outbound"
            and e.packets >= FLOOD_RECORD_MIN
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
            t=i * 1_000_000_000,
        )
        for i in range(records)
    )
