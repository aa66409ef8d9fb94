"""UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS: an instance role's
credentials were used from an address outside AWS that is not the instance's (CloudTrail).

See ``InstanceCredentialExfiltration`` for what CloudTrail alone can tell and how the instance's
own addresses are learned; "outside AWS" = not through a VPC endpoint, not a private address and
not in AWS's ip-ranges (``settings["aws_ip_ranges"]``; without them every public address counts
as outside).
"""

from __future__ import annotations

from typing import ClassVar

from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import example_intel
from vigil.detections.ec2._common import HOUR_NS, InstanceCredentialExfiltration, credential_use

_LATER = 3 * HOUR_NS // 1_000_000_000  # seconds: past the learning window


class InstanceCredentialExfiltrationOutsideAws(InstanceCredentialExfiltration):
    inside = False
    meta = Meta(
        type="UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        severity=severity.HIGH,
        title="Credentials of the instance's role were used from an external address",
        description=(
            "A call signed with the temporary credentials EC2 delivers to the instance (its instance profile's "
            "role session) came from an address outside AWS that the instance has not used (CloudTrail): the "
            "credentials were stolen, typically through SSRF against the metadata service, and are used elsewhere."
        ),
        mitre=("T1552.005", "T1078.004"),
        runbook=(
            "Revoke the role's active sessions (an inline deny on aws:TokenIssueTime), require IMDSv2, find how the "
            "credentials left the instance and review what the external address did (awsApiCallAction)."
        ),
        false_positives=(
            "A NAT gateway with several Elastic IPs, or a new one: add its addresses to a trusted IP list.",
            "Credentials copied off the instance on purpose (a developer's debugging).",
        ),
        references=("https://attack.mitre.org/techniques/T1552/005/",),
    )

    fires: ClassVar = (
        Example(
            "the session used from an external address hours later", credential_use(("198.51.100.77", _LATER))
        ),
    )
    near_misses: ClassVar = (
        Example("the instance's own address again", credential_use(("203.0.113.5", _LATER))),
        Example(
            "a second NAT address during the learning window, used again later",
            credential_use(("203.0.113.6", 60), ("203.0.113.6", _LATER)),
        ),
        Example(
            "an address on a trusted list",
            credential_use(("198.51.100.77", _LATER)),
            intel=example_intel(trusted="198.51.100.77"),
        ),
        Example(
            "an address inside a VPC (InsideAWS's)",
            credential_use(("10.1.2.3", _LATER)),
            also_fires=frozenset({"UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS"}),
        ),
    )
