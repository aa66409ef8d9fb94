"""PublishSweepFunction: updates the stream path held back -> FindingsBus, once they are due.

Trigger: EventBridge schedule (``rate(5 minutes)``); the function itself decides what is due.
Reads: ``FindingsTable`` index ``ByStatus`` (ACTIVE findings whose latest update is unpublished
and whose last publication is at least one publishing period old).
Writes: ``FindingsBus`` (``source: vigil``, ``detail-type: Vigil Finding``, detail = the finding),
``FindingsTable`` (the ``lastPublishedAt`` / ``publishedUpdatedAt`` claim PublishFunction also uses).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from vigil_aws.publish import Publication
from vigil_aws.settings import PublishSettings

settings = PublishSettings.from_env()
logger = Logger()
metrics = Metrics()
publication = Publication(settings)


class SweepFailed(RuntimeError):
    """Some due findings could not be published (claims released: the next sweep retries)."""


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    result = publication.sweep()
    for outcome, n in result.outcomes.items():
        metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=n)
    metrics.add_metric(name="failed", unit=MetricUnit.Count, value=len(result.failed))
    if result.failed:
        logger.error("publications failed; the next sweep retries them", extra={"failed": result.failed})
        raise SweepFailed(f"{len(result.failed)} finding(s) not published: {sorted(result.failed)}")
    return dict(result.outcomes)
