"""Intel lookups: wildcards, CIDRs, trusted wins, caching invalidated by changes, built-in set."""

from __future__ import annotations

from vigil import intel as ti
from vigil.intel import Indicator, Intel
from vigil.intel.builtin import builtin_intel
from vigil.intel.formats import add_trusted, parse_txt, threat_intel


def test_domain_entries_cover_subdomains_and_wildcards() -> None:
    intel = threat_intel([parse_txt("evil.example\n*.bad.example\n", name="L")])
    assert intel.match_domain("evil.example") is not None
    assert intel.match_domain("a.b.evil.example") is not None
    assert intel.match_domain("x.bad.example") is not None
    assert intel.match_domain("notevil.example") is None


def test_trusted_wins_over_threat_for_domains_ips_and_cidrs() -> None:
    intel = threat_intel([parse_txt("evil.example\n198.51.100.7\n203.0.113.0/24\n", name="T")])
    add_trusted(intel, [parse_txt("ok.evil.example\n198.51.100.7\n203.0.113.128/25\n", name="Trusted")])
    assert intel.match_domain("ok.evil.example") is None
    assert intel.match_domain("x.ok.evil.example") is None
    assert intel.match_domain("other.evil.example") is not None
    assert intel.match_ip("198.51.100.7") is None
    assert intel.match_ip("203.0.113.200") is None
    assert intel.match_ip("203.0.113.5") is not None


def test_cached_lookups_are_invalidated_when_lists_change() -> None:
    intel = Intel()
    assert intel.match_domain("late.example") is None
    intel.add(Indicator("late.example", ti.C2, "L"))
    assert intel.match_domain("late.example") is not None
    intel.trust("late.example")
    assert intel.match_domain("late.example") is None


def test_builtin_set_has_categories_and_merges() -> None:
    b = builtin_intel()
    assert b.match_domain("pool.supportxmr.com").indicator.category == ti.CRYPTO  # type: ignore[union-attr]
    assert b.match_domain("x.duckdns.org").indicator.category == ti.ABUSED  # type: ignore[union-attr]
    assert b.match_ip("171.25.193.9").indicator.category == ti.TOR  # type: ignore[union-attr]
    assert not b.match_domain("pool.supportxmr.com").indicator.custom  # type: ignore[union-attr]
    b.merge(threat_intel([parse_txt("c2.example\n", name="Mine")]))
    assert b.match_domain("c2.example").indicator.custom  # type: ignore[union-attr]
