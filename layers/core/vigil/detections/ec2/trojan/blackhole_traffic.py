"""Trojan:EC2/BlackholeTraffic: the instance connected to a black-hole (sinkhole) address (VPC Flow Logs).

The remote address is on one of AWS's threat lists of category ``Blackhole`` (the built-in set or
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

_LISTS = aws_intel(ti.BLACKHOLE, "203.0.113.130")


class BlackholeTraffic(ThreatListFlow):
    category = ti.BLACKHOLE
    meta = Meta(
        type="Trojan:EC2/BlackholeTraffic",
        severity=severity.MEDIUM,
        title="The instance is connecting to a black-hole address",
        description=(
            "The instance opened a connection to an IP address on a threat list of black holes (sinkholes): malware on it is calling a command-and-control server that has been taken down."
        ),
        mitre=("T1071",),
        runbook=(
            "The traffic goes nowhere, but the malware is real: isolate the instance and find the process calling out."
        ),
        false_positives=("Security tools probing sinkholes on purpose.",),
        references=("https://attack.mitre.org/techniques/T1071/",),
    )

    fires: ClassVar = (
        Example(
            "the instance connects to a listed address",
            (s.flow(s.LOCAL_IP, 43210, "203.0.113.130", 80, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "an unlisted address",
            (s.flow(s.LOCAL_IP, 43210, "203.0.113.131", 80, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
        Example(
            "the listed host connecting in to a service of the instance",
            (s.flow("203.0.113.130", 43210, s.LOCAL_IP, 22, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
        Example(
            "the address only on a customer list (MaliciousIPCaller.Custom's)",
            (s.flow(s.LOCAL_IP, 43210, "203.0.113.130", 80, packets=14, nbytes=4200),),
            intel=example_intel(blackhole="203.0.113.130"),
            also_fires=frozenset({"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"}),
        ),
    )
