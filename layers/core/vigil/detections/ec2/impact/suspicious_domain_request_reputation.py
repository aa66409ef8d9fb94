"""Impact:EC2/SuspiciousDomainRequest.Reputation: the instance queried a suspicious, half-random
domain (Route 53 Resolver query logs): the runtime type's rule (DGA-likeness of the registered
label in [0.75, 0.9) for an unlisted, untrusted, non-infrastructure name; or a list's verdict)."""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import example_intel
from vigil.detections._reputation import reputation_candidate
from vigil.detections.ec2._common import RESOLVER
from vigil.detections.impact import suspicious_domain_request_reputation as runtime
from vigil.events import DnsActivity

_RUNTIME = runtime.SuspiciousDomainRequestReputation()  # the runtime type's rule, reused on Resolver records


class SuspiciousDomainRequestReputation(Detection):
    kinds = RESOLVER
    gate = reputation_candidate  # the runtime type's shared gate
    meta = Meta(
        type="Impact:EC2/SuspiciousDomainRequest.Reputation",
        severity=severity.LOW,
        title="The instance is querying a suspicious low-reputation domain",
        description=(
            "The instance looked up an unlisted domain that looks partly machine-made (Route 53 Resolver query logs): "
            "new or rare names like this are often malware infrastructure."
        ),
        mitre=("T1568.002",),
        runbook="Check the name's age and owner; if nothing on the instance should use it, find the querying process.",
        false_positives=("Unusual brand names and abbreviations; add them to a trusted list.",),
        references=("https://attack.mitre.org/techniques/T1568/002/",),
    )

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        return _RUNTIME.match(event, ctx)

    def dedup_key(self, event: DnsActivity) -> str:
        return _RUNTIME.dedup_key(event)

    fires: ClassVar = (
        Example(
            "GuardDuty's test domain (built-in)",
            (s.resolver_query("suspicious-rep.guarddutyc2activityb.com"),),
        ),
        Example("a half-random domain", (s.resolver_query("www.kdevtmpfsiqxz.com"),)),
    )
    near_misses: ClassVar = (
        Example("a product name", (s.resolver_query("www.kubernetes.io"),)),
        Example(
            "the half-random domain on a trusted list",
            (s.resolver_query("www.kdevtmpfsiqxz.com"),),
            intel=example_intel(trusted="kdevtmpfsiqxz.com"),
        ),
    )
