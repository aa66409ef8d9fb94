"""Backdoor:EC2/C&CActivity.B: the instance connected to the IP address of a known command-and-control server (VPC Flow Logs).

The remote address is on one of AWS's threat lists of category ``C&C`` (the built-in set or
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

_LISTS = aws_intel(ti.C2, "198.51.100.66")


class CAndCActivityB(ThreatListFlow):
    category = ti.C2
    meta = Meta(
        type="Backdoor:EC2/C&CActivity.B",
        severity=severity.HIGH,
        title="The instance is communicating with a command-and-control server",
        description=(
            "The instance opened a connection to an IP address on a threat list of command-and-control servers (VPC Flow Logs): it is likely compromised and taking instructions."
        ),
        mitre=("T1071", "T1571"),
        runbook=(
            "Block the address, isolate the instance, preserve its volumes and hunt for the implant (the runtime agent's findings name the process when it runs)."
        ),
        false_positives=("Threat lists that include shared hosting or CDN addresses.",),
        references=("https://attack.mitre.org/techniques/T1071/",),
    )

    fires: ClassVar = (
        Example(
            "the instance connects to a listed address",
            (s.flow(s.LOCAL_IP, 43210, "198.51.100.66", 443, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "an unlisted address",
            (s.flow(s.LOCAL_IP, 43210, "198.51.100.67", 443, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
        Example(
            "the listed host connecting in to a service of the instance",
            (s.flow("198.51.100.66", 43210, s.LOCAL_IP, 22, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
        Example(
            "the address only on a customer list (MaliciousIPCaller.Custom's)",
            (s.flow(s.LOCAL_IP, 43210, "198.51.100.66", 443, packets=14, nbytes=4200),),
            intel=example_intel(c2="198.51.100.66"),
            also_fires=frozenset({"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"}),
        ),
    )
