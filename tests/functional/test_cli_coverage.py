"""`vigil coverage list|stats` against an offline stack, as a new user runs it: from another
directory, with no AWS credentials in the environment.

GIVEN a moto server on loopback with running instances, coverage rows written by the ingest's
store (one fresh heartbeat from a host with a hostile hostname, one stale) and a scheduled
evaluation already run, WHEN the CLI lists and counts coverage, THEN it shows the stored statuses
with GuardDuty's issues, filters by status and instance, prints the hostile strings escaped, and
``--refresh`` evaluates now without writing.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from vigil.events import AgentHealth, Device
from vigil_aws import clients
from vigil_aws.coverage import CoverageStore
from vigil_aws.coverage_eval import CoverageEvaluator
from vigil_cli.main import app

pytestmark = pytest.mark.integration
HOSTILE = "\x1b[2Jweb[/]\u202e"


@dataclass
class Offline:
    url: str
    table: str
    healthy: str
    stale: str
    never: str


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Offline]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto's backends are per process: instances of an earlier test would be counted
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    table = f"Coverage-{uuid.uuid4().hex[:8]}"  # moto's backends are per process, not per server
    bus = f"bus-{uuid.uuid4().hex[:8]}"
    try:
        # the stack's side, with credentials: as CoverageFunction and the ingest would run
        for k, v in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_ENDPOINT_URL": url,
                     "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        clients.reset()
        ddb = boto3.client("dynamodb")
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "instanceId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "instanceId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        events = boto3.client("events")
        bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
        ids = [
            i["InstanceId"]
            for i in boto3.client("ec2").run_instances(
                ImageId="ami-1e749f67", MinCount=3, MaxCount=3, InstanceType="t3.micro"
            )["Instances"]
        ]
        now = time.time()

        def hb(instance: str, at: float) -> AgentHealth:
            return AgentHealth(
                kind="heartbeat", time=int(at * 1e9), seq=1, device=Device(instance_uid=instance, hostname=HOSTILE),
                agent_version="0.1.0", kernel="6.1.0", sensors_active=("ebpf", "audit", "dns"), vcpus=2,
            )  # fmt: skip

        store = CoverageStore(table)
        store.record([hb(ids[0], now - 30)])
        store.record([hb(ids[1], now - 7200)])
        CoverageEvaluator(table, bus, "123456789012").run()
        clients.reset()
        # the user's side: another directory, no credentials at all
        state = tmp_path / "state" / "stack.json"
        state.parent.mkdir()
        outputs = {"CoverageTableName": table, "FindingsBusArn": bus_arn}
        state.write_text(json.dumps({"region": "us-east-1", "endpoint_url": url, "outputs": outputs}))
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        for var in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
        ):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("VIGIL_LOCAL_STATE", str(state))
        yield Offline(url, table, ids[0], ids[1], ids[2])
    finally:
        server.stop()
        clients.reset()


def _cli(*args: str) -> str:
    res = CliRunner().invoke(app, ["coverage", *args])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and "NoCredentials" not in res.output
    return res.output


def test_list_shows_the_stored_statuses_with_their_issues(offline: Offline) -> None:
    output = _cli("list")
    assert offline.healthy in output and offline.stale in output and offline.never in output
    assert f"UNHEALTHY {offline.stale}: No Agent Reporting: Agent disconnected" in output
    assert f"UNHEALTHY {offline.never}: No Agent Reporting: Waiting for SSM notification" in output
    # the hostile hostname is shown escaped, never sent to the terminal
    assert "\x1b" not in output and "\u202e" not in output and "\\x1b[2Jweb[/]\\u202e" in output


def test_list_filters_by_status_and_instance(offline: Offline) -> None:
    healthy = _cli("list", "--status", "healthy", "--json")
    docs = [json.loads(line) for line in healthy.splitlines()]
    assert [(d["resourceId"], d["coverageStatus"]) for d in docs] == [(offline.healthy, "HEALTHY")]
    assert docs[0]["accountId"] == "123456789012"
    (one,) = [json.loads(line) for line in _cli("list", "--instance", offline.stale, "--json").splitlines()]
    assert (one["coverageStatus"], one["issue"]) == ("UNHEALTHY", "No Agent Reporting: Agent disconnected")


def test_a_bad_status_is_a_clear_error(offline: Offline) -> None:
    res = CliRunner().invoke(app, ["coverage", "list", "--status", "[/]bogus"])
    assert res.exit_code == 2 and "--status must be HEALTHY or UNHEALTHY" in res.output
    assert "Traceback" not in res.output


def test_stats_counts_by_status_and_resource_type(offline: Offline) -> None:
    assert "EC2 instances 3: HEALTHY 1, UNHEALTHY 2 (33.3 % healthy)" in _cli("stats")
    assert json.loads(_cli("stats", "--json")) == {
        "countByCoverageStatus": {"HEALTHY": 1, "UNHEALTHY": 2},
        "countByResourceType": {"EC2": 3},
    }


def test_refresh_evaluates_now_and_writes_nothing(offline: Offline) -> None:
    # GIVEN a shorter disconnected age than the stored run used: nothing changes in the table
    before = boto3.client(
        "dynamodb",
        endpoint_url=offline.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    ).scan(TableName=offline.table)["Items"]
    docs = [json.loads(line) for line in _cli("list", "--refresh", "--json").splitlines()]
    assert {d["resourceId"]: d["coverageStatus"] for d in docs} == {
        offline.healthy: "HEALTHY",
        offline.stale: "UNHEALTHY",
        offline.never: "UNHEALTHY",
    }
    after = boto3.client(
        "dynamodb",
        endpoint_url=offline.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    ).scan(TableName=offline.table)["Items"]
    assert sorted(map(str, before)) == sorted(map(str, after))
