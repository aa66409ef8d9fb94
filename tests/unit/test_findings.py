"""Findings: GuardDuty shape (botocore model), deterministic ids, severity bands, lineage, aggregation."""

from __future__ import annotations

import pytest
from guardduty_shape import validate

from vigil import sample as s
from vigil import severity
from vigil.detection import Context
from vigil.engine import Engine
from vigil.findings import finding_id, occurrences
from vigil.intel.builtin import builtin_intel
from vigil.registry import all_detections
from vigil.state import InMemoryState

ACCOUNT, REGION = "123456789012", "us-east-1"


def _run(events):  # type: ignore[no-untyped-def]
    engine = Engine(all_detections(), intel=builtin_intel())
    state = InMemoryState()
    run = engine.run(events, state)
    return occurrences(
        run.matches, Context(state=state, intel=engine.intel), account_id=ACCOUNT, region=REGION
    )


ALL_FIRING = [(d.meta.type, ex) for d in all_detections() for ex in d.fires]


@pytest.mark.parametrize(("ftype", "ex"), ALL_FIRING, ids=[f"{t}: {e.name}" for t, e in ALL_FIRING])
def test_every_finding_is_valid_against_botocore_finding_shape(ftype, ex) -> None:  # type: ignore[no-untyped-def]
    for o in _run(list(ex.events)):
        assert validate(o.finding) == []


def test_the_validator_rejects_a_broken_finding() -> None:
    o = _run([s.exec_(s.proc("/usr/bin/nmap", "-sS", "198.51.100.0/24"))])[0]
    bad = dict(o.finding, severity="High", bogus=1)
    del bad["arn"]
    errs = validate(bad)
    assert (
        any("severity" in e for e in errs)
        and any("bogus" in e for e in errs)
        and any("missing required arn" in e for e in errs)
    )


def test_ids_are_deterministic_and_32_hex() -> None:
    a = finding_id(ACCOUNT, REGION, "Execution:Runtime/ReverseShell", "i-1", "/bin/bash|198.51.100.7")
    b = finding_id(ACCOUNT, REGION, "Execution:Runtime/ReverseShell", "i-1", "/bin/bash|198.51.100.7")
    c = finding_id(ACCOUNT, REGION, "Execution:Runtime/ReverseShell", "i-2", "/bin/bash|198.51.100.7")
    assert a == b != c and len(a) == 32 and int(a, 16) >= 0


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (1.0, "Low"),
        (3.9, "Low"),
        (4.0, "Medium"),
        (6.9, "Medium"),
        (7.0, "High"),
        (8.9, "High"),
        (9.0, "Critical"),
        (10.0, "Critical"),
    ],
)
def test_severity_bands(value: float, label: str) -> None:
    assert severity.label(value) == label


@pytest.mark.parametrize("value", [0.0, 10.5, -1.0])
def test_severity_outside_range_is_refused(value: float) -> None:
    with pytest.raises(ValueError):
        severity.label(value)


def test_a_batch_aggregates_repeats_into_one_occurrence_with_count_and_seen_range() -> None:
    shell = s.proc(
        "/bin/bash",
        "-i",
        stdin=s.sock("198.51.100.7", 4444),
        stdout=s.sock("198.51.100.7", 4444),
        parent=s.proc("/usr/sbin/nginx", pid=900, uid=33),
    )
    events = [s.exec_(shell, t=0), s.exec_(shell, t=5_000_000_000), s.exec_(shell, t=2_000_000_000)]
    (o,) = _run(events)
    assert o.count == 3 and o.finding["service"]["count"] == 3
    assert o.first_seen_ns == events[0].time and o.last_seen_ns == events[1].time
    assert o.min_seq == min(e.seq for e in events) and o.max_seq == max(e.seq for e in events)
    svc = o.finding["service"]
    assert svc["eventFirstSeen"] < svc["eventLastSeen"]
    lineage = svc["runtimeDetails"]["process"]["lineage"]
    assert [x["executablePath"] for x in lineage] == ["/usr/sbin/nginx"]
    assert svc["runtimeDetails"]["context"] == {"addressFamily": "AF_INET", "ianaProtocolNumber": 6}
    assert (
        o.finding["severity"] == 8.0 and o.finding["resource"]["instanceDetails"]["instanceId"] == s.INSTANCE
    )


def test_dual_use_tool_is_low_and_offensive_tool_is_high() -> None:
    (nmap,) = _run([s.exec_(s.proc("/usr/bin/nmap"))])
    (hydra,) = _run([s.exec_(s.proc("/usr/bin/hydra"))])
    assert severity.label(nmap.finding["severity"]) == "Low"
    assert severity.label(hydra.finding["severity"]) == "High"
    assert hydra.finding["service"]["runtimeDetails"]["context"] == {
        "toolName": "hydra",
        "toolCategory": "BruteForce",
    }


def test_dns_finding_carries_the_dns_action_and_threat_intel_evidence() -> None:
    (o,) = _run([s.dns("pool.supportxmr.com", "198.51.100.50", process=s.proc("/tmp/xmrig"))])
    svc = o.finding["service"]
    assert svc["action"] == {
        "actionType": "DNS_REQUEST",
        "dnsRequestAction": {"domain": "pool.supportxmr.com", "protocol": "UDP", "blocked": False},
    }
    assert svc["evidence"]["threatIntelligenceDetails"][0]["threatListName"] == "VigilBuiltin"
