"""CoverageFunction in-process on moto: real EC2 instances, CoverageTable rows written by the
ingest's own CoverageStore, the status stored on the row, and change events on the bus.

GIVEN three running instances (one with a fresh heartbeat, one with a stale one, one that never
reported), WHEN the scheduled function runs, THEN each gets its status and GuardDuty issue, the
status changes reach the bus once, a re-run changes nothing, and the ingest still accepts the
first heartbeat of the instance whose row the function created.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import pytest
from handler_harness import ACCOUNT, REGION, Aws, context, load_handler

from vigil.events import AgentHealth, Device
from vigil_aws.coverage import CoverageStore
from vigil_aws.coverage_eval import coverage_rows, stored

LINUX_AMI = "ami-1e749f67"  # an Ubuntu image of moto's catalogue (many others are Windows)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def hb(instance: str, seq: int, at: float, **kw: Any) -> AgentHealth:
    return AgentHealth(
        kind="heartbeat", time=int(at * 1e9), seq=seq, device=Device(instance_uid=instance, hostname="web"),
        agent_version="0.1.0", kernel="6.1.0-18-amd64", sensors_active=("ebpf", "audit", "dns"), vcpus=2, **kw,
    )  # fmt: skip


@pytest.fixture
def instances(aws: Aws) -> dict[str, str]:
    ec2 = aws.client("ec2")
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=LINUX_AMI, MinCount=4, MaxCount=4, InstanceType="t3.micro")[
            "Instances"
        ]
    ]
    ec2.stop_instances(InstanceIds=[ids[3]])
    return {"fresh": ids[0], "stale": ids[1], "never": ids[2], "stopped": ids[3]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fn(aws: Aws, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_handler(
        "coverage_function",
        {
            "POWERTOOLS_SERVICE_NAME": "CoverageFunction",
            "COVERAGE_TABLE_NAME": aws.coverage_table,
            "FINDINGS_BUS_NAME": aws.bus_name,
            "VIGIL_ACCOUNT_ID": ACCOUNT,
            "AWS_REGION": REGION,
        },
        monkeypatch,
    )
    module.evaluator.clock = clock
    return module


def _run(fn: ModuleType) -> dict[str, Any]:
    return dict(fn.handler({}, context("CoverageFunction")))


def _rows(aws: Aws) -> dict[str, dict[str, Any]]:
    return {i["instanceId"]["S"]: i for i in coverage_rows(aws.client("dynamodb"), aws.coverage_table)}


def _coverage_events(aws: Aws) -> list[dict[str, Any]]:
    return [e for e in aws.drain(aws.bus_tap_url) if e["detail-type"].startswith("Vigil Runtime Protection")]


def test_fresh_stale_and_never_reported_instances(
    aws: Aws, instances: dict[str, str], fn: ModuleType, clock: Clock
) -> None:
    # GIVEN heartbeats written by the ingest's store: one a minute old, one an hour old; and a
    # row for the stopped instance
    store = CoverageStore(aws.coverage_table)
    store.record([hb(instances["fresh"], 100, clock.now - 60)])
    store.record([hb(instances["stale"], 100, clock.now - 3600)])
    store.record([hb(instances["stopped"], 100, clock.now - 60)])
    # WHEN the scheduled function runs
    summary = _run(fn)
    # THEN the running instances are listed: one HEALTHY, two UNHEALTHY with GuardDuty's issues
    assert summary["countByCoverageStatus"] == {"HEALTHY": 1, "UNHEALTHY": 2}
    assert summary["countByResourceType"] == {"EC2": 3}
    rows = _rows(aws)
    status = {
        k: (rows[v]["covStatus"]["S"], rows[v]["covIssue"]["S"])
        for k, v in instances.items()
        if k != "stopped"
    }
    assert status == {
        "fresh": ("HEALTHY", ""),
        "stale": ("UNHEALTHY", "No Agent Reporting: Agent disconnected"),
        "never": ("UNHEALTHY", "No Agent Reporting: Waiting for SSM notification"),
    }
    assert "covStatus" not in rows[instances["stopped"]]  # not in the inventory: not evaluated
    # AND the heartbeat fields the ingest wrote are untouched
    assert rows[instances["stale"]]["lastSeq"]["N"] == "100"
    assert rows[instances["fresh"]]["agentVersion"]["S"] == "0.1.0"
    # AND the two UNHEALTHY instances reached the bus once each, in GuardDuty's detail shape
    events = _coverage_events(aws)
    assert sorted(
        e["detail"]["resourceDetails"]["ec2InstanceDetails"]["instanceId"] for e in events
    ) == sorted([instances["stale"], instances["never"]])
    stale = next(
        e
        for e in events
        if e["detail"]["resourceDetails"]["ec2InstanceDetails"]["instanceId"] == instances["stale"]
    )
    assert stale["source"] == "vigil" and stale["detail-type"] == "Vigil Runtime Protection Unhealthy"
    assert stale["detail"]["currentStatus"] == "UNHEALTHY" and stale["detail"]["previousStatus"] is None
    assert stale["detail"]["resourceDetails"]["ec2InstanceDetails"] == {
        "instanceId": instances["stale"],
        "instanceType": "t3.micro",
        "agentDetails": {"version": "0.1.0"},
        "managementType": "AUTO_MANAGED",
    }
    assert stale["detail"]["resourceAccountId"] == ACCOUNT


def test_a_rerun_is_idempotent_and_only_a_change_is_an_event(
    aws: Aws, instances: dict[str, str], fn: ModuleType, clock: Clock
) -> None:
    store = CoverageStore(aws.coverage_table)
    store.record([hb(instances["fresh"], 100, clock.now - 60)])
    _run(fn)
    _coverage_events(aws)
    before = _rows(aws)
    # WHEN it runs again a minute later with nothing new
    clock.now += 60
    summary = _run(fn)
    # THEN no event, no write
    assert _coverage_events(aws) == []
    assert summary["written"] == 0 and summary["eventsSent"] == 0
    assert _rows(aws) == before
    # WHEN the fresh instance goes quiet for 20 minutes
    clock.now += 20 * 60
    _run(fn)
    # THEN one Unhealthy event, previousStatus HEALTHY
    (ev,) = _coverage_events(aws)
    assert (ev["detail-type"], ev["detail"]["previousStatus"], ev["detail"]["issue"]) == (
        "Vigil Runtime Protection Unhealthy",
        "HEALTHY",
        "No Agent Reporting: Agent disconnected",
    )
    # WHEN its agent reports again THEN one Healthy event
    CoverageStore(aws.coverage_table).record([hb(instances["fresh"], 200, clock.now - 10)])
    _run(fn)
    (ev,) = _coverage_events(aws)
    assert (ev["detail-type"], ev["detail"]["previousStatus"]) == (
        "Vigil Runtime Protection Healthy",
        "UNHEALTHY",
    )


def test_the_ingest_accepts_the_first_heartbeat_of_a_row_the_function_created(
    aws: Aws, instances: dict[str, str], fn: ModuleType, clock: Clock
) -> None:
    # GIVEN the function created the row of an instance that never reported
    _run(fn)
    assert _rows(aws)[instances["never"]]["lastSeq"]["N"] == "0"
    # WHEN its agent's first heartbeat arrives (seq 1, the smallest the wire allows)
    assert CoverageStore(aws.coverage_table).record([hb(instances["never"], 1, clock.now)]) == 1
    row = _rows(aws)[instances["never"]]
    # THEN the ingest wrote it, and the stored status survived beside it
    assert (row["lastSeq"]["N"], row["agentVersion"]["S"], row["covStatus"]["S"]) == (
        "1",
        "0.1.0",
        "UNHEALTHY",
    )
    # AND the next run finds it HEALTHY
    _run(fn)
    assert _rows(aws)[instances["never"]]["covStatus"]["S"] == "HEALTHY"


def test_losses_since_the_last_run_are_warnings_then_clear(
    aws: Aws, instances: dict[str, str], fn: ModuleType, clock: Clock
) -> None:
    store = CoverageStore(aws.coverage_table)
    store.record([hb(instances["fresh"], 100, clock.now - 60, dropped=5)])
    _run(fn)
    cov = stored(_rows(aws)[instances["fresh"]])
    assert cov is not None and cov.status == "HEALTHY"
    assert cov.warnings == ("5 events dropped since the last evaluation",)
    # WHEN nothing more is dropped THEN the warning is gone, and no event was sent for either
    clock.now += 60
    _run(fn)
    cov = stored(_rows(aws)[instances["fresh"]])
    assert cov is not None and cov.warnings == ()
    assert [e for e in _coverage_events(aws) if instances["fresh"] in str(e)] == []


def test_an_instance_that_leaves_the_inventory_is_marked_and_no_longer_listed(
    aws: Aws, instances: dict[str, str], fn: ModuleType, clock: Clock
) -> None:
    CoverageStore(aws.coverage_table).record([hb(instances["fresh"], 100, clock.now - 60)])
    _run(fn)
    # WHEN it is terminated
    aws.client("ec2").terminate_instances(InstanceIds=[instances["fresh"]])
    summary = _run(fn)
    # THEN its row is marked, it is no longer counted, and no event was sent for it
    row = _rows(aws)[instances["fresh"]]
    assert "covInactiveAt" in row and stored(row) is None
    assert summary["leftInventory"] == 1 and summary["countByResourceType"] == {"EC2": 2}


def test_a_failed_put_events_leaves_the_status_unstored_for_the_next_run(
    aws: Aws, instances: dict[str, str], fn: ModuleType
) -> None:
    # GIVEN a bus that does not exist (EventBridge refuses the call)
    fn.evaluator.bus_name = "no-such-bus"
    # WHEN the function runs THEN it fails, and the UNHEALTHY instances have no stored status
    with pytest.raises(Exception, match="coverage event"):
        _run(fn)
    assert "covStatus" not in _rows(aws).get(instances["never"], {})
    # WHEN the bus works again THEN the events go out (three instances, none reporting)
    fn.evaluator.bus_name = aws.bus_name
    _run(fn)
    assert len(_coverage_events(aws)) == 3


def test_a_member_accounts_instances_are_evaluated_from_their_heartbeats(
    aws: Aws, fn: ModuleType, clock: Clock
) -> None:
    # GIVEN heartbeats of two instances of a member account (multi-account: the administrator's
    # DescribeInstances cannot see them), one fresh and one an hour old
    member = "111122223333"

    def member_hb(instance: str, at: float) -> AgentHealth:
        import msgspec

        device = Device(instance_uid=instance, hostname="web", account_uid=member)
        return msgspec.structs.replace(hb(instance, 100, at), device=device)

    store = CoverageStore(aws.coverage_table)
    store.record([member_hb("i-0111122223333aaa1", clock.now - 60)])
    store.record([member_hb("i-0111122223333aaa2", clock.now - 3600)])
    # WHEN the scheduled function runs
    summary = _run(fn)
    # THEN both are evaluated, under the member's account, and the stale one reached the bus
    assert summary["countByCoverageStatus"] == {"HEALTHY": 1, "UNHEALTHY": 1}
    rows = _rows(aws)
    assert rows["i-0111122223333aaa1"]["covStatus"]["S"] == "HEALTHY"
    assert rows["i-0111122223333aaa2"]["accountId"]["S"] == member
    (event,) = _coverage_events(aws)
    assert event["detail"]["resourceAccountId"] == member
    assert event["detail"]["resourceDetails"]["ec2InstanceDetails"]["instanceId"] == "i-0111122223333aaa2"
