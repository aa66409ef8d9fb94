"""CoverageStore on the real CoverageTable (moto): usage counted once per heartbeat whatever the
replays, the coverage row at its cadence, and the reads `vigil usage` makes."""

from __future__ import annotations

from typing import Any

from handler_harness import Aws

from vigil import usage as core
from vigil.events import AgentHealth, Device
from vigil_aws.coverage import CoverageStore
from vigil_aws.usage import usage_items

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
INSTANCE = "i-0123456789abcdef0"


def hb(seq: int, minute: int, *, vcpus: int = 2, sensors: tuple[str, ...] = ("audit", "dns")) -> AgentHealth:
    return AgentHealth(
        kind="heartbeat", time=T0 + minute * 60 * 10**9, seq=seq, device=Device(instance_uid=INSTANCE, hostname="web"),
        agent_version="0.1.0", sensors_active=sensors, vcpus=vcpus,
    )  # fmt: skip


def _items(aws: Aws) -> list[dict[str, Any]]:
    return aws.client("dynamodb").scan(TableName=aws.coverage_table, ConsistentRead=True)["Items"]


def _row(aws: Aws) -> dict[str, Any]:
    return next(i for i in _items(aws) if i["instanceId"]["S"] == INSTANCE)


def _usage(aws: Aws) -> list[core.InstanceUsage]:
    return list(core.per_instance(usage_items(aws.client("dynamodb"), aws.coverage_table, "2026-01-01")))


def test_a_replayed_heartbeat_is_counted_once(aws: Aws) -> None:
    # GIVEN a heartbeat of a 2-vCPU instance recorded once
    store = CoverageStore(aws.coverage_table)
    assert store.record([hb(10, 0)]) == 1
    # WHEN the same batch is delivered again, by this container and by a fresh one
    store.record([hb(10, 0)])
    CoverageStore(aws.coverage_table).record([hb(10, 0)])
    # THEN it counted 2 vCPU x 60 s once
    assert [(u.vcpu_seconds, u.heartbeats) for u in _usage(aws)] == [(120, 1)]


def test_a_batch_half_counted_before_counts_only_its_new_heartbeats(aws: Aws) -> None:
    # GIVEN heartbeat 10 counted
    CoverageStore(aws.coverage_table).record([hb(10, 0)])
    # WHEN a batch holding 10 and 20 arrives (10 replayed, 20 new)
    CoverageStore(aws.coverage_table).record([hb(20, 1), hb(10, 0)])
    # THEN only 20 is added, and the watermark moved to it
    assert [(u.vcpu_seconds, u.heartbeats) for u in _usage(aws)] == [(240, 2)]
    usage_item = next(i for i in _items(aws) if "usageOf" in i)
    assert usage_item["lastSeq"]["N"] == "20"


def test_usage_is_written_every_five_minutes_and_counts_every_heartbeat(aws: Aws) -> None:
    # GIVEN a container receiving one heartbeat a minute of one instance
    store = CoverageStore(aws.coverage_table)
    writes = []
    for minute in range(11):
        store.record([hb(minute + 1, minute)])
        writes.append(next(i for i in _items(aws) if "usageOf" in i)["heartbeats"]["N"])
    # THEN the usage item was written at minutes 0, 5 and 10 only, and then counted all 11
    assert writes == ["1"] * 5 + ["6"] * 5 + ["11"]
    assert _usage(aws)[0].vcpu_seconds == 11 * 120


def test_each_utc_day_has_its_own_usage_item(aws: Aws) -> None:
    # GIVEN heartbeats just before and after midnight
    store = CoverageStore(aws.coverage_table)
    store.record([hb(1, 24 * 60 - 1)])
    store.record([hb(2, 24 * 60)])
    # THEN two day items, both counted, summed per instance
    days = sorted(i["usageDay"]["S"] for i in _items(aws) if "usageOf" in i)
    assert days == ["2026-01-01", "2026-01-02"]
    assert _usage(aws)[0].vcpu_seconds == 240


def test_the_coverage_row_is_rewritten_on_change_or_every_five_minutes(aws: Aws) -> None:
    store = CoverageStore(aws.coverage_table)
    # GIVEN heartbeats a minute apart with nothing new to say
    for minute in range(5):
        store.record([hb(100 + minute, minute)])
    # THEN the row still holds the first; so does usage (the next four wait for its 5-minute write)
    assert _row(aws)["lastSeq"]["N"] == "100"
    assert _usage(aws)[0].heartbeats == 1
    # WHEN five minutes have passed THEN both are refreshed, usage with all six heartbeats
    store.record([hb(105, 5)])
    assert _row(aws)["lastSeq"]["N"] == "105"
    assert _usage(aws)[0].heartbeats == 6
    # WHEN a sensor goes down a minute later THEN it is written at once
    store.record([hb(106, 6, sensors=("audit",))])
    assert _row(aws)["lastSeq"]["N"] == "106"
    assert [s["S"] for s in _row(aws)["sensorsActive"]["L"]] == ["audit"]


def test_an_older_heartbeat_never_rolls_the_coverage_row_back(aws: Aws) -> None:
    # GIVEN the row at seq 50
    CoverageStore(aws.coverage_table).record([hb(50, 10)])
    # WHEN a fresh container sees an older heartbeat (a late batch)
    CoverageStore(aws.coverage_table).record([hb(40, 9, sensors=("audit",))])
    # THEN the row keeps seq 50 and its sensors
    assert _row(aws)["lastSeq"]["N"] == "50"
    assert len(_row(aws)["sensorsActive"]["L"]) == 2
