"""IsolationPlanFunction: what isolating one instance must change (or why it must not).

Trigger: the IsolateInstance state machine ("Plan isolation" task), after its describe steps.
Reads:   the isolation request (findingId, instanceId, dryRun, ...) and ``observed``
         (DescribeInstances, DescribeNetworkInterfaces, DescribeAutoScalingInstances,
         DescribeInstanceAttribute disableApiTermination, and the isolation record of an earlier
         run from ResponseTable).
Writes:  nothing; returns the plan (vigil.response.plan.isolation_plan), including the
         ResponseTable UpdateItem that records the originals. The workflow logs it and stops
         there in dry-run mode.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from vigil.response.instance import instance_view
from vigil.response.plan import IsolationRequest, isolation_plan
from vigil_aws.response import PlanSettings

logger = Logger(service="IsolationPlanFunction")
SETTINGS = PlanSettings.from_env()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    req = IsolationRequest.from_input(event)
    now = datetime.now(UTC)
    plan = isolation_plan(
        req,
        instance_view(req.instance_id, event.get("observed") or {}),
        protected_tag_key=SETTINGS.protected_tag_key,
        budget_per_hour=SETTINGS.budget_per_hour,
        now_iso=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        now_epoch=int(now.timestamp()),
    )
    logger.info("isolation plan", extra={"outcome": plan["outcome"], "steps": plan["steps"]})
    return plan
