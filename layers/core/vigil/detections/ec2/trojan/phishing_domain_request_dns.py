"""Trojan:EC2/PhishingDomainRequest!DNS: the instance queried a phishing domain (Route 53 Resolver query logs).

The name is on one of AWS's threat lists of category ``Phishing`` (the built-in set, with
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

_LISTS = aws_intel(ti.PHISHING, "login-secure.badexample.net")


class PhishingDomainRequestDns(ThreatListResolver):
    category = ti.PHISHING
    meta = Meta(
        type="Trojan:EC2/PhishingDomainRequest!DNS",
        severity=severity.HIGH,
        title="The instance is querying a phishing domain",
        description=(
            "The instance looked up a domain on a threat list of phishing sites: credentials may be entered there, or the instance may host the phishing kit's back end."
        ),
        mitre=("T1566.002",),
        runbook=(
            "Find what on the instance resolves the domain; rotate any credential that may have been entered and block the domain."
        ),
        false_positives=("Mail and web security gateways resolving phishing links to check them.",),
        references=("https://attack.mitre.org/techniques/T1566/002/",),
    )

    fires: ClassVar = (
        Example(
            "a listed domain",
            (s.resolver_query("login-secure.badexample.net", "203.0.113.40"),),
            intel=_LISTS,
        ),
        Example(
            "a subdomain of a listed domain",
            (s.resolver_query("www.login-secure.badexample.net"),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a look-alike that is not listed", (s.resolver_query("login-secure.example.net"),), intel=_LISTS
        ),
        Example(
            "the domain only on a customer list (MaliciousDomainRequest.Custom's)",
            (s.resolver_query("login-secure.badexample.net"),),
            intel=example_intel(phishing="login-secure.badexample.net"),
            also_fires=frozenset({"Impact:EC2/MaliciousDomainRequest.Custom"}),
        ),
    )
