"""Impact:EC2/PortSweep: the instance probed one port on many public hosts."""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import DistinctInWindow, external, local_initiated, probe_like, remote
from vigil.events import NetworkFlow

HOSTS: Final = 25  # distinct public hosts probed on one port within the 10-minute window


def _sweep(n: int, port: int = 6379, net: str = "203.0.113.") -> tuple[NetworkFlow, ...]:
    return tuple(s.flow(s.LOCAL_IP, 50000 + i, f"{net}{10 + i}", port, t=i * 10_000_000) for i in range(n))


class PortSweep(DistinctInWindow):
    prefix = "ec2portsweep"
    threshold = HOSTS
    meta = Meta(
        type="Impact:EC2/PortSweep",
        severity=severity.HIGH,
        title="The instance is probing a port on a large number of IP addresses",
        description=(
            f"The instance sent short probes to one port on at least {HOSTS} distinct public addresses within ten "
            "minutes (VPC Flow Logs): a sweep for vulnerable services, typical of a compromised host spreading."
        ),
        mitre=("T1046", "T1595.001"),
        runbook=(
            "The swept port is in remotePortDetails. Isolate the instance, look for the scanning tool and how it got "
            "there, and check for abuse reports against the instance's public address."
        ),
        false_positives=("Internet measurement or monitoring run from the instance on purpose.",),
        references=("https://attack.mitre.org/techniques/T1595/001/",),
        resource_role="ACTOR",
    )

    def candidate(self, e: NetworkFlow) -> bool:
        return e.protocol_num in (6, 17) and local_initiated(e) and probe_like(e) and external(remote(e)[0])

    def group(self, e: NetworkFlow) -> str:
        return f"{e.protocol_num}/{remote(e)[1]}"

    def member(self, e: NetworkFlow) -> str:
        return remote(e)[0]

    fires: ClassVar = (Example("probes of port 6379 on 25 public hosts", _sweep(HOSTS)),)
    near_misses: ClassVar = (
        Example("24 hosts", _sweep(HOSTS - 1)),
        Example(
            "25 private hosts (inside the VPC: not GuardDuty's public sweep)", _sweep(HOSTS, net="10.0.1.")
        ),
    )
