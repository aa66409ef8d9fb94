"""IsolationGroupsFunction: the untrack and isolation security groups of each VPC in the plan.

Trigger: the IsolateInstance state machine ("Ensure isolation groups" task).
Reads:   ``interfaces`` of the plan (interfaceId, vpcId); DescribeSecurityGroups (Vigil's groups
         are the ones with the ``vigil:role`` tag set at creation; IAM allows changes on no other).
Writes:  creates ``vigil-untrack`` (allow-all both ways) and ``vigil-isolation`` (no rules) once
         per VPC (CreateSecurityGroup, Authorize*/Revoke*); returns each interface with the two
         group ids of its VPC, for the two modify steps that follow.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from vigil.response.groups import assign
from vigil_aws.clients import client
from vigil_aws.response import ensure_isolation_groups

logger = Logger(service="IsolationGroupsFunction")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    interfaces = list(event.get("interfaces") or [])
    by_vpc = {
        vpc: ensure_isolation_groups(client("ec2"), vpc) for vpc in sorted({i["vpcId"] for i in interfaces})
    }
    logger.info("isolation groups", extra={"groups": by_vpc})
    return {"byVpc": by_vpc, "interfaces": assign(interfaces, by_vpc)}
