"""Trojan:EC2/DropPoint!DNS: the instance queried a domain known to collect stolen data (Route 53 Resolver query logs).

The name is on one of AWS's threat lists of category ``DropPoint`` (the built-in set, with
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

_LISTS = aws_intel(ti.DROP_POINT, "drop.badexample.net")


class DropPointDns(ThreatListResolver):
    category = ti.DROP_POINT
    meta = Meta(
        type="Trojan:EC2/DropPoint!DNS",
        severity=severity.MEDIUM,
        title="The instance is querying a domain of a drop point for stolen data",
        description=(
            "The instance looked up a domain on a threat list of drop points: servers that collect credentials and data stolen by malware."
        ),
        mitre=("T1041",),
        runbook=(
            "Assume data left the instance: rotate the secrets it holds, isolate it and hunt for the malware."
        ),
        false_positives=("Lists that include shared hosting domains.",),
        references=("https://attack.mitre.org/techniques/T1041/",),
    )

    fires: ClassVar = (
        Example("a listed domain", (s.resolver_query("drop.badexample.net", "203.0.113.40"),), intel=_LISTS),
        Example(
            "a subdomain of a listed domain", (s.resolver_query("www.drop.badexample.net"),), intel=_LISTS
        ),
    )
    near_misses: ClassVar = (
        Example("a look-alike that is not listed", (s.resolver_query("drops.example.net"),), intel=_LISTS),
        Example(
            "the domain only on a customer list (MaliciousDomainRequest.Custom's)",
            (s.resolver_query("drop.badexample.net"),),
            intel=example_intel(droppoint="drop.badexample.net"),
            also_fires=frozenset({"Impact:EC2/MaliciousDomainRequest.Custom"}),
        ),
    )
