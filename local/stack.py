"""The offline stack: moto on loopback + the real template.yaml + Lambda code in this process.

    python -m local.stack [--port 5000] [--param FindingPublishingFrequency=FIFTEEN_MINUTES]

serves until Ctrl-C. Other processes (the agent's `make demo-live`, the CLI, the aws CLI with
``--endpoint-url``) find it through ``local/.state/stack.json``: endpoint, region, outputs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.runtime import STATE_DIR, LocalRuntime

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_PORT = 5000
STATE_FILE = STATE_DIR / "stack.json"

# Every process that touches the stack uses fake credentials and the local endpoint only.
_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_DEV": "0",
}


@dataclass
class StackInfo:
    endpoint_url: str
    region: str
    stack_name: str
    account_id: str
    outputs: dict[str, str]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "stack_name": self.stack_name,
            "account_id": self.account_id,
            "outputs": self.outputs,
            "notes": self.notes,
            "pid": os.getpid(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


class LocalStack:
    """Start/stop the whole offline stack; usable as a context manager.

    ``step`` is called with a short description before each start-up step (progress display).
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        region: str = "us-east-1",
        stack_name: str = "vigil",
        parameters: dict[str, str] | None = None,
        state_file: Path | None = STATE_FILE,
        step: Callable[[str], None] = lambda s: None,
        note: Callable[[str], None] = lambda s: None,
        sources: bool = False,
    ) -> None:
        self.port = port
        # AWS-delivered sources (flow logs, Resolver query logs, CloudTrail) through the template,
        # on the emulated default VPC (local/sources.py): `make stack` and `make demo` turn them on;
        # off by default so the benchmarks' and tests' stacks stay what they measured
        self.sources = sources
        self.region = region
        self.stack_name = stack_name
        self.parameters = parameters or {}
        # the stand-in for AWS's identity signer: IngestFunction trusts its certificate, and
        # local.identity's helpers (same process) sign the batches put on the stream with it
        from local.identity import test_authority

        self.identity = test_authority()
        self.state_file = state_file
        self.step = step
        self.note = note
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self.server: Any = None
        self.runtime: LocalRuntime | None = None
        self.pollers: Any = None
        self.schedules: Any = None  # local.schedules.Schedules: scheduled functions (run_now)
        self.info: StackInfo | None = None
        self._saved_env: dict[str, str | None] = {}

    def _set_env(self) -> None:
        env = dict(_ENV)
        env.update(
            {
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                # Handlers build boto3 clients with no endpoint: this points them at moto.
                "AWS_ENDPOINT_URL": self.endpoint_url,
                # Step Functions aws-sdk and Lambda tasks call back to moto on this port.
                "MOTO_PORT": str(self.port),
            }
        )
        for k, v in env.items():
            self._saved_env[k] = os.environ.get(k)
            os.environ[k] = v

    def _restore_env(self) -> None:
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def start(self) -> StackInfo:
        import boto3
        import requests
        from moto.server import ThreadedMotoServer

        from local import deploy, patches
        from local.pollers import Pollers

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if _port_in_use(self.port):
            raise RuntimeError(
                f"127.0.0.1:{self.port} is already in use (another `python -m local.stack`?). "
                "Stop it, or pass --port."
            )
        self._set_env()
        # handlers' cached clients (vigil_aws.clients) point at whatever endpoint was current when
        # they were made: a second stack in one process (pytest) must not reach the first one's
        from vigil_aws import clients

        clients.reset()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self.step(f"starting emulated AWS (moto) on {self.endpoint_url}")
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10)
        requests.post(
            f"{self.endpoint_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        ).raise_for_status()
        timings["server_s"] = time.perf_counter() - t0

        self.step("patching moto gaps (in-process Lambda, stream pollers, EventBridge targets, SFN)")
        self.runtime = LocalRuntime()
        patches.apply_all(self.runtime)

        self.step("packaging and translating template.yaml (samtranslator), creating the stack")
        t1 = time.perf_counter()
        session = boto3.Session(region_name=self.region)
        notes: list[str] = []

        def note(msg: str) -> None:
            notes.append(msg)
            self.note(msg)

        parameters = {"InstanceIdentityCertificates": self.identity.cert_pem.decode()}
        if self.sources:
            from local import sources

            parameters.update(sources.parameters(session, self.endpoint_url, self.region))
        parameters.update(self.parameters)
        outputs, cfn = deploy.deploy(session, self.endpoint_url, self.region, self.stack_name, parameters, note)
        if self.sources:
            sources.subscribe(cfn, session, self.endpoint_url, self.region, self.stack_name, note)
        timings["deploy_s"] = time.perf_counter() - t1

        self.step("cold-starting the functions (like provisioned concurrency)")
        from moto.awslambda.models import lambda_backends

        cold = {}
        for fn in lambda_backends[ACCOUNT_ID][self.region].list_functions():
            try:
                cold[fn.function_name] = self.runtime.warm(fn)
            except Exception as exc:  # the first invocation reports it as an init error
                note(f"cold start of {fn.function_name} failed: {exc!r}")
        timings["cold_start_ms"] = max(cold.values(), default=0.0)

        self.step("starting stream pollers (Kinesis -> IngestFunction, findings stream -> PublishFunction)")
        self.pollers = Pollers(self.runtime, session, self.endpoint_url, ACCOUNT_ID, self.region)
        self.pollers.start()
        self.step("starting schedules (PublishSweepFunction, CoverageFunction: rate(...) rules)")
        from local.schedules import Schedules

        self.schedules = Schedules(
            self.runtime,
            session.client("events", endpoint_url=self.endpoint_url, region_name=self.region),
            ACCOUNT_ID,
            self.region,
        )
        self.schedules.start()
        for skipped in self.schedules.skipped:
            note(f"schedule not emulated: {skipped}")
        timings["total_s"] = time.perf_counter() - t0
        self.info = StackInfo(
            self.endpoint_url, self.region, self.stack_name, ACCOUNT_ID, outputs, notes, timings
        )
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps(self.info.to_json(), indent=2) + "\n")
            # other processes that put batches on the stream sign with it (TestIdentityAuthority.load)
            self.identity.save(self.state_file.parent / "identity")
        return self.info

    def stop(self) -> None:
        if self.schedules is not None:
            self.schedules.close()
        if self.pollers is not None:
            self.pollers.stop()
        if self.server is not None:
            self.server.stop()
        if self.runtime is not None:
            from local import patches

            patches.restore_all()
        if self.state_file is not None and self.state_file.exists():
            try:
                if json.loads(self.state_file.read_text()).get("pid") == os.getpid():
                    self.state_file.unlink()
            except ValueError:
                pass
        self._restore_env()

    def __enter__(self) -> StackInfo:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a stack, a receiver, a console)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def started(console: Any, **kwargs: Any) -> Iterator[LocalStack]:
    """Start a LocalStack with a rich spinner per step; print notes and outputs."""
    status = console.status("starting the offline stack")
    stack = LocalStack(step=lambda s: status.update(f"[bold]{s}[/]"), note=lambda s: None, **kwargs)
    with status:
        info = stack.__enter__()
    try:
        for n in info.notes:
            console.print(f"[dim]note: {n}[/]")
        console.print(
            f"[green]offline stack up[/] in {info.timings['total_s']:.1f} s "
            f"(server {info.timings['server_s']:.1f} s, deploy {info.timings['deploy_s']:.1f} s) "
            f"at {info.endpoint_url}"
        )
        yield stack
    finally:
        stack.__exit__(None, None, None)


def parse_params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param wants Key=Value, got {item!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOTO_PORT", DEFAULT_PORT)))
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--stack-name", default="vigil")
    parser.add_argument("--param", action="append", default=[], help="template parameter Key=Value")
    parser.add_argument(
        "--no-sources", action="store_true", help="deploy without flow logs / Resolver / CloudTrail delivery"
    )
    args = parser.parse_args(argv)
    out = sys.__stdout__
    console = Console(file=out, width=None if out is not None and out.isatty() else 160)
    try:
        with started(
            console,
            port=args.port,
            region=args.region,
            stack_name=args.stack_name,
            parameters=parse_params(args.param),
            sources=not args.no_sources,
        ) as stack:
            assert stack.info is not None
            table = Table("output", "value", title=f"stack {stack.stack_name}")
            for k, v in sorted(stack.info.outputs.items()):
                table.add_row(k, v)
            console.print(table)
            console.print(
                f"state: {stack.state_file}   Lambda logs: {stack.runtime.log_path if stack.runtime else ''}"
            )
            console.print("serving; Ctrl-C to stop")
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                while not stop.wait(1.0):
                    stack.pollers.check()
            except KeyboardInterrupt:
                pass
            console.print("stopping")
    except RuntimeError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
