"""TriagePolicyFunction: decides auto-isolate / approve / notify for one finding.

Trigger: the Triage state machine ("Decide by policy" task), after its enrich steps.
Reads:   the event (EventBridge envelope, ``detail`` = the finding) and ``observed``
         (DescribeInstances, DescribeAutoScalingInstances, the finding's response status).
Writes:  nothing; returns the triage document the workflow routes on (vigil.response.policy).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from vigil.response.instance import instance_view
from vigil.response.policy import decide, finding_view
from vigil_aws.response import policy_config

logger = Logger(service="TriagePolicyFunction")
CONFIG = policy_config()  # cold start: a bad stack parameter fails here, with its name


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    finding = (event.get("event") or {}).get("detail") or {}
    observed = event.get("observed") or {}
    item = (observed.get("finding") or {}).get("Item") or {}
    previous = (item.get("responseStatus") or {}).get("S")
    inst = instance_view(finding_view(finding).instance_id, observed)
    doc = decide(
        finding,
        inst,
        CONFIG,
        previous_status=previous,
        triage_execution=str(event.get("triageExecution") or ""),
        now=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    logger.info("triage decision", extra={"decision": doc["decision"], "finding": doc["finding"]["id"]})
    return doc
