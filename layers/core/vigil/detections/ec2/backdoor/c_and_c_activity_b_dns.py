"""Backdoor:EC2/C&CActivity.B!DNS: the instance queried a domain of a known command-and-control server (Route 53 Resolver query logs).

The name is on one of AWS's threat lists of category ``C&C`` (the built-in set, with
GuardDuty's test domain, or a curated feed; a customer's list raises Impact:EC2/
MaliciousDomainRequest.Custom instead).
"""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import example_intel
from vigil.detections.ec2._common import ThreatListResolver, aws_intel

_LISTS = aws_intel(ti.C2, "c2.badexample.net")


class CAndCActivityBDns(ThreatListResolver):
    category = ti.C2
    meta = Meta(
        type="Backdoor:EC2/C&CActivity.B!DNS",
        severity=severity.HIGH,
        title="The instance is querying a domain of a command-and-control server",
        description=(
            "The instance looked up a domain on a threat list of command-and-control servers (Route 53 Resolver query logs): it is likely compromised and looking for its controller."
        ),
        mitre=("T1071.004", "T1568"),
        runbook=(
            "Block the domain at the Resolver DNS Firewall, isolate the instance and hunt for the implant."
        ),
        false_positives=("Security tools resolving indicators on purpose.",),
        references=("https://attack.mitre.org/techniques/T1071/004/",),
    )

    fires: ClassVar = (
        Example("GuardDuty's C&C test domain (built-in)", (s.resolver_query("guarddutyc2activityb.com"),)),
        Example("a listed domain", (s.resolver_query("c2.badexample.net", "203.0.113.40"),), intel=_LISTS),
        Example("a subdomain of a listed domain", (s.resolver_query("www.c2.badexample.net"),), intel=_LISTS),
    )
    near_misses: ClassVar = (
        Example("a look-alike that is not listed", (s.resolver_query("c2.example.net"),), intel=_LISTS),
        Example(
            "the domain only on a customer list (MaliciousDomainRequest.Custom's)",
            (s.resolver_query("c2.badexample.net"),),
            intel=example_intel(c2="c2.badexample.net"),
            also_fires=frozenset({"Impact:EC2/MaliciousDomainRequest.Custom"}),
        ),
    )
