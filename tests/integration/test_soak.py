"""A tiny `make soak`: two simulated agents, a few seconds of busy traffic, delivery chaos.

GIVEN the offline stack (template.yaml on moto, the real IngestFunction in-process) and two agents
whose every batch carries an attack, delivered with reordering (a batch after its successor), a
batch split in halves sent second half first, re-sent batches, throttled DynamoDB writes and
garbage records between them, WHEN the stream drains, THEN every finding on the agents' instances
counts exactly what the in-order oracle (the pure pipeline, each good event once) counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for _p in (REPO, REPO / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import soak  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def run() -> tuple[soak.Result, list[str]]:
    cfg = soak.Config(
        hosts=2,
        seconds=6,
        seed=13,
        hostile=frozenset({"garbage"}),
        chaos=frozenset(soak.CHAOS),
        attack_share=1.0,  # every batch fires findings, so a dropped batch shows in the counts
        reorder_share=0.5,
        split_share=0.3,
        resend_share=0.5,
        throttle_share=0.3,  # the ingest writes little (one write per finding per invocation): throttle enough of it
        hostile_every=3,
        drain_timeout=180,
        every=5,
        # Lambda's Kinesis default is to retry until the record expires; 20 keeps the throttling
        # from exhausting the retries here (that is bounded retries' job, not this test's).
        stack_parameters={"IngestMaximumRetryAttempts": "20"},
    )
    lines: list[str] = []
    result = soak.Soak(cfg, lines.append).run()
    return result, lines


def test_the_tiny_soak_delivers_with_the_chaos_it_claims(run: tuple[soak.Result, list[str]]) -> None:
    result, lines = run
    log = "\n".join(lines)
    # THEN each kind of chaos happened, attacks fired findings and the throttling was injected
    assert result.chaos["reorder"] >= 1 and result.chaos["split"] >= 1 and result.chaos["resend"] >= 1, log
    assert result.throttled >= 1, log
    assert result.hostile["garbage"] >= 1, log
    assert result.expected_occurrences >= 12, log
    # AND every good event was sent and reached the ingest's pipeline at least once
    assert result.events_sent > 2 * 6 * 800
    assert result.events_applied >= result.events_sent, log
    # AND the garbage was dead-lettered, not dropped silently
    assert result.dead_lettered >= result.hostile["garbage"], log


def test_the_tiny_soak_loses_and_duplicates_nothing(run: tuple[soak.Result, list[str]]) -> None:
    result, lines = run
    # THEN the stored counts equal the in-order oracle's
    assert (result.lost, result.duplicated) == (0, 0), "\n".join(lines)
