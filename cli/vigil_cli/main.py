"""`vigil`: replay agent telemetry locally, and read findings from a stack."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from vigil import severity
from vigil.pipeline import Pipeline
from vigil.registry import all_detections
from vigil.sigma import RuleError
from vigil_aws import sigma_rules
from vigil_cli import plainhelp, safe
from vigil_cli import replay as _replay
from vigil_cli.coverage import app as _coverage_app
from vigil_cli.stack import AccountOpt, aws_errors, resolve
from vigil_cli.usage import usage as _usage

# Tracebacks never print local variables: they hold findings and credentials.
app = typer.Typer(
    help="Vigil: runtime threat detection for EC2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    cls=plainhelp.Group,
)
findings_app = typer.Typer(
    help="Findings stored by a deployed (or the offline) stack.", no_args_is_help=True, cls=plainhelp.Group
)
app.add_typer(findings_app, name="findings")
app.command("usage", cls=plainhelp.Command)(_usage)
app.add_typer(_coverage_app, name="coverage")
err = safe.console(stderr=True)
out = safe.console()

_SEV_STYLE = {"Low": "cyan", "Medium": "yellow", "High": "red", "Critical": "bold red"}

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


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"vigil {version('vigil')}")
        except PackageNotFoundError:  # running from a checkout that was never installed
            typer.echo("vigil (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Vigil: runtime threat detection for EC2."""


def findings_table(docs: list[dict[str, Any]], title: str = "Findings") -> Table:
    """Every cell is ``safe.text``: finding fields come from the monitored instances."""
    t = Table(title=safe.text(title), show_lines=False)
    t.add_column("id", no_wrap=True)  # whole: `vigil findings show` takes it
    # the account column only when the findings span several accounts (multi-account)
    accounts = len({d.get("accountId", "") for d in docs}) > 1
    for col in ("type", "severity", "instance", *(("account",) if accounts else ()), "count", "title"):
        t.add_column(col, overflow="fold")
    for d in docs:
        sev = float(d["severity"])
        lab = severity.label(sev)
        t.add_row(
            safe.text(d.get("id", "")),
            safe.text(d["type"]),
            Text(f"{lab} ({sev:g})", style=_SEV_STYLE[lab]),
            safe.text(d["resource"]["instanceDetails"]["instanceId"]),
            *((safe.text(d.get("accountId", "")),) if accounts else ()),
            safe.text(d["service"]["count"]),
            safe.text(d.get("title", "")),
        )
    return t


@app.command(cls=plainhelp.Command)
def replay(
    file: Annotated[str, typer.Argument(help="agent NDJSON file (plain or .gz), or - for stdin")],
    table: Annotated[bool, typer.Option("--table", help="a table for people instead of JSON lines")] = False,
    account_id: Annotated[
        str, typer.Option(help="account id for finding ids/ARNs (default: the events' host block)")
    ] = "",
    region: Annotated[
        str, typer.Option(help="region for finding ids/ARNs (default: the events' host block)")
    ] = "",
    sigma: Annotated[
        str | None,
        typer.Option(
            "--sigma", metavar="FILE", help="Sigma rule bundle to run (default: the shipped one, if any)"
        ),
    ] = None,
    no_sigma: Annotated[bool, typer.Option("--no-sigma", help="run the native detections only")] = False,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            metavar="flowlogs|resolver|cloudtrail",
            help="read AWS logs instead of agent NDJSON: VPC Flow Log lines, Route 53 Resolver query-log JSON "
            "lines, or CloudTrail records / EventBridge events",
        ),
    ] = "",
    flow_format: Annotated[
        str,
        typer.Option(
            "--flow-format",
            metavar="FORMAT",
            help="custom flow-log format, '${version} ${srcaddr} ...' (default: v2, or the file's header line)",
        ),
    ] = "",
    threat_list: Annotated[
        list[str] | None,
        typer.Option(
            "--threat-list",
            metavar="FILE",
            help="a customer threat list (TXT, STIX .json or OTX .csv) added to the built-in intel, as a "
            "ThreatIntelSet is; repeatable (with --source: the .Custom types)",
        ),
    ] = None,
) -> None:
    """Run normalize + detect in-process (no AWS) and print one GuardDuty-shaped finding JSON per line."""
    if source and source not in _replay.SOURCES:
        err.print(
            f"[red]error:[/] --source must be one of {', '.join(_replay.SOURCES)}, not {safe.markup(source)}"
        )
        raise typer.Exit(2)
    try:
        stream = _replay.open_input(file)
        extra = () if no_sigma else sigma_rules.load(Path(sigma) if sigma else None).detections
    except (FileNotFoundError, OSError, RuleError) as exc:
        err.print(f"[red]error:[/] {safe.markup(exc)}")
        raise typer.Exit(2) from None
    if source:
        try:
            intel = _intel_with(threat_list or [])
        except (OSError, ValueError) as exc:
            err.print(f"[red]error:[/] --threat-list: {safe.markup(exc)}")
            raise typer.Exit(2) from None
        _replay_source(stream, file, source, flow_format, account_id, region, table, intel)
        return
    live = file == "-"
    pipeline = Pipeline.default(account_id=account_id, region=region, detections=all_detections() + extra)

    def on_error(msg: str) -> None:
        err.print(f"[yellow]skipped[/] {safe.markup(msg)}", highlight=False)

    def on_finding(occ: Any) -> None:
        if not table:
            sys.stdout.write(json.dumps(occ.finding, separators=(",", ":")) + "\n")
            sys.stdout.flush()

    try:
        stats = _replay.replay(
            stream, pipeline, live=live, on_error=on_error, on_finding=on_finding if live else None
        )
    except (OSError, EOFError) as exc:
        err.print(f"[red]error:[/] cannot read {safe.markup(file)}: {safe.markup(exc)}")
        raise typer.Exit(2) from None
    docs = sorted(
        (o.finding for o in stats.findings.values()),
        key=lambda d: (d["service"]["eventFirstSeen"], d["type"]),
    )
    if table:
        out.print(findings_table(docs, f"Findings from {file}"))
    elif not live:
        for d in docs:
            sys.stdout.write(json.dumps(d, separators=(",", ":")) + "\n")
    err.print(
        f"{stats.events} events, {len(docs)} findings, {stats.bad_lines} bad lines skipped, "
        f"{stats.rejected} events rejected, {stats.detection_errors} detection errors",
        highlight=False,
    )


def _intel_with(paths: list[str]) -> Any:
    """The built-in intel plus each customer list (custom entries: the .Custom finding types)."""
    from vigil.intel.builtin import builtin_intel
    from vigil.intel.formats import format_from_key, parse_list

    intel = builtin_intel()
    for path in paths:
        parsed = parse_list(Path(path).read_bytes(), format_from_key(path), name=Path(path).name, custom=True)
        intel.extend(parsed.indicators)
    return intel


def _replay_source(
    stream: Any,
    file: str,
    source: str,
    flow_format: str,
    account_id: str,
    region: str,
    table: bool,
    intel: Any = None,
) -> None:
    from vigil.normalize.vpcflow import FormatError

    pipeline = Pipeline.default(account_id=account_id, region=region, intel=intel)

    def on_error(msg: str) -> None:
        err.print(f"[yellow]skipped[/] {safe.markup(msg)}", highlight=False)

    try:
        stats = _replay.replay_source(stream, pipeline, source, on_error=on_error, flow_format=flow_format)
    except FormatError as exc:
        err.print(f"[red]error:[/] --flow-format: {safe.markup(exc)}")
        raise typer.Exit(2) from None
    except (OSError, EOFError, ValueError) as exc:
        err.print(f"[red]error:[/] cannot read {safe.markup(file)}: {safe.markup(exc)}")
        raise typer.Exit(2) from None
    docs = sorted(
        (o.finding for o in stats.findings.values()),
        key=lambda d: (d["service"]["eventFirstSeen"], d["type"]),
    )
    if table:
        out.print(findings_table(docs, f"Findings from {file}"))
    else:
        for d in docs:
            sys.stdout.write(json.dumps(d, separators=(",", ":")) + "\n")
    err.print(
        f"{stats.events} events, {len(docs)} findings, {stats.bad_lines} bad lines skipped, "
        f"{stats.rejected} events rejected, {stats.detection_errors} detection errors",
        highlight=False,
    )


def _store_docs(stack: str | None, region: str | None, endpoint_url: str | None) -> tuple[Any, str]:
    target = resolve(stack, region, endpoint_url)
    return target.client("dynamodb"), target.output("FindingsTableName")


@findings_app.command("list", cls=plainhelp.Command)
def findings_list(
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    min_severity: Annotated[
        float, typer.Option("--min-severity", help="only findings at or above this severity")
    ] = 0.0,
    finding_type: Annotated[
        str | None, typer.Option("--type", metavar="TYPE", help="only this finding type")
    ] = None,
    instance: Annotated[
        str | None, typer.Option("--instance", metavar="INSTANCE_ID", help="only this instance id")
    ] = None,
    archived: Annotated[
        bool, typer.Option("--archived", help="include archived (suppressed) findings")
    ] = False,
    account: AccountOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    limit: Annotated[int, typer.Option(metavar="N", help="at most this many, newest first")] = 50,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="EXPR",
            help="GuardDuty FindingCriteria JSON, or FIELD=VALUE (also != ~ !~ > >= < <=); repeat to AND "
            "(docs/filters.md)",
        ),
    ] = None,
) -> None:
    """List findings, newest first."""
    from vigil.criteria import FilterError, parse_expressions
    from vigil_aws.findings_store import batch_get, document, plain

    try:
        criteria = parse_expressions(filters) if filters else None
    except FilterError as exc:
        err.print(f"[red]error:[/] {safe.markup(exc)}", highlight=False)
        raise typer.Exit(2) from None
    if criteria is not None and "service.archived" in criteria.criterion:
        archived = True  # the filter says which
    ddb, table = _store_docs(stack, region, endpoint_url)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    if instance:
        kwargs.update(
            IndexName="ByResource",
            KeyConditionExpression="instanceId = :i",
            ExpressionAttributeValues={":i": {"S": instance}},
        )
        op = ddb.query
    elif finding_type:
        kwargs.update(
            IndexName="ByType",
            KeyConditionExpression="#t = :t",
            ExpressionAttributeNames={"#t": "type"},
            ExpressionAttributeValues={":t": {"S": finding_type}},
        )
        op = ddb.query
    else:
        op = ddb.scan
    by_index = "IndexName" in kwargs  # the indexes hold keys only (template.yaml): items read by id
    if by_index:
        kwargs["ProjectionExpression"] = "id"
    while True:
        with aws_errors():
            page = op(**kwargs)
            if by_index:
                ids = [i["id"]["S"] for i in page.get("Items", [])]
                items.extend(batch_get(table, ids, ddb=ddb))
            else:
                items.extend(plain(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    docs = [document(i) for i in items]
    docs = [
        d
        for d in docs
        if float(d["severity"]) >= min_severity
        and (archived or not d["service"].get("archived"))
        and (not finding_type or d["type"] == finding_type)
        and (not account or d.get("accountId") == account)
        and (criteria is None or criteria.matches(d))
    ]
    docs.sort(key=lambda d: d.get("updatedAt", ""), reverse=True)
    docs = docs[:limit]
    if as_json:
        for d in docs:
            print(json.dumps(d, separators=(",", ":")))
    else:
        out.print(findings_table(docs))


@findings_app.command("show", cls=plainhelp.Command)
def findings_show(
    finding_id: Annotated[str, typer.Argument(help="the 32-hex finding id")],
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Print one finding as GuardDuty-shaped JSON."""
    from vigil_aws.findings_store import document, plain

    ddb, table = _store_docs(stack, region, endpoint_url)
    with aws_errors():
        item = ddb.get_item(TableName=table, Key={"id": {"S": finding_id}}).get("Item")
    if not item:
        err.print(f"[red]error:[/] no finding {safe.markup(finding_id)} in {safe.markup(table)}")
        raise typer.Exit(1)
    print(json.dumps(document(plain(item)), indent=2))


def _mount_filters() -> None:
    from vigil_cli import filters

    filters.register(app, findings_app)
    from vigil_cli import samples

    samples.register(findings_app)


_mount_filters()


def _mount_optional() -> None:
    from vigil_cli import sigma as _sigma

    app.add_typer(_sigma.app, name="sigma")
    from vigil_console.command import register as _console

    _console(app)
    try:
        from vigil_cli import response
    except ImportError:
        return
    app.add_typer(response.app, name="response")


_mount_optional()

if __name__ == "__main__":
    app()
