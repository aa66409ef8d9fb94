"""Agent coverage: the latest heartbeat of every instance (CoverageTable, one item per instance).

Minimal on purpose: what `vigil coverage` and later issues build on (is every instance reporting,
which sensors are down, is the agent losing events). Only the newest heartbeat wins (``lastSeq``),
so a replayed or late batch never rolls coverage back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from botocore.exceptions import ClientError

from vigil.events import AgentHealth
from vigil.findings import iso
from vigil_aws.clients import client
from vigil_aws.findings_store import is_conditional_failure

COVERAGE_TTL_S: Final = 30 * 86400  # an instance silent for 30 days drops out of coverage


class CoverageStore:
    def __init__(self, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.clock = clock

    def record(self, heartbeats: Sequence[AgentHealth]) -> int:
        """Store the newest heartbeat per instance; returns how many instances were updated."""
        latest: dict[str, AgentHealth] = {}
        for hb in heartbeats:
            cur = latest.get(hb.device.instance_uid)
            if cur is None or hb.seq > cur.seq:
                latest[hb.device.instance_uid] = hb
        written = 0
        for instance, hb in latest.items():
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
                ":exp": {"N": str(int(self.clock()) + COVERAGE_TTL_S)},
            }
            try:
                client("dynamodb").update_item(
                    TableName=self.table,
                    Key={"instanceId": {"S": instance}},
                    UpdateExpression=(
                        "SET lastHeartbeatAt = :at, lastSeq = :seq, agentVersion = :version, hostname = :host, "
                        "kernel = :kernel, sensorsActive = :active, sensorsUnavailable = :unavailable, "
                        "counters = :counters, cpuPercent = :cpu, rssBytes = :rss, vcpus = :vcpus, expiresAt = :exp"
                    ),
                    ConditionExpression="attribute_not_exists(instanceId) OR lastSeq < :seq",
                    ExpressionAttributeValues=values,
                )
                written += 1
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
        return written

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
            if not is_conditional_failure(exc):
                raise
            return False
        return True
