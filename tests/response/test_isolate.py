"""IsolateInstance and ReleaseInstance (statemachines/*.asl.json) on emulated AWS.

Each test asserts on EC2 state afterwards (groups per interface, tags, termination protection,
evidence snapshots, Auto Scaling membership), not only on the execution status.
"""

from __future__ import annotations

import json
import uuid

import pytest
from response_harness import PROTECTED_TAG, Stack

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
    # AND the original groups are recorded per interface (tags and the findings table)
    tags = stack.interface_tags(iid)
    assert {eni: sorted(t["vigil:original-sgs"].split(",")) for eni, t in tags.items()} == before
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
    assert itags["vigil:original-termination-protection"] == "false"
