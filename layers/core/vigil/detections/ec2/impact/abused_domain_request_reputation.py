"""Impact:EC2/AbusedDomainRequest.Reputation: the instance queried a low-reputation name under a
commonly abused zone (Route 53 Resolver query logs).

The runtime type's rule (dynamic-DNS, free-subdomain and tunnel providers and abused free TLDs of
AWS's lists, the providers' own hosts excepted), on AWS's lists only: a customer's entry raises
Impact:EC2/MaliciousDomainRequest.Custom.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import domain_listed
from vigil.detections.ec2._common import RESOLVER
from vigil.detections.impact import abused_domain_request_reputation as runtime
from vigil.events import DnsActivity

_RUNTIME = runtime.AbusedDomainRequestReputation()  # the runtime type's rule, reused on Resolver records


class AbusedDomainRequestReputation(Detection):
    kinds = RESOLVER
    gate = domain_listed  # the runtime type's shared gate
    meta = Meta(
        type="Impact:EC2/AbusedDomainRequest.Reputation",
        severity=severity.MEDIUM,
        title="The instance is querying a low-reputation domain under a commonly abused zone",
        description=(
            "The instance looked up a name under a dynamic-DNS, free-subdomain or tunnel provider, or an abused free "
            "TLD (Route 53 Resolver query logs): zones malware favours for command-and-control and phishing."
        ),
        mitre=("T1568", "T1583.001"),
        runbook=(
            "Check what the name resolves to and whether a workload on the instance should use it; if not, find the "
            "querying process and block the name at the Resolver DNS Firewall."
        ),
        false_positives=("Home labs and demos exposed through tunnel or dynamic-DNS providers.",),
        references=("https://attack.mitre.org/techniques/T1568/",),
    )

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        hit = ctx.intel.match_domain(event.query.hostname)
        return hit is not None and not hit.indicator.custom and _RUNTIME.match(event, ctx)

    def dedup_key(self, event: DnsActivity) -> str:
        return _RUNTIME.dedup_key(event)

    def threat_intel(self, event: DnsActivity, ctx: Context) -> list[dict[str, Any]]:
        return _RUNTIME.threat_intel(event, ctx)

    fires: ClassVar = (
        Example(
            "GuardDuty's test domain (built-in)", (s.resolver_query("abused-rep.guarddutyc2activityb.com"),)
        ),
        Example("a dynamic-DNS host", (s.resolver_query("x7-update.duckdns.org", "198.51.100.30"),)),
    )
    near_misses: ClassVar = (
        Example("the DDNS provider's own update endpoint", (s.resolver_query("www.duckdns.org"),)),
        Example("an ordinary domain", (s.resolver_query("www.example.com"),)),
    )
