"""Recon:EC2/PortProbeUnprotectedPort: scanners on the internet found an open port of the instance
(VPC Flow Logs).

Low by default, TARGET; High for Elasticsearch's 9200/9300 (GuardDuty's rule); never for 80/443.
EMR's service ports raise Recon:EC2/PortProbeEMRUnprotectedPort instead. See ``PortProbe``.
"""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import EMR_PORTS, NEVER_PROBED_PORTS, PROBERS, PortProbe, probes
from vigil.events import NetworkFlow

ELASTICSEARCH: Final = frozenset({9200, 9300})


class PortProbeUnprotectedPort(PortProbe):
    prefix = "ec2probe"
    excluded = NEVER_PROBED_PORTS | EMR_PORTS
    meta = Meta(
        type="Recon:EC2/PortProbeUnprotectedPort",
        severity=severity.LOW,
        title="An unprotected port of the instance is being probed by scanners",
        description=(
            f"At least {PROBERS} public hosts opened short connections to one port of the instance within ten "
            "minutes and the connections were accepted (VPC Flow Logs): the port is open to the internet and "
            "scanners have found it."
        ),
        mitre=("T1595.001", "T1046"),
        runbook=(
            "Check service.action.portProbeAction.portProbeDetails (the port). If it need not be public, restrict the "
            "security group / network ACL to known sources; patch and harden the service behind it."
        ),
        false_positives=(
            "Services meant to be public on other ports than 80/443 (a public SSH bastion, a mail server).",
        ),
        references=("https://attack.mitre.org/techniques/T1595/001/",),
        resource_role="TARGET",
    )

    def severity(self, event: NetworkFlow) -> float:
        return severity.HIGH if event.dst_endpoint.port in ELASTICSEARCH else severity.LOW

    fires: ClassVar = (
        Example(f"{PROBERS} scanners find SSH open", probes(22, PROBERS)),
        Example("Elasticsearch open to the internet (High)", probes(9200, PROBERS)),
    )
    near_misses: ClassVar = (
        Example("four scanners", probes(22, PROBERS - 1)),
        Example("probes of HTTPS (meant to be public)", probes(443, PROBERS)),
        Example("probes blocked by the security group", probes(22, PROBERS, packets=1, action="REJECT")),
        Example("ordinary clients (whole conversations, not probes)", probes(5432, PROBERS, packets=40)),
    )
