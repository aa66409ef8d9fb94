"""One finding per indicator: an EC2 type is not raised for what a runtime finding already carries.

GuardDuty does not charge flow-log analysis for an instance whose runtime agent reports, and the
runtime finding is the better one: it names the process. Vigil keeps the same promise per
indicator (docs/sources.md § One finding per indicator):

- when a runtime finding fires on an agent event (a connection, or a DNS query), the indicator it
  carries is noted in the State table for each EC2 type that would report the same indicator from
  AWS-delivered logs (``COUNTERPARTS``): ``ind|<instance>|<EC2 type>|<indicator>|<UTC day>``;
- an EC2 match whose indicator was noted today or yesterday is *waived* (not raised) when the
  instance is HEALTHY by coverage (``vigil.coverage``: its agent reports); when it is UNHEALTHY
  or has no agent, the EC2 type raises it as before.

Indicator: the remote address of a connection (``NetworkActivity`` from the agent,
``NetworkFlow`` from flow logs), or the registered domain of a query (``DnsActivity`` from the
agent or the Resolver). Only types that report such an indicator have counterparts; the
behavioural EC2 types (Portscan, brute force, DenialOfService, baselines) have none, since no
runtime type reports them, and are never waived.

Pure: no clock; the caller passes the health lookup and the State.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Final

from vigil.engine import Match
from vigil.events import DnsActivity, Event, NetworkActivity, NetworkFlow
from vigil.intel.heuristics import registered_domain
from vigil.state import State

# instance ids -> the ones coverage says are HEALTHY now (vigil_aws.coverage.healthy_instances)
HealthLookup = Callable[[Sequence[str]], Collection[str]]

KEY_TTL_S: Final = 3 * 86400
_DAY_NS: Final = 86400 * 1_000_000_000

_IP_LIST_TYPES: Final = (
    "Backdoor:Runtime/C&CActivity.B",
    "CryptoCurrency:Runtime/BitcoinTool.B",
    "Trojan:Runtime/BlackholeTraffic",
    "Trojan:Runtime/DropPoint",
    "UnauthorizedAccess:Runtime/TorClient",
    "UnauthorizedAccess:Runtime/TorRelay",
)
_DNS_LIST_TYPES: Final = (
    "Backdoor:Runtime/C&CActivity.B!DNS",
    "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
    "Trojan:Runtime/BlackholeTraffic!DNS",
    "Trojan:Runtime/DropPoint!DNS",
    "Trojan:Runtime/DGADomainRequest.C!DNS",
    "Trojan:Runtime/DriveBySourceTraffic!DNS",
    "Trojan:Runtime/PhishingDomainRequest!DNS",
)
_MALICIOUS_REPUTATION: Final = "Impact:Runtime/MaliciousDomainRequest.Reputation"

# EC2 type -> the runtime types whose finding carries the same indicator. Same name first
# (Backdoor:EC2/C&CActivity.B <-> Backdoor:Runtime/C&CActivity.B); a customer list raises a
# runtime category type but the EC2 .Custom type; the runtime reputation type's two heuristics
# (DGA score, tunnel volume) are EC2's DGADomainRequest.B and DNSDataExfiltration.
COUNTERPARTS: Final[Mapping[str, frozenset[str]]] = {
    **{t.replace(":Runtime/", ":EC2/"): frozenset({t}) for t in _IP_LIST_TYPES + _DNS_LIST_TYPES},
    "UnauthorizedAccess:EC2/MetadataDNSRebind": frozenset({"UnauthorizedAccess:Runtime/MetadataDNSRebind"}),
    "Impact:EC2/AbusedDomainRequest.Reputation": frozenset({"Impact:Runtime/AbusedDomainRequest.Reputation"}),
    "Impact:EC2/BitcoinDomainRequest.Reputation": frozenset(
        {"Impact:Runtime/BitcoinDomainRequest.Reputation"}
    ),
    "Impact:EC2/SuspiciousDomainRequest.Reputation": frozenset(
        {"Impact:Runtime/SuspiciousDomainRequest.Reputation"}
    ),
    "Impact:EC2/MaliciousDomainRequest.Reputation": frozenset({_MALICIOUS_REPUTATION}),
    "Trojan:EC2/DGADomainRequest.B": frozenset({_MALICIOUS_REPUTATION}),
    "Trojan:EC2/DNSDataExfiltration": frozenset({_MALICIOUS_REPUTATION}),
    "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom": frozenset(_IP_LIST_TYPES),
    "Impact:EC2/MaliciousDomainRequest.Custom": frozenset(_DNS_LIST_TYPES),
}


def _invert(pairs: Mapping[str, frozenset[str]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for ec2_type, runtime_types in pairs.items():
        for rt in runtime_types:
            out.setdefault(rt, []).append(ec2_type)
    return {rt: tuple(sorted(v)) for rt, v in out.items()}


# runtime type -> the EC2 types it waives
CARRIES: Final[Mapping[str, tuple[str, ...]]] = _invert(COUNTERPARTS)


def indicator(event: Event) -> str:
    """What a connection or query is about, the same from the agent and from AWS's logs: the
    remote address, or ``dns:<registered domain>``; '' for any other event."""
    if isinstance(event, DnsActivity):
        name = event.query.hostname.rstrip(".").lower()
        return f"dns:{registered_domain(name)}" if name else ""
    if isinstance(event, NetworkActivity | NetworkFlow):
        remote = event.src_endpoint if event.direction == "Inbound" else event.dst_endpoint
        return f"ip:{remote.ip.lower()}" if remote.ip else ""
    return ""


def _day(time_ns: int) -> str:
    try:
        return dt.datetime.fromtimestamp(time_ns / 1e9, dt.UTC).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError):
        return "invalid-time"


def key(instance: str, ec2_type: str, ind: str, time_ns: int) -> str:
    return f"ind|{instance}|{ec2_type}|{ind}|{_day(time_ns)}"


def _keys(instance: str, ec2_type: str, ind: str, time_ns: int) -> tuple[str, str]:
    """Today's and yesterday's key (a flow log line arrives minutes after the agent's event)."""
    return key(instance, ec2_type, ind, time_ns), key(instance, ec2_type, ind, time_ns - _DAY_NS)


def note_carried(matches: Iterable[Match], state: State) -> int:
    """Remember the indicator of every runtime match that has EC2 counterparts; returns how many
    keys were noted."""
    n = 0
    for m in matches:
        waives = CARRIES.get(m.detection.meta.type)
        if not waives:
            continue
        ind = indicator(m.event)
        if not ind:
            continue
        for ec2_type in waives:
            state.remember(key(m.event.device.instance_uid, ec2_type, ind, m.event.time), KEY_TTL_S)
            n += 1
    return n


def waive(matches: Sequence[Match], state: State, healthy: HealthLookup | None) -> tuple[list[Match], int]:
    """The matches to raise, and how many EC2 matches were waived because a runtime finding on a
    HEALTHY instance already carries their indicator. Without a health lookup nothing is waived
    (`vigil replay` has no coverage: every source keeps its findings)."""
    if healthy is None:
        return list(matches), 0
    candidates: list[tuple[Match, tuple[str, str]]] = []
    for m in matches:
        if m.detection.meta.type not in COUNTERPARTS:
            continue
        ind = indicator(m.event)
        if ind:
            candidates.append(
                (m, _keys(m.event.device.instance_uid, m.detection.meta.type, ind, m.event.time))
            )
    if not candidates:
        return list(matches), 0
    state.load(k for _, keys in candidates for k in keys)
    carried = [(m, keys) for m, keys in candidates if any(state.seen(k) for k in keys)]
    if not carried:
        return list(matches), 0
    ok = set(healthy(sorted({m.event.device.instance_uid for m, _ in carried})))
    dropped = {id(m) for m, _ in carried if m.event.device.instance_uid in ok}
    return [m for m in matches if id(m) not in dropped], len(dropped)
