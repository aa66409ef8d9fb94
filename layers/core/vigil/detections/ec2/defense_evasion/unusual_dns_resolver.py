"""DefenseEvasion:EC2/UnusualDNSResolver: the instance sent DNS to a public resolver it has no
recent history with (VPC Flow Logs, per-instance baseline in the State table).

An instance normally resolves through the VPC's Route 53 Resolver (VPC+2 / 169.254.169.253, a
private address); DNS to a public resolver bypasses Resolver query logging and DNS Firewall. An
armed instance's (``armed``) first DNS flow (UDP/TCP 53) to a public resolver address outside its
baseline (30 days) fires once per resolver.
"""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import DAY_NS, FlowBaseline, outbound, yesterday_then
from vigil.events import NetworkFlow


class UnusualDnsResolver(FlowBaseline):
    prefix = "ec2dnsres"
    meta = Meta(
        type="DefenseEvasion:EC2/UnusualDNSResolver",
        severity=severity.MEDIUM,
        title="The instance is using an unusual public DNS resolver",
        description=(
            "The instance sent DNS queries to a public resolver it has no recent history with (VPC Flow Logs): DNS "
            "that bypasses the VPC resolver's logging and DNS Firewall, or a tunnel to an attacker's name server."
        ),
        mitre=("T1071.004", "T1562"),
        runbook=(
            "Find the process sending DNS off the VPC resolver; block outbound 53 except to the VPC resolver in the "
            "security group or network firewall."
        ),
        false_positives=("Containers or appliances configured with a public resolver.",),
        references=("https://attack.mitre.org/techniques/T1071/004/",),
    )

    def candidate(self, e: NetworkFlow) -> bool:
        return e.protocol_num in (6, 17) and e.dst_endpoint.port == 53 and outbound(e)

    def value(self, e: NetworkFlow) -> str:
        return e.dst_endpoint.ip

    fires: ClassVar = (
        Example(
            "DNS to a public resolver, never before",
            yesterday_then(s.flow(s.LOCAL_IP, 51515, "198.51.100.53", 53, proto=17, packets=2)),
        ),
    )
    near_misses: ClassVar = (
        Example(
            "the VPC resolver",
            yesterday_then(s.flow(s.LOCAL_IP, 51515, "10.0.0.2", 53, proto=17, packets=2)),
        ),
        Example(
            "a resolver the instance used yesterday",
            (
                s.flow(s.LOCAL_IP, 51514, "198.51.100.53", 53, proto=17, packets=2, t=-DAY_NS),
                s.flow(s.LOCAL_IP, 51515, "198.51.100.53", 53, proto=17, packets=2),
            ),
        ),
    )
