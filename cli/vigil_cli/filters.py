"""`vigil filters`: saved filters and suppression rules; `vigil findings archive|unarchive|feedback`.

Mounted by vigil_cli.main (``register``). GuardDuty's JSON is taken as is (docs/filters.md):

    vigil filters create rule.json            CreateFilter input or `aws guardduty get-filter` output
    aws guardduty get-filter ... | vigil filters create -      (stdin)
    vigil filters list                        in Rank order; ARCHIVE rules are suppression rules
    vigil filters show NAME                   GetFilter's JSON
    vigil filters update NAME changes.json    any of Description, Action, Rank, FindingCriteria
    vigil filters delete NAME
    vigil findings archive ID...              / unarchive ID...
    vigil findings feedback ID... --not-useful --comment "pentest window"

Every change to a rule is published on the stack's bus (``Vigil Filter Changed``) as the caller
(STS caller identity, else the local user); a change that cannot be published is undone and the
command fails. Bad input is one escaped line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from vigil.criteria import FilterError, parse_filter
from vigil_aws.filters import FilterChangeError, FilterStore, StoredFilter, caller
from vigil_aws.finding_actions import ActionResult, FindingActionError, FindingActions
from vigil_cli import plainhelp, safe
from vigil_cli.stack import Target, aws_errors, resolve

app = typer.Typer(
    help="Saved filters and suppression rules (GuardDuty's CreateFilter JSON).",
    no_args_is_help=True,
    cls=plainhelp.Group,
)
out = safe.console()
err = safe.console(stderr=True)
MAX_INPUT = 1 << 20  # a filter is at most a few KiB; refuse to read a huge file whole

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
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table")]


def fail(message: object, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {safe.markup(message)}", highlight=False)
    return typer.Exit(code)


def _store(stack: str | None, region: str | None, endpoint_url: str | None) -> FilterStore:
    t: Target = resolve(stack, region, endpoint_url)
    return FilterStore(
        t.output("FiltersTableName"),
        t.output("FindingsBusName"),
        ddb=t.client("dynamodb"),
        events=t.client("events"),
        sts=t.client("sts"),
    )


def _read_json(source: str) -> Any:
    try:
        if source == "-":
            text = sys.stdin.read(MAX_INPUT + 1)
        else:
            with open(source, encoding="utf-8") as f:
                text = f.read(MAX_INPUT + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {source}: {exc}", 2) from None
    if len(text) > MAX_INPUT:
        raise fail(f"{source}: larger than {MAX_INPUT} bytes; not a filter", 2)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise fail(f"{source}: not valid JSON ({exc})", 2) from None


def _print_filter(s: StoredFilter) -> None:
    print(json.dumps(s.to_json(), indent=2))


def _criteria_text(criterion: dict[str, dict[str, Any]]) -> str:
    parts = []
    for path, cond in criterion.items():
        for op, arg in cond.items():
            parts.append(f"{path} {op} {json.dumps(arg, separators=(',', ':'))}")
    return " AND ".join(parts)


@app.command("create", cls=plainhelp.Command)
def create(
    file: Annotated[str, typer.Argument(help="CreateFilter / get-filter JSON file, or - for stdin")] = "-",
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="name it this (else the JSON's Name)")
    ] = None,
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Create a filter (Action ARCHIVE: a suppression rule) from GuardDuty's JSON, as is."""
    doc = _read_json(file)
    if name is not None and isinstance(doc, dict):
        doc = {**doc, "Name": name}
    try:
        f = parse_filter(doc)
    except FilterError as exc:
        raise fail(exc, 2) from None
    store = _store(stack, region, endpoint_url)
    with aws_errors():
        try:
            stored = store.create(f)
        except FilterChangeError as exc:
            raise fail(exc) from None
    _print_filter(stored)


@app.command("list", cls=plainhelp.Command)
def list_(
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List filters in Rank order (the order suppression rules are tried)."""
    store = _store(stack, region, endpoint_url)
    with aws_errors():
        stored, problems = store.list_filters()
    for p in problems:
        err.print(f"[yellow]skipped[/] {safe.markup(p)}", highlight=False)
    if as_json:
        for s in stored:
            print(json.dumps(s.to_json(), separators=(",", ":")))
        return
    t = Table(title="Filters")
    t.add_column("rank", justify="right")
    t.add_column("name", no_wrap=True)
    t.add_column("action")
    t.add_column("criteria", overflow="fold")
    t.add_column("updated", overflow="fold")
    for s in stored:
        f = s.filter
        t.add_row(
            safe.text(f.rank or ""),
            safe.text(f.name),
            safe.text(f.action, "bold yellow" if f.action == "ARCHIVE" else ""),
            safe.text(_criteria_text(f.criteria.criterion)),
            safe.text(f"{s.updated_at} by {s.updated_by}"),
        )
    out.print(t)


@app.command("show", cls=plainhelp.Command)
def show(
    name: Annotated[str, typer.Argument(help="the filter's name")],
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Print one filter as GetFilter's JSON (what `vigil filters create` takes back)."""
    store = _store(stack, region, endpoint_url)
    with aws_errors():
        try:
            stored = store.get(name)
        except FilterError as exc:
            raise fail(f"filter {name}: {exc}") from None
    if stored is None:
        raise fail(f"no filter named {name}")
    _print_filter(stored)


@app.command("update", cls=plainhelp.Command)
def update(
    name: Annotated[str, typer.Argument(help="the filter's name")],
    file: Annotated[str, typer.Argument(help="UpdateFilter / get-filter JSON file, or - for stdin")] = "-",
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Change a filter's Description, Action, Rank or FindingCriteria (the keys the JSON has)."""
    doc = _read_json(file)
    if not isinstance(doc, dict):
        raise fail("the update must be a JSON object (UpdateFilter input or get-filter output)", 2)
    store = _store(stack, region, endpoint_url)
    with aws_errors():
        try:
            stored = store.update(name, doc)
        except (FilterError, FilterChangeError) as exc:
            raise fail(exc) from None
    _print_filter(stored)


@app.command("delete", cls=plainhelp.Command)
def delete(
    name: Annotated[str, typer.Argument(help="the filter's name")],
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Delete a filter (findings it archived stay archived)."""
    store = _store(stack, region, endpoint_url)
    with aws_errors():
        try:
            store.delete(name)
        except (FilterError, FilterChangeError) as exc:
            raise fail(exc) from None
    err.print(f"deleted filter {safe.markup(name)}", highlight=False)


# -- findings: archive / unarchive / feedback ------------------------------------------------------
IdsArg = Annotated[list[str], typer.Argument(help="finding ids (at most 50)", metavar="ID")]


def _actions(stack: str | None, region: str | None, endpoint_url: str | None) -> tuple[FindingActions, str]:
    t = resolve(stack, region, endpoint_url)
    # a stack that imports its findings into Security Hub gets the action reflected there too
    hub = t.client("securityhub") if t.outputs.get("SecurityHubImport") == "true" else None
    actions = FindingActions(t.client("dynamodb"), t.output("FindingsTableName"), securityhub=hub)
    return actions, caller(t.client("sts"))


def _report(result: ActionResult, what: str) -> None:
    for fid in result.done:
        err.print(f"{what} {safe.markup(fid)}", highlight=False)
    for fid in result.missing:
        err.print(f"[red]error:[/] no finding {safe.markup(fid)}", highlight=False)
    for fid, why in result.unreflected:
        err.print(
            f"[yellow]warning:[/] {safe.markup(fid)} not updated in Security Hub: {safe.markup(why)}",
            highlight=False,
        )
    if result.missing:
        raise typer.Exit(1)


def archive(
    ids: IdsArg, stack: StackOpt = None, region: RegionOpt = None, endpoint_url: EndpointOpt = None
) -> None:
    """Archive findings: kept and queryable (--archived) until retention ends; recurrences are still published."""
    actions, who = _actions(stack, region, endpoint_url)
    with aws_errors():
        try:
            _report(actions.archive(ids, who), "archived")
        except FindingActionError as exc:
            raise fail(exc, 2) from None


def unarchive(
    ids: IdsArg, stack: StackOpt = None, region: RegionOpt = None, endpoint_url: EndpointOpt = None
) -> None:
    """Unarchive findings (not an event by itself; the next occurrence is published as usual)."""
    actions, who = _actions(stack, region, endpoint_url)
    with aws_errors():
        try:
            _report(actions.unarchive(ids, who), "unarchived")
        except FindingActionError as exc:
            raise fail(exc, 2) from None


def feedback(
    ids: IdsArg,
    useful: Annotated[
        bool | None, typer.Option("--useful/--not-useful", help="was the finding useful (required)")
    ] = None,
    comment: Annotated[
        str, typer.Option("--comment", metavar="TEXT", help="why (at most 1,024 characters)")
    ] = "",
    stack: StackOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Record USEFUL / NOT_USEFUL feedback on findings (GuardDuty's userFeedback)."""
    if useful is None:
        raise fail("say --useful or --not-useful", 2)
    actions, who = _actions(stack, region, endpoint_url)
    with aws_errors():
        try:
            result = actions.feedback(ids, "USEFUL" if useful else "NOT_USEFUL", who, comment)
        except FindingActionError as exc:
            raise fail(exc, 2) from None
        _report(result, "feedback recorded on")


def register(root: typer.Typer, findings: typer.Typer) -> None:
    """Mount ``vigil filters`` and the findings actions."""
    root.add_typer(app, name="filters")
    findings.command("archive", cls=plainhelp.Command)(archive)
    findings.command("unarchive", cls=plainhelp.Command)(unarchive)
    findings.command("feedback", cls=plainhelp.Command)(feedback)
