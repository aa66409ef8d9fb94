"""The moto gaps local/response_patches.py closes. Each test shows the gap unpatched and the fix
patched; when moto fixes a gap the "unpatched" assertion fails, and the patch can go."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from local import response_patches

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::123456789012:role/r"


def _run(definition: dict[str, Any], name: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    ex = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    for _ in range(400):
        d = sfn.describe_execution(executionArn=ex)
        if d["status"] != "RUNNING":
            return dict(d)
        time.sleep(0.025)
    raise AssertionError("hung")


def _sync2(suffix: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    child = sfn.create_state_machine(
        name=f"child-{suffix}",
        definition=json.dumps(
            {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}}
        ),
        roleArn=ROLE,
    )["stateMachineArn"]
    return _run(
        {
            "StartAt": "C",
            "States": {
                "C": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::states:startExecution.sync:2",
                    "Parameters": {"StateMachineArn": child, "Name": f"c-{suffix}", "Input": {}},
                    "ResultSelector": {"out.$": "$.Output"},
                    "End": True,
                }
            },
        },
        f"parent-{suffix}",
    )


def _ec2_error(suffix: str) -> str:
    d = _run(
        {
            "StartAt": "D",
            "States": {
                "D": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:ec2:describeInstances",
                    "Parameters": {"InstanceIds": ["i-0000000000000000f"]},
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "E"}],
                    "End": True,
                },
                "E": {"Type": "Pass", "End": True},
            },
        },
        f"ec2-{suffix}",
    )
    return str(json.loads(d["output"])["Error"])


@pytest.fixture
def aws() -> Any:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield
    response_patches.undo()


def test_start_execution_sync2_needs_the_patch(aws: None) -> None:
    unpatched = _sync2("a")
    assert unpatched["status"] == "FAILED" and "StateMachineArn" in unpatched.get("cause", "")
    response_patches.apply()
    patched = _sync2("b")
    assert patched["status"] == "SUCCEEDED" and json.loads(patched["output"]) == {"out": {"ok": 1}}


def test_ec2_error_names_need_the_patch(aws: None) -> None:
    assert _ec2_error("a") == "ec2.ec2Exception"
    response_patches.apply()
    assert _ec2_error("b") == "Ec2.Ec2Exception"  # the name Step Functions uses


def test_string_event_pattern_in_cloudformation_needs_the_patch(aws: None) -> None:
    tpl = {
        "Resources": {
            "R": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": json.dumps(
                        {"source": ["vigil"], "detail": {"severity": [{"numeric": [">=", 7]}]}}
                    )
                },
            }
        }
    }
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    with pytest.raises(Exception, match="has no attribute 'items'"):
        cfn.create_stack(StackName="a", TemplateBody=json.dumps(tpl))
    response_patches.apply()
    cfn.create_stack(StackName="b", TemplateBody=json.dumps(tpl))
    rules = boto3.client("events", region_name="us-east-1").list_rules()["Rules"]
    assert any(json.loads(r["EventPattern"])["detail"]["severity"] == [{"numeric": [">=", 7]}] for r in rules)


def test_tag_lengths_are_enforced_as_ec2_does_only_with_the_patch(aws: None) -> None:
    from botocore.exceptions import ClientError

    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    long_value = ",".join(f"sg-{n:017x}" for n in range(13))  # 272 characters: EC2 says no
    # unpatched, moto takes it (fails once moto checks lengths: then drop patch 4)
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k", "Value": long_value}])
    response_patches.apply()
    # patched: InvalidParameterValue, as EC2 answers; a 128-character key and 256-character value pass
    with pytest.raises(ClientError) as err:
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k2", "Value": long_value}])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError):
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k" * 129, "Value": "v"}])
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k" * 128, "Value": "v" * 256}])


def test_string_policy_document_in_cloudformation_needs_the_patch(aws: None) -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "ec2:CreateTags",
                "Resource": "*",
                "Condition": {"Null": {"aws:ResourceTag/vigil:protected": "false"}},
            }
        ],
    }
    tpl = {
        "Resources": {
            "P": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": json.dumps(doc)}}
        }
    }
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    with pytest.raises(Exception, match="MalformedPolicyDocument"):
        cfn.create_stack(StackName="a", TemplateBody=json.dumps(tpl))
    response_patches.apply()
    cfn.create_stack(StackName="b", TemplateBody=json.dumps(tpl))
    iam = boto3.client("iam", region_name="us-east-1")
    arn = next(p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"])
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    stored = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert stored == doc


def test_log_group_kms_key_in_cloudformation_needs_the_patch(aws: None) -> None:
    kms = boto3.client("kms", region_name="us-east-1")
    key = kms.create_key()["KeyMetadata"]["Arn"]

    def group(name: str) -> dict[str, Any]:
        tpl = {
            "Resources": {
                "G": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": name, "KmsKeyId": key}}
            }
        }
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName=name.strip("/").replace("/", "-"), TemplateBody=json.dumps(tpl)
        )
        logs = boto3.client("logs", region_name="us-east-1")
        [g] = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        return dict(g)

    assert "kmsKeyId" not in group("/unpatched")  # fails once moto keeps the key: drop patch 6
    response_patches.apply()
    assert group("/patched")["kmsKeyId"] == key


def test_kms_key_policy_in_cloudformation_needs_the_patch(aws: None) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    tpl = {"Resources": {"K": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy}}}}
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    kms = boto3.client("kms", region_name="us-east-1")

    def key_of(stack: str) -> str:
        cfn.create_stack(StackName=stack, TemplateBody=json.dumps(tpl))
        [res] = cfn.describe_stack_resources(StackName=stack)["StackResources"]
        return str(res["PhysicalResourceId"])

    unpatched = key_of("a")
    with pytest.raises(TypeError, match="must be str"):  # fails once moto stores a string: drop patch 7
        kms.describe_key(KeyId=unpatched)
    response_patches.apply()
    patched = key_of("b")
    assert kms.describe_key(KeyId=patched)["KeyMetadata"]["Enabled"] is True
    assert json.loads(kms.get_key_policy(KeyId=patched, PolicyName="default")["Policy"]) == policy
