"""UnauthorizedAccess:Runtime/TorClient: a process connected to a Tor guard or directory authority."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListIp, example_intel

_LISTS = example_intel(tor="198.51.100.90")


class TorClient(ThreatListIp):
    category = ti.TOR
    meta = Meta(
        type="UnauthorizedAccess:Runtime/TorClient",
        severity=severity.HIGH,
        title="A process connected to the Tor network",
        description=(
            "A process connected to a Tor guard, relay or directory authority: the instance is using Tor, which attackers "
            "use to hide command-and-control traffic and exfiltration."
        ),
        mitre=("T1090.003",),
        runbook=(
            "Find the process (runtimeDetails.process): a `tor` binary or a library embedding it. If Tor is not sanctioned "
            "on this instance, stop it, find how it was installed, and review what else the process tree did."
        ),
        false_positives=(
            "Privacy tooling or research instances that use Tor on purpose: suppress by instance tag.",
        ),
        references=("https://attack.mitre.org/techniques/T1090/003/",),
    )

    fires: ClassVar = (
        Example(
            "tor contacting a directory authority (built-in)",
            (s.connect(s.proc("/usr/bin/tor"), "171.25.193.9", 443),),
        ),
        Example(
            "a process connecting to a listed Tor guard",
            (s.connect(s.proc("/tmp/.t/svc"), "198.51.100.90", 9001),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a connection to port 9001 of an unlisted host",
            (s.connect(s.proc("/usr/bin/java"), "198.51.100.91", 9001),),
            intel=_LISTS,
        ),
    )
