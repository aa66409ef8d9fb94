"""`vigil sigma import DIR`: Sigma rules for Linux -> a Vigil rule bundle (``vigil.sigma``).

pySigma parses the rules; a processing pipeline (``pipeline()``) maps Sysmon-for-Linux field names
onto the OCSF paths of Vigil's events and refuses the fields Vigil's events do not carry; the
parsed condition trees become the bundle's data trees (``convert``). Every rule is then run over
the recorded benign corpus: a rule above ``--max-benign-per-10k`` is kept in the bundle but
disabled, with its rate as the reason.

The bundle goes to ``vigil/sigma_rules.json`` in the core layer by default: the ingest Lambda
(``sam build`` packages it) and ``vigil replay`` run its enabled rules.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import vigil
from vigil import sigma as vs
from vigil import wire
from vigil.engine import Engine
from vigil.intel.builtin import builtin_intel
from vigil.normalize.agent import normalize_batch
from vigil.state import InMemoryState

DEFAULT_BUNDLE = Path(vigil.__file__).resolve().parent / "sigma_rules.json"
DEFAULT_BENIGN = Path(vigil.__file__).resolve().parents[3] / "benchmarks" / "corpus" / "benign.ndjson.gz"
DEFAULT_MAX_BENIGN_PER_10K = 0.5

# Sysmon for Linux (what SigmaHQ's Linux rules are written for) -> Vigil's OCSF paths
SYSMON_TO_OCSF: dict[str, str | list[str]] = {
    "Image": "process.file.path",
    "CommandLine": "process.cmd_line",
    "User": "process.user.name",
    "CurrentDirectory": "process.working_directory",
    "ProcessId": "process.pid",
    "ParentImage": "process.parent_process.file.path",
    "ParentCommandLine": "process.parent_process.cmd_line",
    "ParentProcessId": "process.parent_process.pid",
    "TargetFilename": ["file.path", "file_result.path"],
    "Initiated": "connection_info.direction",
    "Protocol": "connection_info.protocol_name",
    "DestinationIp": "dst_endpoint.ip",
    "DestinationPort": "dst_endpoint.port",
    "DestinationHostname": "dst_endpoint.hostname",
    "SourceIp": "src_endpoint.ip",
    "SourcePort": "src_endpoint.port",
}
_DIRECTION = {"true": "Outbound", "false": "Inbound"}


class Unsupported(Exception):
    """A rule (or a part of it) Vigil cannot run; the message says why."""


def pipeline() -> Any:
    from sigma.processing.conditions import ExcludeFieldCondition, IncludeFieldCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import (
        DetectionItemFailureTransformation,
        FieldMappingTransformation,
        ReplaceStringTransformation,
    )

    known = sorted({f for cat in vs.FIELDS.values() for f in cat})
    items = [
        ProcessingItem(
            identifier=f"vigil_initiated_{word}",
            transformation=ReplaceStringTransformation(regex=f"^{word}$", replacement=direction),
            field_name_conditions=[IncludeFieldCondition(fields=["Initiated"])],
        )
        for word, direction in _DIRECTION.items()
    ]
    items.append(
        ProcessingItem(
            identifier="vigil_ocsf_fields", transformation=FieldMappingTransformation(SYSMON_TO_OCSF)
        )
    )
    items.append(
        ProcessingItem(
            identifier="vigil_unsupported_field",
            transformation=DetectionItemFailureTransformation(
                "uses a field Vigil's events do not carry (supported: " + ", ".join(SYSMON_TO_OCSF) + ")"
            ),
            field_name_conditions=[ExcludeFieldCondition(fields=known)],
        )
    )
    return ProcessingPipeline(name="Sysmon for Linux to Vigil OCSF events", priority=20, items=items)


# -- condition trees ----------------------------------------------------------------------------


def _string(field_name: str, value: Any) -> vs.Match:
    from sigma.types import SigmaCasedString, SpecialChars

    cased = isinstance(value, SigmaCasedString)
    parts = list(value.s)
    multi, single = SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE
    if all(isinstance(p, str) for p in parts):
        text = "".join(parts)
        if field_name == "connection_info.direction":
            text = _DIRECTION.get(text.lower(), text)
        return vs.Match(field_name, "eq", [text], cased=cased)
    if len(parts) == 3 and parts[0] is multi and parts[2] is multi and isinstance(parts[1], str):
        return vs.Match(field_name, "contains", [parts[1]], cased=cased)
    if len(parts) == 2 and parts[0] is multi and isinstance(parts[1], str):
        return vs.Match(field_name, "endswith", [parts[1]], cased=cased)
    if len(parts) == 2 and parts[1] is multi and isinstance(parts[0], str):
        return vs.Match(field_name, "startswith", [parts[0]], cased=cased)
    if parts == [multi]:
        return vs.Match(field_name, "exists")
    if not all(isinstance(p, str) or p in (multi, single) for p in parts):
        raise Unsupported(f"{field_name}: placeholder or special value {value!s}")
    rx = "".join(re.escape(p) if isinstance(p, str) else (".*" if p is multi else ".") for p in parts)
    return vs.Match(field_name, "re", [f"^{rx}$"], flags="" if cased else "is")


def _plain(value: Any) -> str:
    return str(value.to_plain()) if hasattr(value, "to_plain") else str(value)


def _leaf(item: Any) -> vs.Node:
    from sigma.types import (
        SigmaBool,
        SigmaCIDRExpression,
        SigmaExists,
        SigmaNull,
        SigmaNumber,
        SigmaRegularExpression,
        SigmaRegularExpressionFlag,
        SigmaString,
    )

    f, v = item.field, item.value
    if isinstance(v, SigmaString):
        return _string(f, v)
    if isinstance(v, SigmaNumber):
        return vs.Match(f, "eq", [str(v.number)])
    if isinstance(v, SigmaBool):
        word = "true" if v.boolean else "false"
        return vs.Match(f, "eq", [_DIRECTION[word] if f == "connection_info.direction" else word])
    if isinstance(v, SigmaRegularExpression):
        flags = {
            SigmaRegularExpressionFlag.IGNORECASE: "i",
            SigmaRegularExpressionFlag.MULTILINE: "m",
            SigmaRegularExpressionFlag.DOTALL: "s",
        }
        return vs.Match(f, "re", [_plain(v.regexp)], cased=True, flags="".join(flags[x] for x in v.flags))
    if isinstance(v, SigmaCIDRExpression):
        return vs.Match(f, "cidr", [str(v.network)])
    if isinstance(v, SigmaNull):
        return vs.Match(f, "null")
    if isinstance(v, SigmaExists):
        m = vs.Match(f, "exists")
        return m if v.exists else vs.Not(m)
    raise Unsupported(f"{f}: values of type {type(v).__name__} are not supported")


def _merge(args: list[vs.Node]) -> list[vs.Node]:
    """An OR of matches on one field by one operator becomes one match with several values."""
    out: list[vs.Node] = []
    index: dict[tuple[str, str, bool, str], int] = {}
    for a in args:
        if isinstance(a, vs.Match) and a.op not in ("exists", "null"):
            key = (a.field, a.op, a.cased, a.flags)
            at = index.get(key)
            if at is not None:
                prev = out[at]
                assert isinstance(prev, vs.Match)
                out[at] = vs.Match(a.field, a.op, [*prev.values, *a.values], cased=a.cased, flags=a.flags)
                continue
            index[key] = len(out)
        out.append(a)
    return out


def convert(node: Any) -> vs.Node:
    """A pySigma condition tree (after the pipeline) -> the bundle's tree."""
    from sigma.conditions import (
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionNOT,
        ConditionOR,
        ConditionValueExpression,
    )

    if isinstance(node, ConditionAND):
        return vs.And([convert(a) for a in node.args])
    if isinstance(node, ConditionOR):
        args = _merge([convert(a) for a in node.args])
        return args[0] if len(args) == 1 else vs.Or(args)
    if isinstance(node, ConditionNOT):
        return vs.Not(convert(node.args[0]))
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _leaf(node)
    if isinstance(node, ConditionValueExpression):
        raise Unsupported("keyword search (a value without a field)")
    raise Unsupported(f"condition element {type(node).__name__}")


# -- import -------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    rules: list[vs.CompiledRule] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    files: int = 0
    benign_events: int = 0

    def reasons(self) -> Counter[str]:
        return Counter(_reason_class(r) for _, r in self.skipped)


def _reason_class(reason: str) -> str:
    return reason.split(" (supported")[0] if reason.startswith("logsource") else reason[:100]


def _rule_file(rule: Any, root: Path) -> str:
    src = getattr(rule, "source", None)
    path = getattr(src, "path", None)
    if path is None:
        return str(rule.id)
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _fields(detections: Iterable[Any]) -> set[str]:
    """Field names of a rule's detection items (nested detections included)."""
    out: set[str] = set()
    for d in detections:
        for item in getattr(d, "detection_items", ()):
            if hasattr(item, "detection_items"):
                out |= _fields([item])
            elif item.field is not None:
                out.add(str(item.field))
    return out


def compile_rule(rule: Any, root: Path) -> vs.CompiledRule:
    """One parsed SigmaRule -> a compiled rule; raises ``Unsupported`` (or a pySigma error)."""
    ls = rule.logsource
    if (ls.product or "").lower() != "linux" or ls.category not in vs.FIELDS:
        raise Unsupported(
            f"logsource product={ls.product} category={ls.category} service={ls.service} "
            "(supported: product linux, categories " + ", ".join(vs.FIELDS) + ")"
        )
    unknown = sorted(f for f in _fields(rule.detection.detections.values()) if f not in SYSMON_TO_OCSF)
    if unknown:
        raise Unsupported(
            f"field {', '.join(unknown)}: not in Vigil's events (supported: {', '.join(SYSMON_TO_OCSF)})"
        )
    pipeline().apply(rule)
    trees = [convert(c.parsed) for c in rule.detection.parsed_condition]
    cond = trees[0] if len(trees) == 1 else vs.Or(trees)
    compiled = vs.CompiledRule(
        id=str(rule.id or rule.title),
        title=str(rule.title),
        category=str(ls.category),
        condition=cond,
        level=str(rule.level.name).lower() if rule.level is not None else "medium",
        status=str(rule.status.name).lower() if rule.status is not None else "",
        author=str(rule.author or ""),
        description=str(rule.description or ""),
        tags=[f"{t.namespace}.{t.name}" for t in rule.tags],
        references=[str(r) for r in rule.references or ()],
        falsepositives=[str(f) for f in rule.falsepositives or ()],
        source=_rule_file(rule, root),
    )
    vs.detection_for(compiled)  # it must run: fields, operators, regexes
    return compiled


def import_rules(paths: Sequence[Path]) -> ImportResult:
    from sigma.collection import SigmaCollection

    result = ImportResult()
    for root in paths:
        files = (
            sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml")) if root.is_dir() else [root]
        )
        result.files += len(files)
        for f in files:
            try:
                coll = SigmaCollection.load_ruleset([f], collect_errors=True)
            except Exception as exc:  # YAML errors, unreadable files, anything pySigma refuses
                result.skipped.append((str(f), f"not a Sigma rule: {type(exc).__name__}: {exc}"[:300]))
                continue
            for err in getattr(coll, "errors", ()):
                result.skipped.append((str(f), f"not a Sigma rule: {err}"[:300]))
            for rule in coll.rules:
                if rule.__class__.__name__ != "SigmaRule":  # correlation and filter rules
                    result.skipped.append((str(f), f"{rule.__class__.__name__} is not supported"))
                    continue
                for err in rule.errors or ():
                    result.skipped.append((str(f), f"invalid rule: {err}"[:300]))
                if rule.errors:
                    continue
                try:
                    result.rules.append(compile_rule(rule, root if root.is_dir() else root.parent))
                except Unsupported as exc:
                    result.skipped.append((str(f), str(exc)[:300]))
                except (
                    Exception
                ) as exc:  # pySigma's errors (SigmaError ...), vs.RuleError: one rule, not the import
                    result.skipped.append((str(f), f"{type(exc).__name__}: {exc}"[:300]))
    return result


def benign_events(path: Path) -> list[Any]:
    data = path.read_bytes()
    raw = gzip.decompress(data) if data[:2] == wire.GZIP_MAGIC else data
    decoded = wire.decode_record(raw, max_raw=1 << 31).events if data else []
    events: list[Any] = []
    host = None
    for i in range(0, len(decoded), 1000):
        chunk = decoded[i : i + 1000]
        got, _ = normalize_batch(chunk, default_host=host)
        host = next((e.host for e in reversed(chunk) if e.host is not None), host)
        events.extend(got)
    return events


def benign_hits(rules: Iterable[vs.CompiledRule], events: Sequence[Any]) -> Counter[str]:
    """How many benign events each rule matches (rule id -> count)."""
    dets = [vs.detection_for(r)() for r in rules]
    engine = Engine(dets, intel=builtin_intel())
    hits: Counter[str] = Counter()
    state = InMemoryState()
    for i in range(0, len(events), 1000):
        for m in engine.run(events[i : i + 1000], state).matches:
            det = m.detection
            assert isinstance(det, vs.SigmaDetection)
            hits[det.rule.id] += 1
    return hits


def gate(
    rules: list[vs.CompiledRule], hits: Counter[str], n_events: int, bound: float
) -> list[vs.CompiledRule]:
    import msgspec

    out = []
    for r in rules:
        n = hits.get(r.id, 0)
        rate = n * 10_000 / n_events if n_events else 0.0
        if n_events and rate > bound:
            r = msgspec.structs.replace(
                r,
                enabled=False,
                benign_hits=n,
                disabled_reason=(
                    f"{n} matches in {n_events} benign events ({rate:.2f} per 10k, above {bound:g})"
                ),
            )
        elif n:
            r = msgspec.structs.replace(r, benign_hits=n)
        out.append(r)
    return out


# -- commands -----------------------------------------------------------------------------------

import typer  # noqa: E402

from vigil_cli import plainhelp, safe  # noqa: E402

app = typer.Typer(help="Sigma rules as Vigil detections.", no_args_is_help=True, cls=plainhelp.Group)
_err = safe.console(stderr=True)
_out = safe.console()


@app.command("import", cls=plainhelp.Command)
def import_command(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="DIR...", help="Sigma rule folders or files (searched recursively)"),
    ],
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="the bundle to write")] = DEFAULT_BUNDLE,
    benign: Annotated[
        Path,
        typer.Option(
            "--benign",
            metavar="FILE",
            help="recorded benign agent NDJSON (gzip) to measure false positives on",
        ),
    ] = DEFAULT_BENIGN,
    no_benign: Annotated[
        bool, typer.Option("--no-benign", help="do not measure false positives (every rule enabled)")
    ] = False,
    max_benign: Annotated[
        float,
        typer.Option(
            "--max-benign-per-10k",
            metavar="RATE",
            help="a rule matching more benign events than this per 10,000 is kept but disabled",
        ),
    ] = DEFAULT_MAX_BENIGN_PER_10K,
) -> None:
    """Compile Sigma rules for Linux (process_creation, file_event, network_connection) with pySigma
    into the bundle the ingest and `vigil replay` run."""
    try:
        import sigma  # noqa: F401
    except ImportError:
        _err.print("[red]error:[/] pySigma is not installed: pip install 'pysigma>=2'")
        raise typer.Exit(2) from None
    missing = [p for p in paths if not p.exists()]
    if missing:
        _err.print(f"[red]error:[/] no such file or folder: {safe.markup(missing[0])}")
        raise typer.Exit(2)
    result = import_rules(paths)
    rules = result.rules
    n_events = 0
    if not no_benign:
        if not benign.exists():
            _err.print(
                f"[red]error:[/] no benign corpus at {safe.markup(benign)} (give --benign FILE or --no-benign)"
            )
            raise typer.Exit(2)
        _err.print(f"measuring false positives on {safe.markup(benign)} ...", highlight=False)
        events = benign_events(benign)
        n_events = len(events)
        rules = gate(rules, benign_hits(rules, events), n_events, max_benign)
    bundle = vs.Bundle(
        format=vs.BUNDLE_FORMAT,
        rules=sorted(rules, key=lambda r: r.id),
        source=", ".join(str(p) for p in paths),
        benign_events=n_events,
        max_benign_per_10k=max_benign if n_events else 0.0,
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(vs.encode_bundle(bundle))
    except OSError as exc:
        _err.print(f"[red]error:[/] cannot write {safe.markup(out)}: {safe.markup(exc)}")
        raise typer.Exit(2) from None
    enabled = sum(r.enabled for r in rules)
    for r in rules:
        if not r.enabled:
            _out.print(
                f"disabled  {safe.markup(r.id)}  {safe.markup(r.title)}: {safe.markup(r.disabled_reason)}",
                highlight=False,
            )
    for reason, n in result.reasons().most_common():
        _out.print(f"skipped   {n:4d} x {safe.markup(reason)}", highlight=False)
    _out.print(
        f"{result.files} files, {len(rules)} rules compiled ({enabled} enabled, {len(rules) - enabled} disabled "
        f"by their false-positive rate), {len(result.skipped)} skipped; bundle written to {safe.markup(out)}",
        highlight=False,
    )


@app.command("list", cls=plainhelp.Command)
def list_command(
    bundle: Annotated[
        Path, typer.Option("--bundle", metavar="FILE", help="the bundle to read")
    ] = DEFAULT_BUNDLE,
) -> None:
    """The rules of a bundle: id, finding type, level, enabled or why not, title."""
    if not bundle.exists():
        _err.print(f"no Sigma bundle at {safe.markup(bundle)} (run: vigil sigma import DIR)", highlight=False)
        raise typer.Exit(1)
    try:
        b = vs.decode_bundle(bundle.read_bytes())
    except (vs.RuleError, OSError) as exc:
        _err.print(f"[red]error:[/] {safe.markup(exc)}")
        raise typer.Exit(2) from None
    for r in b.rules:
        state = "enabled " if r.enabled else "disabled"
        _out.print(
            f"{state}  {safe.markup(r.id)}  {vs.finding_type(r)}  {safe.markup(r.level)}  {safe.markup(r.title)}",
            highlight=False,
        )
    _out.print(
        f"{len(b.rules)} rules, {sum(r.enabled for r in b.rules)} enabled ({safe.markup(b.source)})",
        highlight=False,
    )
