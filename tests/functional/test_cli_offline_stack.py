"""`vigil findings list` against the offline stack, as a new user runs it: from any directory, with
no AWS credentials in the environment (the offline stack is moto on loopback: it needs none).

GIVEN a moto server on loopback with a findings table and the state file `make stack` writes,
WHEN the CLI runs from another directory with no AWS keys set, THEN it lists the finding instead of
saying "no stack" or printing a NoCredentialsError.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from vigil_cli import stack as cli_stack
from vigil_cli.main import app

pytestmark = pytest.mark.integration


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    table = f"Findings-{uuid.uuid4().hex[:8]}"  # moto's backends are per process, not per server
    try:
        ddb = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        doc = {"id": "f" * 32, "type": "Execution:Runtime/ReverseShell", "severity": 8.0, "title": "a shell",
               "resource": {"instanceDetails": {"instanceId": "i-0123456789abcdef0"}}, "service": {}}  # fmt: skip
        ddb.put_item(
            TableName=table,
            Item={
                "id": {"S": doc["id"]}, "finding": {"S": json.dumps(doc)}, "type": {"S": doc["type"]},
                "severity": {"N": "8"}, "severityLabel": {"S": "High"}, "status": {"S": "ACTIVE"},
                "instanceId": {"S": "i-0123456789abcdef0"}, "title": {"S": "a shell"}, "count": {"N": "1"},
                "updatedAt": {"S": "2026-12-06T00:00:00.000Z"}, "createdAt": {"S": "2026-12-06T00:00:00.000Z"},
            },
        )  # fmt: skip
        state = tmp_path / "state" / "stack.json"
        state.parent.mkdir()
        state.write_text(
            json.dumps({"region": "us-east-1", "endpoint_url": url, "outputs": {"FindingsTableName": table}})
        )
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        yield state
    finally:
        server.stop()


def test_findings_list_works_with_no_credentials(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_LOCAL_STATE", str(offline))
    res = CliRunner().invoke(app, ["findings", "list"])
    assert res.exit_code == 0, res.output
    assert "f" * 32 in res.output and "NoCredentials" not in res.output


def test_the_checkouts_state_file_is_found_from_any_directory(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no override and a current directory without local/.state: the checkout's file is used
    monkeypatch.delenv("VIGIL_LOCAL_STATE", raising=False)
    checkout_state = Path(cli_stack.__file__).resolve().parents[2] / cli_stack.LOCAL_STATE
    assert cli_stack.local_state_file() == (checkout_state if checkout_state.exists() else None)
    # AND an explicit override that does not exist is not silently replaced by another file
    monkeypatch.setenv("VIGIL_LOCAL_STATE", str(offline.parent / "missing.json"))
    assert cli_stack.local_state_file() is None
    res = CliRunner().invoke(app, ["findings", "list"])
    assert res.exit_code != 0 and "no stack" in res.output
