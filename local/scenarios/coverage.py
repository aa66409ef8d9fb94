"""The coverage part of `make demo`: one Healthy and one Unhealthy instance (a stale heartbeat).

Launches two instances in the emulated EC2, sends one signed heartbeat batch for each through
the stream as their agents would (one heartbeat a few seconds old, one an hour old), lets the
ingest store them, runs CoverageFunction at once (its schedule is 5 minutes) and shows what
`vigil coverage list` shows, then the coverage events that reached FindingsBus. Returns whether
the Healthy instance is HEALTHY, the stale one UNHEALTHY (Agent disconnected), and its Unhealthy
event reached the bus.

    from local.scenarios.coverage import run_coverage_demo
    ok = run_coverage_demo(stack, console)
"""

from __future__ import annotations

import json
import time
from typing import Any

LINUX_AMI = "ami-1e749f67"  # Ubuntu in moto's image catalogue (many of its images are Windows)
TAP_RULE = "vigil-demo-coverage-tap"
TAP_QUEUE = "vigil-demo-coverage-tap"
STALE_S = 3600


def heartbeat_batch(instance_id: str, at_s: float, seq: int, hostname: str) -> bytes:
    """One NDJSON batch holding one heartbeat (the agent's header line: host block + heartbeat)."""
    hb = {
        "kind": "heartbeat", "agent_version": "0.1.0", "sensors_active": ["ebpf", "audit", "dns"],
        "counters": {}, "cpu_percent": 0.4, "rss_bytes": 39845888, "vcpus": 2,
        "kernel": "6.1.158-180.294.amzn2023.x86_64", "time": int(at_s * 1e9), "seq": seq,
        "host": {"instance_id": instance_id, "account_id": "123456789012", "region": "us-east-1",
                 "hostname": hostname, "boot_id": f"demo-{instance_id}", "agent_version": "0.1.0", "vcpus": 2},
    }  # fmt: skip
    return (json.dumps(hb, separators=(",", ":")) + "\n").encode()


def _tap(stack: Any, bus_name: str) -> str:
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName=TAP_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["vigil"], "detail-type": [{"prefix": "Vigil Runtime Protection"}]}
    events.put_rule(Name=TAP_RULE, EventBusName=bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=TAP_RULE, EventBusName=bus_name, Targets=[{"Id": "tap", "Arn": arn}])
    return str(url)


def _drain(stack: Any, url: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    out: list[dict[str, Any]] = []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += [json.loads(m["Body"]) for m in msgs]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
        )
    return out


def run_coverage_demo(stack: Any, console: Any) -> bool:
    from rich.text import Text

    from vigil_aws.coverage_eval import coverage_rows, stored
    from vigil_cli import safe

    out = stack.info.outputs
    tap = _tap(stack, out["FindingsBusName"])
    ec2 = stack.client("ec2")
    launched = ec2.run_instances(ImageId=LINUX_AMI, MinCount=2, MaxCount=2, InstanceType="t3.small")[
        "Instances"
    ]
    healthy, stale = (i["InstanceId"] for i in launched)
    now = time.time()
    batches = [
        (healthy, heartbeat_batch(healthy, now - 5, 1, "web-1")),
        (stale, heartbeat_batch(stale, now - STALE_S, 1, "web-2")),
    ]
    stack.client("kinesis").put_records(
        StreamName=out["TelemetryStreamName"],
        Records=[{"Data": stack.identity.sign_batch(data), "PartitionKey": iid} for iid, data in batches],
    )
    stack.pollers.wait_idle(timeout=30)
    inv = stack.schedules.run_now("CoverageFunction")
    if inv.errored:
        console.print(Text(f"  CoverageFunction failed: {inv.result}", style="red"))
        return False
    summary = inv.result
    covs = {
        c.instance_id: c
        for c in (stored(i) for i in coverage_rows(stack.client("dynamodb"), out["CoverageTableName"]))
        if c
    }
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        e["detail"]["resourceDetails"]["ec2InstanceDetails"]["instanceId"] == stale for e in events
    ):
        events += _drain(stack, tap)
        time.sleep(0.1)
    by = summary.get("countByCoverageStatus", {})
    total = sum(by.values())
    others = f"; {total - 2} other instances (e.g. the response demo's) listed too" if total > 2 else ""
    console.print(
        f"  coverage: {total} running instances, HEALTHY {by.get('HEALTHY', 0)}, "
        f"UNHEALTHY {by.get('UNHEALTHY', 0)}{others}",
        highlight=False,
    )
    for iid in (healthy, stale):
        c = covs.get(iid)
        status, issue = (c.status, c.issue) if c else ("missing", "")
        console.print(
            Text.assemble("  ", safe.text(iid), f"  {status}", f"  {issue}" if issue else ""), highlight=False
        )
    unhealthy_event = next(
        (e for e in events if e["detail"]["resourceDetails"]["ec2InstanceDetails"]["instanceId"] == stale),
        None,
    )
    if unhealthy_event is not None:
        d = unhealthy_event["detail"]
        console.print(
            f"  on the bus: {unhealthy_event['detail-type']} {stale} "
            f"({d['previousStatus'] or 'new'} -> {d['currentStatus']}: {d['issue']})",
            highlight=False,
        )
    else:
        console.print(f"  on the bus: NO Unhealthy event for {stale}", style="red")
    return bool(
        covs.get(healthy) is not None
        and covs[healthy].status == "HEALTHY"
        and covs.get(stale) is not None
        and covs[stale].issue == "No Agent Reporting: Agent disconnected"
        and unhealthy_event is not None
        and unhealthy_event["detail-type"] == "Vigil Runtime Protection Unhealthy"
    )
