"""`vigil findings sample`: one sample finding of each type in the stack's findings table, marked as
GuardDuty's CreateSampleFindings marks them (``additionalInfo.sample: true``, ``[SAMPLE]`` titles).

Mounted by vigil_cli.main (``register``). The console's "generate sample findings" action calls
``generate`` too.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from vigil.registry import all_detections
from vigil.sample_findings import sample_findings
from vigil_aws.sample_store import Stored, store_samples
from vigil_cli import plainhelp, safe
from vigil_cli.stack import Target, aws_errors, resolve

err = safe.console(stderr=True)


def account_of(target: Target) -> str:
    """The stack's account: from an ARN among its outputs, else the caller identity."""
    for value in target.outputs.values():
        parts = str(value).split(":")
        if len(parts) > 5 and parts[0] == "arn" and parts[4].isdigit():
            return parts[4]
    try:
        return str(target.client("sts").get_caller_identity()["Account"])
    except Exception:  # no credentials: the ids only need to be stable
        return "000000000000"


def generate(target: Target, types: list[str] | None = None, now_s: float | None = None) -> Stored:
    """Build and store the samples (only ``types`` if given); returns what was written."""
    now = time.time() if now_s is None else now_s
    dets = [d for d in all_detections() if not types or d.meta.type in types]
    samples = sample_findings(
        dets, account_id=account_of(target), region=target.region, now_ns=int(now * 1e9)
    )
    return store_samples(target.client("dynamodb"), target.output("FindingsTableName"), samples, now_s=now)


def sample(
    finding_type: Annotated[
        list[str] | None,
        typer.Option("--type", metavar="TYPE", help="only this type (repeat for more); default: every type"),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack", metavar="NAME", help="CloudFormation stack name (default: the running offline stack)"
        ),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region of the stack")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", metavar="URL", help="AWS endpoint override")
    ] = None,
) -> None:
    """Store one sample finding of each type (marked sample: true, titles start with [SAMPLE])."""
    known = {d.meta.type for d in all_detections()}
    unknown = [t for t in finding_type or [] if t not in known]
    if unknown:
        err.print(f"[red]error:[/] unknown finding type {safe.markup(unknown[0])}", highlight=False)
        raise typer.Exit(2)
    target = resolve(stack, region, endpoint_url)
    with aws_errors():
        stored = generate(target, finding_type)
    for fid in stored.refused:
        err.print(f"[yellow]skipped[/] {safe.markup(fid)}: a real finding has that id", highlight=False)
    err.print(f"stored {len(stored.written)} sample findings", highlight=False)


def register(findings: Any) -> None:
    findings.command("sample", cls=plainhelp.Command)(sample)
