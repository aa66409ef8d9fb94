"""Finding a deployed stack's resources: CloudFormation outputs, or the offline stack's state file.

Errors are ``SystemExit`` messages, which Python writes to stderr as they are: they pass through
``safe.visible`` (a stack name or an AWS error can carry control characters)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError

from vigil_cli import safe
from vigil_cli.safe import visible

# `--account ID` of every listing command: only what belongs to this AWS account (multi-account:
# the administrator's or a member's, as the signed instance identity says; docs/multi-account.md)
AccountOpt = Annotated[
    str | None,
    typer.Option("--account", metavar="ACCOUNT_ID", help="only this AWS account (administrator or member)"),
]

LOCAL_STATE = Path("local/.state/stack.json")  # written by `make stack`, relative to the checkout
# the offline stack is moto on loopback: any key signs, but boto3 refuses to sign with none
OFFLINE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def local_state_file() -> Path | None:
    """The running offline stack's state file: $VIGIL_LOCAL_STATE, else local/.state/stack.json
    in the current directory, else in the checkout this CLI runs from (so any directory works)."""
    env = os.environ.get("VIGIL_LOCAL_STATE")
    if env:
        return Path(env) if Path(env).exists() else None
    for candidate in (Path.cwd() / LOCAL_STATE, Path(__file__).resolve().parents[2] / LOCAL_STATE):
        if candidate.exists():
            return candidate
    return None


@dataclass(frozen=True)
class Target:
    region: str
    endpoint_url: str | None
    outputs: dict[str, str]
    offline: bool = False  # the offline stack: no AWS credentials needed

    def client(self, service: str) -> Any:
        creds: dict[str, str] = {}
        if self.offline and boto3.session.Session().get_credentials() is None:
            creds = OFFLINE_CREDENTIALS
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url, **creds)

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            have = ", ".join(sorted(self.outputs)) or "none"
            raise SystemExit(visible(f"stack output {name!r} not found (have: {have})")) from None


def resolve(stack: str | None, region: str | None, endpoint_url: str | None) -> Target:
    """--stack NAME reads CloudFormation outputs; with no --stack, a running offline stack is used."""
    state = local_state_file() if stack is None and endpoint_url is None else None
    if state is not None:
        st = json.loads(state.read_text())
        return Target(
            st.get("region", "us-east-1"), st.get("endpoint_url"), dict(st.get("outputs", {})), offline=True
        )
    if stack is None:
        raise SystemExit(
            "no stack: pass --stack NAME (deployed with sam deploy), or start the offline stack (make stack)"
        )
    reg = region or boto3.session.Session().region_name or "us-east-1"
    cfn = boto3.client("cloudformation", region_name=reg, endpoint_url=endpoint_url)
    try:
        desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as exc:
        raise SystemExit(visible(f"cannot read stack {stack!r}: {exc}")) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
    return Target(reg, endpoint_url, outputs)


@contextmanager
def aws_errors() -> Iterator[None]:
    """An AWS error (no such execution, invalid name, no credentials, endpoint unreachable) is one
    escaped line on stderr and exit status 1, not a traceback: its message quotes what was asked."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        safe.console(stderr=True).print(f"[red]error:[/] {safe.markup(exc)}", highlight=False)
        raise typer.Exit(1) from None


def stack_account(target: Target) -> str:
    """The stack's (administrator's) account, from an ARN among its outputs (the CLI may have no
    credentials to ask STS)."""
    parts = target.outputs.get("FindingsBusArn", "").split(":")
    return parts[4] if len(parts) > 5 else ""
