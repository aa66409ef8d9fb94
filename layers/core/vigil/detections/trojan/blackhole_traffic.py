"""Trojan:Runtime/BlackholeTraffic: a process connected to a black-hole (sinkhole) IP address."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListIp, example_intel

_LISTS = example_intel(blackhole="192.0.2.10")


class BlackholeTraffic(ThreatListIp):
    category = ti.BLACKHOLE
    meta = Meta(
        type="Trojan:Runtime/BlackholeTraffic",
        severity=severity.MEDIUM,
        title="A process connected to a black-hole IP address",
        description=(
            "A process tried to reach an IP address that is a known black hole or sinkhole: its real destination was "
            "taken over, usually because it was a malware server. Something on the instance still tries to call it."
        ),
        mitre=("T1071",),
        runbook=(
            "The connection itself is harmless (the sinkhole answers), the caller is not: find the process in "
            "runtimeDetails.process, identify the binary and how it got there, and clean or rebuild the instance."
        ),
        false_positives=("Security research or sinkhole monitoring tools.",),
        references=("https://attack.mitre.org/techniques/T1071/",),
    )

    fires: ClassVar = (
        Example(
            "a bot calling a sinkholed server",
            (s.connect(s.proc("/var/tmp/.b/bot"), "192.0.2.10", 80),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a connection to a neighbouring IP",
            (s.connect(s.proc("/usr/bin/curl"), "192.0.2.11", 80),),
            intel=_LISTS,
        ),
    )
