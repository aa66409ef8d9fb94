"""`vigil response list|approve|deny` against the workflows on emulated AWS."""

from __future__ import annotations

import json
import re
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


HOSTILE_INSTANCE = "i-0\x1b]0;owned\x07[/]\x9b2J"
FORBIDDEN = re.compile("[\x1b\x07\x08\r\x7f\x80-\x9f]")


def test_list_shows_a_hostile_finding_escaped_in_the_table_and_as_valid_json(
    stack: Stack, cli: CliRunner
) -> None:
    """GIVEN a Triage run on a finding whose instance id and type carry terminal escapes and rich
    markup, WHEN `response list` prints it, THEN nothing is interpreted: no escape reaches the
    terminal, the id is visibly there, and --json decodes back to the original."""
    f = finding(HOSTILE_INSTANCE, finding_type="Execution:Runtime/[bold]\x1b[2J")
    arn = stack.start("Triage", bus_event(f), name=f"triage-{f['id'][:8]}")
    stack.wait(arn)
    table = cli.invoke(response.app, ["list", "--workflow", "triage", "--limit", "50"])
    assert table.exit_code == 0, table.output
    assert not FORBIDDEN.findall(table.output)
    assert "i-0\\x1b]0;owned\\x07[/]\\x9b2J" in table.output
    listed = cli.invoke(response.app, ["list", "--workflow", "triage", "--limit", "50", "--json"])
    assert listed.exit_code == 0 and not FORBIDDEN.findall(listed.output)
    rows = [json.loads(line) for line in listed.output.splitlines() if line.startswith("{")]
    assert HOSTILE_INSTANCE in [r["instanceId"] for r in rows]


def test_approve_or_deny_of_a_hostile_execution_name_is_an_escaped_error(cli: CliRunner) -> None:
    for verb in ("approve", "deny"):
        res = cli.invoke(response.app, [verb, "t-\x1b]0;owned\x07[/]"])
        assert res.exit_code == 1, res.output
        assert not FORBIDDEN.findall(res.output) and "t-\\x1b]0;owned\\x07[/]" in res.output


def test_an_unknown_workflow_is_a_usage_error_not_a_traceback(cli: CliRunner) -> None:
    res = cli.invoke(response.app, ["list", "--workflow", "[/]"])
    assert res.exit_code == 2 and "Traceback" not in res.output and res.exception is not None


@pytest.mark.parametrize("verb", ["isolate", "release"])
def test_a_hostile_instance_id_given_by_hand_is_never_printed_raw(cli: CliRunner, verb: str) -> None:
    """moto takes the execution name as is (AWS would refuse it: then the error is escaped)."""
    res = cli.invoke(response.app, [verb, HOSTILE_INSTANCE])
    assert res.exit_code == 0, res.output
    assert not FORBIDDEN.findall(res.output) and "i-0\\x1b]0;owned\\x07[/]\\x9b2J" in res.output
