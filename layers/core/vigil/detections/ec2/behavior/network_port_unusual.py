"""Behavior:EC2/NetworkPortUnusual: the instance connected to a remote port it has never used
(VPC Flow Logs, per-instance baseline in the State table).

Every accepted connection the instance opens to a public address adds its (protocol, remote port)
to the instance's baseline (30 days without use forget it). Once the instance is armed (it had
traffic the previous UTC day: ``armed``), a port outside the baseline fires once. Medium; High
for 389/1389 (LDAP: the log4j JNDI callback, GuardDuty's "Possible log4j callback"). Ports with
their own types are left to them: 25 (Spambot), 53 (UnusualDNSResolver), 853 (UnusualDoTActivity)
and HTTPS to a public DoH resolver (UnusualDoHActivity).
"""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import DAY_NS, PUBLIC_RESOLVERS, FlowBaseline, outbound, yesterday_then
from vigil.events import NetworkFlow

LOG4J_CALLBACK: Final = frozenset({389, 1389})
OWN_TYPES: Final = frozenset({25, 53, 853})


def _to(port: int, ip: str = "198.51.100.44", t: int = 0) -> NetworkFlow:
    return s.flow(s.LOCAL_IP, 41000, ip, port, packets=12, t=t)


class NetworkPortUnusual(FlowBaseline):
    prefix = "ec2port"
    meta = Meta(
        type="Behavior:EC2/NetworkPortUnusual",
        severity=severity.MEDIUM,
        title="The instance is communicating with a remote host on an unusual port",
        description=(
            "The instance opened a connection to a public host on a remote port it has not used in its baseline "
            "(VPC Flow Logs): command-and-control and exfiltration often use ports a workload never needs."
        ),
        mitre=("T1571",),
        runbook=(
            "Check networkConnectionAction.remotePortDetails and remoteIpDetails. For 389/1389 (a log4j JNDI "
            "callback) look for the vulnerable Java application at once; otherwise find the process and decide "
            "whether the port is part of the workload."
        ),
        false_positives=("A new release of the workload that talks to a new service.",),
        references=("https://attack.mitre.org/techniques/T1571/",),
    )

    def candidate(self, e: NetworkFlow) -> bool:
        if e.protocol_num not in (6, 17) or not outbound(e):
            return False
        port = e.dst_endpoint.port
        return port not in OWN_TYPES and not (port == 443 and e.dst_endpoint.ip in PUBLIC_RESOLVERS)

    def value(self, e: NetworkFlow) -> str:
        return f"{e.protocol_num}/{e.dst_endpoint.port}"

    def severity(self, event: NetworkFlow) -> float:
        return severity.HIGH if event.dst_endpoint.port in LOG4J_CALLBACK else severity.MEDIUM

    def title(self, event: NetworkFlow) -> str:
        if event.dst_endpoint.port in LOG4J_CALLBACK:
            return "Possible log4j callback: the instance is communicating on an unusual LDAP port"
        return self.meta.title

    fires: ClassVar = (
        Example("a new remote port after a day of HTTPS", yesterday_then(_to(4444))),
        Example("an LDAP callback (High)", yesterday_then(_to(1389))),
    )
    near_misses: ClassVar = (
        Example("a port in the baseline", yesterday_then(_to(443))),
        Example("a new port on the instance's first day (still learning)", (_to(443), _to(4444, t=60))),
        Example(
            "a new port yesterday, used again today",
            (s.flow(s.LOCAL_IP, 40100, "203.0.113.10", 4444, packets=20, t=-DAY_NS), _to(4444)),
        ),
        Example("a new port at a private address", yesterday_then(_to(4444, ip="10.0.9.9"))),
    )
