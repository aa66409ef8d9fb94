"""Triage (statemachines/triage.asl.json): enrich, decide by policy, approve, isolate, notify.

Started the way the EventBridge rule on FindingsBus starts it (input = the bus event); moto's
EventBridge cannot target Step Functions (toolchain.md §3), the offline stack patches that.
"""

from __future__ import annotations

import time

import pytest
from response_harness import PROTECTED_TAG, Stack, bus_event, finding

from vigil_aws.response import NoPendingApproval, answer_approval, pending_task_token

pytestmark = pytest.mark.integration


def triage(stack: Stack, f: dict, *, store: bool = True) -> dict:
    if store:
        stack.store_finding(f)
    d = stack.run("Triage", bus_event(f))
    assert d["status"] == "SUCCEEDED", d
    return d["outputDoc"]


def wait_for_token(stack: Stack, arn: str) -> str:
    sfn = stack.client("stepfunctions")
    for _ in range(600):
        token = pending_task_token(sfn, arn)
        if token:
            return token
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        time.sleep(0.05)
    raise AssertionError("no approval request appeared")


def isolated(stack: Stack, iid: str) -> bool:
    return all(stack.group_names(g) == ["vigil-isolation"] for g in stack.groups_by_interface(iid).values())


def test_stable_high_severity_finding_is_isolated_automatically(stack: Stack) -> None:
    iid = stack.instance()
    stack.messages()
    f = finding(iid, maturity="stable", severity=8.0)
    out = triage(stack, f)
    assert out["decision"] == "auto-isolate" and out["outcome"] == "isolated"
    assert isolated(stack, iid)
    # the isolation execution is named for the console: type, instance, finding
    child = out["isolationExecution"].rsplit(":", 1)[-1]
    assert child.startswith(f"ReverseShell-{iid}-{f['id'][:8]}-")
    item = stack.finding_item(f["id"])
    assert item["responseStatus"] == "ISOLATED" and item["responseDecision"] == "auto-isolate"
    (note,) = [m for m in stack.messages() if m.get("kind") == "vigil.triage"]
    assert note["outcome"] == "isolated" and note["instance"]["id"] == iid
    assert note["finding"]["lineage"][0].startswith("nc (pid 4241")


def test_experimental_finding_waits_for_approval_then_isolates(stack: Stack) -> None:
    iid = stack.instance()
    before = stack.groups_by_interface(iid)
    stack.messages()
    f = finding(iid, maturity="experimental")
    stack.store_finding(f)
    arn = stack.start("Triage", bus_event(f))
    token = wait_for_token(stack, arn)
    # the request went out through SNS with the token and the commands to answer it
    (req,) = [m for m in stack.messages() if m.get("kind") == "vigil.approval-request"]
    assert req["taskToken"] == token and req["approve"] == f"vigil response approve {arn}"
    assert stack.finding_item(f["id"])["responseStatus"] == "AWAITING_APPROVAL"
    assert stack.groups_by_interface(iid) == before  # nothing happens before the answer
    answer_approval(stack.client("stepfunctions"), arn, approve=True, by="alice")
    d = stack.wait(arn)
    assert d["status"] == "SUCCEEDED", d
    assert '"outcome": "isolated"' in d["output"] or '"outcome":"isolated"' in d["output"]
    assert isolated(stack, iid)
    with pytest.raises(NoPendingApproval):
        answer_approval(stack.client("stepfunctions"), arn, approve=True, by="alice")


def test_denied_approval_changes_nothing(stack: Stack) -> None:
    iid = stack.instance()
    before = stack.groups_by_interface(iid)
    f = finding(iid, maturity="experimental")
    stack.store_finding(f)
    arn = stack.start("Triage", bus_event(f))
    wait_for_token(stack, arn)
    answer_approval(stack.client("stepfunctions"), arn, approve=False, by="bob", reason="known pentest")
    d = stack.wait(arn)
    assert d["status"] == "SUCCEEDED", d
    assert '"denied"' in d["output"]
    assert stack.groups_by_interface(iid) == before
    assert stack.termination_protection(iid) is False
    assert stack.evidence_snapshots(f["id"]) == []
    assert stack.finding_item(f["id"])["responseStatus"] == "DENIED"


@pytest.mark.parametrize(
    ("case", "expect_reason"),
    [
        ("low-severity", "below the response threshold"),
        ("protected", "protected by tag"),
        ("gone", "no longer exists"),
        ("already-handled", "already handled"),
        ("owner-says-notify", "vigil:response-mode=notify"),
    ],
)
def test_notify_only_cases_change_nothing(stack: Stack, case: str, expect_reason: str) -> None:
    tags = (
        {PROTECTED_TAG: "yes"}
        if case == "protected"
        else {"vigil:response-mode": "notify"}
        if case == "owner-says-notify"
        else None
    )
    iid = stack.instance(tags=tags)
    before = stack.groups_by_interface(iid)
    f = finding(iid, severity=5.0 if case == "low-severity" else 8.0)
    if case == "gone":
        stack.client("ec2").terminate_instances(InstanceIds=[iid])
    stack.store_finding(f)
    if case == "already-handled":
        stack.client("dynamodb").update_item(
            TableName=stack.findings_table,
            Key={"id": {"S": f["id"]}},
            UpdateExpression="SET responseStatus = :s",
            ExpressionAttributeValues={":s": {"S": "RELEASED"}},
        )
    out = triage(stack, f, store=False)
    assert out["decision"] == "notify" and out["outcome"] == "notified"
    assert any(expect_reason in r for r in out["reasons"]), out["reasons"]
    if case != "gone":
        assert stack.groups_by_interface(iid) == before
        assert stack.termination_protection(iid) is False


def test_finding_not_in_the_table_still_triages(stack: Stack) -> None:
    iid = stack.instance(groups=[[stack.security_group("a")]])
    out = triage(stack, finding(iid, severity=9.5), store=False)
    assert out["outcome"] == "isolated" and isolated(stack, iid)


def test_answered_approval_is_no_longer_pending_while_isolation_runs(stack: Stack) -> None:
    iid = stack.instance()
    f = finding(iid, maturity="experimental")
    arn = stack.start("Triage", bus_event(f))
    wait_for_token(stack, arn)
    sfn = stack.client("stepfunctions")
    answer_approval(sfn, arn, approve=True, by="alice")
    # once the answer is in the history the request is closed, even while the execution runs on
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        if any(
            e["type"] == "TaskSucceeded" and "waitForTaskToken" in e["taskSucceededEventDetails"]["resource"]
            for e in events
        ):
            assert pending_task_token(sfn, arn) is None
            break
        time.sleep(0.05)
    stack.wait(arn)
    assert pending_task_token(sfn, arn) is None


def test_finding_without_an_instance_only_notifies(stack: Stack) -> None:
    f = finding("i-unused")
    del f["resource"]["instanceDetails"]
    out = triage(stack, f, store=False)
    assert (out["decision"], out["outcome"]) == ("notify", "notified")
    assert out["reasons"] == ["the finding names no EC2 instance"]


def test_a_long_finding_type_still_triages_and_notifies(stack: Stack) -> None:
    # GIVEN a finding whose type makes "Vigil: <type> on <instance>: <outcome>" longer than SNS's
    # 100-character Subject limit (the triage used to fail on the SNS publish)
    iid = stack.instance(groups=[[stack.security_group("a")]])
    long_type = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
    # WHEN it is triaged (High severity, an unprotected instance: isolated, then announced)
    out = triage(stack, finding(iid, severity=8.0, finding_type=long_type))
    # THEN the workflow succeeds (triage() asserts it: it used to end in Vigil.TriageFailed)
    assert (out["decision"], out["outcome"]) == ("auto-isolate", "isolated"), out
