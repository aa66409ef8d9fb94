"""Threat/trusted list formats: TXT, STIX 2.x (stix2 library), OTX CSV; errors name the line.

GIVEN list text in each format, WHEN parsed, THEN indicators are normalized and categorized, and a
malformed list raises ListFormatError naming the list and the 1-based line.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil import intel as ti
from vigil.intel.formats import (
    ListFormatError,
    category_from_text,
    category_of,
    classify,
    format_from_key,
    parse_list,
    parse_otx_csv,
    parse_stix,
    parse_txt,
)

SHA = "aa" * 32


def test_txt_entries_are_normalized_and_comments_ignored() -> None:
    text = "# my list\n198.51.100.1\n\n203.0.113.0/24  # a range\n*.Evil.Example.\n" + SHA.upper() + "\n"
    got = parse_txt(text, name="L", category=ti.C2)
    assert [(i.value, i.category) for i in got.indicators] == [
        ("198.51.100.1", ti.C2),
        ("203.0.113.0/24", ti.C2),
        ("evil.example", ti.C2),
        (SHA, ti.MALWARE),
    ]
    assert all(i.custom and i.list_name == "L" for i in got.indicators)


@pytest.mark.parametrize(
    ("text", "line"), [("198.51.100.1\n1.2.3\n", 2), ("ok.example\n\n\nnot a domain!\n", 4)]
)
def test_txt_error_names_the_line(text: str, line: int) -> None:
    with pytest.raises(ListFormatError) as err:
        parse_txt(text, name="bad.txt")
    assert err.value.line == line and f"bad.txt:{line}:" in str(err.value)


def _bundle(*indicators: dict[str, object]) -> str:
    objs = []
    for n, ind in enumerate(indicators):
        objs.append(
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": f"indicator--00000000-0000-4000-8000-{n:012d}",
                "created": "2025-01-01T00:00:00.000Z",
                "modified": "2025-01-01T00:00:00.000Z",
                "valid_from": "2025-01-01T00:00:00Z",
                "pattern_type": "stix",
                **ind,
            }
        )
    objs.append({"type": "identity", "spec_version": "2.1", "id": "identity--00000000-0000-4000-8000-000000000999",
                 "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z", "name": "feed"})  # fmt: skip
    return json.dumps(
        {"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": objs}, indent=2
    )


def test_stix_bundle_yields_ips_domains_url_hosts_and_hashes_with_categories() -> None:
    text = _bundle(
        {"pattern": "[ipv4-addr:value = '198.51.100.7'] OR [ipv4-addr:value ISSUBSET '203.0.113.0/28']",
         "indicator_types": ["malicious-activity"], "name": "botnet c2"},
        {"pattern": "[domain-name:value = 'pool.minerxample.net']", "name": "Monero mining pool"},
        {"pattern": "[url:value = 'http://phish.example.net/login']", "labels": ["phishing"]},
        {"pattern": f"[file:hashes.'SHA-256' = '{SHA}']"},
        {"pattern": "[email-addr:value = 'a@example.net']"},
    )  # fmt: skip
    got = parse_stix(text, name="feed.json", category=ti.DROP_POINT)
    assert {(i.value, i.category) for i in got.indicators} == {
        ("198.51.100.7", ti.C2),
        ("203.0.113.0/28", ti.C2),
        ("pool.minerxample.net", ti.CRYPTO),
        ("phish.example.net", ti.PHISHING),
        (SHA, ti.MALWARE),
    }
    assert got.skipped == 1


def test_stix_bad_pattern_names_the_line_of_the_indicator() -> None:
    text = _bundle({"pattern": "[ipv4-addr:value = '198.51.100.7']"}, {"pattern": "[ipv4-addr:value = "})
    with pytest.raises(ListFormatError) as err:
        parse_stix(text, name="feed.json")
    assert (
        err.value.line
        == text.splitlines().index('      "id": "indicator--00000000-0000-4000-8000-000000000001",') + 1
    )


def test_stix_invalid_json_names_the_line() -> None:
    with pytest.raises(ListFormatError) as err:
        parse_stix('{"type": "bundle",\n "objects": [\n  {oops}\n]}', name="feed.json")
    assert err.value.line == 3


def test_otx_csv() -> None:
    text = (
        "Indicator type,Indicator,Description\n"
        "IPv4,198.51.100.9,Tor exit node\n"
        "domain,c2.example.net,\n"
        "hostname,mine.example.net,XMRig mining pool\n"
        "URL,https://drop.example.net/up,exfil drop point\n"
        f"FileHash-SHA256,{SHA},dropper\n"
        "FileHash-MD5,d41d8cd98f00b204e9800998ecf8427e,\n"
        "CIDR,203.0.113.0/24,botnet\n"
    )
    got = parse_otx_csv(text, name="pulse.csv", category=ti.C2)
    assert [(i.value, i.category) for i in got.indicators] == [
        ("198.51.100.9", ti.TOR),
        ("c2.example.net", ti.C2),
        ("mine.example.net", ti.CRYPTO),
        ("drop.example.net", ti.DROP_POINT),
        (SHA, ti.MALWARE),
        ("203.0.113.0/24", ti.C2),
    ]
    assert got.skipped == 1


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("IPv4,not-an-ip,", "not a valid IP"),
        ("Mystery,x,", "unknown OTX indicator type"),
        ("IPv4", "expected"),
    ],
)
def test_otx_csv_errors_name_the_line(row: str, reason: str) -> None:
    with pytest.raises(ListFormatError) as err:
        parse_otx_csv(f"Indicator type,Indicator,Description\nIPv4,198.51.100.9,\n{row}\n", name="p.csv")
    assert err.value.line == 3 and reason in str(err.value)


def test_parse_list_dispatches_and_checks_size_encoding_and_format() -> None:
    assert parse_list(b"198.51.100.1\n", "txt", name="a").values() == ["198.51.100.1"]
    assert format_from_key("lists/c2.stix.json") == "STIX" and format_from_key("x.csv") == "OTX_CSV"
    with pytest.raises(ListFormatError, match="unsupported format"):
        parse_list(b"", "PROOF_POINT", name="p")
    with pytest.raises(ListFormatError, match="not UTF-8") as err:
        parse_list(b"198.51.100.1\n\xff\xfe\n", "TXT", name="p")
    assert err.value.line == 2


def test_categories() -> None:
    assert category_of("c2") == ti.C2 == category_of("C&C")
    assert category_of("CryptoCurrency") == ti.CRYPTO
    with pytest.raises(ValueError):
        category_of("nonsense")
    assert category_from_text("Known C2 server") == ti.C2
    assert category_from_text("abc2def") == ""  # short tokens must stand alone
    assert classify("2001:db8::1") == "ip"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parsers_never_raise_anything_but_list_format_error(text: str) -> None:
    for fmt in ("TXT", "STIX", "OTX_CSV"):
        with contextlib.suppress(ListFormatError):
            parse_list(text, fmt, name="fuzz")
