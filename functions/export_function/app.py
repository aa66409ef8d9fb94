"""ExportFunction: published findings -> S3 (GuardDuty's export layout) and Security Lake (OCSF 2004).

Trigger: SQS ``ExportQueue`` (batches of up to 100, fed by ``ExportRule`` on FindingsBus:
``source: vigil``, ``detail-type: Vigil Finding``; partial batch response).
Reads: the queue messages (EventBridge events).
Writes: ``ExportBucket`` (gzip JSON Lines, ``AWSLogs/<account>/GuardDuty/<region>/<yyyy>/<mm>/<dd>/``,
SSE-KMS with ``ExportKey``), the Security Lake bucket (OCSF, ``ext/<source>/region=/accountId=/eventDay=/``)
when configured, ``ExportDeadLetterQueue`` (messages that are not published findings, with the reason).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from vigil_aws.exports import ExportSettings, S3Export
from vigil_aws.finding_queue import process_batch

settings = ExportSettings.from_env()
logger = Logger()
metrics = Metrics()
export = S3Export(settings)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = process_batch(event, export.write, settings.dead_letter_url)
    metrics.add_metric(name="exported", unit=MetricUnit.Count, value=result.delivered)
    metrics.add_metric(name="dead_letters", unit=MetricUnit.Count, value=result.dead_letters)
    metrics.add_metric(name="retried", unit=MetricUnit.Count, value=len(result.retry))
    if result.errors:
        logger.error("exports failed; SQS retries them", extra={"failed": result.errors})
    return result.response()
