"""Trojan:Runtime/PhishingDomainRequest!DNS: A process queried a phishing domain."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListDns, example_intel

_LISTS = example_intel(phishing="login-aws.badexample.net")


class PhishingDomainRequestDns(ThreatListDns):
    category = ti.PHISHING
    meta = Meta(
        type="Trojan:Runtime/PhishingDomainRequest!DNS",
        severity=severity.HIGH,
        title="A process queried a phishing domain",
        description=(
            "A process looked up a domain on a threat list of phishing sites: the instance may host or relay phishing, or a user on it followed a phishing link."
        ),
        mitre=("T1566.002",),
        runbook=(
            "Find the process and user; check whether the instance serves phishing pages (web roots, new virtual hosts) or sends mail. Take the content down and investigate how it got there."
        ),
        false_positives=("Mail filters and URL scanners resolving phishing domains on purpose.",),
        references=("https://attack.mitre.org/techniques/T1566/002/",),
    )

    fires: ClassVar = (
        Example(
            "a listed domain",
            (s.dns("login-aws.badexample.net", process=s.proc("/usr/bin/python3")),),
            intel=_LISTS,
        ),
        Example("a subdomain of a listed domain", (s.dns("www.login-aws.badexample.net"),), intel=_LISTS),
    )
    near_misses: ClassVar = (
        Example("a look-alike that is not listed", (s.dns("login-aws.example.net"),), intel=_LISTS),
    )
