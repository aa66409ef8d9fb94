"""PublishFunction in-process on moto: findings-table stream records -> FindingsBus.

GIVEN stream records of real finding items (written by the ingest path), WHEN the handler runs,
THEN new findings are published at once as `source: vigil`, `detail-type: Vigil Finding` with
the GuardDuty-shaped finding as detail (no internal attributes), updates only once per publishing
period, archived findings never, and a failed put_events is retried (claim released).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from guardduty_shape import validate
from handler_harness import EVENTS, Aws, context, stream_record

from vigil.findings import iso
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState
from vigil_aws.findings_store import FindingsStore

pytestmark = pytest.mark.integration  # moto


def _store_reverse_shell(aws: Aws, *, suppressed: bool = False) -> str:
    """Run the recorded reverse shell through the core and the real store; returns the finding id."""
    pipeline = Pipeline.default(
        account_id="123456789012", region="us-east-1", suppress=(lambda f: suppressed)
    )
    data = (EVENTS / "agent" / "reverse_shell.ndjson.gz").read_bytes()
    occurrences = pipeline.process_record(data, InMemoryState()).occurrences
    [shell] = [o for o in occurrences if o.finding["type"] == "Execution:Runtime/ReverseShell"]
    FindingsStore(aws.findings_table).apply([shell], retention_days=90)
    return shell.id


def _set(aws: Aws, finding_id: str, **attrs: str) -> None:
    names = {f"#{k}": k for k in attrs}
    aws.client("dynamodb").update_item(
        TableName=aws.findings_table,
        Key={"id": {"S": finding_id}},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in attrs),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":{k}": {"S": v} for k, v in attrs.items()},
    )


def _ago(seconds: int) -> str:
    return iso(int((time.time() - seconds) * 1e9))


def test_a_new_finding_is_published_at_once(aws: Aws, publish: Any) -> None:
    # GIVEN a finding just inserted by the ingest path
    fid = _store_reverse_shell(aws)
    # WHEN its INSERT stream record reaches PublishFunction
    response = publish.handler(
        {"Records": [stream_record("INSERT", aws.raw_item(fid))]}, context("PublishFunction")
    )
    # THEN one event reached the bus with the Vigil envelope and the finding as detail
    assert response == {"batchItemFailures": []}
    [event] = aws.drain(aws.bus_tap_url)
    assert event["source"] == "vigil" and event["detail-type"] == "Vigil Finding"
    detail = event["detail"]
    assert detail["id"] == fid and detail["type"] == "Execution:Runtime/ReverseShell"
    assert detail["service"]["count"] == 1 and detail["service"]["archived"] is False
    assert event["resources"] == [detail["arn"]]
    # AND the detail is a GuardDuty Finding, with none of the table's bookkeeping in it
    validate(detail)
    assert not {"lastSeq", "expiresAt", "lastPublishedAt", "finding", "status"} & set(detail)
    assert '"lastSeq"' not in json.dumps(detail)
    # AND the publication is recorded
    assert "lastPublishedAt" in aws.findings()[fid]


def test_updates_wait_for_the_publishing_period(aws: Aws, publish: Any) -> None:
    # GIVEN a finding published 5 minutes ago (the period is FIFTEEN_MINUTES)
    fid = _store_reverse_shell(aws)
    old = aws.raw_item(fid)
    _set(aws, fid, lastPublishedAt=_ago(300), updatedAt=_ago(1))
    new = aws.raw_item(fid)
    # WHEN an update arrives
    publish.handler({"Records": [stream_record("MODIFY", new, old)]}, context("PublishFunction"))
    # THEN it is not published yet
    assert aws.drain(aws.bus_tap_url) == []
    # WHEN the last publication is 16 minutes old and another update arrives
    _set(aws, fid, lastPublishedAt=_ago(16 * 60), updatedAt=_ago(0))
    publish.handler(
        {"Records": [stream_record("MODIFY", aws.raw_item(fid), new)]}, context("PublishFunction")
    )
    # THEN the update is published
    assert [e["detail"]["id"] for e in aws.drain(aws.bus_tap_url)] == [fid]


def test_archived_findings_are_never_published(aws: Aws, publish: Any) -> None:
    # GIVEN a finding stored archived (suppressed)
    fid = _store_reverse_shell(aws, suppressed=True)
    # WHEN its INSERT arrives
    publish.handler({"Records": [stream_record("INSERT", aws.raw_item(fid))]}, context("PublishFunction"))
    # THEN nothing reaches the bus
    assert aws.drain(aws.bus_tap_url) == []


def test_the_publishers_own_mark_is_not_an_update(aws: Aws, publish: Any) -> None:
    # GIVEN a finding published once
    fid = _store_reverse_shell(aws)
    inserted = aws.raw_item(fid)
    publish.handler({"Records": [stream_record("INSERT", inserted)]}, context("PublishFunction"))
    aws.drain(aws.bus_tap_url)
    # WHEN the MODIFY caused by writing lastPublishedAt comes back on the stream
    marked = aws.raw_item(fid)
    publish.handler({"Records": [stream_record("MODIFY", marked, inserted)]}, context("PublishFunction"))
    # THEN it is not published again
    assert aws.drain(aws.bus_tap_url) == []


def test_the_same_insert_twice_publishes_once(aws: Aws, publish: Any) -> None:
    # GIVEN one INSERT delivered twice in a batch (a retried batch)
    fid = _store_reverse_shell(aws)
    rec = stream_record("INSERT", aws.raw_item(fid))
    # WHEN handled
    publish.handler({"Records": [rec, dict(rec, eventID="again")]}, context("PublishFunction"))
    # THEN exactly one event reached the bus (the claim is the lock)
    assert len(aws.drain(aws.bus_tap_url)) == 1


def test_a_failed_put_events_releases_the_claim_and_is_retried(
    aws: Aws, publish: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN EventBridge rejects the entry
    fid = _store_reverse_shell(aws)
    record = stream_record("INSERT", aws.raw_item(fid))
    from vigil_aws import clients

    events = clients.client("events")
    monkeypatch.setattr(
        events,
        "put_events",
        lambda **kw: {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}],
        },
    )
    # WHEN the record is handled (alone in its batch)
    # THEN the invocation fails, so the mapping retries the batch (Powertools raises when every
    # record failed) ...
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    with pytest.raises(BatchProcessingError):
        publish.handler({"Records": [record]}, context("PublishFunction"))
    # ... and the finding is not marked as published
    assert "lastPublishedAt" not in aws.findings()[fid]
    # WHEN EventBridge recovers and the mapping retries
    monkeypatch.undo()
    publish.handler({"Records": [record]}, context("PublishFunction"))
    # THEN the finding is published
    assert [e["detail"]["id"] for e in aws.drain(aws.bus_tap_url)] == [fid]
