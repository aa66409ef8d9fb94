"""Impact:Runtime/SuspiciousDomainRequest.Reputation: a domain that looks somewhat machine-generated.

The lower band of the DGA-likeness score (0.75 to 0.9): names that resemble generated ones but
could be an odd brand or an abbreviation. Low severity, like GuardDuty's.
"""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import example_intel
from vigil.detections._reputation import (
    MALICIOUS_DGA,
    SUSPICIOUS_DGA,
    listed_reputation,
    reputation_candidate,
    unlisted_profile,
)
from vigil.events import DnsActivity
from vigil.intel import heuristics as h


class SuspiciousDomainRequestReputation(Detection):
    meta = Meta(
        type="Impact:Runtime/SuspiciousDomainRequest.Reputation",
        severity=severity.LOW,
        title="A process queried a suspicious low-reputation domain",
        description=(
            "A process looked up an unlisted domain whose name resembles machine-generated ones. On its own this is weak "
            "evidence; it matters next to other findings on the same instance."
        ),
        mitre=("T1568.002",),
        runbook=(
            "Look for other findings on the instance and for repeats of this name; check which process resolved it and "
            "whether the domain is one the workload uses."
        ),
        false_positives=("Unusual brand names and abbreviations; add them to a trusted list.",),
        references=("https://attack.mitre.org/techniques/T1568/002/",),
    )
    kinds = frozenset({"dns_query"})
    gate = reputation_candidate  # match needs unlisted_profile (shared by the reputation types)

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        if listed_reputation(event, ctx):
            return listed_reputation(event, ctx) == ti.SUSPICIOUS_REPUTATION
        p = unlisted_profile(event, ctx)
        return p is not None and SUSPICIOUS_DGA <= p.dga < MALICIOUS_DGA

    def dedup_key(self, event: DnsActivity) -> str:
        return h.registered_domain(event.query.hostname)

    fires: ClassVar = (Example("a half-random domain", (s.dns("www.kdevtmpfsiqxz.com"),)),)
    near_misses: ClassVar = (
        Example("a product name", (s.dns("www.kubernetes.io"),)),
        Example(
            "the same name on the trusted list",
            (s.dns("www.kdevtmpfsiqxz.com"),),
            intel=example_intel(trusted="kdevtmpfsiqxz.com"),
        ),
    )
