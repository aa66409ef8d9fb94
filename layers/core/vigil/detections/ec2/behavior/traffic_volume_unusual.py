"""Behavior:EC2/TrafficVolumeUnusual: the instance sent far more data to one remote host than it
did the day before (VPC Flow Logs, per-instance baseline in the State table).

Bytes the instance sends to each public host are summed per hour (a State counter). The baseline
is the largest hourly volume the instance sent to any one host the previous UTC day, kept as
power-of-two levels: an hourly sum reaching 2^k bytes remembers level k for (instance, day), so
"the instance sent 2^j bytes to a host within an hour yesterday" is one key read. An hourly sum
that reaches level k >= 28 (256 MiB) fires when the instance is armed (``armed``: it had traffic
yesterday) and yesterday never reached level k-2: at least 4x more than any hour of the baseline
(at most 8x, by the rounding). Limits: a job that runs weekly (a backup) fires on its day; the
baseline is one day long.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections.ec2._common import (
    DAY_NS,
    FLOW,
    active_keys,
    armed,
    connection_action,
    external,
    sends_to_public,
)
from vigil.events import NetworkFlow

HOUR_NS: Final = 3600 * 1_000_000_000
FLOOR_LEVEL: Final = 28  # 256 MiB in an hour to one host: below this nothing is "unusually large"
HEADROOM: Final = 2  # levels above the baseline's highest (2^2 = 4x)
MAX_LEVEL: Final = 40  # 1 TiB in an hour: higher sums count as this level
RECORD_MIN_BYTES: Final = 64 * 1024  # smaller records are not counted (saves a State write per small flow)
LEVEL_TTL_S: Final = 3 * 86_400


FIRST_LEVEL: Final = FLOOR_LEVEL - HEADROOM


@functools.lru_cache(maxsize=16_384)
def _level_keys(instance: str, day: int) -> tuple[str, ...]:
    """The level keys of (instance, day), FIRST_LEVEL to MAX_LEVEL - 1."""
    return tuple(f"ec2vollvl|{instance}|{day}|{k}" for k in range(FIRST_LEVEL, MAX_LEVEL))


def _levels(before: int, after: int) -> range:
    """The power-of-two levels an hourly sum crossed going from ``before`` to ``after`` bytes."""
    return range(max(before.bit_length(), 0), after.bit_length())


class TrafficVolumeUnusual(Detection):
    stateful = True
    kinds = FLOW
    gate = sends_to_public  # shared with the other baseline types
    meta = Meta(
        type="Behavior:EC2/TrafficVolumeUnusual",
        severity=severity.MEDIUM,
        title="The instance is sending an unusually large amount of data to a remote host",
        description=(
            "Within an hour the instance sent one public host at least four times more data than in any hour of its "
            "baseline (VPC Flow Logs, at least 256 MiB): exfiltration, or a workload change worth knowing about."
        ),
        mitre=("T1048", "T1030"),
        runbook=(
            "Check networkConnectionAction.remoteIpDetails (where the data went). If the host is not a known backup or "
            "replication target, find the process and what it read; isolate the instance if it is exfiltration."
        ),
        false_positives=("New backup, replication or bulk upload jobs to a new destination.",),
        references=("https://attack.mitre.org/techniques/T1048/",),
    )

    def candidate(self, e: NetworkFlow) -> bool:
        """Data the instance sent to a public host, on any connection (it opened it or served it),
        in a record of at least RECORD_MIN_BYTES (a small flow is no volume: no State write)."""
        return (
            e.bytes >= RECORD_MIN_BYTES
            and e.direction == "Outbound"
            and e.action == "ACCEPT"
            and external(e.dst_endpoint.ip)
        )

    def _sum_key(self, e: NetworkFlow) -> str:
        return f"ec2vol|{e.device.instance_uid}|{e.dst_endpoint.ip}|{e.time // HOUR_NS}"

    @staticmethod
    def _level_key(e: NetworkFlow, level: int, days_ago: int = 0) -> str:
        return _level_keys(e.device.instance_uid, e.time // DAY_NS - days_ago)[level - FIRST_LEVEL]

    def state_keys(self, event: NetworkFlow) -> tuple[str, ...]:
        if not self.candidate(event):
            return active_keys(event) if sends_to_public(event) else ()
        # the match reads yesterday's levels; today's are only written
        yesterday = _level_keys(event.device.instance_uid, event.time // DAY_NS - 1)
        return (*active_keys(event), self._sum_key(event), *yesterday)

    def match(self, event: NetworkFlow, ctx: Context) -> bool:
        if not sends_to_public(event):
            return False
        is_armed = armed(event, ctx)
        if not self.candidate(event):
            return False
        key = self._sum_key(event)
        before = ctx.state.count(key)
        ctx.state.add(key, event.bytes, 2 * 3600)
        after = before + event.bytes
        fire = False
        for level in _levels(before, after):
            if (
                level >= FLOOR_LEVEL
                and is_armed
                and not ctx.state.seen(self._level_key(event, min(level - HEADROOM, MAX_LEVEL - 1), 1))
            ):
                fire = True
            if level >= FLOOR_LEVEL - HEADROOM:
                ctx.state.remember(self._level_key(event, min(level, MAX_LEVEL - 1)), LEVEL_TTL_S)
        return fire

    def dedup_key(self, event: NetworkFlow) -> str:
        return event.dst_endpoint.ip

    def action(self, event: NetworkFlow, ctx: Context) -> dict[str, Any] | None:
        return connection_action(event, direction="OUTBOUND")

    fires: ClassVar = (
        Example(
            "1 GiB to a new host after a day of 100 MiB hours",
            (
                s.flow(s.LOCAL_IP, 40100, "203.0.113.10", 443, packets=80_000, nbytes=100 << 20, t=-DAY_NS),
                s.flow(s.LOCAL_IP, 40200, "198.51.100.99", 443, packets=700_000, nbytes=1 << 30),
            ),
        ),
    )
    near_misses: ClassVar = (
        Example(
            "1 GiB on a host that sent 512 MiB in an hour yesterday (within 4x)",
            (
                s.flow(s.LOCAL_IP, 40100, "203.0.113.10", 443, packets=400_000, nbytes=512 << 20, t=-DAY_NS),
                s.flow(s.LOCAL_IP, 40200, "198.51.100.99", 443, packets=700_000, nbytes=1 << 30),
            ),
        ),
        Example(
            "1 GiB on the instance's first day (learning)",
            (s.flow(s.LOCAL_IP, 40200, "198.51.100.99", 443, packets=700_000, nbytes=1 << 30),),
        ),
        Example(
            "200 MiB to a new host (below the floor)",
            (
                s.flow(s.LOCAL_IP, 40100, "203.0.113.10", 443, packets=800, nbytes=1 << 20, t=-DAY_NS),
                s.flow(s.LOCAL_IP, 40200, "198.51.100.99", 443, packets=150_000, nbytes=200 << 20),
            ),
        ),
        Example(
            "1 GiB to a private address (a replica in the VPC)",
            (
                s.flow(s.LOCAL_IP, 40100, "203.0.113.10", 443, packets=80_000, nbytes=100 << 20, t=-DAY_NS),
                s.flow(s.LOCAL_IP, 40200, "10.0.7.7", 5432, packets=700_000, nbytes=1 << 30),
            ),
        ),
    )
