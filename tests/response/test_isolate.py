"""IsolateInstance and ReleaseInstance (statemachines/*.asl.json) on emulated AWS.

Each test asserts on EC2 state afterwards (groups per interface, tags, termination protection,
evidence snapshots, Auto Scaling membership), not only on the execution status.
"""

from __future__ import annotations

import json
import uuid

import pytest
from response_harness import PROTECTED_TAG, Stack, TagWrite

# EC2's tag limits, stated here independently of the code under test
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions).
TAG_KEY_MAX, TAG_VALUE_MAX, TAGS_PER_RESOURCE_MAX = 128, 256, 50

pytestmark = pytest.mark.integration


def request(instance_id: str, *, dry_run: bool = False, finding_id: str | None = None) -> dict:
    return {
        "findingId": finding_id or uuid.uuid4().hex,
        "findingType": "Execution:Runtime/ReverseShell",
        "instanceId": instance_id,
        "dryRun": dry_run,
        "requestedBy": "test",
    }


def isolate(stack: Stack, instance_id: str, **kw: object) -> dict:
    d = stack.run("IsolateInstance", request(instance_id, **kw))  # type: ignore[arg-type]
    assert d["status"] == "SUCCEEDED", d
    return d["outputDoc"]


def test_isolation_snapshots_records_protects_and_cuts_traffic(stack: Stack) -> None:
    # GIVEN an instance with two interfaces and three security groups, and its finding stored
    iid = stack.instance()
    before = stack.groups_by_interface(iid)
    req = request(iid)
    stack.store_finding(
        {
            "id": req["findingId"],
            "type": req["findingType"],
            "resource": {"instanceDetails": {"instanceId": iid}},
        }
    )

    # WHEN the isolation workflow runs (not a dry run)
    d = stack.run("IsolateInstance", req)

    # THEN every interface is in the one empty isolation group of the VPC
    assert d["status"] == "SUCCEEDED", d
    assert d["outputDoc"]["outcome"] == "isolated"
    after = stack.groups_by_interface(iid)
    assert after.keys() == before.keys()
    isolation_ids = {g for gs in after.values() for g in gs}
    assert len(isolation_ids) == 1
    assert stack.group_names(sorted(isolation_ids)) == ["vigil-isolation"]
    sg = stack.client("ec2").describe_security_groups(GroupIds=sorted(isolation_ids))["SecurityGroups"][0]
    assert sg["IpPermissions"] == [] and sg["IpPermissionsEgress"] == []
    # AND the original groups are recorded per interface (ResponseTable and the findings table),
    # the interfaces and the instance only point at the record
    record = stack.isolation_record(iid)
    assert record is not None
    assert {eni: sorted(g) for eni, g in record["originalGroups"].items()} == before
    assert record["originalTerminationProtection"] is False and record["findingId"] == req["findingId"]
    tags = stack.interface_tags(iid)
    assert {eni: t["vigil:isolation-record"] for eni, t in tags.items()} == dict.fromkeys(
        before, f"isolation#{iid}"
    )
    assert all("vigil:original-sgs" not in t for t in tags.values())
    item = stack.finding_item(req["findingId"])
    assert {k: sorted(v) for k, v in json.loads(item["originalSecurityGroups"]).items()} == before
    assert item["responseStatus"] == "ISOLATED"
    # AND the evidence is snapshotted, tagged with the finding id, before anything changed
    snaps = stack.evidence_snapshots(req["findingId"])
    assert snaps and all({"Key": "vigil:instance-id", "Value": iid} in s["Tags"] for s in snaps)
    # AND termination protection is on and the instance is tagged
    assert stack.termination_protection(iid) is True
    itags = stack.instance_tags(iid)
    assert itags["vigil:finding-id"] == req["findingId"]
    assert itags["vigil:isolation-state"] == "isolated"
    assert itags["vigil:isolated-at"].endswith("Z")
    assert itags["vigil:isolation-record"] == f"isolation#{iid}"
    assert "vigil:original-termination-protection" not in itags
    assert d["outputDoc"]["bookkeeping"] == {}


def _snapshot_of(stack: Stack, iid: str, finding_id: str) -> dict:
    """Everything isolation may change, to compare before/after a run that must change nothing."""
    return {
        "groups": stack.groups_by_interface(iid),
        "interface_tags": stack.interface_tags(iid),
        "instance_tags": stack.instance_tags(iid),
        "protection": stack.termination_protection(iid),
        "snapshots": sorted(s["SnapshotId"] for s in stack.evidence_snapshots(finding_id)),
    }


def test_second_run_on_an_isolated_instance_changes_nothing(stack: Stack) -> None:
    # GIVEN an isolated instance
    iid = stack.instance()
    req = request(iid)
    assert isolate(stack, iid, finding_id=req["findingId"])["outcome"] == "isolated"
    state = _snapshot_of(stack, iid, req["findingId"])
    # WHEN isolation runs again for the same finding
    out = isolate(stack, iid, finding_id=req["findingId"])
    # THEN it reports it and EC2 is exactly as before (no new snapshot, originals not overwritten)
    assert out["outcome"] == "already-isolated"
    assert _snapshot_of(stack, iid, req["findingId"]) == state


@pytest.mark.parametrize("gone", ["terminated", "never-existed"])
def test_instance_gone_is_a_clear_outcome_not_a_failure(stack: Stack, gone: str) -> None:
    if gone == "terminated":
        iid = stack.instance()
        stack.client("ec2").terminate_instances(InstanceIds=[iid])
    else:
        iid = "i-0123456789abcdef0"
    d = stack.run("IsolateInstance", request(iid))
    assert d["status"] == "SUCCEEDED", d
    assert d["outputDoc"]["outcome"] == "instance-gone"


def test_throttled_call_is_retried_and_isolation_completes(stack: Stack, throttle) -> None:  # type: ignore[no-untyped-def]
    # GIVEN EC2 throttles the first ModifyNetworkInterfaceAttribute call (RequestLimitExceeded)
    iid = stack.instance(groups=[[stack.security_group("app")]])
    calls = throttle("modify_network_interface_attribute", times=1)
    # WHEN the instance is isolated
    arn = stack.start("IsolateInstance", request(iid))
    d = stack.wait(arn)
    # THEN the step was retried (a TaskFailed, then success) and the instance is isolated
    assert d["status"] == "SUCCEEDED", d
    assert calls["modify_network_interface_attribute"] >= 3  # 1 throttled + untrack + isolate
    events = stack.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    failed = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    throttled = [f for f in failed if f["error"] == "Ec2.Ec2Exception"]
    assert len(throttled) == 1 and "Request limit exceeded" in throttled[0]["cause"]
    groups = stack.groups_by_interface(iid)
    assert [stack.group_names(g) for g in groups.values()] == [["vigil-isolation"]]


def test_exhausted_retries_are_caught_and_recorded_on_the_finding(stack: Stack, throttle) -> None:  # type: ignore[no-untyped-def]
    # GIVEN EC2 keeps throttling ModifyNetworkInterfaceAttribute
    iid = stack.instance(groups=[[stack.security_group("app")]])
    original = stack.groups_by_interface(iid)
    req = request(iid)
    stack.store_finding(
        {
            "id": req["findingId"],
            "type": req["findingType"],
            "resource": {"instanceDetails": {"instanceId": iid}},
        }
    )
    throttle("modify_network_interface_attribute", times=100)
    # WHEN the instance is isolated
    d = stack.wait(stack.start("IsolateInstance", req))
    # THEN the execution fails clearly and the finding says which step failed
    assert d["status"] == "FAILED"
    assert d["error"] == "Vigil.IsolationFailed"
    item = stack.finding_item(req["findingId"])
    assert item["responseStatus"] == "ISOLATION_FAILED"
    assert "untrack" in json.loads(item["responseError"])
    # AND the recorded originals survive for a retry or a release
    assert stack.groups_by_interface(iid) == original
    record = stack.isolation_record(iid)
    assert record is not None
    assert {e: sorted(g) for e, g in record["originalGroups"].items()} == original


def test_dry_run_logs_the_plan_and_changes_nothing(stack: Stack) -> None:
    iid = stack.instance()
    req = request(iid, dry_run=True)
    before = _snapshot_of(stack, iid, req["findingId"])
    d = stack.run("IsolateInstance", req)
    assert d["status"] == "SUCCEEDED", d
    assert d["outputDoc"]["outcome"] == "dry-run"
    assert any("snapshot" in s for s in d["outputDoc"]["plan"])
    assert any("vigil-isolation" in s for s in d["outputDoc"]["plan"])
    assert _snapshot_of(stack, iid, req["findingId"]) == before


def test_dry_run_is_the_default_when_the_request_does_not_say(stack: Stack) -> None:
    iid = stack.instance()
    req = request(iid)
    del req["dryRun"]
    before = _snapshot_of(stack, iid, req["findingId"])
    d = stack.run("IsolateInstance", req)
    assert d["outputDoc"]["outcome"] == "dry-run"
    assert _snapshot_of(stack, iid, req["findingId"]) == before


def test_protected_instance_is_never_isolated(stack: Stack) -> None:
    iid = stack.instance(tags={PROTECTED_TAG: "payments-db", "Name": "prod-db"})
    req = request(iid)
    before = _snapshot_of(stack, iid, req["findingId"])
    d = stack.run("IsolateInstance", req)
    assert d["status"] == "SUCCEEDED", d
    assert d["outputDoc"]["outcome"] == "protected"
    assert _snapshot_of(stack, iid, req["findingId"]) == before


def test_exhausted_hourly_budget_stops_isolation(stack: Stack) -> None:
    iid = stack.instance()
    req = request(iid)
    stack.store_finding(
        {
            "id": req["findingId"],
            "type": req["findingType"],
            "resource": {"instanceDetails": {"instanceId": iid}},
        }
    )
    before = _snapshot_of(stack, iid, req["findingId"])
    stack.fill_budget()
    try:
        d = stack.run("IsolateInstance", req)
    finally:
        stack.clear_budget()
    assert d["status"] == "SUCCEEDED", d
    assert d["outputDoc"]["outcome"] == "budget-exhausted"
    assert _snapshot_of(stack, iid, req["findingId"]) == before
    assert stack.finding_item(req["findingId"])["responseStatus"] == "BUDGET_EXHAUSTED"


def test_budget_counts_isolations_atomically(stack: Stack) -> None:
    stack.clear_budget()
    for _ in range(2):
        assert isolate(stack, stack.instance(groups=[[stack.security_group("a")]]))["outcome"] == "isolated"
    assert sum(int(i["isolations"]["N"]) for i in stack.budget_items()) == 2


def test_auto_scaling_group_member_is_detached_without_losing_capacity(stack: Stack) -> None:
    # GIVEN an instance launched by an Auto Scaling group of desired capacity 1
    asg = stack.client("autoscaling")
    ec2 = stack.client("ec2")
    lt = ec2.create_launch_template(
        LaunchTemplateName=f"lt-{uuid.uuid4().hex[:6]}",
        LaunchTemplateData={
            "ImageId": stack.ami,
            "InstanceType": "t3.micro",
            "SecurityGroupIds": [stack.security_group("asg")],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    name = f"web-{uuid.uuid4().hex[:6]}"
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": lt},
        MinSize=1,
        MaxSize=2,
        DesiredCapacity=1,
        VPCZoneIdentifier=stack.subnet_id,
    )
    iid = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["Instances"][
        0
    ]["InstanceId"]
    # WHEN it is isolated
    assert isolate(stack, iid)["outcome"] == "isolated"
    # THEN it left the group, the group kept its capacity and launched a replacement
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 1
    members = [i["InstanceId"] for i in group["Instances"]]
    assert iid not in members and len(members) == 1
    assert stack.termination_protection(iid) is True


def test_release_restores_the_exact_groups_per_interface_and_protection(stack: Stack) -> None:
    # GIVEN an isolated instance whose interfaces had different groups
    iid = stack.instance()
    before = stack.groups_by_interface(iid)
    req = request(iid)
    stack.store_finding(
        {
            "id": req["findingId"],
            "type": req["findingType"],
            "resource": {"instanceDetails": {"instanceId": iid}},
        }
    )
    assert isolate(stack, iid, finding_id=req["findingId"])["outcome"] == "isolated"
    assert stack.groups_by_interface(iid) != before
    # WHEN it is released
    d = stack.run("ReleaseInstance", {"instanceId": iid, "requestedBy": "test"})
    # THEN each interface has exactly its original groups again, and protection is as it was
    assert d["status"] == "SUCCEEDED", d
    assert d["outputDoc"]["outcome"] == "released"
    assert stack.groups_by_interface(iid) == before
    assert stack.termination_protection(iid) is False
    tags = stack.instance_tags(iid)
    assert tags["vigil:isolation-state"] == "released" and "vigil:released-at" in tags
    assert "vigil:original-termination-protection" not in tags and "vigil:isolation-record" not in tags
    assert all("vigil:isolation-record" not in t for t in stack.interface_tags(iid).values())
    assert stack.isolation_record(iid) is None  # a later isolation records the groups of that day
    assert stack.finding_item(req["findingId"])["responseStatus"] == "RELEASED"
    # AND a second release has nothing to do
    again = stack.run("ReleaseInstance", {"instanceId": iid, "requestedBy": "test"})
    assert again["outputDoc"]["outcome"] == "not-isolated"
    assert stack.groups_by_interface(iid) == before


def test_release_keeps_termination_protection_that_was_on_before(stack: Stack) -> None:
    iid = stack.instance(groups=[[stack.security_group("a")]])
    stack.client("ec2").modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
    assert isolate(stack, iid)["outcome"] == "isolated"
    assert stack.run("ReleaseInstance", {"instanceId": iid})["outputDoc"]["outcome"] == "released"
    assert stack.termination_protection(iid) is True


def _within_ec2_tag_limits(stack: Stack, writes: list[TagWrite]) -> list[str]:
    """Every tag written checked against EC2's limits, which moto does not fully enforce."""
    problems = [f"{w.resource_id}: key {w.key!r} > {TAG_KEY_MAX}" for w in writes if len(w.key) > TAG_KEY_MAX]
    problems += [
        f"{w.resource_id}: {w.key}={w.value[:30]}... is {len(w.value)} > {TAG_VALUE_MAX} characters"
        for w in writes
        if w.value is not None and len(w.value) > TAG_VALUE_MAX
    ]
    resources = sorted({w.resource_id for w in writes})
    for rid in resources:
        n = len(stack.client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [rid]}])["Tags"])
        if n > TAGS_PER_RESOURCE_MAX:
            problems.append(f"{rid}: {n} tags > {TAGS_PER_RESOURCE_MAX}")
    return problems


def test_sixteen_groups_on_each_of_several_interfaces_isolate_and_release_exactly(
    stack: Stack, tag_writes: list[TagWrite]
) -> None:
    # GIVEN an instance with three interfaces of 16 security groups each (EC2's maximum per
    # interface: 16 ids joined are 335 characters, more than a tag value holds)
    groups = [[stack.security_group(f"g{n}-{k}") for k in range(16)] for n in range(3)]
    iid = stack.instance(groups=groups)
    before = stack.groups_by_interface(iid)
    assert sorted(len(g) for g in before.values()) == [16, 16, 16]
    req = request(iid)
    stack.store_finding(
        {
            "id": req["findingId"],
            "type": req["findingType"],
            "resource": {"instanceDetails": {"instanceId": iid}},
        }
    )
    # WHEN it is isolated, then released
    isolated = stack.run("IsolateInstance", req)
    after_isolation = stack.groups_by_interface(iid)
    record = stack.isolation_record(iid)
    released = stack.run("ReleaseInstance", {"instanceId": iid, "requestedBy": "test"})

    # THEN every tag Vigil wrote fits EC2's limits (key <= 128, value <= 256, <= 50 per resource)
    assert tag_writes, "isolation wrote no tags at all"
    assert _within_ec2_tag_limits(stack, tag_writes) == []
    # AND isolation cut traffic on every interface, with nothing left to bookkeeping errors
    assert isolated["status"] == "SUCCEEDED", isolated
    assert isolated["outputDoc"]["outcome"] == "isolated"
    assert isolated["outputDoc"]["bookkeeping"] == {}
    assert {stack.group_names(g)[0] for g in after_isolation.values()} == {"vigil-isolation"}
    assert all(len(g) == 1 for g in after_isolation.values())
    # AND the table held all 48 originals, interface by interface
    assert record is not None
    assert {e: sorted(g) for e, g in record["originalGroups"].items()} == before
    # AND release restored exactly those groups on each interface
    assert released["status"] == "SUCCEEDED", released
    assert released["outputDoc"]["outcome"] == "released"
    assert stack.groups_by_interface(iid) == before


def test_bookkeeping_that_fails_after_the_cut_never_fails_the_isolation(stack: Stack) -> None:
    # GIVEN an instance whose interface already carries EC2's 50 tags (no room for a pointer)
    iid = stack.instance(groups=[[stack.security_group("a"), stack.security_group("b")]])
    before = stack.groups_by_interface(iid)
    (eni,) = before
    stack.client("ec2").create_tags(
        Resources=[eni], Tags=[{"Key": f"owner-tag-{n}", "Value": "x"} for n in range(TAGS_PER_RESOURCE_MAX)]
    )
    req = request(iid)
    stack.store_finding(
        {
            "id": req["findingId"],
            "type": req["findingType"],
            "resource": {"instanceDetails": {"instanceId": iid}},
        }
    )
    # WHEN it is isolated
    d = stack.run("IsolateInstance", req)
    # THEN traffic is cut and the execution succeeds, naming the bookkeeping step that failed
    assert d["status"] == "SUCCEEDED", d
    assert d["outputDoc"]["outcome"] == "isolated"
    assert list(d["outputDoc"]["bookkeeping"]) == ["pointInterfaces"]
    assert "maximum number of Tags" in json.dumps(d["outputDoc"]["bookkeeping"])
    assert [stack.group_names(g) for g in stack.groups_by_interface(iid).values()] == [["vigil-isolation"]]
    item = stack.finding_item(req["findingId"])
    assert item["responseStatus"] == "ISOLATED"
    assert "pointInterfaces" in json.loads(item["responseBookkeeping"])
    # AND release still restores the groups from the table
    assert stack.run("ReleaseInstance", {"instanceId": iid})["outputDoc"]["outcome"] == "released"
    assert stack.groups_by_interface(iid) == before


def test_release_of_an_isolation_recorded_in_legacy_tags(stack: Stack) -> None:
    # GIVEN an instance isolated by an older Vigil: originals in vigil:original-sgs tags, no record
    iid = stack.instance(groups=[[stack.security_group("a"), stack.security_group("b")]])
    before = stack.groups_by_interface(iid)
    assert isolate(stack, iid)["outcome"] == "isolated"
    stack.client("dynamodb").delete_item(
        TableName=stack.response_table, Key={"pk": {"S": f"isolation#{iid}"}}
    )
    ec2 = stack.client("ec2")
    for eni, groups in before.items():
        ec2.create_tags(Resources=[eni], Tags=[{"Key": "vigil:original-sgs", "Value": ",".join(groups)}])
    ec2.create_tags(
        Resources=[iid], Tags=[{"Key": "vigil:original-termination-protection", "Value": "false"}]
    )
    # WHEN it is released
    d = stack.run("ReleaseInstance", {"instanceId": iid})
    # THEN the legacy records are honoured and removed
    assert d["outputDoc"]["outcome"] == "released", d
    assert stack.groups_by_interface(iid) == before
    assert stack.termination_protection(iid) is False
    assert all("vigil:original-sgs" not in t for t in stack.interface_tags(iid).values())
    assert "vigil:original-termination-protection" not in stack.instance_tags(iid)


def test_a_group_with_vigils_name_but_not_its_tag_is_never_used(stack: Stack) -> None:
    from vigil_aws.response import ForeignGroupError, ensure_isolation_groups

    # GIVEN a VPC where someone created an open "vigil-isolation" group (without vigil:role)
    ec2 = stack.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    squat = ec2.create_security_group(GroupName="vigil-isolation", Description="x", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=squat, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    # WHEN Vigil looks for its isolation groups there
    # THEN it refuses, naming the group and the tag, rather than isolating into an open group
    with pytest.raises(ForeignGroupError, match=r"vigil-isolation.*vigil:role=isolation"):
        ensure_isolation_groups(ec2, vpc)
    # AND the foreign group was left as it was
    sg = ec2.describe_security_groups(GroupIds=[squat])["SecurityGroups"][0]
    assert len(sg["IpPermissions"]) == 1
