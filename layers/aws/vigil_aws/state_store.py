"""The State table: the core's ``State`` port on DynamoDB.

Items: ``pk`` (the core's key), ``n`` (a counter, for ``add``), ``seen`` (for ``remember``),
``expiresAt`` (TTL, epoch seconds), and for counters ``applied`` (instance id -> the agent seq
intervals already counted, ``vigil.applied``) and ``rev`` (a write counter). DynamoDB deletes
expired items up to days late, so reads treat an item whose ``expiresAt`` has passed as absent.

``DynamoDBState`` lives for one invocation: it reads each key once (BatchGetItem of the keys the
engine asks for, record by record) and writes each changed key once (``write``), however many
records of the invocation touched it. ``remember`` is idempotent by nature (SET). ``add`` is made
so by identity: a record whose seq interval a counter has already absorbed adds nothing, and the
write is conditional on the ``rev`` read, so a redelivered or re-sent record never counts twice
and no write is spent per Kinesis record to know it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from botocore.exceptions import ClientError

from vigil.applied import AppliedSetError, SeqSet
from vigil.state import InMemoryState
from vigil_aws.clients import client

BATCH_GET_MAX: Final = 100
WRITE_ATTEMPTS: Final = 8
_ATTRS: Final = "pk, n, seen, expiresAt, applied, rev"


def batch_get(table: str, keys: list[str], attrs: str = "pk, n, seen, expiresAt") -> list[dict[str, Any]]:
    """BatchGetItem in chunks of 100, retrying unprocessed keys (throttling) with backoff."""
    ddb = client("dynamodb")
    items: list[dict[str, Any]] = []
    for i in range(0, len(keys), BATCH_GET_MAX):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"pk": {"S": k}} for k in keys[i : i + BATCH_GET_MAX]],
                "ProjectionExpression": attrs,
            }
        }
        for attempt in range(8):
            out = ddb.batch_get_item(RequestItems=request)
            items.extend(out.get("Responses", {}).get(table, []))
            request = out.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(1.0, 0.05 * 2**attempt))
        else:
            raise RuntimeError(f"BatchGetItem on {table}: keys still unprocessed after retries")
    return items


def _alive(item: dict[str, Any], now: float) -> bool:
    exp = item.get("expiresAt")
    return exp is None or int(exp["N"]) > now


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _applied(item: dict[str, Any]) -> dict[str, SeqSet]:
    out: dict[str, SeqSet] = {}
    for instance, v in item.get("applied", {}).get("M", {}).items():
        try:
            out[instance] = SeqSet.parse(v.get("S", ""))
        except AppliedSetError:
            out[instance] = SeqSet()  # written by something else: trust nothing of it
    return out


class DynamoDBState(InMemoryState):
    """The core's ``vigil.state.State`` on the State table (see the module docstring): the in-memory
    bookkeeping of ``InMemoryState``, loaded from the table and written back by ``write``."""

    def __init__(self, table: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.table = table
        self.clock = clock
        self._loaded: set[str] = set()
        self._rev: dict[str, int | None] = {}  # the stored item's rev (None: no item, or no rev)
        self._base: dict[str, int] = {}  # the stored, live count of a counter
        self._applied: dict[str, dict[str, SeqSet]] = {}  # counter -> instance -> applied seqs
        # counter -> what this invocation adds: (the record's ranges, n), to replay on a conflict
        self._adds: dict[str, list[tuple[dict[str, tuple[int, int]], int]]] = {}
        self._record: dict[str, tuple[int, int]] = {}

    def begin_record(self, ranges: dict[str, tuple[int, int]]) -> None:
        self._record = dict(ranges)

    def _absorbed(self, key: str, ranges: dict[str, tuple[int, int]]) -> bool:
        applied = self._applied.get(key, {})
        return bool(ranges) and all(
            instance in applied and applied[instance].covers(lo, hi) for instance, (lo, hi) in ranges.items()
        )

    def load(self, keys: Iterable[str]) -> None:
        wanted = sorted(set(keys) - self._loaded)
        if not wanted:
            return
        now = self.clock()
        for item in batch_get(self.table, wanted, _ATTRS):
            self._take(item, now)
        self._loaded.update(wanted)

    def _take(self, item: dict[str, Any], now: float) -> None:
        key = item["pk"]["S"]
        self._rev[key] = int(item["rev"]["N"]) if "rev" in item else None
        if not _alive(item, now):
            return
        if item.get("seen", {}).get("BOOL"):
            self._seen.add(key)
        if "n" in item:
            self._base[key] = int(item["n"]["N"])
            self._counts[key] = self._counts.get(key, 0) + self._base[key]
            self._applied[key] = _applied(item)

    def add(self, key: str, n: int, ttl_s: int) -> None:
        if self._absorbed(key, self._record):
            return  # this record was counted here before (a redelivery or a re-send)
        super().add(key, n, ttl_s)
        self._adds.setdefault(key, []).append((dict(self._record), n))

    def write(self) -> int:
        """Write this invocation's changes, one write per key; returns how many."""
        ddb = client("dynamodb")
        now = int(self.clock())
        changes = self.changes()
        for ch in changes:
            exp = {":exp": {"N": str(now + ch.ttl_s)}}
            if ch.op == "remember":
                ddb.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": ch.key}},
                    UpdateExpression="SET seen = :t, expiresAt = :exp",
                    ExpressionAttributeValues={":t": {"BOOL": True}, **exp},
                )
            else:
                self._write_counter(ch.key, exp)
        self._pending.clear()
        self._adds.clear()
        return len(changes)

    def _write_counter(self, key: str, exp: dict[str, Any]) -> None:
        ddb = client("dynamodb")
        for _ in range(WRITE_ATTEMPTS):
            applied = {i: s.copy() for i, s in self._applied.get(key, {}).items()}
            total = self._base.get(key, 0)
            for ranges, n in self._adds.get(key, []):
                if ranges and all(
                    i in applied and applied[i].covers(lo, hi) for i, (lo, hi) in ranges.items()
                ):
                    continue
                total += n
                for instance, (lo, hi) in ranges.items():
                    applied.setdefault(instance, SeqSet()).add(lo, hi)
            rev = self._rev.get(key)
            values: dict[str, Any] = {
                ":n": {"N": str(total)},
                ":applied": {"M": {i: {"S": s.dump()} for i, s in applied.items()}},
                ":rev": {"N": str((rev or 0) + 1)},
                **exp,
            }
            if rev is None:
                cond = "attribute_not_exists(rev)"
            else:
                cond = "rev = :old"
                values[":old"] = {"N": str(rev)}
            try:
                ddb.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": key}},
                    UpdateExpression="SET n = :n, applied = :applied, rev = :rev, expiresAt = :exp",
                    ConditionExpression=cond,
                    ExpressionAttributeValues=values,
                )
                return
            except ClientError as exc:
                if not _is_conditional_failure(exc):
                    raise
            # someone else counted into this key meanwhile: read it again and recount
            self._base.pop(key, None)
            self._applied.pop(key, None)
            self._rev.pop(key, None)
            items = batch_get(self.table, [key], _ATTRS)
            for item in items:
                self._take(item, float(self.clock()))
        raise RuntimeError(f"state key {key}: {WRITE_ATTEMPTS} conflicting writes in a row")
