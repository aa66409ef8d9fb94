"""DefenseEvasion:EC2/UnusualDoHActivity: the instance spoke DNS over HTTPS to a public DoH
resolver it has no recent history with (VPC Flow Logs, per-instance baseline in the State table).

DoH is HTTPS: a flow log cannot tell it from web traffic, so the remote address must be a known
public DoH resolver (``PUBLIC_RESOLVERS``: the providers' published anycast addresses). An armed
instance's (``armed``) first HTTPS connection to one of them outside its baseline fires.
"""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import PUBLIC_RESOLVERS, FlowBaseline, outbound, yesterday_then
from vigil.events import NetworkFlow


class UnusualDoHActivity(FlowBaseline):
    prefix = "ec2doh"
    meta = Meta(
        type="DefenseEvasion:EC2/UnusualDoHActivity",
        severity=severity.MEDIUM,
        title="The instance is performing unusual DNS over HTTPS communication",
        description=(
            "The instance opened an HTTPS connection to a public DNS-over-HTTPS resolver it has no recent history "
            "with (VPC Flow Logs): encrypted DNS that bypasses the VPC resolver's logging and DNS Firewall, a "
            "favourite of malware hiding its lookups."
        ),
        mitre=("T1071.004", "T1572"),
        runbook="Find the process using DoH (browsers and some runtimes enable it by default) and block the resolver's addresses if nothing should.",
        false_positives=("Browsers or desktop tools with DoH enabled on workstation-like instances.",),
        references=("https://attack.mitre.org/techniques/T1572/",),
    )

    def candidate(self, e: NetworkFlow) -> bool:
        return (
            e.protocol_num == 6
            and e.dst_endpoint.port == 443
            and e.dst_endpoint.ip in PUBLIC_RESOLVERS
            and outbound(e)
        )

    def value(self, e: NetworkFlow) -> str:
        return e.dst_endpoint.ip

    fires: ClassVar = (
        Example(
            "HTTPS to Cloudflare's DoH address",
            yesterday_then(s.flow(s.LOCAL_IP, 45443, "1.1.1.1", 443, packets=16)),
        ),
    )
    near_misses: ClassVar = (
        Example(
            "HTTPS to an ordinary web server",
            yesterday_then(s.flow(s.LOCAL_IP, 45443, "203.0.113.10", 443, packets=16)),
        ),
        Example(
            "DoH on the instance's first day (learning)",
            (s.flow(s.LOCAL_IP, 45443, "1.1.1.1", 443, packets=16),),
        ),
    )
