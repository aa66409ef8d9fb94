"""The sources on the offline stack: delivered through template.yaml (local/sources.py).

GIVEN the stack deployed with its sources on (as `make stack` and `make demo` do), WHEN the stand-in writes recorded
flow-log lines into the template's flow-log group, THEN CloudWatch Logs' subscription (created
from the template) puts them on SourcesStream and the EC2 finding reaches FindingsBus; a bad line
is dead-lettered with its position; a CloudTrail event on the default bus reaches the ingest
through CloudTrailRule; and with sources off, none of it exists.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local import sources  # noqa: E402
from local.demo import drain, tap_bus  # noqa: E402
from local.stack import LocalStack, free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCAN = REPO / "events" / "sources" / "flowlogs_portscan.log"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    s = LocalStack(
        port=free_port(),
        stack_name="vigil-src",
        state_file=tmp_path_factory.mktemp("s") / "stack.json",
        sources=True,
    )
    with s:
        yield s


def test_the_template_delivers_the_sources(stack: LocalStack) -> None:
    out = stack.info.outputs if stack.info else {}
    assert {"SourcesStreamArn", "FlowLogGroupName", "ResolverLogGroupName"} <= set(out)
    flows = stack.client("ec2").describe_flow_logs()["FlowLogs"]
    assert [f["LogGroupName"] for f in flows] == [out["FlowLogGroupName"]]
    assert flows[0]["MaxAggregationInterval"] == 60 and "${instance-id}" in flows[0]["LogFormat"]
    logs = stack.client("logs")
    for group in (out["FlowLogGroupName"], out["ResolverLogGroupName"]):
        (sub,) = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
        assert sub["destinationArn"] == out["SourcesStreamArn"]
    rules = stack.client("events").list_rules(NamePrefix="vigil-src-CloudTrailRule")["Rules"]
    assert len(rules) == 1


def test_flow_log_lines_become_an_ec2_finding_on_the_bus(stack: LocalStack) -> None:
    assert stack.info is not None and stack.pollers is not None
    out = stack.info.outputs
    tap = tap_bus(stack, out["FindingsBusName"])
    instance = "i-0feedfacecafe0042"
    lines = [f"{line} {instance}" for line in SCAN.read_text().splitlines() if line.strip()]
    lines.insert(3, "2 123456789012 eni-0a1b2c3d4e5f60718 garbage")
    sources.deliver(stack.client("logs"), out["FlowLogGroupName"], lines, stream="eni-test")
    bus: list[dict] = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 30:
        bus += drain(stack, tap)
        if any(e["detail"]["type"] == "Recon:EC2/Portscan" for e in bus):
            break
        time.sleep(0.1)
    scan = [e["detail"] for e in bus if e["detail"]["type"] == "Recon:EC2/Portscan"]
    assert scan and scan[0]["resource"]["instanceDetails"]["instanceId"] == instance
    assert json.loads(scan[0]["service"]["additionalInfo"]["value"])["dataSource"] == "FLOW_LOGS"
    stack.pollers.wait_idle(timeout=30)
    letters = drain(stack, out["IngestDeadLetterQueueUrl"])
    assert [(m["line"], m["source"], m["eventSourceARN"]) for m in letters] == [
        (4, "vpcflow", out["SourcesStreamArn"])
    ]


def test_a_cloudtrail_event_reaches_the_ingest_through_the_rule(stack: LocalStack) -> None:
    assert stack.info is not None and stack.pollers is not None and stack.runtime is not None
    before = len(stack.runtime.invocations)
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:i-0feedfacecafe0042",
            "arn": "arn:aws:sts::123456789012:assumed-role/web/i-0feedfacecafe0042",
            "accountId": "123456789012",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::123456789012:role/web"},
                "ec2RoleDelivery": "2.0",
            },
        },
        "eventTime": "2025-11-24T16:00:00Z",
        "eventSource": "sts.amazonaws.com",
        "eventName": "GetCallerIdentity",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "eventID": "3b5c1a52-0000-4000-8000-000000000003",
        "eventType": "AwsApiCall",
    }
    sources.put_cloudtrail_event(stack.client("events"), detail)
    other = {**detail, "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE"}}
    sources.put_cloudtrail_event(stack.client("events"), other)  # not an instance role: not matched
    time.sleep(0.5)
    stack.pollers.wait_idle(timeout=30)
    ingest = [i for i in stack.runtime.invocations[before:] if "IngestFunction" in i[0]]
    assert len(ingest) == 1 and not ingest[0][2]  # one record, read without error
    assert drain(stack, stack.info.outputs["IngestDeadLetterQueueUrl"]) == []


def test_by_default_no_source_exists(tmp_path: Path) -> None:
    s = LocalStack(port=free_port(), stack_name="vigil-nosrc", state_file=None)  # the default
    with s as info:
        assert not {"SourcesStreamArn", "FlowLogGroupName", "ResolverLogGroupName"} & set(info.outputs)
        assert s.client("ec2").describe_flow_logs()["FlowLogs"] == []
