"""DefenseEvasion:EC2/UnusualDoTActivity: the instance spoke DNS over TLS (TCP 853) to a server it
has no recent history with (VPC Flow Logs, per-instance baseline in the State table): an armed
instance's (``armed``) first TCP 853 connection to a public server outside its baseline (30 days)."""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import FlowBaseline, outbound, yesterday_then
from vigil.events import NetworkFlow


class UnusualDoTActivity(FlowBaseline):
    prefix = "ec2dot"
    meta = Meta(
        type="DefenseEvasion:EC2/UnusualDoTActivity",
        severity=severity.MEDIUM,
        title="The instance is performing unusual DNS over TLS communication",
        description=(
            "The instance opened a DNS-over-TLS connection (TCP 853) to a server it has no recent history with (VPC "
            "Flow Logs): encrypted DNS that bypasses the VPC resolver's logging and DNS Firewall."
        ),
        mitre=("T1071.004", "T1573.002"),
        runbook="Find the process using DoT; block outbound 853 unless a workload needs it.",
        false_positives=("Hosts configured for encrypted DNS on purpose (systemd-resolved DNSOverTLS=yes).",),
        references=("https://attack.mitre.org/techniques/T1071/004/",),
    )

    def candidate(self, e: NetworkFlow) -> bool:
        return e.protocol_num == 6 and e.dst_endpoint.port == 853 and outbound(e)

    def value(self, e: NetworkFlow) -> str:
        return e.dst_endpoint.ip

    fires: ClassVar = (
        Example(
            "DoT to a public resolver", yesterday_then(s.flow(s.LOCAL_IP, 45853, "9.9.9.9", 853, packets=14))
        ),
    )
    near_misses: ClassVar = (
        Example(
            "plain DNS to the VPC resolver",
            yesterday_then(s.flow(s.LOCAL_IP, 45853, "10.0.0.2", 53, proto=17)),
        ),
        Example(
            "DoT on the instance's first day (learning)",
            (s.flow(s.LOCAL_IP, 45853, "9.9.9.9", 853, packets=14),),
        ),
    )
