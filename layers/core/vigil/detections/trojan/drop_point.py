"""Trojan:Runtime/DropPoint: a process connected to an IP address known to collect stolen data."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListIp, example_intel

_LISTS = example_intel(droppoint="203.0.113.77")


class DropPoint(ThreatListIp):
    category = ti.DROP_POINT
    meta = Meta(
        type="Trojan:Runtime/DropPoint",
        severity=severity.MEDIUM,
        title="A process connected to a drop point for stolen data",
        description=(
            "A process connected to an IP address on a threat list of drop points: servers that collect credentials and "
            "data stolen by malware."
        ),
        mitre=("T1041",),
        runbook=(
            "Assume data left the instance: identify the process and what it could read (credentials, instance role "
            "tokens). Rotate secrets the instance holds, isolate it, and hunt for the malware."
        ),
        false_positives=("Lists that include shared hosting addresses.",),
        references=("https://attack.mitre.org/techniques/T1041/",),
    )

    fires: ClassVar = (
        Example(
            "a stealer uploading to a drop point",
            (s.connect(s.proc("/tmp/.s/upd"), "203.0.113.77", 443),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "an unlisted upload target",
            (s.connect(s.proc("/usr/bin/aws"), "203.0.113.78", 443),),
            intel=_LISTS,
        ),
    )
