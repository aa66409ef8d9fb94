"""The findings table: one item per finding id, aggregated exactly once per agent event.

Item attributes (the GuardDuty document of the latest occurrence is stored in ``finding``, as
zlib-compressed JSON: ``encode_document``, read back as JSON text by ``plain``; the aggregate fields
are attributes so they can be updated atomically and indexed):

    id, type, instanceId, severity, severityLabel, status (ACTIVE|ARCHIVED), title,
    count, firstSeen, lastSeen, createdAt, updatedAt       -- what GuardDuty shows
    applied, rev, expiresAt, lastPublishedAt, publishedUpdatedAt -- internal, never published

``lastPublishedAt`` is when the finding was last published (the publishing period runs from it);
``publishedUpdatedAt`` is which version (``updatedAt``) that publication carried, so "an update
is still unpublished" is ``updatedAt > publishedUpdatedAt``, one clock, no race with the stream.

Exactly once, by identity (``vigil.applied``): ``applied`` holds the agent seq intervals of the
records this finding has absorbed, ``rev`` counts its writes. An occurrence's events are counted
only if their seq is not in ``applied``; the write is conditional on ``rev`` (or on the item not
existing), so concurrent writers and redeliveries never double-count, and batches that arrive out
of order or in pieces each count once. The last state this container wrote is cached: in the
usual case (one container per shard) a finding costs one write and no read, and a redelivered
record costs nothing; a failed condition costs one consistent read and a retry.

Archive and suppression (docs/filters.md): ``status`` is ARCHIVED when a suppression rule
archived the latest occurrence (``suppressedBy`` names the rule) or when someone archived the
finding (``archiveSource = MANUAL``, ``archivedBy``, ``archivedAt``: ``vigil_aws.finding_actions``).
A new occurrence sets ``status`` and ``suppressedBy`` from the rules in force, except on a
manually archived finding, whose status only ``unarchive`` changes (GuardDuty keeps it archived).
Archive and unarchive are writes like ours: they bump ``rev``, so an ingest write that did not see
them fails its condition, reads again and keeps them; neither ever loses the other.

A write DynamoDB refuses for what it carries (``ValidationException``: a value out of its range)
is deterministic: it is raised as ``PoisonFinding`` for the caller to dead-letter, never retried.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from vigil.applied import AppliedSetError, SeqSet
from vigil.findings import Occurrence, iso
from vigil.severity import label
from vigil_aws.clients import client

ACTIVE: Final = "ACTIVE"
ARCHIVED: Final = "ARCHIVED"
MANUAL: Final = "MANUAL"  # archiveSource of a finding archived by a person, not by a rule
INTERNAL_ATTRIBUTES: Final = frozenset(
    {"applied", "rev", "lastSeq", "expiresAt", "lastPublishedAt", "publishedUpdatedAt"}
)
BY_STATUS: Final = "ByStatus"
CACHE_MAX: Final = 4096  # findings whose last written state this container remembers
DOCUMENT_MAX_BYTES: Final = 400 * 1024  # DynamoDB's item limit: no stored document inflates past it
WRITE_ATTEMPTS: Final = 8  # condition failures (concurrent writers) before giving up (transient)

_NAMES = {"#finding": "finding", "#type": "type", "#status": "status", "#count": "count"}


def now_iso(clock: Callable[[], float] = time.time) -> str:
    return iso(int(clock() * 1e9))


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_conditional_failure(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


class PoisonFinding(Exception):
    """DynamoDB refused a finding for its content: retrying cannot help."""

    def __init__(self, finding_id: str, reason: str) -> None:
        super().__init__(f"finding {finding_id}: {reason}")
        self.finding_id = finding_id
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Contribution:
    """An occurrence and the seq interval of the record it came from (None: its own seqs only)."""

    occurrence: Occurrence
    record_range: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int = 0  # findings written
    skipped: int = 0  # findings whose every event was already counted (a replay)
    events_replayed: int = 0  # matched events already counted (replays, re-sends)
    poison: list[PoisonFinding] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)  # transient: retry their records


@dataclass(frozen=True, slots=True)
class _Known:
    """A finding as this container last wrote (or read) it."""

    rev: int | None  # None: the item exists but predates ``rev`` (written by the old watermark)
    applied: SeqSet
    first_seen: str
    last_seen: str
    manual: bool = False  # archived by a person: occurrences never change its status


@dataclass
class _Group:
    """Everything one ``apply`` brings to one finding."""

    latest: Occurrence  # its document, severity and status (suppressed or not) are written
    # (seq lo, seq hi, count, first ns, last ns): counted whole, unless any of its seqs was applied
    units: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)


def _units(occ: Occurrence) -> list[tuple[int, int, int, int, int]]:
    if occ.sightings:
        folded = {seq: (n, last) for seq, n, last in occ.folded}  # an event standing for n (repeats)
        units = []
        for seq, t in occ.sightings:
            n, last = folded.get(seq, (1, t))
            units.append((seq, seq, n, t, last))
        return units
    return [(occ.min_seq, occ.max_seq, occ.count, occ.first_seen_ns, occ.last_seen_ns)]


def _group(contributions: Sequence[Occurrence | Contribution]) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    for c in contributions:
        occ, rng = (c.occurrence, c.record_range) if isinstance(c, Contribution) else (c, None)
        g = groups.get(occ.id)
        if g is None:
            g = groups[occ.id] = _Group(latest=occ)
        elif occ.last_seen_ns >= g.latest.last_seen_ns:
            g.latest = occ
        g.units.extend(_units(occ))
        if rng is not None:
            g.ranges.append(rng)
    return groups


def encode_document(finding: dict[str, Any]) -> dict[str, Any]:
    """The ``finding`` attribute: the document's JSON, zlib-compressed, as a Binary (issue 14: a
    write costs a WRU per KB of the whole item, and the document is most of it; ~2.8 KB of JSON is
    ~1.2 KB compressed, so an update of a finding costs 2 WRU instead of 4). A document whose JSON
    is larger than an item may be is refused here (``DocumentTooLarge``), as DynamoDB refused it
    uncompressed, so every stored document inflates within ``DOCUMENT_MAX_BYTES``."""
    text = json.dumps(finding, separators=(",", ":")).encode()
    if len(text) > DOCUMENT_MAX_BYTES:
        raise DocumentTooLarge(
            f"its document is {len(text)} bytes of JSON, over DynamoDB's item limit ({DOCUMENT_MAX_BYTES})"
        )
    return {"B": zlib.compress(text, 6)}


class DocumentTooLarge(ValueError):
    """A finding document larger than a DynamoDB item may be: never storable, so never retried."""


def document_text(value: Any) -> str:
    """The JSON of a stored ``finding`` value: a Binary of compressed JSON (``encode_document``;
    bytes, boto3's ``Binary``, or base64 text as in a Lambda stream event), or JSON text as written
    before the compression (still read). Inflating is bounded by DynamoDB's item size: a value
    that inflates past it, or that is not zlib, is an error naming what is wrong."""
    if isinstance(value, str):
        return value
    raw = getattr(value, "value", value)  # boto3.dynamodb.types.Binary
    if not isinstance(raw, bytes | bytearray):
        raise StoredDocumentError(f"stored finding document is a {type(value).__name__}, not bytes or text")
    z = zlib.decompressobj()
    try:
        out = z.decompress(bytes(raw), DOCUMENT_MAX_BYTES)
    except zlib.error as exc:
        raise StoredDocumentError(f"stored finding document is not zlib: {exc}") from None
    if z.unconsumed_tail or not z.eof:
        raise StoredDocumentError(
            f"stored finding document inflates past {DOCUMENT_MAX_BYTES} bytes or is truncated"
        )
    return out.decode("utf-8", "replace")


class StoredDocumentError(ValueError):
    """A stored ``finding`` attribute that does not decode (written by something else)."""


def update_values(occ: Occurrence, now: str, expires: int) -> dict[str, Any]:
    """The attribute values a new occurrence writes (also the item shape: see ``new_item``)."""
    f = occ.finding
    return {
        ":finding": encode_document(f),
        ":type": {"S": f["type"]},
        ":instance": {"S": f["resource"]["instanceDetails"]["instanceId"]},
        ":severity": {"N": str(f["severity"])},
        ":label": {"S": label(float(f["severity"]))},
        ":status": {"S": ARCHIVED if occ.suppressed else ACTIVE},
        ":title": {"S": f["title"]},
        ":now": {"S": now},
        ":first": {"S": iso(occ.first_seen_ns)},
        ":last": {"S": iso(occ.last_seen_ns)},
        ":applied": {"S": SeqSet(u[:2] for u in _units(occ)).dump()},
        ":rev": {"N": "1"},
        ":expires": {"N": str(expires)},
        ":n": {"N": str(occ.count)},
    }


def new_item(occ: Occurrence, now: str, expires: int) -> dict[str, Any]:
    """The item the aggregation writes for a finding seen for the first time."""
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
        "applied": v[":applied"],
        "rev": v[":rev"],
        "expiresAt": v[":expires"],
        "count": v[":n"],
        **({"suppressedBy": {"S": occ.suppressed_by}} if occ.suppressed_by else {}),
    }


class FindingsStore:
    def __init__(self, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.clock = clock
        self._known: OrderedDict[str, _Known] = OrderedDict()

    def apply(self, contributions: Sequence[Occurrence | Contribution], retention_days: int) -> Applied:
        """Aggregate occurrences into their findings, each matched event exactly once.

        Findings that hit what a retry may fix (throttling, an unavailable table) come back in
        ``Applied.failed``; findings DynamoDB refuses for their content in ``Applied.poison``.
        """
        applied = skipped = replayed = 0
        poison: list[PoisonFinding] = []
        failed: dict[str, Exception] = {}
        now = now_iso(self.clock)
        expires = int(self.clock()) + retention_days * 86400
        for fid, group in _group(contributions).items():
            try:
                wrote, dup = self._apply_one(fid, group, now, expires)
            except PoisonFinding as exc:
                poison.append(exc)
                continue
            except (ClientError, BotoCoreError, RuntimeError) as exc:
                failed[fid] = exc
                continue
            applied += wrote
            skipped += not wrote
            replayed += dup
        return Applied(applied, skipped, replayed, poison, failed)

    def _apply_one(self, fid: str, g: _Group, now: str, expires: int) -> tuple[bool, int]:
        """Write one finding; returns (written, events already counted)."""
        known = self._known.get(fid)
        for _ in range(WRITE_ATTEMPTS):
            done = known.applied if known is not None else SeqSet()
            fresh: dict[int, tuple[int, int, int, int]] = {}  # lo -> (hi, count, first, last)
            for lo, hi, n, first, last in g.units:
                if lo not in fresh and not done.intersects(lo, hi):
                    fresh[lo] = (hi, n, first, last)
            dup = sum(u[2] for u in g.units) - sum(v[1] for v in fresh.values())
            if not fresh:
                self._remember(fid, known)
                return False, dup
            after = done.copy()
            for lo, (hi, *_rest) in fresh.items():
                after.add(lo, hi)
            for lo, hi in g.ranges:
                after.add(lo, hi)
            count = sum(v[1] for v in fresh.values())
            first_ns = min(v[2] for v in fresh.values())
            last_ns = max(v[3] for v in fresh.values())
            try:
                written = self._write(fid, g, known, after, count, first_ns, last_ns, now, expires)
            except DocumentTooLarge as exc:
                raise PoisonFinding(fid, f"DynamoDB would refuse it: {exc}") from None
            except ClientError as exc:
                if error_code(exc) == "ValidationException":
                    raise PoisonFinding(fid, f"DynamoDB refused it: {exc}") from None
                if not is_conditional_failure(exc):
                    raise
                known = self._read(fid)  # someone else wrote it (or our cache was stale): look again
                continue
            self._remember(fid, written)
            return True, dup
        raise RuntimeError(f"finding {fid}: {WRITE_ATTEMPTS} conflicting writes in a row")

    def _write(
        self,
        fid: str,
        g: _Group,
        known: _Known | None,
        after: SeqSet,
        count: int,
        first_ns: int,
        last_ns: int,
        now: str,
        expires: int,
    ) -> _Known:
        occ = g.latest
        first, last = iso(first_ns), iso(last_ns)
        ddb = client("dynamodb")
        if known is None:  # a new finding, as far as anyone here knows
            item = new_item(occ, now, expires)
            item.update(
                {
                    "applied": {"S": after.dump()},
                    "count": {"N": str(count)},
                    "firstSeen": {"S": first},
                    "lastSeen": {"S": last},
                }
            )
            ddb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(id)")
            return _Known(1, after, first, last)
        base = update_values(occ, now, expires)
        newer = last >= known.last_seen  # ties: the later write wins, as it always did
        first = min(first, known.first_seen) if known.first_seen else first
        last = max(last, known.last_seen)
        sets = [
            "updatedAt = :now",
            "lastSeen = :last",
            "firstSeen = :first",
            "applied = :applied",
            "rev = :rev",
            "expiresAt = :expires",
        ]
        values: dict[str, Any] = {
            ":now": base[":now"],
            ":last": {"S": last},
            ":first": {"S": first},
            ":applied": {"S": after.dump()},
            ":rev": {"N": str((known.rev or 0) + 1)},
            ":expires": base[":expires"],
            ":n": {"N": str(count)},
        }
        names: dict[str, str] = {"#count": "count"}
        removes = ["lastSeq"]
        if newer:  # the document shows the latest occurrence, as GuardDuty's aggregation does
            sets += [
                "#finding = :finding",
                "#type = :type",
                "instanceId = :instance",
                "severity = :severity",
                "severityLabel = :label",
                "title = :title",
            ]
            values.update(
                {k: base[k] for k in (":finding", ":type", ":instance", ":severity", ":label", ":title")}
            )
            names.update(_NAMES)
            if not known.manual:  # a person's archive stands until they unarchive
                sets.append("#status = :status")
                values[":status"] = base[":status"]
            else:
                del names["#status"]  # DynamoDB refuses an unused name
            if occ.suppressed_by:
                sets.append("suppressedBy = :rule")
                values[":rule"] = {"S": occ.suppressed_by}
            else:
                removes.append("suppressedBy")
        if known.rev is None:
            cond = "attribute_exists(id) AND attribute_not_exists(rev)"
        else:
            cond = "rev = :old"
            values[":old"] = {"N": str(known.rev)}
        ddb.update_item(
            TableName=self.table,
            Key={"id": {"S": fid}},
            UpdateExpression=f"SET {', '.join(sets)} ADD #count :n REMOVE {', '.join(removes)}",
            ConditionExpression=cond,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return _Known((known.rev or 0) + 1, after, first, last, known.manual)

    def _read(self, fid: str) -> _Known | None:
        out = client("dynamodb").get_item(
            TableName=self.table,
            Key={"id": {"S": fid}},
            ConsistentRead=True,
            ProjectionExpression="applied, rev, lastSeq, firstSeen, lastSeen, archiveSource",
        )
        item = out.get("Item")
        if item is None:
            return None
        try:
            applied = SeqSet.parse(item.get("applied", {}).get("S", ""))
        except AppliedSetError as exc:
            raise PoisonFinding(fid, f"stored applied set is corrupt: {exc}") from None
        rev = int(item["rev"]["N"]) if "rev" in item else None
        if "lastSeq" in item:  # the old watermark: everything up to it was counted (our writes
            # remove it; an archive can give such an item a rev before ingest first rewrites it)
            applied.add(0, max(0, int(item["lastSeq"]["N"])))
        return _Known(
            rev,
            applied,
            item.get("firstSeen", {}).get("S", ""),
            item.get("lastSeen", {}).get("S", ""),
            item.get("archiveSource", {}).get("S") == MANUAL,
        )

    def _remember(self, fid: str, known: _Known | None) -> None:
        if known is None:
            return
        self._known[fid] = known
        self._known.move_to_end(fid)
        while len(self._known) > CACHE_MAX:
            self._known.popitem(last=False)

    def forget(self) -> None:
        """Drop the cache (tests; a container that must re-read)."""
        self._known.clear()

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

        ``ByStatus`` projects only what this filters on (keys, ``updatedAt``, the publication
        marks, ``suppressedBy``, ``archiveSource``): the ids it finds are read whole by ``batch_get``.
        """
        paginator = client("dynamodb").get_paginator("query")
        due = (
            "lastPublishedAt <= :due AND (updatedAt > publishedUpdatedAt OR "
            "(attribute_not_exists(publishedUpdatedAt) AND updatedAt > lastPublishedAt))"
        )
        for status, extra in ((ACTIVE, ""), (ARCHIVED, " AND archiveSource = :manual")):
            # manually archived findings keep being published on recurrence (GuardDuty);
            # suppressed occurrences never are
            values: dict[str, Any] = {":status": {"S": status}, ":due": {"S": due_before}}
            if extra:
                values[":manual"] = {"S": MANUAL}
            pages = paginator.paginate(
                TableName=self.table,
                IndexName=BY_STATUS,
                KeyConditionExpression="#status = :status",
                FilterExpression=f"{due} AND attribute_not_exists(suppressedBy){extra}",
                ProjectionExpression="id",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
            for page in pages:
                ids = [i["id"]["S"] for i in page.get("Items", [])]
                yield from batch_get(self.table, ids, projection=_SWEPT)


_SWEPT: Final = (
    "id",
    "finding",
    "status",
    "count",
    "firstSeen",
    "lastSeen",
    "createdAt",
    "updatedAt",
    "lastPublishedAt",
    "publishedUpdatedAt",
    "archiveSource",
)
BATCH_GET_MAX: Final = 100  # keys per BatchGetItem call (DynamoDB's limit)


def batch_get(
    table: str, ids: Sequence[str], *, projection: Sequence[str] = (), ddb: Any = None
) -> Iterator[dict[str, Any]]:
    """The items of ``ids`` (plain values, in no particular order; ids no longer there are left
    out), read by BatchGetItem, 100 keys a call, retrying what DynamoDB leaves unprocessed. The
    findings indexes hold keys only (template.yaml): their readers get the items here. ``ddb``:
    the client to use (default: the handlers')."""
    ddb = ddb or client("dynamodb")
    todo = list(dict.fromkeys(ids))
    names = {f"#a{i}": a for i, a in enumerate(projection)}
    for start in range(0, len(todo), BATCH_GET_MAX):
        request: dict[str, Any] = {"Keys": [{"id": {"S": i}} for i in todo[start : start + BATCH_GET_MAX]]}
        if names:
            request |= {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        pending: dict[str, Any] = {table: request}
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                time.sleep(min(1.0, 0.05 * 2**attempt))
            resp = ddb.batch_get_item(RequestItems=pending)
            for item in resp.get("Responses", {}).get(table, []):
                yield plain(item)
            pending = resp.get("UnprocessedKeys") or {}
            if not pending:
                break
        else:
            raise RuntimeError(
                f"BatchGetItem on {table}: keys still unprocessed after {WRITE_ATTEMPTS} attempts"
            )


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB AttributeValue map -> plain Python values (numbers as int or float)."""
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    out: dict[str, Any] = {}
    for k, v in item.items():
        if k == "finding" and isinstance(v, dict) and "B" in v:  # the compressed document, as JSON text
            out[k] = raw_document_text(v)
            continue
        value = des.deserialize(v)
        if hasattr(value, "as_integer_ratio") and not isinstance(value, int | float):  # Decimal
            value = int(value) if value == int(value) else float(value)
        out[k] = value
    return out


def _binary(value: Any) -> Any:
    """A Binary attribute value: bytes from boto3, base64 text in a Lambda stream event."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise StoredDocumentError(f"stored finding document is not base64: {exc}") from None
    return value


def raw_document_text(attribute: dict[str, Any]) -> str:
    """The JSON of a ``finding`` AttributeValue as DynamoDB returns it (``{"B": ...}`` or ``{"S": ...}``)."""
    if "B" in attribute:
        return document_text(_binary(attribute["B"]))
    return str(attribute["S"])


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
    if item.get("feedback"):
        service["userFeedback"] = item["feedback"]
    doc["createdAt"] = item.get("createdAt", doc.get("createdAt"))
    doc["updatedAt"] = item.get("updatedAt", doc.get("updatedAt"))
    return doc


def publishable(item: dict[str, Any]) -> bool:
    """May this finding item (plain values) reach the bus? Not if a suppression rule archived its
    latest occurrence; an archived one only if a person archived it (GuardDuty keeps publishing
    their recurrences)."""
    if item.get("suppressedBy"):
        return False
    return item.get("status") != ARCHIVED or item.get("archiveSource") == MANUAL


def iso_before(seconds: int, clock: Callable[[], float] = time.time) -> str:
    return iso(int((clock() - seconds) * 1e9))
