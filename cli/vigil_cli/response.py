"""`vigil response`: triage executions, approvals, manual isolate / release.

Mounted by vigil_cli.main as ``app.add_typer(response.app, name="response")``.

    vigil response list                       recent Triage / IsolateInstance / ReleaseInstance runs
    vigil response approve EXECUTION          answer an approval request (task token from history)
    vigil response deny EXECUTION --reason .. deny it: nothing is isolated
    vigil response isolate i-0abc --act       start IsolateInstance by hand (dry run without --act)
    vigil response release i-0abc             restore the recorded groups and protection
"""

from __future__ import annotations

import getpass
import json
import time
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from vigil_aws.response import NoPendingApproval, answer_approval, recent_executions
from vigil_cli import plainhelp, safe
from vigil_cli.stack import AccountOpt, Target, aws_errors, resolve, stack_account

app = typer.Typer(
    help="Triage and response workflows (Step Functions).", no_args_is_help=True, cls=plainhelp.Group
)
out = safe.console()
err = safe.console(stderr=True)

StackOpt = Annotated[
    str | None,
    typer.Option(
        "--stack", metavar="NAME", help="CloudFormation stack name (default: the running offline stack)"
    ),
]
RegionOpt = Annotated[str | None, typer.Option("--region", help="AWS region of the stack")]
EndpointOpt = Annotated[
    str | None,
    typer.Option("--endpoint-url", metavar="URL", help="AWS endpoint override, e.g. http://127.0.0.1:5000"),
]
WORKFLOWS = {
    "triage": "TriageStateMachineArn",
    "isolate": "IsolateInstanceStateMachineArn",
    "release": "ReleaseInstanceStateMachineArn",
}


class Workflow(StrEnum):
    triage = "triage"
    isolate = "isolate"
    release = "release"
    all = "all"


_OUTCOME_STYLE = {
    "isolated": "bold red",
    "released": "green",
    "denied": "yellow",
    "dry-run": "cyan",
    "awaiting approval": "bold yellow",
    "failed": "bold red",
}


def _target(stack: str | None, region: str | None, endpoint_url: str | None) -> Target:
    return resolve(stack, region, endpoint_url)


def _execution_arn(t: Target, execution: str) -> str:
    """An execution ARN, or a Triage execution name (what the console and `list` show)."""
    if execution.startswith("arn:"):
        return execution
    machine = t.output("TriageStateMachineArn")
    return machine.replace(":stateMachine:", ":execution:") + ":" + execution


def _started(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value or "")


def executions_table(rows: list[dict[str, Any]]) -> Table:
    """Every cell is ``safe.text``: an execution's input carries a finding from an instance."""
    t = Table(title="Response executions (newest first)")
    for col in ("started", "workflow", "finding", "instance", "decision", "outcome", "execution"):
        t.add_column(col, overflow="fold")
    for r in rows:
        finding_id = str(r["findingId"] or "")
        finding = str(r["findingType"]) + (f" ({finding_id[:8]})" if finding_id else "")
        t.add_row(
            safe.text(_started(r["started"])),
            safe.text(r["stateMachine"]),
            safe.text(finding),
            safe.text(r["instanceId"]),
            safe.text(r["decision"]),
            safe.text(r["outcome"], _OUTCOME_STYLE.get(str(r["outcome"]), "")),
            safe.text(r["name"]),
        )
    return t


@app.command("list", cls=plainhelp.Command)
def list_(
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, max=1000)] = 20,
    workflow: Annotated[
        Workflow, typer.Option("--workflow", help="which workflow's executions")
    ] = Workflow.all,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    account: AccountOpt = None,
) -> None:
    """Recent executions with their finding, instance, decision and outcome."""
    t = _target(stack, region, endpoint_url)
    keys = list(WORKFLOWS.values()) if workflow is Workflow.all else [WORKFLOWS[workflow.value]]
    with aws_errors():
        rows = recent_executions(
            t.client("stepfunctions"), [t.output(k) for k in keys if k in t.outputs], limit
        )
    if account:  # an execution whose input names no account acted in the stack's own
        admin = stack_account(t)
        rows = [r for r in rows if (r.get("accountId") or admin) == account]
    if as_json:
        for r in rows:
            typer.echo(json.dumps({**r, "started": _started(r["started"])}))
        return
    out.print(executions_table(rows))


def _answer(execution: str, approve: bool, by: str | None, reason: str, t: Target) -> None:
    arn = _execution_arn(t, execution)
    try:
        with aws_errors():
            answer_approval(
                t.client("stepfunctions"), arn, approve=approve, by=by or getpass.getuser(), reason=reason
            )
    except NoPendingApproval as exc:
        err.print(f"[red]{safe.markup(exc)}[/]")
        raise typer.Exit(1) from None
    out.print(f"{'approved' if approve else 'denied'}: {safe.markup(arn)}")


@app.command(cls=plainhelp.Command)
def approve(
    execution: Annotated[str, typer.Argument(help="Triage execution ARN or name")],
    by: Annotated[
        str | None, typer.Option(metavar="USER", help="who approves (default: your user name)")
    ] = None,
    reason: Annotated[str, typer.Option(metavar="TEXT", help="why (recorded in the execution history)")] = "",
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Approve the isolation a Triage execution is waiting for."""
    _answer(execution, True, by, reason, _target(stack, region, endpoint_url))


@app.command(cls=plainhelp.Command)
def deny(
    execution: Annotated[str, typer.Argument(help="Triage execution ARN or name")],
    reason: Annotated[str, typer.Option(metavar="TEXT", help="why (recorded in the execution history)")] = "",
    by: Annotated[
        str | None, typer.Option(metavar="USER", help="who denies (default: your user name)")
    ] = None,
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Deny it: the instance is left alone and the finding is marked DENIED."""
    _answer(execution, False, by, reason, _target(stack, region, endpoint_url))


def _start(t: Target, output: str, name: str, doc: dict[str, Any]) -> str:
    with aws_errors():
        arn = t.client("stepfunctions").start_execution(
            stateMachineArn=t.output(output), name=name, input=json.dumps(doc)
        )["executionArn"]
    return str(arn)


@app.command(cls=plainhelp.Command)
def isolate(
    instance_id: Annotated[str, typer.Argument()],
    finding_id: Annotated[str, typer.Option("--finding-id", metavar="ID")] = "manual",
    act: Annotated[
        bool, typer.Option("--act/--dry-run", help="change the instance (default: plan only)")
    ] = False,
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Start IsolateInstance by hand (same safety rails: protected tag, budget, idempotent)."""
    t = _target(stack, region, endpoint_url)
    who = getpass.getuser()
    arn = _start(
        t,
        "IsolateInstanceStateMachineArn",
        f"manual-{instance_id}-{int(time.time())}",
        {
            "findingId": finding_id,
            "findingType": "Manual",
            "instanceId": instance_id,
            "dryRun": not act,
            "requestedBy": f"cli:{who}",
        },
    )
    out.print(f"started {'isolation' if act else 'dry run'}: {safe.markup(arn)}")


@app.command(cls=plainhelp.Command)
def release(
    instance_id: Annotated[str, typer.Argument()],
    finding_id: Annotated[str | None, typer.Option("--finding-id", metavar="ID")] = None,
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Start ReleaseInstance: restore each interface's recorded groups and termination protection."""
    t = _target(stack, region, endpoint_url)
    doc: dict[str, Any] = {"instanceId": instance_id, "requestedBy": f"cli:{getpass.getuser()}"}
    if finding_id:
        doc["findingId"] = finding_id
    arn = _start(t, "ReleaseInstanceStateMachineArn", f"release-{instance_id}-{int(time.time())}", doc)
    out.print(f"started release: {safe.markup(arn)}")
