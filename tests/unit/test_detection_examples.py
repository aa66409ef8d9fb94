"""The shared examples test: every example fires exactly the findings it declares (StreamAlert-style).

GIVEN each detection's examples, WHEN all registered detections run over the example's events on a
fresh state, THEN the set of finding types is exactly the detection's own type (+ declared extras)
for a firing example, and only the declared extras for a near miss.
"""

from __future__ import annotations

import pytest

from vigil.detection import Context, Detection, Example
from vigil.engine import Engine
from vigil.findings import occurrences
from vigil.intel.builtin import builtin_intel
from vigil.registry import all_detections
from vigil.state import InMemoryState

DETECTIONS = all_detections()


def _cases() -> list[tuple[str, Detection, Example, bool]]:
    out = []
    for d in DETECTIONS:
        for ex in d.fires:
            out.append((f"{d.meta.type} fires: {ex.name}", d, ex, True))
        for ex in d.near_misses:
            out.append((f"{d.meta.type} near miss: {ex.name}", d, ex, False))
    return out


CASES = _cases()


def fired_types(ex: Example) -> set[str]:
    engine = Engine(DETECTIONS, intel=ex.intel if ex.intel is not None else builtin_intel())
    state = InMemoryState()
    result = engine.run(ex.events, state)
    assert result.errors == [], result.errors
    return {m.detection.meta.type for m in result.matches}


@pytest.mark.parametrize(("case", "det", "ex", "positive"), CASES, ids=[c[0] for c in CASES])
def test_example_fires_exactly_what_it_declares(
    case: str, det: Detection, ex: Example, positive: bool
) -> None:
    expected = set(ex.also_fires) | ({det.meta.type} if positive else set())
    assert fired_types(ex) == expected


@pytest.mark.parametrize(
    ("case", "det", "ex", "positive"), [c for c in CASES if c[3]], ids=[c[0] for c in CASES if c[3]]
)
def test_firing_example_builds_a_finding_with_context(
    case: str, det: Detection, ex: Example, positive: bool
) -> None:
    engine = Engine([det], intel=ex.intel if ex.intel is not None else builtin_intel())
    state = InMemoryState()
    run = engine.run(ex.events, state)
    occ = occurrences(
        run.matches, Context(state=state, intel=engine.intel), account_id="123456789012", region="us-east-1"
    )
    assert occ, "a firing example must produce at least one finding"
    for o in occ:
        assert o.finding["type"] == det.meta.type
        assert o.finding["title"].endswith(f"{ex.events[-1].device.instance_uid}.")
