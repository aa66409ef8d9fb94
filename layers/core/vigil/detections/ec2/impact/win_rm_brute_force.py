"""Impact:EC2/WinRMBruteForce: brute-force logins to WinRM between the instance and one remote host (VPC Flow Logs).

Role dependent, like GuardDuty's: inbound (the instance is attacked) is a Low TARGET finding,
outbound (the instance attacks) a High ACTOR one.
"""

from __future__ import annotations

from typing import ClassVar

from msgspec.structs import replace

from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import ATTEMPTS, BruteForce, attempts


class WinRmBruteForce(BruteForce):
    prefix = "ec2bfwinrm"
    ports = frozenset({5985, 5986})
    meta = Meta(
        type="Impact:EC2/WinRMBruteForce",
        severity=severity.LOW,
        title="WinRM brute-force attempts involving the instance",
        description=(
            f"At least {ATTEMPTS} WinRM connections between the instance and one remote host within ten minutes: "
            "password guessing. Inbound (resourceRole TARGET) the instance is attacked; outbound (ACTOR) it attacks."
        ),
        mitre=("T1110",),
        runbook=(
            "TARGET: make sure password logins are off and the security group does not expose the port to the internet. "
            "ACTOR: the instance is likely compromised: isolate it and find the brute-forcing tool."
        ),
        false_positives=("Configuration management or monitoring opening many WinRM sessions to one host.",),
        references=("https://attack.mitre.org/techniques/T1110/",),
        resource_role="TARGET",
    )

    fires: ClassVar = (
        Example(f"port 5985: {ATTEMPTS} inbound login attempts from one host", attempts(5985, ATTEMPTS)),
        Example(
            "the instance brute-forcing a remote host (ACTOR, High)", attempts(5985, ATTEMPTS, inbound=False)
        ),
    )
    near_misses: ClassVar = (
        Example("19 attempts", attempts(5985, ATTEMPTS - 1)),
        Example(
            "attempts rejected by the security group never reach the service",
            tuple(replace(f, action="REJECT") for f in attempts(5985, ATTEMPTS)),
        ),
    )
