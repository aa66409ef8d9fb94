"""The pure response core: triage policy, isolation and release plans (no AWS, no clock)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.response import tags as t
from vigil.response.instance import InstanceView, Interface, instance_view
from vigil.response.plan import IsolationRequest, isolation_plan, release_plan
from vigil.response.policy import PolicyConfig, decide, execution_name, finding_view, maturity_of, sns_subject
from vigil.response.record import IsolationRecord, parse_record

CFG = PolicyConfig(
    severity_threshold=7,
    finding_types=frozenset(),
    protected_tag_key="vigil:protected",
    dry_run=False,
    approval_timeout_s=600,
    approval_default_action="isolate",
)
NOW = "2026-11-27T22:05:00Z"


def finding(
    *,
    maturity: str = "stable",
    severity: float = 8.0,
    ftype: str = "Execution:Runtime/ReverseShell",
    verified: Any = True,
) -> dict:
    return {
        "id": "ab" * 16,
        "type": ftype,
        "severity": severity,
        "resource": {"instanceDetails": {"instanceId": "i-0abc"}},
        "service": {
            "additionalInfo": {"value": json.dumps({"maturity": maturity, "identityVerified": verified})}
        },
    }


def inst(
    tags: dict[str, str] | None = None, exists: bool = True, groups: tuple[str, ...] = ("sg-a", "sg-b")
) -> InstanceView:
    return InstanceView(
        instance_id="i-0abc",
        exists=exists,
        state="running" if exists else "terminated",
        vpc_id="vpc-1",
        tags=tags or {},
        interfaces=(Interface("eni-1", "vpc-1", groups, tuple(f"name-{g}" for g in groups)),),
        volume_ids=("vol-1",),
        termination_protection=False,
    )


def action(f: dict, i: InstanceView, previous: str | None = None, cfg: PolicyConfig = CFG) -> str:
    return str(
        decide(f, i, cfg, previous_status=previous, triage_execution="x", now=NOW)["decision"]["action"]
    )


@pytest.mark.parametrize(
    ("f", "i", "previous", "expected"),
    [
        (finding(), inst(), None, "auto-isolate"),
        (finding(maturity="experimental"), inst(), None, "approve"),
        (finding(maturity="nonsense"), inst(), None, "approve"),
        (finding(), inst({t.RESPONSE_MODE: "approve"}), None, "approve"),
        (finding(), inst({t.RESPONSE_MODE: "notify"}), None, "notify"),
        (finding(severity=6.9), inst(), None, "notify"),
        (finding(), inst({"vigil:protected": ""}), None, "notify"),
        (finding(), inst(exists=False), None, "notify"),
        (finding(), inst(), "ISOLATED", "notify"),
        (finding(), inst(), "INSTANCE_GONE", "auto-isolate"),
    ],
)
def test_policy_table(f: dict, i: InstanceView, previous: str | None, expected: str) -> None:
    assert action(f, i, previous) == expected


@pytest.mark.parametrize("verified", [False, None, "true", 1])
def test_a_finding_whose_identity_was_not_verified_only_notifies(verified: Any) -> None:
    # GIVEN a stable, high-severity finding that would auto-isolate, but whose instance identity
    # ingest did not verify (false, absent, or anything but a JSON true)
    f = finding(verified=verified)
    # WHEN triage decides
    doc = decide(f, inst(), CFG, previous_status=None, triage_execution="x", now=NOW)
    # THEN it only notifies, says why, and shows the flag
    assert doc["decision"]["action"] == "notify"
    assert "instance identity not verified" in doc["decision"]["reasons"][0]
    assert "identity not verified" in doc["decision"]["summary"]
    assert doc["finding"]["identityVerified"] is False
    # AND the same finding, verified, would have been isolated
    assert action(finding(verified=True), inst()) == "auto-isolate"


def test_a_member_accounts_finding_only_notifies() -> None:
    # GIVEN the administrator's triage (its account configured) and a finding that would auto-isolate
    cfg = dataclasses.replace(CFG, account_id="123456789012")
    member = {**finding(), "accountId": "111122223333"}
    # WHEN it names a member account's instance, THEN it only notifies, saying why
    doc = decide(member, inst(), cfg, previous_status=None, triage_execution="x", now=NOW)
    assert doc["decision"]["action"] == "notify"
    assert "member account 111122223333" in doc["decision"]["reasons"][0]
    # AND the administrator's own finding (or one without an account) is isolated as before
    assert action({**finding(), "accountId": "123456789012"}, inst(), cfg=cfg) == "auto-isolate"
    assert action(finding(), inst(), cfg=cfg) == "auto-isolate"


def test_a_finding_from_before_the_identity_flag_only_notifies() -> None:
    f = finding()
    f["service"]["additionalInfo"]["value"] = json.dumps({"maturity": "stable"})
    assert action(f, inst()) == "notify"


def test_unselected_finding_type_only_notifies() -> None:
    cfg = dataclasses.replace(CFG, finding_types=frozenset({"Impact:Runtime/CryptoMinerExecuted"}))
    assert action(finding(), inst(), cfg=cfg) == "notify"
    assert action(finding(ftype="Impact:Runtime/CryptoMinerExecuted"), inst(), cfg=cfg) == "auto-isolate"


def test_timeout_default_never_isolates_an_experimental_detection() -> None:
    doc = decide(
        finding(maturity="experimental"), inst(), CFG, previous_status=None, triage_execution="x", now=NOW
    )
    assert doc["approval"]["defaultAction"] == "notify"
    doc = decide(
        finding(),
        inst({t.RESPONSE_MODE: "approve"}),
        CFG,
        previous_status=None,
        triage_execution="x",
        now=NOW,
    )
    assert doc["approval"]["defaultAction"] == "isolate"


def test_execution_name_is_readable_and_valid() -> None:
    name = execution_name(
        "Execution:Runtime/ReverseShell", "i-0123456789abcdef0", "ab" * 16, "4b3521a3-a188-4eb5"
    )
    assert name == "ReverseShell-i-0123456789abcdef0-abababab-4b3521a3-a18"
    long = execution_name("X:Y/" + "Z" * 200, "i-1", "f" * 32, "s")
    assert len(long) <= 80 and all(c.isalnum() or c in "-_" for c in long)


def test_maturity_defaults_to_experimental() -> None:
    assert maturity_of({}) == "experimental"
    assert maturity_of({"service": {"additionalInfo": {"value": "not json"}}}) == "experimental"
    assert maturity_of(finding()) == "stable"


def req(dry_run: Any = False) -> IsolationRequest:
    return IsolationRequest.from_input({"findingId": "f1", "instanceId": "i-0abc", "dryRun": dry_run})


def plan(i: InstanceView, dry_run: Any = False) -> dict:
    return isolation_plan(
        req(dry_run), i, protected_tag_key="vigil:protected", budget_per_hour=3, now_iso=NOW, now_epoch=1000
    )


def test_plan_records_originals_in_the_table_once_and_never_vigil_groups() -> None:
    first = plan(inst())
    assert first["outcome"] == "isolate"
    rec = first["record"]
    assert rec["key"] == {"pk": {"S": "isolation#i-0abc"}}
    assert rec["conditionExpression"] == "attribute_not_exists(#g)"
    assert rec["values"][":groups"] == {"M": {"eni-1": {"L": [{"S": "sg-a"}, {"S": "sg-b"}]}}}
    assert rec["values"][":prot"] == {"BOOL": False}
    assert first["budget"] == {"key": "isolation-budget#2026-11-27T22", "limit": "3", "expiresAt": "8200"}
    # a re-run after a partial isolation (now in vigil-untrack, originals already in the table)
    partial = InstanceView(
        "i-0abc",
        True,
        "running",
        "vpc-1",
        {},
        (Interface("eni-1", "vpc-1", ("sg-u",), (t.UNTRACK_GROUP_NAME,)),),
        record=parse_record(
            {
                "Item": {
                    "pk": {"S": "isolation#i-0abc"},
                    "originalGroups": {"M": {"eni-1": {"L": [{"S": "sg-a"}, {"S": "sg-b"}]}}},
                    "originalTerminationProtection": {"BOOL": False},
                }
            }
        ),
        termination_protection=True,  # Vigil turned it on; the record says what it was
    )
    again = plan(partial)
    assert again["outcome"] == "isolate"
    assert again["record"]["conditionExpression"] == "attribute_exists(#g)"
    assert ":groups" not in again["record"]["values"]  # nothing new to record, nothing overwritten
    assert again["record"]["values"][":prot"] == {"BOOL": False}
    assert json.loads(again["originalGroupsJson"]) == {"eni-1": ["sg-a", "sg-b"]}


def test_plan_adds_only_unrecorded_interfaces_without_overwriting() -> None:
    view = InstanceView(
        "i-0abc",
        True,
        "running",
        "vpc-1",
        {},
        (
            Interface("eni-1", "vpc-1", ("sg-u",), (t.UNTRACK_GROUP_NAME,)),
            Interface("eni-2", "vpc-1", ("sg-c",), ("db",)),
        ),
        record=IsolationRecord(original_groups={"eni-1": ("sg-a",)}, has_groups=True),
    )
    rec = plan(view)["record"]
    assert rec["names"] == {"#g": "originalGroups", "#i0": "eni-2"}
    assert rec["values"][":g0"] == {"L": [{"S": "sg-c"}]}
    assert "#g.#i0 = if_not_exists(#g.#i0, :g0)" in rec["updateExpression"]


def test_every_tag_the_plans_write_fits_ec2_limits_with_sixteen_groups_per_interface() -> None:
    groups = tuple(f"sg-{n:017x}" for n in range(16))
    many = InstanceView(
        "i-0123456789abcdef0",
        True,
        "running",
        "vpc-1",
        {},
        tuple(Interface(f"eni-{k}", "vpc-1", groups, tuple(f"g{n}" for n in range(16))) for k in range(15)),
        volume_ids=("vol-1",),
    )
    p = isolation_plan(
        IsolationRequest.from_input({"findingId": "f" * 32, "instanceId": many.instance_id, "dryRun": False}),
        many,
        protected_tag_key="vigil:protected",
        budget_per_hour=3,
        now_iso=NOW,
        now_epoch=1000,
    )
    assert len(",".join(groups)) > t.TAG_VALUE_MAX  # what a tag could not have held
    for tags in (p["pointerTags"], p["isolatedTags"], p["snapshotTags"]):
        assert t.tag_problems(tags) == []
    assert len(p["record"]["values"][":groups"]["M"]) == 15
    assert t.tag_problems([{"Key": "k", "Value": ",".join(groups)}]) != []


def test_record_parsing_is_total() -> None:
    assert parse_record({}) is None
    assert parse_record({"Item": "x"}) is None
    r = parse_record(
        {"Item": {"originalGroups": {"M": {"eni-1": {"S": "not a list"}, "eni-2": {"L": [{"N": "1"}]}}}}}
    )
    assert r is not None and r.original_groups == {"eni-2": ()} and r.has_groups


@pytest.mark.parametrize(
    ("dry", "outcome"),
    [(True, "dry-run"), ("true", "dry-run"), (None, "dry-run"), ("false", "isolate"), (False, "isolate")],
)
def test_anything_but_an_explicit_false_is_a_dry_run(dry: Any, outcome: str) -> None:
    assert plan(inst(), dry)["outcome"] == outcome


def test_plan_outcomes_that_change_nothing() -> None:
    assert plan(inst(exists=False))["outcome"] == "gone"
    assert plan(inst({"vigil:protected": "x"}))["outcome"] == "protected"
    isolated = InstanceView(
        "i-0abc",
        True,
        "running",
        "vpc-1",
        {},
        (Interface("eni-1", "vpc-1", ("sg-i",), (t.ISOLATION_GROUP_NAME,)),),
    )
    assert plan(isolated)["outcome"] == "already-isolated"


def test_release_plan_restores_recorded_groups_and_protection() -> None:
    isolated = InstanceView(
        "i-0abc",
        True,
        "running",
        "vpc-1",
        {t.ORIGINAL_TERMINATION_PROTECTION: "false", t.FINDING_ID: "f9"},
        (
            Interface(
                "eni-1", "vpc-1", ("sg-i",), (t.ISOLATION_GROUP_NAME,), {t.ORIGINAL_GROUPS: "sg-a,sg-b"}
            ),
            Interface("eni-2", "vpc-1", ("sg-i",), (t.ISOLATION_GROUP_NAME,)),
        ),
    )
    p = release_plan(isolated, finding_id=None, now_iso=NOW)
    assert p["outcome"] == "release" and p["findingId"] == "f9"
    assert p["restore"] == [{"interfaceId": "eni-1", "groups": ["sg-a", "sg-b"]}]
    assert p["terminationProtection"] is False
    assert p["warnings"] == ["eni-2: isolated but no recorded groups; left isolated"]
    assert release_plan(inst(), finding_id=None, now_iso=NOW)["outcome"] == "not-isolated"


def test_release_plan_restores_from_the_table_record_first() -> None:
    isolated = InstanceView(
        "i-0abc",
        True,
        "running",
        "vpc-1",
        {t.ORIGINAL_TERMINATION_PROTECTION: "false"},
        (Interface("eni-1", "vpc-1", ("sg-i",), (t.ISOLATION_GROUP_NAME,), {t.ORIGINAL_GROUPS: "sg-stale"}),),
        record=IsolationRecord(
            original_groups={"eni-1": tuple(f"sg-{n}" for n in range(16)), "eni-gone": ("sg-z",)},
            termination_protection=True,
            finding_id="f7",
            has_groups=True,
        ),
    )
    p = release_plan(isolated, finding_id=None, now_iso=NOW)
    assert p["restore"] == [{"interfaceId": "eni-1", "groups": [f"sg-{n}" for n in range(16)]}]
    assert p["terminationProtection"] is True and p["findingId"] == "f7"
    assert p["recordKey"] == {"pk": {"S": "isolation#i-0abc"}}
    assert p["warnings"] == ["eni-gone: recorded but no longer attached to i-0abc; not restored"]


def test_instance_view_reads_describe_results() -> None:
    observed = {
        "instance": {
            "reservations": [
                {
                    "Instances": [
                        {
                            "InstanceId": "i-0abc",
                            "State": {"Name": "running"},
                            "VpcId": "vpc-1",
                            "Tags": [{"Key": "Name", "Value": "web"}],
                            "BlockDeviceMappings": [{"Ebs": {"VolumeId": "vol-1"}}],
                        }
                    ]
                }
            ]
        },
        "eni": {
            "interfaces": [
                {
                    "NetworkInterfaceId": "eni-1",
                    "VpcId": "vpc-1",
                    "Groups": [{"GroupId": "sg-a", "GroupName": "web"}],
                    "TagSet": [],
                }
            ]
        },
        "asg": {"instances": [{"InstanceId": "i-0abc", "AutoScalingGroupName": "web-asg"}]},
        "protection": {"DisableApiTermination": {"Value": True}},
    }
    v = instance_view("i-0abc", observed)
    assert (v.exists, v.asg_name, v.termination_protection, v.volume_ids) == (
        True,
        "web-asg",
        True,
        ("vol-1",),
    )
    assert v.interfaces[0].groups == ("sg-a",)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=12,
)


@given(json_values, json_values)
def test_views_and_decisions_never_raise(raw_finding: Any, observed: Any) -> None:
    v = instance_view("i-0abc", observed if isinstance(observed, dict) else {})
    f = raw_finding if isinstance(raw_finding, dict) else {}
    finding_view(f)
    decide(f, v, CFG, previous_status=None, triage_execution="x", now=NOW)
    plan(v)
    release_plan(v, finding_id=None, now_iso=NOW)


@given(st.text(max_size=300), st.integers(min_value=10, max_value=99))
def test_sns_subjects_are_printable_ascii_and_fit(text: str, limit: int) -> None:
    got = sns_subject(text, limit)
    assert 0 < len(got) <= limit and all(" " <= c <= "~" for c in got)
    if text.isascii() and text.isprintable() and 0 < len(text.strip()) <= limit:
        assert got == text.strip()


def test_decide_gives_subjects_that_fit_sns_for_the_longest_type() -> None:
    f = finding(ftype="UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS")
    d = decide(f, inst(), CFG, previous_status=None, triage_execution="t", now="2026-12-06T00:00:00Z")
    subjects = d["decision"]["subjects"]
    assert len(subjects["approval"]) < 100 and subjects["approval"].endswith("...")
    assert len(subjects["outcomePrefix"]) <= 72
