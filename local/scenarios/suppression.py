"""The suppression part of `make demo`: a suppression rule archives a repeat false positive.

A pentest instance (tagged Role=pentest) runs ``nmap`` now and then: the first time it is a
finding (ACTIVE, published on the bus). The analyst imports a GuardDuty suppression rule for it
(archive SuspiciousTool where resource.instanceDetails.tags Role=pentest) (the same JSON
``aws guardduty create-filter --cli-input-json`` takes); its creation is itself an event on the
bus. The next ``nmap`` there is stored, archived, with the rule's name, and never published.

    result = run_suppression_demo(stack, tap_url, say=console.print)
    ok = result["ok"]

``tap_url`` is the demo's SQS tap on FindingsBus (``local.demo.tap_bus``). Takes ~6 s: ingest
notices a rule change within ``vigil_aws.filters.CHECK_SECONDS``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vigil.criteria import parse_filter
from vigil_aws.filters import CHECK_SECONDS, DETAIL_TYPE, FilterStore

EVENTS = Path(__file__).resolve().parents[2] / "events" / "agent"
INSTANCE = "i-0a1b2c3d4e5f60042"
TOOL = "Execution:Runtime/SuspiciousTool"


def rule_json() -> dict[str, Any]:
    """GuardDuty's CreateFilter JSON for the demo's rule (the issue's Done-when example): archive
    SuspiciousTool findings on instances tagged Role=pentest."""
    return {
        "Name": "pentest-tools",
        "Description": "Pentest instances run scanners by design",
        "Action": "ARCHIVE",
        "Rank": 1,
        "FindingCriteria": {
            "Criterion": {
                "type": {"Equals": [TOOL]},
                "resource.instanceDetails.tags.key": {"Equals": ["Role"]},
                "resource.instanceDetails.tags.value": {"Equals": ["pentest"]},
            }
        },
    }


def pentest_instance(stack: Any) -> str:
    """A running instance tagged Role=pentest in the stack's EC2 (the ingest enriches its findings
    with the tag: vigil_aws.instances)."""
    ec2 = stack.client("ec2")
    image = next(i for i in ec2.describe_images(Owners=["amazon"])["Images"] if "Platform" not in i)
    out = ec2.run_instances(
        ImageId=image["ImageId"],
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Name", "Value": "pentest-1"}, {"Key": "Role", "Value": "pentest"}],
            }
        ],
    )
    return str(out["Instances"][0]["InstanceId"])


def nmap_batch(seq: int, instance: str = INSTANCE) -> bytes:
    """One agent batch: ``nmap -sn 10.0.0.0/24`` run from an admin shell on ``instance``."""
    line = json.loads((EVENTS / "reverse_shell.ndjson").read_text().splitlines()[0])
    p = line["process"]
    args = ["nmap", "-sn", "10.0.0.0/24"]
    p.update(name="nmap", cmd_line=" ".join(args), args=args, pid=40000 + seq)
    p["file"] = {"path": "/usr/bin/nmap", "name": "nmap"}
    p["stdin"] = p["stdout"] = p["stderr"] = {"type": "pipe"}
    line["seq"] = seq
    line["time"] += seq * 10**9
    line["host"]["instance_id"] = instance
    return (json.dumps(line) + "\n").encode()


def _drain(stack: Any, url: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    out: list[dict[str, Any]] = []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        out += [json.loads(m["Body"]) for m in msgs]
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def _send(stack: Any, data: bytes, instance: str) -> None:
    stream = stack.info.outputs["TelemetryStreamName"]
    stack.client("kinesis").put_records(
        StreamName=stream, Records=[{"Data": stack.identity.sign_batch(data), "PartitionKey": instance}]
    )


def _finding(stack: Any, instance: str, timeout: float, want_count: int) -> dict[str, Any] | None:
    from vigil_aws.findings_store import plain

    table = stack.info.outputs["FindingsTableName"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in stack.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]:
            f = plain(item)
            if f.get("instanceId") == instance and f.get("type") == TOOL and f.get("count", 0) >= want_count:
                return f
        time.sleep(0.05)
    return None


def run_suppression_demo(
    stack: Any, tap_url: str, *, say: Callable[[str], None] = print, instance: str | None = None
) -> dict[str, Any]:
    """Run the scenario on a started ``local.stack.LocalStack``; returns what happened, ``ok``
    True when the first occurrence was published, the rule change reached the bus, and the
    repeat was stored archived with the rule's name and not published. ``instance``: one tagged
    Role=pentest (default: one is launched)."""
    out = stack.info.outputs
    instance = instance or pentest_instance(stack)
    _drain(stack, tap_url)

    _send(stack, nmap_batch(900_001, instance), instance)
    first = _finding(stack, instance, 20, 1)
    stack.pollers.wait_idle(timeout=30)
    published_first = [e for e in _drain(stack, tap_url) if e["detail-type"] == "Vigil Finding"]
    say(f"  1. nmap on {instance}: finding {first and first['id']} {first and first['status']}, "
        f"{len(published_first)} event(s) on the bus")  # fmt: skip

    store = FilterStore(
        out["FiltersTableName"],
        out["FindingsBusName"],
        ddb=stack.client("dynamodb"),
        events=stack.client("events"),
        sts=stack.client("sts"),
    )
    rule = store.create(parse_filter(rule_json()))
    changes = [e for e in _drain(stack, tap_url) if e["detail-type"] == DETAIL_TYPE]
    say(f"  2. suppression rule {rule.filter.name!r} created (vigil filters create); "
        f"{len(changes)} 'Vigil Filter Changed' event(s) on the bus, by {rule.updated_by}")  # fmt: skip
    time.sleep(CHECK_SECONDS + 0.5)  # ingest notices a rule change within CHECK_SECONDS

    _send(stack, nmap_batch(900_002, instance), instance)
    repeat = _finding(stack, instance, 20, 2)
    stack.pollers.wait_idle(timeout=30)
    published_repeat = [e for e in _drain(stack, tap_url) if e["detail-type"] == "Vigil Finding"]
    status = repeat.get("status") if repeat else None
    suppressed_by = repeat.get("suppressedBy") if repeat else None
    say(f"  3. nmap again: stored (count {repeat and repeat['count']}), {status}, suppressedBy "
        f"{suppressed_by!r}; {len(published_repeat)} event(s) on the bus")  # fmt: skip
    ok = (
        first is not None
        and len(published_first) == 1
        and len(changes) == 1
        and status == "ARCHIVED"
        and suppressed_by == rule.filter.name
        and not published_repeat
    )
    return {
        "ok": ok,
        "finding_id": first["id"] if first else None,
        "rule": rule.filter.name,
        "first_published": len(published_first),
        "rule_events": len(changes),
        "repeat_status": status,
        "repeat_suppressed_by": suppressed_by,
        "repeat_published": len(published_repeat),
    }
