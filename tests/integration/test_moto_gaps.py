"""The moto 5.2.5 gaps that local/patches.py closes, asserted on moto as shipped.

Each test states a gap and fails the day moto changes that behaviour: then the patch it names can
go (or must change). Where cheap, the same test then applies the one patch and shows the fix.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local import patches  # noqa: E402

pytestmark = pytest.mark.integration

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(autouse=True)
def _moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    patches.restore_all()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield
    patches.restore_all()


def _function(name: str = "fn") -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return {'ok': True}\n")
    fn = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": buf.getvalue()},
    )
    return str(fn["FunctionArn"])


def test_lambda_code_runs_only_in_docker() -> None:
    """Gap closed by patches.in_process_lambda."""
    _function()
    out = boto3.client("lambda", region_name=REGION).invoke(FunctionName="fn", Payload=b"{}")
    assert out.get("FunctionError")
    assert "docker" in out["Payload"].read().decode().lower()


def test_kinesis_mapping_invokes_inline_one_record_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gap closed by patches.stream_mappings_by_pollers (+ local.pollers)."""
    from moto.awslambda.models import LambdaFunction

    seen: list[int] = []
    monkeypatch.setattr(
        LambdaFunction, "invoke", lambda self, body, *a: seen.append(len(json.loads(body)["Records"]))
    )
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName="s", ShardCount=1)
    arn = kinesis.describe_stream(StreamName="s")["StreamDescription"]["StreamARN"]
    boto3.client("lambda", region_name=REGION).create_event_source_mapping(
        EventSourceArn=arn, FunctionName=_function(), StartingPosition="TRIM_HORIZON", BatchSize=100
    )
    kinesis.put_records(StreamName="s", Records=[{"Data": b"x", "PartitionKey": "k"}] * 3)
    assert seen == [1, 1, 1]  # synchronously, inside put_records, one record each
    patches.stream_mappings_by_pollers()
    kinesis.put_records(StreamName="s", Records=[{"Data": b"x", "PartitionKey": "k"}] * 3)
    assert seen == [1, 1, 1]  # patched: nothing inline; the pollers deliver whole batches


def test_kinesis_iterator_from_stream_arn_names_no_stream() -> None:
    """Worked around in local.pollers (reads streams by name)."""
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName="s", ShardCount=1)
    arn = kinesis.describe_stream(StreamName="s")["StreamDescription"]["StreamARN"]
    it = kinesis.get_shard_iterator(
        StreamARN=arn, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException, match="Stream None"):
        kinesis.get_records(ShardIterator=it["ShardIterator"])


def _stream_table() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return dynamodb_backends[ACCOUNT][REGION].get_table("t")


def _create_by_update() -> None:
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName="t",
        Key={"id": {"S": "a"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "1"}},
    )


def test_update_item_that_creates_an_item_emits_two_inserts() -> None:
    """Gap closed by patches.dynamodb_update_item_one_stream_record."""
    table = _stream_table()
    _create_by_update()
    images = [
        (r.record["eventName"], sorted(r.record["dynamodb"].get("NewImage", {})))
        for r in table.stream_shard.items
    ]
    assert images == [("INSERT", ["id"]), ("INSERT", ["id", "v"])]
    patches.dynamodb_update_item_one_stream_record()
    table.stream_shard.items.clear()
    boto3.client("dynamodb", region_name=REGION).delete_item(TableName="t", Key={"id": {"S": "a"}})
    table.stream_shard.items.clear()
    _create_by_update()
    images = [
        (r.record["eventName"], sorted(r.record["dynamodb"].get("NewImage", {})))
        for r in table.stream_shard.items
    ]
    assert images == [("INSERT", ["id", "v"])]


def test_eventbridge_rule_with_a_lambda_target_breaks_put_events() -> None:
    """Gap closed by patches.eventbridge_lambda_and_sfn_targets."""
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["vigil"]}))
    events.put_targets(Rule="r", Targets=[{"Id": "1", "Arn": _function()}])
    entry = {"Source": "vigil", "DetailType": "Vigil Finding", "Detail": "{}"}
    with pytest.raises(NotImplementedError):
        events.put_events(Entries=[entry])


def _cfn_state_machine() -> None:
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "${Value}", "End": True}}}
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": "m",
                    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sfn",
                    "DefinitionString": json.dumps(definition),
                    "DefinitionSubstitutions": {"Value": "substituted"},
                },
            }
        }
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="sm", TemplateBody=json.dumps(template)
    )


def test_cfn_state_machines_ignore_substitutions_and_cannot_execute() -> None:
    """Gap closed by patches.cfn_state_machines_executable."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    _cfn_state_machine()
    assert sfn.list_state_machines()["stateMachines"] == []  # not in the executing backend
    from moto.stepfunctions.models import stepfunctions_backends

    [machine] = stepfunctions_backends[ACCOUNT][REGION].state_machines
    assert "${Value}" in machine.definition
    patches.cfn_state_machines_executable()
    boto3.client("cloudformation", region_name=REGION).delete_stack(StackName="sm")
    _cfn_state_machine()
    [listed] = sfn.list_state_machines()["stateMachines"]
    assert (
        "substituted" in sfn.describe_state_machine(stateMachineArn=listed["stateMachineArn"])["definition"]
    )


def test_cfn_state_machine_logging_configuration_is_dropped() -> None:
    """Gap closed by patches.cfn_state_machines_executable (it passes LoggingConfiguration on)."""
    from moto.stepfunctions.models import stepfunctions_backends

    def deploy(stack: str) -> None:
        props = {
            "StateMachineName": stack,
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sfn",
            "DefinitionString": json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
            "LoggingConfiguration": {
                "Level": "ERROR",
                "IncludeExecutionData": False,
                "Destinations": [
                    {"CloudWatchLogsLogGroup": {"LogGroupArn": "arn:aws:logs:x:1:log-group:g:*"}}
                ],
            },
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=stack,
            TemplateBody=json.dumps(
                {"Resources": {"M": {"Type": "AWS::StepFunctions::StateMachine", "Properties": props}}}
            ),
        )

    deploy("unpatched")
    [machine] = stepfunctions_backends[ACCOUNT][REGION].state_machines
    assert machine.loggingConfiguration == {"level": "OFF"}  # fails once moto keeps it
    patches.cfn_state_machines_executable()
    deploy("patched")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    [listed] = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "patched"]
    cfg = sfn.describe_state_machine(stateMachineArn=listed["stateMachineArn"])["loggingConfiguration"]
    assert cfg["level"] == "ERROR" and cfg["includeExecutionData"] is False
    assert cfg["destinations"][0]["cloudWatchLogsLogGroup"]["logGroupArn"].endswith("log-group:g:*")


def test_ref_of_an_event_bus_breaks_create_stack() -> None:
    """Why template.yaml uses !GetAtt FindingsBus.Name / .Arn, never !Ref FindingsBus."""
    template = {
        "Resources": {
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "b"}},
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {"EventBusName": {"Ref": "Bus"}, "EventPattern": {"source": ["vigil"]}},
            },
        }
    }
    cfn = boto3.client("cloudformation", region_name=REGION)
    with pytest.raises(AttributeError, match="EventBus"):
        cfn.create_stack(StackName="bus", TemplateBody=json.dumps(template))


def test_getatt_arn_of_a_state_machine_is_refused() -> None:
    """Gap closed by patches.cfn_state_machines_executable (GetAtt Machine.Arn)."""
    definition = {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sfn",
                    "DefinitionString": json.dumps(definition),
                },
            },
        },
        "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Machine", "Arn"]}}},
    }
    cfn = boto3.client("cloudformation", region_name=REGION)
    with pytest.raises(cfn.exceptions.ClientError, match="does not support attribute type Arn"):
        cfn.create_stack(StackName="arn", TemplateBody=json.dumps(template))
    patches.cfn_state_machines_executable()
    cfn.create_stack(StackName="arn2", TemplateBody=json.dumps(template))
    [out] = cfn.describe_stacks(StackName="arn2")["Stacks"][0]["Outputs"]
    assert out["OutputValue"].startswith("arn:aws:states:")


def test_novalue_inside_a_list_leaves_none_behind() -> None:
    """Gap closed by patches.cfn_novalue_in_lists."""
    template = {
        "Conditions": {"Never": {"Fn::Equals": ["a", "b"]}},
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
                    "Policies": [
                        {
                            "Fn::If": [
                                "Never",
                                {"PolicyName": "p", "PolicyDocument": {}},
                                {"Ref": "AWS::NoValue"},
                            ]
                        }
                    ],
                },
            }
        },
    }
    cfn = boto3.client("cloudformation", region_name=REGION)
    with pytest.raises(TypeError, match="not subscriptable"):
        cfn.create_stack(StackName="novalue", TemplateBody=json.dumps(template))
    patches.cfn_novalue_in_lists()
    cfn.create_stack(StackName="novalue2", TemplateBody=json.dumps(template))
    assert cfn.describe_stacks(StackName="novalue2")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
