"""Impact:EC2/MaliciousDomainRequest.Custom: the instance queried a domain on a customer's threat
list (Route 53 Resolver query logs).

GuardDuty raises this type, not the category types, for entries of lists the customer uploaded
(``Indicator.custom``), whatever category the list was given.
"""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Example, Meta
from vigil.detections._common import ThreatListDns, example_intel
from vigil.detections.ec2._common import RESOLVER
from vigil.events import DnsActivity

_LISTS = example_intel(c2="bad.customer-example.net", phishing="login.customer-example.org")


class MaliciousDomainRequestCustom(ThreatListDns):
    kinds = RESOLVER
    category = ""
    meta = Meta(
        type="Impact:EC2/MaliciousDomainRequest.Custom",
        severity=severity.MEDIUM,
        title="The instance is querying a domain on a custom threat list",
        description=(
            "The instance looked up a domain on a threat list you uploaded (Route 53 Resolver query logs)."
        ),
        mitre=("T1071.004",),
        runbook=(
            "The list and entry are in service.evidence. Find the process resolving it on the instance, block the "
            "domain at the Resolver DNS Firewall and isolate the instance if it is malware."
        ),
        false_positives=("Stale entries in the customer list.",),
        references=("https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_upload-lists.html",),
    )

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        hit = ctx.intel.match_domain(event.query.hostname)
        return hit is not None and hit.indicator.custom

    fires: ClassVar = (
        Example("a domain on a customer list", (s.resolver_query("bad.customer-example.net"),), intel=_LISTS),
        Example(
            "a subdomain of an entry of another customer list",
            (s.resolver_query("www.login.customer-example.org"),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example("an unlisted domain", (s.resolver_query("customer-example.net"),), intel=_LISTS),
        Example(
            "a listed domain that is also trusted (trusted wins)",
            (s.resolver_query("bad.customer-example.net"),),
            intel=example_intel(c2="bad.customer-example.net", trusted="customer-example.net"),
        ),
    )
