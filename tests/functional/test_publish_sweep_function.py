"""PublishSweepFunction in-process on moto, driven together with PublishFunction on one clock.

GIVEN findings written by the real store and published by the stream path, WHEN updates arrive
inside the publishing period (FIFTEEN_MINUTES here) and the scheduled sweep runs, THEN each held
back update is published by the first sweep after its period, exactly once, never for an archived
finding, and never a second time when the stream path and the sweep race (the shared claim).
"""

from __future__ import annotations

import dataclasses
import time
from types import ModuleType
from typing import Any

import pytest
from handler_harness import EVENTS, Aws, context, load_handler, stream_record

from vigil.pipeline import Pipeline
from vigil.state import InMemoryState
from vigil_aws.findings_store import FindingsStore, iso_before
from vigil_aws.publish import Publication

pytestmark = pytest.mark.integration  # moto

MINUTE = 60


class Clock:
    """The one clock the store, the stream path and the sweep read; tests move it forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Finding:
    """The recorded reverse shell, stored (and updated) through the real FindingsStore."""

    def __init__(self, aws: Aws, clock: Clock, *, suppressed: bool = False) -> None:
        pipeline = Pipeline.default(account_id="123456789012", region="us-east-1", suppress=lambda f: False)
        data = (EVENTS / "agent" / "reverse_shell.ndjson.gz").read_bytes()
        occurrences = pipeline.process_record(data, InMemoryState()).occurrences
        [self.occ] = [o for o in occurrences if o.finding["type"] == "Execution:Runtime/ReverseShell"]
        self.occ = dataclasses.replace(self.occ, suppressed=suppressed)
        self.aws = aws
        self.store = FindingsStore(aws.findings_table, clock=clock)
        self.id = self.occ.id
        self.store.apply([self.occ], retention_days=90)

    def update(self, *, suppressed: bool = False) -> None:
        """Another occurrence from the agent (newer seq), aggregated into the same finding."""
        seq, t = self.occ.max_seq + 1, self.occ.last_seen_ns + 1
        self.occ = dataclasses.replace(
            self.occ, min_seq=seq, max_seq=seq, last_seen_ns=t, sightings=((seq, t),), suppressed=suppressed
        )
        assert self.store.apply([self.occ], retention_days=90).applied == 1

    def item(self) -> dict[str, Any]:
        return self.aws.raw_item(self.id)


ENV = {
    "FINDINGS_TABLE_NAME": "FindingsTable",
    "FINDINGS_BUS_NAME": "vigil-findings",
    "FINDING_PUBLISHING_FREQUENCY": "FIFTEEN_MINUTES",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stream(aws: Aws, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_handler(
        "publish_function", {"POWERTOOLS_SERVICE_NAME": "PublishFunction", **ENV}, monkeypatch
    )
    module.publication = Publication(module.settings, clock=clock)
    return module


@pytest.fixture
def sweep(aws: Aws, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_handler(
        "publish_sweep_function", {"POWERTOOLS_SERVICE_NAME": "PublishSweepFunction", **ENV}, monkeypatch
    )
    module.publication = Publication(module.settings, clock=clock)
    return module


def _stream(
    stream: ModuleType, event_name: str, new: dict[str, Any], old: dict[str, Any] | None = None
) -> None:
    response = stream.handler({"Records": [stream_record(event_name, new, old)]}, context("PublishFunction"))
    assert response == {"batchItemFailures": []}


def _sweep(sweep: ModuleType) -> dict[str, int]:
    return dict(sweep.handler({}, context("PublishSweepFunction")))


def _published(aws: Aws) -> list[tuple[str, int, str]]:
    """(id, service.count, updatedAt) of every event that reached the bus since the last call."""
    return [
        (e["detail"]["id"], e["detail"]["service"]["count"], e["detail"]["updatedAt"])
        for e in aws.drain(aws.bus_tap_url)
    ]


def _published_new(aws: Aws, stream: ModuleType, clock: Clock, **kw: Any) -> Finding:
    """A finding inserted and published at once by the stream path (the bus is drained)."""
    finding = Finding(aws, clock, **kw)
    _stream(stream, "INSERT", finding.item())
    assert [fid for fid, *_ in _published(aws)] == [finding.id]
    return finding


def _held_back_update(aws: Aws, stream: ModuleType, clock: Clock, finding: Finding) -> dict[str, Any]:
    """5 minutes later an update arrives; the stream path holds it back (inside the period)."""
    before = finding.item()
    clock.advance(5 * MINUTE)
    finding.update()
    after = finding.item()
    _stream(stream, "MODIFY", after, before)
    assert _published(aws) == []
    return after


def test_an_update_inside_the_period_is_published_by_the_sweep_once_due(
    aws: Aws, stream: ModuleType, sweep: ModuleType, clock: Clock
) -> None:
    # GIVEN a finding published at t0 and an update at t0+5 min the stream path held back
    finding = _published_new(aws, stream, clock)
    updated = _held_back_update(aws, stream, clock, finding)
    # WHEN the sweep runs at t0+14 min (still inside the 15-minute period)
    clock.advance(9 * MINUTE)
    # THEN nothing is published yet
    assert _sweep(sweep) == {}
    assert _published(aws) == []
    # WHEN the sweep runs at t0+15 min+1 s, and no further update ever arrives
    clock.advance(MINUTE + 1)
    # THEN the held-back update is published, with the aggregate of both occurrences
    assert _sweep(sweep) == {"published_update": 1}
    assert _published(aws) == [(finding.id, 2, updated["updatedAt"]["S"])]
    # AND the next sweeps leave it alone (its last update is published)
    clock.advance(5 * MINUTE)
    assert _sweep(sweep) == {}
    clock.advance(60 * MINUTE)
    assert _sweep(sweep) == {}
    assert _published(aws) == []


def test_a_finding_published_after_its_last_update_is_not_republished(
    aws: Aws, stream: ModuleType, sweep: ModuleType, clock: Clock
) -> None:
    # GIVEN a finding published by the stream path and never updated since
    _published_new(aws, stream, clock)
    # WHEN sweeps run long after the period
    clock.advance(20 * MINUTE)
    _sweep(sweep)
    clock.advance(6 * 3600)
    _sweep(sweep)
    # THEN nothing is published again
    assert _published(aws) == []


def test_an_item_published_before_the_sweep_existed_compares_updated_at_with_last_published_at(
    aws: Aws, stream: ModuleType, sweep: ModuleType, clock: Clock
) -> None:
    # GIVEN a finding marked by the old publisher (lastPublishedAt only, no publishedUpdatedAt)
    legacy = _published_new(aws, stream, clock)
    ddb = aws.client("dynamodb")
    ddb.update_item(
        TableName=aws.findings_table,
        Key={"id": {"S": legacy.id}},
        UpdateExpression="REMOVE publishedUpdatedAt",
    )
    # WHEN the sweep runs after the period, the finding not updated since its publication
    clock.advance(20 * MINUTE)
    # THEN it is not published again
    assert _sweep(sweep) == {}
    # WHEN it is updated later (the stream path is left out, as if its record were lost)
    clock.advance(5 * MINUTE)
    ddb.update_item(
        TableName=aws.findings_table,
        Key={"id": {"S": legacy.id}},
        UpdateExpression="SET updatedAt = :u",
        ExpressionAttributeValues={":u": {"S": iso_before(0, clock)}},
    )
    # WHEN the sweep runs
    clock.advance(MINUTE)
    # THEN the unpublished update is published, once
    assert _sweep(sweep) == {"published_update": 1}
    assert [fid for fid, *_ in _published(aws)] == [legacy.id]
    clock.advance(20 * MINUTE)
    assert _sweep(sweep) == {}
    assert _published(aws) == []


def test_an_archived_finding_is_never_published_by_the_sweep(
    aws: Aws, stream: ModuleType, sweep: ModuleType, clock: Clock
) -> None:
    # GIVEN a finding published at t0, then archived (suppressed) by an update at t0+5 min
    finding = _published_new(aws, stream, clock)
    before = finding.item()
    clock.advance(5 * MINUTE)
    finding.update(suppressed=True)
    assert finding.item()["status"] == {"S": "ARCHIVED"}
    _stream(stream, "MODIFY", finding.item(), before)
    # WHEN sweeps run after the period
    clock.advance(11 * MINUTE)
    _sweep(sweep)
    clock.advance(6 * 3600)
    _sweep(sweep)
    # THEN the archived version never reaches the bus
    assert _published(aws) == []


def test_a_finding_archived_at_insert_is_never_published(
    aws: Aws, stream: ModuleType, sweep: ModuleType, clock: Clock
) -> None:
    # GIVEN a finding suppressed from its first occurrence, updated inside and after the period
    finding = Finding(aws, clock, suppressed=True)
    _stream(stream, "INSERT", finding.item())
    clock.advance(5 * MINUTE)
    finding.update(suppressed=True)
    clock.advance(20 * MINUTE)
    # WHEN the sweep runs
    _sweep(sweep)
    # THEN nothing reaches the bus
    assert _published(aws) == []


def _during_publication(publication: Publication, run: Any) -> list[str]:
    """Make ``publication`` run ``run()`` while its put_events is in flight (after its claim)."""
    calls: list[str] = []
    original = publication.publisher.publish

    def publish(finding: dict[str, Any]) -> None:
        calls.append(finding["id"])
        run()
        original(finding)

    publication.publisher.publish = publish  # type: ignore[method-assign]
    return calls


def test_a_sweep_during_a_stream_publication_does_not_publish_it_again(
    aws: Aws, stream: ModuleType, sweep: ModuleType, clock: Clock
) -> None:
    # GIVEN a held-back update, and at t0+16 min another update the stream path will publish
    finding = _published_new(aws, stream, clock)
    held = _held_back_update(aws, stream, clock, finding)
    clock.advance(11 * MINUTE)
    finding.update()
    latest = finding.item()
    # WHEN the sweep runs while the stream path's put_events is in flight
    swept: list[dict[str, int]] = []
    in_flight = _during_publication(stream.publication, lambda: swept.append(_sweep(sweep)))
    _stream(stream, "MODIFY", latest, held)
    # THEN the finding is published exactly once, by the stream path, and the sweep found it claimed
    assert in_flight == [finding.id]
    assert swept == [{}]
    assert _published(aws) == [(finding.id, 3, latest["updatedAt"]["S"])]
    # AND a later sweep does not publish it again
    clock.advance(20 * MINUTE)
    assert _sweep(sweep) == {}
    assert _published(aws) == []


def test_a_stream_record_during_a_sweep_publication_does_not_publish_it_again(
    aws: Aws, stream: ModuleType, sweep: ModuleType, clock: Clock
) -> None:
    # GIVEN a held-back update that is due at t0+16 min
    finding = _published_new(aws, stream, clock)
    before = finding.item()
    held = _held_back_update(aws, stream, clock, finding)
    clock.advance(11 * MINUTE)
    # WHEN the same MODIFY is redelivered to the stream path while the sweep's put_events is in flight
    in_flight = _during_publication(sweep.publication, lambda: _stream(stream, "MODIFY", held, before))
    assert _sweep(sweep) == {"published_update": 1}
    # THEN the update is published exactly once
    assert in_flight == [finding.id]
    assert _published(aws) == [(finding.id, 2, held["updatedAt"]["S"])]


def test_a_failed_publication_fails_the_sweep_and_the_next_sweep_publishes_it(
    aws: Aws, stream: ModuleType, sweep: ModuleType, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a due held-back update, and EventBridge rejecting the entry
    finding = _published_new(aws, stream, clock)
    held = _held_back_update(aws, stream, clock, finding)
    clock.advance(11 * MINUTE)
    marked = aws.findings()[finding.id]
    from vigil_aws import clients

    monkeypatch.setattr(
        clients.client("events"),
        "put_events",
        lambda **kw: {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}],
        },
    )
    # WHEN the sweep runs
    # THEN the invocation fails (visible as a Lambda error), naming the finding ...
    with pytest.raises(sweep.SweepFailed, match=finding.id):
        _sweep(sweep)
    # ... and the claim is released: the finding is still marked as before
    after = aws.findings()[finding.id]
    assert (after["lastPublishedAt"], after["publishedUpdatedAt"]) == (
        marked["lastPublishedAt"],
        marked["publishedUpdatedAt"],
    )
    # WHEN EventBridge recovers and the next sweep runs
    monkeypatch.undo()
    clock.advance(5 * MINUTE)
    # THEN the update is published
    assert _sweep(sweep) == {"published_update": 1}
    assert _published(aws) == [(finding.id, 2, held["updatedAt"]["S"])]


def test_a_stale_stream_image_is_not_published_over_a_newer_version(
    aws: Aws, stream: ModuleType, sweep: ModuleType, clock: Clock
) -> None:
    # GIVEN a finding whose INSERT record is still in the stream when a second occurrence lands
    finding = Finding(aws, clock)
    inserted = finding.item()
    clock.advance(1)
    finding.update()
    updated = finding.item()
    # WHEN the stream path handles the INSERT, then the MODIFY
    _stream(stream, "INSERT", inserted)
    _stream(stream, "MODIFY", updated, inserted)
    # THEN the bus gets one event, the current version (count 2), not the stale image
    assert _published(aws) == [(finding.id, 2, updated["updatedAt"]["S"])]
    # AND the sweep has nothing left to publish
    clock.advance(20 * MINUTE)
    assert _sweep(sweep) == {}
    assert _published(aws) == []
