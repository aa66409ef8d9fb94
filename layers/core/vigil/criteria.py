"""GuardDuty's filters and suppression rules: ``FindingCriteria`` evaluated on finding documents.

One engine for every face: suppression at ingest, ``vigil findings list --filter``, the console.
A rule written for GuardDuty works unchanged (``CreateFilter`` input and ``aws guardduty
get-filter`` output are accepted as they are, PascalCase keys). Semantics (docs/filters.md):

- ``Criterion`` maps a field path of the finding JSON (camelCase, as in EventBridge's ``detail``:
  ``type``, ``severity``, ``resource.instanceDetails.tags.key``,
  ``service.runtimeDetails.process.lineage.name``...) to a ``Condition``. Attributes are ANDed;
  the operators of one condition are ANDed (``Gte`` + ``Lt`` is a range); the values of one
  operator are ORed.
- A path walks lists: every element is tried, and the field's values are all the leaves reached
  (``tags.key`` is the list of tag keys). ``Equals`` / ``Matches`` / the comparisons hold when ANY
  value satisfies them; ``NotEquals`` / ``NotMatches`` hold when NONE does (also when the field is
  absent). ``tags.key`` and ``tags.value`` are two independent attributes, as in GuardDuty: they
  need not come from the same tag.
- ``Equals`` compares strings, a number numerically (``"8"`` equals ``8.0``), a boolean as
  ``true``/``false``, a timestamp also as epoch milliseconds. ``GreaterThan`` & co. compare numbers,
  and timestamps (``createdAt``, ``updatedAt``, ``service.eventFirstSeen``...) in epoch ms.
- ``Matches`` / ``NotMatches``: wildcards ``*`` (any run, also empty) and ``?`` (one character),
  the rest literal, whole value, case-sensitive.
- The deprecated ``Eq``/``Neq``/``Gt``/``Gte``/``Lt``/``Lte`` mean ``Equals``/``NotEquals``/...

Validation follows botocore's GuardDuty model (``CreateFilter``, ``Condition``) and GuardDuty's
quotas (50 attributes per filter, 50 values per operator; ``Matches``: 5 values of 1-512
characters); every problem is a :class:`FilterError` naming where it is. Parsing compiles the
criteria once into closures, so matching a finding costs one walk per attribute and no parsing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

MAX_FILTERS: Final = 100
MAX_ATTRIBUTES: Final = 50
MAX_VALUES: Final = 50
MAX_MATCH_VALUES: Final = 5  # botocore: Matches/NotMatches min 0 max 5, each 1-512 characters
MAX_MATCH_LEN: Final = 512
MAX_PATH_LEN: Final = 256
MAX_VALUE_LEN: Final = 1024
MAX_TAGS: Final = 200
LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1
NAME_RE: Final = re.compile(r"[A-Za-z0-9._-]{3,64}")
TAG_KEY_RE: Final = re.compile(r"(?!aws:)[a-zA-Z+\-=._:/]{1,128}")
PATH_RE: Final = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")

Action = Literal["NOOP", "ARCHIVE"]
ACTIONS: Final = ("NOOP", "ARCHIVE")

EQUALS_OPS: Final = {"Equals": "Equals", "Eq": "Equals", "NotEquals": "NotEquals", "Neq": "NotEquals"}
COMPARE_OPS: Final = {
    "GreaterThan": "GreaterThan",
    "Gt": "GreaterThan",
    "GreaterThanOrEqual": "GreaterThanOrEqual",
    "Gte": "GreaterThanOrEqual",
    "LessThan": "LessThan",
    "Lt": "LessThan",
    "LessThanOrEqual": "LessThanOrEqual",
    "Lte": "LessThanOrEqual",
}
MATCH_OPS: Final = ("Matches", "NotMatches")
OPERATORS: Final = (*EQUALS_OPS, *COMPARE_OPS, *MATCH_OPS)
# keys of GetFilter output / CreateFilter / UpdateFilter input that say nothing about matching
_IGNORED_KEYS: Final = frozenset(
    {"DetectorId", "ClientToken", "CreatedAt", "UpdatedAt", "Version", "FilterName"}
)
_FILTER_KEYS: Final = frozenset({"Name", "Description", "Action", "Rank", "FindingCriteria", "Tags"})


class FilterError(ValueError):
    """A filter or criteria document GuardDuty would refuse; the message says where and why."""


Predicate = Callable[[Mapping[str, Any]], bool]
Check = Callable[[list[Any]], bool]
Cache = dict[tuple[str, ...], list[Any]]  # path -> its values in one finding, shared by the rules


# -- values of a finding ------------------------------------------------------------------------
def values_at(doc: Any, path: tuple[str, ...]) -> list[Any]:
    """Every leaf reached by ``path`` in ``doc``, walking into every list element. Under
    ``additionalInfo`` a key other than ``value``/``type`` is looked up in the JSON of ``value``
    (``service.additionalInfo.threatListName``), as GuardDuty's filter attributes allow."""
    node: Any = doc
    for i, key in enumerate(path):  # the usual case: dicts all the way, one value
        if isinstance(node, dict) and key in node and key != "additionalInfo":
            node = node[key]
            continue
        return _values_slow([node], path[i:], path[i - 1] if i else "")  # lists, additionalInfo
    if isinstance(node, list):
        return [v for v in _flatten([node]) if v is not None and not isinstance(v, dict)]
    return [] if node is None or isinstance(node, dict) else [node]


def _values_slow(current: list[Any], path: tuple[str, ...], prev: str) -> list[Any]:
    for key in path:
        nxt: list[Any] = []
        for node in _flatten(current):
            if not isinstance(node, dict):
                continue
            if key in node:
                nxt.append(node[key])
            elif prev == "additionalInfo" and isinstance(node.get("value"), str):
                extra = _json_object(node["value"])
                if key in extra:
                    nxt.append(extra[key])
        current = nxt
        prev = key
        if not current:
            return []
    return [v for v in _flatten(current) if v is not None and not isinstance(v, dict)]


def _flatten(nodes: Iterable[Any]) -> Iterator[Any]:
    for n in nodes:
        if isinstance(n, list):
            yield from _flatten(n)
        else:
            yield n


def _json_object(text: str) -> dict[str, Any]:
    try:
        out = json.loads(text)
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def epoch_ms(value: str) -> int | None:
    """An ISO-8601 timestamp (GuardDuty's ``2026-11-27T22:13:21.123Z``) as epoch milliseconds;
    None for anything else. A timestamp without a zone is UTC."""
    if not _ISO_RE.fullmatch(value):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)  # exact: no float rounding


def _number(value: Any) -> float | None:
    """The value as a number for comparisons: numbers as they are, timestamps in epoch ms."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        ms = epoch_ms(value)
        return float(ms) if ms is not None else None
    return None


def _as_number(text: str) -> float | None:
    try:
        n = float(text)
    except ValueError:
        return None
    return n if n == n and n not in (float("inf"), float("-inf")) else None


def wildcard(pattern: str) -> re.Pattern[str]:
    """GuardDuty's Matches pattern: ``*`` any run, ``?`` one character, the rest literal."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


# -- compiled criteria --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Criteria:
    """Validated FindingCriteria: the ``Criterion`` as given (canonical operator names kept as
    written) and its compiled predicate."""

    criterion: dict[str, dict[str, Any]]
    attributes: tuple[tuple[tuple[str, ...], Check], ...] = field(repr=False, compare=False)

    def matches(self, finding: Mapping[str, Any], cache: Cache | None = None) -> bool:
        """Every attribute holds; ``cache`` shares path lookups between rules on one finding."""
        if cache is None:
            return all(check(values_at(finding, keys)) for keys, check in self.attributes)
        for keys, check in self.attributes:
            found = cache.get(keys)
            if found is None:
                found = cache[keys] = values_at(finding, keys)
            if not check(found):
                return False
        return True

    def predicate(self, finding: Mapping[str, Any]) -> bool:
        return self.matches(finding)

    def to_json(self) -> dict[str, Any]:
        return {"Criterion": self.criterion}


@dataclass(frozen=True, slots=True)
class Filter:
    """A saved filter (``Action`` NOOP) or suppression rule (``Action`` ARCHIVE)."""

    name: str
    criteria: Criteria
    action: Action = "NOOP"
    rank: int | None = None  # None: after every ranked filter (the store assigns the next rank)
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def matches(self, finding: Mapping[str, Any], cache: Cache | None = None) -> bool:
        return self.criteria.matches(finding, cache)

    def to_json(self) -> dict[str, Any]:
        """GetFilter's shape (PascalCase), which ``parse_filter`` takes back unchanged."""
        out: dict[str, Any] = {"Name": self.name, "Action": self.action}
        if self.description:
            out["Description"] = self.description
        if self.rank is not None:
            out["Rank"] = self.rank
        out["FindingCriteria"] = self.criteria.to_json()
        if self.tags:
            out["Tags"] = dict(self.tags)
        return out


def _where(path: str) -> str:
    return f"FindingCriteria.Criterion[{json.dumps(path)[:80]}]"


def _compile_condition(path: str, cond: Any) -> tuple[dict[str, Any], Check]:
    where = _where(path)
    if not isinstance(cond, dict):
        raise FilterError(f"{where}: a condition must be an object of operators, got {_kind(cond)}")
    if not cond:
        raise FilterError(f"{where}: a condition needs at least one operator ({', '.join(OPERATORS)})")
    checks: list[Check] = []
    kept: dict[str, Any] = {}
    for op, arg in cond.items():
        if not isinstance(op, str) or op not in OPERATORS:
            raise FilterError(
                f"{where}: unknown operator {str(op)[:40]!r}; operators: {', '.join(OPERATORS)}"
            )
        if op in EQUALS_OPS:
            values = _string_list(f"{where}.{op}", arg, MAX_VALUES, 0, MAX_VALUE_LEN)
            kept[op] = values
            checks.append(_equals_check(values, negate=EQUALS_OPS[op] == "NotEquals"))
        elif op in COMPARE_OPS:
            if isinstance(arg, bool) or not isinstance(arg, int):
                raise FilterError(
                    f"{where}.{op}: must be an integer (epoch ms for a timestamp), got {_kind(arg)}"
                )
            if not LONG_MIN <= arg <= LONG_MAX:
                raise FilterError(f"{where}.{op}: {arg} is out of the range of a long")
            kept[op] = arg
            checks.append(_compare_check(COMPARE_OPS[op], float(arg)))
        else:
            values = _string_list(f"{where}.{op}", arg, MAX_MATCH_VALUES, 1, MAX_MATCH_LEN)
            kept[op] = values
            checks.append(_match_check(values, negate=op == "NotMatches"))

    if len(checks) == 1:
        return kept, checks[0]

    def check_all(found: list[Any]) -> bool:
        return all(check(found) for check in checks)

    return kept, check_all


def _equals_check(values: list[str], *, negate: bool) -> Check:
    strings = frozenset(values)
    bools = frozenset(v.lower() for v in values if v.lower() in ("true", "false"))
    numbers = frozenset(n for n in map(_as_number, values) if n is not None)

    def check(found: list[Any]) -> bool:
        hit = False
        for f in found:
            if isinstance(f, str):
                if f in strings:
                    hit = True
                elif numbers:  # a timestamp equals its epoch ms
                    ms = epoch_ms(f)
                    hit = ms is not None and float(ms) in numbers
            elif isinstance(f, bool):
                hit = ("true" if f else "false") in bools
            elif isinstance(f, int | float):
                hit = float(f) in numbers
            if hit:
                break
        return not hit if negate else hit

    return check


def _compare_check(op: str, bound: float) -> Callable[[list[Any]], bool]:
    test: Callable[[float], bool] = {
        "GreaterThan": lambda x: x > bound,
        "GreaterThanOrEqual": lambda x: x >= bound,
        "LessThan": lambda x: x < bound,
        "LessThanOrEqual": lambda x: x <= bound,
    }[op]

    def check(found: list[Any]) -> bool:
        for f in found:
            n = _number(f)
            if n is not None and test(n):
                return True
        return False

    return check


def _match_check(values: list[str], *, negate: bool) -> Callable[[list[Any]], bool]:
    patterns = [wildcard(v) for v in values]

    def check(found: list[Any]) -> bool:
        hit = any(p.fullmatch(_text(f)) is not None for f in found for p in patterns)
        return not hit if negate else hit

    return check


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _string_list(where: str, arg: Any, most: int, min_len: int, max_len: int) -> list[str]:
    if not isinstance(arg, list):
        raise FilterError(f"{where}: must be a list of strings, got {_kind(arg)}")
    if len(arg) > most:
        raise FilterError(f"{where}: {len(arg)} values; GuardDuty allows at most {most}")
    out: list[str] = []
    for i, v in enumerate(arg):
        if not isinstance(v, str):
            raise FilterError(f'{where}[{i}]: must be a string, got {_kind(v)} (write "8", not 8)')
        if not min_len <= len(v) <= max_len:
            raise FilterError(f"{where}[{i}]: length {len(v)} is not within {min_len}-{max_len}")
        out.append(v)
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)  # fmt: skip


def parse_criteria(obj: Any) -> Criteria:
    """``FindingCriteria`` (``{"Criterion": {...}}``) -> Criteria, or a FilterError."""
    if not isinstance(obj, dict):
        raise FilterError(f"FindingCriteria: must be an object with a Criterion, got {_kind(obj)}")
    extra = [k for k in obj if k != "Criterion"]
    if extra:
        raise FilterError(f"FindingCriteria: unknown key {str(extra[0])[:40]!r} (only Criterion)")
    criterion = obj.get("Criterion")
    if not isinstance(criterion, dict):
        raise FilterError(
            f"FindingCriteria.Criterion: must be an object of field -> condition, got {_kind(criterion)}"
        )
    if not criterion:
        raise FilterError("FindingCriteria.Criterion: needs at least one attribute")
    if len(criterion) > MAX_ATTRIBUTES:
        raise FilterError(
            f"FindingCriteria.Criterion: {len(criterion)} attributes; GuardDuty allows at most {MAX_ATTRIBUTES}"
        )
    kept: dict[str, dict[str, Any]] = {}
    attributes: list[tuple[tuple[str, ...], Check]] = []
    for path, cond in criterion.items():
        if not isinstance(path, str) or len(path) > MAX_PATH_LEN or not PATH_RE.fullmatch(path):
            raise FilterError(
                f"{_where(str(path))}: not a finding field path (dotted camelCase names, "
                f"e.g. resource.instanceDetails.tags.key)"
            )
        kept[path], check = _compile_condition(path, cond)
        attributes.append((tuple(path.split(".")), check))
    return Criteria(kept, tuple(attributes))


def parse_filter(obj: Any, *, name: str | None = None) -> Filter:
    """A CreateFilter / UpdateFilter request or a GetFilter response (PascalCase, as the AWS CLI
    prints and takes them) -> Filter, or a FilterError. ``name`` supplies the name when the
    document has none (UpdateFilter input names it ``FilterName``)."""
    if not isinstance(obj, dict):
        raise FilterError(f"filter: must be a JSON object, got {_kind(obj)}")
    for k in obj:
        if k not in _FILTER_KEYS and k not in _IGNORED_KEYS:
            raise FilterError(
                f"filter: unknown key {str(k)[:40]!r}; expected {', '.join(sorted(_FILTER_KEYS))}"
            )
    raw_name = obj.get("Name", obj.get("FilterName", name))
    if not isinstance(raw_name, str) or not NAME_RE.fullmatch(raw_name):
        raise FilterError(
            f"Name: {str(raw_name)[:80]!r} must be 3-64 characters of letters, digits, '.', '_' or '-'"
        )
    description = obj.get("Description", "")
    if not isinstance(description, str) or len(description) > 512:
        raise FilterError("Description: must be a string of at most 512 characters")
    action = obj.get("Action", "NOOP")
    if action not in ACTIONS:
        raise FilterError(f"Action: {str(action)[:40]!r} must be NOOP or ARCHIVE")
    rank = obj.get("Rank")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= 100):
        raise FilterError(f"Rank: {str(rank)[:40]!r} must be an integer from 1 to 100")
    if "FindingCriteria" not in obj:
        raise FilterError("FindingCriteria: missing (a filter needs at least one criterion)")
    criteria = parse_criteria(obj["FindingCriteria"])
    tags = obj.get("Tags", {})
    if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
        raise FilterError(f"Tags: must be an object of at most {MAX_TAGS} key -> value strings")
    for k, v in tags.items():
        if not isinstance(k, str) or not TAG_KEY_RE.fullmatch(k):
            raise FilterError(
                f"Tags: key {str(k)[:40]!r} is not a valid tag key (1-128 characters, not aws:)"
            )
        if not isinstance(v, str) or len(v) > 256:
            raise FilterError(f"Tags[{k!r}]: the value must be a string of at most 256 characters")
    return Filter(raw_name, criteria, action, rank, description, dict(tags))


# -- the short syntax of `vigil findings list --filter` ---------------------------------------
_SHORT_RE: Final = re.compile(r"\s*([A-Za-z0-9_.]+)\s*(!=|>=|<=|!~|=|~|>|<)\s*(.*)", re.DOTALL)
_SHORT_OPS: Final = {
    "=": "Equals",
    "!=": "NotEquals",
    "~": "Matches",
    "!~": "NotMatches",
    ">": "GreaterThan",
    ">=": "GreaterThanOrEqual",
    "<": "LessThan",
    "<=": "LessThanOrEqual",
}


def parse_expressions(expressions: Iterable[str]) -> Criteria:
    """``--filter`` arguments -> Criteria. Each is either FindingCriteria JSON (``{"Criterion":
    ...}``, or the criterion map itself) or ``FIELD OP VALUE`` with OP one of ``=`` (Equals),
    ``!=`` (NotEquals), ``~`` (Matches, wildcards), ``!~`` (NotMatches), ``>``, ``>=``, ``<``,
    ``<=`` (an integer, or an ISO-8601 time taken as epoch ms). Arguments are ANDed, except that
    the same FIELD with ``=`` (or ``~``...) again adds a value, ORed."""
    criterion: dict[str, dict[str, Any]] = {}
    for expr in expressions:
        text = expr.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise FilterError(f"--filter: not valid JSON ({exc})") from None
            if isinstance(obj, dict) and "Criterion" not in obj:
                obj = {"Criterion": obj}
            for path, cond in parse_criteria(obj).criterion.items():
                criterion.setdefault(path, {}).update(cond)
            continue
        m = _SHORT_RE.fullmatch(text)
        if m is None:
            raise FilterError(
                f"--filter {expr[:80]!r}: expected FIELD OP VALUE (OP: = != ~ !~ > >= < <=) or FindingCriteria JSON"
            )
        path, sym, value = m.group(1), m.group(2), m.group(3).strip()
        op = _SHORT_OPS[sym]
        cond = criterion.setdefault(path, {})
        if op in COMPARE_OPS:
            number = _bound(value)
            if number is None:
                raise FilterError(
                    f"--filter {expr[:80]!r}: {value[:40]!r} is not an integer or an ISO-8601 time"
                )
            cond[op] = number
        else:
            cond.setdefault(op, []).append(value)
    return parse_criteria({"Criterion": criterion})


def _bound(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        pass
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        value += "T00:00:00Z"
    return epoch_ms(value)


# -- rules in force -----------------------------------------------------------------------------
def in_rank_order(filters: Iterable[Filter]) -> list[Filter]:
    """Filters as GuardDuty evaluates them: by Rank, unranked last, then by name."""
    return sorted(filters, key=lambda f: (f.rank is None, f.rank or 0, f.name))


class Suppressor:
    """The ARCHIVE rules in force, compiled once: ``suppressor(finding)`` is the name of the first
    rule (in Rank order) the finding matches, or None. This is ``Pipeline``'s suppress hook."""

    def __init__(self, filters: Iterable[Filter]) -> None:
        self.rules = [f for f in in_rank_order(filters) if f.action == "ARCHIVE"]

    def __call__(self, finding: Mapping[str, Any]) -> str | None:
        cache: Cache = {}
        for rule in self.rules:
            if rule.criteria.matches(finding, cache):
                return rule.name
        return None

    def __bool__(self) -> bool:
        return bool(self.rules)
