"""`vigil filters ...`, `vigil findings list --filter`, `vigil findings archive|unarchive|feedback`
against an offline-stack-shaped moto server on loopback, as a user runs them: no AWS credentials,
from another directory, GuardDuty's JSON as is, hostile input never printed as a traceback.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from handler_harness import template_resources
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from vigil_cli.main import app

pytestmark = pytest.mark.integration

PENTEST_ID, WEB_ID = "a" * 32, "b" * 32
DONE_WHEN = {
    "Name": "pentest-tools",
    "Description": "Authorized penetration tests from instances tagged Role=pentest",
    "Action": "ARCHIVE",
    "Rank": 1,
    "FindingCriteria": {
        "Criterion": {
            "type": {"Equals": ["Execution:Runtime/SuspiciousTool"]},
            "resource.instanceDetails.tags.key": {"Equals": ["Role"]},
            "resource.instanceDetails.tags.value": {"Equals": ["pentest"]},
        }
    },
}


class Offline:
    def __init__(self, url: str, names: dict[str, str], tap: str) -> None:
        self.url, self.names, self.tap = url, names, tap

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name="us-east-1", endpoint_url=self.url,
                            aws_access_key_id="x", aws_secret_access_key="x")  # fmt: skip

    def bus(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        msgs = sqs.receive_message(QueueUrl=self.tap, MaxNumberOfMessages=10).get("Messages", [])
        for m in msgs:
            sqs.delete_message(QueueUrl=self.tap, ReceiptHandle=m["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in msgs]

    def item(self, fid: str) -> dict[str, Any]:
        return dict(
            self.client("dynamodb").get_item(
                TableName=self.names["FindingsTableName"], Key={"id": {"S": fid}}
            )["Item"]
        )


def _finding_item(fid: str, role: str) -> dict[str, Any]:
    doc = {"schemaVersion": "2.0", "id": fid, "type": "Execution:Runtime/SuspiciousTool", "severity": 8.0,
           "title": f"hydra on a {role} host", "resource": {"resourceType": "Instance", "instanceDetails": {
               "instanceId": "i-0123456789abcdef0", "tags": [{"key": "Role", "value": role}]}},
           "service": {"count": 1, "runtimeDetails": {"context": {"toolName": "hydra"}}}}  # fmt: skip
    return {
        "id": {"S": fid}, "finding": {"S": json.dumps(doc)}, "type": {"S": doc["type"]},
        "severity": {"N": "8"}, "severityLabel": {"S": "High"}, "status": {"S": "ACTIVE"},
        "instanceId": {"S": "i-0123456789abcdef0"}, "title": {"S": doc["title"]}, "count": {"N": "1"},
        "updatedAt": {"S": "2026-12-06T00:00:00.000Z"}, "createdAt": {"S": "2026-12-06T00:00:00.000Z"},
        "rev": {"N": "1"},
    }  # fmt: skip


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Offline]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    suffix = uuid.uuid4().hex[:8]  # moto's backends are per process, not per server
    names = {"FindingsTableName": f"Findings-{suffix}", "FiltersTableName": f"Filters-{suffix}",
             "FindingsBusName": f"bus-{suffix}"}  # fmt: skip
    try:
        o = Offline(f"http://127.0.0.1:{port}", names, "")
        ddb = o.client("dynamodb")
        res = template_resources()
        for logical, out in (("FindingsTable", "FindingsTableName"), ("FiltersTable", "FiltersTableName")):
            props = res[logical]["Properties"]
            kwargs = {
                k: props[k]
                for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
                if k in props
            }
            ddb.create_table(TableName=names[out], BillingMode="PAY_PER_REQUEST", **kwargs)
        for fid, role in ((PENTEST_ID, "pentest"), (WEB_ID, "web")):
            ddb.put_item(TableName=names["FindingsTableName"], Item=_finding_item(fid, role))
        sqs, events = o.client("sqs"), o.client("events")
        o.tap = sqs.create_queue(QueueName=f"tap-{suffix}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=o.tap, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.create_event_bus(Name=names["FindingsBusName"])
        events.put_rule(
            Name="tap", EventBusName=names["FindingsBusName"], EventPattern=json.dumps({"source": ["vigil"]})
        )
        events.put_targets(
            Rule="tap", EventBusName=names["FindingsBusName"], Targets=[{"Id": "t", "Arn": arn}]
        )
        state = tmp_path / "state" / "stack.json"
        state.parent.mkdir()
        state.write_text(json.dumps({"region": "us-east-1", "endpoint_url": o.url, "outputs": names}))
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("VIGIL_LOCAL_STATE", str(state))
        yield o
    finally:
        server.stop()


def vigil(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def _no_traceback(res: Any) -> None:
    assert ("Traceback" not in res.output and res.exception is None) or isinstance(
        res.exception, SystemExit
    ), res.output


def test_filters_lifecycle_with_guardduty_json(offline: Offline, tmp_path: Path) -> None:
    # GIVEN the Done-when GuardDuty filter in a file
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps(DONE_WHEN))
    # WHEN created, listed, shown
    res = vigil("filters", "create", str(rule))
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["Name"] == "pentest-tools"
    listing = vigil("filters", "list")
    assert listing.exit_code == 0 and "pentest-tools" in listing.output and "ARCHIVE" in listing.output
    shown = vigil("filters", "show", "pentest-tools")
    got = json.loads(shown.stdout)
    # AND `aws guardduty get-filter`-shaped output is imported from stdin under another name
    res = vigil("filters", "create", "-", "--name", "pentest-copy", input=json.dumps(got))
    assert res.exit_code == 0, res.output
    # WHEN updated from stdin (UpdateFilter input) and deleted
    res = vigil("filters", "update", "pentest-copy", "-", input=json.dumps({"Action": "NOOP", "Rank": 7}))
    assert res.exit_code == 0 and json.loads(res.stdout)["Action"] == "NOOP", res.output
    assert vigil("filters", "delete", "pentest-copy").exit_code == 0
    # THEN --json lists one filter, and every change is on the bus with who made it
    lines = vigil("filters", "list", "--json").stdout.splitlines()
    assert [json.loads(line)["Name"] for line in lines] == ["pentest-tools"]
    ops = [(e["detail"]["operation"], e["detail"]["name"]) for e in offline.bus()]
    assert sorted(ops) == sorted([("CREATE", "pentest-tools"), ("CREATE", "pentest-copy"),
                                  ("UPDATE", "pentest-copy"), ("DELETE", "pentest-copy")])  # fmt: skip


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("filters", "create", "-"), "{not json", "not valid JSON"),
        (("filters", "create", "-"), json.dumps(dict(DONE_WHEN, Name="[/]\x1b[2J")), "must be 3-64"),
        (("filters", "create", "-"), json.dumps(dict(DONE_WHEN, Action="[bold]x")), "NOOP or ARCHIVE"),
        (("filters", "create", "/nonexistent/rule.json"), None, "cannot read"),
        (("filters", "show", "[/]nope"), None, "no filter named"),
        (("filters", "delete", "nope\x1b]0;x\x07"), None, "no filter named"),
        (("filters", "update", "nope", "-"), "[]", "must be a JSON object"),
        (("findings", "list", "--filter", "severity>=[/]"), None, "not an integer"),
        (("findings", "list", "--filter", "{\x1b[31m"), None, "not valid JSON"),
        (("findings", "archive", "[/]\x1b[2J"), None, "not a finding id"),
        (("findings", "feedback", "a" * 32), None, "--useful or --not-useful"),
        (("findings", "unarchive", "c" * 32), None, "no finding"),
    ],
)
def test_bad_input_is_one_escaped_line_never_a_traceback(
    offline: Offline, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    res = vigil(*args, input=stdin)
    assert res.exit_code in (1, 2), res.output
    _no_traceback(res)
    assert message in res.output and "\x1b" not in res.output


def test_findings_list_filter(offline: Offline) -> None:
    # WHEN listing with the short syntax and with FindingCriteria JSON
    short = vigil("findings", "list", "--json", "--filter", "resource.instanceDetails.tags.value=pentest")
    crit = json.dumps(
        {
            "Criterion": {
                "resource.instanceDetails.tags.value": {"NotEquals": ["pentest"]},
                "severity": {"Gte": 7},
            }
        }
    )
    full = vigil("findings", "list", "--json", "--filter", crit)
    # THEN each lists the matching finding only
    assert [json.loads(x)["id"] for x in short.stdout.splitlines()] == [PENTEST_ID]
    assert [json.loads(x)["id"] for x in full.stdout.splitlines()] == [WEB_ID]


def test_archive_unarchive_feedback(offline: Offline) -> None:
    # WHEN the pentest finding is archived THEN it leaves the default list but stays queryable
    res = vigil("findings", "archive", PENTEST_ID)
    assert res.exit_code == 0 and f"archived {PENTEST_ID}" in res.output
    assert PENTEST_ID not in vigil("findings", "list", "--json").stdout
    archived = vigil("findings", "list", "--json", "--filter", "service.archived=true").stdout.splitlines()
    assert [json.loads(x)["id"] for x in archived] == [PENTEST_ID]
    item = offline.item(PENTEST_ID)
    assert item["archiveSource"]["S"] == "MANUAL" and item["rev"]["N"] == "2" and item["archivedBy"]["S"]
    # WHEN feedback is given and the finding unarchived
    res = vigil("findings", "feedback", PENTEST_ID, "--not-useful", "--comment", "approved pentest")
    assert res.exit_code == 0, res.output
    assert vigil("findings", "unarchive", PENTEST_ID).exit_code == 0
    # THEN it is listed again with GuardDuty's userFeedback
    [doc] = [
        json.loads(x)
        for x in vigil("findings", "list", "--json", "--filter", f"id={PENTEST_ID}").stdout.splitlines()
    ]
    assert doc["service"]["archived"] is False and doc["service"]["userFeedback"] == "NOT_USEFUL"
    assert offline.item(PENTEST_ID)["feedbackComment"]["S"] == "approved pentest"


def test_findings_list_filters_by_account_and_says_whose_each_finding_is(offline: Offline) -> None:
    # GIVEN the administrator's two findings and one of a member account (multi-account)
    member = _finding_item("c" * 32, "web")
    doc = json.loads(member["finding"]["S"])
    doc["accountId"] = "111122223333"
    member["finding"] = {"S": json.dumps(doc)}
    offline.client("dynamodb").put_item(TableName=offline.names["FindingsTableName"], Item=member)
    # WHEN listed with --account, THEN only that account's findings
    only = vigil("findings", "list", "--json", "--account", "111122223333")
    assert only.exit_code == 0, only.output
    assert [json.loads(line)["id"] for line in only.stdout.splitlines()] == ["c" * 32]
    assert vigil("findings", "list", "--json", "--account", "999988887777").stdout.strip() == ""
    # AND the table grows an account column only when the findings span several accounts
    table = vigil("findings", "list")
    assert "account" in table.output and "111122223333" in table.output
    assert "account" not in vigil("findings", "list", "--account", "111122223333").output.split("\n", 3)[2]
