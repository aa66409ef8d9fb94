"""The response workflows on emulated AWS: the real ASL files on moto's Step Functions
interpreter, the real Lambda handlers run in this process, EC2 / Auto Scaling / DynamoDB / SNS
state in moto.

One emulated account per test module (a moto EC2 setup costs ~1.5 s): each test makes its own
instances, so tests never share the resources they assert on.

- In-process Lambda: the offline stack's own patch (``local.patches.in_process_lambda`` with a
  ``LocalRuntime``, the same code path as ``make demo``), restored after the module.
- moto's Step Functions gaps (startExecution.sync:2, EC2 error names): ``local.response_patches``.
- Throttling: ``throttle(method, times)`` makes moto's EC2 backend raise RequestLimitExceeded
  the first ``times`` calls of ``method`` (see test_isolate.py).
- Tags: ``tag_writes`` records every tag written to EC2 (CreateTags and TagSpecifications alike),
  for assertions against EC2's limits (moto checks the count only; local.response_patches adds
  the lengths, this records what was asked).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `local` (the offline stack) lives at the repo root, not in a layer
    sys.path.insert(0, str(REPO))

from local import patches, response_patches  # noqa: E402
from local.deploy import zip_dir  # noqa: E402
from local.runtime import LocalRuntime  # noqa: E402
from vigil_aws import clients  # noqa: E402

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/vigil-response-test"
FUNCTIONS = {
    "TriagePolicyFunction": "triage_policy_function",
    "IsolationPlanFunction": "isolation_plan_function",
    "IsolationGroupsFunction": "isolation_groups_function",
    "ReleasePlanFunction": "release_plan_function",
}
PROTECTED_TAG = "vigil:protected"
BUDGET_PER_HOUR = 50


def substitute(path: Path, subs: dict[str, str]) -> str:
    """DefinitionSubstitutions, as CloudFormation applies them (moto does not)."""
    text = path.read_text()
    for key, value in subs.items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text, f"unsubstituted placeholder left in {path.name}"
    return text


@dataclass
class Stack:
    session: boto3.Session
    findings_table: str
    response_table: str
    topic_arn: str
    queue_url: str
    machines: dict[str, str]
    runtime: LocalRuntime
    vpc_id: str = ""
    subnet_id: str = ""
    ami: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, name: str) -> Any:
        return self.session.client(name, region_name=REGION)

    # -- EC2 fixtures --------------------------------------------------------------------
    def security_group(self, name: str) -> str:
        return str(
            self.client("ec2").create_security_group(
                GroupName=f"{name}-{uuid.uuid4().hex[:6]}", Description=name, VpcId=self.vpc_id
            )["GroupId"]
        )

    def instance(self, *, groups: list[list[str]] | None = None, tags: dict[str, str] | None = None) -> str:
        """An instance with one interface per entry of ``groups`` (default: two interfaces)."""
        groups = groups or [
            [self.security_group("web"), self.security_group("ssh")],
            [self.security_group("db")],
        ]
        spec: dict[str, Any] = {
            "ImageId": self.ami,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": "t3.micro",
            "NetworkInterfaces": [
                {"DeviceIndex": i, "SubnetId": self.subnet_id, "Groups": g} for i, g in enumerate(groups)
            ],
        }
        if tags:
            spec["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        return str(self.client("ec2").run_instances(**spec)["Instances"][0]["InstanceId"])

    def groups_by_interface(self, instance_id: str) -> dict[str, list[str]]:
        enis = self.client("ec2").describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )["NetworkInterfaces"]
        return {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in enis}

    def interface_tags(self, instance_id: str) -> dict[str, dict[str, str]]:
        enis = self.client("ec2").describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
        )["NetworkInterfaces"]
        return {e["NetworkInterfaceId"]: {t["Key"]: t["Value"] for t in e.get("TagSet", [])} for e in enis}

    def instance_tags(self, instance_id: str) -> dict[str, str]:
        r = self.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][
            0
        ]
        return {t["Key"]: t["Value"] for t in r.get("Tags", [])}

    def termination_protection(self, instance_id: str) -> bool:
        a = self.client("ec2").describe_instance_attribute(
            InstanceId=instance_id, Attribute="disableApiTermination"
        )
        return bool(a["DisableApiTermination"]["Value"])

    def evidence_snapshots(self, finding_id: str) -> list[dict[str, Any]]:
        return list(
            self.client("ec2").describe_snapshots(
                OwnerIds=["self"], Filters=[{"Name": "tag:vigil:finding-id", "Values": [finding_id]}]
            )["Snapshots"]
        )

    def isolation_record(self, instance_id: str) -> dict[str, Any] | None:
        """The isolation record in ResponseTable (originals per interface), plain values."""
        from boto3.dynamodb.types import TypeDeserializer

        item = (
            self.client("dynamodb")
            .get_item(TableName=self.response_table, Key={"pk": {"S": f"isolation#{instance_id}"}})
            .get("Item")
        )
        if item is None:
            return None
        d = TypeDeserializer()
        return {k: d.deserialize(v) for k, v in item.items()}

    def group_names(self, group_ids: list[str]) -> list[str]:
        sgs = self.client("ec2").describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
        return sorted(g["GroupName"] for g in sgs)

    # -- findings --------------------------------------------------------------------------
    def store_finding(self, finding: dict[str, Any]) -> None:
        self.client("dynamodb").put_item(
            TableName=self.findings_table,
            Item={
                "id": {"S": finding["id"]},
                "type": {"S": finding["type"]},
                "instanceId": {"S": finding["resource"]["instanceDetails"]["instanceId"]},
            },
        )

    def finding_item(self, finding_id: str) -> dict[str, Any]:
        item = (
            self.client("dynamodb")
            .get_item(TableName=self.findings_table, Key={"id": {"S": finding_id}})
            .get("Item", {})
        )
        return {k: next(iter(v.values())) for k, v in item.items()}

    # -- executions ----------------------------------------------------------------------------
    def start(self, machine: str, doc: dict[str, Any], name: str | None = None) -> str:
        # Always a name: without one moto's execution ARN ends in ":None" (toolchain.md §3a).
        return str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=self.machines[machine],
                name=name or f"t-{uuid.uuid4().hex[:12]}",
                input=json.dumps(doc),
            )["executionArn"]
        )

    def wait(self, execution_arn: str, *, until: str = "done", deadline_s: float = 90) -> dict[str, Any]:
        """Poll until the execution ends (or, with until="approval", until it waits for one).

        The deadline only guards against a hung interpreter; nothing asserts on durations.
        """
        sfn = self.client("stepfunctions")
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            d = sfn.describe_execution(executionArn=execution_arn)
            if d["status"] != "RUNNING":
                return dict(d)
            if until == "approval":
                events = sfn.get_execution_history(
                    executionArn=execution_arn, reverseOrder=True, maxResults=5
                )["events"]
                if any(e["type"] == "TaskSubmitted" for e in events):
                    return dict(d)
            time.sleep(0.05)
        raise AssertionError(f"{execution_arn} still RUNNING after {deadline_s}s (hung interpreter?)")

    def run(self, machine: str, doc: dict[str, Any]) -> dict[str, Any]:
        d = self.wait(self.start(machine, doc))
        d["outputDoc"] = json.loads(d["output"]) if d.get("output") else None
        return d

    def messages(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for m in got:
                body = json.loads(m["Body"])
                out.append(json.loads(body["Message"]) if "Message" in body else body)
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def fill_budget(self) -> None:
        """Use up this hour's (and the next hour's, in case the clock turns) isolation budget."""
        now = datetime.now(UTC)
        for t in (now, now + timedelta(hours=1)):
            self.client("dynamodb").put_item(
                TableName=self.response_table,
                Item={
                    "pk": {"S": "isolation-budget#" + t.strftime("%Y-%m-%dT%H")},
                    "isolations": {"N": str(BUDGET_PER_HOUR)},
                },
            )

    def clear_budget(self) -> None:
        ddb = self.client("dynamodb")
        for item in self.budget_items():
            ddb.delete_item(TableName=self.response_table, Key={"pk": item["pk"]})

    def budget_items(self) -> list[dict[str, Any]]:
        items = self.client("dynamodb").scan(TableName=self.response_table)["Items"]
        return [i for i in items if i["pk"]["S"].startswith("isolation-budget#")]


def finding(
    instance_id: str,
    *,
    maturity: str = "stable",
    severity: float = 8.0,
    finding_type: str = "Execution:Runtime/ReverseShell",
    identity_verified: bool = True,
) -> dict[str, Any]:
    """A GuardDuty-shaped finding, as PublishFunction puts it on FindingsBus (by default from a
    record whose instance identity ingest verified)."""
    fid = uuid.uuid4().hex
    return {
        "schemaVersion": "2.0",
        "id": fid,
        "type": finding_type,
        "severity": severity,
        "title": f"Reverse shell on EC2 instance {instance_id}.",
        "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": instance_id}},
        "service": {
            "serviceName": "vigil",
            "runtimeDetails": {
                "process": {
                    "name": "bash",
                    "executablePath": "/usr/bin/bash",
                    "pid": 4242,
                    "lineage": [
                        {"name": "nc", "pid": 4241, "executablePath": "/usr/bin/nc"},
                        {"name": "sshd", "pid": 1001, "executablePath": "/usr/sbin/sshd"},
                    ],
                }
            },
            "additionalInfo": {
                "type": "default",
                "value": json.dumps({"maturity": maturity, "identityVerified": identity_verified}),
            },
        },
    }


def bus_event(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Vigil Finding",
        "source": "vigil",
        "account": "123456789012",
        "time": "2026-11-27T22:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": f,
    }


def _deploy(session: boto3.Session, runtime: LocalRuntime, policy_env: dict[str, str]) -> Stack:
    c = lambda n: session.client(n, region_name=REGION)  # noqa: E731
    ddb = c("dynamodb")
    for name, key in (("vigil-findings", "id"), ("vigil-response", "pk")):
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    topic = c("sns").create_topic(Name="vigil-response")["TopicArn"]
    queue_url = c("sqs").create_queue(QueueName="vigil-response-inbox")["QueueUrl"]
    queue_arn = c("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    c("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    c("iam").create_role(RoleName="vigil-response-test", AssumeRolePolicyDocument="{}")
    envs = {
        "TriagePolicyFunction": policy_env,
        "IsolationPlanFunction": {
            "PROTECTED_TAG_KEY": PROTECTED_TAG,
            "ISOLATION_BUDGET_PER_HOUR": str(BUDGET_PER_HOUR),
        },
        "IsolationGroupsFunction": {},
        "ReleasePlanFunction": {},
    }
    arns = {}
    for logical, folder in FUNCTIONS.items():
        arns[logical + "Arn"] = c("lambda").create_function(
            FunctionName=logical,
            Runtime="python3.11",
            Role=ROLE_ARN,
            Handler="app.handler",
            Code={"ZipFile": zip_dir(REPO / "functions" / folder)},
            Environment={"Variables": {"POWERTOOLS_SERVICE_NAME": logical, **envs[logical]}},
            Timeout=60,
        )["FunctionArn"]
    subs = {
        **arns,
        "FindingsTableName": "vigil-findings",
        "ResponseTableName": "vigil-response",
        "ResponseTopicArn": topic,
    }
    sfn = c("stepfunctions")
    machines = {}
    for name, file in (("IsolateInstance", "isolate_instance"), ("ReleaseInstance", "release_instance")):
        machines[name] = sfn.create_state_machine(
            name=name,
            definition=substitute(REPO / "statemachines" / f"{file}.asl.json", subs),
            roleArn=ROLE_ARN,
        )["stateMachineArn"]
    subs["IsolateInstanceStateMachineArn"] = machines["IsolateInstance"]
    machines["Triage"] = sfn.create_state_machine(
        name="Triage",
        definition=substitute(REPO / "statemachines" / "triage.asl.json", subs),
        roleArn=ROLE_ARN,
    )["stateMachineArn"]
    ec2 = c("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"][
        "SubnetId"
    ]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return Stack(
        session, "vigil-findings", "vigil-response", topic, queue_url, machines, runtime, vpc, subnet, ami
    )


POLICY_ENV = {
    "RESPONSE_SEVERITY_THRESHOLD": "7",
    "RESPONSE_FINDING_TYPES": "*",
    "PROTECTED_TAG_KEY": PROTECTED_TAG,
    "RESPONSE_DRY_RUN": "false",
    "APPROVAL_TIMEOUT_SECONDS": "300",
    "APPROVAL_DEFAULT_ACTION": "notify",
}


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One emulated account with the three workflows. A module may override the triage policy
    environment with a module-level ``POLICY_ENV`` dict."""
    env = {**POLICY_ENV, **getattr(request.module, "POLICY_ENV", {})}
    runtime = LocalRuntime(log_path=tmp_path_factory.mktemp("lambda") / "lambda.log")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        # The offline stack's own patches: handlers in this process, moto's SFN gaps closed.
        patches.in_process_lambda(runtime)
        response_patches.apply()
        clients.reset()
        try:
            yield _deploy(boto3.Session(region_name=REGION), runtime, env)
        finally:
            patches.restore_all()  # undoes the response patches too
            clients.reset()


@pytest.fixture
def throttle(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``throttle("modify_network_interface_attribute", times=1)``: the EC2 backend raises
    RequestLimitExceeded on the first ``times`` calls of that method, then behaves."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models import EC2Backend

    calls: dict[str, int] = {}

    def install(method: str, times: int = 1) -> dict[str, int]:
        original = getattr(EC2Backend, method)

        def throttled(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls[method] = calls.get(method, 0) + 1
            if calls[method] <= times:
                raise EC2ClientError("RequestLimitExceeded", "Request limit exceeded.")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(EC2Backend, method, throttled)
        return calls

    return install


@dataclass
class TagWrite:
    resource_id: str
    key: str
    value: str


@pytest.fixture
def tag_writes(monkeypatch: pytest.MonkeyPatch) -> list[TagWrite]:
    """Every tag EC2 is asked to write during the test, in order (whatever the outcome)."""
    from moto.ec2.models.tags import TagBackend

    writes: list[TagWrite] = []
    original = TagBackend.create_tags

    def recording(self: Any, resource_ids: list[str], tags: dict[str, str]) -> bool:
        writes.extend(TagWrite(r, k, v) for r in resource_ids for k, v in tags.items())
        return bool(original(self, resource_ids, tags))

    monkeypatch.setattr(TagBackend, "create_tags", recording)
    return writes
