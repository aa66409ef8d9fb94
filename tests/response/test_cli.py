"""`vigil response list|approve|deny` against the workflows on emulated AWS."""

from __future__ import annotations

import json
import time

import pytest
from response_harness import REGION, Stack, bus_event, finding
from typer.testing import CliRunner

from vigil_aws.response import pending_task_token
from vigil_cli import response
from vigil_cli.stack import Target

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    outputs = {
        "TriageStateMachineArn": stack.machines["Triage"],
        "IsolateInstanceStateMachineArn": stack.machines["IsolateInstance"],
        "ReleaseInstanceStateMachineArn": stack.machines["ReleaseInstance"],
    }
    monkeypatch.setattr(response, "resolve", lambda *a: Target(REGION, None, outputs))
    return CliRunner()


def test_approve_by_execution_name_then_list_shows_the_outcome(stack: Stack, cli: CliRunner) -> None:
    iid = stack.instance(groups=[[stack.security_group("a")]])
    f = finding(iid, maturity="experimental")
    name = f"triage-{f['id'][:8]}"
    arn = stack.start("Triage", bus_event(f), name=name)
    sfn = stack.client("stepfunctions")
    while pending_task_token(sfn, arn) is None:
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        time.sleep(0.05)
    pending = cli.invoke(response.app, ["list", "--workflow", "triage", "--json"])
    assert pending.exit_code == 0, pending.output
    assert '"awaiting approval"' in pending.output
    ok = cli.invoke(response.app, ["approve", name, "--by", "alice"])
    assert ok.exit_code == 0, ok.output
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    listed = cli.invoke(response.app, ["list", "--limit", "50", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines() if line.startswith("{")]
    (row,) = [r for r in rows if r["name"] == name]
    assert (row["instanceId"], row["decision"], row["outcome"]) == (iid, "approve", "isolated")
    assert any(r["stateMachine"] == "IsolateInstance" and r["instanceId"] == iid for r in rows)
    table = cli.invoke(response.app, ["list"])
    assert table.exit_code == 0 and "Response executions" in table.output
    again = cli.invoke(response.app, ["deny", name])
    assert again.exit_code == 1 and "not waiting" in again.output
