"""IngestFunction in-process on moto: AWS-delivered sources on SourcesStream, and one finding per
indicator.

GIVEN the environment the template gives IngestFunction when sources are enabled
(SOURCES_STREAM_ARN, LOG_SOURCES), WHEN CloudWatch Logs subscription records and EventBridge
CloudTrail events arrive on SourcesStream, THEN each log group's lines go to its normalizer and
raise the EC2 types, a malformed line is dead-lettered with its reason and position without
blocking its neighbours, and the same record on the agents' stream is never read as a source.
GIVEN a runtime finding already carries a query, THEN the Resolver line of the same query raises
no EC2 finding while the instance is HEALTHY, and does when it is UNHEALTHY.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from handler_harness import ACCOUNT, EVENTS, REGION, Aws, context, ingest_env, kinesis_event_for, load_handler

from vigil.sources import subscription_record

pytestmark = pytest.mark.integration  # moto

SOURCES_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/vigil-SourcesStream"
FLOW_GROUP = "/vigil/vigil/vpc-flow-logs"
RESOLVER_GROUP = "/vigil/vigil/resolver-query-logs"
WORKER = "i-0a1b2c3d4e5f60002"  # the recorded crypto_dns batch's instance
FLOW_FORMAT = (
    "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} "
    "${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${instance-id}"
)


def sources_env(aws: Aws) -> dict[str, str]:
    """What template.yaml sets with sources enabled (stack name 'vigil')."""
    return {
        **ingest_env(aws),
        "SOURCES_STREAM_ARN": SOURCES_ARN,
        "LOG_SOURCES": json.dumps(
            {FLOW_GROUP: {"source": "vpcflow", "format": FLOW_FORMAT}, RESOLVER_GROUP: "resolver"}
        ),
    }


@pytest.fixture
def ingest(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_handler("ingest_function", sources_env(aws), monkeypatch)


def on_stream(event: dict[str, Any], arn: str) -> dict[str, Any]:
    for r in event["Records"]:
        r["eventSourceARN"] = arn
    return event


def portscan_lines(instance: str) -> list[str]:
    """The example scan (events/sources/), each v2 line with the instance id the custom format adds."""
    lines = (EVENTS / "sources" / "flowlogs_portscan.log").read_text().split("\n")
    return [f"{line} {instance}" for line in lines if line.strip()]


def resolver_line(name: str, instance: str, when: str = "2025-11-24T16:05:00Z") -> str:
    return json.dumps(
        {
            "version": "1.100000",
            "account_id": ACCOUNT,
            "region": REGION,
            "vpc_id": "vpc-0a1b2c3d",
            "query_timestamp": when,
            "query_name": name + ".",
            "query_type": "A",
            "query_class": "IN",
            "rcode": "NOERROR",
            "answers": [],
            "srcaddr": "10.0.2.41",
            "srcport": "50000",
            "transport": "UDP",
            "srcids": {"instance": instance},
        }
    )


def types(aws: Aws) -> list[str]:
    return sorted(f["type"] for f in aws.findings().values())


def test_flow_log_lines_on_the_sources_stream_raise_the_ec2_type_and_bad_lines_are_dead_lettered(
    aws: Aws, ingest: Any
) -> None:
    # GIVEN a subscription record of the flow-log group: a port scan with one garbage line in it
    lines = portscan_lines("i-0feedfacecafe0001")
    lines.insert(5, "2 123456789012 eni-0a1b2c3d4e5f60718 not-an-ip 203.0.113.50 1 2 6 1 60 x y ACCEPT OK -")
    record = subscription_record(FLOW_GROUP, lines)
    event = on_stream(kinesis_event_for([("k", record)], sign=False), SOURCES_ARN)
    # WHEN IngestFunction handles it
    response = ingest.handler(event, context("IngestFunction"))
    # THEN the scan is a finding on the instance the lines name, and the bad line is a dead letter
    assert response == {"batchItemFailures": []}
    found = {f["type"]: f for f in aws.findings().values()}
    assert "Recon:EC2/Portscan" in found
    assert found["Recon:EC2/Portscan"]["instanceId"] == "i-0feedfacecafe0001"
    letters = aws.drain(aws.dead_letter_url)
    assert [(m["line"], m["source"], m["eventSourceARN"]) for m in letters] == [(6, "vpcflow", SOURCES_ARN)]
    assert "srcaddr" in letters[0]["reason"] or "address" in letters[0]["reason"]


def test_a_subscription_record_on_the_agents_stream_is_not_a_source(aws: Aws, ingest: Any) -> None:
    # GIVEN an agent forging a perfect subscription envelope on the telemetry stream
    record = subscription_record(FLOW_GROUP, portscan_lines("i-0feedfacecafe0001"))
    event = kinesis_event_for([("i-0feedfacecafe0001", record)], sign=False)  # telemetry stream ARN
    ingest.handler(event, context("IngestFunction"))
    # THEN nothing is found, and the record is dead-lettered as an agent record (no identity)
    assert types(aws) == []
    letters = aws.drain(aws.dead_letter_url)
    assert letters and all(m["source"] == "agent" for m in letters)


def test_an_unconfigured_log_group_and_a_cloudtrail_event_on_the_sources_stream(
    aws: Aws, ingest: Any
) -> None:
    stranger = subscription_record("/some/other/group", portscan_lines("i-0feedfacecafe0001"))
    trail = {
        "version": "0",
        "id": "3b5c1a52-0000-4000-8000-000000000001",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.sts",
        "account": ACCOUNT,
        "time": "2025-11-24T16:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:i-0feedfacecafe0001",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/web/i-0feedfacecafe0001",
                "accountId": ACCOUNT,
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/web"},
                    "ec2RoleDelivery": "2.0",
                },
            },
            "eventTime": "2025-11-24T16:00:00Z",
            "eventSource": "sts.amazonaws.com",
            "eventName": "GetCallerIdentity",
            "awsRegion": REGION,
            "sourceIPAddress": "198.51.100.23",
            "userAgent": "aws-cli/2",
            "eventID": "3b5c1a52-0000-4000-8000-000000000002",
            "eventType": "AwsApiCall",
        },
    }
    event = on_stream(
        kinesis_event_for([("a", stranger), ("b", json.dumps(trail).encode())], sign=False), SOURCES_ARN
    )
    response = ingest.handler(event, context("IngestFunction"))
    assert response == {"batchItemFailures": []}
    letters = aws.drain(aws.dead_letter_url)
    # the stranger's record is refused whole, with its reason; the CloudTrail event is read (no letter)
    assert [(m["line"], m["partitionKey"]) for m in letters] == [(0, "a")]
    assert "not a configured source" in letters[0]["reason"]


def _coverage(aws: Aws, status: str, heartbeat_age_s: float = 0.0) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=heartbeat_age_s)
    now = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    aws.client("dynamodb").update_item(
        TableName=aws.coverage_table,
        Key={"instanceId": {"S": WORKER}},
        UpdateExpression="SET covStatus = :s, lastHeartbeatAt = :t",
        ExpressionAttributeValues={":s": {"S": status}, ":t": {"S": now}},
    )


@pytest.mark.parametrize(
    ("status", "heartbeat_age_s", "ec2_raised"),
    [("HEALTHY", 0, False), ("UNHEALTHY", 0, True), ("HEALTHY", 3600, True)],
    ids=["healthy", "unhealthy", "healthy-but-silent-since"],
)
def test_one_finding_per_indicator(
    aws: Aws, ingest: Any, status: str, heartbeat_age_s: float, ec2_raised: bool
) -> None:
    # GIVEN the agent's batch: xmrig resolving its pool (the runtime finding, with the process)
    agent = kinesis_event_for([(WORKER, (EVENTS / "agent" / "crypto_dns.ndjson").read_bytes())])
    ingest.handler(agent, context("IngestFunction"))
    assert "CryptoCurrency:Runtime/BitcoinTool.B!DNS" in types(aws)
    _coverage(aws, status, heartbeat_age_s)  # what CoverageFunction stored, and the last heartbeat
    # WHEN the Resolver's query log of the same query arrives on the sources stream
    record = subscription_record(RESOLVER_GROUP, [resolver_line("pool.supportxmr.com", WORKER)])
    response = ingest.handler(
        on_stream(kinesis_event_for([("r", record)], first_seq=9, sign=False), SOURCES_ARN),
        context("IngestFunction"),
    )
    # THEN the EC2 type is raised only when the agent no longer covers the instance
    assert response == {"batchItemFailures": []}
    assert ("CryptoCurrency:EC2/BitcoinTool.B!DNS" in types(aws)) is ec2_raised
    assert ingest.ingestor.totals["waived"] == (0 if ec2_raised else 1)


def test_the_handler_decodes_base64_like_lambda(aws: Aws, ingest: Any) -> None:
    # sanity of the harness: the record data is base64 of the gzip envelope, as Lambda gives it
    record = subscription_record(RESOLVER_GROUP, [resolver_line("example.org", "i-0feedfacecafe0001")])
    event = on_stream(kinesis_event_for([("r", record)], sign=False), SOURCES_ARN)
    assert base64.b64decode(event["Records"][0]["kinesis"]["data"]) == record
    assert ingest.handler(event, context("IngestFunction")) == {"batchItemFailures": []}
    assert types(aws) == [] and aws.drain(aws.dead_letter_url) == []
