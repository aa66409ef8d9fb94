"""Threat/trusted lists read from S3 (moto): formats, ETag version checks, last-good on errors, trusted wins.

GIVEN lists in an emulated S3 bucket registered as URIs, WHEN the loader builds the Intel, THEN
matches route to the list's category, an unchanged object is not downloaded again, a changed one
is, and a malformed list keeps its last good version with an error naming the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from vigil import intel as ti
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState
from vigil_aws.intel import IntelLoader, ListSpecError, parse_spec, parse_specs

pytestmark = pytest.mark.integration
BUCKET = "vigil-lists"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _stix(domain: str) -> str:
    return json.dumps(
        {
            "type": "bundle",
            "id": "bundle--00000000-0000-4000-8000-000000000000",
            "objects": [
                {
                    "type": "indicator", "spec_version": "2.1", "id": "indicator--00000000-0000-4000-8000-000000000001",
                    "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
                    "valid_from": "2025-01-01T00:00:00Z", "pattern_type": "stix",
                    "pattern": f"[domain-name:value = '{domain}']", "name": "phishing kit",
                }
            ],
        }
    )  # fmt: skip


def test_specs_parse_format_category_owner_and_refuse_bad_uris() -> None:
    spec = parse_spec("s3://b/feeds/otx.csv#category=crypto;owner=111122223333")
    assert (spec.bucket, spec.key, spec.format, spec.category, spec.expected_owner) == (
        "b", "feeds/otx.csv", "OTX_CSV", ti.CRYPTO, "111122223333",
    )  # fmt: skip
    assert parse_spec("s3://b/x.json").format == "STIX" and parse_spec("s3://b/x").format == "TXT"
    assert len(parse_specs(" s3://b/a.txt , s3://b/b.txt ,")) == 2
    for bad in (
        "https://b/x.txt",
        "s3://b",
        "s3://b/x.txt#format=XML",
        "s3://b/x.txt#colour=red",
        "s3://b/x#category=zz",
    ):
        with pytest.raises(ListSpecError):
            parse_spec(bad)


def test_lists_load_route_by_category_and_trusted_wins(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="c2.txt", Body=b"c2.badexample.net\n198.51.100.66\n")
    s3.put_object(
        Bucket=BUCKET,
        Key="pools.csv",
        Body=b"Indicator type,Indicator,Description\nhostname,pool.minerx.example,\n",
    )
    s3.put_object(Bucket=BUCKET, Key="phish.json", Body=_stix("login.phish.example").encode())
    s3.put_object(Bucket=BUCKET, Key="trusted.txt", Body=b"ok.badexample.net\n")
    loader = IntelLoader.from_env(
        {
            "VIGIL_THREAT_LISTS": f"s3://{BUCKET}/c2.txt,s3://{BUCKET}/pools.csv#category=crypto,s3://{BUCKET}/phish.json",
            "VIGIL_TRUSTED_LISTS": f"s3://{BUCKET}/trusted.txt",
        }
    )
    loader.s3 = s3
    intel = loader.intel()
    assert loader.errors == []
    assert intel.match_domain("c2.badexample.net").indicator.category == ti.C2  # type: ignore[union-attr]
    assert intel.match_domain("c2.badexample.net").indicator.list_name == "c2.txt"  # type: ignore[union-attr]
    assert intel.match_domain("pool.minerx.example").indicator.category == ti.CRYPTO  # type: ignore[union-attr]
    assert intel.match_domain("login.phish.example").indicator.category == ti.PHISHING  # type: ignore[union-attr]
    assert intel.match_domain("ok.badexample.net") is None  # trusted wins
    assert intel.match_domain("pool.supportxmr.com") is not None  # the built-in set is still there

    # the handler passes it to the pipeline: a listed lookup becomes a finding naming the list
    pipeline = Pipeline.default(account_id="123456789012", region="us-east-1", intel=intel)
    from vigil import sample as smp

    res = pipeline.detect([smp.dns("c2.badexample.net")], InMemoryState())
    (occ,) = res.occurrences
    assert occ.finding["type"] == "Backdoor:Runtime/C&CActivity.B!DNS"
    assert occ.finding["service"]["evidence"]["threatIntelligenceDetails"][0]["threatListName"] == "c2.txt"


def test_version_checks_download_only_changed_lists(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="c2.txt", Body=b"c2.badexample.net\n")
    clock = Clock()
    loader = IntelLoader(
        threat=parse_specs(f"s3://{BUCKET}/c2.txt"), check_interval_s=300, clock=clock, s3=s3
    )
    first = loader.intel()
    assert loader.loads == 1
    clock.now = 100
    assert loader.intel() is first  # within the interval: no S3 call at all
    clock.now = 400
    assert loader.intel() is first and loader.loads == 1  # ETag unchanged: HeadObject only
    s3.put_object(Bucket=BUCKET, Key="c2.txt", Body=b"c2.badexample.net\nnew.badexample.net\n")
    clock.now = 800
    second = loader.intel()
    assert second is not first and loader.loads == 2
    assert second.match_domain("new.badexample.net") is not None and second.version != first.version


def test_a_malformed_list_keeps_its_last_good_version_and_names_the_line(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="c2.txt", Body=b"c2.badexample.net\n")
    clock = Clock()
    loader = IntelLoader(threat=parse_specs(f"s3://{BUCKET}/c2.txt"), check_interval_s=0, clock=clock, s3=s3)
    assert loader.intel().match_domain("c2.badexample.net") is not None
    s3.put_object(Bucket=BUCKET, Key="c2.txt", Body=b"c2.badexample.net\n999.1.2.3\n")
    clock.now = 1
    intel = loader.intel()
    assert intel.match_domain("c2.badexample.net") is not None
    assert len(loader.errors) == 1 and "c2.txt:2:" in loader.errors[0] and "999.1.2.3" in loader.errors[0]


def test_a_missing_list_is_an_error_not_a_crash(s3: Any) -> None:
    loader = IntelLoader(threat=parse_specs(f"s3://{BUCKET}/absent.txt"), s3=s3)
    intel = loader.intel()
    assert intel.match_domain("pool.supportxmr.com") is not None
    assert loader.errors and "absent.txt" in loader.errors[0]
