"""Export shapes: ASFF (Security Hub) and OCSF Detection Finding 2004 (Security Lake).

GIVEN every finding the detections' firing examples produce (run through the pipeline as
test_findings.py does), THEN its ASFF validates against botocore's ``AwsSecurityFinding`` and its
OCSF against the published Detection Finding class (pinned, offline); both carry the same frozen
id; attacker-controlled strings stay data within the formats' limits.
"""

from __future__ import annotations

import copy

import pytest
from asff_shape import validate as validate_asff
from ocsf_shape import schema as ocsf_schema
from ocsf_shape import validate as validate_ocsf

from vigil import sample as s
from vigil.asff import LIMITS, asff_type, to_asff
from vigil.detection import Context
from vigil.engine import Engine
from vigil.findings import occurrences
from vigil.intel.builtin import builtin_intel
from vigil.ocsf import OCSF_VERSION, to_ocsf
from vigil.registry import all_detections
from vigil.state import InMemoryState

ACCOUNT, REGION = "123456789012", "us-east-1"
HOSTILE = "<!channel> {code} [x|http://evil] \u202e\x1b[31m\n\r\x00" + "A" * 5000


def _findings(events, intel=None):  # type: ignore[no-untyped-def]
    engine = Engine(all_detections(), intel=intel if intel is not None else builtin_intel())
    state = InMemoryState()
    run = engine.run(events, state)
    ctx = Context(state=state, intel=engine.intel)
    return [o.finding for o in occurrences(run.matches, ctx, account_id=ACCOUNT, region=REGION)]


ALL_FIRING = [(d.meta.type, ex) for d in all_detections() for ex in d.fires]
IDS = [f"{t}: {e.name}" for t, e in ALL_FIRING]


def _reverse_shell() -> dict:  # type: ignore[type-arg]
    shell = s.proc("/bin/bash", "-i", stdin=s.sock("198.51.100.7", 4444), stdout=s.sock("198.51.100.7", 4444))
    (f,) = _findings([s.exec_(shell)])
    return f  # type: ignore[no-any-return]


def _enriched(f: dict) -> dict:  # type: ignore[type-arg]
    """What the instance enrichment adds (GuardDuty's instanceDetails), with hostile tag values."""
    f = copy.deepcopy(f)
    f["resource"]["instanceDetails"].update(
        {
            "instanceType": "m5.large",
            "imageId": "ami-0abcdef1234567890",
            "launchTime": "2025-11-20T10:00:00.000Z",
            "iamInstanceProfile": {"arn": "arn:aws:iam::123456789012:instance-profile/web", "id": "AIPA"},
            "networkInterfaces": [
                {
                    "privateDnsName": "ip-10-0-0-12.ec2.internal",
                    "privateIpAddress": "10.0.0.12",
                    "publicIp": "203.0.113.9",
                    "vpcId": "vpc-1",
                    "subnetId": "subnet-1",
                    "ipv6Addresses": ["2001:db8::1"],
                }
            ],
            "tags": [{"key": "Name", "value": HOSTILE}, {"key": "k" * 300, "value": "v"}],
        }
    )
    return f


@pytest.mark.parametrize(("ftype", "ex"), ALL_FIRING, ids=IDS)
def test_every_example_finding_is_valid_asff(ftype, ex) -> None:  # type: ignore[no-untyped-def]
    findings = _findings(list(ex.events), ex.intel)
    assert findings
    for f in findings:
        assert validate_asff(to_asff(f)) == []
        assert validate_asff(to_asff(_enriched(f))) == []


@pytest.mark.parametrize(("ftype", "ex"), ALL_FIRING, ids=IDS)
def test_every_example_finding_is_a_valid_ocsf_detection_finding(ftype, ex) -> None:  # type: ignore[no-untyped-def]
    findings = _findings(list(ex.events), ex.intel)
    assert findings
    for f in findings:
        assert validate_ocsf(to_ocsf(f)) == []
        assert validate_ocsf(to_ocsf(_enriched(f))) == []


def test_the_pinned_ocsf_schema_is_the_published_release_the_exporter_claims() -> None:
    compiled = ocsf_schema()
    assert compiled["ocsf_version"] == OCSF_VERSION
    assert compiled["source"]["ref"] == "refs/tags/v1.1.0" and len(compiled["source"]["commit"]) == 40
    assert compiled["class"]["uid"] == 2004 and compiled["class"]["name"] == "detection_finding"


def test_the_asff_validator_rejects_what_security_hub_would() -> None:
    doc = to_asff(_reverse_shell())
    bad = dict(doc, Bogus=1, Title="x" * 300, Severity={"Label": "SEVERE"}, Types=" ")
    del bad["Resources"]
    errs = validate_asff(bad)
    for needle in ("Bogus", "Title: longer than 256", "SEVERE", "missing required Resources", "asff.Types"):
        assert any(needle in e for e in errs), (needle, errs)
    assert any("does not match" in e for e in validate_asff(dict(doc, Description="  ")))


def test_the_ocsf_validator_rejects_wrong_ids_types_and_missing_attributes() -> None:
    ev = to_ocsf(_reverse_shell())
    bad = copy.deepcopy(ev)
    bad.update(class_uid=2001, type_uid=200404, severity_id=7, bogus=1, time="yesterday")
    del bad["finding_info"]["title"]
    del bad["cloud"]
    errs = validate_ocsf(bad)
    for needle in (
        "class_uid: 2001",
        "type_uid: 200404",
        "severity_id: 7",
        "event.bogus",
        "event.time: expected integer",
        "missing required title",
        "missing required cloud",
    ):
        assert any(needle in e for e in errs), (needle, errs)
    bad_host = copy.deepcopy(ev)
    bad_host["device"]["hostname"] = "not a host!"
    assert any("hostname_t" in e for e in validate_ocsf(bad_host))


def test_asff_and_ocsf_carry_the_same_frozen_id_times_and_severity() -> None:
    f = _reverse_shell()
    a, o = to_asff(f), to_ocsf(f)
    assert a["Id"] == o["finding_info"]["uid"] == f["arn"] and f["id"] in a["Id"]
    assert a["CreatedAt"] == f["createdAt"] and a["FirstObservedAt"] == f["service"]["eventFirstSeen"]
    assert (a["Severity"]["Label"], a["Severity"]["Normalized"]) == ("HIGH", 80)
    assert (o["severity_id"], o["activity_id"], o["type_uid"]) == (4, 1, 200401)
    assert a["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert a["Resources"][0]["Id"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{s.INSTANCE}"


def test_an_update_and_an_archived_finding_are_ocsf_update_and_close() -> None:
    f = _reverse_shell()
    updated = dict(f, updatedAt="2030-01-01T00:00:00.000Z")
    archived = copy.deepcopy(updated)
    archived["service"]["archived"] = True
    assert (to_ocsf(updated)["activity_id"], to_ocsf(updated)["type_uid"]) == (2, 200402)
    closed = to_ocsf(archived)
    assert (closed["activity_id"], closed["type_uid"], closed["status_id"]) == (3, 200403, 3)
    assert validate_ocsf(closed) == []


@pytest.mark.parametrize(
    ("ftype", "expected"),
    [
        ("Execution:Runtime/ReverseShell", "TTPs/Execution/Execution:Runtime-ReverseShell"),
        ("Backdoor:Runtime/C&CActivity.B!DNS", "TTPs/Command and Control/Backdoor:Runtime-C&CActivity.B!DNS"),
        ("Trojan:Runtime/DropPoint", "Effects/Data Exfiltration/Trojan:Runtime-DropPoint"),
        (
            "UnauthorizedAccess:Runtime/TorClient",
            "Effects/Resource Consumption/UnauthorizedAccess:Runtime-TorClient",
        ),
        ("Recon:EC2/Portscan", "TTPs/Discovery/Recon:EC2-Portscan"),
        ("Made:Up/Thing", "Unusual Behaviors/VM/Made:Up-Thing"),
    ],
)
def test_asff_types_follow_guardduty(ftype: str, expected: str) -> None:
    assert asff_type(ftype) == expected


def test_hostile_strings_stay_data_within_asff_limits() -> None:
    f = _enriched(_reverse_shell())
    f["title"] = HOSTILE
    f["service"]["runtimeDetails"]["process"]["executablePath"] = HOSTILE
    doc = to_asff(f)
    assert validate_asff(doc) == []
    assert len(doc["Title"]) == LIMITS["Title"] and doc["Title"].startswith("<!channel> {code}")
    assert not any(ord(c) < 32 for c in doc["Title"] + doc["Process"]["Path"])
    assert "\u202e" in doc["Title"]  # kept as data (it is printable): the renderers neutralise it
    assert doc["Resources"][0]["Tags"]["Name"].startswith("<!channel>")


def test_a_domain_or_ip_ocsf_cannot_type_is_kept_in_unmapped_not_dropped() -> None:
    (f,) = _findings([s.dns("pool.supportxmr.com", "198.51.100.50", process=s.proc("/tmp/xmrig"))])
    assert to_ocsf(f)["evidences"][0]["query"] == {"hostname": "pool.supportxmr.com"}
    f["service"]["action"]["dnsRequestAction"]["domain"] = "evil_domain<script>.example"
    ev = to_ocsf(f)
    assert validate_ocsf(ev) == []
    assert "query" not in ev["evidences"][0] and ev["unmapped"]["dnsDomain"] == "evil_domain<script>.example"
