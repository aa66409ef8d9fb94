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
