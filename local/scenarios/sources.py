"""The sources part of `make demo`: an instance whose agent is stopped is still covered.

Launches an instance in the emulated default VPC (the one the stack's flow log and Resolver query
logging cover) that never reports: coverage calls it UNHEALTHY (No Agent Reporting). The stand-in
for the VPC Flow Logs and Resolver delivery services (local/sources.py) then writes recorded
lines for it into the template's log groups: a port scan it runs (events/sources/
flowlogs_portscan.log), a DNS exfiltration loop (events/sources/resolver_dns_exfiltration.ndjson)
and a mining-pool lookup. From there the path is the real one: CloudWatch Logs subscription ->
SourcesStream -> IngestFunction -> FindingsTable -> PublishFunction -> FindingsBus.

One finding per indicator, both sides: the HEALTHY instance of the coverage step sends the
recorded crypto-mining batch (its agent reports the lookup: the runtime finding, with xmrig as
the process); the Resolver's line of the same lookup for it raises no EC2 finding, while the same
line for the instance without an agent does. Returns whether all of that held.

    from local.scenarios.sources import run_sources_demo
    ok = run_sources_demo(stack, tap_url, console)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[2] / "events"
LINUX_AMI = "ami-1e749f67"  # Ubuntu in moto's image catalogue
POOL = "pool.supportxmr.com"  # the recorded crypto_dns batch's lookup (built-in mining-pool list)
POOL_DAY = "2025-11-24T16:05:00Z"  # the recorded batch's day: the indicator is noted per UTC day
EXPECTED_NO_AGENT = (
    "Recon:EC2/Portscan",
    "Trojan:EC2/DNSDataExfiltration",
    "CryptoCurrency:EC2/BitcoinTool.B!DNS",
)
WAIVED = "CryptoCurrency:EC2/BitcoinTool.B!DNS"
RUNTIME = "CryptoCurrency:Runtime/BitcoinTool.B!DNS"


def _healthy_instance(stack: Any, table: str) -> str:
    items = stack.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    ids = sorted(i["instanceId"]["S"] for i in items if i.get("covStatus", {}).get("S") == "HEALTHY")
    return ids[0] if ids else ""


def _wait(pred: Any, timeout: float) -> bool:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return False


def run_sources_demo(stack: Any, tap_url: str, console: Any) -> bool:
    from rich.table import Table

    from local import sources
    from local.demo import Sent, drain, findings, send, severity_text
    from local.scenarios.response import with_instance_id

    out = stack.info.outputs
    if "FlowLogGroupName" not in out or "ResolverLogGroupName" not in out:
        console.print("  [red]the stack runs without sources (LocalStack(sources=True) deploys them)[/]")
        return False
    ec2 = stack.client("ec2")
    quiet = ec2.run_instances(
        ImageId=LINUX_AMI,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "demo-agent-stopped"}]}
        ],
    )["Instances"][0]["InstanceId"]
    healthy = _healthy_instance(stack, out["CoverageTableName"])
    console.print(f"  {quiet}: launched, its agent never reports (coverage: UNHEALTHY, No Agent Reporting)")

    runtime_ok = False
    if healthy:
        batch = with_instance_id((EVENTS / "agent" / "crypto_dns.ndjson").read_bytes(), healthy)
        send(stack, out["TelemetryStreamName"], [Sent("crypto_dns.ndjson", healthy, batch)])
        runtime_ok = _wait(
            lambda: any(
                f["type"] == RUNTIME and f["instanceId"] == healthy
                for f in findings(stack, out["FindingsTableName"])
            ),
            30,
        )
        console.print(
            f"  {healthy}: HEALTHY (coverage step); its agent reports the lookup of {POOL}: "
            f"{RUNTIME} {'stored' if runtime_ok else 'NOT stored'}"
        )

    flow = [
        f"{line} {quiet}"
        for line in (EVENTS / "sources" / "flowlogs_portscan.log").read_text().splitlines()
        if line.strip()
    ]
    exfil = []
    for line in (EVENTS / "sources" / "resolver_dns_exfiltration.ndjson").read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            rec["srcids"] = {"instance": quiet}
            exfil.append(json.dumps(rec))
    lookups = [sources.resolver_record(POOL, quiet, POOL_DAY)]
    if healthy:
        lookups.append(sources.resolver_record(POOL, healthy, POOL_DAY, src="10.0.2.41"))
    logs = stack.client("logs")
    n_flow = sources.deliver(logs, out["FlowLogGroupName"], flow, stream="eni-stand-in")
    n_dns = sources.deliver(logs, out["ResolverLogGroupName"], exfil + lookups, stream="vpc-stand-in")
    console.print(
        f"  [dim]STAND-IN for the VPC Flow Logs and Resolver delivery services (moto delivers none):[/] "
        f"{n_flow} flow-log lines -> {out['FlowLogGroupName']}, {n_dns} query-log lines -> {out['ResolverLogGroupName']}; "
        "from there: subscription filters -> SourcesStream -> IngestFunction"
    )

    bus: list[dict[str, Any]] = []

    def arrived() -> bool:
        bus.extend(drain(stack, tap_url))
        got = {(e["detail"]["type"], e["detail"]["resource"]["instanceDetails"]["instanceId"]) for e in bus}
        return all((t, quiet) in got for t in EXPECTED_NO_AGENT)

    on_bus = _wait(arrived, 30)
    stack.pollers.wait_idle(timeout=30)
    bus.extend(drain(stack, tap_url))
    table = Table("finding type", "severity", "instance", "count", "data source")
    for e in bus:
        d = e["detail"]
        if ":EC2/" not in d["type"]:
            continue
        info = json.loads(d["service"].get("additionalInfo", {}).get("value") or "{}")
        table.add_row(
            d["type"],
            severity_text(float(d["severity"])),
            d["resource"]["instanceDetails"]["instanceId"],
            str(d["service"]["count"]),
            str(info.get("dataSource", "")),
        )
    console.print(table)
    stored = findings(stack, out["FindingsTableName"])
    doubled = [f for f in stored if f["type"] == WAIVED and f["instanceId"] == healthy] if healthy else []
    waiver_ok = bool(healthy) and runtime_ok and not doubled
    console.print(
        f"  one finding per indicator: {healthy or 'no HEALTHY instance'} has {RUNTIME} (with its process) and "
        f"{'no' if not doubled else 'ALSO a'} {WAIVED}; {quiet} (no agent) has {WAIVED} from the Resolver's line"
    )
    return on_bus and waiver_ok
