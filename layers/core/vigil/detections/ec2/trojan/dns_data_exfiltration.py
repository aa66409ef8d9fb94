"""Trojan:EC2/DNSDataExfiltration: data encoded in the subdomains of a burst of DNS queries.

Reads Route 53 Resolver query logs. A query counts when a subdomain label looks like encoded data
(``heuristics.tunnel_label``: long, high entropy, digits mixed in) and the name is neither
infrastructure nor trusted; 20 such queries to one registered domain within ten minutes (counted per
instance in the State table) are exfiltration. A zone on a threat list still counts: the list's
type says who the instance talks to, this one that data is leaving (the amazon-guardduty-tester's
exfiltration check queries 930 encoded names under its C&C test zone and expects this type:
events/sources/recorded/tester_dns_exfiltration.*).
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._reputation import TUNNEL_QUERIES, TUNNEL_TTL_S, TUNNEL_WINDOW_NS
from vigil.detections.ec2._common import RESOLVER
from vigil.events import DnsActivity


def _burst(n: int, domain: str = "t.qx-relay.net", *, length: int = 48) -> tuple[DnsActivity, ...]:
    return tuple(
        s.resolver_query(
            f"{hashlib.sha256(str(i).encode()).hexdigest()[:length]}.{domain}", t=i * 1_000_000_000
        )
        for i in range(n)
    )


class DnsDataExfiltration(Detection):
    stateful = True
    kinds = RESOLVER
    meta = Meta(
        type="Trojan:EC2/DNSDataExfiltration",
        severity=severity.HIGH,
        title="The instance is exfiltrating data through DNS queries",
        description=(
            f"At least {TUNNEL_QUERIES} queries from the instance within ten minutes carried encoded data in the "
            "subdomains of one registered domain (Route 53 Resolver query logs): DNS tunnelling used to move data out."
        ),
        mitre=("T1048.003", "T1071.004"),
        runbook=(
            "The receiving zone is dnsRequestAction.domain's registered domain. Block it at the Resolver DNS Firewall, "
            "isolate the instance and find the process sending the queries."
        ),
        false_positives=(
            "Services that encode ids in names under their own zone (add the zone to a trusted list).",
        ),
        references=("https://attack.mitre.org/techniques/T1048/003/",),
        resource_role="ACTOR",
    )

    def _key(self, e: DnsActivity, registered: str) -> str:
        return f"ec2dnstun|{e.device.instance_uid}|{registered}|{e.time // TUNNEL_WINDOW_NS}"

    def state_keys(self, event: DnsActivity) -> tuple[str, ...]:
        from vigil.intel import heuristics as h

        p = h.profile(event.query.hostname)
        return (self._key(event, p.registered),) if p.tunnel and not p.infra else ()

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        from vigil.intel import heuristics as h

        p = h.profile(event.query.hostname)
        if p.infra or not p.tunnel or ctx.intel.is_trusted_domain(event.query.hostname):
            return False
        key = self._key(event, p.registered)
        ctx.state.add(key, 1, TUNNEL_TTL_S)
        return ctx.state.count(key) >= TUNNEL_QUERIES

    def dedup_key(self, event: DnsActivity) -> str:
        from vigil.intel import heuristics as h

        return h.profile(event.query.hostname).registered

    fires: ClassVar = (
        Example(f"{TUNNEL_QUERIES} hex-encoded subdomain queries to one zone", _burst(TUNNEL_QUERIES)),
        Example(
            "the same burst under a zone on a threat list (the list's type fires too)",
            _burst(TUNNEL_QUERIES, domain="guarddutyc2activityb.com"),
            also_fires=frozenset({"Backdoor:EC2/C&CActivity.B!DNS"}),
        ),
    )
    near_misses: ClassVar = (
        Example("19 such queries", _burst(TUNNEL_QUERIES - 1)),
        Example("short labels (ordinary names)", _burst(TUNNEL_QUERIES, length=8)),
        Example(
            "a CDN's long hashed names (infrastructure)", _burst(TUNNEL_QUERIES, domain="cloudfront.net")
        ),
    )
