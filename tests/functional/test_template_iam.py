"""template.yaml: least privilege for the response roles, encrypted logs, logging workflows.

GIVEN the template users deploy, THEN no IAM policy allows an EC2 write (anything but
Describe*/Get*/List*), a wildcard action, or any other write on Resource "*" without a
Condition; the protected tag is denied in IAM as well as in code; Vigil's security groups are
addressed by the tag Vigil sets; every log group is encrypted with the stack's KMS key, which
CloudWatch Logs of this region may use; and every state machine logs, without execution data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
READ_VERBS = ("Describe", "Get", "List")
# Actions AWS authorizes only on Resource "*" (no resource-level permissions), with the reason.
RESOURCELESS = {
    # CloudWatch Logs vended delivery, required for state machine logging
    # (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy)
    "logs:CreateLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:PutResourcePolicy",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse(TEMPLATE.read_text()))


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def _document(doc: Any) -> dict[str, Any]:
    """A policy document: an object, a JSON string, or a !Sub of a JSON string (${X} -> X)."""
    if isinstance(doc, dict) and "Fn::Sub" in doc:
        text = doc["Fn::Sub"] if isinstance(doc["Fn::Sub"], str) else doc["Fn::Sub"][0]
        return dict(json.loads(re.sub(r"\$\{([\w:.]+)\}", r"\1", text)))
    if isinstance(doc, str):
        return dict(json.loads(doc))
    return dict(doc)


def statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(resource logical id, statement) for every identity policy the template declares."""
    for lid, res in template["Resources"].items():
        props = res.get("Properties") or {}
        docs: list[Any] = []
        if res["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            docs = [p for p in _list(props.get("Policies") or []) if isinstance(p, dict) and "Statement" in p]
        elif res["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in props.get("Policies") or []]
        elif res["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            docs = [props["PolicyDocument"]]
        for doc in docs:
            for st in _list(_document(doc)["Statement"]):
                yield lid, st


def _broad(action: str) -> bool:
    service, _, name = action.partition(":")
    if "*" in action:
        return True
    if name.startswith(READ_VERBS):
        return False
    return service == "ec2" or action not in RESOURCELESS


def test_no_write_or_wildcard_action_on_every_resource_without_a_condition(template: dict[str, Any]) -> None:
    found = []
    for lid, st in statements(template):
        if st.get("Effect") != "Allow" or "*" not in _list(st.get("Resource")) or st.get("Condition"):
            continue
        found += [f"{lid}: {a}" for a in _list(st.get("Action")) if _broad(a)]
    assert found == []


def test_the_check_catches_what_it_must() -> None:
    assert _broad("ec2:CreateTags") and _broad("ec2:*") and _broad("*") and _broad("s3:PutObject")
    assert not _broad("ec2:DescribeInstances") and not _broad("logs:CreateLogDelivery")


def _role_statements(template: dict[str, Any], lid: str) -> list[dict[str, Any]]:
    return [st for owner, st in statements(template) if owner == lid]


def _allowed(template: dict[str, Any], lid: str) -> set[str]:
    return {
        a for st in _role_statements(template, lid) if st["Effect"] == "Allow" for a in _list(st["Action"])
    }


def test_the_isolation_role_is_denied_on_the_protected_tag(template: dict[str, Any]) -> None:
    machine = template["Resources"]["IsolateInstanceStateMachine"]["Properties"]
    assert {"Ref": "IsolationProtectedTagGuard"} in machine["Policies"]
    [deny] = [st for st in _role_statements(template, "IsolationProtectedTagGuard") if st["Effect"] == "Deny"]
    # the key is the stack parameter (the !Sub placeholder, here read as its name)
    assert deny["Condition"] == {"Null": {"aws:ResourceTag/ProtectedTagKey": "false"}}
    assert deny["Resource"] == "*"
    writes = {
        a
        for a in _allowed(template, "IsolateInstanceStateMachine")
        if a.startswith(("ec2:", "autoscaling:")) and not a.split(":")[1].startswith(READ_VERBS)
    }
    assert writes and writes <= set(deny["Action"]), writes - set(deny["Action"])
    assert "AllowedPattern" in template["Parameters"]["ProtectedTagKey"]  # no quote into the JSON


def test_interfaces_only_move_into_vigils_own_groups(template: dict[str, Any]) -> None:
    on_groups = [
        st
        for st in _role_statements(template, "IsolateInstanceStateMachine")
        if "ec2:ModifyNetworkInterfaceAttribute" in _list(st["Action"])
        and any("security-group" in json.dumps(r) for r in _list(st["Resource"]))
    ]
    assert on_groups
    for st in on_groups:
        assert st["Condition"] == {"StringEquals": {"ec2:ResourceTag/vigil:role": ["untrack", "isolation"]}}


def test_the_groups_function_changes_only_the_groups_vigil_creates(template: dict[str, Any]) -> None:
    for st in _role_statements(template, "IsolationGroupsFunction"):
        writes = [a for a in _list(st["Action"]) if not a.split(":")[1].startswith(READ_VERBS)]
        on_groups = any("security-group" in json.dumps(r) for r in _list(st["Resource"]))
        if writes and on_groups:
            keys = {k for cond in st["Condition"].values() for k in cond}
            assert keys & {"aws:RequestTag/vigil:role", "ec2:ResourceTag/vigil:role", "ec2:CreateAction"}, st


@pytest.mark.parametrize(
    ("machine", "file"),
    [
        ("IsolateInstanceStateMachine", "isolate_instance"),
        ("ReleaseInstanceStateMachine", "release_instance"),
    ],
)
def test_every_ec2_call_of_a_workflow_is_allowed_to_its_role(
    template: dict[str, Any], machine: str, file: str
) -> None:
    asl = (REPO / "statemachines" / f"{file}.asl.json").read_text()
    used = {
        f"{svc}:{api[0].upper()}{api[1:]}"
        for svc, api in re.findall(r"arn:aws:states:::aws-sdk:(ec2|autoscaling):(\w+)", asl)
    }
    assert used and used <= _allowed(template, machine), used - _allowed(template, machine)


def test_every_log_group_is_encrypted_with_the_stacks_key(template: dict[str, Any]) -> None:
    res = template["Resources"]
    groups = {lid: r for lid, r in res.items() if r["Type"] == "AWS::Logs::LogGroup"}
    for lid, r in groups.items():
        assert r["Properties"].get("KmsKeyId") == {"Fn::GetAtt": ["LogsKey", "Arn"]}, lid
    for lid, r in res.items():
        if r["Type"] == "AWS::Serverless::Function":
            assert f"{lid}LogGroup" in groups, f"{lid} has no log group of its own (unencrypted default)"
    key = res["LogsKey"]["Properties"]
    assert res["LogsKey"]["Type"] == "AWS::KMS::Key" and key["EnableKeyRotation"] is True
    [logs] = [
        st
        for st in key["KeyPolicy"]["Statement"]
        if st["Principal"].get("Service") == {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}
    ]
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]


def test_every_state_machine_logs_without_execution_data(template: dict[str, Any]) -> None:
    res = template["Resources"]
    machines = {lid: r for lid, r in res.items() if r["Type"] == "AWS::Serverless::StateMachine"}
    assert len(machines) == 3
    for lid, r in machines.items():
        logging = r["Properties"]["Logging"]
        assert logging["Level"] in ("ALL", "ERROR") and logging["IncludeExecutionData"] is False, lid
        [dest] = logging["Destinations"]
        group = dest["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        assert res[group]["Type"] == "AWS::Logs::LogGroup", lid
        assert "logs:CreateLogDelivery" in _allowed(template, lid), lid


def test_the_ingest_reads_ec2_and_changes_nothing_there(template: dict[str, Any]) -> None:
    # GIVEN the ingest's policies, THEN its only EC2 actions are the two reads instance details need
    # (vigil_aws.instances), on "*" because EC2 has no resource-level permission for Describe*
    ec2 = [
        (a, st)
        for st in _role_statements(template, "IngestFunction")
        if st["Effect"] == "Allow"
        for a in _list(st["Action"])
        if a.startswith("ec2:")
    ]
    assert sorted(a for a, _ in ec2) == ["ec2:DescribeImages", "ec2:DescribeInstances"]
    assert all(_list(st["Resource"]) == ["*"] and not _broad(a) for a, st in ec2)
