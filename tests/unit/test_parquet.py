"""vigil_aws.parquet: Security Lake's objects are Parquet files that round-trip every OCSF record
of the detection examples, whatever attackers put in the strings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocsf_shape import validate as validate_ocsf
from test_exports import ALL_FIRING, _enriched, _findings

from vigil.ocsf import to_ocsf
from vigil_aws import parquet


def _all_findings() -> list[dict[str, Any]]:
    out = [f for _, ex in ALL_FIRING for f in _findings(list(ex.events), ex.intel)]
    return out + [_enriched(f) for f in out[:20]]


def test_every_example_finding_round_trips_and_still_validates_against_ocsf() -> None:
    # GIVEN the OCSF records of one finding of every type (different evidences, unmapped contents)
    records = [to_ocsf(f) for f in _all_findings()]
    assert len({r["finding_info"]["types"][0] for r in records}) > 40
    # WHEN they share one Parquet file
    body = parquet.ocsf_parquet(records)
    # THEN it is Parquet, and every record reads back valid, with unmapped values as text
    assert body[:4] == b"PAR1" and body[-4:] == b"PAR1"
    back = parquet.read(body)
    assert len(back) == len(records)
    for got, want in zip(back, records, strict=True):
        assert validate_ocsf(got) == []
        assert got["finding_info"]["uid"] == want["finding_info"]["uid"]
        assert set(got.get("unmapped", {})) == set(want.get("unmapped", {}))
        for k, v in want.get("unmapped", {}).items():
            assert isinstance(got["unmapped"][k], str) and (got["unmapped"][k] == v or not isinstance(v, str))


def test_records_that_disagree_on_a_type_are_refused_with_a_reason() -> None:
    with pytest.raises(parquet.ParquetError, match="Arrow"):
        parquet.ocsf_parquet([{"class_uid": 2004, "x": 1}, {"class_uid": 2004, "x": "one"}])
    with pytest.raises(parquet.ParquetError, match="no records"):
        parquet.ocsf_parquet([])


@settings(max_examples=40, deadline=None)
@given(
    st.text(),
    st.dictionaries(st.text(max_size=8), st.one_of(st.text(), st.integers(-(2**60), 2**60), st.none())),
)
def test_hostile_strings_and_any_unmapped_content_survive(text: str, unmapped: dict[str, Any]) -> None:
    record = {"class_uid": 2004, "message": text, "empty": {}, "unmapped": {"ctx": unmapped, "s": text}}
    [back] = parquet.read(parquet.ocsf_parquet([record]))
    assert back["message"] == text and "empty" not in back
    assert back["unmapped"]["s"] == text
