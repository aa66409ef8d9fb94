"""SecurityHubFunction: published findings -> Security Hub (ASFF, BatchImportFindings).

Trigger: SQS ``SecurityHubQueue`` (batches of up to 100, fed by ``SecurityHubRule`` on FindingsBus:
``source: vigil``, ``detail-type: Vigil Finding``; partial batch response).
Reads: the queue messages (EventBridge events).
Writes: Security Hub (``BatchImportFindings`` into this account's ``default`` product),
``SecurityHubDeadLetterQueue`` (messages that are not published findings, with the reason).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from vigil_aws.finding_queue import process_batch
from vigil_aws.securityhub import import_findings
from vigil_aws.settings import env_str

dead_letter_url = env_str(os.environ, "DEAD_LETTER_QUEUE_URL", "SecurityHubFunction")
logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = process_batch(event, import_findings, dead_letter_url)
    metrics.add_metric(name="imported", unit=MetricUnit.Count, value=result.delivered)
    metrics.add_metric(name="dead_letters", unit=MetricUnit.Count, value=result.dead_letters)
    metrics.add_metric(name="retried", unit=MetricUnit.Count, value=len(result.retry))
    if result.errors:
        logger.error("imports failed; SQS retries them", extra={"failed": result.errors})
    return result.response()
