"""Backdoor:EC2/Spambot: the instance talks SMTP to remote hosts with no prior history of it
(VPC Flow Logs, per-instance baseline in the State table).

GuardDuty: "communicating with a remote host on port 25 ... this EC2 instance has no prior history
of communications on port 25". The first accepted connection of an armed instance (``armed``) to
a public host's port 25 fires, when port 25 is not in its baseline (30 days). A mail relay that
sends every day never fires.
"""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections.ec2._common import DAY_NS, FlowBaseline, outbound, yesterday_then
from vigil.events import NetworkFlow


class Spambot(FlowBaseline):
    prefix = "ec2smtp"
    meta = Meta(
        type="Backdoor:EC2/Spambot",
        severity=severity.MEDIUM,
        title="The instance is sending mail (SMTP) with no history of doing so",
        description=(
            "The instance opened connections to public mail servers on port 25 and has no history of SMTP traffic "
            "(VPC Flow Logs): a compromised instance sending spam."
        ),
        mitre=("T1496", "T1071.003"),
        runbook=(
            "If the instance is not a mail server, find the sending process and isolate it; spam from your addresses "
            "gets them (and your domain) block-listed."
        ),
        false_positives=("A new mail relay or a workload that starts sending mail directly.",),
        references=("https://attack.mitre.org/techniques/T1496/",),
    )

    def candidate(self, e: NetworkFlow) -> bool:
        return e.protocol_num == 6 and e.dst_endpoint.port == 25 and outbound(e)

    def value(self, e: NetworkFlow) -> str:
        return "25"

    fires: ClassVar = (
        Example(
            "SMTP to a public mail server, never before",
            yesterday_then(s.flow(s.LOCAL_IP, 42000, "198.51.100.25", 25, packets=30)),
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a mail relay that sent mail yesterday too",
            (
                s.flow(s.LOCAL_IP, 42000, "203.0.113.25", 25, packets=30, t=-DAY_NS),
                s.flow(s.LOCAL_IP, 42001, "198.51.100.25", 25, packets=30),
            ),
        ),
        Example(
            "SMTP to the VPC's own relay",
            yesterday_then(s.flow(s.LOCAL_IP, 42000, "10.0.5.25", 25, packets=30)),
        ),
    )
