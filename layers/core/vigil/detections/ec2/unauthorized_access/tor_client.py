"""UnauthorizedAccess:EC2/TorClient: the instance connected to a Tor guard or directory authority
(VPC Flow Logs): its remote address is on AWS's Tor list (the built-in directory authorities, or a
curated Tor node feed)."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import ThreatListFlow, aws_intel

_LISTS = aws_intel(ti.TOR, "198.51.100.90")


class TorClient(ThreatListFlow):
    category = ti.TOR
    meta = Meta(
        type="UnauthorizedAccess:EC2/TorClient",
        severity=severity.HIGH,
        title="The instance is connecting to the Tor network",
        description=(
            "The instance opened a connection to a Tor guard, relay or directory authority (VPC Flow Logs): something "
            "on it uses Tor, which attackers use to hide command-and-control traffic and exfiltration."
        ),
        mitre=("T1090.003",),
        runbook=(
            "If Tor is not sanctioned on this instance, find the process (the runtime agent's TorClient finding names "
            "it), stop it, find how it was installed and review what else it did."
        ),
        false_positives=(
            "Privacy tooling or research instances that use Tor on purpose: suppress by instance tag.",
        ),
        references=("https://attack.mitre.org/techniques/T1090/003/",),
    )

    fires: ClassVar = (
        Example(
            "a directory authority (built-in)", (s.flow(s.LOCAL_IP, 45012, "171.25.193.9", 443, packets=30),)
        ),
        Example(
            "a listed Tor guard",
            (s.flow(s.LOCAL_IP, 45013, "198.51.100.90", 9001, packets=30),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "port 9001 of an unlisted host",
            (s.flow(s.LOCAL_IP, 45013, "198.51.100.91", 9001, packets=30),),
            intel=_LISTS,
        ),
    )
