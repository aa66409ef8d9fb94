"""The offline stack's stream pollers behave like Lambda's event-source mappings.

GIVEN a mapping configured as template.yaml configures IngestFunction's (partial batch response,
bisect on error, bounded retries, on-failure destination) and a fake function, WHEN batches are
delivered, THEN whole batches arrive, retries resume at the first failed record, a raising batch
is bisected down to its poison record, and exhausted records land in the on-failure queue.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from local.pollers import Poller
from local.runtime import Invocation

STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/telemetry"


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"https://queue/{QueueName}"}

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.sent.append(json.loads(MessageBody))


class FakeFunction:
    """Fails the records whose data is in ``fail`` (``mode``: report them, or raise)."""

    def __init__(self, fail: set[bytes], mode: str) -> None:
        self.fail, self.mode = fail, mode
        self.batches: list[list[bytes]] = []

    def invoke(self, fn: Any, event: dict[str, Any]) -> Invocation:
        data = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
        self.batches.append(data)
        bad = [
            r["kinesis"]["sequenceNumber"]
            for r, d in zip(event["Records"], data, strict=True)
            if d in self.fail
        ]
        if bad and self.mode == "raise":
            return Invocation({"errorMessage": "boom"}, True, "", 1.0)
        return Invocation({"batchItemFailures": [{"itemIdentifier": s} for s in bad]}, False, "", 1.0)


def _poller(function: FakeFunction, sqs: FakeSqs, retries: int = 2) -> Poller:
    esm = {
        "EventSourceArn": STREAM,
        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:IngestFunction",
        "BatchSize": 10,
        "MaximumRetryAttempts": retries,
        "BisectBatchOnFunctionError": True,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {
            "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:IngestFailureQueue"}
        },
    }
    p = Poller(esm, function, {"sqs": sqs}, "123456789012", "us-east-1")  # type: ignore[arg-type]
    p._function = lambda: None  # type: ignore[method-assign]
    return p


def _records(p: Poller, *data: bytes) -> list[dict[str, Any]]:
    return [
        p._kinesis_record("shardId-0", {"PartitionKey": "i-1", "SequenceNumber": f"{n:03d}", "Data": d})
        for n, d in enumerate(data, start=1)
    ]


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("local.pollers.time.sleep", lambda s: None)


def test_a_successful_batch_is_one_invocation() -> None:
    fn, sqs = FakeFunction(set(), "report"), FakeSqs()
    p = _poller(fn, sqs)
    p._deliver("shardId-0", _records(p, b"a", b"b", b"c"))
    assert fn.batches == [[b"a", b"b", b"c"]]
    assert sqs.sent == []


def test_a_partial_failure_is_retried_from_the_first_failed_record() -> None:
    # GIVEN b fails once, then succeeds
    fn, sqs = FakeFunction({b"b"}, "report"), FakeSqs()
    p = _poller(fn, sqs)
    original = fn.invoke

    def once(f: Any, event: dict[str, Any]) -> Invocation:
        inv = original(f, event)
        fn.fail.clear()
        return inv

    fn.invoke = once  # type: ignore[method-assign]
    # WHEN delivered
    p._deliver("shardId-0", _records(p, b"a", b"b", b"c"))
    # THEN the retry starts at b (a is checkpointed), and nothing is given up
    assert fn.batches == [[b"a", b"b", b"c"], [b"b", b"c"]]
    assert sqs.sent == [] and p.stats.retries == 1


def test_a_raising_batch_is_bisected_and_only_the_poison_record_is_given_up() -> None:
    # GIVEN record c makes the function raise, every time
    fn, sqs = FakeFunction({b"c"}, "raise"), FakeSqs()
    p = _poller(fn, sqs, retries=2)
    # WHEN a batch of four is delivered
    p._deliver("shardId-0", _records(p, b"a", b"b", b"c", b"d"))
    # THEN the good records were processed in halves that did not contain c ...
    assert [b"a", b"b"] in fn.batches and [b"d"] in fn.batches
    # ... and only c went to the on-failure destination, with Lambda's batch info
    [msg] = sqs.sent
    info = msg["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("003", "003", 1)
    assert info["streamArn"] == STREAM and msg["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_retries_are_bounded() -> None:
    # GIVEN a record that always fails (reported, not raised)
    fn, sqs = FakeFunction({b"x"}, "report"), FakeSqs()
    p = _poller(fn, sqs, retries=3)
    # WHEN delivered
    p._deliver("shardId-0", _records(p, b"x"))
    # THEN it was tried 1 + 3 times, then handed to the on-failure destination
    assert len(fn.batches) == 4
    assert len(sqs.sent) == 1
