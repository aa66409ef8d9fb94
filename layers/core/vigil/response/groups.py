"""The two per-VPC security groups of the conntrack-safe isolation sequence.

Security-group changes do not drop connections that are already tracked. A group that allows all
traffic in both directions makes flows *untracked* (they are then evaluated packet by packet);
moving next to a group with no rules at all drops them. Both groups are created once per VPC and
reused; they are found by name and recognised by the ``vigil:role`` tag.
"""

from __future__ import annotations

from typing import Any, Final

from vigil.response import tags as t

ALL_TRAFFIC: Final[dict[str, Any]] = {
    "IpProtocol": "-1",
    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
    "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
}

GROUPS: Final[dict[str, dict[str, str]]] = {
    "untrack": {
        "name": t.UNTRACK_GROUP_NAME,
        "description": "Vigil isolation step 1: allow-all both ways so tracked flows become untracked",
    },
    "isolation": {
        "name": t.ISOLATION_GROUP_NAME,
        "description": "Vigil isolation step 2: no rules; an instance here can neither send nor receive",
    },
}


def stray_rules(group: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ingress and egress permissions on the isolation group, which must have none."""
    return list(group.get("IpPermissions") or []), list(group.get("IpPermissionsEgress") or [])


def assign(interfaces: list[dict[str, Any]], by_vpc: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Each interface of the plan with the untrack and isolation group ids of its VPC."""
    return [
        {
            "interfaceId": i["interfaceId"],
            "vpcId": i["vpcId"],
            "untrackGroupId": by_vpc[i["vpcId"]]["untrack"],
            "isolationGroupId": by_vpc[i["vpcId"]]["isolation"],
        }
        for i in interfaces
    ]
