"""ReleasePlanFunction: what releasing one isolated instance must restore.

Trigger: the ReleaseInstance state machine ("Plan release" task), after its describe steps.
Reads:   the release request (instanceId, findingId?) and ``observed`` (DescribeInstances,
         DescribeNetworkInterfaces, and the isolation record isolation wrote to ResponseTable;
         the legacy ``vigil:original-sgs`` tags of older releases as a fallback).
Writes:  nothing; returns the plan (vigil.response.plan.release_plan).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from vigil.response.instance import instance_view
from vigil.response.plan import release_plan

logger = Logger(service="ReleasePlanFunction")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    instance_id = str(event.get("instanceId") or "")
    plan = release_plan(
        instance_view(instance_id, event.get("observed") or {}),
        finding_id=event.get("findingId"),
        now_iso=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    plan["requestedBy"] = str(event.get("requestedBy") or "unknown")
    logger.info("release plan", extra={"outcome": plan["outcome"], "steps": plan["steps"]})
    return plan
