"""Backdoor:EC2/DenialOfService.Udp: the instance floods a public host with UDP traffic."""

from __future__ import annotations

from typing import ClassVar

from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import FLOOD_PACKETS, TCP_SERVICE_PORTS, DenialOfService, flood_records
from vigil.events import NetworkFlow


class DenialOfServiceUdp(DenialOfService):
    meta = Meta(
        type="Backdoor:EC2/DenialOfService.Udp",
        severity=severity.HIGH,
        title="The instance is being used to perform a denial-of-service attack using UDP traffic",
        description=(
            f"The instance sent at least {FLOOD_PACKETS} packets of UDP traffic to one public address within a minute "
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
        return (
            e.protocol_num == 17
            and e.dst_endpoint.port != 53
            and e.dst_endpoint.port not in TCP_SERVICE_PORTS
        )

    fires: ClassVar = (
        Example("two records of UDP traffic to one host within a minute", flood_records(17, 9999)),
    )
    near_misses: ClassVar = (
        Example("half the volume", flood_records(17, 9999, records=1)),
        Example(
            "the same volume to a private address (inside the VPC)", flood_records(17, 9999, dst="10.0.3.4")
        ),
        Example("ICMP of the same volume (no DoS type reads ICMP)", flood_records(1, 0)),
    )
