"""Agent coverage and usage from heartbeats (CoverageTable).

Two kinds of items, both keyed by ``instanceId``:

- the coverage row, ``instanceId = <instance>``: the latest heartbeat worth keeping (version,
  sensors, counters). Only a newer heartbeat wins (``lastSeq``), so a replayed or late batch never
  rolls it back. Written at a cadence a large fleet can afford: when its content changed
  materially (agent version, host, kernel, sensors, vCPUs, a loss counter) or when the row this
  container last wrote is ``refresh_s`` (5 min) old; so ``lastHeartbeatAt`` lags by up to 5 min
  (the usage item's ``lastAt`` does not).
- the usage item, ``instanceId = usage#<instance>#<UTC day>``: monitored vCPU-seconds of that day
  (``vcpuSeconds``, ``heartbeats``), replay-safe by a watermark: the last counted heartbeat's
  ``lastSeq``. Written at the same cadence: the first heartbeat of an (instance, day) a container
  sees is written at once, later ones are added up in the container and written together when
  they span ``refresh_s`` (or the day ends), one ADD for several heartbeats. A container that is
  recycled loses what it had not written yet: usage is under-counted by at most ``refresh_s`` per
  container and instance, never over-counted. An instance's seqs are monotonic and its records reach the
  ingest in order (one partition key per instance), so "seq above the watermark" is "not counted
  yet". The day is the heartbeat's own time, so a replay lands on the item that counted it.

``vigil usage`` (vigil_aws.usage) reads the usage items; vigil/usage.py prices them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from botocore.exceptions import ClientError

from vigil.events import AgentHealth
from vigil.findings import iso
from vigil.usage import heartbeat_credit_s
from vigil_aws.clients import client

COVERAGE_TTL_S: Final = 30 * 86400  # an instance silent for 30 days drops out of coverage
COVERAGE_REFRESH_S: Final = 300  # an unchanged coverage row is rewritten at most this often
USAGE_TTL_S: Final = 100 * 86400  # usage items outlive `vigil usage --days 90`
USAGE_PREFIX: Final = "usage#"


def usage_key(instance: str, day: str) -> str:
    return f"{USAGE_PREFIX}{instance}#{day}"


def utc_day(time_ns: int) -> str:
    try:
        return dt.datetime.fromtimestamp(time_ns / 1e9, dt.UTC).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError):  # a hostile time: one bucket, not a crash
        return "invalid-time"


def _conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _material(hb: AgentHealth) -> tuple[Any, ...]:
    """What makes a coverage row worth rewriting before its refresh (not the ever-growing
    captured/sent counters or CPU/RSS samples)."""
    return (
        hb.agent_version or hb.device.agent_version,
        hb.device.hostname,
        hb.kernel,
        tuple(hb.sensors_active),
        tuple(sorted(hb.sensors_unavailable.items())),
        hb.vcpus,
        hb.dropped,
        hb.spooled,
        hb.audit_lost,
    )


class CoverageStore:
    def __init__(
        self, table: str, *, clock: Callable[[], float] = time.time, refresh_s: float = COVERAGE_REFRESH_S
    ) -> None:
        self.table = table
        self.clock = clock
        self.refresh_s = refresh_s
        # instance -> (material content, heartbeat time in ns) of the row this container last wrote
        self._written: dict[str, tuple[tuple[Any, ...], int]] = {}
        # (instance, day) -> heartbeats not yet written (by seq), and when that item was last written
        self._usage_pending: dict[tuple[str, str], dict[int, AgentHealth]] = {}
        self._usage_written: dict[tuple[str, str], int] = {}

    def record(self, heartbeats: Sequence[AgentHealth]) -> int:
        """Count usage for every new heartbeat; refresh the coverage row of an instance when it is
        due. Returns how many instances had an item written."""
        touched: set[str] = set()
        groups: dict[tuple[str, str], list[AgentHealth]] = {}
        for hb in sorted(heartbeats, key=lambda h: h.seq):
            groups.setdefault((hb.device.instance_uid, utc_day(hb.time)), []).append(hb)
        for key, hbs in groups.items():
            pending = self._usage_pending.setdefault(key, {})
            pending.update((h.seq, h) for h in hbs)
        reporting = {instance for instance, _ in groups}
        for key in sorted(self._usage_pending):
            if key[0] in reporting and self._usage_due(key, groups):
                instance, day = key
                hbs = [self._usage_pending[key][q] for q in sorted(self._usage_pending[key])]
                if self._count_usage(instance, day, hbs):
                    touched.add(instance)
                self._usage_written[key] = hbs[-1].time
                del self._usage_pending[key]
        latest: dict[str, AgentHealth] = {}
        for hb in heartbeats:
            cur = latest.get(hb.device.instance_uid)
            if cur is None or hb.seq > cur.seq:
                latest[hb.device.instance_uid] = hb
        for instance, hb in latest.items():
            if self._due(instance, hb) and self._write_row(instance, hb):
                touched.add(instance)
        return len(touched)

    # -- usage ----------------------------------------------------------------------------------
    def _usage_due(self, key: tuple[str, str], groups: dict[tuple[str, str], list[AgentHealth]]) -> bool:
        pending = self._usage_pending[key]
        if not pending:
            return False
        if key not in groups:  # an earlier day of an instance that has moved on: flush it
            return True
        written = self._usage_written.get(key)
        newest = max(h.time for h in pending.values())
        return written is None or newest - written >= self.refresh_s * 1e9

    def _count_usage(self, instance: str, day: str, hbs: list[AgentHealth]) -> bool:
        if self._add_usage(instance, day, hbs):
            return True
        if len(hbs) == 1:
            return False  # already counted (a replay)
        # some of them were counted: each on its own, the watermark decides
        return sum(self._add_usage(instance, day, [hb]) for hb in hbs) > 0

    def _add_usage(self, instance: str, day: str, hbs: list[AgentHealth]) -> bool:
        last = hbs[-1]
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"instanceId": {"S": usage_key(instance, day)}},
                UpdateExpression=(
                    "SET usageOf = :inst, usageDay = :day, lastSeq = :last, lastAt = :at, vcpus = :vcpus, "
                    "accountId = :acct, expiresAt = :exp ADD vcpuSeconds :secs, heartbeats :n"
                ),
                ConditionExpression="attribute_not_exists(lastSeq) OR lastSeq < :first",
                ExpressionAttributeValues={
                    ":inst": {"S": instance},
                    ":day": {"S": day},
                    ":last": {"N": str(last.seq)},
                    ":first": {"N": str(hbs[0].seq)},
                    ":at": {"S": iso(last.time)},
                    ":vcpus": {"N": str(max(0, last.vcpus))},
                    # the signed identity's account (a member account's instance: that account)
                    ":acct": {"S": last.device.account_uid or "-"},
                    ":exp": {"N": str(int(self.clock()) + USAGE_TTL_S)},
                    ":secs": {"N": str(sum(heartbeat_credit_s(h.vcpus) for h in hbs))},
                    ":n": {"N": str(len(hbs))},
                },
            )
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            return False
        return True

    # -- coverage row ---------------------------------------------------------------------------
    def _due(self, instance: str, hb: AgentHealth) -> bool:
        written = self._written.get(instance)
        if written is None:
            return True
        content, at_ns = written
        return content != _material(hb) or (hb.time - at_ns) >= self.refresh_s * 1e9

    def _write_row(self, instance: str, hb: AgentHealth) -> bool:
        values: dict[str, Any] = {
            ":at": {"S": iso(hb.time)},
            ":seq": {"N": str(hb.seq)},
            ":version": {"S": hb.agent_version or hb.device.agent_version or "unknown"},
            ":host": {"S": hb.device.hostname or "-"},
            ":kernel": {"S": hb.kernel or "-"},
            ":active": {"L": [{"S": s} for s in hb.sensors_active]},
            ":unavailable": {"M": {k: {"S": v} for k, v in hb.sensors_unavailable.items()}},
            ":counters": {
                "M": {
                    name: {"N": str(getattr(hb, name))}
                    for name in ("captured", "sent", "dropped", "spooled", "audit_lost")
                }
            },
            ":cpu": {"N": str(hb.cpu_percent)},
            ":rss": {"N": str(hb.rss_bytes)},
            ":vcpus": {"N": str(hb.vcpus)},
            ":acct": {"S": hb.device.account_uid or "-"},
            ":exp": {"N": str(int(self.clock()) + COVERAGE_TTL_S)},
        }
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"instanceId": {"S": instance}},
                UpdateExpression=(
                    "SET lastHeartbeatAt = :at, lastSeq = :seq, agentVersion = :version, hostname = :host, "
                    "kernel = :kernel, sensorsActive = :active, sensorsUnavailable = :unavailable, "
                    "counters = :counters, cpuPercent = :cpu, rssBytes = :rss, vcpus = :vcpus, accountId = :acct, "
                    "expiresAt = :exp"
                ),
                ConditionExpression="attribute_not_exists(instanceId) OR lastSeq < :seq",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            return False
        self._written[instance] = (_material(hb), hb.time)
        return True

    def record_identity_problem(self, instance_id: str, reason: str) -> bool:
        """Note on an instance's coverage row that a record sent for it failed its identity check
        (no, a forged or a foreign signed identity; or it carried another instance's events).

        Only an existing row is marked: a record that proves nothing must not create coverage for
        the instance it names. Returns whether a row was marked."""
        if not instance_id:
            return False
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"instanceId": {"S": instance_id}},
                UpdateExpression="SET identityProblem = :reason, identityProblemAt = :at",
                ConditionExpression="attribute_exists(instanceId)",
                ExpressionAttributeValues={
                    ":reason": {"S": reason[:512]},
                    ":at": {"S": iso(int(self.clock() * 1e9))},
                },
            )
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            return False
        return True
