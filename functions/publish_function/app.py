"""PublishFunction: findings table changes -> FindingsBus.

Trigger: DynamoDB stream of ``FindingsTable`` (INSERT and MODIFY; partial batch response,
bisect on error, bounded retries, on-failure record to ``PublishFailureQueue``).
Reads: the stream images.
Writes: ``FindingsBus`` (``source: vigil``, ``detail-type: Vigil Finding``, detail = the finding),
``FindingsTable`` (the ``lastPublishedAt`` / ``publishedUpdatedAt`` claim: new findings at once,
updates once per publishing period; an update held back here is published by PublishSweepFunction).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vigil_aws.publish import Publication
from vigil_aws.settings import PublishSettings

settings = PublishSettings.from_env()
logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
publication = Publication(settings)


def record_handler(record: DynamoDBRecord) -> None:
    images = record.raw_event["dynamodb"]
    try:
        outcome = publication.handle(
            record.raw_event["eventName"], images.get("OldImage"), images.get("NewImage")
        )
    except Exception:
        logger.exception("record failed; the stream mapping retries it", extra={"eventID": record.event_id})
        raise
    metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
