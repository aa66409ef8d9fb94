"""Backdoor:Runtime/C&CActivity.B: a process connected to the IP address of a known command-and-control server."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListIp, example_intel

_LISTS = example_intel(c2="198.51.100.66\n203.0.113.0/28")


class CAndCActivityB(ThreatListIp):
    category = ti.C2
    meta = Meta(
        type="Backdoor:Runtime/C&CActivity.B",
        severity=severity.HIGH,
        title="A process connected to a command-and-control server",
        description=(
            "A process on the instance opened a connection to an IP address on a threat list of command-and-control "
            "servers: the instance is likely compromised and taking instructions."
        ),
        mitre=("T1071", "T1571"),
        runbook=(
            "Check runtimeDetails.process (what connected) and service.action (where). Block the IP, isolate the instance, "
            "preserve its volumes, and hunt for the implant and its persistence."
        ),
        false_positives=("Threat-intel lists that include shared hosting or CDN addresses.",),
        references=("https://attack.mitre.org/techniques/T1071/",),
        maturity="stable",
    )

    fires: ClassVar = (
        Example(
            "an implant connecting to a listed IP",
            (s.connect(s.proc("/tmp/.x/agent"), "198.51.100.66", 443),),
            intel=_LISTS,
        ),
        Example(
            "a connection into a listed CIDR",
            (s.connect(s.proc("/usr/bin/python3"), "203.0.113.5", 8443),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a connection to an unlisted IP",
            (s.connect(s.proc("/usr/bin/curl"), "198.51.100.67", 443),),
            intel=_LISTS,
        ),
        Example(
            "a listed IP that is also trusted (trusted wins)",
            (s.connect(s.proc("/usr/bin/curl"), "198.51.100.66", 443),),
            intel=example_intel(c2="198.51.100.66", trusted="198.51.100.64/30"),
        ),
        Example(
            "an inbound connection from a listed IP",
            (s.connect(s.proc("/usr/sbin/nginx"), "198.51.100.66", 51000, kind="net_accept"),),
            intel=_LISTS,
        ),
    )
