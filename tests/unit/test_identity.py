"""Authenticated instance identity (vigil.identity, Pipeline(identity=...)): a record speaks only
for the instance whose AWS-signed identity document its batch header carries.

The signer is the offline stack's test authority (local.identity), which signs the way AWS does
(RSA PKCS#1 v1.5 over SHA-256 of the document's bytes); the verifier trusts only its certificate.
"""

from __future__ import annotations

import base64
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
from guardduty_shape import validate
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `local` (the offline stack's test signer) lives at the repo root
    sys.path.insert(0, str(REPO))

from local.identity import TestIdentityAuthority  # noqa: E402
from vigil import wire  # noqa: E402
from vigil.identity import IdentityRejected, IdentityVerifier, VerifiedIdentity, load_certificates  # noqa: E402
from vigil.pipeline import Pipeline  # noqa: E402
from vigil.state import InMemoryState  # noqa: E402

A = "i-0aaaaaaaaaaaaaaa1"
B = "i-0bbbbbbbbbbbbbbb2"
ACCOUNT = "123456789012"
T0 = 1_764_000_000_000_000_000


@cache
def authority() -> TestIdentityAuthority:
    return TestIdentityAuthority.generate()


@cache
def stranger() -> TestIdentityAuthority:
    """Someone else's key: a valid-looking signature that no trusted certificate vouches for."""
    return TestIdentityAuthority.generate("not trusted")


def verifier() -> IdentityVerifier:
    return IdentityVerifier.from_pem(authority().cert_pem)


def host(instance: str, **kw: Any) -> wire.Host:
    return wire.Host(instance_id=instance, account_id=ACCOUNT, region="us-east-1", hostname="web-1", **kw)


def reverse_shell(seq: int, h: wire.Host | None = None) -> wire.ProcessExec:
    """bash -i with its stdin on a TCP socket: Execution:Runtime/ReverseShell."""
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


def heartbeat(seq: int, h: wire.Host | None = None) -> wire.Heartbeat:
    return wire.Heartbeat(time=T0 + seq, seq=seq, agent_version="0.1.0", host=h)


def record(events: list[wire.WireEvent]) -> bytes:
    return wire.encode_batch(events)


def run(data: bytes, key: str | None = A, v: IdentityVerifier | None = None) -> Any:
    pipeline = Pipeline.default(identity=v or verifier())
    return pipeline.process_record(data, InMemoryState(), partition_key=key)


# --- the verifier --------------------------------------------------------------------------


def test_a_document_signed_by_a_trusted_key_verifies_with_its_fields() -> None:
    # GIVEN the identity document of instance A, signed as AWS signs it
    ident = authority().identity(
        A, instance_type="c7g.large", image_id="ami-0123", availability_zone="us-east-1c"
    )
    # WHEN it is verified
    got = verifier().verify(ident.document, ident.signature)
    # THEN the fields are the document's
    assert got == VerifiedIdentity(
        instance_id=A,
        account_id=ACCOUNT,
        region="us-east-1",
        instance_type="c7g.large",
        image_id="ami-0123",
        availability_zone="us-east-1c",
        architecture="x86_64",
        private_ip="10.0.1.23",
        pending_time="2025-11-24T16:00:00Z",
    )


def test_a_tampered_document_is_rejected() -> None:
    # GIVEN A's signed document, edited to say B (same signature)
    ident = authority().identity(A)
    forged = base64.b64decode(ident.document).replace(A.encode(), B.encode())
    # WHEN verified
    got = verifier().verify(base64.b64encode(forged).decode(), ident.signature)
    # THEN the signature does not match the bytes
    assert isinstance(got, IdentityRejected)
    assert "does not verify with any trusted certificate" in got.reason


def test_one_changed_byte_of_whitespace_is_rejected_too() -> None:
    ident = authority().identity(A)
    doc = base64.b64decode(ident.document) + b"\n"
    got = verifier().verify(base64.b64encode(doc).decode(), ident.signature)
    assert isinstance(got, IdentityRejected)


def test_a_signature_by_another_key_is_rejected() -> None:
    # GIVEN a well-formed document signed with a key no trusted certificate holds
    ident = stranger().identity(B)
    # WHEN verified THEN rejected
    got = verifier().verify(ident.document, ident.signature)
    assert isinstance(got, IdentityRejected) and "trusted certificate" in got.reason
    # AND the stranger's own certificate would have accepted it (the test can fail)
    assert isinstance(
        IdentityVerifier.from_pem(stranger().cert_pem).verify(ident.document, ident.signature),
        VerifiedIdentity,
    )


@pytest.mark.parametrize(
    ("document", "signature", "reason"),
    [
        ("", "c2ln", "document is empty"),
        ("not base64!!", "c2ln", "document is not valid base64"),
        ("e30=", "", "signature is empty"),
        ("e30=", "@@@", "signature is not valid base64"),
        ("A" * 8000, "c2ln", "document is larger than"),
        ("e30=", "A" * 4000, "signature is larger than"),
        ("e30=", "c2ln", "does not verify"),
    ],
)
def test_garbage_is_rejected_with_a_reason(document: str, signature: str, reason: str) -> None:
    got = verifier().verify(document, signature)
    assert isinstance(got, IdentityRejected) and reason in got.reason


def test_a_signed_document_without_an_instance_id_is_rejected() -> None:
    # GIVEN a trusted signature over JSON that is not an identity document
    doc = json.dumps({"instanceId": "", "accountId": ACCOUNT, "region": "us-east-1"}).encode()
    sig = authority().sign(doc)
    # THEN it is no identity
    got = verifier().verify_raw(doc, sig)
    assert isinstance(got, IdentityRejected) and "instance_id" in got.reason
    got = verifier().verify_raw(b"[1,2]", authority().sign(b"[1,2]"))
    assert isinstance(got, IdentityRejected) and "not a valid document" in got.reason


def test_each_pair_is_verified_once_then_cached() -> None:
    # GIVEN a verifier and the same header seen in many records
    v = verifier()
    ident = authority().identity(A)
    # WHEN it is verified five times, and a garbage pair twice
    results = [v.verify(ident.document, ident.signature) for _ in range(5)]
    bad = [v.verify("e30=", "c2ln") for _ in range(2)]
    # THEN two signature checks ran, the rest were cache hits with the same answers
    assert (v.misses, v.hits) == (2, 5)
    assert all(r == results[0] for r in results) and isinstance(results[0], VerifiedIdentity)
    assert bad[0] == bad[1] and isinstance(bad[0], IdentityRejected)


def test_the_cache_is_bounded() -> None:
    v = IdentityVerifier.from_pem(authority().cert_pem, cache_size=3)
    for n in range(10):
        v.verify(f"garbage{n}", "c2ln")
    assert len(v._cache) <= 3


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_the_verifier_never_raises(document: str, signature: str) -> None:
    assert isinstance(verifier().verify(document, signature), IdentityRejected)


def test_a_bundle_loads_every_certificate_and_rejects_garbage() -> None:
    bundle = authority().cert_pem + b"\n# a comment between blocks\n" + stranger().cert_pem
    assert len(load_certificates(bundle)) == 2
    with pytest.raises(ValueError, match="no PEM certificate"):
        load_certificates(b"nothing here")
    with pytest.raises(ValueError, match="certificate 1"):
        load_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


# --- the pipeline --------------------------------------------------------------------------


def test_a_signed_batch_of_its_own_instance_produces_a_verified_finding() -> None:
    # GIVEN A's agent sends a reverse shell under A's signed header, partition key A
    data = record([reverse_shell(1, authority().sign_host(host(A))), heartbeat(2)])
    # WHEN ingest processes it
    res = run(data, key=A)
    # THEN the finding is A's, says its identity was verified, and keeps GuardDuty's shape
    assert res.rejected == [] and res.identity_rejected == 0
    assert [o.finding["resource"]["instanceDetails"]["instanceId"] for o in res.occurrences] == [A]
    f = res.occurrences[0].finding
    assert json.loads(f["service"]["additionalInfo"]["value"])["identityVerified"] is True
    assert validate(f) == []
    assert [hb.device.instance_uid for hb in res.heartbeats] == [A]


def test_the_device_comes_from_the_signed_document_not_the_agent() -> None:
    # GIVEN a header whose agent-written type/image/zone disagree with the signed document
    claimed = host(A, instance_type="x1.32xlarge", image_id="ami-lies", availability_zone="us-east-1f")
    signed = msgspec.structs.replace(
        claimed,
        identity=authority().identity(
            A, instance_type="t3.small", image_id="ami-0real", availability_zone="us-east-1b"
        ),
    )
    # WHEN processed
    res = run(record([reverse_shell(1, signed)]))
    # THEN the finding's instance details are the document's
    details = res.occurrences[0].finding["resource"]["instanceDetails"]
    assert (details["instanceType"], details["imageId"], details["availabilityZone"]) == (
        "t3.small",
        "ami-0real",
        "us-east-1b",
    )
    assert res.identity is not None and res.identity.instance_id == A


def test_a_record_without_identity_is_rejected_whole() -> None:
    # GIVEN a batch with a plain (unsigned) header
    data = record([reverse_shell(1, host(A)), heartbeat(2)])
    # WHEN processed with a verifier
    res = run(data)
    # THEN nothing counts: one rejection for the record, with the reason
    assert res.occurrences == [] and res.heartbeats == [] and res.events == 0
    assert len(res.rejected) == 1 and res.rejected[0].line == 0
    assert "carries no signed instance identity" in res.rejected[0].reason
    assert res.identity_rejected == 1 and res.identity_problem


def test_a_record_whose_first_event_has_no_host_is_rejected_whole() -> None:
    res = run(record([reverse_shell(1), heartbeat(2, authority().sign_host(host(A)))]))
    assert res.occurrences == [] and "no host block" in res.rejected[0].reason


def test_a_header_signed_by_an_untrusted_key_is_rejected_whole() -> None:
    data = record([reverse_shell(1, stranger().sign_host(host(A)))])
    res = run(data)
    assert res.occurrences == [] and res.identity_rejected == 1
    assert "does not verify" in res.rejected[0].reason


def test_garbage_identity_is_rejected_whole() -> None:
    h = host(A, identity=wire.Identity(document="%%%", signature="!!!"))
    res = run(record([reverse_shell(1, h)]))
    assert res.occurrences == [] and "not valid base64" in res.rejected[0].reason


def test_another_instances_signed_header_under_my_partition_key_is_rejected() -> None:
    # GIVEN B's genuine signed header (copied from somewhere) sent under partition key A
    data = record([reverse_shell(1, authority().sign_host(host(B)))])
    # WHEN processed THEN rejected whole: the partition key must be the verified instance
    res = run(data, key=A)
    assert res.occurrences == [] and "partition key" in res.rejected[0].reason
    # AND the same record under B's key is B's (the test can fail)
    assert len(run(data, key=B).occurrences) == 1


def test_a_host_block_for_another_instance_mid_batch_is_rejected_per_line() -> None:
    # GIVEN A's signed batch in which line 3 switches the host block to B, and line 5 back to A
    signed = authority().sign_host(host(A))
    data = record(
        [
            heartbeat(1, signed),
            reverse_shell(2),  # A's
            reverse_shell(3, host(B)),  # claims B
            reverse_shell(4),  # inherits B's claim
            reverse_shell(5, host(A)),  # A again
        ]
    )
    # WHEN processed
    res = run(data)
    # THEN lines 3 and 4 are rejected with reasons, the rest count for A only
    assert [r.line for r in res.rejected] == [3, 4]
    assert B in res.rejected[0].reason and "follows a host block" in res.rejected[1].reason
    assert res.identity_rejected == 2 and B in res.identity_problem
    instances = {o.finding["resource"]["instanceDetails"]["instanceId"] for o in res.occurrences}
    assert instances == {A}
    assert sum(o.count for o in res.occurrences) == 2  # seq 2 and 5
    assert res.heartbeats[0].device.instance_uid == A


@pytest.mark.parametrize("field", ["account_id", "region"])
def test_a_host_block_claiming_another_account_or_region_is_rejected(field: str) -> None:
    other = msgspec.structs.replace(
        host(A), **{field: "999999999999" if field == "account_id" else "eu-west-1"}
    )
    data = record([reverse_shell(1, authority().sign_host(host(A))), reverse_shell(2, other)])
    res = run(data)
    assert [r.line for r in res.rejected] == [2] and field.split("_")[0] in res.rejected[0].reason


def test_without_a_verifier_nothing_changes_and_findings_say_unverified() -> None:
    # GIVEN the unsigned batch `vigil replay` and `make bench` process
    data = record([reverse_shell(1, host(A))])
    # WHEN processed without a verifier
    res = Pipeline.default().process_record(data, InMemoryState())
    # THEN the finding exists and says its identity was not verified
    assert len(res.occurrences) == 1 and res.rejected == []
    info = json.loads(res.occurrences[0].finding["service"]["additionalInfo"]["value"])
    assert info["identityVerified"] is False


def test_decode_errors_and_identity_rejections_are_both_reported() -> None:
    # GIVEN a signed plain-NDJSON batch: A's event, an undecodable line, then a line claiming B
    signed = authority().sign_host(host(A))
    plain = wire.encode_batch([reverse_shell(1, signed)], compress=False)
    data = plain + b"{not json\n" + wire.encode_batch([reverse_shell(3, host(B))], compress=False)
    # WHEN processed
    res = run(data)
    # THEN the decode error (by its NDJSON line) and the foreign host block are both rejected
    assert res.rejected[0].line == 2 and "identity" not in res.rejected[0].reason
    assert any(B in r.reason for r in res.rejected[1:])
    # AND A's event still counts
    assert len(res.occurrences) == 1


def test_a_v2_record_whose_header_rides_on_a_proc_line_is_verified() -> None:
    """The agent's native fast path may open a record with a "proc" line (wire v2): the header on
    it is the batch header of the events after it, verified as such, and another instance's
    header there is refused as on an event."""

    def v2(h: wire.Host) -> bytes:
        shell = reverse_shell(1)
        head = b'{"kind":"proc","ref":0,"process":%s,"host":%s}' % (
            msgspec.json.encode(shell.process),
            msgspec.json.encode(h),
        )
        line = b'{"kind":"process_exec","process":0,"time":%d,"seq":1}' % shell.time
        return head + b"\n" + line + b"\n" + msgspec.json.encode(heartbeat(2)) + b"\n"

    res = run(v2(authority().sign_host(host(A))), key=A)
    assert res.rejected == [] and res.identity_rejected == 0
    assert [o.finding["resource"]["instanceDetails"]["instanceId"] for o in res.occurrences] == [A]
    assert [hb.device.instance_uid for hb in res.heartbeats] == [A]
    # the same record signed for A but sent under B's partition key, or with a forged signature
    assert run(v2(authority().sign_host(host(A))), key=B).identity_rejected == 1
    forged = run(v2(stranger().sign_host(host(A))), key=A)
    assert forged.occurrences == [] and forged.identity_rejected == 1
