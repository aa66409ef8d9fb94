"""The response part of `make demo`: the finding starts Triage, the instance is isolated, then
released; the security groups of every interface are printed before, after isolation and after
release.

The demo calls, in order (see docs/response.md, "The demo"):

    iid = launch_demo_instance(session)            # before sending telemetry: the finding's
                                                   # instance must exist in emulated EC2
    before = groups_of(session, iid)               # before the finding appears
    ...send the reverse-shell batch with host.instance_id = iid, wait for the finding...
    result = run_response_demo(session, outputs, iid, before=before, console=console)

The stack must be deployed with ``ResponseDryRun=false`` (the shipped default is a dry run), and
``local.response_patches.apply()`` must be in effect (Triage starts IsolateInstance with
``startExecution.sync:2``, which moto cannot run unpatched).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from vigil_aws.response import answer_approval, pending_task_token

Groups = dict[str, list[tuple[str, str]]]  # interface id -> [(group id, group name)]


def _client(session: Any, name: str, endpoint_url: str | None) -> Any:
    return session.client(name, endpoint_url=endpoint_url) if endpoint_url else session.client(name)


def launch_demo_instance(session: Any, endpoint_url: str | None = None) -> str:
    """A web server in its own VPC: two interfaces, groups web+ssh on eth0 and db on eth1."""
    ec2 = _client(session, "ec2", endpoint_url)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    az = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]

    def sg(name: str, port: int) -> str:
        gid = ec2.create_security_group(GroupName=name, Description=f"demo {name}", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=gid,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                }
            ],
        )
        return str(gid)

    web, ssh, db = sg("demo-web", 443), sg("demo-ssh", 22), sg("demo-db", 5432)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return str(
        ec2.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            NetworkInterfaces=[
                {"DeviceIndex": 0, "SubnetId": subnet, "Groups": [web, ssh]},
                {"DeviceIndex": 1, "SubnetId": subnet, "Groups": [db]},
            ],
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "demo-web-1"}]}
            ],
        )["Instances"][0]["InstanceId"]
    )


def groups_of(session: Any, instance_id: str, endpoint_url: str | None = None) -> Groups:
    enis = _client(session, "ec2", endpoint_url).describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["NetworkInterfaces"]
    return {
        e["NetworkInterfaceId"]: sorted((g["GroupId"], g["GroupName"]) for g in e["Groups"])
        for e in sorted(enis, key=lambda e: e["Attachment"]["DeviceIndex"])
    }


def _show(say: Callable[[str], None], title: str, groups: Groups) -> None:
    say(f"  {title}")
    for eni, gs in groups.items():
        say(f"    {eni}: " + ", ".join(f"{name} ({gid})" for gid, name in gs))


def _wait(sfn: Any, arn: str, deadline_s: float) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return dict(d)
        time.sleep(0.1)
    raise TimeoutError(f"{arn} still running after {deadline_s:.0f}s")


def _triage_for(sfn: Any, machine: str, instance_id: str, finding_type: str, deadline_s: float) -> str:
    """The Triage execution of ``finding_type`` on ``instance_id`` (other findings may triage too)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]:
            raw = sfn.describe_execution(executionArn=e["executionArn"]).get("input") or "{}"
            detail = json.loads(raw).get("detail", {})
            on_instance = (detail.get("resource") or {}).get("instanceDetails", {}).get(
                "instanceId"
            ) == instance_id
            if on_instance and detail.get("type") == finding_type:
                return str(e["executionArn"])
        time.sleep(0.1)
    raise TimeoutError(
        f"no Triage of {finding_type} on {instance_id} within {deadline_s:.0f}s (is TriageRule wired?)"
    )


def run_response_demo(
    session: Any,
    outputs: Mapping[str, str],
    instance_id: str,
    *,
    before: Groups | None = None,
    endpoint_url: str | None = None,
    say: Callable[[str], None] = print,
    deadline_s: float = 60,
    finding_type: str = "Execution:Runtime/ReverseShell",
) -> dict[str, Any]:
    """Follow the finding's Triage to its end (approving as "demo" if it asks), print the groups
    before / after isolation / after release, and return what happened (the demo asserts on it:
    ``result["isolated"]`` and ``result["restored"]`` must be true)."""
    sfn = _client(session, "stepfunctions", endpoint_url)
    triage = _triage_for(sfn, outputs["TriageStateMachineArn"], instance_id, finding_type, deadline_s)
    say(f"  triage execution: {triage.rsplit(':', 1)[-1]}")
    end = time.monotonic() + deadline_s
    answered = False
    while (
        not answered
        and sfn.describe_execution(executionArn=triage)["status"] == "RUNNING"
        and time.monotonic() < end
    ):
        if pending_task_token(sfn, triage):
            say(f"  approval requested; answering as the analyst would: vigil response approve {triage}")
            answer_approval(sfn, triage, approve=True, by="demo")
            answered = True
        time.sleep(0.1)
    d = _wait(sfn, triage, deadline_s)
    out = json.loads(d.get("output") or "{}")
    say(f"  decision: {out.get('decision')}  outcome: {out.get('outcome')}  ({d['status']})")
    for reason in out.get("reasons", []):
        say(f"    - {reason}")
    if out.get("isolationExecution"):
        say(f"  isolation execution: {out['isolationExecution'].rsplit(':', 1)[-1]}")
    if before is None:  # reconstruct from the isolation record (ResponseTable)
        ec2 = _client(session, "ec2", endpoint_url)
        item = _client(session, "dynamodb", endpoint_url).get_item(
            TableName=outputs["ResponseTableName"], Key={"pk": {"S": f"isolation#{instance_id}"}}
        )
        recorded = (item.get("Item") or {}).get("originalGroups", {}).get("M", {})
        before = {}
        for eni, value in recorded.items():
            ids = [g["S"] for g in value.get("L", [])]
            names = (
                {
                    g["GroupId"]: g["GroupName"]
                    for g in ec2.describe_security_groups(GroupIds=ids)["SecurityGroups"]
                }
                if ids
                else {}
            )
            before[eni] = sorted((g, names.get(g, "?")) for g in ids)
        _show(say, "security groups before (as recorded by isolation):", before)
    else:
        _show(say, "security groups before:", before)
    isolated_groups = groups_of(session, instance_id, endpoint_url)
    _show(say, "after isolation:", isolated_groups)
    isolated = all([name for _, name in gs] == ["vigil-isolation"] for gs in isolated_groups.values())
    rel = sfn.start_execution(
        stateMachineArn=outputs["ReleaseInstanceStateMachineArn"],
        name=f"release-{instance_id}-{int(time.time())}",
        input=json.dumps(
            {"instanceId": instance_id, "findingId": out.get("findingId"), "requestedBy": "demo"}
        ),
    )["executionArn"]
    r = _wait(sfn, rel, deadline_s)
    released = groups_of(session, instance_id, endpoint_url)
    _show(
        say, f"after release ({json.loads(r.get('output') or '{}').get('outcome', r['status'])}):", released
    )
    restored = released == before
    say(f"  original groups restored exactly: {'yes' if restored else 'NO'}")
    return {
        "triage": triage,
        "decision": out.get("decision"),
        "outcome": out.get("outcome"),
        "before": before,
        "isolated_groups": isolated_groups,
        "released_groups": released,
        "isolated": isolated,
        "restored": restored,
    }


def with_instance_id(batch: bytes, instance_id: str) -> bytes:
    """A recorded agent batch (gzip NDJSON or plain) re-addressed to ``instance_id``: moto cannot
    create an instance with a chosen id, so the demo points the recorded telemetry at the
    instance it launched (every occurrence of the recorded id is replaced)."""
    import gzip

    zipped = batch[:2] == b"\x1f\x8b"
    text = gzip.decompress(batch) if zipped else batch
    first = json.loads(text.split(b"\n", 1)[0])
    old = str((first.get("host") or {}).get("instance_id") or "")
    if old:
        text = text.replace(old.encode(), instance_id.encode())
    return gzip.compress(text, mtime=0) if zipped else text
