"""Backdoor:EC2/DenialOfService.UdpOnTcpPorts: the instance floods a public host with UDP traffic on TCP ports."""

from __future__ import annotations

from typing import ClassVar

from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import FLOOD_PACKETS, TCP_SERVICE_PORTS, DenialOfService, flood_records
from vigil.events import NetworkFlow


class DenialOfServiceUdpOnTcpPorts(DenialOfService):
    meta = Meta(
        type="Backdoor:EC2/DenialOfService.UdpOnTcpPorts",
        severity=severity.HIGH,
        title="The instance is being used to perform a denial-of-service attack using UDP traffic on TCP ports",
        description=(
            f"The instance sent at least {FLOOD_PACKETS} packets of UDP traffic on TCP ports to one public address within a minute "
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
        return e.protocol_num == 17 and e.dst_endpoint.port in TCP_SERVICE_PORTS

    fires: ClassVar = (
        Example("two records of UDP traffic on TCP ports to one host within a minute", flood_records(17, 22)),
    )
    near_misses: ClassVar = (
        Example("half the volume", flood_records(17, 22, records=1)),
        Example(
            "UDP to port 80 (GuardDuty's tester expects DenialOfService.Udp there; HTTP/3 runs on UDP)",
            flood_records(17, 80),
            also_fires=frozenset({"Backdoor:EC2/DenialOfService.Udp"}),
        ),
        Example(
            "the same volume to a private address (inside the VPC)", flood_records(17, 22, dst="10.0.3.4")
        ),
        Example("ICMP of the same volume (no DoS type reads ICMP)", flood_records(1, 0)),
    )
