"""Trojan:EC2/DropPoint: the instance connected to an IP address known to collect stolen data (VPC Flow Logs).

The remote address is on one of AWS's threat lists of category ``DropPoint`` (the built-in set or
a curated feed, never a customer's list: those raise UnauthorizedAccess:EC2/MaliciousIPCaller.Custom).
"""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import example_intel
from vigil.detections.ec2._common import ThreatListFlow, aws_intel

_LISTS = aws_intel(ti.DROP_POINT, "203.0.113.77")


class DropPoint(ThreatListFlow):
    category = ti.DROP_POINT
    meta = Meta(
        type="Trojan:EC2/DropPoint",
        severity=severity.MEDIUM,
        title="The instance is communicating with a drop point for stolen data",
        description=(
            "The instance opened a connection to an IP address on a threat list of drop points: servers that collect credentials and data stolen by malware."
        ),
        mitre=("T1041",),
        runbook=(
            "Assume data left the instance: rotate the secrets it holds (its role's credentials too), isolate it and hunt for the malware."
        ),
        false_positives=("Lists that include shared hosting addresses.",),
        references=("https://attack.mitre.org/techniques/T1041/",),
    )

    fires: ClassVar = (
        Example(
            "the instance connects to a listed address",
            (s.flow(s.LOCAL_IP, 43210, "203.0.113.77", 443, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "an unlisted address",
            (s.flow(s.LOCAL_IP, 43210, "203.0.113.78", 443, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
        Example(
            "the listed host connecting in to a service of the instance",
            (s.flow("203.0.113.77", 43210, s.LOCAL_IP, 22, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
        Example(
            "the address only on a customer list (MaliciousIPCaller.Custom's)",
            (s.flow(s.LOCAL_IP, 43210, "203.0.113.77", 443, packets=14, nbytes=4200),),
            intel=example_intel(droppoint="203.0.113.77"),
            also_fires=frozenset({"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"}),
        ),
    )
