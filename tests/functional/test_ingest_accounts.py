"""IngestFunction in-process on moto, multi-account: the administrator counts its member accounts'
instances under their own account, and no one else's.

GIVEN IngestFunction deployed with MemberAccountIds (VIGIL_MEMBER_ACCOUNT_IDS), WHEN a member
account's agent sends a reverse shell and a heartbeat signed for its instance and a stranger
account's agent sends the same, THEN the member's finding, coverage row and usage item carry the
member's account, the stranger's record is one dead letter with its reason (metric
``account_rejected``) and leaves nothing else; a malformed MemberAccountIds fails the cold start.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from handler_harness import ACCOUNT, Aws, context, ingest_env, kinesis_event_for, load_handler

from vigil import sample as s
from vigil import wire
from vigil_aws.settings import SettingsError

pytestmark = pytest.mark.integration  # moto

MEMBER = "111122223333"
STRANGER = "999988887777"
M = "i-0aaaaaaaaaaaaaaa1"
X = "i-0eeeeeeeeeeeeeee9"


def reverse_shell(seq: int, h: wire.Host | None = None) -> wire.ProcessExec:
    sock = s.sock("198.51.100.7", 4444)
    p = s.proc("/usr/bin/bash", "-i", pid=5000 + seq, stdin=sock, stdout=sock, stderr=sock)
    return wire.ProcessExec(time=s.T0 + seq, seq=seq, process=p, host=h)


def heartbeat(seq: int) -> wire.Heartbeat:
    return wire.Heartbeat(time=s.T0 + seq, seq=seq, agent_version="0.1.0", vcpus=2)


def batch(instance: str, account: str) -> bytes:
    h = wire.Host(instance_id=instance, account_id=account, region="us-east-1", hostname="h")
    return wire.encode_batch([reverse_shell(1, h), heartbeat(2)])


@pytest.fixture
def ingest(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_handler(
        "ingest_function", {**ingest_env(aws), "VIGIL_MEMBER_ACCOUNT_IDS": f" {MEMBER} ,"}, monkeypatch
    )


def test_a_member_accounts_batch_counts_under_the_member_and_a_strangers_is_dead_lettered(
    aws: Aws, ingest: Any
) -> None:
    # kinesis_event_for signs each header for the instance and account it names (the test authority)
    event = kinesis_event_for([(M, batch(M, MEMBER)), (X, batch(X, STRANGER))])
    assert ingest.handler(event, context("IngestFunction")) == {"batchItemFailures": []}
    # THEN the member's finding is the member's, and there is none for the stranger
    (item,) = aws.findings().values()
    doc = json.loads(item["finding"])
    assert item["instanceId"] == M and doc["accountId"] == MEMBER
    assert f":{MEMBER}:detector/" in doc["arn"]
    # AND the member's coverage row and usage item say its account; the stranger has neither
    rows = aws.client("dynamodb").scan(TableName=aws.coverage_table, ConsistentRead=True)["Items"]
    by_key = {r["instanceId"]["S"]: r for r in rows}
    assert by_key[M]["accountId"]["S"] == MEMBER
    usage = [r for r in rows if r.get("usageOf", {}).get("S") == M]
    assert usage and all(u["accountId"]["S"] == MEMBER for u in usage)
    assert not any(X in k for k in by_key)
    # AND the stranger's record is one dead letter with its reason, counted in its own metric
    (letter,) = aws.drain(aws.dead_letter_url)
    assert letter["partitionKey"] == X and letter["line"] == 0
    assert letter["reason"].startswith(f"account: account '{STRANGER}' of the signed instance identity")
    assert ACCOUNT in letter["reason"]
    assert ingest.ingestor.totals["account_rejected"] == 1
    assert ingest.ingestor.totals["identity_rejected"] == 0


def test_the_administrators_own_instances_count_with_members_listed(aws: Aws, ingest: Any) -> None:
    ingest.handler(kinesis_event_for([(M, batch(M, ACCOUNT))]), context("IngestFunction"))
    (item,) = aws.findings().values()
    assert json.loads(item["finding"])["accountId"] == ACCOUNT
    assert aws.drain(aws.dead_letter_url) == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("VIGIL_MEMBER_ACCOUNT_IDS", "1111,2222", "MemberAccountIds"),
        ("VIGIL_ORGANIZATION_ID", "org-1", "OrganizationId"),
    ],
)
def test_a_malformed_multi_account_setting_fails_the_cold_start(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_handler("ingest_function", {**ingest_env(aws), name: value}, monkeypatch)
