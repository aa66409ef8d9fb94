"""Multi-account templates: templates/member.yaml and the administrator side of template.yaml.

GIVEN the member template that StackSets deploy to every account of an OU, THEN cfn-lint is clean,
it is deployable by service-managed StackSets (no transform, no named IAM resource that would
collide when one account gets the stack in two Regions), its agent policy can only write to the
administrator's stream (by ARN), encrypt through Kinesis with the administrator's key, read the
artifact and its own tag, and its install document runs the administrator's script against the
stream ARN. GIVEN the administrator template, THEN the stream's resource policy and the key policy
admit only MemberAccountIds or principals of the Organization, and only to write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_template_iam import _broad, _list, statements

REPO = Path(__file__).resolve().parents[2]
MEMBER = REPO / "templates" / "member.yaml"
ADMIN = REPO / "template.yaml"


def _load(path: Path) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse(path.read_text()))


@pytest.fixture(scope="module")
def member() -> dict[str, Any]:
    return _load(MEMBER)


@pytest.fixture(scope="module")
def admin() -> dict[str, Any]:
    return _load(ADMIN)


def test_cfn_lint_is_clean() -> None:
    from cfnlint.api import lint_all

    problems = [p for p in lint_all(MEMBER.read_text()) if p.rule.id[0] in "EW"]
    assert [str(p) for p in problems] == []


def test_it_is_deployable_by_service_managed_stacksets(member: dict[str, Any]) -> None:
    assert "Transform" not in member  # no SAM/macros: StackSets would need CAPABILITY_AUTO_EXPAND
    named = [
        f"{lid}.{key}"
        for lid, r in member["Resources"].items()
        for key in ("RoleName", "ManagedPolicyName", "InstanceProfileName", "Name")
        if key in (r.get("Properties") or {}) and r["Type"].startswith("AWS::IAM::")
    ]
    assert named == []  # IAM is global: a named role would collide between two Regions of one account
    # every value from the administrator is a parameter: no account id is written in the template
    import re

    assert re.findall(r"\b\d{12}\b", MEMBER.read_text()) == []
    required = {k for k, p in member["Parameters"].items() if "Default" not in p}
    assert required == {
        "AdministratorAccountId",
        "TelemetryStreamArn",
        "TelemetryKeyArn",
        "AgentArtifactS3Bucket",
    }


def test_the_agent_policy_only_writes_to_the_administrators_stream(member: dict[str, Any]) -> None:
    found = {st["Sid"]: st for lid, st in statements(member) if lid == "AgentInstancePolicy"}
    assert set(found) == {
        "PutTelemetry",
        "EncryptTelemetryThroughKinesis",
        "ReadAgentArtifact",
        "ReadOptOutTag",
    }
    assert set(found["PutTelemetry"]["Action"]) == {
        "kinesis:PutRecords",
        "kinesis:PutRecord",
        "kinesis:DescribeStreamSummary",
    }
    assert found["PutTelemetry"]["Resource"] == {"Ref": "TelemetryStreamArn"}
    kms = found["EncryptTelemetryThroughKinesis"]
    assert kms["Action"] == "kms:GenerateDataKey" and kms["Resource"] == {"Ref": "TelemetryKeyArn"}
    assert "kms:ViaService" in kms["Condition"]["StringEquals"]
    assert found["ReadOptOutTag"]["Action"] == "ec2:DescribeTags"
    assert not any(
        a.startswith(("kinesis:Get", "kinesis:List", "kinesis:Subscribe"))
        for st in found.values()
        for a in _list(st["Action"])
    )
    broad = [
        a
        for _, st in statements(member)
        if st.get("Effect") == "Allow" and "*" in _list(st.get("Resource")) and not st.get("Condition")
        for a in _list(st["Action"])
        if _broad(a)
    ]
    assert broad == []
    role = member["Resources"]["AgentInstanceRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"
    assert {"Ref": "AgentInstancePolicy"} in role["ManagedPolicyArns"]


def _script(template: dict[str, Any]) -> str:
    content = template["Resources"]["AgentInstallDocument"]["Properties"]["Content"]
    return str(content["mainSteps"][0]["inputs"]["runCommand"][0])


def test_the_install_document_is_the_administrators_pointed_at_the_stream_arn(
    member: dict[str, Any], admin: dict[str, Any]
) -> None:
    params = member["Resources"]["AgentInstallDocument"]["Properties"]["Content"]["parameters"]
    assert params["StreamName"]["default"] == {"Ref": "TelemetryStreamArn"}
    assert params["AccountId"]["default"] == {"Ref": "AWS::AccountId"}
    assert params["Region"]["default"] == {
        "Fn::Select": [3, {"Fn::Split": [":", {"Ref": "TelemetryStreamArn"}]}]
    }
    # the same script but one line: the opt-out tag is read in the instance's own Region
    mine, theirs = _script(member).splitlines(), _script(admin).splitlines()
    assert len(mine) == len(theirs)
    differ = [(a, b) for a, b in zip(mine, theirs, strict=True) if a != b]
    assert len(differ) == 1 and "placement/region" in differ[0][0]
    assert (
        member["Resources"]["AgentAssociation"]["Properties"]["Targets"]
        == admin["Resources"]["AgentAssociation"]["Properties"]["Targets"]
    )


def test_the_administrators_stream_admits_only_members_or_the_organization_to_write(
    admin: dict[str, Any],
) -> None:
    res = admin["Resources"]
    policy = res["TelemetryStreamPolicy"]
    assert policy["Condition"] == "MultiAccount"
    (st,) = policy["Properties"]["ResourcePolicy"]["Statement"]
    assert set(st["Action"]) == {"kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary"}
    assert st["Principal"] == {"AWS": {"Fn::If": ["HasMemberAccounts", {"Ref": "MemberAccountIds"}, "*"]}}
    # "*" only ever with the Organization's condition: MultiAccount without members means HasOrganization
    assert st["Condition"]["Fn::If"][0] == "HasOrganization"
    assert st["Condition"]["Fn::If"][1] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    assert admin["Conditions"]["MultiAccount"] == {
        "Fn::Or": [{"Condition": "HasMemberAccounts"}, {"Condition": "HasOrganization"}]
    }
    # the stream switches to the stack's own key (an AWS-managed key cannot be shared)
    key_id = res["TelemetryStream"]["Properties"]["StreamEncryption"]["KeyId"]
    assert key_id == {
        "Fn::If": ["MultiAccount", {"Fn::GetAtt": ["TelemetryKey", "Arn"]}, "alias/aws/kinesis"]
    }
    members = [
        s
        for s in res["TelemetryKey"]["Properties"]["KeyPolicy"]["Statement"]
        if s["Sid"] != "AdministratorAccount"
    ]
    (grant,) = members
    assert grant["Action"] == "kms:GenerateDataKey"
    for branch in grant["Condition"]["StringEquals"]["Fn::If"][1:]:
        assert "kms:ViaService" in branch
    env = res["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["VIGIL_MEMBER_ACCOUNT_IDS"] == {"Fn::Join": [",", {"Ref": "MemberAccountIds"}]}
    assert env["VIGIL_ORGANIZATION_ID"] == {"Ref": "OrganizationId"}
    outputs = admin["Outputs"]
    assert {"TelemetryStreamArn", "TelemetryKeyArn", "AgentArtifactLocation"} <= set(outputs)


def test_the_member_parameters_are_what_the_administrator_outputs(
    member: dict[str, Any], admin: dict[str, Any]
) -> None:
    for name in ("TelemetryStreamArn", "TelemetryKeyArn"):
        assert name in member["Parameters"] and name in admin["Outputs"]
