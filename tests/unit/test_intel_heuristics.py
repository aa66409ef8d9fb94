"""Domain heuristics: registered domain, DGA score, tunnel labels, infrastructure allowlist."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.intel import heuristics as h


@pytest.mark.parametrize(
    ("host", "reg"),
    [
        ("a.b.example.org", "example.org"),
        ("www.bbc.co.uk", "bbc.co.uk"),
        ("bucket.s3.amazonaws.com", "bucket.s3.amazonaws.com"),
        ("x.y.duckdns.org", "y.duckdns.org"),
        ("example.org", "example.org"),
        ("localhost", "localhost"),
    ],
)
def test_registered_domain(host: str, reg: str) -> None:
    assert h.registered_domain(host) == reg


WORDS = ["github", "pythonhosted", "amazonaws", "cloudfront", "debian", "stackoverflow", "letsencrypt", "grafana",
         "kubernetes", "elasticsearch", "readthedocs", "launchdarkly", "crowdstrike", "wikipedia", "microsoft"]  # fmt: skip
DGAS = [
    "wqsgdnrkhq",
    "kqlxtqptsmys",
    "rngdnqvmpmxjoi",
    "1n6xt7y1lg5yfj1t1vh5e1b3x0",
    "a8f3k2j9xq7w",
    "xjwqkzhvbnrtp",
]


@pytest.mark.parametrize("word", WORDS)
def test_word_like_labels_score_low(word: str) -> None:
    assert h.dga_score(word) < 0.5


@pytest.mark.parametrize("label", DGAS)
def test_random_labels_score_high(label: str) -> None:
    assert h.dga_score(label) >= 0.9


def test_short_and_punycode_labels_are_never_scored() -> None:
    assert h.dga_score("xqzk") == 0.0
    assert h.profile("www.xn--85x722f.com").dga == 0.0


def test_tunnel_labels() -> None:
    hexlabel = hashlib.sha256(b"x").hexdigest()[:48]
    assert h.tunnel_label(f"{hexlabel}.t.example.net") == hexlabel
    assert h.tunnel_label("this-is-a-very-long-hostname-for-testing.example-company.com") == ""
    assert h.tunnel_label("short.example.net") == ""


def test_infrastructure_names_are_not_scored() -> None:
    p = h.profile("d3kqzx8v7wjq2hxkcd.cloudfront.net")
    assert p.infra and p.dga == 0.0 and p.tunnel == ""
    assert h.profile("1.0.0.127.in-addr.arpa").infra


def test_crypto_tokens_look_only_at_the_registered_label() -> None:
    assert h.crypto_token("xmr-proxy.net") == "xmr"
    assert h.crypto_token("getmonero.org") == ""


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_heuristics_are_total(name: str) -> None:
    score = h.dga_score(name)
    assert 0.0 <= score <= 1.0
    p = h.profile(name.lower())
    assert isinstance(p.tunnel, str)
