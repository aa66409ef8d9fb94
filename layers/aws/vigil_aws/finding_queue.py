"""The consumers of published findings: an SQS queue fed by an EventBridge rule on FindingsBus
(``source: vigil``, ``detail-type: Vigil Finding``), read in batches by one function per sink.

The bus carries exactly what PublishFunction / PublishSweepFunction published (never a suppressed
or archived finding), so each sink exports exactly the published stream. A message that is not a
published finding is hostile or broken: it goes to the sink's dead-letter queue with the reason
and is not retried. A sink failure reports the affected messages as batch item failures: SQS
redelivers them and, after the queue's maxReceiveCount, moves them to the same dead-letter queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from vigil_aws.clients import client
from vigil_aws.publisher import DETAIL_TYPE, SOURCE

MAX_MESSAGE_BYTES: Final = 256 * 1024  # an EventBridge event is at most 256 KiB
REQUIRED: Final = ("id", "arn", "type", "severity", "title", "accountId", "region", "createdAt", "updatedAt")


class BadMessage(ValueError):
    """Not a published Vigil finding (the reason is the message)."""


def finding_of(body: str) -> dict[str, Any]:
    """The finding an EventBridge ``Vigil Finding`` event (as SQS delivers it) carries."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"message of {len(body)} bytes is larger than an EventBridge event")
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    return finding_of_event(event)


def finding_of_event(event: Any) -> dict[str, Any]:
    """The finding an EventBridge ``Vigil Finding`` event (as a Lambda target receives it) carries."""
    if (
        not isinstance(event, dict)
        or event.get("source") != SOURCE
        or event.get("detail-type") != DETAIL_TYPE
    ):
        raise BadMessage(f"not a {SOURCE!r} {DETAIL_TYPE!r} event")
    finding = event.get("detail")
    if not isinstance(finding, dict):
        raise BadMessage("detail is not an object")
    missing = [k for k in REQUIRED if k not in finding]
    if missing:
        raise BadMessage(f"finding lacks {', '.join(missing)}")
    if not isinstance(finding["severity"], int | float) or isinstance(finding["severity"], bool):
        raise BadMessage("severity is not a number")
    if not all(isinstance(finding[k], str) for k in REQUIRED if k != "severity"):
        raise BadMessage("a required finding field is not a string")
    if len(str(finding["updatedAt"])) < 10:
        raise BadMessage("updatedAt is not an ISO-8601 time")
    return finding


@dataclass
class BatchResult:
    """What one batch did: message ids to retry, dead letters sent, findings the sink took."""

    retry: list[str] = field(default_factory=list)
    dead_letters: int = 0
    delivered: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # finding id -> sink error

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in self.retry]}


# A sink takes the batch's findings and returns {finding id: error} for those it could not take.
Sink = Callable[[list[dict[str, Any]]], dict[str, str]]


def process_batch(event: dict[str, Any], sink: Sink, dead_letter_url: str) -> BatchResult:
    """Parse every SQS record, dead-letter the bad ones, hand the findings to ``sink`` in one call,
    and report the messages of the findings it failed (or all of them if it raised) for retry."""
    result = BatchResult()
    by_finding: dict[str, list[str]] = {}
    findings: dict[str, dict[str, Any]] = {}
    for record in event.get("Records") or []:
        message_id = str(record.get("messageId"))
        try:
            finding = finding_of(str(record.get("body", "")))
        except BadMessage as exc:
            try:
                _dead_letter(dead_letter_url, message_id, str(exc), str(record.get("body", "")))
                result.dead_letters += 1
            except Exception:  # the dead-letter queue itself failed: let SQS retry the message
                result.retry.append(message_id)
            continue
        by_finding.setdefault(finding["id"], []).append(message_id)
        previous = findings.get(finding["id"])
        if previous is None or str(finding["updatedAt"]) >= str(previous["updatedAt"]):
            findings[finding["id"]] = finding  # two versions in one batch: the latest wins
    if not findings:
        return result
    try:
        failed = sink(list(findings.values()))
    except Exception as exc:  # every message of the batch is retried, none is lost
        failed = {fid: f"{type(exc).__name__}: {exc}" for fid in findings}
    result.errors = failed
    for fid, messages in by_finding.items():
        if fid in failed:
            result.retry += messages
        else:
            result.delivered += 1
    return result


def _dead_letter(url: str, message_id: str, reason: str, body: str) -> None:
    client("sqs").send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"reason": reason, "messageId": message_id, "body": body[:2048]}),
    )
