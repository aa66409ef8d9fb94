"""The moto 5.2.5 gaps on the AWS-delivered sources' path (local/sources.py, local/patches.py),
asserted on moto as shipped: each test fails the day moto changes, so its stand-in can go.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local import patches  # noqa: E402
from local.runtime import LocalRuntime  # noqa: E402

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    patches.restore_all()
    with mock_aws():
        yield
    patches.restore_all()


def _now_ms() -> int:
    return int(time.time() * 1000)  # CloudWatch Logs refuses events older than 14 days


def _stream() -> str:
    kinesis = boto3.client("kinesis", region_name=REGION)
    kinesis.create_stream(StreamName="sources", ShardCount=1)
    return str(kinesis.describe_stream_summary(StreamName="sources")["StreamDescriptionSummary"]["StreamARN"])


def _records() -> list[bytes]:
    kinesis = boto3.client("kinesis", region_name=REGION)
    shard = kinesis.describe_stream(StreamName="sources")["StreamDescription"]["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="sources", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return [r["Data"] for r in kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"]]


def test_cloudformation_skips_subscription_filters_and_resolver_query_logging() -> None:
    """Closed by local.sources.subscribe (filters); Resolver query logging is not emulated."""
    from moto.cloudformation.parsing import get_model_map

    modelled = set(get_model_map())
    assert "AWS::Logs::SubscriptionFilter" not in modelled
    assert "AWS::Route53Resolver::ResolverQueryLoggingConfig" not in modelled
    assert "AWS::Route53Resolver::ResolverQueryLoggingConfigAssociation" not in modelled
    assert "AWS::EC2::FlowLog" in modelled  # created, but see the next test


def test_a_flow_log_never_delivers_a_line() -> None:
    """Closed by the stand-in local.sources.deliver (recorded lines into the flow-log group)."""
    ec2, logs = boto3.client("ec2", region_name=REGION), boto3.client("logs", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    logs.create_log_group(logGroupName="flows")
    ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogGroupName="flows",
        DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flows",
    )
    ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)  # some traffic, in principle
    assert logs.describe_log_streams(logGroupName="flows")["logStreams"] == []


def test_subscription_delivery_writes_log_event_ids_as_numbers() -> None:
    """Closed by patches.logs_subscription_event_ids_as_strings (AWS writes 56-digit strings)."""
    arn = _stream()
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    logs.put_subscription_filter(
        logGroupName="g",
        filterName="f",
        filterPattern="",
        destinationArn=arn,
        roleArn="arn:aws:iam::123456789012:role/r",
    )
    logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[{"timestamp": _now_ms(), "message": "m"}])
    envelope = json.loads(gzip.decompress(_records()[0]))
    assert isinstance(envelope["logEvents"][0]["id"], int)
    # the patch: the same delivery, with the id as AWS spells it
    patches.logs_subscription_event_ids_as_strings()
    logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[{"timestamp": _now_ms(), "message": "n"}])
    fixed = json.loads(gzip.decompress(_records()[1]))["logEvents"][0]["id"]
    assert isinstance(fixed, str) and len(fixed) == 56 and fixed.isdigit()


def test_an_eventbridge_rule_with_a_kinesis_target_breaks_put_events() -> None:
    """Closed by patches.eventbridge_lambda_and_sfn_targets (Kinesis targets put the event)."""
    arn = _stream()
    events = boto3.client("events", region_name=REGION)
    pattern = {"detail-type": ["AWS API Call via CloudTrail"]}
    events.put_rule(Name="trail", EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="trail",
        Targets=[
            {
                "Id": "s",
                "Arn": arn,
                "KinesisParameters": {"PartitionKeyPath": "$.detail.userIdentity.principalId"},
            }
        ],
    )
    entry = {
        "Source": "aws.sts",
        "DetailType": "AWS API Call via CloudTrail",
        "Detail": json.dumps(
            {"userIdentity": {"principalId": "AROA:i-0abc"}, "eventName": "GetCallerIdentity"}
        ),
    }
    with pytest.raises(NotImplementedError):
        events.put_events(Entries=[entry])
    patches.eventbridge_lambda_and_sfn_targets(LocalRuntime())
    events.put_events(Entries=[entry])
    (data,) = _records()
    event = json.loads(data)
    assert event["detail-type"] == "AWS API Call via CloudTrail"
    assert event["detail"]["eventName"] == "GetCallerIdentity"
