"""IngestFunction on moto: every agent event counts exactly once, however its record arrives.

GIVEN recorded batches delivered the ways Kinesis, Lambda and the agent really deliver them (out
of order, split in halves, again after a crash half-way, re-sent, concurrently written), WHEN the
handler runs, THEN finding counts and detection state are those of one clean delivery, no
DynamoDB write is spent per Kinesis record, and dead letters are bounded and never duplicated.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from handler_harness import EVENTS, Aws, context, kinesis_event_for

from vigil import wire
from vigil_aws import clients

pytestmark = pytest.mark.integration  # moto

WEB = "i-0a1b2c3d4e5f60001"
WORKER = "i-0a1b2c3d4e5f60002"
REVERSE_SHELL = "Execution:Runtime/ReverseShell"


def _events(name: str) -> list[wire.WireEvent]:
    events, errors = wire.decode_batch((EVENTS / "agent" / name).read_bytes())
    assert not errors
    return events


def _moved(events: list[wire.WireEvent], delta: int) -> list[wire.WireEvent]:
    """The same activity reported later by the same agent: seq and time moved forward."""
    return [msgspec.structs.replace(e, seq=e.seq + delta, time=e.time + delta * 10**9) for e in events]


def _with_header(events: list[wire.WireEvent]) -> bytes:
    """A batch whose first event carries the host block (the agent's batch header)."""
    host = next(e.host for e in _events("reverse_shell.ndjson.gz") if e.host is not None)
    first = msgspec.structs.replace(events[0], host=host)
    return wire.encode_batch([first, *events[1:]])


def _shell_count(aws: Aws) -> int:
    [count] = [f["count"] for f in aws.findings().values() if f["type"] == REVERSE_SHELL]
    return int(count)


def _run(ingest: Any, batches: list[bytes], first_seq: int = 1) -> dict[str, Any]:
    event = kinesis_event_for([(WEB, b) for b in batches], first_seq=first_seq)
    return dict(ingest.handler(event, context("IngestFunction")))


@pytest.fixture
def calls() -> Iterator[Counter[str]]:
    """DynamoDB and SQS calls the handler makes, counted at its clients (botocore events)."""
    seen: Counter[str] = Counter()
    clients.reset()

    def count(event_name: str, **_: Any) -> None:
        seen[event_name.split(".", 1)[1]] += 1

    for service in ("dynamodb", "sqs"):
        clients.client(service).meta.events.register(f"before-call.{service}", count)
    yield seen


def test_two_batches_of_one_host_delivered_newer_first_both_count(aws: Aws, ingest: Any) -> None:
    # GIVEN the same reverse shell reported in two batches of one agent (the second 1000 seqs later)
    early = _events("reverse_shell.ndjson.gz")
    late = _moved(early, 1000)
    # WHEN the newer batch arrives first (the agent's per-record retry can reorder them)
    _run(ingest, [wire.encode_batch(late)])
    _run(ingest, [wire.encode_batch(early)], first_seq=2)
    # THEN both occurrences count
    assert _shell_count(aws) == 2


def test_a_batch_split_in_halves_second_half_first_counts_every_occurrence(aws: Aws, ingest: Any) -> None:
    # GIVEN one batch holding two reverse shells of one host, split in halves between them
    first = _events("reverse_shell.ndjson.gz")
    second = _moved(first, len(first))
    # WHEN the second half is delivered before the first
    _run(ingest, [_with_header(second)])
    _run(ingest, [_with_header(first)], first_seq=2)
    # THEN the finding counts two, and delivering the whole batch again changes nothing
    assert _shell_count(aws) == 2
    _run(ingest, [_with_header(first + second)], first_seq=3)
    assert _shell_count(aws) == 2


def test_a_retry_after_a_crash_half_way_leaves_counts_and_state_unchanged(
    aws: Aws, ingest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch whose findings were written, but whose coverage write failed (a crash half-way)
    batches = [
        wire.encode_batch(_events("reverse_shell.ndjson.gz")),
        (EVENTS / "agent" / "crypto_dns.ndjson.gz").read_bytes(),
    ]
    from vigil_aws.coverage import CoverageStore

    real = CoverageStore.record

    def crash(self: CoverageStore, heartbeats: Any) -> int:
        raise RuntimeError("the container died here")

    monkeypatch.setattr(CoverageStore, "record", crash)
    response = _run(ingest, batches)
    # THEN the records with heartbeats are reported for retry ...
    assert response["batchItemFailures"]
    before = {k: v["count"] for k, v in aws.findings().items()}
    state_before = aws.client("dynamodb").scan(TableName=aws.state_table)["Items"]
    # WHEN the mapping delivers the batch again, to a new container (no cache), and it succeeds
    monkeypatch.setattr(CoverageStore, "record", real)
    ingest.ingestor.findings.forget()
    assert _run(ingest, batches) == {"batchItemFailures": []}
    # THEN counts and state are those of one delivery, and coverage is now recorded
    assert {k: v["count"] for k, v in aws.findings().items()} == before
    assert all(c == 1 for c in before.values())
    assert aws.client("dynamodb").scan(TableName=aws.state_table)["Items"] == state_before
    assert aws.client("dynamodb").scan(TableName=aws.coverage_table)["Count"] >= 1


def test_bisected_and_resent_deliveries_count_once(aws: Aws, ingest: Any) -> None:
    # GIVEN three batches of one host, each with a reverse shell, delivered once
    base = _events("reverse_shell.ndjson.gz")
    batches = [wire.encode_batch(_moved(base, 1000 * k)) for k in range(3)]
    _run(ingest, batches)
    assert _shell_count(aws) == 3
    # WHEN Lambda bisects and retries them, and the agent re-sends the middle one under a new
    # sequence number, to another container each time
    for part, seq in (([batches[0]], 10), (batches[1:], 11), ([batches[1]], 20)):
        ingest.ingestor.findings.forget()
        assert _run(ingest, part, first_seq=seq) == {"batchItemFailures": []}
    # THEN nothing counts twice
    assert _shell_count(aws) == 3


def test_a_finding_written_meanwhile_by_another_writer_is_merged_not_skipped(aws: Aws, ingest: Any) -> None:
    # GIVEN a container that wrote a reverse shell and remembers it ...
    base = _events("reverse_shell.ndjson.gz")
    _run(ingest, [wire.encode_batch(base)])
    # ... while another container (another shard after a reshard) counts a later occurrence
    from vigil.pipeline import Pipeline
    from vigil.state import InMemoryState
    from vigil_aws.findings_store import FindingsStore

    other = FindingsStore(aws.findings_table)
    later = Pipeline.default(account_id="123456789012", region="us-east-1").process_record(
        wire.encode_batch(_moved(base, 1000)), InMemoryState()
    )
    assert other.apply([o for o in later.occurrences if o.finding["type"] == REVERSE_SHELL], 90).applied == 1
    # WHEN the first container sees a third occurrence (its cached revision is now stale)
    _run(ingest, [wire.encode_batch(_moved(base, 2000))], first_seq=2)
    # THEN its conditional write failed, it read the item again and added its occurrence: 3
    assert _shell_count(aws) == 3


def test_no_dynamodb_write_is_spent_per_kinesis_record(aws: Aws, ingest: Any, calls: Counter[str]) -> None:
    # GIVEN 20 records of benign activity from one host (no finding; one heartbeat per record)
    benign = _events("benign.ndjson.gz")
    batches = [wire.encode_batch(_moved(benign, 1000 * k)) for k in range(20)]
    # WHEN one invocation handles them
    assert _run(ingest, batches) == {"batchItemFailures": []}
    # THEN no write goes to the findings or state tables for them, and the coverage of the one
    # host is written once for the invocation, not once per record
    writes = sum(calls[op] for op in ("PutItem", "UpdateItem", "BatchWriteItem"))
    assert writes <= 1, calls


def test_a_dead_letter_send_that_failed_half_way_is_not_duplicated_by_the_retry(
    aws: Aws, ingest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a record with 15 bad lines between good ones, and SQS failing its second batch call
    good = gzip.decompress((EVENTS / "agent" / "crypto_dns.ndjson.gz").read_bytes()).split(b"\n")
    lines = [good[0], *[b'{"kind":"teleport","n":%d}' % i for i in range(15)], *good[1:]]
    record = gzip.compress(b"\n".join(lines))
    sqs = clients.client("sqs")
    real = sqs.send_message_batch
    state = {"calls": 0}

    def flaky(**kwargs: Any) -> Any:
        state["calls"] += 1
        if state["calls"] == 2:
            raise RuntimeError("SQS went away")
        return real(**kwargs)

    monkeypatch.setattr(sqs, "send_message_batch", flaky)
    event = kinesis_event_for([(WORKER, record)])  # signed once: the retry carries the same bytes
    # WHEN the first delivery fails half-way through the dead letters and the retry succeeds
    assert ingest.handler(event, context("IngestFunction"))["batchItemFailures"]
    assert ingest.handler(event, context("IngestFunction")) == {"batchItemFailures": []}
    # THEN each bad line is one dead letter
    letters = aws.drain(aws.dead_letter_url)
    assert sorted(m["line"] for m in letters) == list(range(2, 17)), [
        m["reason"] for m in letters if m["line"] == 0
    ]


def test_a_resent_record_recompressed_into_other_bytes_leaves_its_dead_letters_once(
    aws: Aws, ingest: Any
) -> None:
    # GIVEN a record with two bad lines between good ones, dead-lettered once
    good = gzip.decompress((EVENTS / "agent" / "crypto_dns.ndjson.gz").read_bytes()).split(b"\n")
    body = b"\n".join([good[0], b"{not json", b'{"kind":"teleport"}', *good[1:]])
    first = kinesis_event_for([(WORKER, gzip.compress(body, mtime=1))])
    assert ingest.handler(first, context("IngestFunction")) == {"batchItemFailures": []}
    # WHEN the agent re-sends it, compressed again (other gzip bytes, same events and lines)
    again = kinesis_event_for([(WORKER, gzip.compress(body, compresslevel=1, mtime=2))], first_seq=2)
    assert ingest.handler(again, context("IngestFunction")) == {"batchItemFailures": []}
    # THEN the two bad lines are two dead letters, not four
    assert sorted(m["line"] for m in aws.drain(aws.dead_letter_url)) == [2, 3]


def test_a_flood_of_bad_lines_costs_a_bounded_number_of_dead_letters(aws: Aws, ingest: Any) -> None:
    # GIVEN one record of 5,000 undecodable `{}` lines
    record = gzip.compress(b"{}\n" * 5000)
    # WHEN it is handled
    assert _run(ingest, [record]) == {"batchItemFailures": []}
    # THEN at most 100 dead letters, the last one summing up the rest with counts and samples
    letters = aws.drain(aws.dead_letter_url)
    assert len(letters) <= 100
    listed = [m["line"] for m in letters if m["line"] > 0]
    assert listed == sorted(set(listed))
    summaries = [m["reason"] for m in letters if m["line"] == 0]
    assert summaries and all("more" in r for r in summaries[-1:])


def test_a_finding_dynamodb_refuses_for_its_content_is_dead_lettered_not_retried(
    aws: Aws, ingest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a finding document larger than DynamoDB's 400 KB item (whatever let it through: the
    # store is the last line of defence, behind the wire's bounds)
    pipeline = ingest.ingestor.pipeline
    real = pipeline.process_record

    def oversized(data: bytes, state: Any, **kw: Any) -> Any:
        result = real(data, state, **kw)
        for o in result.occurrences:
            o.finding["description"] = "A" * 450_000
        return result

    monkeypatch.setattr(pipeline, "process_record", oversized)
    # WHEN it is handled
    response = _run(ingest, [wire.encode_batch(_events("reverse_shell.ndjson.gz"))])
    # THEN the record is not retried (it never could succeed), and the reason is a dead letter
    assert response == {"batchItemFailures": []}
    letters = aws.drain(aws.dead_letter_url)
    assert any(m["source"] == "store" and "DynamoDB would refuse it" in m["reason"] for m in letters)
    assert aws.findings() == {}


def test_an_attack_sequence_is_written_when_a_signal_joins_not_by_every_repeat(aws: Aws, ingest: Any) -> None:
    # GIVEN the demo's reverse shell and its next step (credential theft): a sequence forms
    sequence = "AttackSequence:EC2/CompromisedInstanceGroup"
    shell, step = _events("reverse_shell.ndjson.gz"), _events("reverse_shell_next.ndjson.gz")
    _run(ingest, [wire.encode_batch(shell), wire.encode_batch(step)])

    def stored() -> dict[str, Any]:
        [item] = [f for f in aws.findings().values() if f["type"] == sequence]
        return item

    formed = stored()
    signals = len(json.loads(formed["finding"])["service"]["detection"]["sequence"]["signals"])
    assert formed["count"] == signals >= 2
    # WHEN both steps recur later (new events), to this container and then to a new one
    for k, seq in ((1, 2), (2, 3)):
        _run(ingest, [wire.encode_batch(_moved(shell, 1000 * k)), wire.encode_batch(_moved(step, 1000 * k))], seq)
        ingest.ingestor.findings.forget()
    # THEN the steps' own findings count them, but the sequence item was not rewritten (issue 14:
    # it was, by every batch with a signal): same revision, same count
    assert _shell_count(aws) == 3
    assert stored()["rev"] == formed["rev"] and stored()["count"] == formed["count"]


def _run_worker(ingest: Any, record: bytes, first_seq: int = 1) -> dict[str, Any]:
    event = kinesis_event_for([(WORKER, record)], first_seq=first_seq)
    return dict(ingest.handler(event, context("IngestFunction")))


def _finding_of_type(aws: Aws, prefix: str) -> dict[str, Any]:
    [f] = [f for f in aws.findings().values() if f["type"].startswith(prefix)]
    return f


def test_a_query_the_agent_folded_repeats_into_counts_all_of_them_once(aws: Aws, ingest: Any) -> None:
    # GIVEN the miner's batch whose one DNS query (seq 3) stands for 4 more, as the agent folds a
    # busy host's repeated queries (wire ``repeats`` line), and the same 5 queries sent unfolded
    raw = gzip.decompress((EVENTS / "agent" / "crypto_dns.ndjson.gz").read_bytes())
    good = raw.rstrip(b"\n").split(b"\n")
    query = json.loads(good[2])
    last = query["time"] + 4_000_000
    folded = gzip.compress(b"\n".join([*good, b'{"kind":"repeats","of":[[3,4,%d]]}' % last]))
    # WHEN the folded record is delivered, then delivered again (a retry)
    assert _run_worker(ingest, folded) == {"batchItemFailures": []}
    first = _finding_of_type(aws, "CryptoCurrency:Runtime/BitcoinTool.B!DNS")
    assert _run_worker(ingest, folded, 2) == {"batchItemFailures": []}
    # THEN the finding counts the five queries once, last seen at the last of them
    again = _finding_of_type(aws, "CryptoCurrency:Runtime/BitcoinTool.B!DNS")
    assert int(first["count"]) == int(again["count"]) == 5
    assert again["lastSeen"] == first["lastSeen"] > first["firstSeen"]
    # and the same queries sent one line each count the same (a fresh table: another delivery)
    for item in aws.findings():
        aws.client("dynamodb").delete_item(TableName=aws.findings_table, Key={"id": {"S": item}})
    ingest.ingestor.findings.forget()
    repeats = [{**query, "seq": 100 + i, "time": query["time"] + (i + 1) * 1_000_000} for i in range(4)]
    lines = [*good[:3], *(json.dumps(q).encode() for q in repeats), good[3]]
    assert _run_worker(ingest, gzip.compress(b"\n".join(lines)), 3) == {"batchItemFailures": []}
    unfolded = _finding_of_type(aws, "CryptoCurrency:Runtime/BitcoinTool.B!DNS")
    assert int(unfolded["count"]) == 5 and unfolded["lastSeen"] == first["lastSeen"]
