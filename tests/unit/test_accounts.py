"""Multi-account ingest (vigil.accounts, Pipeline(accounts=...)): a record counts only for an
account on the administrator's allow-list, judged by its SIGNED instance identity; its findings
belong to that account.

GIVEN an administrator account and its member accounts, WHEN batches signed for instances of a
member, of the administrator and of a stranger account arrive, THEN the member's finding carries
the member's account in its id, ARN and accountId, the stranger's batch is rejected whole with
its reason, and an account the agent merely writes in its host block changes nothing.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

import msgspec
import pytest
from guardduty_shape import validate

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local.identity import TestIdentityAuthority  # noqa: E402
from vigil import wire  # noqa: E402
from vigil.accounts import AccountAllowList, parse_account_ids, parse_organization_id  # noqa: E402
from vigil.identity import IdentityVerifier  # noqa: E402
from vigil.pipeline import Pipeline  # noqa: E402
from vigil.state import InMemoryState  # noqa: E402

ADMIN = "123456789012"
MEMBER = "111122223333"
STRANGER = "999988887777"
M = "i-0aaaaaaaaaaaaaaa1"
T0 = 1_764_000_000_000_000_000


@cache
def authority() -> TestIdentityAuthority:
    return TestIdentityAuthority.generate()


def reverse_shell(seq: int, h: wire.Host | None = None) -> wire.ProcessExec:
    remote = wire.Endpoint(ip="198.51.100.7", port=4444)
    sock = wire.Stdio(type="socket", family="inet", protocol="tcp", remote=remote)
    proc = wire.Process(
        pid=4000 + seq,
        name="bash",
        cmd_line="bash -i",
        file=wire.File(path="/usr/bin/bash", name="bash"),
        user=wire.User(uid=1000),
        uid=f"u-{seq}",
        stdin=sock,
        stdout=sock,
        stderr=sock,
    )
    return wire.ProcessExec(time=T0 + seq, seq=seq, process=proc, host=h)


def signed(account: str, instance: str = M) -> wire.Host:
    return authority().sign_host(wire.Host(instance_id=instance, account_id=account, region="us-east-1"))


def pipeline(members: str = MEMBER) -> Pipeline:
    return Pipeline.default(
        account_id=ADMIN,
        region="us-east-1",
        identity=IdentityVerifier.from_pem(authority().cert_pem),
        accounts=AccountAllowList.parse(ADMIN, members),
    )


def run(h: wire.Host, p: Pipeline | None = None, key: str = M):  # type: ignore[no-untyped-def]
    return (p or pipeline()).process_record(
        wire.encode_batch([reverse_shell(1, h)]), InMemoryState(), partition_key=key
    )


def test_a_member_accounts_finding_belongs_to_the_member() -> None:
    res = run(signed(MEMBER))
    assert res.rejected == [] and res.account_rejected == 0
    (occ,) = res.occurrences
    f = occ.finding
    assert f["accountId"] == MEMBER
    assert f["arn"].startswith(f"arn:aws:guardduty:us-east-1:{MEMBER}:detector/")
    # the id is the member's: the same instance id and type in the administrator is another finding
    assert f["id"] != run(signed(ADMIN)).occurrences[0].finding["id"]
    assert validate(f) == []
    assert json.loads(f["service"]["additionalInfo"]["value"])["identityVerified"] is True


def test_the_administrators_own_instances_still_count() -> None:
    (occ,) = run(signed(ADMIN)).occurrences
    assert occ.finding["accountId"] == ADMIN


def test_a_batch_signed_for_an_unlisted_account_is_rejected_whole_with_its_reason() -> None:
    res = run(signed(STRANGER))
    assert res.occurrences == [] and res.heartbeats == [] and res.account_rejected == 1
    (letter,) = res.rejected
    assert letter.line == 0 and letter.reason.startswith("account: ")
    assert STRANGER in letter.reason and ADMIN in letter.reason and "MemberAccountIds" in letter.reason
    assert res.identity is not None and res.identity.account_id == STRANGER


def test_the_account_the_agent_writes_is_not_what_counts() -> None:
    # GIVEN a stranger's instance whose (signed) document says STRANGER, and whose agent writes
    # the member's account in the host block after signing
    forged = msgspec.structs.replace(signed(STRANGER), account_id=MEMBER)
    # THEN the host block disagrees with the signed document: rejected, never counted as MEMBER
    res = run(forged)
    assert res.occurrences == []
    assert any("claims account" in r.reason or "account" in r.reason for r in res.rejected)
    # and a member's signed header with no account in the host block is still the member's
    blank = msgspec.structs.replace(signed(MEMBER), account_id="")
    (occ,) = run(blank).occurrences
    assert occ.finding["accountId"] == MEMBER


def test_with_no_members_only_the_administrator_counts() -> None:
    p = pipeline(members="")
    assert run(signed(MEMBER), p).account_rejected == 1
    assert run(signed(ADMIN), p).account_rejected == 0


def test_without_an_allow_list_any_verified_account_counts_and_is_named() -> None:
    p = Pipeline.default(
        account_id=ADMIN, region="us-east-1", identity=IdentityVerifier.from_pem(authority().cert_pem)
    )
    (occ,) = run(signed(STRANGER), p).occurrences
    assert occ.finding["accountId"] == STRANGER


def test_without_a_verifier_the_pipelines_account_is_kept() -> None:
    # `vigil replay --account-id`: nothing is proven, the caller's account names the findings
    p = Pipeline.default(account_id=ADMIN, region="us-east-1")
    data = wire.encode_batch([reverse_shell(1, wire.Host(instance_id=M, account_id=MEMBER))])
    (occ,) = p.process_record(data, InMemoryState(), partition_key=M).occurrences
    assert occ.finding["accountId"] == ADMIN


def test_parsing_the_allow_list() -> None:
    assert parse_account_ids(" 111122223333, ,444455556666,111122223333") == ("111122223333", "444455556666")
    for bad in ("12345", "1111222233334", "11112222333x", "*"):
        with pytest.raises(ValueError, match="not an AWS account id"):
            parse_account_ids(bad)
    assert parse_organization_id("") == "" and parse_organization_id("o-abcdefghij") == "o-abcdefghij"
    with pytest.raises(ValueError, match="Organizations id"):
        parse_organization_id("o-ABC")
    allow = AccountAllowList.parse(ADMIN, f"{MEMBER},{ADMIN}", "o-abcdefghij")
    assert allow.members == (MEMBER,) and allow.accounts == {ADMIN, MEMBER}
    assert allow.refusal(MEMBER) is None
    reason = allow.refusal(STRANGER)
    assert reason is not None and "o-abcdefghij" in reason
    with pytest.raises(ValueError):
        AccountAllowList("admin")
