"""The shipped default: ResponseDryRun=true. Triage decides and plans; nothing changes."""

from __future__ import annotations

import pytest
from response_harness import Stack, bus_event, finding

pytestmark = pytest.mark.integration

POLICY_ENV = {"RESPONSE_DRY_RUN": "true"}


def test_dry_run_triage_plans_the_isolation_and_changes_nothing(stack: Stack) -> None:
    iid = stack.instance()
    before = stack.groups_by_interface(iid)
    f = finding(iid, maturity="stable", severity=8.5)
    stack.store_finding(f)
    d = stack.run("Triage", bus_event(f))
    assert d["status"] == "SUCCEEDED", d
    out = d["outputDoc"]
    assert out["decision"] == "auto-isolate" and out["dryRun"] is True and out["outcome"] == "dry-run"
    assert stack.groups_by_interface(iid) == before
    assert stack.termination_protection(iid) is False
    assert stack.evidence_snapshots(f["id"]) == []
    assert "vigil:isolation-state" not in stack.instance_tags(iid)
