"""Backdoor:EC2/DenialOfService.Tcp: the instance floods a public host with TCP traffic."""

from __future__ import annotations

from typing import ClassVar

from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import FLOOD_PACKETS, SMALL_PACKET, DenialOfService, flood_records
from vigil.events import NetworkFlow


class DenialOfServiceTcp(DenialOfService):
    meta = Meta(
        type="Backdoor:EC2/DenialOfService.Tcp",
        severity=severity.HIGH,
        title="The instance is being used to perform a denial-of-service attack using TCP traffic",
        description=(
            f"The instance sent at least {FLOOD_PACKETS} packets of TCP traffic to one public address within a minute "
            "(VPC Flow Logs): a flood, typical of a compromised instance enrolled in a botnet."
        ),
        mitre=("T1498.001",),
        runbook=(
            "The victim is networkConnectionAction.remoteIpDetails. Isolate the instance at once (the traffic is "
            "abuse from your account), then find the flooding process and how it was installed."
        ),
        false_positives=("Load tests against your own public endpoints.",),
        references=("https://attack.mitre.org/techniques/T1498/001/",),
        resource_role="ACTOR",
    )

    def flood(self, e: NetworkFlow) -> bool:
        return e.protocol_num == 6 and e.bytes <= e.packets * SMALL_PACKET  # SYN/ACK floods, not bulk data

    fires: ClassVar = (
        Example("two records of TCP traffic to one host within a minute", flood_records(6, 443, size=60)),
    )
    near_misses: ClassVar = (
        Example("half the volume", flood_records(6, 443, records=1, size=60)),
        Example(
            "the same volume to a private address (inside the VPC)",
            flood_records(6, 443, dst="10.0.3.4", size=60),
        ),
        Example(
            "a bulk upload of the same packet count (full-size packets)", flood_records(6, 443, size=1400)
        ),
        Example("ICMP of the same volume (no DoS type reads ICMP)", flood_records(1, 0)),
    )
