"""UnauthorizedAccess:EC2/MaliciousIPCaller.Custom: the instance exchanged traffic with an IP address
on a customer's threat list (VPC Flow Logs).

GuardDuty raises this type, not the category types, for entries of lists the customer uploaded
(``Indicator.custom``). Either direction counts ("communicating with"): the instance calling the
address, or the address connecting in and being accepted. Rejected traffic is not communication.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import evidence, example_intel
from vigil.detections.ec2._common import FLOW, connection_action, custom_ip_hit, remote, remote_listed
from vigil.events import NetworkFlow

_LISTS = example_intel(c2="198.51.100.200\n192.0.2.0/28")


class MaliciousIpCallerCustom(Detection):
    kinds = FLOW
    gate = remote_listed
    meta = Meta(
        type="UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
        severity=severity.MEDIUM,
        title="The instance is communicating with an IP address on a custom threat list",
        description=(
            "The instance exchanged traffic with an IP address on a threat list you uploaded (VPC Flow Logs)."
        ),
        mitre=("T1071",),
        runbook=(
            "The list and entry are in service.evidence. Outbound (the instance called it): find the process and "
            "isolate; inbound: check what the address reached and tighten the security group."
        ),
        false_positives=("Stale entries in the customer list.",),
        references=("https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_upload-lists.html",),
    )

    def match(self, event: NetworkFlow, ctx: Context) -> bool:
        return event.action == "ACCEPT" and custom_ip_hit(event, ctx)

    def dedup_key(self, event: NetworkFlow) -> str:
        return remote(event)[0]

    def resource_role(self, event: NetworkFlow) -> Any:
        return "TARGET" if event.direction == "Inbound" else "ACTOR"

    def threat_intel(self, event: NetworkFlow, ctx: Context) -> list[dict[str, Any]]:
        return evidence(ctx.intel.match_ip(remote(event)[0]))

    def action(self, event: NetworkFlow, ctx: Context) -> dict[str, Any] | None:
        return connection_action(event)

    fires: ClassVar = (
        Example(
            "the instance calls a listed address",
            (s.flow(s.LOCAL_IP, 40001, "198.51.100.200", 8443, packets=10),),
            intel=_LISTS,
        ),
        Example(
            "a listed address in a listed CIDR connects in",
            (s.flow("192.0.2.7", 51000, s.LOCAL_IP, 22, packets=10),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "an unlisted address",
            (s.flow(s.LOCAL_IP, 40001, "198.51.100.201", 8443, packets=10),),
            intel=_LISTS,
        ),
        Example(
            "the listed address rejected by the security group",
            (s.flow("198.51.100.200", 51000, s.LOCAL_IP, 22, action="REJECT"),),
            intel=_LISTS,
        ),
        Example(
            "a listed address that is also on a trusted list (trusted wins)",
            (s.flow(s.LOCAL_IP, 40001, "198.51.100.200", 8443, packets=10),),
            intel=example_intel(c2="198.51.100.200", trusted="198.51.100.200"),
        ),
    )
