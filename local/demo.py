"""`make demo`: the whole pipeline offline, from recorded agent batches to events on the bus.

Starts the offline stack (local.stack), taps FindingsBus with an SQS queue (a rule added for the
demo, not part of the template), sends the recorded batches in ``events/agent/`` with
``kinesis.put_records`` exactly as the agent does, waits for the pipeline to settle, then prints
the findings, the events that reached the bus and the dead letters. Sends everything a second
time to show that a replay changes no count. Then follows the response: the reverse-shell
finding starts Triage (the stack runs with ResponseDryRun=false here), the instance is isolated
and released, and its security groups are printed before, after isolation and after release.
Then an instance whose agent is stopped gets EC2 findings from flow-log and Resolver lines
(local/scenarios/sources.py). Last, the stack acts as an Organization's administrator
(MemberAccountIds): a member account's finding reaches its bus and table and
`vigil findings list --account`; a stranger's is refused. Finally the reverse-shell instance takes
its next step (it reads the instance role's credentials from IMDS, a second ATT&CK tactic) and an
AttackSequence:EC2/CompromisedInstanceGroup finding forms, listing its signals in order; replayed,
it does not change.
Exits 1 if an expected finding is missing, or isolation/release did not do what they say.

    python -m local.demo [--keep] [--port N]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.stack import DEFAULT_PORT, LocalStack, started

EVENTS = Path(__file__).resolve().parent.parent / "events" / "agent"
BATCHES = ("benign.ndjson.gz", "reverse_shell.ndjson.gz", "crypto_dns.ndjson.gz", "malformed.ndjson")
NEXT_STEP = "reverse_shell_next.ndjson.gz"  # the reverse shell's next step: sent in step 13
SEQUENCE = "AttackSequence:EC2/CompromisedInstanceGroup"
EXPECTED = ("Execution:Runtime/ReverseShell", "CryptoCurrency:Runtime/BitcoinTool.B!DNS")
TAP_QUEUE = "vigil-demo-bus-tap"


@dataclass
class Sent:
    name: str
    instance: str
    data: bytes


def load_batches() -> list[Sent]:
    import gzip

    out = []
    for name in BATCHES:
        data = (EVENTS / name).read_bytes()
        first = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).split(b"\n", 1)[0]
        instance = json.loads(first).get("host", {}).get("instance_id", "unknown")
        out.append(Sent(name, instance, data))
    return out


def tap_bus(
    stack: LocalStack, bus_name: str, *, leave_out: tuple[str, ...] = ("Vigil Finding Notification",)
) -> str:
    """An SQS queue that receives every Vigil event on the bus (so the demo can show them) but the
    detail-types in `leave_out` (by default the routing notifications: step 4 shows their bodies)."""
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName=TAP_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern: dict[str, Any] = {"source": ["vigil"]}
    if leave_out:
        pattern["detail-type"] = [{"anything-but": list(leave_out)}]
    events.put_rule(Name="vigil-demo-tap", EventBusName=bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="vigil-demo-tap", EventBusName=bus_name, Targets=[{"Id": "tap", "Arn": arn}])
    return str(url)


def send(stack: LocalStack, stream: str, batches: list[Sent]) -> None:
    """Put the batches on the stream as their agents would: each header signed for its instance
    (the stack's test identity authority stands in for AWS; garbage stays garbage)."""
    sign = stack.identity.sign_batch
    stack.client("kinesis").put_records(
        StreamName=stream, Records=[{"Data": sign(b.data), "PartitionKey": b.instance} for b in batches]
    )


def findings(stack: LocalStack, table: str) -> list[dict[str, Any]]:
    from vigil_aws.findings_store import plain

    items = stack.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    # moto's threaded server applies an UpdateItem that creates an item in two steps (key, then
    # attributes); a scan in between sees a bare key. Real DynamoDB never shows that.
    whole = (plain(i) for i in items if "severity" in i)
    return sorted(whole, key=lambda f: (-float(f["severity"]), f["type"]))


def drain(stack: LocalStack, url: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        out.extend(json.loads(m["Body"]) for m in msgs)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(msgs)],
        )


def wait_for(
    stack: LocalStack, table: str, tap_url: str, timeout: float
) -> tuple[float | None, float | None, list[dict[str, Any]]]:
    """Poll until the expected findings are stored and their events reached the bus."""
    t0 = time.perf_counter()
    stored_at = bus_at = None
    bus_events: list[dict[str, Any]] = []
    while time.perf_counter() - t0 < timeout:
        if stored_at is None and set(EXPECTED) <= {f["type"] for f in findings(stack, table)}:
            stored_at = time.perf_counter() - t0
        bus_events += drain(stack, tap_url)
        if bus_at is None and set(EXPECTED) <= {e["detail"]["type"] for e in bus_events}:
            bus_at = time.perf_counter() - t0
        if stored_at is not None and bus_at is not None:
            break
        time.sleep(0.05)
    return stored_at, bus_at, bus_events


def severity_text(value: float) -> str:
    from vigil.severity import label

    colour = {"Critical": "red", "High": "red", "Medium": "yellow", "Low": "cyan"}[label(value)]
    return f"[{colour}]{label(value)} {value:.1f}[/]"


def run(stack: LocalStack, console: Any, keep: bool) -> int:
    import boto3
    from rich.table import Table

    from local.integrations import prepare as prepare_integrations
    from local.integrations import show_exports
    from local.routing import demo_routing
    from local.scenarios.response import groups_of, launch_demo_instance, run_response_demo, with_instance_id

    assert stack.info is not None and stack.pollers is not None
    out = stack.info.outputs
    tap_url = tap_bus(stack, out["FindingsBusName"])
    # The attacked instance must exist for the response to act on it; moto cannot launch one with
    # a chosen id, so the recorded batches of that instance are re-addressed to the one launched.
    session = boto3.Session(region_name=stack.region)
    victim = launch_demo_instance(session, stack.endpoint_url)
    before = groups_of(session, victim, stack.endpoint_url)
    recorded = {b.instance for b in load_batches() if b.name.startswith("reverse_shell")}
    batches = [
        Sent(b.name, victim, with_instance_id(b.data, victim)) if b.instance in recorded else b
        for b in load_batches()
    ]

    console.rule("[bold]1. the agents send their batches")
    for b in batches:
        console.print(f"  {b.name:<26} {len(b.data):>6} bytes  partition key {b.instance}")
    t_send = time.perf_counter()
    prepare_integrations(stack)
    send(stack, out["TelemetryStreamName"], batches)
    stored_at, bus_at, bus_events = wait_for(stack, out["FindingsTableName"], tap_url, timeout=30)
    stack.pollers.wait_idle(timeout=30)
    bus_events += drain(stack, tap_url)
    settle = time.perf_counter() - t_send

    console.rule("[bold]2. findings (FindingsTable)")
    stored = findings(stack, out["FindingsTableName"])
    table = Table("type", "severity", "instance", "count", "title")
    for f in stored:
        table.add_row(
            f["type"], severity_text(float(f["severity"])), f["instanceId"], str(f["count"]), f["title"]
        )
    console.print(table)

    console.rule("[bold]3. events that reached FindingsBus")
    bus = Table("source", "detail-type", "finding type", "severity", "count", "finding id")
    for e in bus_events:
        d = e["detail"]
        bus.add_row(
            e["source"],
            e["detail-type"],
            d["type"],
            severity_text(float(d["severity"])),
            str(d["service"]["count"]),
            d["id"],
        )
    console.print(bus)

    console.rule(
        "[bold]4. integrations: S3 export, Security Lake (OCSF 2004), Security Hub (ASFF), Slack / Jira"
    )
    stack.pollers.wait_idle(timeout=30)
    plain_out = lambda s: console.out(s, highlight=False)  # noqa: E731 (attacker text: no markup)
    exports = show_exports(stack, plain_out)
    routed = demo_routing(
        [e["detail"] for e in bus_events if e["detail-type"] == "Vigil Finding"][:1], plain_out
    )
    integrations_ok = bool(
        exports["s3_objects"]
        and exports["security_lake_objects"]
        and exports["security_hub_findings"]
        and routed
    )

    console.rule("[bold]5. dead letters (IngestDeadLetterQueue)")
    for m in drain(stack, out["IngestDeadLetterQueueUrl"]):
        console.print(
            f"  line {m['line']} of {m['partitionKey']} seq …{m['sequenceNumber'][-6:]}: {m['reason']}"
        )

    console.rule("[bold]6. replay: the agents send the same batches again")
    counts = {f["id"]: f["count"] for f in stored}
    send(stack, out["TelemetryStreamName"], batches)
    stack.pollers.wait_idle(timeout=30)
    after = {f["id"]: f["count"] for f in findings(stack, out["FindingsTableName"])}
    replay_ok = after == counts
    republished = drain(stack, tap_url)
    console.print(
        f"  counts {'unchanged' if replay_ok else f'CHANGED: {counts} -> {after}'}; "
        f"{len(republished)} events re-published; {len(drain(stack, out['IngestDeadLetterQueueUrl']))} new dead letters"
    )

    console.rule("[bold]7. response: Triage -> IsolateInstance -> ReleaseInstance (ResponseDryRun=false)")
    response = run_response_demo(
        session, out, victim, before=before, endpoint_url=stack.endpoint_url, say=console.print
    )
    response_ok = bool(response["isolated"] and response["restored"])

    console.rule("[bold]8. usage: monitored vCPU-hours and cost (vigil usage)")
    from vigil_cli.usage import show as show_usage

    show_usage(stack.client("dynamodb"), out["CoverageTableName"], 30, console)

    console.rule("[bold]9. suppression: a GuardDuty filter (ARCHIVE) silences a repeat false positive")
    from local.scenarios.suppression import run_suppression_demo

    suppression = run_suppression_demo(stack, tap_url, say=console.print)
    suppression_ok = bool(suppression["ok"])

    console.rule("[bold]10. coverage: HEALTHY / UNHEALTHY per running instance (vigil coverage list)")
    from local.scenarios.coverage import run_coverage_demo

    coverage_ok = run_coverage_demo(stack, console)
    drain(stack, tap_url)  # the coverage events also match this tap; counted by the scenario's own

    console.rule("[bold]11. sources: flow logs and Resolver logs cover an instance whose agent is stopped")
    from local.scenarios.sources import run_sources_demo

    sources_ok = run_sources_demo(stack, tap_url, console)

    console.rule(
        "[bold]12. multi-account: a member account's finding on the administrator (MemberAccountIds)"
    )
    from local.scenarios.multiaccount import run_multiaccount_demo

    multiaccount = run_multiaccount_demo(stack, tap_url, say=console.print, out=plain_out)
    multiaccount_ok = bool(multiaccount["ok"])
    console.print(
        f"  member finding on the bus and in the table, listed by --account; foreign batch refused: {multiaccount_ok}"
    )

    console.rule(
        "[bold]13. attack sequence: the reverse shell reads the instance's credentials (a second tactic)"
    )
    sequence_ok = run_sequence_step(stack, out, tap_url, victim, console)

    console.rule("[bold]timings")
    ms = lambda s: f"{s * 1000:.0f} ms" if s is not None else "never"  # noqa: E731
    console.print(
        f"  offline stack start {stack.info.timings['total_s']:.1f} s; put_records -> findings stored {ms(stored_at)}, "
        f"-> events on the bus {ms(bus_at)}; pipeline settled in {settle:.1f} s"
    )
    invocations = stack.runtime.invocations if stack.runtime else []
    console.print(f"  {len(invocations)} Lambda invocations, {sum(1 for i in invocations if i[2])} errored")

    missing = [t for t in EXPECTED if t not in {f["type"] for f in stored}]
    unpublished = [t for t in EXPECTED if t not in {e["detail"]["type"] for e in bus_events}]
    if (
        missing
        or unpublished
        or not replay_ok
        or not response_ok
        or not coverage_ok
        or not suppression_ok
        or not integrations_ok
        or not multiaccount_ok
        or not sources_ok
        or not sequence_ok
    ):
        console.print(
            f"[red bold]DEMO FAILED[/] missing findings {missing}, not on the bus {unpublished}, replay ok {replay_ok}, "
            f"isolated {response['isolated']}, groups restored {response['restored']}, coverage ok {coverage_ok}, "
            f"suppression ok {suppression_ok}, integrations ok {integrations_ok}, sources ok {sources_ok}, "
            f"multi-account ok {multiaccount_ok}, attack sequence ok {sequence_ok}"
        )
        return 1
    console.print(
        "[green bold]DEMO PASSED[/] both expected findings stored and published; the replay changed nothing; "
        "the instance was isolated and released to its exact original groups; the suppression rule "
        "archived the repeat (not on the bus); coverage found the stale instance UNHEALTHY and said so on the bus; "
        "the instance without an agent got its EC2 findings from flow-log and Resolver lines; "
        "a member account's finding reached the administrator and a stranger account's batch was refused; "
        "the reverse-shell instance's second tactic formed one attack sequence, published, unchanged by a replay"
    )
    if keep:
        console.print(f"stack stays up at {stack.endpoint_url} (state in {stack.state_file}); Ctrl-C to stop")
        try:
            while True:
                time.sleep(1)
                stack.pollers.check()
        except KeyboardInterrupt:
            pass
    return 0


def run_sequence_step(
    stack: LocalStack, out: dict[str, str], tap_url: str, victim: str, console: Any
) -> bool:
    """Send the reverse shell's next step for the victim; the sequence must be stored with both
    tactics, reach the bus, and stay the same when the batch is sent again."""
    from local.scenarios.response import with_instance_id

    step = Sent(NEXT_STEP, victim, with_instance_id((EVENTS / NEXT_STEP).read_bytes(), victim))
    console.print(f"  {step.name:<26} {len(step.data):>6} bytes  partition key {step.instance}")
    send(stack, out["TelemetryStreamName"], [step])

    def ours() -> list[dict[str, Any]]:
        found = findings(stack, out["FindingsTableName"])
        return [f for f in found if f["type"] == SEQUENCE and f["instanceId"] == victim]

    published: list[dict[str, Any]] = []
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        published += [e for e in drain(stack, tap_url) if e["detail"].get("type") == SEQUENCE]
        if ours() and published:
            break
        time.sleep(0.1)
    stack.pollers.wait_idle(timeout=30)
    stored = ours()
    if len(stored) != 1:
        console.print(f"  [red]expected one {SEQUENCE} finding on {victim}, found {len(stored)}[/]")
        return False
    doc = (
        json.loads(stored[0]["finding"])
        if isinstance(stored[0].get("finding"), str)
        else stored[0]["finding"]
    )
    signals = doc["service"]["detection"]["sequence"]["signals"]
    console.print(f"  {doc['type']}  {severity_text(float(doc['severity']))}  count {stored[0]['count']}")
    for n, sig in enumerate(signals, 1):
        tactic = sig["signalIndicators"][0]["values"][0]
        console.out(f"    {n}. {sig['firstSeenAt']}  {tactic:<18} {sig['name']}", highlight=False)
    tactics = {sig["signalIndicators"][0]["values"][0] for sig in signals}
    send(stack, out["TelemetryStreamName"], [step])  # the same batch again
    stack.pollers.wait_idle(timeout=30)
    again = ours()
    replay_ok = len(again) == 1 and again[0]["count"] == stored[0]["count"]
    console.print(
        f"  tactics {sorted(tactics)}; on the bus: {bool(published)}; replayed: count "
        f"{'unchanged' if replay_ok else 'CHANGED'}"
    )
    return bool(published) and replay_ok and {"Execution", "Credential Access"} <= tactics


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _any_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from local.integrations import DEMO_PARAMETERS
    from local.scenarios.multiaccount import PARAMETERS as MULTIACCOUNT_PARAMETERS
    from local.stack import STATE_FILE

    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the stack running after the demo")
    parser.add_argument(
        "--port", type=int, default=0, help=f"moto port (default {DEFAULT_PORT}, or any free one)"
    )
    args = parser.parse_args(argv)
    port = args.port or (DEFAULT_PORT if _free(DEFAULT_PORT) else _any_port())
    out = sys.__stdout__
    console = Console(file=out, width=None if out is not None and out.isatty() else 160)
    t0 = time.perf_counter()
    try:
        with started(
            console,
            port=port,
            state_file=STATE_FILE if args.keep else None,
            parameters={"ResponseDryRun": "false", **DEMO_PARAMETERS, **MULTIACCOUNT_PARAMETERS},
            sources=True,  # flow logs, Resolver query logs, CloudTrail through the template (step 11)
        ) as stack:
            rc = run(stack, console, args.keep)
    except RuntimeError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    console.print(f"[dim]demo wall time {time.perf_counter() - t0:.1f} s[/]")
    return rc


if __name__ == "__main__":
    sys.exit(main())
