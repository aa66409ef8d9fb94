"""UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS: an instance role's
credentials were used from inside AWS, but not from the instance (CloudTrail).

"Inside AWS" = through a VPC endpoint, from a private (VPC) address, or from an address in AWS's
ip-ranges (``settings["aws_ip_ranges"]``). GuardDuty says "from another AWS account" and lowers
the severity to Medium when that account is affiliated; CloudTrail's management event does not
name the caller's account, so we cannot tell (always High) and also catch another instance of the
same account. See ``InstanceCredentialExfiltration`` for the learned addresses.
"""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import HOUR_NS, InstanceCredentialExfiltration, credential_use

_LATER = 3 * HOUR_NS // 1_000_000_000


class InstanceCredentialExfiltrationInsideAws(InstanceCredentialExfiltration):
    inside = True
    meta = Meta(
        type="UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
        severity=severity.HIGH,
        title="Credentials of the instance's role were used from another host inside AWS",
        description=(
            "A call signed with the temporary credentials EC2 delivers to the instance came from inside AWS (a VPC "
            "endpoint, a VPC address or an AWS address) but not from the instance (CloudTrail): the credentials "
            "were stolen and are used from another instance, often in an attacker's account."
        ),
        mitre=("T1552.005", "T1078.004"),
        runbook=(
            "Revoke the role's active sessions, require IMDSv2, and find the other host (remoteIpDetails, the VPC "
            "endpoint); if it is yours, it is compromised too."
        ),
        false_positives=("Credentials handed to a sidecar or another instance on purpose.",),
        references=("https://attack.mitre.org/techniques/T1552/005/",),
    )

    fires: ClassVar = (
        Example("another VPC address hours later", credential_use(("10.1.2.3", _LATER))),
        Example(
            "through a VPC endpoint from another address",
            credential_use(("10.0.9.9", _LATER), vpc_endpoint="vpce-0a1b2c3d4e5f60718"),
        ),
    )
    near_misses: ClassVar = (
        Example(
            "the instance's own private address through the endpoint, learned at boot",
            (
                s.api_call("10.0.0.12", vpc_endpoint="vpce-0a1b2c3d4e5f60718"),
                s.api_call("10.0.0.12", vpc_endpoint="vpce-0a1b2c3d4e5f60718", t=_LATER * 1_000_000_000),
            ),
        ),
        Example(
            "an AWS service acting for the role (no address)",
            (s.api_call("203.0.113.5"), s.api_call("ec2.amazonaws.com", t=_LATER * 1_000_000_000)),
        ),
        Example(
            "an external address (OutsideAWS's)",
            credential_use(("198.51.100.77", _LATER)),
            also_fires=frozenset({"UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"}),
        ),
    )
