"""Backdoor:EC2/DenialOfService.Dns: the instance floods a public host with DNS traffic."""

from __future__ import annotations

from typing import ClassVar

from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import FLOOD_PACKETS, DenialOfService, flood_records
from vigil.events import NetworkFlow


class DenialOfServiceDns(DenialOfService):
    meta = Meta(
        type="Backdoor:EC2/DenialOfService.Dns",
        severity=severity.HIGH,
        title="The instance is being used to perform a denial-of-service attack using DNS traffic",
        description=(
            f"The instance sent at least {FLOOD_PACKETS} packets of DNS traffic to one public address within a minute "
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

    # Every record counts: a DNS flood from a new socket per query (GuardDuty's tester, most DNS
    # flooders) is a record of one or two packets per source port. Cheap: the instance's own DNS
    # goes to the VPC's Resolver (a private address), so few records are UDP 53 to a public host.
    record_min = 1

    def flood(self, e: NetworkFlow) -> bool:
        return e.protocol_num == 17 and e.dst_endpoint.port == 53

    fires: ClassVar = (
        Example("two records of DNS traffic to one host within a minute", flood_records(17, 53)),
        Example(
            "60 small records, a new source port each (a socket per query)",
            flood_records(17, 53, packets=500, records=60, size=92, step_ns=500_000_000),
        ),
    )
    near_misses: ClassVar = (
        Example("half the volume", flood_records(17, 53, records=1)),
        Example(
            "the same volume to a private address (inside the VPC)", flood_records(17, 53, dst="10.0.3.4")
        ),
        Example("ICMP of the same volume (no DoS type reads ICMP)", flood_records(1, 0)),
    )
