"""Coverage evaluation (pure): statuses and issues in GuardDuty's categories, Vigil's warnings,
statistics, change events, and the CoverageResource shape of botocore's GuardDuty model."""

from __future__ import annotations

from functools import cache

import botocore.session
import pytest
from botocore.model import StructureShape
from guardduty_shape import validate
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.coverage import (
    Association,
    Counters,
    CoverageConfig,
    Instance,
    Report,
    change_event,
    evaluate,
    evaluate_one,
    healthy_percent,
    kernel_version,
    statistics,
)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ACCOUNT = "123456789012"
ID = "i-0123456789abcdef0"
SENSORS = ("ebpf", "audit", "dns")


@cache
def coverage_resource_shape() -> StructureShape:
    shape = botocore.session.get_session().get_service_model("guardduty").shape_for("CoverageResource")
    assert isinstance(shape, StructureShape)
    return shape


def inst(**kw: object) -> Instance:
    return Instance(**{"instance_id": ID, "instance_type": "t3.micro", "launch_time": NOW - 86400, **kw})  # type: ignore[arg-type]


def rep(age_s: float | None = 60, **kw: object) -> Report:
    base: dict[str, object] = {
        "instance_id": ID,
        "last_heartbeat_at": None if age_s is None else NOW - age_s,
        "agent_version": "0.1.0",
        "kernel": "6.1.0-18-amd64",
        "sensors_active": SENSORS,
    }
    return Report(**{**base, **kw})  # type: ignore[arg-type]


def test_a_fresh_heartbeat_with_every_sensor_is_healthy_with_no_warning() -> None:
    c = evaluate_one(inst(), rep(age_s=60), NOW)
    assert (c.status, c.issue, c.warnings) == ("HEALTHY", "", ())


def test_a_heartbeat_older_than_the_disconnected_age_is_agent_disconnected() -> None:
    # GIVEN the default age (15 min: the row lags by up to 5 min, heartbeats come every minute)
    # WHEN the last heartbeat is 14 min old, then 16 min old
    assert evaluate_one(inst(), rep(age_s=14 * 60), NOW).status == "HEALTHY"
    c = evaluate_one(inst(), rep(age_s=16 * 60), NOW)
    # THEN GuardDuty's category and message
    assert (c.status, c.issue) == ("UNHEALTHY", "No Agent Reporting: Agent disconnected")


def test_the_disconnected_age_is_configurable() -> None:
    c = evaluate_one(inst(), rep(age_s=400), NOW, CoverageConfig(disconnected_after_s=360))
    assert c.issue == "No Agent Reporting: Agent disconnected"


def test_an_instance_that_never_reported_waits_for_ssm_then_reports_no_agent() -> None:
    # GIVEN no coverage row; a young instance, then an old one
    young = evaluate_one(inst(launch_time=NOW - 120), None, NOW)
    old = evaluate_one(inst(launch_time=NOW - 3600), None, NOW)
    assert (young.status, young.issue) == ("UNHEALTHY", "No Agent Reporting: Waiting for SSM notification")
    assert (old.status, old.issue) == ("UNHEALTHY", "No Agent Reporting")


@pytest.mark.parametrize("value", ["false", "False", " FALSE "])
def test_the_exclusion_tag_is_agent_not_provisioned_and_management_disabled(value: str) -> None:
    c = evaluate_one(inst(tags={"VigilManaged": value}), None, NOW)
    assert (c.status, c.issue, c.management_type) == (
        "UNHEALTHY",
        "Agent Not Provisioned: Exclusion tag VigilManaged=false",
        "DISABLED",
    )


def test_the_exclusion_tag_with_another_value_changes_nothing() -> None:
    c = evaluate_one(inst(tags={"VigilManaged": "true"}), rep(), NOW)
    assert (c.status, c.management_type) == ("HEALTHY", "AUTO_MANAGED")


def test_an_excluded_instance_whose_agent_still_reports_is_healthy_with_a_warning() -> None:
    c = evaluate_one(inst(tags={"VigilManaged": "false"}), rep(), NOW)
    assert c.status == "HEALTHY" and any("exclusion tag" in w for w in c.warnings)


def test_a_kernel_below_the_supported_range_is_agent_not_provisioned() -> None:
    c = evaluate_one(inst(), rep(kernel="3.10.0-1160.el7.x86_64"), NOW)
    assert (c.status, c.issue) == (
        "UNHEALTHY",
        "Agent Not Provisioned: Kernel 3.10 is lower than the supported 4.14",
    )
    hi = evaluate_one(inst(), rep(kernel="7.2.0"), NOW, CoverageConfig(max_kernel=(6, 12)))
    assert hi.issue == "Agent Not Provisioned: Kernel 7.2 is higher than the supported 6.12"


def test_an_unparsable_kernel_is_not_unsupported() -> None:
    assert evaluate_one(inst(), rep(kernel="\x1b[2Jgarbage"), NOW).status == "HEALTHY"
    assert kernel_version("5.15.0-1051-aws") == (5, 15) and kernel_version("x") is None


def test_windows_is_agent_not_provisioned() -> None:
    c = evaluate_one(inst(platform="windows"), None, NOW)
    assert c.issue == "Agent Not Provisioned: Platform windows is not supported (Linux only)"


def test_a_failed_ssm_association_explains_a_silent_instance_and_warns_on_a_reporting_one() -> None:
    failed = Association(ID, "Failed", "install.sh exited 1")
    silent = evaluate_one(inst(), None, NOW, association=failed)
    assert silent.issue == "SSM Instance Association Execution Failed: install.sh exited 1"
    reporting = evaluate_one(inst(), rep(), NOW, association=failed)
    assert reporting.status == "HEALTHY" and reporting.warnings == (
        "SSM association failed: install.sh exited 1",
    )


def test_an_identity_problem_explains_a_silent_instance_and_warns_on_a_reporting_one() -> None:
    silent = evaluate_one(
        inst(), rep(age_s=3600, identity_problem="unsigned", identity_problem_at=NOW - 60), NOW
    )
    assert silent.issue == "Agent Not Provisioned: Instance identity not verified: unsigned"
    reporting = evaluate_one(inst(), rep(identity_problem="forged", identity_problem_at=NOW - 30), NOW)
    assert reporting.status == "HEALTHY" and reporting.warnings == ("identity problem: forged",)
    # an identity problem older than the latest heartbeat is over
    over = evaluate_one(inst(), rep(age_s=30, identity_problem="forged", identity_problem_at=NOW - 600), NOW)
    assert over.warnings == ()


def test_no_process_sensor_is_unhealthy_sensors_degraded() -> None:
    c = evaluate_one(
        inst(), rep(sensors_active=("dns",), sensors_unavailable={"ebpf": "no BTF", "audit": "EPERM"}), NOW
    )
    assert (c.status, c.issue) == (
        "UNHEALTHY",
        "Vigil Sensors Degraded: no process sensor (ebpf: no BTF; audit: EPERM)",
    )


def test_audit_only_and_no_dns_are_warnings() -> None:
    c = evaluate_one(
        inst(),
        rep(sensors_active=("audit",), sensors_unavailable={"ebpf": "no BTF", "dns": "no CAP_NET_RAW"}),
        NOW,
    )
    assert c.status == "HEALTHY"
    assert c.warnings == ("audit-only: ebpf unavailable (no BTF)", "no DNS sensor (no CAP_NET_RAW)")


def test_losses_since_the_last_evaluation_are_warnings_and_a_restart_counts_from_zero() -> None:
    # GIVEN counters that grew since the stored evaluation
    grew = rep(
        counters=Counters(dropped=15, spooled=40, audit_lost=2),
        previous_counters=Counters(dropped=10, spooled=40),
    )
    c = evaluate_one(inst(), grew, NOW)
    assert c.status == "HEALTHY"
    assert c.warnings == (
        "5 events dropped since the last evaluation",
        "2 audit records lost by the kernel since the last evaluation",
    )
    # WHEN the agent restarted (counters went down) THEN its current counts are all new
    restarted = rep(counters=Counters(dropped=3), previous_counters=Counters(dropped=10))
    assert evaluate_one(inst(), restarted, NOW).warnings == ("3 events dropped since the last evaluation",)
    # AND unchanged counters warn of nothing
    same = rep(counters=Counters(dropped=10), previous_counters=Counters(dropped=10))
    assert evaluate_one(inst(), same, NOW).warnings == ()


def test_the_inventory_decides_who_is_listed() -> None:
    # GIVEN a running instance that reported, a running one that never did, a stopped one that
    # reported, and a row for an id EC2 does not know
    inventory = [inst(), inst(instance_id="i-never"), inst(instance_id="i-stopped", state="stopped")]
    reports = [rep(), rep(instance_id="i-stopped"), rep(instance_id="i-unknown")]
    out = evaluate(inventory, reports, NOW)
    # THEN the running ones only, the silent one UNHEALTHY
    assert [(c.instance_id, c.status) for c in out] == [(ID, "HEALTHY"), ("i-never", "UNHEALTHY")]


def test_statistics_by_status_and_resource_type() -> None:
    out = evaluate([inst(), inst(instance_id="i-a"), inst(instance_id="i-b")], [rep()], NOW)
    assert statistics(out) == {
        "countByCoverageStatus": {"HEALTHY": 1, "UNHEALTHY": 2},
        "countByResourceType": {"EC2": 3},
    }
    assert healthy_percent(out) == pytest.approx(100 / 3)
    assert statistics([]) == {"countByCoverageStatus": {}, "countByResourceType": {}}


def test_events_only_on_a_status_change_with_guardduty_detail_shape() -> None:
    # GIVEN an instance stored HEALTHY whose heartbeat went stale
    c = evaluate_one(inst(), rep(age_s=3600, previous_status="HEALTHY"), NOW)
    ev = change_event(c, ACCOUNT, NOW)
    assert ev == {
        "source": "vigil",
        "detail-type": "Vigil Runtime Protection Unhealthy",
        "detail": {
            "schemaVersion": "1.0",
            "resourceAccountId": ACCOUNT,
            "currentStatus": "UNHEALTHY",
            "previousStatus": "HEALTHY",
            "resourceDetails": {
                "resourceType": "EC2",
                "ec2InstanceDetails": {
                    "instanceId": ID,
                    "instanceType": "t3.micro",
                    "agentDetails": {"version": "0.1.0"},
                    "managementType": "AUTO_MANAGED",
                },
            },
            "issue": "No Agent Reporting: Agent disconnected",
            "lastUpdatedAt": "2026-01-01T00:00:00.000Z",
        },
    }
    # AND the recovery is a Healthy event; no change is no event
    back = evaluate_one(inst(), rep(previous_status="UNHEALTHY"), NOW)
    assert change_event(back, ACCOUNT, NOW)["detail-type"] == "Vigil Runtime Protection Healthy"  # type: ignore[index]
    assert change_event(evaluate_one(inst(), rep(previous_status="HEALTHY"), NOW), ACCOUNT, NOW) is None


def test_a_first_evaluation_sends_an_event_only_when_unhealthy() -> None:
    assert change_event(evaluate_one(inst(), rep(), NOW), ACCOUNT, NOW) is None
    first = change_event(evaluate_one(inst(), None, NOW), ACCOUNT, NOW)
    assert first is not None and first["detail"]["previousStatus"] is None


def test_records_are_valid_coverage_resources() -> None:
    c = evaluate_one(inst(), rep(age_s=3600), NOW)
    doc = c.resource(ACCOUNT, NOW, detector_id="vigil")
    assert validate(doc, coverage_resource_shape(), "coverage") == []
    assert doc["issue"] == "No Agent Reporting: Agent disconnected"


def test_the_validator_rejects_a_broken_coverage_resource() -> None:
    doc = evaluate_one(inst(), rep(), NOW).resource(ACCOUNT, NOW)
    doc["coverageStatus"] = "OK"
    doc["bogus"] = 1
    errs = validate(doc, coverage_resource_shape(), "coverage")
    assert any("coverageStatus" in e for e in errs) and any("bogus" in e for e in errs)


# -- totality: hostile rows and inventories never crash the evaluation ------------------------
_text = st.text(max_size=40)
_time = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**63), 2**63).map(float)
)
_counters = st.builds(
    Counters, st.integers(-(2**63), 2**64), st.integers(-(2**63), 2**64), st.integers(-(2**63), 2**64)
)
_ids = st.sampled_from(["i-a", "i-b", "i-c", ""])
_instances = st.builds(
    Instance,
    instance_id=_ids,
    instance_type=_text,
    state=st.sampled_from(["running", "stopped", "pending", ""]),
    tags=st.dictionaries(st.sampled_from(["VigilManaged", "Name", ""]), _text, max_size=3),
    launch_time=_time,
    platform=st.sampled_from(["", "windows", "Windows", "\x00"]),
)
_reports = st.builds(
    Report,
    instance_id=_ids,
    last_heartbeat_at=_time,
    agent_version=_text,
    kernel=st.one_of(_text, st.from_regex(r"\d{1,6}\.\d{1,6}[.-].*", fullmatch=True)),
    hostname=_text,
    sensors_active=st.lists(st.sampled_from(["ebpf", "audit", "dns", "proc_connector", "x"]), max_size=4).map(
        tuple
    ),
    sensors_unavailable=st.dictionaries(_text, st.text(max_size=2000), max_size=3),
    counters=_counters,
    identity_problem=_text,
    identity_problem_at=_time,
    previous_status=st.sampled_from([None, "HEALTHY", "UNHEALTHY"]),
    previous_counters=st.one_of(st.none(), _counters),
)
_assoc = st.builds(
    Association, _ids, st.sampled_from(["Success", "Failed", "FAILED", "Pending", ""]), st.text(max_size=2000)
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_instances, max_size=5),
    st.lists(_reports, max_size=5),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.lists(_assoc, max_size=3),
)
def test_evaluation_is_total_and_its_records_are_always_valid(inventory, reports, now, associations) -> None:  # type: ignore[no-untyped-def]
    out = evaluate(inventory, reports, now, CoverageConfig(), associations)
    running = {i.instance_id for i in inventory if i.state == "running" and i.instance_id}
    assert sorted(c.instance_id for c in out) == sorted(running)
    for c in out:
        assert (c.status == "HEALTHY") == (c.issue == "")
        assert all(len(w) <= 600 for w in c.warnings) and len(c.issue) <= 600
        assert validate(c.resource(ACCOUNT, now), coverage_resource_shape(), "coverage") == []
        ev = change_event(c, ACCOUNT, now)
        assert ev is None or ev["detail"]["currentStatus"] == c.status
    assert sum(statistics(out)["countByCoverageStatus"].values()) == len(out)
