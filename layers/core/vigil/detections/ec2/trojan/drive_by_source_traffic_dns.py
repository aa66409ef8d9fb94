"""Trojan:EC2/DriveBySourceTraffic!DNS: the instance queried a domain known to serve drive-by downloads (Route 53 Resolver query logs).

The name is on one of AWS's threat lists of category ``DriveBy`` (the built-in set, with
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

_LISTS = aws_intel(ti.DRIVE_BY, "exploitkit.badexample.net")


class DriveBySourceTrafficDns(ThreatListResolver):
    category = ti.DRIVE_BY
    meta = Meta(
        type="Trojan:EC2/DriveBySourceTraffic!DNS",
        severity=severity.HIGH,
        title="The instance is querying a domain that is a known source of drive-by downloads",
        description=(
            "The instance looked up a domain on a threat list of drive-by download sources: a browser or client on it may have fetched malware."
        ),
        mitre=("T1189",),
        runbook=(
            "Find what on the instance browses the web, check it for the downloaded payload, and isolate it if anything ran."
        ),
        false_positives=("Web crawlers and scanners fetching arbitrary URLs.",),
        references=("https://attack.mitre.org/techniques/T1189/",),
    )

    fires: ClassVar = (
        Example(
            "a listed domain", (s.resolver_query("exploitkit.badexample.net", "203.0.113.40"),), intel=_LISTS
        ),
        Example(
            "a subdomain of a listed domain",
            (s.resolver_query("www.exploitkit.badexample.net"),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a look-alike that is not listed", (s.resolver_query("exploitkits.example.net"),), intel=_LISTS
        ),
        Example(
            "the domain only on a customer list (MaliciousDomainRequest.Custom's)",
            (s.resolver_query("exploitkit.badexample.net"),),
            intel=example_intel(driveby="exploitkit.badexample.net"),
            also_fires=frozenset({"Impact:EC2/MaliciousDomainRequest.Custom"}),
        ),
    )
