"""Saved filters and suppression rules (``vigil.criteria``) in ``FiltersTable``, and what ingest
reads of them.

Item per filter, keyed by ``name``: ``filter`` (the GetFilter-shaped JSON), ``action``, ``rank``,
``version`` (counts the writes; every write is conditional on it), ``createdAt``, ``updatedAt``,
``updatedBy``. One more item, ``name = "#count"`` (``#`` is never in a filter name), counts the
filters: a create or delete changes it in the same transaction as the filter, so GuardDuty's limit
of 100 holds under concurrent creates.

Every change is published on the stack's bus (``source: vigil``, ``detail-type: Vigil Filter
Changed``, detail: operation, name, who, before, after): attackers use suppression to hide, so a
rule never changes unseen. If the event cannot be put, the change is undone (conditionally: only
if nobody changed the rule since) and :class:`FilterChangeError` says so; if even the undo fails,
the error says the change stands unpublished. Either way the caller hears of it.

Ingest reads the rules through :class:`SuppressionRules`: every change also bumps the counter
item's ``generation``; ingest reads that one attribute at most every 5 seconds and the whole table
only when it changed (or every 15 minutes), so a new rule is in force within seconds for one
small read per 5 s per container. A failed read keeps the rules of the last good read (and says
so); a stored rule that no longer parses is skipped with its reason.
"""

from __future__ import annotations

import getpass
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from vigil.criteria import MAX_FILTERS, Filter, FilterError, Suppressor, in_rank_order, parse_filter
from vigil.findings import iso
from vigil_aws.clients import client

log = logging.getLogger(__name__)

SOURCE: Final = "vigil"
DETAIL_TYPE: Final = "Vigil Filter Changed"
COUNTER: Final = "#count"
CHECK_SECONDS: Final = 5.0  # how stale ingest's rules may be: one small GetItem per period
REFRESH_SECONDS: Final = 900.0  # a full re-read even without a change (items edited by hand)


class FilterChangeError(RuntimeError):
    """A change refused (limit, missing, exists, concurrent edit) or not published."""


@dataclass(frozen=True, slots=True)
class StoredFilter:
    filter: Filter
    version: int
    created_at: str
    updated_at: str
    updated_by: str

    def to_json(self) -> dict[str, Any]:
        """GetFilter's output shape (+ Version / CreatedAt / UpdatedAt, as the API has them)."""
        return {
            **self.filter.to_json(),
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "Version": self.version,
        }


def caller(sts: Any) -> str:
    """Who makes the change: the caller identity's ARN, else the local user, else "unknown"."""
    try:
        arn = str(sts.get_caller_identity()["Arn"])
    except Exception:  # no credentials, no network: the change is still attributed somehow
        arn = ""
    try:
        user = getpass.getuser()
    except Exception:
        user = ""
    if arn and user:
        return f"{arn} (local user {user})"
    return arn or (f"local user {user}" if user else "unknown")


class FilterStore:
    """CRUD on FiltersTable with GuardDuty's limits; every change published on ``bus_name``.
    Clients default to the process-wide ones (Lambda); the CLI passes its own."""

    def __init__(
        self,
        table: str,
        bus_name: str = "",
        *,
        ddb: Any = None,
        events: Any = None,
        sts: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.bus_name = bus_name
        self._ddb, self._events, self._sts = ddb, events, sts
        self.clock = clock

    @property
    def ddb(self) -> Any:
        return self._ddb or client("dynamodb")

    # -- reads -----------------------------------------------------------------------------
    def list_filters(self) -> tuple[list[StoredFilter], list[str]]:
        """Every stored filter in rank order, and the reasons of those that no longer parse."""
        stored: list[StoredFilter] = []
        problems: list[str] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.ddb.scan(**kwargs)
            for item in page.get("Items", []):
                if item.get("name", {}).get("S") == COUNTER:
                    continue
                try:
                    stored.append(_from_item(item))
                except FilterError as exc:
                    problems.append(f"filter {item.get('name', {}).get('S', '?')[:64]!r}: {exc}")
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        order = {id(f): i for i, f in enumerate(in_rank_order(s.filter for s in stored))}
        stored.sort(key=lambda s: order[id(s.filter)])
        return stored, problems

    def get(self, name: str) -> StoredFilter | None:
        item = self.ddb.get_item(TableName=self.table, Key={"name": {"S": name}}, ConsistentRead=True).get(
            "Item"
        )
        return _from_item(item) if item else None

    # -- changes ---------------------------------------------------------------------------
    def create(self, f: Filter) -> StoredFilter:
        """Create ``f``; an unranked filter goes after every ranked one (as GuardDuty appends)."""
        if f.rank is None:
            ranks = [s.filter.rank or 0 for s in self.list_filters()[0]]
            f = _with(f, rank=min(100, max(ranks, default=0) + 1))
        now = self._now()
        who = self._who()
        after = StoredFilter(f, 1, now, now, who)
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _to_item(after),
                            "ConditionExpression": "attribute_not_exists(#n)",
                            "ExpressionAttributeNames": {"#n": "name"},
                        }
                    },
                    self._counter(+1, limit=True),
                ]
            )
        except ClientError as exc:
            reasons = _cancellation(exc)
            if reasons[:1] == ["ConditionalCheckFailed"]:
                raise FilterChangeError(
                    f"a filter named {f.name!r} already exists (update it instead)"
                ) from None
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                raise FilterChangeError(
                    f"GuardDuty allows at most {MAX_FILTERS} filters per account and Region; delete one first"
                ) from None
            raise
        self._announce("CREATE", f.name, who, None, after, undo=lambda: self._undo_create(after))
        return after

    def update(self, name: str, changes: dict[str, Any]) -> StoredFilter:
        """UpdateFilter: ``changes`` holds any of Description, Action, Rank, FindingCriteria
        (PascalCase, as UpdateFilter takes them; Name must match if given; Tags are kept)."""
        before = self.get(name)
        if before is None:
            raise FilterChangeError(f"no filter named {name!r}")
        merged = before.filter.to_json()
        for key in ("Description", "Action", "Rank", "FindingCriteria"):
            if key in changes:
                merged[key] = changes[key]
        if changes.get("Name", name) != name:
            raise FilterChangeError(
                "a filter cannot be renamed: create one under the new name, then delete this one"
            )
        f = parse_filter(merged)
        who = self._who()
        after = StoredFilter(f, before.version + 1, before.created_at, self._now(), who)
        self._replace(before, after)
        self._announce(
            "UPDATE", name, who, before, after, undo=lambda: self._replace(after, before, restore=True)
        )
        return after

    def delete(self, name: str) -> StoredFilter:
        before = self.get(name)
        if before is None:
            raise FilterChangeError(f"no filter named {name!r}")
        who = self._who()
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": {"name": {"S": name}},
                            "ConditionExpression": "version = :v",
                            "ExpressionAttributeValues": {":v": {"N": str(before.version)}},
                        }
                    },
                    self._counter(-1),
                ]
            )
        except ClientError as exc:
            if _cancellation(exc)[:1] == ["ConditionalCheckFailed"]:
                raise FilterChangeError(f"filter {name!r} changed meanwhile; look again and retry") from None
            raise
        self._announce("DELETE", name, who, before, None, undo=lambda: self._undo_delete(before))
        return before

    # -- internals -------------------------------------------------------------------------
    def _replace(self, before: StoredFilter, after: StoredFilter, *, restore: bool = False) -> None:
        item = _to_item(after)
        if restore:  # the undo writes the old content under a new version, so a reader notices
            item["version"] = {"N": str(before.version + 1)}
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": item,
                            "ConditionExpression": "version = :v",
                            "ExpressionAttributeValues": {":v": {"N": str(before.version)}},
                        }
                    },
                    self._counter(0),
                ]
            )
        except ClientError as exc:
            if _cancellation(exc)[:1] == ["ConditionalCheckFailed"]:
                raise FilterChangeError(
                    f"filter {before.filter.name!r} changed meanwhile; look again and retry"
                ) from None
            raise

    def _counter(self, delta: int, *, limit: bool = False) -> dict[str, Any]:
        """The counter item's part of a change: the number of filters, and ``generation``, which
        every change bumps so ingest notices a change with one small read."""
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"name": {"S": COUNTER}},
            "UpdateExpression": (
                "SET filters = if_not_exists(filters, :zero) + :delta, "
                "generation = if_not_exists(generation, :zero) + :one"
            ),
            "ExpressionAttributeValues": {
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":delta": {"N": str(delta)},
            },
        }
        if limit:
            update["ConditionExpression"] = "attribute_not_exists(filters) OR filters < :max"
            update["ExpressionAttributeValues"][":max"] = {"N": str(MAX_FILTERS)}
        return {"Update": update}

    def generation(self, *, consistent: bool = False) -> int:
        """Counts the changes ever made (0: none)."""
        item = self.ddb.get_item(
            TableName=self.table,
            Key={"name": {"S": COUNTER}},
            ProjectionExpression="generation",
            ConsistentRead=consistent,
        ).get("Item")
        return int(item["generation"]["N"]) if item and "generation" in item else 0

    def _undo_create(self, after: StoredFilter) -> None:
        self.ddb.transact_write_items(
            TransactItems=[
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": {"name": {"S": after.filter.name}},
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": {":v": {"N": str(after.version)}},
                    }
                },
                self._counter(-1),
            ]
        )

    def _undo_delete(self, before: StoredFilter) -> None:
        self.ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _to_item(before),
                        "ConditionExpression": "attribute_not_exists(#n)",
                        "ExpressionAttributeNames": {"#n": "name"},
                    }
                },
                self._counter(+1),
            ]
        )

    def _announce(
        self,
        operation: str,
        name: str,
        who: str,
        before: StoredFilter | None,
        after: StoredFilter | None,
        *,
        undo: Callable[[], None],
    ) -> None:
        detail = {
            "operation": operation,
            "name": name,
            "who": who,
            "at": self._now(),
            "before": before.to_json() if before else None,
            "after": after.to_json() if after else None,
        }
        try:
            self.publish(detail)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            try:
                undo()
            except Exception as undo_exc:
                log.error("filter change made but not published, and not undone", extra={"detail": detail})
                raise FilterChangeError(
                    f"{operation} of filter {name!r} was made but NOT published on the bus ({problem}), "
                    f"and undoing it failed ({type(undo_exc).__name__}: {undo_exc}): check the filter"
                ) from None
            raise FilterChangeError(
                f"{operation} of filter {name!r} undone: it could not be published on the bus ({problem})"
            ) from None

    def publish(self, detail: dict[str, Any]) -> None:
        if not self.bus_name:
            raise FilterChangeError("no event bus configured to publish filter changes on")
        events = self._events or client("events")
        out = events.put_events(
            Entries=[
                {
                    "EventBusName": self.bus_name,
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Resources": [],
                    "Detail": json.dumps(detail, separators=(",", ":")),
                }
            ]
        )
        if out.get("FailedEntryCount"):
            entry = out["Entries"][0]
            raise FilterChangeError(
                f"put_events rejected it: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )

    def _now(self) -> str:
        return iso(int(self.clock() * 1e9))

    def _who(self) -> str:
        return caller(self._sts or client("sts"))


def _with(f: Filter, **changes: Any) -> Filter:
    from dataclasses import replace

    return replace(f, **changes)


def _to_item(s: StoredFilter) -> dict[str, Any]:
    f = s.filter
    return {
        "name": {"S": f.name},
        "filter": {"S": json.dumps(f.to_json(), separators=(",", ":"))},
        "action": {"S": f.action},
        "rank": {"N": str(f.rank or 0)},
        "version": {"N": str(s.version)},
        "createdAt": {"S": s.created_at},
        "updatedAt": {"S": s.updated_at},
        "updatedBy": {"S": s.updated_by},
    }


def _from_item(item: dict[str, Any]) -> StoredFilter:
    try:
        doc = json.loads(item["filter"]["S"])
        version = int(item.get("version", {}).get("N", "1"))
    except (KeyError, TypeError, ValueError) as exc:
        raise FilterError(f"stored item is not a filter ({exc!r})") from None
    return StoredFilter(
        parse_filter(doc),
        version,
        item.get("createdAt", {}).get("S", ""),
        item.get("updatedAt", {}).get("S", ""),
        item.get("updatedBy", {}).get("S", ""),
    )


def _cancellation(exc: ClientError) -> list[str]:
    """The per-item reasons of a cancelled transaction (``None`` for items that passed)."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    reasons = exc.response.get("CancellationReasons")
    if reasons:
        return [str(r.get("Code", "None")) for r in reasons]
    # some emulators only put them in the message: "... [ConditionalCheckFailed, None]"
    msg = str(exc.response.get("Error", {}).get("Message", ""))
    inside = msg[msg.rfind("[") + 1 : msg.rfind("]")] if "[" in msg else ""
    return [r.strip() for r in inside.split(",")] if inside else []


@dataclass
class SuppressionRules:
    """The ARCHIVE rules ingest applies. At most once per ``check`` seconds one small read of the
    counter item's ``generation`` says whether anything changed; only then (or every ``refresh``
    seconds) is the table read whole. A change is in force at ingest within ``check`` seconds."""

    store: FilterStore | None
    check: float = CHECK_SECONDS
    refresh: float = REFRESH_SECONDS
    clock: Callable[[], float] = time.time
    suppressor: Suppressor = field(default_factory=lambda: Suppressor(()))
    loaded_at: float | None = None
    checked_at: float = 0.0
    generation: int = -1
    problems: list[str] = field(default_factory=list)  # of the last refresh: bad rules, a failed read

    def current(self) -> Suppressor:
        if self.store is None:
            return self.suppressor
        now = self.clock()
        if self.loaded_at is not None and now - self.checked_at < self.check:
            return self.suppressor
        try:
            generation = self.store.generation(consistent=True)
            self.checked_at = now
            if (
                self.loaded_at is not None
                and generation == self.generation
                and now - self.loaded_at < self.refresh
            ):
                return self.suppressor
            stored, problems = self.store.list_filters()  # after the read: a change meanwhile shows next time
        except (ClientError, BotoCoreError) as exc:
            # keep the last good rules; try again after ``check``, not at every invocation
            self.problems = [
                f"filters table read failed, keeping {len(self.suppressor.rules)} rules: {exc!r}"
            ]
            self.checked_at = now
            if self.loaded_at is None:
                self.loaded_at = now - self.refresh  # nothing loaded yet: read whole next time
            return self.suppressor
        self.suppressor = Suppressor(s.filter for s in stored)
        self.problems = problems
        self.loaded_at = now
        self.generation = generation
        return self.suppressor
