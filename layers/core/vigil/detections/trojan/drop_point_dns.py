"""Trojan:Runtime/DropPoint!DNS: A process queried a domain known to collect stolen data."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListDns, example_intel

_LISTS = example_intel(droppoint="drop.badexample.net")


class DropPointDns(ThreatListDns):
    category = ti.DROP_POINT
    meta = Meta(
        type="Trojan:Runtime/DropPoint!DNS",
        severity=severity.MEDIUM,
        title="A process queried a domain known to collect stolen data",
        description=(
            "A process looked up a domain on a threat list of drop points: servers that collect credentials and data stolen by malware."
        ),
        mitre=("T1041",),
        runbook=(
            "Assume data left the instance: identify the process and what it could read, rotate the secrets the instance holds, isolate it and hunt for the malware."
        ),
        false_positives=("Lists that include shared hosting domains.",),
        references=("https://attack.mitre.org/techniques/T1041/",),
    )

    fires: ClassVar = (
        Example(
            "a listed domain",
            (s.dns("drop.badexample.net", process=s.proc("/usr/bin/python3")),),
            intel=_LISTS,
        ),
        Example("a subdomain of a listed domain", (s.dns("www.drop.badexample.net"),), intel=_LISTS),
    )
    near_misses: ClassVar = (
        Example("a look-alike that is not listed", (s.dns("drops.example.net"),), intel=_LISTS),
    )
