"""The stored finding document (vigil_aws.findings_store): compressed, read back from every shape.

GIVEN a finding document as the findings store writes it (zlib JSON in a Binary, issue 14), WHEN it
is read back as boto3 returns it, as a Lambda stream event carries it (base64) or as an older item
holds it (JSON text), THEN the same document comes out; a value that is not zlib, not base64 or
that inflates past DynamoDB's item size is a clear error, never a hang or a huge allocation; a
typical finding item is half the WRUs it was.
"""

from __future__ import annotations

import base64
import json
import math
import os
import zlib

import pytest
from boto3.dynamodb.types import Binary

from vigil import sample as s
from vigil.findings import Occurrence
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState
from vigil_aws.findings_store import (
    DOCUMENT_MAX_BYTES,
    DocumentTooLarge,
    StoredDocumentError,
    document,
    encode_document,
    new_item,
    plain,
    raw_document_text,
)

SHELL = s.proc(
    "/bin/bash",
    "-i",
    pid=4000,
    stdin=s.sock("198.51.100.7", 4444),
    stdout=s.sock("198.51.100.7", 4444),
    parent=s.proc("/usr/sbin/nginx", pid=900, uid=33, user="www-data"),
)


def _occurrence() -> Occurrence:
    p = Pipeline.default(account_id="123456789012", region="us-east-1")
    (occ,) = [o for o in p.detect([s.exec_(SHELL)], InMemoryState()).occurrences]
    return occ


def test_every_shape_of_the_stored_document_reads_back_the_same() -> None:
    occ = _occurrence()
    item = new_item(occ, "2026-01-01T00:00:00.000Z", 1_800_000_000)
    raw = item["finding"]["B"]
    assert isinstance(raw, bytes) and raw[:1] == b"\x78"  # zlib
    shapes = {
        "boto3 bytes": {"B": raw},
        "boto3 Binary": {"B": Binary(raw)},
        "stream event base64": {"B": base64.b64encode(raw).decode()},
        "older item, JSON text": {"S": json.dumps(occ.finding)},
    }
    for name, attr in shapes.items():
        assert json.loads(raw_document_text(attr)) == occ.finding, name
        got = document(plain({**item, "finding": attr}))
        assert got["type"] == "Execution:Runtime/ReverseShell" and got["id"] == occ.finding["id"], name


def test_a_typical_finding_item_costs_half_the_write_units() -> None:
    occ = _occurrence()
    item = new_item(occ, "2026-01-01T00:00:00.000Z", 1_800_000_000)

    def size(finding_bytes: int) -> int:
        rest = sum(len(k) + len(next(iter(v.values()))) for k, v in item.items() if k != "finding")
        return rest + len("finding") + finding_bytes

    plain_json = len(json.dumps(occ.finding, separators=(",", ":")).encode())
    compressed = len(item["finding"]["B"])
    assert compressed < plain_json / 2
    assert math.ceil(size(compressed) / 1024) < math.ceil(size(plain_json) / 1024)


@pytest.mark.parametrize(
    ("attr", "why"),
    [
        ({"B": b"not zlib at all"}, "not zlib"),
        ({"B": "%%% not base64 %%%"}, "not base64"),
        ({"B": zlib.compress(b"{}")[:-3]}, "truncated"),
        ({"B": zlib.compress(b" " * (DOCUMENT_MAX_BYTES + 1), 9)}, "inflates past"),
    ],
)
def test_a_stored_value_that_does_not_decode_is_a_clear_error(attr: dict, why: str) -> None:
    with pytest.raises(StoredDocumentError, match=why):
        raw_document_text(attr)
    with pytest.raises(StoredDocumentError, match=why):
        plain({"id": {"S": "x"}, "finding": attr})


def test_a_document_no_item_could_hold_is_refused_before_it_is_compressed() -> None:
    # 450 KB of JSON compresses to a few KB: storing it would make a value no reader may inflate
    with pytest.raises(DocumentTooLarge, match="over DynamoDB's item limit"):
        encode_document({"description": "A" * 450_000})
    assert len(encode_document({"description": base64.b64encode(os.urandom(3000)).decode()})["B"]) > 3000
