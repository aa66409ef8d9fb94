"""One finding per indicator (vigil.indicators, wired in Pipeline.detect).

GIVEN a runtime finding already carries a connection or query, WHEN the same indicator arrives
from flow logs or Resolver logs, THEN the EC2 type is waived for a HEALTHY instance and raised
for an UNHEALTHY one or one without an agent.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pytest

from vigil import intel as ti
from vigil import sample as s
from vigil.detections.ec2._common import aws_intel
from vigil.indicators import CARRIES, COUNTERPARTS, indicator
from vigil.pipeline import Pipeline
from vigil.registry import all_detections
from vigil.state import InMemoryState

MIN_NS = 60 * 1_000_000_000
DAY_NS = 86400 * 1_000_000_000
TEST_DOMAIN = "guarddutyc2activityb.com"  # GuardDuty's C&C test domain, a built-in list entry


def healthy_all(ids: Sequence[str]) -> Collection[str]:
    return set(ids)


def healthy_none(ids: Sequence[str]) -> Collection[str]:
    return set()


def types(result) -> list[str]:
    return sorted(o.finding["type"] for o in result.occurrences)


def run(pipeline: Pipeline, state: InMemoryState, *events):
    out = pipeline.detect(list(events), state)
    state.commit()
    return out


def dns_then_resolver(
    healthy, *, agent: bool = True, later_ns: int = 5 * MIN_NS, name: str = TEST_DOMAIN, intel=None
):
    pipeline = Pipeline.default(healthy=healthy, intel=intel)
    state = InMemoryState()
    first = run(pipeline, state, s.dns(TEST_DOMAIN, process=s.proc("/usr/bin/dig"))) if agent else None
    second = run(pipeline, state, s.resolver_query(name, t=later_ns))
    return first, second


def test_a_healthy_instance_gets_the_runtime_finding_only() -> None:
    first, second = dns_then_resolver(healthy_all)
    assert types(first) == ["Backdoor:Runtime/C&CActivity.B!DNS"]
    assert types(second) == []
    assert second.waived == 1


def test_an_unhealthy_instance_keeps_the_ec2_type() -> None:
    first, second = dns_then_resolver(healthy_none)
    assert types(first) == ["Backdoor:Runtime/C&CActivity.B!DNS"]
    assert types(second) == ["Backdoor:EC2/C&CActivity.B!DNS"]
    assert second.waived == 0


def test_an_instance_without_an_agent_keeps_the_ec2_type_even_when_called_healthy() -> None:
    _, second = dns_then_resolver(healthy_all, agent=False)
    assert types(second) == ["Backdoor:EC2/C&CActivity.B!DNS"]


def test_without_a_health_lookup_nothing_is_waived() -> None:
    _, second = dns_then_resolver(None)
    assert types(second) == ["Backdoor:EC2/C&CActivity.B!DNS"]


def test_another_indicator_is_not_carried() -> None:
    intel = aws_intel(ti.C2, "c2.badexample.net")
    _, second = dns_then_resolver(healthy_all, name="c2.badexample.net", intel=intel)
    assert second.waived == 0
    assert types(second) == ["Backdoor:EC2/C&CActivity.B!DNS"]


def test_a_note_holds_into_the_next_day_not_longer() -> None:
    _, next_day = dns_then_resolver(healthy_all, later_ns=DAY_NS)
    assert types(next_day) == [] and next_day.waived == 1
    _, two_days = dns_then_resolver(healthy_all, later_ns=2 * DAY_NS + MIN_NS)
    assert types(two_days) == ["Backdoor:EC2/C&CActivity.B!DNS"]


def test_a_connection_carried_by_the_runtime_type_waives_the_flow_type() -> None:
    intel = aws_intel(ti.C2, "198.51.100.66")
    for healthy, expected in ((healthy_all, []), (healthy_none, ["Backdoor:EC2/C&CActivity.B"])):
        pipeline = Pipeline.default(intel=intel, healthy=healthy)
        state = InMemoryState()
        agent = run(pipeline, state, s.connect(s.proc("/tmp/.x/agent"), "198.51.100.66", 443))
        assert types(agent) == ["Backdoor:Runtime/C&CActivity.B"]
        flows = run(
            pipeline, state, s.flow(s.LOCAL_IP, 50000, "198.51.100.66", 443, packets=14, t=2 * MIN_NS)
        )
        assert types(flows) == expected


def test_behavioural_ec2_types_are_never_waived() -> None:
    # a port scan has no runtime counterpart: raised even for a healthy instance
    pipeline = Pipeline.default(healthy=healthy_all)
    state = InMemoryState()
    scan = [s.flow(s.LOCAL_IP, 40000 + p, "203.0.113.50", p, action="REJECT", t=p) for p in range(1, 31)]
    out = run(pipeline, state, *scan)
    assert "Recon:EC2/Portscan" in types(out)
    assert out.waived == 0


def test_indicator_is_the_remote_side_or_the_registered_domain() -> None:
    assert indicator(s.connect(s.proc("/bin/x"), "198.51.100.7", 443)) == "ip:198.51.100.7"
    assert indicator(s.flow("198.51.100.7", 5555, s.LOCAL_IP, 22)) == "ip:198.51.100.7"  # inbound
    assert indicator(s.flow(s.LOCAL_IP, 5555, "198.51.100.7", 22)) == "ip:198.51.100.7"
    assert indicator(s.resolver_query("A.B.Example.COM.")) == "dns:example.com"
    assert indicator(s.dns("x.example.com")) == indicator(s.resolver_query("y.example.com"))
    assert indicator(s.exec_(s.proc("/bin/sh"))) == ""


@pytest.mark.parametrize("ec2_type", sorted(COUNTERPARTS))
def test_every_counterpart_pair_names_real_types(ec2_type: str) -> None:
    known = {d.meta.type for d in all_detections()}
    assert ec2_type in known and ":EC2/" in ec2_type
    assert COUNTERPARTS[ec2_type] <= known
    assert all(":Runtime/" in t for t in COUNTERPARTS[ec2_type])
    assert all(ec2_type in CARRIES[t] for t in COUNTERPARTS[ec2_type])


def test_behavioural_types_have_no_counterpart() -> None:
    for t in (
        "Recon:EC2/Portscan",
        "UnauthorizedAccess:EC2/SSHBruteForce",
        "Backdoor:EC2/DenialOfService.Udp",
    ):
        assert t not in COUNTERPARTS
