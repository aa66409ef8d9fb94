"""Export objects (vigil/export.py): GuardDuty's and Security Lake's S3 layouts, gzip JSON Lines.

GIVEN findings of different days and accounts, THEN each (account, region, day) gets one object
under the layout's key, the body is gzip JSON Lines of exactly those findings, and the same
finding versions always give the same key and bytes (a retried batch overwrites, never adds).
"""

from __future__ import annotations

import gzip
import json

from vigil.export import guardduty_objects, jsonl_gz, security_lake_objects


def _f(fid: str, updated: str, account: str = "111122223333", cmd: str = "x") -> dict:  # type: ignore[type-arg]
    return {
        "id": fid,
        "arn": f"arn:aws:guardduty:eu-west-1:{account}:detector/vigil/finding/{fid}",
        "accountId": account,
        "region": "eu-west-1",
        "type": "Execution:Runtime/ReverseShell",
        "severity": 8.0,
        "title": cmd,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": updated,
        "resource": {"instanceDetails": {"instanceId": "i-1"}},
        "service": {"count": 1},
    }


def test_one_object_per_account_region_and_day_in_guardduty_layout() -> None:
    fs = [
        _f("a" * 32, "2026-03-04T23:59:59.999Z"),
        _f("b" * 32, "2026-03-05T00:00:00.000Z"),
        _f("c" * 32, "2026-03-05T10:00:00.000Z"),
        _f("d" * 32, "2026-03-05T10:00:00.000Z", account="444455556666"),
    ]
    objs = guardduty_objects(fs, prefix="/vigil/")
    keys = [o.key.rsplit("/", 1)[0] for o in objs]
    assert keys == [
        "vigil/AWSLogs/111122223333/GuardDuty/eu-west-1/2026/03/04",
        "vigil/AWSLogs/111122223333/GuardDuty/eu-west-1/2026/03/05",
        "vigil/AWSLogs/444455556666/GuardDuty/eu-west-1/2026/03/05",
    ]
    assert [o.finding_ids for o in objs] == [("a" * 32,), ("b" * 32, "c" * 32), ("d" * 32,)]
    lines = gzip.decompress(objs[1].body).decode().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["b" * 32, "c" * 32]
    assert all(o.key.endswith(".jsonl.gz") for o in objs)
    assert guardduty_objects(fs[:1])[0].key.startswith("AWSLogs/")  # no prefix


def test_same_versions_same_key_and_bytes_a_new_version_a_new_key() -> None:
    f = _f("a" * 32, "2026-03-04T10:00:00.000Z")
    [one], [two] = guardduty_objects([f]), guardduty_objects([dict(f)])
    assert one == two
    [newer] = guardduty_objects([_f("a" * 32, "2026-03-04T11:00:00.000Z")])
    assert newer.key != one.key


def test_security_lake_layout_and_ocsf_lines() -> None:
    [obj] = security_lake_objects([_f("a" * 32, "2026-03-04T10:00:00.000Z")], "vigil")
    assert obj.key.startswith("ext/vigil/region=eu-west-1/accountId=111122223333/eventDay=20260304/")
    assert obj.key.endswith(".jsonl.gz")
    [line] = gzip.decompress(obj.body).decode().splitlines()
    assert json.loads(line)["class_uid"] == 2004


def test_security_lake_objects_take_the_encoder_and_its_extension() -> None:
    seen: list[list[dict]] = []

    def encode(records: list[dict]) -> bytes:
        seen.append(records)
        return b"PAR1"

    findings = [_f("a" * 32, "2026-03-04T10:00:00.000Z"), _f("b" * 32, "2026-03-04T11:00:00.000Z")]
    [obj] = security_lake_objects(findings, "vigil", encode, "parquet")
    assert obj.key.endswith(".parquet") and obj.body == b"PAR1"
    assert [r["class_uid"] for r in seen[0]] == [2004, 2004] and len(obj.finding_ids) == 2


def test_hostile_strings_stay_one_json_line() -> None:
    body = jsonl_gz([_f("a" * 32, "2026-03-04T10:00:00.000Z", cmd='x\n{"id":"forged"}\r\u2028')])
    lines = gzip.decompress(body).decode().splitlines()  # splits on \r and U+2028 too
    assert len(lines) == 1 and json.loads(lines[0])["title"].startswith("x\n")
