"""Coverage evaluation against AWS: the EC2 inventory + CoverageTable rows -> status per instance
(stored on the row), and a bus event per status change. The logic is ``vigil.coverage``.

Reads: EC2 DescribeInstances (running instances, paginated); CoverageTable (a Scan of the coverage
rows, not the ``usage#`` items). SSM association status is not read: moto implements neither
DescribeInstanceAssociationsStatus nor ListCommandInvocations, so it could not be tested here
(docs/coverage.md); the core takes it as an input for when it is.

Writes, on the instance's coverage row, only Vigil's own ``cov*`` attributes (UpdateItem SET), never
the heartbeat fields the ingest writes: ``covStatus``, ``covIssue``, ``covWarnings``,
``covCounters`` (the loss counters this evaluation saw: the next one reports what grew since),
``covInstanceType``, ``covManagement``, ``covUpdatedAt`` (when status or issue last changed),
``covInactiveAt`` (the instance left the inventory). A write happens only when one of them changed,
so a steady fleet costs no write per run. The write is conditional on the status this run read
(compare-and-set): two overlapping runs never both move one instance.

A row for an inventory instance that never reported is created here with ``lastSeq = 0``
(``if_not_exists``): the ingest's condition ``attribute_not_exists(instanceId) OR lastSeq < :seq``
still accepts the agent's first heartbeat (seqs are >= 1). The ingest's identity check may then
mark it, which is right: the instance exists.

Events go out before the status is stored: a failed PutEvents entry leaves that instance's status
unstored, so the next run sends it again (at least once; a crash between the two can repeat one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from vigil import coverage as core
from vigil_aws.clients import client
from vigil_aws.coverage import COVERAGE_TTL_S, USAGE_PREFIX

PUT_EVENTS_MAX: Final = 10  # entries per PutEvents call


def _s(item: Mapping[str, Any], name: str) -> str:
    v = item.get(name, {})
    return v.get("S", "") if isinstance(v, dict) else ""


def _n(item: Mapping[str, Any], name: str) -> int:
    v = item.get(name, {})
    try:
        return int(float(v.get("N", "0"))) if isinstance(v, dict) else 0
    except (ValueError, OverflowError):
        return 0


def _epoch(iso: str) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _counters(m: Mapping[str, Any] | None) -> core.Counters | None:
    if not isinstance(m, dict) or "M" not in m:
        return None
    c = m["M"]
    return core.Counters(_n(c, "dropped"), _n(c, "spooled"), _n(c, "audit_lost"))


def _status(raw: str) -> core.Status | None:
    return "HEALTHY" if raw == "HEALTHY" else "UNHEALTHY" if raw == "UNHEALTHY" else None


def report(item: Mapping[str, Any]) -> core.Report:
    """A coverage row (DynamoDB JSON) as the core's Report."""
    active = item.get("sensorsActive", {}).get("L", [])
    unavailable = item.get("sensorsUnavailable", {}).get("M", {})
    return core.Report(
        instance_id=_s(item, "instanceId"),
        last_heartbeat_at=_epoch(_s(item, "lastHeartbeatAt")),
        agent_version=_s(item, "agentVersion"),
        kernel=_s(item, "kernel"),
        hostname=_s(item, "hostname"),
        sensors_active=tuple(v.get("S", "") for v in active if isinstance(v, dict)),
        sensors_unavailable={k: v.get("S", "") for k, v in unavailable.items() if isinstance(v, dict)},
        counters=_counters(item.get("counters")) or core.Counters(),
        identity_problem=_s(item, "identityProblem"),
        identity_problem_at=_epoch(_s(item, "identityProblemAt")),
        previous_status=_status(_s(item, "covStatus")),
        previous_counters=_counters(item.get("covCounters")),
    )


def coverage_rows(ddb: Any, table: str) -> Iterator[dict[str, Any]]:
    """Every coverage row (DynamoDB JSON), the usage items left out."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "NOT begins_with(instanceId, :p)",
        "ExpressionAttributeValues": {":p": {"S": USAGE_PREFIX}},
    }  # eventually consistent (half the read cost): a row a second stale changes nothing every 5 min
    while True:
        page = ddb.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def inventory(ec2: Any) -> list[core.Instance]:
    """The account's running instances in this Region (DescribeInstances, every page)."""
    out = []
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": ["running"]}]
    )
    for page in pages:
        for reservation in page.get("Reservations", []):
            for i in reservation.get("Instances", []):
                launched = i.get("LaunchTime")
                out.append(
                    core.Instance(
                        instance_id=i.get("InstanceId", ""),
                        instance_type=i.get("InstanceType", ""),
                        state=i.get("State", {}).get("Name", ""),
                        tags={t.get("Key", ""): t.get("Value", "") for t in i.get("Tags", [])},
                        launch_time=launched.timestamp() if isinstance(launched, datetime) else None,
                        platform=i.get("Platform", ""),
                    )
                )
    return out


def stored(item: Mapping[str, Any]) -> core.Coverage | None:
    """The status the last evaluation stored on a row (None if never evaluated, or the instance
    has left the inventory since)."""
    status = _status(_s(item, "covStatus"))
    if status is None or "covInactiveAt" in item:
        return None
    r = report(item)
    return core.Coverage(
        instance_id=r.instance_id,
        instance_type=_s(item, "covInstanceType"),
        status=status,
        issue=_s(item, "covIssue"),
        warnings=tuple(
            v.get("S", "") for v in item.get("covWarnings", {}).get("L", []) if isinstance(v, dict)
        ),
        management_type=_s(item, "covManagement") or "MANUAL",
        agent_version=r.agent_version,
        last_heartbeat_at=r.last_heartbeat_at,
        hostname=r.hostname,
        kernel=r.kernel,
        counters=r.counters,
        previous_status=status,
    )


def updated_at(item: Mapping[str, Any]) -> float:
    return _epoch(_s(item, "covUpdatedAt")) or 0.0


def row_account(item: Mapping[str, Any], default: str = "") -> str:
    """The account of a coverage or usage row: the signed identity's account that ingest wrote
    (a member account's instance: that account), else ``default`` (rows written before it)."""
    account = _s(item, "accountId")
    return account if len(account) == 12 and account.isdigit() else default


def member_instances(rows: Iterable[Mapping[str, Any]], account_id: str) -> list[core.Instance]:
    """Instances of member accounts, known only by their heartbeats: the administrator's
    DescribeInstances cannot see another account's inventory, so a member instance is covered
    while its row lives (UNHEALTHY once its heartbeats stop; docs/multi-account.md)."""
    out = []
    for item in rows:
        account = row_account(item)
        if account and account_id and account != account_id:
            out.append(core.Instance(instance_id=_s(item, "instanceId"), instance_type=_s(item, "covInstanceType")))
    return out


def evaluate_now(
    ddb: Any, ec2: Any, table: str, config: core.CoverageConfig, now: float, account_id: str = ""
) -> tuple[list[core.Coverage], dict[str, dict[str, Any]]]:
    """Read the inventory and the rows with the given clients and evaluate, writing nothing
    (also `vigil coverage list --refresh`): (coverages, rows by instance id). With the
    administrator's ``account_id``, member accounts' instances are evaluated from their rows."""
    rows = {_s(i, "instanceId"): i for i in coverage_rows(ddb, table)}
    instances = inventory(ec2) + member_instances(rows.values(), account_id)
    return core.evaluate(instances, (report(i) for i in rows.values()), now, config), rows


@dataclass
class RunResult:
    coverages: list[core.Coverage] = field(default_factory=list)
    events_sent: int = 0
    written: int = 0
    unchanged: int = 0
    lost_race: int = 0  # another run moved the status first (compare-and-set failed)
    failed_events: dict[str, str] = field(default_factory=dict)  # instance -> PutEvents error
    left_inventory: int = 0


class CoverageEvaluator:
    def __init__(
        self,
        table: str,
        bus_name: str,
        account_id: str,
        config: core.CoverageConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.table = table
        self.bus_name = bus_name
        self.account_id = account_id
        self.config = config or core.CoverageConfig()
        self.clock = clock or time.time

    def evaluate(self) -> tuple[list[core.Coverage], dict[str, dict[str, Any]], float]:
        """Read and evaluate, writing nothing: (coverages, rows by instance, now)."""
        now = self.clock()
        covs, rows = evaluate_now(
            client("dynamodb"), client("ec2"), self.table, self.config, now, self.account_id
        )
        return covs, rows, now

    def run(self) -> RunResult:
        covs, rows, now = self.evaluate()
        result = RunResult(coverages=covs)
        events = {
            c.instance_id: core.change_event(c, row_account(rows.get(c.instance_id, {}), self.account_id), now)
            for c in covs
        }
        result.failed_events = self._put_events({k: v for k, v in events.items() if v is not None})
        result.events_sent = sum(1 for v in events.values() if v is not None) - len(result.failed_events)
        for c in covs:
            if c.instance_id in result.failed_events:
                continue
            outcome = self._store(c, rows.get(c.instance_id), now)
            if outcome == "written":
                result.written += 1
            elif outcome == "race":
                result.lost_race += 1
            else:
                result.unchanged += 1
        listed = {c.instance_id for c in covs}
        for iid, item in rows.items():
            if iid not in listed and "covStatus" in item and "covInactiveAt" not in item:
                result.left_inventory += self._mark_inactive(iid, now)
        return result

    def _put_events(self, events: dict[str, dict[str, Any]]) -> dict[str, str]:
        failed: dict[str, str] = {}
        ids = sorted(events)
        for start in range(0, len(ids), PUT_EVENTS_MAX):
            chunk = ids[start : start + PUT_EVENTS_MAX]
            entries = [
                {
                    "EventBusName": self.bus_name,
                    "Source": events[i]["source"],
                    "DetailType": events[i]["detail-type"],
                    "Resources": [f"arn:aws:ec2:::instance/{i}"],
                    "Detail": json.dumps(events[i]["detail"], separators=(",", ":")),
                }
                for i in chunk
            ]
            try:
                out = client("events").put_events(Entries=entries)
            except ClientError as exc:
                failed.update({i: str(exc) for i in chunk})
                continue
            if out.get("FailedEntryCount"):
                for i, entry in zip(chunk, out.get("Entries", []), strict=False):
                    if entry.get("ErrorCode"):
                        failed[i] = f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage', '')}"
        return failed

    def _store(self, c: core.Coverage, item: Mapping[str, Any] | None, now: float) -> str:
        """Write the row's cov* attributes if they changed: 'written', 'unchanged' or 'race'."""
        item = item or {}
        counters = {
            "dropped": c.counters.dropped,
            "spooled": c.counters.spooled,
            "audit_lost": c.counters.audit_lost,
        }
        previous = {
            "covStatus": _s(item, "covStatus"),
            "covIssue": _s(item, "covIssue"),
            "covWarnings": [v.get("S", "") for v in item.get("covWarnings", {}).get("L", [])],
            "covCounters": {k: _n(item.get("covCounters", {}).get("M", {}), k) for k in counters},
            "covInstanceType": _s(item, "covInstanceType"),
            "covManagement": _s(item, "covManagement"),
            "inactive": "covInactiveAt" in item,
        }
        current = {
            "covStatus": c.status,
            "covIssue": c.issue,
            "covWarnings": list(c.warnings),
            "covCounters": counters,
            "covInstanceType": c.instance_type,
            "covManagement": c.management_type,
            "inactive": False,
        }
        if previous == current and "covCounters" in item:
            return "unchanged"
        moved = previous["covStatus"] != c.status or previous["covIssue"] != c.issue
        sets = [
            "covStatus = :status",
            "covIssue = :issue",
            "covWarnings = :warnings",
            "covCounters = :counters",
            "covInstanceType = :itype",
            "covManagement = :mgmt",
            "lastSeq = if_not_exists(lastSeq, :zero)",
        ]
        values: dict[str, Any] = {
            ":status": {"S": c.status},
            ":issue": {"S": c.issue},
            ":warnings": {"L": [{"S": w} for w in c.warnings]},
            ":counters": {"M": {k: {"N": str(v)} for k, v in counters.items()}},
            ":itype": {"S": c.instance_type},
            ":mgmt": {"S": c.management_type},
            ":zero": {"N": "0"},
        }
        if moved or "covUpdatedAt" not in item:
            sets.append("covUpdatedAt = :at")
            values[":at"] = {"S": core.iso(now)}
        if c.last_heartbeat_at is None:  # no heartbeat keeps this row alive: this run does
            sets.append("expiresAt = :exp")
            values[":exp"] = {"N": str(int(now) + COVERAGE_TTL_S)}
        if previous["covStatus"]:
            condition = "covStatus = :prev"
            values[":prev"] = {"S": previous["covStatus"]}
        else:
            condition = "attribute_not_exists(covStatus)"
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"instanceId": {"S": c.instance_id}},
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE covInactiveAt",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return "race"
        return "written"

    def _mark_inactive(self, instance_id: str, now: float) -> int:
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"instanceId": {"S": instance_id}},
                UpdateExpression="SET covInactiveAt = :at",
                ConditionExpression="attribute_exists(covStatus) AND attribute_not_exists(covInactiveAt)",
                ExpressionAttributeValues={":at": {"S": core.iso(now)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return 0
        return 1
