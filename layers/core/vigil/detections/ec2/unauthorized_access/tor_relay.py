"""UnauthorizedAccess:EC2/TorRelay: the instance relays Tor traffic (VPC Flow Logs).

A Tor client only opens connections; a relay accepts them on its ORPort / DirPort from other Tor
nodes. We fire when a connection from a node on AWS's Tor list to one of Tor's relay ports is
accepted by the instance (the runtime TorRelay's accept rule, without the process).
"""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections.ec2._common import (
    FLOW,
    aws_intel,
    connection_action,
    ip_hit_category,
    remote_initiated,
    remote_listed,
)
from vigil.detections.unauthorized_access.tor_relay import _TOR_PORTS
from vigil.events import NetworkFlow

_LISTS = aws_intel(ti.TOR, "198.51.100.90")


class TorRelay(Detection):
    kinds = FLOW
    gate = remote_listed
    meta = Meta(
        type="UnauthorizedAccess:EC2/TorRelay",
        severity=severity.HIGH,
        title="The instance is acting as a Tor relay",
        description=(
            "The instance accepted connections from known Tor nodes on a Tor relay port (VPC Flow Logs): it relays "
            "Tor traffic, which can hide abuse behind its address."
        ),
        mitre=("T1090.003",),
        runbook=(
            "Find the listening process and its configuration (torrc ORPort). If the relay is not sanctioned, stop it, "
            "remove it and find how it was installed; close the port in the security group."
        ),
        false_positives=("Sanctioned Tor relays run by the account owner.",),
        references=("https://attack.mitre.org/techniques/T1090/003/",),
    )

    def match(self, event: NetworkFlow, ctx: Context) -> bool:
        if (
            event.action != "ACCEPT"
            or not remote_initiated(event)
            or event.dst_endpoint.port not in _TOR_PORTS
        ):
            return False
        return ip_hit_category(event, ctx) == (ti.TOR, False)

    def dedup_key(self, event: NetworkFlow) -> str:
        return str(event.dst_endpoint.port)

    def action(self, event: NetworkFlow, ctx: Context) -> dict[str, Any] | None:
        return connection_action(event)

    fires: ClassVar = (
        Example(
            "a directory authority connects to the ORPort (built-in list)",
            (s.flow("171.25.193.9", 41234, s.LOCAL_IP, 9001, packets=40),),
        ),
        Example(
            "a listed relay connects to the DirPort",
            (s.flow("198.51.100.90", 41234, s.LOCAL_IP, 9030, packets=40),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a Tor exit visiting the instance's web site (a client, not a relay)",
            (s.flow("171.25.193.9", 41234, s.LOCAL_IP, 443, packets=40),),
        ),
        Example(
            "an unlisted host on port 9001",
            (s.flow("198.51.100.91", 41234, s.LOCAL_IP, 9001, packets=40),),
            intel=_LISTS,
        ),
        Example(
            "the connection was rejected by the security group",
            (s.flow("171.25.193.9", 41234, s.LOCAL_IP, 9001, action="REJECT"),),
        ),
    )
