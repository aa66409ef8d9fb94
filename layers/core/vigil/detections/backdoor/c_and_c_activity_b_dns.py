"""Backdoor:Runtime/C&CActivity.B!DNS: a process queried a domain of a known command-and-control server."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListDns, example_intel

_LISTS = example_intel(c2="c2.badexample.net\n*.botnet-panel.example")


class CAndCActivityBDns(ThreatListDns):
    category = ti.C2
    meta = Meta(
        type="Backdoor:Runtime/C&CActivity.B!DNS",
        severity=severity.HIGH,
        title="A process queried a command-and-control domain",
        description=(
            "A process on the instance queried a domain that is on a threat list of command-and-control servers: "
            "malware on the instance is likely calling home for instructions."
        ),
        mitre=("T1071.004", "T1071.001"),
        runbook=(
            "Find the querying process in runtimeDetails.process and its lineage, and the list that matched in "
            "service.evidence. Isolate the instance, capture memory and volumes, then look for how the malware arrived."
        ),
        false_positives=(
            "Security tools resolving indicators on purpose (sandboxes, threat-intel enrichers).",
        ),
        references=("https://attack.mitre.org/techniques/T1071/004/",),
        maturity="stable",
    )

    fires: ClassVar = (
        Example(
            "GuardDuty's C&C test domain (built-in)",
            (s.dns("guarddutyc2activityb.com", process=s.proc("/usr/bin/dig")),),
        ),
        Example(
            "an implant resolving a listed C&C domain",
            (s.dns("c2.badexample.net", "198.51.100.66", process=s.proc("/tmp/.sys/kthreadd")),),
            intel=_LISTS,
        ),
        Example("a subdomain of a wildcard entry", (s.dns("a1.botnet-panel.example"),), intel=_LISTS),
    )
    near_misses: ClassVar = (
        Example("an ordinary API lookup", (s.dns("api.github.com", "198.51.100.80"),), intel=_LISTS),
        Example(
            "a listed domain that is also on the trusted list (trusted wins)",
            (s.dns("c2.badexample.net"),),
            intel=example_intel(c2="c2.badexample.net", trusted="badexample.net"),
        ),
    )
