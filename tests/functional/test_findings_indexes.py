"""FindingsTable's indexes hold keys (ByStatus: and what the sweep filters on), not the finding
(issue 14: an update moves every index entry, and an entry with the document cost its size twice
per index). Every reader reads the items by id: `vigil findings list --instance/--type` and the
publication sweep, on moto with the tables as template.yaml declares them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from handler_harness import REGION, Aws, template_resources
from typer.testing import CliRunner

from vigil import sample as s
from vigil.findings import Occurrence
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState
from vigil_aws.findings_store import FindingsStore, new_item, now_iso, raw_document_text
from vigil_cli import main
from vigil_cli.main import app
from vigil_cli.stack import Target


def test_the_indexes_project_keys_and_the_sweeps_filter_only() -> None:
    props = template_resources()["FindingsTable"]["Properties"]
    proj = {i["IndexName"]: i["Projection"] for i in props["GlobalSecondaryIndexes"]}
    assert proj["ByResource"] == proj["ByType"] == {"ProjectionType": "KEYS_ONLY"}
    assert proj["ByStatus"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": [
            "updatedAt",
            "lastPublishedAt",
            "publishedUpdatedAt",
            "suppressedBy",
            "archiveSource",
        ],
    }


def _occurrence() -> Occurrence:
    sock = s.sock("198.51.100.7", 4444)
    events = [s.exec_(s.proc("/bin/bash", "bash", "-i", stdin=sock, stdout=sock, stderr=sock))]
    occs = Pipeline.default().detect(events, InMemoryState()).occurrences
    assert occs
    return occs[0]


def _store(aws: Aws, n: int) -> list[dict[str, Any]]:
    """n findings on two instances, written as ingest writes them (the document, the aggregate)."""
    occ = _occurrence()
    ddb = aws.client("dynamodb")
    items = []
    for k in range(n):
        item = new_item(occ, now_iso(), 2_000_000_000)
        item["id"] = {"S": f"{k:032x}"}
        item["instanceId"] = {"S": "i-0aaaaaaaaaaaaaaa1" if k % 3 else "i-0bbbbbbbbbbbbbbb2"}
        doc = json.loads(raw_document_text(item["finding"]))
        doc["id"] = item["id"]["S"]
        doc["resource"]["instanceDetails"]["instanceId"] = item["instanceId"]["S"]
        item["finding"] = {"S": json.dumps(doc)}
        ddb.put_item(TableName=aws.findings_table, Item=item)
        items.append(item)
    return items


@pytest.mark.parametrize(("option", "value"), [("--instance", "i-0aaaaaaaaaaaaaaa1"), ("--type", None)])
def test_findings_list_by_an_index_prints_whole_findings(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, option: str, value: str | None
) -> None:
    # GIVEN 150 findings (more than one BatchGetItem's 100 keys) behind a keys-only index
    items = _store(aws, 150)
    monkeypatch.setattr(
        main, "resolve", lambda *a: Target(REGION, None, {"FindingsTableName": aws.findings_table})
    )
    value = value or items[0]["type"]["S"]
    # WHEN listed by instance or by type
    res = CliRunner().invoke(app, ["findings", "list", option, value, "--json", "--limit", "1000"])
    assert res.exit_code == 0, res.output
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    # THEN every matching finding is there, whole (its document and its aggregate)
    want = {i["id"]["S"] for i in items if option == "--type" or i["instanceId"]["S"] == value}
    assert {d["id"] for d in docs} == want and len(want) in (100, 150)
    assert all(d["type"] == items[0]["type"]["S"] and d["service"]["count"] == 1 for d in docs)
    assert all(d["resource"]["instanceDetails"]["instanceId"] for d in docs)


def test_the_sweep_reads_whole_items_for_what_the_index_finds(aws: Aws) -> None:
    # GIVEN 120 findings updated after their last publication, and 10 already published
    items = _store(aws, 130)
    ddb = aws.client("dynamodb")
    for k, item in enumerate(items):
        published = item["updatedAt"]["S"] if k < 10 else "2000-01-01T00:00:00.000Z"
        ddb.update_item(
            TableName=aws.findings_table,
            Key={"id": item["id"]},
            UpdateExpression="SET lastPublishedAt = :p, publishedUpdatedAt = :p",
            ExpressionAttributeValues={":p": {"S": published}},
        )
    # WHEN the sweep looks for unpublished updates due now
    got = list(FindingsStore(aws.findings_table).unpublished_updates("2999-01-01T00:00:00.000Z"))
    # THEN it gets exactly the 120, each with the document it publishes
    assert sorted(g["id"] for g in got) == sorted(i["id"]["S"] for i in items[10:])
    assert all(json.loads(g["finding"])["type"] and g["count"] == 1 and g["status"] == "ACTIVE" for g in got)
