"""Sigma rules as data, run as detections (issue 17).

``vigil sigma import DIR`` (cli/vigil_cli/sigma.py, with pySigma) compiles Sigma rules for Linux
(``process_creation``, ``file_event``, ``network_connection``) into a **bundle**: for each rule
its metadata and its condition as a tree over the Sysmon-for-Linux field names that Sigma uses.
This module loads a bundle and runs each enabled rule as a ``Detection``; it never imports pySigma,
so the Lambda evaluates data, not code, and a bundle is reviewed like any other file.

The bundle's field names are OCSF paths of Vigil's events (``FIELDS``); the import's pySigma
processing pipeline maps Sigma's Sysmon-for-Linux names onto them (``Image`` ->
``process.file.path``, ``CommandLine`` -> ``process.cmd_line``, ``ParentImage`` ->
``process.parent_process.file.path``, ``TargetFilename`` -> ``file.path`` or
``file_result.path``, ``Initiated: 'true'`` -> ``connection_info.direction: Outbound``,
``DestinationIp`` -> ``dst_endpoint.ip`` ...). Categories and the event kinds they see:
process_creation (``process_exec``, ``memfd_exec``), file_event (``file_write``,
``file_rename``, ``file_link``), network_connection (``net_connect``, ``net_accept``).

Values compare as Sigma says: strings case-insensitively unless ``cased``; numbers as their
decimal text. A rule names its finding by its first ATT&CK tactic tag
(``DefenseEvasion:Runtime/SigmaRule``; rules without a tactic: ``Execution:Runtime/SigmaRule``),
runs as ``experimental``, aggregates per rule id and executable, and carries the Sigma id, title,
author and level in the finding's ``service.additionalInfo`` (the Detection Rule License asks for
the attribution).

A bundle is input like any other: a rule whose tree is malformed, too large or whose regular
expression does not compile is not run, with its reason in ``LoadedBundle.skipped``; loading never
raises for one bad rule.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

import msgspec

from vigil import severity as sev
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import FileSystemActivity, NetworkActivity, Process, ProcessActivity

BUNDLE_FORMAT: Final = "vigil-sigma/1"
MAX_RULES: Final = 5000
MAX_NODES: Final = 2000  # per rule
MAX_VALUE_CHARS: Final = 4096
SIGMA_TYPE_NAME: Final = "SigmaRule"

Op = Literal["eq", "contains", "startswith", "endswith", "re", "cidr", "exists", "null"]


class Match(msgspec.Struct, frozen=True, tag="match", omit_defaults=True):
    """``field`` compared with any of ``values`` (ORed) by ``op``."""

    field: str
    op: Op
    values: list[str] = []
    cased: bool = False  # Sigma's ``cased`` modifier; regexes: case-insensitive only with flag i
    flags: str = ""  # regex flags among "ims"


class And(msgspec.Struct, frozen=True, tag="and"):
    args: list[Node]


class Or(msgspec.Struct, frozen=True, tag="or"):
    args: list[Node]


class Not(msgspec.Struct, frozen=True, tag="not"):
    arg: Node


Node = Match | And | Or | Not


class CompiledRule(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    title: str
    category: str  # process_creation | file_event | network_connection
    condition: Node
    level: str = "medium"  # informational | low | medium | high | critical
    status: str = ""
    author: str = ""
    description: str = ""
    tags: list[str] = []  # attack.execution, attack.t1059.004 ...
    references: list[str] = []
    falsepositives: list[str] = []
    source: str = ""  # the rule's file, relative to the imported folder
    enabled: bool = True
    disabled_reason: str = ""  # why the import left it off (e.g. its false-positive rate)
    benign_hits: int = 0  # matches on the benign corpus at import


class Bundle(msgspec.Struct, frozen=True, omit_defaults=True):
    format: str
    rules: list[CompiledRule]
    source: str = ""  # what was imported (a folder, a repository and commit)
    benign_events: int = 0  # size of the benign corpus the rules were checked against
    max_benign_per_10k: float = 0.0


# -- fields -----------------------------------------------------------------------------------

Getter = Callable[[Any], str | None]


def _parent(e: Any) -> Process | None:
    p: Process = e.process
    return p.lineage[0] if p.lineage else None


def _parent_field(get: Callable[[Process], str]) -> Getter:
    def inner(e: Any) -> str | None:
        parent = _parent(e)
        return get(parent) if parent is not None else None

    return inner


_PROCESS: Final[dict[str, Getter]] = {
    "process.file.path": lambda e: e.process.file.path or None,
    "process.cmd_line": lambda e: e.process.cmd_line or None,
    "process.user.name": lambda e: e.process.user.name or None,
    "process.working_directory": lambda e: e.process.working_directory or None,
    "process.pid": lambda e: str(e.process.pid),
    "process.parent_process.file.path": _parent_field(lambda p: p.file.path),
    "process.parent_process.cmd_line": _parent_field(lambda p: p.cmd_line),
    "process.parent_process.pid": lambda e: str(e.process.ppid) if e.process.ppid else None,
}

FIELDS: Final[dict[str, dict[str, Getter]]] = {
    "process_creation": _PROCESS,
    "file_event": {
        **_PROCESS,
        "file.path": lambda e: e.file.path or None,
        "file_result.path": lambda e: (e.file_result.path or None) if e.file_result is not None else None,
    },
    "network_connection": {
        **_PROCESS,
        "connection_info.direction": lambda e: "Outbound" if e.kind == "net_connect" else "Inbound",
        "connection_info.protocol_name": lambda e: e.protocol_name or None,
        "dst_endpoint.ip": lambda e: e.dst_endpoint.ip or None,
        "dst_endpoint.port": lambda e: str(e.dst_endpoint.port) if e.dst_endpoint.port else None,
        "dst_endpoint.hostname": lambda e: e.dst_endpoint.hostname or None,
        "src_endpoint.ip": lambda e: e.src_endpoint.ip or None,
        "src_endpoint.port": lambda e: str(e.src_endpoint.port) if e.src_endpoint.port else None,
    },
}
KINDS: Final[dict[str, frozenset[str]]] = {
    "process_creation": frozenset({"process_exec", "memfd_exec"}),
    "file_event": frozenset({"file_write", "file_rename", "file_link"}),
    "network_connection": frozenset({"net_connect", "net_accept"}),
}
_EVENT_TYPE: Final[dict[str, type]] = {
    "process_creation": ProcessActivity,
    "file_event": FileSystemActivity,
    "network_connection": NetworkActivity,
}

# ATT&CK tactic tag -> GuardDuty-style threat purpose
TACTICS: Final[dict[str, str]] = {
    "reconnaissance": "Recon",
    "resource-development": "ResourceDevelopment",
    "initial-access": "InitialAccess",
    "execution": "Execution",
    "persistence": "Persistence",
    "privilege-escalation": "PrivilegeEscalation",
    "defense-evasion": "DefenseEvasion",
    "credential-access": "CredentialAccess",
    "discovery": "Discovery",
    "lateral-movement": "LateralMovement",
    "collection": "Collection",
    "command-and-control": "CommandAndControl",
    "exfiltration": "Exfiltration",
    "impact": "Impact",
}
LEVELS: Final[dict[str, float]] = {
    "informational": 1.0,
    "low": 2.0,
    "medium": 5.0,
    "high": 8.0,
    "critical": 8.0,  # GuardDuty's runtime types top out at High; attack sequences are Critical
}
_TECHNIQUE_RE: Final = re.compile(r"^t(\d{4})(?:\.(\d{3}))?$")


def finding_type(rule: CompiledRule) -> str:
    for tag in rule.tags:
        purpose = TACTICS.get(tag.removeprefix("attack.").replace("_", "-"))
        if tag.startswith("attack.") and purpose is not None:
            return f"{purpose}:Runtime/{SIGMA_TYPE_NAME}"
    return f"Execution:Runtime/{SIGMA_TYPE_NAME}"


def techniques(rule: CompiledRule) -> tuple[str, ...]:
    out: list[str] = []
    for tag in rule.tags:
        m = _TECHNIQUE_RE.match(tag.removeprefix("attack."))
        if tag.startswith("attack.") and m:
            out.append(f"T{m.group(1)}" + (f".{m.group(2)}" if m.group(2) else ""))
    return tuple(out) or ("T1059",)


# -- compiling a tree into a predicate ----------------------------------------------------------

Predicate = Callable[[Any], bool]


class RuleError(ValueError):
    pass


class _Memo:
    """One field of the event being evaluated, as is and lower-cased. Every rule of a category
    reads the same memo, and the engine runs all rules on one event before the next, so one slot
    per field spares ~100 rules the same getter call and ``lower()``."""

    __slots__ = ("event", "get", "low", "raw")

    def __init__(self, get: Getter) -> None:
        self.get = get
        self.event: object = None
        self.raw: str | None = None
        self.low: str | None = None

    def value(self, e: object) -> str | None:
        if e is not self.event:
            self.event, self.raw, self.low = e, self.get(e), None
        return self.raw

    def lower(self, e: object) -> str | None:
        if e is not self.event:
            self.event, self.raw, self.low = e, self.get(e), None
        if self.low is None and self.raw is not None:
            self.low = self.raw.lower()
        return self.low


_MEMOS: Final[dict[tuple[str, str], _Memo]] = {
    (category, name): _Memo(get) for category, fields in FIELDS.items() for name, get in fields.items()
}


def _regex(m: Match) -> re.Pattern[str]:
    flags = 0
    for ch in m.flags:
        if ch not in "ims":
            raise RuleError(f"unknown regex flag {ch!r}")
        flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}[ch]
    try:
        return re.compile("|".join(f"(?:{v})" for v in m.values), flags)
    except (re.error, RecursionError, OverflowError) as exc:
        raise RuleError(f"regex of {m.field} does not compile: {exc}") from None


def _cidr(m: Match, memo: _Memo) -> Predicate:
    try:
        nets = [ipaddress.ip_network(v, strict=False) for v in m.values]
    except ValueError as exc:
        raise RuleError(f"bad CIDR for {m.field}: {exc}") from None

    def in_net(e: Any) -> bool:
        s = memo.value(e)
        if s is None:
            return False
        try:
            ip = ipaddress.ip_address(s)
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in nets)

    return in_net


def _leaf(m: Match, memo: _Memo) -> Predicate:
    if m.op == "exists":
        return lambda e: memo.value(e) is not None
    if m.op == "null":
        return lambda e: memo.value(e) is None
    if not m.values:
        raise RuleError(f"{m.field}|{m.op} has no values")
    if m.op == "re":
        rx = _regex(m)

        def search(e: Any) -> bool:
            s = memo.value(e)
            return s is not None and rx.search(s) is not None

        return search
    if m.op == "cidr":
        return _cidr(m, memo)
    get = memo.value if m.cased else memo.lower
    vals = tuple(m.values if m.cased else (v.lower() for v in m.values))
    if m.op == "eq":
        vs = frozenset(vals)
        return lambda e: get(e) in vs
    if m.op == "contains":
        if len(vals) == 1:
            one = vals[0]

            def contains_one(e: Any) -> bool:
                s = get(e)
                return s is not None and one in s

            return contains_one
        rx = re.compile("|".join(re.escape(v) for v in vals))  # one scan for all the values

        def contains_any(e: Any) -> bool:
            s = get(e)
            return s is not None and rx.search(s) is not None

        return contains_any
    if m.op in ("startswith", "endswith"):
        method = str.startswith if m.op == "startswith" else str.endswith

        def affix(e: Any) -> bool:
            s = get(e)
            return s is not None and method(s, vals)

        return affix
    raise RuleError(f"unknown operator {m.op!r}")


def _all(parts: tuple[Predicate, ...]) -> Predicate:
    def conj(e: Any) -> bool:
        for p in parts:  # noqa: SIM110 (a loop: no generator per call, this runs per event and rule)
            if not p(e):
                return False
        return True

    return conj


def _any(parts: tuple[Predicate, ...]) -> Predicate:
    def disj(e: Any) -> bool:
        for p in parts:  # noqa: SIM110 (a loop: no generator per call, this runs per event and rule)
            if p(e):
                return True
        return False

    return disj


def compile_condition(node: Node, category: str) -> Predicate:
    """The predicate of a rule's tree over events of ``category``; raises ``RuleError``."""
    if category not in FIELDS:
        raise RuleError(f"unsupported category {category!r}")
    budget = [MAX_NODES]

    def build(n: Node, depth: int) -> Predicate:
        budget[0] -= 1
        if budget[0] < 0 or depth > 64:
            raise RuleError(f"condition larger than {MAX_NODES} nodes or deeper than 64")
        if isinstance(n, And | Or):
            parts = tuple(build(a, depth + 1) for a in n.args)
            if not parts:
                raise RuleError(f"an empty {type(n).__name__.lower()}")
            if len(parts) == 1:
                return parts[0]
            return _all(parts) if isinstance(n, And) else _any(parts)
        if isinstance(n, Not):
            inner = build(n.arg, depth + 1)
            return lambda e: not inner(e)
        memo = _MEMOS.get((category, n.field))
        if memo is None:
            raise RuleError(f"field {n.field!r} is not available for {category}")
        if any(len(v) > MAX_VALUE_CHARS for v in n.values):
            raise RuleError(f"a value of {n.field} is longer than {MAX_VALUE_CHARS} characters")
        return _leaf(n, memo)

    return build(node, 0)


def required_programs(node: Node, category: str) -> frozenset[str] | None:
    """Program names an event must have for the rule to match, when its tree says so: a
    top-level AND (or the root) holding ``process.file.path`` ``endswith`` '/name' values, or an OR of only
    such items. None when the tree does not pin the program (the engine then offers every event)."""
    if category not in FIELDS:
        return None

    def names(n: Node) -> frozenset[str] | None:
        if isinstance(n, Match):
            if n.field == "process.file.path" and n.op == "endswith" and not n.cased and n.values:
                vs = [v.lower() for v in n.values]
                if all(v.startswith("/") and len(v) > 1 and "/" not in v[1:] for v in vs):
                    return frozenset(v[1:] for v in vs)
            return None
        if isinstance(n, Or):
            parts = [names(a) for a in n.args]
            if parts and all(p is not None for p in parts):
                return frozenset().union(*(p for p in parts if p is not None))
            return None
        if isinstance(n, And):
            for a in n.args:
                got = names(a)
                if got is not None:
                    return got
        return None

    return names(node)


# -- rules as detections ------------------------------------------------------------------------


class SigmaDetection(Detection):
    """One compiled Sigma rule (a subclass is made per rule by ``detection_for``)."""

    rule: ClassVar[CompiledRule]
    predicate: ClassVar[Predicate]
    # examples are the rule's own business (SigmaHQ's tests); the registry's checks do not apply
    fires: ClassVar[Sequence[Example]] = ()
    near_misses: ClassVar[Sequence[Example]] = ()

    def match(self, event: Any, ctx: Context) -> bool:
        return type(self).predicate(event)

    def dedup_key(self, event: Any) -> str:
        p: Process | None = getattr(event, "process", None)
        return f"sigma:{self.rule.id}:{p.file.path if p is not None else ''}"

    def title(self, event: Any) -> str:
        return f"Sigma rule matched: {self.rule.title[:200]}"

    def additional_info(self, event: Any) -> dict[str, Any]:
        r = self.rule
        return {
            "sigma": {
                "id": r.id,
                "title": r.title[:256],
                "level": r.level,
                "status": r.status,
                "author": r.author[:256],
                "source": r.source[:256],
            }
        }


def detection_for(rule: CompiledRule) -> type[SigmaDetection]:
    """A Detection class for one rule; raises ``RuleError`` when it cannot run."""
    if rule.category not in KINDS:
        raise RuleError(f"unsupported category {rule.category!r}")
    if rule.level not in LEVELS:
        raise RuleError(f"unknown level {rule.level!r}")
    predicate = compile_condition(rule.condition, rule.category)
    event_type = _EVENT_TYPE[rule.category]

    def typed(e: Any) -> bool:  # a kind is only ever produced by its class; checked anyway
        return isinstance(e, event_type) and predicate(e)

    severity = LEVELS[rule.level]
    sev.label(severity)
    meta = Meta(
        type=finding_type(rule),
        severity=severity,
        title=f"Sigma rule matched: {rule.title[:200]}",
        description=(rule.description or rule.title)[:1024],
        mitre=techniques(rule),
        runbook=(
            "Imported Sigma rule (experimental): review the process, its lineage and the rule "
            f"({rule.source or rule.id}); its known false positives: "
            + ("; ".join(rule.falsepositives)[:512] or "none listed")
        ),
        false_positives=tuple(rule.falsepositives) or ("Unknown (Sigma rule lists none)",),
        references=tuple(rule.references),
        maturity="experimental",
    )
    attrs: dict[str, Any] = {
        "meta": meta,
        "kinds": KINDS[rule.category],
        "rule": rule,
        "predicate": staticmethod(typed),
        "programs": required_programs(rule.condition, rule.category),
    }
    return type(f"Sigma_{re.sub(r'[^0-9A-Za-z]', '_', rule.id)[:60]}", (SigmaDetection,), attrs)


@dataclass(frozen=True, slots=True)
class LoadedBundle:
    detections: tuple[Detection, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (rule id, reason) of rules that do not run
    disabled: int = 0  # rules the import left off (their reason is in the bundle)
    source: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


_bundle_decoder: Final = msgspec.json.Decoder(Bundle)


def decode_bundle(data: bytes) -> Bundle:
    """Raises ``RuleError`` for a file that is not a bundle."""
    try:
        bundle = _bundle_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise RuleError(f"not a Vigil Sigma bundle: {str(exc)[:300]}") from None
    if bundle.format != BUNDLE_FORMAT:
        raise RuleError(f"bundle format {bundle.format!r}, expected {BUNDLE_FORMAT!r}")
    if len(bundle.rules) > MAX_RULES:
        raise RuleError(f"{len(bundle.rules)} rules, more than {MAX_RULES}")
    return bundle


def encode_bundle(bundle: Bundle) -> bytes:
    return msgspec.json.format(msgspec.json.encode(bundle), indent=1) + b"\n"


def load_bundle(data: bytes, *, include_disabled: bool = False) -> LoadedBundle:
    """The detections of a bundle's enabled rules (all rules with ``include_disabled``)."""
    bundle = decode_bundle(data)
    dets: list[Detection] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    disabled = 0
    for rule in bundle.rules:
        if not rule.enabled and not include_disabled:
            disabled += 1
            continue
        if rule.id in seen:
            skipped.append((rule.id, "duplicate rule id"))
            continue
        seen.add(rule.id)
        try:
            dets.append(detection_for(rule)())
        except RuleError as exc:
            skipped.append((rule.id, str(exc)))
    return LoadedBundle(tuple(dets), tuple(skipped), disabled, bundle.source)
