"""Trojan:Runtime/DriveBySourceTraffic!DNS: A process queried a domain known to serve drive-by downloads."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListDns, example_intel

_LISTS = example_intel(driveby="ek.badexample.net")


class DriveBySourceTrafficDns(ThreatListDns):
    category = ti.DRIVE_BY
    meta = Meta(
        type="Trojan:Runtime/DriveBySourceTraffic!DNS",
        severity=severity.HIGH,
        title="A process queried a domain known to serve drive-by downloads",
        description=(
            "A process looked up a domain on a threat list of drive-by download sources (exploit kits and malicious downloads): the instance may have fetched and run malware."
        ),
        mitre=("T1189",),
        runbook=(
            "Find the process (often a browser, curl or a package build) and what it downloaded; check new files and executions that followed. Rebuild the instance if anything ran."
        ),
        false_positives=("Crawlers and scanners that fetch malicious pages on purpose.",),
        references=("https://attack.mitre.org/techniques/T1189/",),
    )

    fires: ClassVar = (
        Example(
            "a listed domain", (s.dns("ek.badexample.net", process=s.proc("/usr/bin/python3")),), intel=_LISTS
        ),
        Example("a subdomain of a listed domain", (s.dns("www.ek.badexample.net"),), intel=_LISTS),
    )
    near_misses: ClassVar = (
        Example("a look-alike that is not listed", (s.dns("ek.example.net"),), intel=_LISTS),
    )
