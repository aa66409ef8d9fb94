"""NotifyFunction: a published finding -> one destination-safe ``Vigil Finding Notification`` event.

Trigger: EventBridge rule ``NotifyRule`` on FindingsBus (``source: vigil``, ``detail-type: Vigil
Finding``), asynchronous (retried, then ``NotifyDeadLetterQueue``).
Reads: the event's finding.
Writes: FindingsBus (``source: vigil``, ``detail-type: Vigil Finding Notification``; detail = the
severity and type the routing rules filter on, plus one body per enabled destination, rendered by
vigil/render.py so the API destinations' input transformers only place them).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from vigil_aws.finding_queue import finding_of_event
from vigil_aws.notify import Notifier, NotifySettings

settings = NotifySettings.from_env()
logger = Logger()
metrics = Metrics()
notifier = Notifier(settings)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    finding = finding_of_event(event)  # BadMessage: retried, then the dead-letter queue keeps it
    notifier.notify(finding)
    metrics.add_metric(name="notified", unit=MetricUnit.Count, value=1)
    return {"id": finding["id"], "destinations": list(settings.destinations)}
