"""Instance details from EC2 (vigil_aws.instances) on moto, and through IngestFunction.

GIVEN instances launched in moto's EC2 (tags, a subnet, security groups, an instance profile),
WHEN findings are made on them, THEN each finding's ``resource.instanceDetails`` carries EC2's
description in GuardDuty's shape; EC2 is asked at most once per instance per cache period (counted
at the botocore client, ``before-call.ec2.DescribeInstances``), the instances of one invocation in
one call; and when EC2 cannot be reached (an endpoint on an unused loopback port) the finding is
still stored with what the agent's identity said, and the gap is counted.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from guardduty_shape import validate
from handler_harness import EVENTS, REGION, Aws, context, ingest_env, kinesis_event_for, load_handler

from local.scenarios.response import with_instance_id
from vigil_aws.instances import KEY_PREFIX, InstanceDetailsCache

pytestmark = pytest.mark.integration  # moto

REVERSE_SHELL = "Execution:Runtime/ReverseShell"
HOSTILE = "[/][bold red]<script>alert(1)</script>"


@dataclass
class Fleet:
    web: str
    worker: str
    db: str
    hostile: str
    subnet: str
    vpc: str
    groups: dict[str, str]
    profile_arn: str
    image_id: str


@pytest.fixture
def fleet(aws: Aws) -> Fleet:
    ec2 = aws.client("ec2")
    iam = aws.client("iam")
    profile = iam.create_instance_profile(InstanceProfileName="web-profile")["InstanceProfile"]
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"][
        "SubnetId"
    ]
    groups = {
        name: ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        for name in ("web", "ssh")
    }
    image = next(i for i in ec2.describe_images(Owners=["amazon"])["Images"] if "Platform" not in i)

    def launch(tags: list[dict[str, str]], **kw: Any) -> str:
        return str(
            ec2.run_instances(
                ImageId=image["ImageId"],
                MinCount=1,
                MaxCount=1,
                InstanceType="t3.micro",
                SubnetId=subnet,
                SecurityGroupIds=list(groups.values()),
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
                **kw,
            )["Instances"][0]["InstanceId"]
        )

    web = launch(
        [{"Key": "Name", "Value": "web-1"}, {"Key": "Role", "Value": "pentest"}],
        IamInstanceProfile={"Name": "web-profile"},
    )
    worker = launch([{"Key": "Name", "Value": "worker-1"}])
    db = launch([{"Key": "Name", "Value": "db-1"}])
    # an owner who writes hostile tags: markup, and far past EC2's lengths (moto lets them through)
    hostile = launch(
        [{"Key": f"{HOSTILE}{n:02d}" + "k" * 500, "Value": HOSTILE + "v" * 5000} for n in range(50)]
    )
    return Fleet(web, worker, db, hostile, subnet, vpc, groups, profile["Arn"], image["ImageId"])


class Calls:
    """DescribeInstances calls made through a client, counted at botocore's event hook."""

    def __init__(self, client: Any) -> None:
        self.n = 0
        client.meta.events.register("before-call.ec2.DescribeInstances", self._count)

    def _count(self, **_: Any) -> None:
        self.n += 1


def counted_cache(aws: Aws, clock: Any = None, **kw: Any) -> tuple[InstanceDetailsCache, Calls]:
    ec2 = boto3.client("ec2", region_name=REGION)
    cache = InstanceDetailsCache(aws.state_table, ec2=ec2, **({"clock": clock} if clock else {}), **kw)
    return cache, Calls(ec2)


def unused_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_lookup_gives_ec2s_description_in_guardduty_shape(aws: Aws, fleet: Fleet) -> None:
    # GIVEN the web server as EC2 describes it
    ec2 = aws.client("ec2")
    [raw] = ec2.describe_instances(InstanceIds=[fleet.web])["Reservations"][0]["Instances"]
    description = ec2.describe_images(ImageIds=[fleet.image_id])["Images"][0]["Description"]
    cache, _ = counted_cache(aws)
    # WHEN the cache is asked for it
    details = cache([fleet.web])[fleet.web]
    # THEN it carries what GuardDuty shows: tags, image, type, state, zone, profile, the interface
    assert details["tags"] == [{"key": t["Key"], "value": t["Value"]} for t in raw["Tags"]]
    assert {"key": "Role", "value": "pentest"} in details["tags"]
    assert (details["imageId"], details["imageDescription"]) == (fleet.image_id, description)
    assert (details["instanceType"], details["instanceState"]) == ("t3.micro", "running")
    assert details["availabilityZone"] == raw["Placement"]["AvailabilityZone"]
    assert details["launchTime"].startswith(raw["LaunchTime"].strftime("%Y-%m-%dT%H:%M:%S"))
    assert details["iamInstanceProfile"]["arn"] == fleet.profile_arn
    [eni] = details["networkInterfaces"]
    assert (eni["subnetId"], eni["vpcId"]) == (fleet.subnet, fleet.vpc)
    assert eni["privateIpAddress"] == raw["PrivateIpAddress"]
    assert eni["privateDnsName"] == raw["PrivateDnsName"]
    assert {g["groupId"]: g["groupName"] for g in eni["securityGroups"]} == {
        v: k for k, v in fleet.groups.items()
    }
    # AND it is cached in the State table under its own prefix, with a TTL
    item = aws.client("dynamodb").get_item(
        TableName=aws.state_table, Key={"pk": {"S": KEY_PREFIX + fleet.web}}
    )
    assert "ec2Details" in item["Item"] and int(item["Item"]["expiresAt"]["N"]) > 0


def test_ec2_is_asked_once_per_instance_per_cache_period(aws: Aws, fleet: Fleet) -> None:
    clock = Clock()
    cache, calls = counted_cache(aws, clock, ttl_s=900)
    # WHEN one container looks the same instance up for 50 batches
    for _ in range(50):
        assert fleet.web in cache([fleet.web])
    # THEN EC2 was asked once
    assert calls.n == 1
    # AND another container (a new cache, same table) asks EC2 nothing while the item lives
    other, other_calls = counted_cache(aws, clock, ttl_s=900)
    assert other([fleet.web])[fleet.web] == cache([fleet.web])[fleet.web]
    assert other_calls.n == 0 and other.counters["instance_details_cache_hits"] == 1
    # AND once the period has passed, the next lookup asks EC2 again, once
    clock.now += 901
    for _ in range(5):
        cache([fleet.web])
    assert calls.n == 2


def test_the_instances_of_one_invocation_are_described_in_one_call(aws: Aws, fleet: Fleet) -> None:
    # GIVEN an invocation whose records name three instances (and a bogus partition key)
    cache, calls = counted_cache(aws)
    cache.expect([fleet.web, fleet.worker, fleet.db, "not-an-instance", fleet.web])
    # WHEN their findings are looked up one record at a time
    found = [cache([i]) for i in (fleet.web, fleet.worker, fleet.db)]
    # THEN one DescribeInstances call described all three
    assert calls.n == 1
    assert [list(f) for f in found] == [[fleet.web], [fleet.worker], [fleet.db]]


def test_an_instance_ec2_does_not_know_is_cached_as_absent_for_the_retry_period(
    aws: Aws, fleet: Fleet
) -> None:
    clock = Clock()
    gone = "i-0123456789abcdef0"  # never launched here: terminated long ago, or another account
    cache, calls = counted_cache(aws, clock, retry_s=60)
    # WHEN it is looked up again and again within a minute
    for _ in range(10):
        assert cache([gone]) == {}
    # THEN EC2 was asked once, the absence counted and cached for other containers too
    assert calls.n == 1 and cache.counters["instance_details_not_found"] == 1
    other, other_calls = counted_cache(aws, clock, retry_s=60)
    assert other([gone]) == {} and other_calls.n == 0
    # AND after the retry period it is asked again
    clock.now += 61
    cache([gone])
    assert calls.n == 2


def test_when_ec2_cannot_be_reached_the_lookup_returns_nothing_and_counts_the_gap(
    aws: Aws, fleet: Fleet
) -> None:
    # GIVEN an EC2 endpoint nobody listens on (loopback, unused port)
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=f"http://127.0.0.1:{unused_loopback_port()}")
    clock = Clock()
    cache, calls = InstanceDetailsCache(aws.state_table, ec2=ec2, clock=clock, retry_s=60), Calls(ec2)
    # WHEN a finding's instance is looked up for several records
    results = [cache([fleet.web]) for _ in range(20)]
    # THEN there is nothing to add, the error is counted once, and the outage cost one call
    assert results == [{}] * 20
    assert calls.n == 1 and cache.counters["instance_details_ec2_errors"] == 1
    # AND nothing was cached in the table (another container may still reach EC2)
    item = aws.client("dynamodb").get_item(
        TableName=aws.state_table, Key={"pk": {"S": KEY_PREFIX + fleet.web}}
    )
    assert "Item" not in item
    # AND after the retry period it tries again
    clock.now += 61
    cache([fleet.web])
    assert calls.n == 2


def test_hostile_tags_from_ec2_are_bounded_and_kept_as_data(aws: Aws, fleet: Fleet) -> None:
    cache, _ = counted_cache(aws)
    tags = cache([fleet.hostile])[fleet.hostile]["tags"]
    assert len(tags) == 50
    assert all(len(t["key"]) == 128 and len(t["value"]) == 256 for t in tags)
    assert all(t["key"].startswith(HOSTILE) and t["value"].startswith(HOSTILE) for t in tags)


# --- through IngestFunction ------------------------------------------------------------------------
def _reverse_shell_on(instance: str, seq: int = 1) -> dict[str, Any]:
    batch = with_instance_id((EVENTS / "agent" / "reverse_shell.ndjson.gz").read_bytes(), instance)
    return kinesis_event_for([(instance, batch)], first_seq=seq)


def _documents(aws: Aws) -> dict[str, dict[str, Any]]:
    from vigil_aws.findings_store import document

    return {f["instanceId"]: document(f) for f in aws.findings().values() if f["type"] == REVERSE_SHELL}


def test_the_ingest_stores_findings_with_ec2s_details(aws: Aws, fleet: Fleet, ingest: Any) -> None:
    # GIVEN the web server's agent reports a reverse shell, twice (two invocations)
    calls = Calls(ingest.instances._client())
    ingest.handler(_reverse_shell_on(fleet.web), context("IngestFunction"))
    totals = dict(ingest.ingestor.totals)
    ingest.handler(_reverse_shell_on(fleet.web, seq=2), context("IngestFunction"))
    # THEN the stored finding carries the instance's tags, image and network, valid as GuardDuty's
    doc = _documents(aws)[fleet.web]
    details = doc["resource"]["instanceDetails"]
    assert details["instanceId"] == fleet.web
    assert {"key": "Role", "value": "pentest"} in details["tags"] and details["imageId"] == fleet.image_id
    assert details["networkInterfaces"][0]["subnetId"] == fleet.subnet
    assert 0 < doc["confidence"] <= 100
    assert validate(doc) == []
    # AND EC2 was asked once for both invocations, and the first invocation's totals say so
    assert calls.n == 1
    assert totals["instance_details_ec2_calls"] == 1 and totals.get("instance_details_missing", 0) == 0


def test_the_ingest_stores_the_finding_when_ec2_is_unreachable(
    aws: Aws, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an ingest whose EC2 endpoint nobody listens on (loopback, unused port)
    env = ingest_env(aws) | {"AWS_ENDPOINT_URL_EC2": f"http://127.0.0.1:{unused_loopback_port()}"}
    ingest = load_handler("ingest_function", env, monkeypatch)
    # WHEN a reverse shell is reported
    response = ingest.handler(_reverse_shell_on(fleet.web), context("IngestFunction"))
    # THEN the record succeeded and the finding is stored with what the agent's identity said
    assert response == {"batchItemFailures": []}
    doc = _documents(aws)[fleet.web]
    assert doc["resource"]["instanceDetails"]["instanceId"] == fleet.web
    assert "tags" not in doc["resource"]["instanceDetails"]
    assert validate(doc) == []
    # AND the gap is counted (these totals become the invocation's metrics)
    totals = ingest.ingestor.totals
    assert totals["instance_details_missing"] == totals["occurrences"] >= 1
    assert totals["instance_details_ec2_errors"] == 1


def test_the_demo_helpers_launch_a_tagged_instance_and_summarize_its_finding(aws: Aws) -> None:
    from local.scenarios.instance_details import launch_tagged_instance, summary

    # GIVEN an instance the demo launches with a suppression-worthy tag
    instance = launch_tagged_instance(boto3.Session(region_name=REGION), {"Role": "pentest"})
    cache, _ = counted_cache(aws)
    finding = {"confidence": 51.0, "resource": {"instanceDetails": cache([instance])[instance]}}
    # THEN the summary line shows the tag, the AMI and the confidence
    line = summary(finding)
    assert "tags Role=pentest" in line and "ami-" in line and line.endswith("confidence 51")
    # AND a finding on an instance EC2 does not know says so
    assert "no EC2 details" in summary({"resource": {"instanceDetails": {"instanceId": instance}}})
