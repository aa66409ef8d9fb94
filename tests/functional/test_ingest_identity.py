"""IngestFunction in-process on moto: a record speaks only for the instance that signed it.

GIVEN batches signed by the test identity authority (the offline stack's stand-in for AWS), WHEN
an agent on instance A sends events claiming instance B (a forged host block, an unsigned header,
a header signed by an untrusted key, B's signed header under A's partition key), THEN nothing is
stored for B: no finding (so nothing is published and Triage never runs: no isolation), no
coverage row; every rejection is a dead letter with its reason and counts in the
``identity_rejected`` metric; A's own events next to them still count.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from handler_harness import ACCOUNT, Aws, context, ingest_env, kinesis_event_for, load_handler

from local.identity import TestIdentityAuthority, test_authority
from vigil import sample as s
from vigil import wire
from vigil_aws.settings import SettingsError

pytestmark = pytest.mark.integration  # moto

A = "i-0aaaaaaaaaaaaaaa1"
B = "i-0bbbbbbbbbbbbbbb2"
REVERSE_SHELL = "Execution:Runtime/ReverseShell"


def host(instance: str) -> wire.Host:
    return wire.Host(instance_id=instance, account_id=ACCOUNT, region="us-east-1", hostname="h")


def reverse_shell(seq: int, h: wire.Host | None = None) -> wire.ProcessExec:
    sock = s.sock("198.51.100.7", 4444)
    p = s.proc("/usr/bin/bash", "-i", pid=5000 + seq, stdin=sock, stdout=sock, stderr=sock)
    return wire.ProcessExec(time=s.T0 + seq, seq=seq, process=p, host=h)


def heartbeat(seq: int, h: wire.Host | None = None) -> wire.Heartbeat:
    return wire.Heartbeat(time=s.T0 + seq, seq=seq, agent_version="0.1.0", host=h)


def batch(events: list[wire.WireEvent]) -> bytes:
    return wire.encode_batch(events)


def coverage_rows(aws: Aws) -> dict[str, dict[str, Any]]:
    items = aws.client("dynamodb").scan(TableName=aws.coverage_table, ConsistentRead=True)["Items"]
    return {i["instanceId"]["S"]: i for i in items if "usageOf" not in i}  # usage items: vigil usage


def instances_with_findings(aws: Aws) -> set[str]:
    return {f["instanceId"] for f in aws.findings().values()}


def test_a_forged_host_block_for_another_instance_produces_no_finding_coverage_or_isolation(
    aws: Aws, ingest: Any
) -> None:
    # GIVEN the agent on A (A's signed header, partition key A) whose batch carries A's heartbeat,
    # then a host block claiming B with a reverse shell and a heartbeat "from B"
    signed_a = test_authority().sign_host(host(A))
    forged_mid_batch = batch([heartbeat(1, signed_a), reverse_shell(2, host(B)), heartbeat(3)])
    # AND records that claim B outright: unsigned, signed by a stranger's key, and A's header
    # (genuine) relabelled as B under partition key B
    unsigned_b = batch([reverse_shell(4, host(B)), heartbeat(5)])
    stranger_b = batch([reverse_shell(6, TestIdentityAuthority.generate("attacker").sign_host(host(B)))])
    relabelled = batch([reverse_shell(7, msgspec.structs.replace(host(B), identity=signed_a.identity))])
    event = kinesis_event_for(
        [(A, forged_mid_batch), (B, unsigned_b), (B, stranger_b), (B, relabelled)], sign=False
    )
    # WHEN IngestFunction handles them
    response = ingest.handler(event, context("IngestFunction"))
    # THEN every record is handled (rejections are not retried) ...
    assert response == {"batchItemFailures": []}
    # ... there is no finding for B (nothing to publish, so Triage never runs: no isolation) ...
    assert B not in instances_with_findings(aws)
    assert aws.findings() == {}
    # ... and no coverage row for B; A's row exists (its own heartbeat) and notes the problem
    rows = coverage_rows(aws)
    assert set(rows) == {A}
    assert B in rows[A]["identityProblem"]["S"]
    # AND each rejection is a dead letter with its reason
    letters = aws.drain(aws.dead_letter_url)
    by_key: dict[str, list[str]] = {}
    for m in letters:
        by_key.setdefault(m["partitionKey"], []).append(m["reason"])
    assert len(by_key[A]) == 2 and all("identity" in r for r in by_key[A])  # lines 2 and 3
    assert sorted(by_key[B]) == sorted(
        [
            f"identity: the batch header of '{B}' carries no signed instance identity",
            "identity: identity document signature does not verify with any trusted certificate",
            f"identity: partition key '{B}' is not the verified instance {A}",
        ]
    )
    # AND the metric counts them: 2 events + 3 records
    assert ingest.ingestor.totals["identity_rejected"] == 5


def test_a_signed_batch_counts_for_its_instance_with_identity_verified(aws: Aws, ingest: Any) -> None:
    # GIVEN A's agent reports a reverse shell under A's signed header
    data = batch([reverse_shell(1, host(A)), heartbeat(2)])
    # WHEN handled (kinesis_event_for signs the header for A, as A's agent does)
    assert ingest.handler(kinesis_event_for([(A, data)]), context("IngestFunction")) == {
        "batchItemFailures": []
    }
    # THEN the finding is A's and says its identity was verified; coverage has A, no problem noted
    (finding,) = aws.findings().values()
    assert finding["instanceId"] == A and finding["type"] == REVERSE_SHELL
    doc = json.loads(finding["finding"])
    assert json.loads(doc["service"]["additionalInfo"]["value"])["identityVerified"] is True
    assert "identityProblem" not in coverage_rows(aws)[A]
    assert aws.drain(aws.dead_letter_url) == []
    assert ingest.ingestor.totals["identity_rejected"] == 0


def test_an_unsigned_record_never_creates_coverage_even_for_its_own_key(aws: Aws, ingest: Any) -> None:
    # GIVEN an agent with no identity (no IMDS): its batches are unsigned
    data = batch([heartbeat(1, host(A))])
    # WHEN handled
    ingest.handler(kinesis_event_for([(A, data)], sign=False), context("IngestFunction"))
    # THEN it is rejected whole: no coverage row is created (a claim proves nothing)
    assert coverage_rows(aws) == {}
    (letter,) = aws.drain(aws.dead_letter_url)
    assert letter["line"] == 0 and "no signed instance identity" in letter["reason"]


def test_a_missing_certificate_bundle_fails_the_cold_start_naming_the_parameter(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the template's default path, with no bundle put in the layer
    env = {**ingest_env(aws), "INSTANCE_IDENTITY_CERTIFICATES": "/opt/python/vigil_aws/certs/none.pem"}
    # WHEN the function cold-starts THEN it fails with the parameter's name and what to do
    with pytest.raises(SettingsError, match=r"InstanceIdentityCertificates.*regions-certs"):
        load_handler("ingest_function", env, monkeypatch)
    # AND a bundle that is not PEM fails the same way
    env["INSTANCE_IDENTITY_CERTIFICATES"] = (
        "-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----"
    )
    with pytest.raises(SettingsError, match="InstanceIdentityCertificates"):
        load_handler("ingest_function", env, monkeypatch)
