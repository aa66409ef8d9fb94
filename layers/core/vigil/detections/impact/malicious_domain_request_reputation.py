"""Impact:Runtime/MaliciousDomainRequest.Reputation: a domain that looks machine-generated or carries a DNS tunnel.

Two heuristics stand in for GuardDuty's reputation model (docs/detections.md says what each
catches and misses): a DGA-likeness score of the registered label at or above 0.9, and DNS
tunnelling confirmed by volume: at least 20 long high-entropy subdomain queries to one registered
domain within 10 minutes (counted per instance in the State table).
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._reputation import (
    MALICIOUS_DGA,
    TUNNEL_QUERIES,
    TUNNEL_TTL_S,
    listed_reputation,
    reputation_candidate,
    tunnel_key,
    unlisted_profile,
)
from vigil.events import DnsActivity
from vigil.intel import heuristics as h


def _tunnel_burst(n: int, domain: str = "t.qx-relay.net") -> tuple[Any, ...]:
    import hashlib

    return tuple(
        s.dns(f"{hashlib.sha256(str(i).encode()).hexdigest()[:48]}.{domain}", t=i * 1_000_000_000)
        for i in range(n)
    )


class MaliciousDomainRequestReputation(Detection):
    meta = Meta(
        type="Impact:Runtime/MaliciousDomainRequest.Reputation",
        severity=severity.HIGH,
        title="A process queried a domain with malicious characteristics",
        description=(
            "A process looked up an unlisted domain that looks machine-generated (a domain generation algorithm), or "
            "sent a burst of queries whose subdomains carry encoded data (DNS tunnelling or exfiltration)."
        ),
        mitre=("T1568.002", "T1071.004", "T1048.003"),
        runbook=(
            "Find the querying process (runtimeDetails.process). For a DGA-like name, expect many NXDOMAIN retries; for a "
            "tunnel, look at the data volume to the registered domain. Isolate the instance and hunt for the malware."
        ),
        false_positives=(
            "Services that encode ids in names under their own zone (add the zone to a trusted list).",
            "Anti-virus and reputation lookups not yet in the built-in infrastructure set.",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1568/002/",
            "https://attack.mitre.org/techniques/T1071/004/",
        ),
    )
    kinds = frozenset({"dns_query"})
    gate = reputation_candidate  # match needs unlisted_profile (shared by the reputation types)
    stateful = True

    def state_keys(self, event: DnsActivity) -> tuple[str, ...]:
        p = h.profile(event.query.hostname)
        return (tunnel_key(event, p.registered),) if p.tunnel else ()

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        if listed_reputation(event, ctx):
            return listed_reputation(event, ctx) == ti.MALICIOUS_REPUTATION
        p = unlisted_profile(event, ctx)
        if p is None:
            return False
        if p.dga >= MALICIOUS_DGA:
            return True
        if not p.tunnel:
            return False
        key = tunnel_key(event, p.registered)
        ctx.state.add(key, event.count, TUNNEL_TTL_S)  # a query the agent folded repeats into: all of them
        return ctx.state.count(key) >= TUNNEL_QUERIES

    def dedup_key(self, event: DnsActivity) -> str:
        return h.registered_domain(event.query.hostname)

    fires: ClassVar = (
        Example(
            "GuardDuty's test domain (built-in)",
            (s.dns("malicious-rep.guarddutyc2activityb.com", process=s.proc("/usr/bin/curl")),),
        ),
        Example(
            "a DGA-like domain", (s.dns("xjwqkzhvbnrtp.com", rcode="NXDOMAIN", process=s.proc("/tmp/.m/m")),)
        ),
        Example("a DNS tunnel: 25 encoded queries in 25 s", _tunnel_burst(25)),
        Example(
            "a DNS tunnel repeating one query: the agent folded 24 repeats into it (wire repeats)",
            (msgspec.structs.replace(_tunnel_burst(1)[0], count=25, end_time=24_000_000_000),),
        ),
    )
    near_misses: ClassVar = (
        Example("a few encoded queries (below the volume)", _tunnel_burst(5)),
        Example(
            "one encoded query the agent folded 4 repeats into (below the volume)",
            (msgspec.structs.replace(_tunnel_burst(1)[0], count=5, end_time=4_000_000_000),),
        ),
        Example("machine-made names under cloud infrastructure", (s.dns("d3kqzx8v7wjq2h.cloudfront.net"),)),
        Example("a word-like domain", (s.dns("grafana-dashboards.example.com"),)),
    )
