"""AWS-delivered sources on the offline stack: the same template's delivery, and the stand-ins for
what moto cannot do (docs/offline-stack.md § Sources).

What runs as on AWS: the template's log groups, flow logs (``AWS::EC2::FlowLog``, created in
moto's EC2 on the emulated default VPC), SourcesStream, its event-source mapping onto
IngestFunction, the CloudTrail rule (its Kinesis target by ``patches.eventbridge_...``), and
CloudWatch Logs' own subscription delivery (moto's ``put_log_events`` writes the real gzip
envelope onto the stream).

The gaps, each closed here in one function:

- ``AWS::Logs::SubscriptionFilter`` is not modelled by moto's CloudFormation (skipped, stack still
  CREATE_COMPLETE): ``subscribe`` creates each one the stack declares with the logs API, with the
  template's own group, destination and role;
- ``AWS::Route53Resolver::ResolverQueryLoggingConfig`` (and its associations) are not modelled:
  nothing is created; the Resolver log group exists (template) and receives the stand-in's lines;
- a flow log in moto never delivers a line, and no Resolver resolves anything: ``deliver`` is the
  STAND-IN for the VPC Flow Logs and Resolver delivery services: it writes recorded lines into the
  template's log group with ``PutLogEvents``, so from there on the path is the real one
  (subscription envelope -> SourcesStream -> IngestFunction);
- CloudTrail does not emit events in moto: ``put_cloudtrail_event`` is the STAND-IN that puts an
  ``AWS API Call via CloudTrail`` event on the default bus (moto accepts an ``aws.*`` source, AWS
  would not).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

# v2 fields + instance-id (v3): the stack's FlowLogFormat offline, so a line names its instance
DEMO_FLOW_FORMAT = (
    "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} "
    "${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${instance-id}"
)

Note = Callable[[str], None]


def parameters(session: Any, endpoint_url: str, region: str) -> dict[str, str]:
    """Template parameters that turn every source on, for the emulated default VPC."""
    ec2 = session.client("ec2", endpoint_url=endpoint_url, region_name=region)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        vpcs = [ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]]
    vpc = vpcs[0]["VpcId"]
    return {
        "FlowLogVpcIds": vpc,
        "FlowLogFormat": DEMO_FLOW_FORMAT,
        "ResolverQueryLogVpcIds": vpc,
        "CloudTrailEvents": "true",
    }


def subscribe(
    cfn: dict[str, Any], session: Any, endpoint_url: str, region: str, stack: str, note: Note
) -> list[str]:
    """Create the template's ``AWS::Logs::SubscriptionFilter`` resources that moto skipped: those
    whose group, stream and role the stack created (their condition held). Returns their ids."""

    def c(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url, region_name=region)

    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in c("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
        if "LogicalResourceId" in r and r.get("PhysicalResourceId")  # moto lists some without ids
    }
    params = {
        p["ParameterKey"]: p.get("ParameterValue", "")
        for p in c("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Parameters", [])
    }

    def arn(node: Any) -> str | None:
        lid, attr = (
            node["Fn::GetAtt"] if isinstance(node["Fn::GetAtt"], list) else node["Fn::GetAtt"].split(".")
        )
        if lid not in physical or attr != "Arn":
            return None
        kind = cfn["Resources"][lid]["Type"]
        if kind == "AWS::Kinesis::Stream":
            return str(
                c("kinesis").describe_stream_summary(StreamName=physical[lid])["StreamDescriptionSummary"][
                    "StreamARN"
                ]
            )
        if kind == "AWS::IAM::Role":
            return str(c("iam").get_role(RoleName=physical[lid])["Role"]["Arn"])
        return None

    def group(node: Any) -> str | None:
        ref = node.get("Ref") if isinstance(node, dict) else None
        if ref in physical:
            return str(physical[ref])
        value = params.get(str(ref), "")
        return value or None

    made = []
    for lid, res in cfn["Resources"].items():
        if res["Type"] != "AWS::Logs::SubscriptionFilter":
            continue
        props = res["Properties"]
        log_group, dest, role = (
            group(props["LogGroupName"]),
            arn(props["DestinationArn"]),
            arn(props["RoleArn"]),
        )
        if not (log_group and dest and role):
            continue  # its condition did not hold: nothing to subscribe
        c("logs").put_subscription_filter(
            logGroupName=log_group,
            filterName=lid,
            filterPattern=props.get("FilterPattern", ""),
            destinationArn=dest,
            roleArn=role,
        )
        note(
            f"created {lid} (AWS::Logs::SubscriptionFilter) with the logs API: moto's CloudFormation skips the type"
        )
        made.append(lid)
    return made


def deliver(
    logs: Any, group: str, lines: Sequence[str], *, stream: str = "stand-in", at_ms: int | None = None
) -> int:
    """STAND-IN for the VPC Flow Logs / Resolver delivery service: write ``lines`` into ``group``
    as that service would (one log stream per interface or VPC). Returns how many were written."""
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    t = at_ms if at_ms is not None else int(time.time() * 1000)
    events = [{"timestamp": t + i, "message": line} for i, line in enumerate(lines)]
    for n in range(0, len(events), 1000):
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[n : n + 1000])
    return len(events)


def put_cloudtrail_event(events: Any, detail: dict[str, Any]) -> None:
    """STAND-IN for CloudTrail: an ``AWS API Call via CloudTrail`` event on the default bus."""
    source = "aws." + str(detail.get("eventSource", "sts.amazonaws.com")).split(".", 1)[0]
    events.put_events(
        Entries=[
            {"Source": source, "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail)}
        ]
    )


def resolver_record(
    name: str, instance: str, when: str, *, src: str = "10.0.0.12", vpc: str = "vpc-0a1b2c3d"
) -> str:
    """One Route 53 Resolver query-log line (the JSON AWS documents) for ``instance``."""
    return json.dumps(
        {
            "version": "1.100000",
            "account_id": "123456789012",
            "region": "us-east-1",
            "vpc_id": vpc,
            "query_timestamp": when,
            "query_name": name.rstrip(".") + ".",
            "query_type": "A",
            "query_class": "IN",
            "rcode": "NOERROR",
            "answers": [],
            "srcaddr": src,
            "srcport": "53000",
            "transport": "UDP",
            "srcids": {"instance": instance},
        }
    )
