"""The State table: the core's ``State`` port on DynamoDB, plus the applied-record ledger.

Items: ``pk`` (the core's key), ``n`` (a counter, for ``add``), ``seen`` (for ``remember``),
``expiresAt`` (TTL, epoch seconds). DynamoDB deletes expired items up to days late, so reads treat
an item whose ``expiresAt`` has passed as absent.

``DynamoDBState`` reads once per batch (BatchGetItem of the keys the engine asks for) and writes
once per changed key per batch (``write``). The ``Ledger`` remembers which Kinesis records were
applied (``kinesis#<eventID>``), so a redelivered record (a retry after a partial failure, a
bisected batch) is skipped whole: its state increments, coverage and dead letters are not applied
twice. Findings are protected on their own by the seq condition (``findings_store``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from vigil.state import InMemoryState
from vigil_aws.clients import client

BATCH_GET_MAX: Final = 100
LEDGER_TTL_S: Final = 2 * 86400  # longer than the stream's retention (24 h)


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


class DynamoDBState(InMemoryState):
    """The core's ``vigil.state.State`` on the State table (see the module docstring): the in-memory
    bookkeeping of ``InMemoryState``, loaded from the table and written back by ``write``."""

    def __init__(self, table: str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.table = table
        self.clock = clock
        self._loaded: set[str] = set()

    def load(self, keys: Iterable[str]) -> None:
        wanted = sorted(set(keys) - self._loaded)
        if not wanted:
            return
        now = self.clock()
        for item in batch_get(self.table, wanted):
            if not _alive(item, now):
                continue
            key = item["pk"]["S"]
            if item.get("seen", {}).get("BOOL"):
                self._seen.add(key)
            if "n" in item:
                self._counts[key] = self._counts.get(key, 0) + int(item["n"]["N"])
        self._loaded.update(wanted)

    def write(self) -> int:
        """Write this batch's changes, one UpdateItem per key; returns how many."""
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
                # A counter whose item expired (TTL not yet applied) restarts from this batch.
                ddb.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": ch.key}},
                    UpdateExpression="SET n = if_not_exists(n, :zero) + :v, expiresAt = :exp",
                    ExpressionAttributeValues={":v": {"N": str(ch.value)}, ":zero": {"N": "0"}, **exp},
                )
        self._pending.clear()
        return len(changes)


class Ledger:
    """Which Kinesis records were fully applied (one small item per record, TTL 2 days)."""

    def __init__(self, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.clock = clock
        self._applied: set[str] = set()

    @staticmethod
    def key(event_id: str) -> str:
        return f"kinesis#{event_id}"

    def load(self, event_ids: Iterable[str]) -> None:
        """One read for a whole invocation's records."""
        keys = sorted({self.key(e) for e in event_ids} - self._applied)
        if keys:
            now = self.clock()
            self._applied.update(
                i["pk"]["S"] for i in batch_get(self.table, keys, "pk, expiresAt") if _alive(i, now)
            )

    def applied(self, event_id: str) -> bool:
        return self.key(event_id) in self._applied

    def mark(self, event_id: str) -> None:
        key = self.key(event_id)
        client("dynamodb").put_item(
            TableName=self.table,
            Item={"pk": {"S": key}, "expiresAt": {"N": str(int(self.clock()) + LEDGER_TTL_S)}},
        )
        self._applied.add(key)
