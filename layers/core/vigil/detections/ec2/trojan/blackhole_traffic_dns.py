"""Trojan:EC2/BlackholeTraffic!DNS: the instance queried a domain redirected to a black hole (Route 53 Resolver query logs).

The name is on one of AWS's threat lists of category ``Blackhole`` (the built-in set, with
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

_LISTS = aws_intel(ti.BLACKHOLE, "sink.badexample.net")


class BlackholeTrafficDns(ThreatListResolver):
    category = ti.BLACKHOLE
    meta = Meta(
        type="Trojan:EC2/BlackholeTraffic!DNS",
        severity=severity.MEDIUM,
        title="The instance is querying a domain that is redirected to a black hole",
        description=(
            "The instance looked up a domain on a threat list of black-holed (sinkholed) domains: malware on it is looking for a command-and-control server that has been taken down."
        ),
        mitre=("T1071.004",),
        runbook=(
            "Isolate the instance and find the process resolving the domain; the malware is still there even if its server is not."
        ),
        false_positives=("Security tools resolving sinkholed domains on purpose.",),
        references=("https://attack.mitre.org/techniques/T1071/004/",),
    )

    fires: ClassVar = (
        Example("a listed domain", (s.resolver_query("sink.badexample.net", "203.0.113.40"),), intel=_LISTS),
        Example(
            "a subdomain of a listed domain", (s.resolver_query("www.sink.badexample.net"),), intel=_LISTS
        ),
    )
    near_misses: ClassVar = (
        Example("a look-alike that is not listed", (s.resolver_query("sinks.example.net"),), intel=_LISTS),
        Example(
            "the domain only on a customer list (MaliciousDomainRequest.Custom's)",
            (s.resolver_query("sink.badexample.net"),),
            intel=example_intel(blackhole="sink.badexample.net"),
            also_fires=frozenset({"Impact:EC2/MaliciousDomainRequest.Custom"}),
        ),
    )
