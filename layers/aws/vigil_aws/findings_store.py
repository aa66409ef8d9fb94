"""The findings table: one item per finding id, aggregated with one atomic UpdateItem per batch.

Item attributes (the GuardDuty document of the latest occurrence is stored as JSON in
``finding``; the aggregate fields are attributes so they can be updated atomically and indexed):

    id, type, instanceId, severity, severityLabel, status (ACTIVE|ARCHIVED), title,
    count, firstSeen, lastSeen, createdAt, updatedAt       -- what GuardDuty shows
    lastSeq, expiresAt, lastPublishedAt, publishedUpdatedAt -- internal, never published

``lastPublishedAt`` is when the finding was last published (the publishing period runs from it);
``publishedUpdatedAt`` is which version (``updatedAt``) that publication carried, so "an update
is still unpublished" is ``updatedAt > publishedUpdatedAt``, one clock, no race with the stream.

Idempotency: agent ``seq`` is monotonic per instance and a finding belongs to one instance, so an
occurrence applies only if every contributing event is newer than what the item has already
counted (``lastSeq < :min_seq``). Replaying a Kinesis batch therefore changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from vigil.findings import Occurrence, iso
from vigil.severity import label
from vigil_aws.clients import client

ACTIVE: Final = "ACTIVE"
ARCHIVED: Final = "ARCHIVED"
INTERNAL_ATTRIBUTES: Final = frozenset({"lastSeq", "expiresAt", "lastPublishedAt", "publishedUpdatedAt"})
BY_STATUS: Final = "ByStatus"

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

    # -- publication claims (PublishFunction, PublishSweepFunction) -------------------------
    def claim_publication(self, finding_id: str, now: str, due_before: str | None, updated_at: str) -> bool:
        """Mark version ``updated_at`` of the finding published at ``now`` if the item still is
        that version and it never was published (``due_before`` None: a new finding) or was last
        published at or before ``due_before``. False: someone else did, it is not due, or a newer
        version superseded it. The claim is the lock that keeps the stream path and the sweep
        (and concurrent batches) from double-publishing.
        """
        cond = "updatedAt = :version AND (attribute_not_exists(lastPublishedAt)"
        values: dict[str, Any] = {":now": {"S": now}, ":version": {"S": updated_at}}
        if due_before is not None:
            cond += " OR lastPublishedAt <= :due"
            values[":due"] = {"S": due_before}
        cond += ")"
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"id": {"S": finding_id}},
                UpdateExpression="SET lastPublishedAt = :now, publishedUpdatedAt = :version",
                ConditionExpression=cond,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def release_claim(self, finding_id: str, claimed_at: str, previous: dict[str, Any]) -> None:
        """Undo a claim whose publication failed, so the retry (or the sweep) publishes: restore
        ``lastPublishedAt`` and ``publishedUpdatedAt`` from ``previous`` (the item as it was read
        before the claim). Best effort: a newer claim is left alone."""
        restore = ("lastPublishedAt", "publishedUpdatedAt")
        sets = [f"{attr} = :{attr}" for attr in restore if previous.get(attr)]
        removes = [attr for attr in restore if not previous.get(attr)]
        expr = " ".join(
            ([f"SET {', '.join(sets)}"] if sets else [])
            + ([f"REMOVE {', '.join(removes)}"] if removes else [])
        )
        values: dict[str, Any] = {":claimed": {"S": claimed_at}}
        values.update({f":{attr}": {"S": previous[attr]} for attr in restore if previous.get(attr)})
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

    def unpublished_updates(self, due_before: str) -> Iterator[dict[str, Any]]:
        """ACTIVE findings whose latest version was never published although their last
        publication is at or before ``due_before`` (plain values, ``ByStatus``, every page).
        Findings never published at all are the stream path's (published at once), not these.
        Items written before ``publishedUpdatedAt`` existed compare against ``lastPublishedAt``.
        """
        paginator = client("dynamodb").get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table,
            IndexName=BY_STATUS,
            KeyConditionExpression="#status = :active",
            FilterExpression=(
                "lastPublishedAt <= :due AND (updatedAt > publishedUpdatedAt OR "
                "(attribute_not_exists(publishedUpdatedAt) AND updatedAt > lastPublishedAt))"
            ),
            ProjectionExpression=(
                "id, #finding, #status, #count, firstSeen, lastSeen, createdAt, updatedAt, "
                "lastPublishedAt, publishedUpdatedAt"
            ),
            ExpressionAttributeNames={"#status": "status", "#finding": "finding", "#count": "count"},
            ExpressionAttributeValues={":active": {"S": ACTIVE}, ":due": {"S": due_before}},
        )
        for page in pages:
            for item in page.get("Items", []):
                yield plain(item)


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
