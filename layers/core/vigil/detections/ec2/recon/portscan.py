"""Recon:EC2/Portscan: the instance probed many ports of one remote host in a short time."""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import DistinctInWindow, local_initiated, probe_like, remote
from vigil.events import NetworkFlow

PORTS: Final = 25  # distinct destination ports of one host within the 10-minute window


def _scan(n: int, target: str = "203.0.113.50", packets: int = 1) -> tuple[NetworkFlow, ...]:
    return tuple(
        s.flow(s.LOCAL_IP, 40000 + i, target, 1 + i, packets=packets, t=i * 10_000_000) for i in range(n)
    )


class Portscan(DistinctInWindow):
    prefix = "ec2portscan"
    threshold = PORTS
    meta = Meta(
        type="Recon:EC2/Portscan",
        severity=severity.MEDIUM,
        title="The instance is performing outbound port scans against a remote host",
        description=(
            f"The instance opened short connections to at least {PORTS} distinct ports of one remote host within ten "
            "minutes (VPC Flow Logs): a port scan, often a compromised instance looking for more targets."
        ),
        mitre=("T1046",),
        runbook=(
            "Check service.action.networkConnectionAction.remoteIpDetails (the scanned host). If the instance is not a "
            "sanctioned scanner, find the process (the runtime agent's findings, or the instance's own logs) and isolate."
        ),
        false_positives=("Vulnerability scanners and inventory tools run from the instance on purpose.",),
        references=("https://attack.mitre.org/techniques/T1046/",),
        resource_role="ACTOR",
    )

    def candidate(self, e: NetworkFlow) -> bool:
        return e.protocol_num in (6, 17) and local_initiated(e) and probe_like(e)

    def group(self, e: NetworkFlow) -> str:
        return remote(e)[0]

    def member(self, e: NetworkFlow) -> str:
        return str(remote(e)[1])

    fires: ClassVar = (
        Example("connect probes to 25 ports of one host", _scan(PORTS)),
        Example(
            "a SYN scan whose probes were rejected by the remote's network ACL",
            tuple(
                s.flow(s.LOCAL_IP, 61000, "203.0.113.51", p, action="REJECT", t=p)
                for p in range(20, 20 + PORTS)
            ),
        ),
    )
    near_misses: ClassVar = (
        Example("24 ports of one host", _scan(PORTS - 1)),
        Example("long conversations with 25 ports (not probes)", _scan(PORTS, packets=40)),
        Example(
            "the same port 25 times (one service, reconnecting)",
            tuple(s.flow(s.LOCAL_IP, 40000 + i, "203.0.113.50", 443, t=i) for i in range(PORTS)),
        ),
        Example(
            "the replies of a scanned instance (it is the target, not the scanner)",
            tuple(s.flow(s.LOCAL_IP, 1 + i, "198.51.100.7", 45000, t=i) for i in range(PORTS)),
        ),
    )
