"""Approval timeout and its default action (stack parameters ApprovalTimeoutSeconds=1 and
ApprovalDefaultAction=isolate here), and the rule that keeps an unanswered question about an
experimental detection from isolating anything."""

from __future__ import annotations

import pytest
from response_harness import Stack, bus_event, finding

pytestmark = pytest.mark.integration

POLICY_ENV = {"APPROVAL_TIMEOUT_SECONDS": "1", "APPROVAL_DEFAULT_ACTION": "isolate"}


def run(stack: Stack, f: dict) -> dict:
    stack.store_finding(f)
    d = stack.run("Triage", bus_event(f))
    assert d["status"] == "SUCCEEDED", d
    return d["outputDoc"]


def test_timed_out_approval_applies_the_default_action(stack: Stack) -> None:
    # GIVEN a stable finding on an instance whose owners want to be asked first
    iid = stack.instance(tags={"vigil:response-mode": "approve"})
    # WHEN nobody answers within the timeout
    out = run(stack, finding(iid, maturity="stable"))
    # THEN the default action (isolate) runs
    assert out["decision"] == "approve"
    assert out["outcome"] == "isolated"
    assert all(stack.group_names(g) == ["vigil-isolation"] for g in stack.groups_by_interface(iid).values())


def test_timed_out_approval_never_isolates_for_an_experimental_detection(stack: Stack) -> None:
    iid = stack.instance()
    before = stack.groups_by_interface(iid)
    f = finding(iid, maturity="experimental")
    out = run(stack, f)
    assert out["decision"] == "approve" and out["outcome"] == "approval-timed-out"
    assert stack.groups_by_interface(iid) == before
    assert stack.finding_item(f["id"])["responseStatus"] == "APPROVAL_TIMED_OUT"
