"""Recon:EC2/PortProbeEMRUnprotectedPort: scanners found an open EMR service port of the instance
(VPC Flow Logs): ``PortProbe`` restricted to EMR's web UI and service ports (``EMR_PORTS``, e.g.
8088 YARN ResourceManager), High. Flow logs do not say whether the instance belongs to an EMR
cluster; the port set is what tells these probes apart."""

from __future__ import annotations

from typing import ClassVar

from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import EMR_PORTS, PROBERS, PortProbe, probes


class PortProbeEmrUnprotectedPort(PortProbe):
    prefix = "ec2probeemr"
    ports_of_interest = EMR_PORTS
    meta = Meta(
        type="Recon:EC2/PortProbeEMRUnprotectedPort",
        severity=severity.HIGH,
        title="An unprotected EMR port of the instance is being probed by scanners",
        description=(
            f"At least {PROBERS} public hosts opened short connections to an EMR service port (YARN, HDFS, Spark, "
            "Livy, Hue, Zeppelin ...) of the instance within ten minutes and were accepted (VPC Flow Logs): the "
            "cluster's UI is open to the internet, a known route to remote code execution on EMR."
        ),
        mitre=("T1595.001", "T1190"),
        runbook=(
            "Close the port to the internet now (EMR block public access, the master's security group); then check "
            "the YARN ResourceManager for applications you did not submit."
        ),
        false_positives=("None expected: EMR's UIs should be reached through a tunnel or a proxy.",),
        references=("https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-block-public-access.html",),
        resource_role="TARGET",
    )

    fires: ClassVar = (Example(f"{PROBERS} scanners find YARN's ResourceManager UI", probes(8088, PROBERS)),)
    near_misses: ClassVar = (
        Example("four scanners", probes(8088, PROBERS - 1)),
        Example(
            "a non-EMR port (PortProbeUnprotectedPort's)",
            probes(2222, PROBERS),
            also_fires=frozenset({"Recon:EC2/PortProbeUnprotectedPort"}),
        ),
    )
