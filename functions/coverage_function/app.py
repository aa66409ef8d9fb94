"""CoverageFunction: HEALTHY / UNHEALTHY per running EC2 instance, stored, and changes on the bus.

Trigger: EventBridge schedule (``CoverageSchedule``, default ``rate(5 minutes)``).
Reads: EC2 ``DescribeInstances`` (running instances); ``CoverageTable`` (coverage rows: the
heartbeats the ingest keeps, and the status the previous run stored).
Writes: ``CoverageTable`` (the ``cov*`` attributes of a row whose evaluation changed; a row for an
instance that never reported); ``FindingsBus`` (``source: vigil``, ``detail-type: Vigil Runtime
Protection Unhealthy`` / ``Healthy``, GuardDuty's detail shape) on a status change.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from vigil.coverage import CoverageConfig, statistics
from vigil_aws.coverage_eval import CoverageEvaluator
from vigil_aws.settings import CoverageSettings

settings = CoverageSettings.from_env()
logger = Logger()
metrics = Metrics()
evaluator = CoverageEvaluator(
    settings.coverage_table,
    settings.bus_name,
    settings.account_id,
    CoverageConfig(disconnected_after_s=settings.disconnected_after_s, management=settings.management),
)


class EventsFailed(RuntimeError):
    """Some status changes could not be put on the bus (their status is not stored: the next run retries)."""


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = evaluator.run()
    stats = statistics(result.coverages)
    for status, n in stats["countByCoverageStatus"].items():
        metrics.add_metric(name=status.lower(), unit=MetricUnit.Count, value=n)
    metrics.add_metric(name="events_sent", unit=MetricUnit.Count, value=result.events_sent)
    summary = {
        **stats,
        "eventsSent": result.events_sent,
        "written": result.written,
        "unchanged": result.unchanged,
        "lostRace": result.lost_race,
        "leftInventory": result.left_inventory,
    }
    if result.failed_events:
        logger.error("coverage events not put on the bus", extra={"failed": result.failed_events})
        raise EventsFailed(
            f"{len(result.failed_events)} coverage event(s) failed: {sorted(result.failed_events)}"
        )
    return summary
