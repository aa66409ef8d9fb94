"""`vigil coverage list|stats`: HEALTHY / UNHEALTHY per running EC2 instance, as GuardDuty's
ListCoverage and GetCoverageStatistics report it (docs/coverage.md).

By default it shows what CoverageFunction stored at its last scheduled run (no EC2 call);
``--refresh`` evaluates now from the EC2 inventory and CoverageTable, writing nothing and sending
no event. Hostnames, kernels, agent versions and warnings come from the agents: every one is
printed through ``safe``.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from vigil import coverage as core
from vigil_aws.coverage_eval import coverage_rows, evaluate_now, row_account, stored, updated_at
from vigil_cli import plainhelp, safe
from vigil_cli.stack import AccountOpt, aws_errors, resolve, stack_account

app = typer.Typer(
    help="Coverage: HEALTHY / UNHEALTHY per running EC2 instance.", no_args_is_help=True, cls=plainhelp.Group
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
RefreshOpt = Annotated[
    bool,
    typer.Option(
        "--refresh", help="evaluate now from EC2 and the heartbeats (read-only) instead of the last run"
    ),
]
AgeOpt = Annotated[
    float,
    typer.Option(
        "--disconnected-after",
        metavar="SECONDS",
        min=360,
        help="with --refresh: a heartbeat older than this is Agent disconnected (the stack's CoverageDisconnectedAfterSeconds)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="GuardDuty's JSON shapes instead of a table")]
_STYLE = {"HEALTHY": "green", "UNHEALTHY": "bold red"}


def _load(
    stack: str | None,
    region: str | None,
    endpoint_url: str | None,
    refresh: bool,
    age: float,
    account: str | None = None,
) -> list[tuple[core.Coverage, float, str]]:
    """(coverage, updatedAt, account) per instance, sorted by instance id; only ``account``'s
    when given (a row's account is the signed identity's; rows without one are the stack's)."""
    target = resolve(stack, region, endpoint_url)
    admin = stack_account(target)
    table = target.output("CoverageTableName")
    ddb = target.client("dynamodb")
    with aws_errors():
        if refresh:
            now = time.time()
            covs, rows = evaluate_now(
                ddb, target.client("ec2"), table, core.CoverageConfig(disconnected_after_s=age), now, admin
            )
            triples = [(c, now, row_account(rows.get(c.instance_id, {}), admin)) for c in covs]
        else:
            triples = []
            for item in coverage_rows(ddb, table):
                c = stored(item)
                if c is not None:
                    triples.append((c, updated_at(item), row_account(item, admin)))
    triples = [t for t in triples if not account or t[2] == account]
    return sorted(triples, key=lambda p: p[0].instance_id)


def _ago(at: float | None, now: float) -> str:
    if at is None:
        return "never"
    s = max(0, int(now - at))
    return f"{s}s ago" if s < 120 else f"{s // 60}m ago" if s < 7200 else f"{s // 3600}h ago"


@app.command("list", cls=plainhelp.Command)
def list_(
    status: Annotated[
        str | None,
        typer.Option("--status", metavar="HEALTHY|UNHEALTHY", help="only instances with this status"),
    ] = None,
    instance: Annotated[
        str | None, typer.Option("--instance", metavar="INSTANCE_ID", help="only this instance")
    ] = None,
    account: AccountOpt = None,
    refresh: RefreshOpt = False,
    disconnected_after: AgeOpt = 900.0,
    as_json: JsonOpt = False,
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Coverage per running instance: status, issue, agent, last heartbeat, warnings."""
    want = status.upper() if status else None
    if want is not None and want not in core.STATUSES:
        err.print(f"[red]error:[/] --status must be HEALTHY or UNHEALTHY, not {safe.markup(status)}")
        raise typer.Exit(2)
    triples = [
        (c, at, acct)
        for c, at, acct in _load(stack, region, endpoint_url, refresh, disconnected_after, account)
        if (want is None or c.status == want) and (not instance or c.instance_id == instance)
    ]
    pairs = [(c, at) for c, at, _ in triples]
    if as_json:
        for c, at, acct in triples:
            print(json.dumps(c.resource(acct, at), separators=(",", ":")))
        return
    now = time.time()
    t = Table(title="Coverage (evaluated now)" if refresh else "Coverage (last scheduled evaluation)")
    t.add_column("instance", no_wrap=True)
    several = len({acct for _, _, acct in triples}) > 1  # multi-account: say whose each row is
    if several:
        t.add_column("account", no_wrap=True)
    for col in (
        "type",
        "status",
        "issue",
        "agent",
        "management",
        "hostname",
        "kernel",
        "last heartbeat",
        "warnings",
    ):
        t.add_column(col, overflow="fold")
    for c, _, acct in triples:
        t.add_row(
            safe.text(c.instance_id),
            *((safe.text(acct),) if several else ()),
            safe.text(c.instance_type),
            Text(c.status, style=_STYLE[c.status]),
            safe.text(c.issue),
            safe.text(c.agent_version),
            safe.text(c.management_type),
            safe.text(c.hostname),
            safe.text(c.kernel),
            safe.text(_ago(c.last_heartbeat_at, now)),
            safe.text("; ".join(c.warnings)),
        )
    out.print(t)
    for c, _ in pairs:
        if c.status == "UNHEALTHY":
            out.print(
                Text.assemble("UNHEALTHY ", safe.text(c.instance_id), ": ", safe.text(c.issue)),
                highlight=False,
            )


@app.command("stats", cls=plainhelp.Command)
def stats(
    account: AccountOpt = None,
    refresh: RefreshOpt = False,
    disconnected_after: AgeOpt = 900.0,
    as_json: JsonOpt = False,
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Counts by coverage status and resource type (GuardDuty's CoverageStatistics)."""
    covs = [c for c, _, _ in _load(stack, region, endpoint_url, refresh, disconnected_after, account)]
    st = core.statistics(covs)
    if as_json:
        print(json.dumps(st, separators=(",", ":")))
        return
    by = st["countByCoverageStatus"]
    out.print(
        f"EC2 instances {len(covs)}: HEALTHY {by.get('HEALTHY', 0)}, UNHEALTHY {by.get('UNHEALTHY', 0)} "
        f"({core.healthy_percent(covs):.1f} % healthy)",
        highlight=False,
    )
