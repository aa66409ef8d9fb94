"""The detection engine: a pure function of (events, detections, intel, settings, state).

Detections are indexed by event kind, so an event only meets the rules that consume it. Every
detection runs in its own error boundary: one broken rule is counted and reported, and never sinks
the batch or hides another rule's findings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.detection import Context, Detection
from vigil.events import Event
from vigil.intel import EMPTY, Intel
from vigil.state import State


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
        self._stateful_by_kind = {k: tuple(d for d in v if d.stateful) for k, v in self.by_kind.items()}

    def run(self, events: Sequence[Event], state: State) -> EngineResult:
        result = EngineResult()
        self._prefetch(events, state, result)
        ctx = Context(state=state, intel=self.intel, settings=self.settings)
        by_kind = self.by_kind
        matches = result.matches
        for event in events:
            dets = by_kind.get(event.kind)
            if not dets:
                continue
            for d in dets:
                try:
                    if d.match(event, ctx):
                        matches.append(Match(d, event))
                except Exception as exc:  # error isolation: one bad rule never sinks a batch
                    result.errors.append(DetectionError(d.meta.type, event.kind, repr(exc)))
        return result

    def _prefetch(self, events: Sequence[Event], state: State, result: EngineResult) -> None:
        stateful = self._stateful_by_kind
        if not any(stateful.values()):
            return
        keys: set[str] = set()
        for event in events:
            for d in stateful.get(event.kind, ()):
                try:
                    keys.update(d.state_keys(event))
                except Exception as exc:
                    result.errors.append(DetectionError(d.meta.type, event.kind, f"state_keys: {exc!r}"))
        if keys:
            state.load(keys)
