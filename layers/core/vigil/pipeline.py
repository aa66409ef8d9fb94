"""The ingest path as one pure function: record bytes -> decode -> normalize -> detect -> occurrences.

Used unchanged by IngestFunction (Lambda), `vigil replay` (no AWS) and `make bench`. No I/O: the
caller passes the State and gets back what to store (occurrences), what to dead-letter
(rejections) and what to count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil import wire
from vigil.detection import Context, Detection
from vigil.engine import DetectionError, Engine
from vigil.events import AgentHealth, Event
from vigil.findings import DEFAULT_DETECTOR_ID, Occurrence, occurrences
from vigil.intel import Intel
from vigil.intel.builtin import builtin_intel
from vigil.normalize.agent import normalize_batch
from vigil.normalize.common import Rejection
from vigil.registry import all_detections
from vigil.state import State

Suppressor = Callable[[dict[str, Any]], bool]


@dataclass(slots=True)
class BatchResult:
    occurrences: list[Occurrence] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    heartbeats: list[AgentHealth] = field(default_factory=list)
    detection_errors: list[DetectionError] = field(default_factory=list)
    events: int = 0
    # instance id -> the (lo, hi) agent seq interval of this record's events: the identity of
    # what the record carries, which the stores keep to recognise it when it comes again
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)

    def extend(self, other: BatchResult) -> None:
        self.occurrences.extend(other.occurrences)
        self.rejected.extend(other.rejected)
        self.heartbeats.extend(other.heartbeats)
        self.detection_errors.extend(other.detection_errors)
        self.events += other.events
        for instance, (lo, hi) in other.ranges.items():
            cur = self.ranges.get(instance)
            self.ranges[instance] = (lo, hi) if cur is None else (min(lo, cur[0]), max(hi, cur[1]))


def seq_ranges(events: Sequence[Event]) -> dict[str, tuple[int, int]]:
    """instance id -> (lowest, highest) seq among ``events``."""
    out: dict[str, tuple[int, int]] = {}
    for e in events:
        instance = e.device.instance_uid
        cur = out.get(instance)
        if cur is None:
            out[instance] = (e.seq, e.seq)
        elif e.seq < cur[0] or e.seq > cur[1]:
            out[instance] = (min(e.seq, cur[0]), max(e.seq, cur[1]))
    return out


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        *,
        account_id: str = "",
        region: str = "",
        detector_id: str = DEFAULT_DETECTOR_ID,
        suppress: Suppressor | None = None,
    ) -> None:
        self.engine = engine
        self.account_id = account_id
        self.region = region
        self.detector_id = detector_id
        self.suppress = suppress

    @classmethod
    def default(
        cls,
        *,
        account_id: str = "",
        region: str = "",
        intel: Intel | None = None,
        detections: Sequence[Detection] | None = None,
        settings: Mapping[str, Any] | None = None,
        disabled: Sequence[str] = (),
        suppress: Suppressor | None = None,
    ) -> Pipeline:
        engine = Engine(
            detections if detections is not None else all_detections(),
            intel=intel if intel is not None else builtin_intel(),
            settings=settings,
            disabled=disabled,
        )
        return cls(engine, account_id=account_id, region=region, suppress=suppress)

    def process_record(self, data: bytes, state: State) -> BatchResult:
        """One Kinesis record (a gzip NDJSON batch, or plain NDJSON)."""
        decoded, line_errors = wire.decode_batch(data)
        result = self.process_events(decoded, state)
        result.rejected[:0] = [Rejection("agent", e.line, e.reason, e.raw) for e in line_errors]
        return result

    def process_events(self, decoded: Sequence[wire.WireEvent], state: State) -> BatchResult:
        events, rejected = normalize_batch(decoded)
        result = self.detect(events, state)
        result.rejected.extend(rejected)
        return result

    def detect(self, events: Sequence[Event], state: State) -> BatchResult:
        result = BatchResult(events=len(events), ranges=seq_ranges(events))
        result.heartbeats = [e for e in events if isinstance(e, AgentHealth)]
        state.begin_record(result.ranges)
        run = self.engine.run(events, state)
        result.detection_errors = run.errors
        if run.matches:
            ctx = Context(state=state, intel=self.engine.intel, settings=self.engine.settings)
            occ = occurrences(
                run.matches, ctx, account_id=self.account_id, region=self.region, detector_id=self.detector_id
            )
            if self.suppress is not None:
                occ = [self._apply_suppression(o) for o in occ]
            result.occurrences = occ
        return result

    def _apply_suppression(self, o: Occurrence) -> Occurrence:
        assert self.suppress is not None
        if not self.suppress(o.finding):
            return o
        o.finding["service"]["archived"] = True
        return dataclasses.replace(o, suppressed=True)
