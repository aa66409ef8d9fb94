"""IngestFunction in-process on moto: recorded agent batches -> findings, coverage, dead letters.

GIVEN Kinesis events built from the recorded batches in events/, WHEN the handler runs, THEN
the expected findings are aggregated atomically, replays change no count, bad input goes to the
dead-letter queue with its reason without blocking its neighbours, and infrastructure errors are
reported as batch item failures (so the mapping retries them).
"""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from handler_harness import (
    EVENTS,
    Aws,
    context,
    ingest_env,
    kinesis_event,
    kinesis_event_for,
    load_handler,
)

pytestmark = pytest.mark.integration  # moto

WEB = "i-0a1b2c3d4e5f60001"
WORKER = "i-0a1b2c3d4e5f60002"
REVERSE_SHELL = "Execution:Runtime/ReverseShell"
CRYPTO_DNS = "CryptoCurrency:Runtime/BitcoinTool.B!DNS"


def _by_type(aws: Aws) -> dict[str, dict[str, Any]]:
    return {f["type"]: f for f in aws.findings().values()}


def _batch(name: str) -> bytes:
    return (EVENTS / "agent" / name).read_bytes()


def _shifted(name: str, delta: int) -> bytes:
    """The same recorded batch sent later by the same agent: every seq and time moved forward."""
    import msgspec

    from vigil import wire

    events, errors = wire.decode_batch(_batch(name))
    assert not errors
    moved = [msgspec.structs.replace(e, seq=e.seq + delta, time=e.time + delta * 10**9) for e in events]
    return wire.encode_batch(moved)


def test_recorded_batches_become_findings(aws: Aws, ingest: Any) -> None:
    # GIVEN benign activity, a reverse shell and a crypto-pool DNS lookup as one Kinesis event
    event = kinesis_event("kinesis_batches.json")
    # WHEN IngestFunction handles it
    response = ingest.handler(event, context("IngestFunction"))
    # THEN nothing failed, and the two expected findings exist, one occurrence each
    assert response == {"batchItemFailures": []}
    found = _by_type(aws)
    assert {REVERSE_SHELL, CRYPTO_DNS} <= set(found)
    assert found[REVERSE_SHELL]["instanceId"] == WEB and found[REVERSE_SHELL]["count"] == 1
    assert found[CRYPTO_DNS]["instanceId"] == WORKER and found[CRYPTO_DNS]["severityLabel"] == "High"
    assert found[REVERSE_SHELL]["status"] == "ACTIVE"
    # AND the findings expire 90 days after their update (TTL attribute), in epoch seconds
    assert found[REVERSE_SHELL]["expiresAt"] - int(__import__("time").time()) > 89 * 86400
    # AND the agents' heartbeats recorded coverage for both instances
    cov = [
        i for i in aws.client("dynamodb").scan(TableName=aws.coverage_table)["Items"] if "usageOf" not in i
    ]
    assert {i["instanceId"]["S"] for i in cov} == {WEB, WORKER}
    assert all(i["agentVersion"]["S"] == "0.1.0" for i in cov)
    assert aws.drain(aws.dead_letter_url) == []


def test_replaying_the_same_kinesis_batch_leaves_counts_unchanged(aws: Aws, ingest: Any) -> None:
    # GIVEN the recorded batches processed once
    event = kinesis_event("kinesis_batches.json")
    ingest.handler(event, context("IngestFunction"))
    before = {k: v["count"] for k, v in aws.findings().items()}
    # WHEN the mapping delivers the very same batch again (a retry) ...
    assert ingest.handler(event, context("IngestFunction")) == {"batchItemFailures": []}
    # ... and the agent re-sends the same batches under new Kinesis sequence numbers
    resent = kinesis_event_for(
        [(WEB, _batch("reverse_shell.ndjson.gz")), (WORKER, _batch("crypto_dns.ndjson.gz"))], first_seq=50
    )
    assert ingest.handler(resent, context("IngestFunction")) == {"batchItemFailures": []}
    # THEN no count changed
    assert {k: v["count"] for k, v in aws.findings().items()} == before


def test_a_later_batch_with_the_same_activity_adds_to_the_count(aws: Aws, ingest: Any) -> None:
    # GIVEN a reverse shell counted once
    ingest.handler(kinesis_event_for([(WEB, _batch("reverse_shell.ndjson.gz"))]), context("IngestFunction"))
    first = _by_type(aws)[REVERSE_SHELL]
    # WHEN the agent later reports the same reverse shell again (newer seqs)
    later = kinesis_event_for([(WEB, _shifted("reverse_shell.ndjson.gz", 1000))], first_seq=2)
    ingest.handler(later, context("IngestFunction"))
    # THEN the one finding now counts two, keeps its first sighting and moves its last one
    again = _by_type(aws)[REVERSE_SHELL]
    assert again["count"] == 2
    assert again["firstSeen"] == first["firstSeen"] and again["createdAt"] == first["createdAt"]
    assert again["lastSeen"] > first["lastSeen"]


def test_bad_input_goes_to_the_dead_letter_queue_and_never_blocks_good_neighbours(
    aws: Aws, ingest: Any
) -> None:
    # GIVEN a batch with bad lines, a record that is not a batch at all, and a good record after them
    malformed = kinesis_event("kinesis_malformed.json")
    good = kinesis_event_for([(WORKER, _batch("crypto_dns.ndjson.gz"))], first_seq=9)
    event = {"Records": malformed["Records"] + good["Records"]}
    # WHEN the handler runs
    response = ingest.handler(event, context("IngestFunction"))
    # THEN every record counts as handled (poison is never retried) ...
    assert response == {"batchItemFailures": []}
    # ... the good record's finding exists ...
    assert CRYPTO_DNS in _by_type(aws)
    # ... and each bad line / bad record is a dead letter with its reason and where it came from
    letters = aws.drain(aws.dead_letter_url)
    first_seq = malformed["Records"][0]["kinesis"]["sequenceNumber"]
    garbage_seq = malformed["Records"][1]["kinesis"]["sequenceNumber"]
    lines = sorted((m["sequenceNumber"], m["line"]) for m in letters)
    assert lines == [(first_seq, 2), (first_seq, 3), (garbage_seq, 0)]
    reasons = {(m["sequenceNumber"], m["line"]): m["reason"] for m in letters}
    assert "truncated" in reasons[(first_seq, 2)]
    assert "teleport" in reasons[(first_seq, 3)]
    assert "gzip" in reasons[(garbage_seq, 0)]
    assert all(
        m["partitionKey"] == WEB and m["eventSourceARN"].startswith("arn:aws:kinesis") for m in letters
    )


def test_an_unavailable_table_fails_the_record_so_the_mapping_retries_it(aws: Aws, ingest: Any) -> None:
    # GIVEN the findings table is gone (an infrastructure failure, not bad input)
    aws.client("dynamodb").delete_table(TableName=aws.findings_table)
    event = kinesis_event("kinesis_batches.json")
    # WHEN the handler runs
    response = ingest.handler(event, context("IngestFunction"))
    # THEN the records with findings are reported as failures (benign has no finding: it succeeds)
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert failed == {seqs[1], seqs[2]}
    # AND nothing went to the dead-letter queue: a retry can still succeed
    assert aws.drain(aws.dead_letter_url) == []


def test_benign_activity_raises_no_finding(aws: Aws, ingest: Any) -> None:
    # GIVEN only the recorded benign batch (logins, ls, systemctl, nginx traffic)
    ingest.handler(kinesis_event_for([(WEB, _batch("benign.ndjson.gz"))]), context("IngestFunction"))
    # THEN no finding, but the heartbeat still counts for coverage
    assert aws.findings() == {}
    items = aws.client("dynamodb").scan(TableName=aws.coverage_table)["Items"]
    assert [i["instanceId"]["S"] for i in items if "usageOf" not in i] == [WEB]


def test_plain_ndjson_records_are_accepted(aws: Aws, ingest: Any) -> None:
    # GIVEN an uncompressed batch (what `vigil replay` and tests send)
    plain = gzip.decompress(_batch("reverse_shell.ndjson.gz"))
    # WHEN handled
    ingest.handler(kinesis_event_for([(WEB, plain)]), context("IngestFunction"))
    # THEN it is detected like the gzip one
    assert REVERSE_SHELL in _by_type(aws)


def test_a_threat_list_in_s3_turns_a_dns_lookup_into_a_finding(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a C&C domain list registered through the stack's ThreatListUris (env VIGIL_THREAT_LISTS)
    from vigil import sample as s
    from vigil import wire

    s3 = aws.client("s3")
    s3.create_bucket(Bucket="vigil-lists")
    s3.put_object(Bucket="vigil-lists", Key="c2.txt", Body=b"# our C2 list\nevil-c2.example.net\n")
    handler = load_handler(
        "ingest_function", {**ingest_env(aws), "VIGIL_THREAT_LISTS": "s3://vigil-lists/c2.txt"}, monkeypatch
    )
    host = wire.Host(instance_id=WEB, account_id="123456789012", region="us-east-1")
    batch = wire.encode_batch(
        [
            wire.DnsQuery(
                time=s.T0, seq=1, host=host, hostname="beacon.evil-c2.example.net", process=s.proc("/tmp/x")
            )
        ]
    )
    # WHEN an agent reports a lookup of a subdomain of it
    response = handler.handler(kinesis_event_for([(WEB, batch)]), context("IngestFunction"))
    # THEN the C&C DNS finding is stored, with the list named in its threat-intel evidence
    assert response == {"batchItemFailures": []}
    found = _by_type(aws)
    assert set(found) == {"Backdoor:Runtime/C&CActivity.B!DNS"}
    import json

    doc = json.loads(found["Backdoor:Runtime/C&CActivity.B!DNS"]["finding"])
    assert doc["service"]["evidence"]["threatIntelligenceDetails"][0]["threatListName"] == "c2.txt"
