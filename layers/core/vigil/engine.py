"""The detection engine: a pure function of (events, detections, intel, settings, state).

Detections are indexed by event kind, so an event only meets the rules that consume it, and
within a kind by the acting program's name for rules that declare a program prefilter
(``Detection.programs`` / ``program_prefixes``, rule in ``Detection.offered``): a ``curl`` exec
never calls a rule that only fires on shells. The per-(kind, program) list of rules is computed
once per distinct program name and cached (bounded), so an event costs one dict lookup to route;
the state of stateful rules is prefetched for the rules the event is offered to, the same way.
Detections that declare the same ``Detection.gate`` (a cheap necessary condition, e.g. "the IP is
on some threat list") form one entry: the gate runs once per event, its members only when it holds.
Every detection runs in its own error boundary: one broken rule is counted and reported, and never
sinks the batch or hides another rule's findings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.detection import Context, Detection
from vigil.events import Event
from vigil.intel import EMPTY, Intel
from vigil.state import State

_Match = Callable[[Any, Context], bool]


@dataclass(frozen=True, slots=True)
class _Gate:
    """Detections sharing a ``Detection.gate``: one dispatch entry, the gate called once per event."""

    members: tuple[tuple[Detection, _Match], ...]


_Dispatch = tuple[tuple[Detection | _Gate, _Match], ...]
_ROUTES_MAX = 4096  # distinct program names cached per kind (cleared when full: names are attacker-chosen)


@dataclass(frozen=True, slots=True)
class Match:
    detection: Detection
    event: Event


@dataclass(frozen=True, slots=True)
class DetectionError:
    detection_type: str
    event_kind: str
    error: str


@dataclass(slots=True)
class EngineResult:
    matches: list[Match] = field(default_factory=list)
    errors: list[DetectionError] = field(default_factory=list)


def _grouped(entries: Sequence[tuple[Detection, _Match]]) -> _Dispatch:
    """Detections that declare the same gate become one entry, at the first member's position."""
    members: dict[_Match, list[tuple[Detection, _Match]]] = {}
    for d, m in entries:
        g = type(d).gate
        if g is not None:
            members.setdefault(g, []).append((d, m))
    out: list[tuple[Detection | _Gate, _Match]] = []
    placed: set[_Match] = set()
    for d, m in entries:
        g = type(d).gate
        if g is None or len(members[g]) == 1:
            out.append((d, m))  # a gate nobody shares saves nothing: the detection runs as is
        elif g not in placed:
            placed.add(g)
            out.append((_Gate(tuple(members[g])), g))
    return tuple(out)


def _bounded_put(table: dict[str, Any], key: str, value: Any) -> None:
    """Cache ``value`` under a program name, clearing the table when full (names are attacker-chosen)."""
    if len(table) >= _ROUTES_MAX:
        table.clear()
    table[key] = value


def _offered(d: Detection, program: str) -> bool:
    try:
        return d.offered(program)
    except Exception:  # a broken prefilter declaration must never hide a match: offer the event
        return True


class Engine:
    def __init__(
        self,
        detections: Sequence[Detection],
        *,
        intel: Intel = EMPTY,
        settings: Mapping[str, Any] | None = None,
        disabled: Iterable[str] = (),
    ) -> None:
        off = set(disabled)
        self.detections = tuple(d for d in detections if d.meta.type not in off)
        self.intel = intel
        self.settings = dict(settings or {})
        by_kind: dict[str, list[Detection]] = defaultdict(list)
        for d in self.detections:
            for k in d.kinds:
                by_kind[k].append(d)
        self.by_kind: dict[str, tuple[Detection, ...]] = {k: tuple(v) for k, v in by_kind.items()}
        # bound methods resolved once: the dispatch loop is the hottest code in the ingest path
        self._flat: dict[str, tuple[tuple[Detection, _Match], ...]] = {
            k: tuple((d, d.match) for d in v) for k, v in self.by_kind.items()
        }
        self._dispatch: dict[str, _Dispatch] = {k: _grouped(v) for k, v in self._flat.items()}
        # kinds with at least one prefiltered rule route by program name: name -> the rules offered
        # (unfiltered rules plus the prefiltered ones that accept the name, in registry order)
        self._routes: dict[str, dict[str, _Dispatch]] = {
            k: {} for k, v in self.by_kind.items() if any(d.prefiltered() for d in v)
        }
        self._stateful_by_kind = {
            k: s for k, v in self.by_kind.items() if (s := tuple(d for d in v if d.stateful))
        }
        # kinds with a prefiltered stateful rule load state only for the rules the program is
        # offered to: program name -> those stateful rules (the same verdicts: a rule never offered
        # the event never reads its keys)
        self._stateful_routes: dict[str, dict[str, tuple[Detection, ...]]] = {
            k: {} for k, v in self._stateful_by_kind.items() if any(d.prefiltered() for d in v)
        }

    def offered(self, kind: str, program: str) -> tuple[Detection, ...]:
        """The detections an event of ``kind`` whose acting program is ``program`` is offered to
        (subject to their shared gates)."""
        out: list[Detection] = []
        for d, _ in self._route(kind, program):
            if isinstance(d, _Gate):
                out.extend(x for x, _ in d.members)
            else:
                out.append(d)
        return tuple(out)

    def _route(self, kind: str, program: str) -> _Dispatch:
        table = self._routes.get(kind)
        if table is None:
            return self._dispatch.get(kind, ())
        hit = table.get(program)
        if hit is None:
            hit = _grouped([(d, m) for d, m in self._flat.get(kind, ()) if _offered(d, program)])
            _bounded_put(table, program, hit)
        return hit

    def _stateful_route(self, kind: str, program: str) -> tuple[Detection, ...]:
        """The stateful rules among those ``program``'s events of ``kind`` are offered to (cached
        per program name, as ``_route`` is)."""
        table = self._stateful_routes[kind]
        hit = table.get(program)
        if hit is None:
            hit = tuple(d for d in self.offered(kind, program) if d.stateful)
            _bounded_put(table, program, hit)
        return hit

    def run(self, events: Sequence[Event], state: State) -> EngineResult:
        result = EngineResult()
        self._prefetch(events, state, result)
        ctx = Context(state=state, intel=self.intel, settings=self.settings)
        dispatch = self._dispatch
        routes = self._routes
        route = self._route
        matches = result.matches
        for event in events:
            kind = event.kind
            table = routes.get(kind)
            if table is None:
                dets = dispatch.get(kind)
                if dets is None:
                    continue
            else:
                p = getattr(event, "process", None)
                name = (p.file.name or p.name) if p is not None else ""  # detection.program_name, inlined
                dets = table.get(name)
                if dets is None:
                    dets = route(kind, name)
            for d, match in dets:
                try:
                    if not match(event, ctx):
                        continue
                except Exception as exc:  # error isolation: one bad rule never sinks a batch
                    if not isinstance(d, _Gate):
                        result.errors.append(DetectionError(d.meta.type, kind, repr(exc)))
                        continue
                    # a gate that raises offers the event to its members (each isolated below)
                if isinstance(d, _Gate):
                    for gd, gmatch in d.members:
                        try:
                            if gmatch(event, ctx):
                                matches.append(Match(gd, event))
                        except Exception as exc:
                            result.errors.append(DetectionError(gd.meta.type, kind, repr(exc)))
                else:
                    matches.append(Match(d, event))
        return result

    def _prefetch(self, events: Sequence[Event], state: State, result: EngineResult) -> None:
        stateful = self._stateful_by_kind
        if not stateful:
            return
        routes = self._stateful_routes
        keys: set[str] = set()
        for event in events:
            kind = event.kind
            dets = stateful.get(kind)
            if dets is None:
                continue
            table = routes.get(kind)
            if table is not None:
                p = getattr(event, "process", None)
                name = (p.file.name or p.name) if p is not None else ""  # as in run()
                found = table.get(name)
                dets = found if found is not None else self._stateful_route(kind, name)
            for d in dets:
                try:
                    keys.update(d.state_keys(event))
                except Exception as exc:
                    result.errors.append(DetectionError(d.meta.type, event.kind, f"state_keys: {exc!r}"))
        if keys:
            state.load(keys)
