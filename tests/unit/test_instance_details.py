"""Instance details (vigil.instance_details), confidence (vigil.confidence) and the pipeline's
enrichment hook (``Pipeline(instance_details=...)``), all pure.

GIVEN EC2 ``DescribeInstances`` instances in boto3's shape (well-formed, hostile or malformed),
THEN ``from_ec2`` gives GuardDuty's ``InstanceDetails`` (valid against botocore's model), bounded
to EC2's limits and a JSON budget, never raising; the pipeline fills findings before suppression
sees them; and every finding carries a confidence that follows the documented rule.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.model import StructureShape
from guardduty_shape import finding_shape, validate
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from vigil import sample as s
from vigil.confidence import confidence, mechanism
from vigil.instance_details import (
    DETAILS_BUDGET_BYTES,
    TAG_KEY_CHARS,
    TAG_VALUE_CHARS,
    TAGS_MAX,
    fit,
    from_ec2,
    merge,
    size,
)
from vigil.pipeline import Pipeline
from vigil.registry import all_detections
from vigil.state import InMemoryState

INSTANCE = "i-0a1b2c3d4e5f60001"


def instance_details_shape() -> StructureShape:
    resource = finding_shape().members["Resource"]
    assert isinstance(resource, StructureShape)
    shape = resource.members["InstanceDetails"]
    assert isinstance(shape, StructureShape)
    return shape


def ec2_instance(**overrides: Any) -> dict[str, Any]:
    """One instance as boto3's describe_instances returns it (LaunchTime a datetime)."""
    d: dict[str, Any] = {
        "InstanceId": INSTANCE,
        "ImageId": "ami-0abcdef1234567890",
        "InstanceType": "t3.micro",
        "State": {"Code": 16, "Name": "running"},
        "LaunchTime": datetime(2026, 11, 27, 22, 13, 21, 123456, tzinfo=UTC),
        "Placement": {"AvailabilityZone": "us-east-1a", "Tenancy": "default"},
        "IamInstanceProfile": {
            "Arn": "arn:aws:iam::123456789012:instance-profile/web",
            "Id": "AIPAJQABLZS4A3QDU576Q",
        },
        "PrivateDnsName": "ip-10-0-1-5.ec2.internal",
        "PrivateIpAddress": "10.0.1.5",
        "PublicDnsName": "ec2-198-51-100-5.compute-1.amazonaws.com",
        "PublicIpAddress": "198.51.100.5",
        "ProductCodes": [{"ProductCodeId": "aw0evgkw8e5c1q413zgy5pjce", "ProductCodeType": "marketplace"}],
        "NetworkInterfaces": [
            {
                "Attachment": {"DeviceIndex": 1},
                "NetworkInterfaceId": "eni-0000000000000000b",
                "PrivateIpAddress": "10.0.2.9",
                "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.2.9", "Primary": True}],
                "Groups": [{"GroupId": "sg-0000000000000000d", "GroupName": "db"}],
                "SubnetId": "subnet-0000000000000000b",
                "VpcId": "vpc-0000000000000000a",
            },
            {
                "Attachment": {"DeviceIndex": 0},
                "NetworkInterfaceId": "eni-0000000000000000a",
                "PrivateDnsName": "ip-10-0-1-5.ec2.internal",
                "PrivateIpAddress": "10.0.1.5",
                "PrivateIpAddresses": [
                    {"PrivateDnsName": "ip-10-0-1-5.ec2.internal", "PrivateIpAddress": "10.0.1.5"},
                    {"PrivateIpAddress": "10.0.1.6"},
                ],
                "Association": {
                    "PublicDnsName": "ec2-198-51-100-5.compute-1.amazonaws.com",
                    "PublicIp": "198.51.100.5",
                },
                "Ipv6Addresses": [{"Ipv6Address": "2001:db8::5"}],
                "Groups": [
                    {"GroupId": "sg-0000000000000000a", "GroupName": "web"},
                    {"GroupId": "sg-0000000000000000b", "GroupName": "ssh"},
                ],
                "SubnetId": "subnet-0000000000000000a",
                "VpcId": "vpc-0000000000000000a",
            },
        ],
        "Tags": [{"Key": "Name", "Value": "web-1"}, {"Key": "Role", "Value": "bastion"}],
    }
    d.update(overrides)
    return d


# --- from_ec2 --------------------------------------------------------------------------------------
def test_an_ec2_instance_becomes_guardduty_instance_details() -> None:
    # GIVEN a running instance with two interfaces (the primary listed second), a profile and tags
    # WHEN it is turned into instance details
    details = from_ec2(ec2_instance(), image_description="Amazon Linux 2023 AMI")
    # THEN every GuardDuty field is there with its wire name, the primary interface first
    assert details == {
        "instanceId": INSTANCE,
        "instanceType": "t3.micro",
        "imageId": "ami-0abcdef1234567890",
        "imageDescription": "Amazon Linux 2023 AMI",
        "instanceState": "running",
        "launchTime": "2026-11-27T22:13:21.123Z",
        "availabilityZone": "us-east-1a",
        "iamInstanceProfile": {
            "arn": "arn:aws:iam::123456789012:instance-profile/web",
            "id": "AIPAJQABLZS4A3QDU576Q",
        },
        "networkInterfaces": [
            {
                "networkInterfaceId": "eni-0000000000000000a",
                "privateDnsName": "ip-10-0-1-5.ec2.internal",
                "privateIpAddress": "10.0.1.5",
                "privateIpAddresses": [
                    {"privateDnsName": "ip-10-0-1-5.ec2.internal", "privateIpAddress": "10.0.1.5"},
                    {"privateIpAddress": "10.0.1.6"},
                ],
                "publicDnsName": "ec2-198-51-100-5.compute-1.amazonaws.com",
                "publicIp": "198.51.100.5",
                "ipv6Addresses": ["2001:db8::5"],
                "securityGroups": [
                    {"groupId": "sg-0000000000000000a", "groupName": "web"},
                    {"groupId": "sg-0000000000000000b", "groupName": "ssh"},
                ],
                "subnetId": "subnet-0000000000000000a",
                "vpcId": "vpc-0000000000000000a",
            },
            {
                "networkInterfaceId": "eni-0000000000000000b",
                "privateIpAddress": "10.0.2.9",
                "privateIpAddresses": [{"privateIpAddress": "10.0.2.9"}],
                "securityGroups": [{"groupId": "sg-0000000000000000d", "groupName": "db"}],
                "subnetId": "subnet-0000000000000000b",
                "vpcId": "vpc-0000000000000000a",
            },
        ],
        "productCodes": [{"productCodeId": "aw0evgkw8e5c1q413zgy5pjce", "productCodeType": "marketplace"}],
        "tags": [{"key": "Name", "value": "web-1"}, {"key": "Role", "value": "bastion"}],
    }
    # AND it is valid against botocore's GuardDuty InstanceDetails shape
    assert validate(details, instance_details_shape(), "instanceDetails") == []


def test_the_validator_catches_a_pascal_case_field() -> None:
    # GIVEN the EC2 spelling of a field, THEN the shape check refuses it (so the test above can fail)
    assert validate({"InstanceId": INSTANCE}, instance_details_shape(), "instanceDetails") != []


def test_launch_time_in_another_zone_or_as_cached_text_is_utc_with_milliseconds() -> None:
    east = datetime(2026, 1, 1, 5, 0, 0, tzinfo=timezone(timedelta(hours=5)))
    assert from_ec2(ec2_instance(LaunchTime=east))["launchTime"] == "2026-01-01T00:00:00.000Z"
    assert (
        from_ec2(ec2_instance(LaunchTime="2026-01-01T00:00:00+00:00"))["launchTime"]
        == "2026-01-01T00:00:00.000Z"
    )
    assert "launchTime" not in from_ec2(ec2_instance(LaunchTime="yesterday"))


def test_an_instance_without_interfaces_gets_one_from_its_own_addresses() -> None:
    # GIVEN a description without NetworkInterfaces (EC2-Classic, some emulators)
    d = ec2_instance(
        NetworkInterfaces=[],
        SecurityGroups=[{"GroupId": "sg-0000000000000000a", "GroupName": "web"}],
        SubnetId="subnet-0000000000000000a",
        VpcId="vpc-0000000000000000a",
    )
    # THEN the one interface is made of the instance-level fields
    assert from_ec2(d)["networkInterfaces"] == [
        {
            "privateDnsName": "ip-10-0-1-5.ec2.internal",
            "privateIpAddress": "10.0.1.5",
            "publicDnsName": "ec2-198-51-100-5.compute-1.amazonaws.com",
            "publicIp": "198.51.100.5",
            "securityGroups": [{"groupId": "sg-0000000000000000a", "groupName": "web"}],
            "subnetId": "subnet-0000000000000000a",
            "vpcId": "vpc-0000000000000000a",
        }
    ]


HOSTILE = "[/][link=http://evil.example]x[/link]\x1b[31m\x00\u202e<script>"


def test_hostile_tags_are_bounded_to_ec2s_limits_and_kept_as_data() -> None:
    # GIVEN 60 tags with markup, control characters and huge keys and values (EC2 itself allows
    # 50, keys of 128 and values of 256 characters)
    raw = [{"Key": f"{HOSTILE}{n}" + "k" * 10_000, "Value": HOSTILE + "v" * 100_000} for n in range(60)]
    # WHEN the description becomes instance details
    details = from_ec2(ec2_instance(Tags=raw))
    tags = details["tags"]
    # THEN 50 tags are kept, each cut to EC2's lengths, their content unchanged (escaping is the
    # terminal's business, not the store's)
    assert len(tags) == TAGS_MAX
    assert all(len(t["key"]) == TAG_KEY_CHARS and len(t["value"]) == TAG_VALUE_CHARS for t in tags)
    assert tags[0]["key"].startswith(HOSTILE + "0") and tags[0]["value"].startswith(HOSTILE)
    assert validate(details, instance_details_shape(), "instanceDetails") == []


def test_malformed_identifiers_and_addresses_are_left_out() -> None:
    # GIVEN fields of the wrong format or type, where EC2's own are never like that
    d = ec2_instance(
        InstanceId="i-0a1b2c3d4e5f60001\n",
        ImageId={"nested": 1},
        InstanceType="t3.micro; rm -rf /",
        State={"Name": "\x1b[2J"},
        IamInstanceProfile={"Arn": "not an arn", "Id": 42},
        Tags=[{"Key": "", "Value": "x"}, {"Key": 7, "Value": "x"}, {"Key": "ok", "Value": None}, "junk"],
        ProductCodes="all",
        NetworkInterfaces=[
            {
                "Attachment": {"DeviceIndex": 0},
                "PrivateIpAddress": "10.0.1.500",
                "Ipv6Addresses": [{"Ipv6Address": "10.0.0.1"}],
                "Groups": [{"GroupId": "sg-;drop", "GroupName": None}],
                "SubnetId": "subnet-0000000000000000a",
            }
        ],
    )
    # WHEN it is read, THEN what is malformed is absent, what is well-formed stays
    details = from_ec2(d)
    for absent in ("instanceId", "imageId", "instanceType", "instanceState", "iamInstanceProfile", "tags"):
        assert absent not in details, absent
    [eni] = details["networkInterfaces"]
    assert eni["subnetId"] == "subnet-0000000000000000a"
    assert "privateIpAddress" not in eni and "ipv6Addresses" not in eni and "securityGroups" not in eni


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=20), inner, max_size=6),
    max_leaves=60,
)
field_names = st.sampled_from(
    [
        "InstanceId",
        "ImageId",
        "InstanceType",
        "State",
        "LaunchTime",
        "Placement",
        "IamInstanceProfile",
        "NetworkInterfaces",
        "Tags",
        "ProductCodes",
        "OutpostArn",
        "Platform",
        "PrivateIpAddress",
        "SecurityGroups",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=14), json_values)
def test_any_description_gives_valid_bounded_details_and_never_raises(raw: dict[str, Any], desc: Any) -> None:
    # GIVEN any description EC2 (or something posing as it) might return
    details = from_ec2(raw, image_description=desc if isinstance(desc, str) else None)
    # THEN the details are GuardDuty-valid and within the budget
    assert validate(details, instance_details_shape(), "instanceDetails") == []
    assert size(details) <= DETAILS_BUDGET_BYTES


def test_the_json_budget_drops_secondary_addresses_then_interfaces_then_the_last_tags() -> None:
    # GIVEN the largest description the bounds let through: 8 interfaces of 8 addresses each and
    # 16 groups with 255-character names, and 50 tags of non-ASCII text (6 JSON bytes a character)
    eni = {
        "Attachment": {"DeviceIndex": 0},
        "PrivateDnsName": "ip-" + "a" * 250,
        "PrivateIpAddresses": [
            {"PrivateDnsName": "ip-" + "b" * 250, "PrivateIpAddress": f"10.0.0.{n}"} for n in range(9)
        ],
        "Ipv6Addresses": [{"Ipv6Address": f"2001:db8::{n}"} for n in range(9)],
        "Groups": [{"GroupId": f"sg-{n:017x}", "GroupName": "\u00e9" * 300} for n in range(17)],
    }
    tags = [{"Key": f"{n:02d}" + "\u00e9" * 200, "Value": "\u00e9" * 300} for n in range(50)]
    details = from_ec2(ec2_instance(NetworkInterfaces=[eni] * 9, Tags=tags))
    # THEN it fits, having cut secondary addresses and interfaces before any tag
    assert size(details) <= DETAILS_BUDGET_BYTES
    [kept] = details["networkInterfaces"]
    assert len(kept["privateIpAddresses"]) == 1 and len(kept["ipv6Addresses"]) == 1
    assert 0 < len(details["tags"]) < 50 and details["tags"][0]["key"].startswith("00")
    # AND a small description is left as it is
    small = from_ec2(ec2_instance())
    assert fit(json.loads(json.dumps(small))) == small


# --- merge -----------------------------------------------------------------------------------------
KNOWN = {
    "instanceId": INSTANCE,
    "instanceType": "t3.small",
    "imageId": "ami-0abcdef1234567890",
    "networkInterfaces": [{"privateDnsName": "web-1"}],
}


def test_without_ec2_the_finding_keeps_what_the_agent_knew() -> None:
    assert merge(KNOWN, None) == KNOWN and merge(KNOWN, {}) == KNOWN


def test_ec2_fills_the_details_and_the_finding_keeps_its_instance_id() -> None:
    # GIVEN EC2's description of (what it says is) another instance, and a newer instance type
    ec2 = from_ec2(ec2_instance(InstanceId="i-0000000000000000f"))
    merged = merge(KNOWN, ec2)
    # THEN the finding's instance id stays (it is part of the finding id), EC2's current facts win
    assert merged["instanceId"] == INSTANCE
    assert merged["instanceType"] == "t3.micro" and merged["tags"] == ec2["tags"]
    # AND without interfaces from EC2, the agent's hostname is kept
    no_enis = {k: v for k, v in ec2.items() if k != "networkInterfaces"}
    assert merge(KNOWN, no_enis)["networkInterfaces"] == [{"privateDnsName": "web-1"}]


# --- confidence ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ftype", "kind", "indicator", "expected"),
    [
        ("Backdoor:Runtime/C&CActivity.B", "net_connect", True, "indicator"),
        ("Impact:Runtime/MaliciousDomainRequest.Reputation", "dns_query", True, "reputation"),
        ("DefenseEvasion:Runtime/ProcessInjection.Ptrace", "ptrace", False, "kernel"),
        ("Execution:Runtime/SuspiciousTool", "process_exec", False, "pattern"),
    ],
)
def test_the_mechanism_is_read_from_the_finding(
    ftype: str, kind: str, indicator: bool, expected: str
) -> None:
    assert mechanism(ftype, kind, indicator=indicator) == expected


def test_the_confidence_rule_is_a_product_of_mechanism_maturity_and_attribution() -> None:
    top = confidence(
        "Backdoor:Runtime/C&CActivity.B",
        "net_connect",
        indicator=True,
        maturity="stable",
        identity_verified=True,
    )
    low = confidence(
        "Impact:Runtime/MaliciousDomainRequest.Reputation",
        "dns_query",
        indicator=True,
        maturity="experimental",
        identity_verified=False,
    )
    pattern = confidence(
        "Execution:Runtime/SuspiciousTool",
        "process_exec",
        indicator=False,
        maturity="experimental",
        identity_verified=True,
    )
    assert (top, low, pattern) == (90.0, 30.0, 51.0)


ALL_FIRING = [(d.meta, ex) for d in all_detections() for ex in d.fires]


@pytest.mark.parametrize(("meta", "ex"), ALL_FIRING, ids=[f"{m.type}: {e.name}" for m, e in ALL_FIRING])
def test_every_finding_carries_a_confidence_that_drops_without_a_verified_identity(
    meta: Any, ex: Any
) -> None:
    # GIVEN every detection's firing examples, WHEN their findings are built as the ingest builds
    # them (identity verified) and as `vigil replay` does (not verified)
    state = InMemoryState()
    pipe = Pipeline.default(account_id="123456789012", region="us-east-1", intel=ex.intel)
    verified = pipe.detect(list(ex.events), state, identity_verified=True).occurrences
    unverified = pipe.detect(list(ex.events), InMemoryState(), identity_verified=False).occurrences
    # THEN each carries a confidence within the rule's range, lower when the host was not proven
    assert verified
    for v, u in zip(verified, unverified, strict=True):
        assert 30.0 <= u.finding["confidence"] < v.finding["confidence"] <= 90.0
        assert validate(v.finding) == []


# --- the pipeline's hook ---------------------------------------------------------------------------
def _tool_events(*instances: str) -> list[Any]:
    return [
        s.exec_(
            s.proc("/usr/bin/nmap", "-sS", "198.51.100.0/24"), t=n, device=replace(s.DEVICE, instance_uid=i)
        )
        for n, i in enumerate(instances)
    ]


class Lookup:
    """A stand-in provider (the port is a plain callable): records the calls it gets."""

    def __init__(self, known: dict[str, dict[str, Any]]) -> None:
        self.known = known
        self.calls: list[list[str]] = []

    def __call__(self, ids: Any) -> dict[str, dict[str, Any]]:
        self.calls.append(list(ids))
        return {i: self.known[i] for i in ids if i in self.known}


OTHER = "i-0a1b2c3d4e5f60002"


def test_the_pipeline_enriches_each_finding_before_suppression_sees_it() -> None:
    # GIVEN a provider that knows one of two instances, and a suppressor on a tag (what a
    # GuardDuty rule "tags.key = Role and value = pentest" checks)
    lookup = Lookup({INSTANCE: from_ec2(ec2_instance(Tags=[{"Key": "Role", "Value": "pentest"}]))})
    seen: list[dict[str, Any]] = []

    def suppress(finding: dict[str, Any]) -> bool:
        seen.append(finding["resource"]["instanceDetails"])
        return {"key": "Role", "value": "pentest"} in finding["resource"]["instanceDetails"].get("tags", [])

    pipe = Pipeline.default(
        account_id="123456789012", region="us-east-1", suppress=suppress, instance_details=lookup
    )
    # WHEN one batch fires the same finding type on both instances, twice on the first
    result = pipe.detect(_tool_events(INSTANCE, INSTANCE, OTHER), InMemoryState())
    # THEN the provider was asked once, for the distinct instances
    assert lookup.calls == [[INSTANCE, OTHER]]
    by_instance = {o.instance_id: o for o in result.occurrences}
    # AND the known instance's finding was enriched before the suppressor saw it, and archived
    assert (
        by_instance[INSTANCE].suppressed
        and by_instance[INSTANCE].finding["resource"]["instanceDetails"]["tags"]
    )
    assert any(d.get("tags") for d in seen)
    # AND the other keeps what the agent knew, is not suppressed, and counts as a gap
    other = by_instance[OTHER].finding["resource"]["instanceDetails"]
    assert other["instanceId"] == OTHER and "tags" not in other and not by_instance[OTHER].suppressed
    assert result.instance_details_missing == 1
    for o in result.occurrences:
        assert validate(o.finding) == []


def test_a_batch_without_findings_asks_nothing() -> None:
    lookup = Lookup({})
    pipe = Pipeline.default(instance_details=lookup)
    result = pipe.detect([s.exec_(s.proc("/usr/bin/ls", "-l"))], InMemoryState())
    assert result.occurrences == [] and lookup.calls == [] and result.instance_details_missing == 0
