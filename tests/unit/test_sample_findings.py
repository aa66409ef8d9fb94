"""Sample findings (GuardDuty's CreateSampleFindings): one per type, marked, re-identified.

GIVEN every registered detection, WHEN samples are built for an account and a time, THEN there is
exactly one per type, each marked ``sample: true`` with a ``[SAMPLE]`` title, seen at that time,
with an id no real finding of the same instance can have, and never identity-verified.
"""

from __future__ import annotations

import json

from guardduty_shape import validate

from vigil.findings import finding_id
from vigil.registry import all_detections
from vigil.sample_findings import is_sample, sample_findings

NOW = 1_780_000_000_000_000_000


def test_one_marked_sample_per_type() -> None:
    dets = all_detections()
    samples = sample_findings(dets, account_id="111122223333", region="eu-west-1", now_ns=NOW)
    types = [s.finding["type"] for s in samples]
    assert sorted(types) == sorted(d.meta.type for d in dets)
    for s in samples:
        doc = s.finding
        assert is_sample(doc)
        assert doc["title"].startswith("[SAMPLE] ")
        assert doc["accountId"] == "111122223333"
        assert doc["service"]["eventFirstSeen"] == doc["createdAt"] == "2026-05-28T20:26:40.000Z"
        info = json.loads(doc["service"]["additionalInfo"]["value"])
        assert info["identityVerified"] is False  # triage never acts on a sample
        real = finding_id("111122223333", "eu-west-1", doc["type"], s.instance_id, "")
        assert doc["id"] != real and doc["arn"].endswith("/finding/" + doc["id"])
        assert validate(doc) == []
    assert len({s.id for s in samples}) == len(samples)


def test_is_sample_wants_a_json_true() -> None:
    base = {"service": {"additionalInfo": {"value": json.dumps({"sample": "true"})}}}
    assert not is_sample(base)
    assert not is_sample({"service": {"additionalInfo": {"value": "{not json"}}})
    assert not is_sample({})
    assert is_sample({"service": {"additionalInfo": {"value": '{"sample":true}'}}})
