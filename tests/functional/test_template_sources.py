"""template.yaml: the AWS-delivered sources (docs/sources.md § Delivery).

GIVEN the template users deploy, THEN every source resource is opt-in (a condition on a
parameter), the log groups reach IngestFunction only through SourcesStream with the settings of
the agents' mapping, every delivery role can be assumed only by its AWS service for this account
and may only put records on SourcesStream (or write its own log group), instances may never write
the sources' log groups, the CloudTrail rule takes only instance-role calls (read-only ones too),
and IngestFunction's LOG_SOURCES names exactly the groups the template creates.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from test_template_iam import _document, _list, statements

from vigil.sources import SourceConfig


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse
    from test_template_iam import TEMPLATE

    return dict(yaml_parse(TEMPLATE.read_text()))


SOURCE_TYPES = {
    "AWS::EC2::FlowLog",
    "AWS::Logs::SubscriptionFilter",
    "AWS::Route53Resolver::ResolverQueryLoggingConfig",
    "AWS::Route53Resolver::ResolverQueryLoggingConfigAssociation",
}
SOURCE_IDS = {
    "SourcesStream",
    "SourcesStreamMapping",
    "SourcesSubscriptionRole",
    "FlowLogGroup",
    "FlowLogDeliveryRole",
    "ResolverLogGroup",
    "ResolverLogGroupPolicy",
    "CloudTrailRule",
    "CloudTrailRuleRole",
}


def _sources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        lid: r for lid, r in template["Resources"].items() if r["Type"] in SOURCE_TYPES or lid in SOURCE_IDS
    }


def test_every_source_resource_is_opt_in(template: dict[str, Any]) -> None:
    found = _sources(template)
    assert set(found) >= SOURCE_IDS
    for lid, r in found.items():
        assert "Condition" in r, f"{lid} is created whether or not a source is enabled"
    for name in ("FlowLogVpcIds", "FlowLogSubnetIds", "ResolverQueryLogVpcIds", "CloudTrailLogGroupName"):
        assert template["Parameters"][name]["Default"] == ""
    assert template["Parameters"]["CloudTrailEvents"]["Default"] == "false"


def test_one_flow_log_per_listed_vpc_and_subnet(template: dict[str, Any]) -> None:
    res = template["Resources"]
    logs = {lid: r for lid, r in res.items() if r["Type"] == "AWS::EC2::FlowLog"}
    assert sorted(logs) == [f"FlowLogSubnet{i}" for i in range(1, 5)] + [
        f"FlowLogVpc{i}" for i in range(1, 5)
    ]
    for lid, r in logs.items():
        p = r["Properties"]
        slot = int(lid[-1]) - 1
        param = "FlowLogVpcIds" if "Vpc" in lid else "FlowLogSubnetIds"
        assert p["ResourceType"] == ("VPC" if "Vpc" in lid else "Subnet")
        assert p["ResourceId"]["Fn::Select"][0] == slot
        assert json.dumps(p["ResourceId"]).count(param) == 1
        assert r["Condition"] == f"Has{lid}"
        assert p["MaxAggregationInterval"] == 60  # findings within a minute of delivery
        assert p["LogGroupName"] == {"Ref": "FlowLogGroup"}
        assert p["DeliverLogsPermissionArn"] == {"Fn::GetAtt": ["FlowLogDeliveryRole", "Arn"]}
        assert p["LogFormat"] == {
            "Fn::If": ["HasFlowLogFormat", {"Ref": "FlowLogFormat"}, {"Ref": "AWS::NoValue"}]
        }


def test_the_flow_log_format_parameter_takes_what_the_normalizer_reads(template: dict[str, Any]) -> None:
    pattern = re.compile(template["Parameters"]["FlowLogFormat"]["AllowedPattern"])
    good = "${version} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${start} ${instance-id} ${tcp-flags}"
    assert pattern.fullmatch(good) and pattern.fullmatch("")
    assert not pattern.fullmatch('${srcaddr}", "x": "y')  # no JSON escape into LOG_SOURCES
    SourceConfig.parse(json.dumps({"g": {"source": "vpcflow", "format": good}}))  # and the core accepts it


def test_resolver_query_logging_is_associated_per_listed_vpc(template: dict[str, Any]) -> None:
    res = template["Resources"]
    assoc = {lid: r for lid, r in res.items() if r["Type"].endswith("ResolverQueryLoggingConfigAssociation")}
    assert len(assoc) == 4
    for lid, r in assoc.items():
        assert r["Condition"] == f"HasResolverVpc{lid[-1]}"
        assert r["Properties"]["ResolverQueryLogConfigId"] == {"Ref": "ResolverQueryLogConfig"}
    config = res["ResolverQueryLogConfig"]["Properties"]
    assert config["DestinationArn"] == {"Fn::GetAtt": ["ResolverLogGroup", "Arn"]}
    policy = res["ResolverLogGroupPolicy"]["Properties"]["PolicyDocument"]
    doc = _document(policy)
    (stmt,) = doc["Statement"]
    assert stmt["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert sorted(stmt["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert stmt["Resource"] == "ResolverLogGroup.Arn"  # this group only
    assert "aws:SourceAccount" in stmt["Condition"]["StringEquals"]


def test_every_subscription_targets_the_sources_stream_with_its_role(template: dict[str, Any]) -> None:
    subs = {
        lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::Logs::SubscriptionFilter"
    }
    assert set(subs) == {"FlowLogSubscription", "ResolverSubscription", "TrailLogGroupSubscription"}
    for lid, r in subs.items():
        p = r["Properties"]
        assert p["DestinationArn"] == {"Fn::GetAtt": ["SourcesStream", "Arn"]}, lid
        assert p["RoleArn"] == {"Fn::GetAtt": ["SourcesSubscriptionRole", "Arn"]}, lid


def test_sources_stream_mapping_matches_the_agents_mapping(template: dict[str, Any]) -> None:
    res = template["Resources"]
    agents = res["IngestFunction"]["Properties"]["Events"]["Telemetry"]["Properties"]
    sources = res["SourcesStreamMapping"]["Properties"]
    assert sources["FunctionName"] == {"Ref": "IngestFunction"}
    assert sources["EventSourceArn"] == {"Fn::GetAtt": ["SourcesStream", "Arn"]}
    for key in (
        "StartingPosition",
        "BatchSize",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "FunctionResponseTypes",
        "MaximumRecordAgeInSeconds",
    ):
        assert sources[key] == agents[key], key
    assert (
        sources["DestinationConfig"]["OnFailure"]["Destination"]
        == agents["DestinationConfig"]["OnFailure"]["Destination"]
    )
    assert res["SourcesStream"]["Properties"]["StreamEncryption"]["EncryptionType"] == "KMS"


@pytest.mark.parametrize(
    ("role", "service"),
    [
        ("SourcesSubscriptionRole", "logs.amazonaws.com"),
        ("CloudTrailRuleRole", "events.amazonaws.com"),
        ("FlowLogDeliveryRole", "vpc-flow-logs.amazonaws.com"),
    ],
)
def test_delivery_roles_trust_one_service_of_this_account(
    template: dict[str, Any], role: str, service: str
) -> None:
    doc = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
    (stmt,) = doc["Statement"]
    assert stmt["Principal"] == {"Service": service}
    assert stmt["Action"] == "sts:AssumeRole"
    assert stmt["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_delivery_roles_may_only_put_on_the_sources_stream_or_write_their_group(
    template: dict[str, Any],
) -> None:
    allowed = {
        "SourcesSubscriptionRole": ({"kinesis:PutRecord"}, {"Fn::GetAtt": ["SourcesStream", "Arn"]}),
        "CloudTrailRuleRole": ({"kinesis:PutRecord"}, {"Fn::GetAtt": ["SourcesStream", "Arn"]}),
        "FlowLogDeliveryRole": (
            {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"},
            {"Fn::GetAtt": ["FlowLogGroup", "Arn"]},
        ),
    }
    seen = set()
    for lid, stmt in statements(template):
        if lid not in allowed:
            continue
        seen.add(lid)
        actions, resource = allowed[lid]
        assert stmt["Effect"] == "Allow"
        assert set(_list(stmt["Action"])) <= actions, lid
        assert _list(stmt["Resource"]) == [resource], lid
    assert seen == set(allowed)


def test_instances_may_never_write_the_sources_log_groups(template: dict[str, Any]) -> None:
    doc = template["Resources"]["AgentInstancePolicy"]["Properties"]["PolicyDocument"]
    deny = [s for s in doc["Statement"] if s["Effect"] == "Deny"]
    assert any({"logs:PutLogEvents", "logs:CreateLogStream"} <= set(_list(s["Action"])) for s in deny)
    text = json.dumps(deny)
    assert "log-group:/vigil/${AWS::StackName}/*" in text
    for name in ("FlowLogGroup", "ResolverLogGroup"):
        group = template["Resources"][name]["Properties"]["LogGroupName"]["Fn::Sub"]
        assert group.startswith("/vigil/${AWS::StackName}/")
    allows = json.dumps([s for s in doc["Statement"] if s["Effect"] == "Allow"])
    assert "SourcesStream" not in allows  # the agents write the telemetry stream only


def test_the_cloudtrail_rule_takes_instance_role_calls_read_only_included(template: dict[str, Any]) -> None:
    props = template["Resources"]["CloudTrailRule"]["Properties"]
    assert props["State"] == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
    pattern = props["EventPattern"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    identity = pattern["detail"]["userIdentity"]
    assert identity["type"] == ["AssumedRole"]
    assert identity["sessionContext"]["ec2RoleDelivery"] == [{"exists": True}]
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["SourcesStream", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["CloudTrailRuleRole", "Arn"]}


def test_the_ingest_knows_the_stream_and_the_groups_the_template_creates(template: dict[str, Any]) -> None:
    res = template["Resources"]
    env = res["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["SOURCES_STREAM_ARN"] == {
        "Fn::If": ["DeliverAnySource", {"Fn::GetAtt": ["SourcesStream", "Arn"]}, ""]
    }
    cond, spec, off = env["LOG_SOURCES"]["Fn::If"]
    assert cond == "DeliverAnySource" and off == ""
    text, variables = spec["Fn::Sub"]
    assert set(variables) == {"Trail"}
    rendered = (
        text.replace("${AWS::StackName}", "vigil").replace("${FlowLogFormat}", "").replace("${Trail}", "")
    )
    config = SourceConfig.parse(rendered)
    groups = {
        res[lid]["Properties"]["LogGroupName"]["Fn::Sub"].replace("${AWS::StackName}", "vigil"): lid
        for lid in ("FlowLogGroup", "ResolverLogGroup")
    }
    assert {g: config.log_groups[g].source for g in groups} == {
        "/vigil/vigil/vpc-flow-logs": "vpcflow",
        "/vigil/vigil/resolver-query-logs": "resolver",
    }
    assert set(config.log_groups) == set(groups)
    # the ingest may ask coverage whether an instance is HEALTHY (one finding per indicator)
    ingest_reads = [
        s
        for lid, s in statements(template)
        if lid == "IngestFunction" and "dynamodb:BatchGetItem" in _list(s["Action"])
    ]
    assert any(_list(s["Resource"]) == [{"Fn::GetAtt": ["CoverageTable", "Arn"]}] for s in ingest_reads)
