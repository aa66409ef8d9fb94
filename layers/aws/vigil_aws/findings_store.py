"""The findings table: one item per finding id, aggregated with one atomic UpdateItem per batch.

Item attributes (the GuardDuty document of the latest occurrence is stored as JSON in
``finding``; the aggregate fields are attributes so they can be updated atomically and indexed):

    id, type, instanceId, severity, severityLabel, status (ACTIVE|ARCHIVED), title,
    count, firstSeen, lastSeen, createdAt, updatedAt       -- what GuardDuty shows
    lastSeq, expiresAt, lastPublishedAt                   -- internal, never published

Idempotency: agent ``seq`` is monotonic per instance and a finding belongs to one instance, so an
occurrence applies only if every contributing event is newer than what the item has already
counted (``lastSeq < :min_seq``). Replaying a Kinesis batch therefore changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from vigil.findings import Occurrence, iso
from vigil.severity import label
from vigil_aws.clients import client

ACTIVE: Final = "ACTIVE"
ARCHIVED: Final = "ARCHIVED"
INTERNAL_ATTRIBUTES: Final = frozenset({"lastSeq", "expiresAt", "lastPublishedAt"})

_APPLY = (
    "SET #finding = :finding, #type = :type, instanceId = :instance, severity = :severity, "
    "severityLabel = :label, #status = :status, title = :title, updatedAt = :now, lastSeen = :last, "
    "lastSeq = :max_seq, expiresAt = :expires, createdAt = if_not_exists(createdAt, :now), "
    "firstSeen = if_not_exists(firstSeen, :first) "
    "ADD #count :n"
)
_APPLY_IF = "attribute_not_exists(id) OR lastSeq < :min_seq"
_NAMES = {"#finding": "finding", "#type": "type", "#status": "status", "#count": "count"}


def now_iso(clock: Callable[[], float] = time.time) -> str:
    return iso(int(clock() * 1e9))


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int = 0
    skipped: int = 0  # already counted (a replay): the condition said so


def update_values(occ: Occurrence, now: str, expires: int) -> dict[str, Any]:
    """The ExpressionAttributeValues of the aggregation UpdateItem for one occurrence."""
    f = occ.finding
    return {
        ":finding": {"S": json.dumps(f, separators=(",", ":"))},
        ":type": {"S": f["type"]},
        ":instance": {"S": f["resource"]["instanceDetails"]["instanceId"]},
        ":severity": {"N": str(f["severity"])},
        ":label": {"S": label(float(f["severity"]))},
        ":status": {"S": ARCHIVED if occ.suppressed else ACTIVE},
        ":title": {"S": f["title"]},
        ":now": {"S": now},
        ":first": {"S": iso(occ.first_seen_ns)},
        ":last": {"S": iso(occ.last_seen_ns)},
        ":max_seq": {"N": str(occ.max_seq)},
        ":min_seq": {"N": str(occ.min_seq)},
        ":expires": {"N": str(expires)},
        ":n": {"N": str(occ.count)},
    }


def new_item(occ: Occurrence, now: str, expires: int) -> dict[str, Any]:
    """The item the aggregation UpdateItem creates for a finding seen for the first time."""
    v = update_values(occ, now, expires)
    return {
        "id": {"S": occ.id},
        "finding": v[":finding"],
        "type": v[":type"],
        "instanceId": v[":instance"],
        "severity": v[":severity"],
        "severityLabel": v[":label"],
        "status": v[":status"],
        "title": v[":title"],
        "updatedAt": v[":now"],
        "createdAt": v[":now"],
        "firstSeen": v[":first"],
        "lastSeen": v[":last"],
        "lastSeq": v[":max_seq"],
        "expiresAt": v[":expires"],
        "count": v[":n"],
    }


class FindingsStore:
    def __init__(self, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.clock = clock

    def apply(self, occurrences: list[Occurrence], retention_days: int) -> Applied:
        """Aggregate each occurrence into its finding; a replayed occurrence is skipped."""
        applied = skipped = 0
        now = now_iso(self.clock)
        expires = int(self.clock()) + retention_days * 86400
        ddb = client("dynamodb")
        for occ in occurrences:
            values = update_values(occ, now, expires)
            try:
                ddb.update_item(
                    TableName=self.table,
                    Key={"id": {"S": occ.id}},
                    UpdateExpression=_APPLY,
                    ConditionExpression=_APPLY_IF,
                    ExpressionAttributeNames=_NAMES,
                    ExpressionAttributeValues=values,
                )
                applied += 1
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
                skipped += 1
        return Applied(applied, skipped)

    def get(self, finding_id: str) -> dict[str, Any] | None:
        out = client("dynamodb").get_item(
            TableName=self.table, Key={"id": {"S": finding_id}}, ConsistentRead=True
        )
        item = out.get("Item")
        return plain(item) if item else None

    # -- publication claims (PublishFunction) ----------------------------------------------
    def claim_publication(self, finding_id: str, now: str, due_before: str | None) -> bool:
        """Mark the finding published at ``now`` if it never was (``due_before`` None: a new
        finding) or was last published at or before ``due_before``. False: someone else did, or
        it is not due. The claim is the lock that keeps concurrent batches from double-publishing.
        """
        cond = "attribute_exists(id) AND (attribute_not_exists(lastPublishedAt)"
        values: dict[str, Any] = {":now": {"S": now}}
        if due_before is not None:
            cond += " OR lastPublishedAt <= :due"
            values[":due"] = {"S": due_before}
        cond += ")"
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"id": {"S": finding_id}},
                UpdateExpression="SET lastPublishedAt = :now",
                ConditionExpression=cond,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def release_claim(self, finding_id: str, claimed_at: str, previous: str | None) -> None:
        """Undo a claim whose publication failed, so the retry publishes (best effort)."""
        expr = "SET lastPublishedAt = :prev" if previous else "REMOVE lastPublishedAt"
        values: dict[str, Any] = {":claimed": {"S": claimed_at}}
        if previous:
            values[":prev"] = {"S": previous}
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"id": {"S": finding_id}},
                UpdateExpression=expr,
                ConditionExpression="lastPublishedAt = :claimed",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB AttributeValue map -> plain Python values (numbers as int or float)."""
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    out: dict[str, Any] = {}
    for k, v in item.items():
        value = des.deserialize(v)
        if hasattr(value, "as_integer_ratio") and not isinstance(value, int | float):  # Decimal
            value = int(value) if value == int(value) else float(value)
        out[k] = value
    return out


def document(item: dict[str, Any]) -> dict[str, Any]:
    """The GuardDuty-shaped finding for a stored item (plain values): the latest occurrence's
    document with the aggregate (count, first/last seen, created/updated, archived) spliced in.
    Internal attributes never leave the table."""
    doc: dict[str, Any] = json.loads(item["finding"])
    service = doc.setdefault("service", {})
    service["count"] = int(item.get("count", service.get("count", 1)))
    service["eventFirstSeen"] = item.get("firstSeen", service.get("eventFirstSeen"))
    service["eventLastSeen"] = item.get("lastSeen", service.get("eventLastSeen"))
    service["archived"] = item.get("status") == ARCHIVED
    doc["createdAt"] = item.get("createdAt", doc.get("createdAt"))
    doc["updatedAt"] = item.get("updatedAt", doc.get("updatedAt"))
    return doc


def iso_before(seconds: int, clock: Callable[[], float] = time.time) -> str:
    return iso(int((clock() - seconds) * 1e9))
