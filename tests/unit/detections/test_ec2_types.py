"""GuardDuty's EC2 finding types (detections/ec2/): GuardDuty-valid findings, the tester's test
domains over Resolver logs, and the per-instance baselines across batches.

GIVEN each EC2 detection's firing examples, WHEN they run through the engine and the finding
builder, THEN every finding is valid against botocore's GuardDuty ``Finding`` shape, carries the
service.action shape of its source and the detection's resource role.
"""

from __future__ import annotations

import pytest
from guardduty_shape import validate

from vigil import sample as s
from vigil.detection import Context, Detection, Example
from vigil.detections.ec2._common import DAY_NS, HOUR_NS
from vigil.engine import Engine
from vigil.findings import occurrences
from vigil.intel.builtin import builtin_intel
from vigil.registry import all_detections
from vigil.state import InMemoryState

EC2 = [d for d in all_detections() if d.meta.ec2]
FIRING = [(f"{d.meta.type}: {ex.name}", d, ex) for d in EC2 for ex in d.fires]
ACTION_OF_KIND = {"vpc_flow": ("NETWORK_CONNECTION", "PORT_PROBE"), "resolver_query": ("DNS_REQUEST",),
                  "api_call": ("AWS_API_CALL",)}  # fmt: skip


def _findings(events, *, detections=None, intel=None, state=None, settings=None):  # type: ignore[no-untyped-def]
    engine = Engine(detections or all_detections(), intel=intel or builtin_intel(), settings=settings)
    state = state or InMemoryState()
    run = engine.run(events, state)
    assert run.errors == []
    ctx = Context(state=state, intel=engine.intel, settings=engine.settings)
    return occurrences(run.matches, ctx, account_id="123456789012", region="us-east-1")


@pytest.mark.parametrize(("case", "det", "ex"), FIRING, ids=[c[0] for c in FIRING])
def test_every_ec2_firing_example_builds_a_guardduty_valid_finding(
    case: str, det: Detection, ex: Example
) -> None:
    occ = _findings(ex.events, detections=[det], intel=ex.intel)
    assert occ
    for o in occ:
        f = o.finding
        assert validate(f) == [], case
        svc = f["service"]
        assert "runtimeDetails" not in svc and "featureName" not in svc
        assert svc["action"]["actionType"] in ACTION_OF_KIND[ex.events[-1].kind]
        assert svc["resourceRole"] in ("ACTOR", "TARGET")


def test_port_probe_findings_carry_a_port_probe_action_and_their_role_dependent_severity() -> None:
    from vigil.detections.ec2._common import probes

    (es,) = _findings(probes(9200, 5))
    (ssh,) = _findings(probes(22, 5))
    assert es.finding["type"] == ssh.finding["type"] == "Recon:EC2/PortProbeUnprotectedPort"
    assert (es.finding["severity"], ssh.finding["severity"]) == (8.0, 2.0)
    probe = ssh.finding["service"]["action"]["portProbeAction"]
    assert probe["portProbeDetails"][0]["localPortDetails"] == {"port": 22}
    assert probe["blocked"] is False and ssh.finding["service"]["resourceRole"] == "TARGET"


# The amazon-guardduty-tester's DNS test domains (lib/common/testResources/definitions.json), one
# per type, as the EC2 types see them: a Resolver query-log record from the instance.
TESTER_EC2 = {
    "guarddutyc2activityb.com": "Backdoor:EC2/C&CActivity.B!DNS",
    "c2.guarddutyc2activityb.com": "Backdoor:EC2/C&CActivity.B!DNS",
    "crypto.guarddutyc2activityb.com": "CryptoCurrency:EC2/BitcoinTool.B!DNS",
    "abused-rep.guarddutyc2activityb.com": "Impact:EC2/AbusedDomainRequest.Reputation",
    "crypto-rep.guarddutyc2activityb.com": "Impact:EC2/BitcoinDomainRequest.Reputation",
    "malicious-rep.guarddutyc2activityb.com": "Impact:EC2/MaliciousDomainRequest.Reputation",
    "suspicious-rep.guarddutyc2activityb.com": "Impact:EC2/SuspiciousDomainRequest.Reputation",
    "guarddutyblackholeactivity.com": "Trojan:EC2/BlackholeTraffic!DNS",
    "guarddutydgaactivity.com": "Trojan:EC2/DGADomainRequest.C!DNS",
    "guarddutydrivebyactivity.com": "Trojan:EC2/DriveBySourceTraffic!DNS",
    "guarddutydroppointactivity.com": "Trojan:EC2/DropPoint!DNS",
    "guarddutyphishingactivity.com": "Trojan:EC2/PhishingDomainRequest!DNS",
}


@pytest.mark.parametrize(("domain", "expected"), sorted(TESTER_EC2.items()))
def test_each_tester_domain_in_resolver_logs_raises_exactly_its_ec2_type(domain: str, expected: str) -> None:
    assert {o.finding["type"] for o in _findings([s.resolver_query(domain)])} == {expected}


def test_a_port_outside_the_baseline_fires_once_across_batches_and_then_joins_it() -> None:
    # GIVEN an instance with a day of HTTPS traffic in the State (an earlier batch)
    state = InMemoryState()
    assert (
        _findings([s.flow(s.LOCAL_IP, 40100, "203.0.113.10", 443, packets=20, t=-DAY_NS)], state=state) == []
    )
    state.commit()
    # WHEN it connects to a new remote port, in two later batches
    first = _findings([s.flow(s.LOCAL_IP, 41000, "198.51.100.44", 4444, packets=9)], state=state)
    state.commit()
    again = _findings(
        [s.flow(s.LOCAL_IP, 41001, "198.51.100.45", 4444, packets=9, t=60_000_000_000)], state=state
    )
    # THEN the first fires NetworkPortUnusual and the second is part of the baseline
    assert [o.finding["type"] for o in first] == ["Behavior:EC2/NetworkPortUnusual"]
    assert again == []


def test_exfiltration_split_over_an_hour_still_exceeds_the_previous_days_baseline() -> None:
    # GIVEN yesterday's largest hour to one host: 64 MiB
    state = InMemoryState()
    _findings(
        [s.flow(s.LOCAL_IP, 40100, "203.0.113.10", 443, packets=50_000, nbytes=64 << 20, t=-DAY_NS)],
        state=state,
    )
    state.commit()
    # WHEN 1 GiB leaves for one new host in 16 records of 64 MiB within the hour, one batch each
    fired = []
    for i in range(16):
        rec = s.flow(
            s.LOCAL_IP,
            40200 + i,
            "198.51.100.99",
            443,
            packets=45_000,
            nbytes=64 << 20,
            t=i * 120_000_000_000,
        )
        fired += [o.finding["type"] for o in _findings([rec], state=state)]
        state.commit()
    # THEN TrafficVolumeUnusual fires once the hour's sum is 4x above the baseline's level (256 MiB+)
    assert fired.count("Behavior:EC2/TrafficVolumeUnusual") >= 1


def test_instance_credentials_from_an_aws_address_are_inside_aws_when_the_ranges_are_supplied() -> None:
    from vigil.detections.ec2._common import credential_use

    later = 3 * HOUR_NS // 1_000_000_000
    events = credential_use(("52.1.2.3", later))
    without = {o.finding["type"] for o in _findings(events)}
    with_ranges = {o.finding["type"] for o in _findings(events, settings={"aws_ip_ranges": ("52.0.0.0/10",)})}
    assert without == {"UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"}
    assert with_ranges == {"UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS"}
    (o,) = _findings(events)
    call = o.finding["service"]["action"]["awsApiCallAction"]
    assert call["remoteIpDetails"] == {"ipAddressV4": "52.1.2.3"} and validate(o.finding) == []


def test_an_address_that_fired_once_is_learned_and_never_fires_again() -> None:
    from vigil.detections.ec2._common import credential_use

    later = 3 * HOUR_NS // 1_000_000_000
    state = InMemoryState()
    first = _findings(credential_use(("198.51.100.77", later)), state=state)
    state.commit()
    again = _findings((s.api_call("198.51.100.77", t=(later + 600) * 1_000_000_000),), state=state)
    assert len(first) == 1 and again == []
