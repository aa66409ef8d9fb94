"""Handlers in-process against moto (fixtures re-exported by conftest.py; tests import helpers from
here by this unique module name, never ``from conftest``, which is ambiguous across test folders) (``mock_aws``): the tables, queues and bus are created from
template.yaml's own properties, and each handler module is imported fresh with the environment
the template gives it (settings are parsed at import, like a cold start).

Fixtures here are opt-in (no autouse): other functional tests in this folder are unaffected.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `local` (offline stack helpers) lives at the repo root
    sys.path.insert(0, str(REPO))

from local.identity import sign_batch, test_authority  # noqa: E402
from local.runtime import LambdaContext  # noqa: E402
from vigil_aws import clients  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"
EVENTS = REPO / "events"


def template_resources() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse((REPO / "template.yaml").read_text())["Resources"])


@dataclass
class Aws:
    """The emulated resources a handler test needs, named as the template's logical ids."""

    findings_table: str
    state_table: str
    coverage_table: str
    dead_letter_url: str
    bus_name: str
    bus_tap_url: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def drain(self, url: str) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        out: list[dict[str, Any]] = []
        while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            out += [json.loads(m["Body"]) for m in msgs]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
            )
        return out

    def findings(self) -> dict[str, dict[str, Any]]:
        from vigil_aws.findings_store import plain

        items = self.client("dynamodb").scan(TableName=self.findings_table, ConsistentRead=True)["Items"]
        return {i["id"]["S"]: plain(i) for i in items}

    def raw_item(self, finding_id: str) -> dict[str, Any]:
        out = self.client("dynamodb").get_item(TableName=self.findings_table, Key={"id": {"S": finding_id}})
        return dict(out["Item"])


def _create_table(ddb: Any, name: str, props: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
    }
    if "GlobalSecondaryIndexes" in props:
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if "StreamSpecification" in props:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    ddb.create_table(**kwargs)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    clients.reset()
    with mock_aws():
        res = template_resources()
        ddb = boto3.client("dynamodb", region_name=REGION)
        for logical in ("FindingsTable", "StateTable", "CoverageTable"):
            _create_table(ddb, logical, res[logical]["Properties"])
        sqs = boto3.client("sqs", region_name=REGION)
        dlq_props = res["IngestDeadLetterQueue"]["Properties"]
        dlq = sqs.create_queue(
            QueueName="IngestDeadLetterQueue.fifo" if dlq_props.get("FifoQueue") else "IngestDeadLetterQueue",
            Attributes={
                k: str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in dlq_props.items()
                if k != "QueueName"
            },
        )["QueueUrl"]
        tap = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
        tap_arn = sqs.get_queue_attributes(QueueUrl=tap, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name="vigil-findings")
        events.put_rule(
            Name="tap", EventBusName="vigil-findings", EventPattern=json.dumps({"source": ["vigil"]})
        )
        events.put_targets(Rule="tap", EventBusName="vigil-findings", Targets=[{"Id": "tap", "Arn": tap_arn}])
        yield Aws("FindingsTable", "StateTable", "CoverageTable", dlq, "vigil-findings", tap)
    clients.reset()


def load_handler(folder: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import functions/<folder>/app.py afresh (a cold start) with ``env`` applied."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    path = REPO / "functions" / folder / "app.py"
    spec = importlib.util.spec_from_file_location(f"_test_{folder}_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context(name: str) -> LambdaContext:
    return LambdaContext(
        function_name=name,
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        timeout_s=60,
    )


def ingest_env(aws: Aws) -> dict[str, str]:
    """IngestFunction's environment as the template sets it; it trusts the test identity
    authority (local.identity), which signs the batches these tests send."""
    return {
        "POWERTOOLS_SERVICE_NAME": "IngestFunction",
        "FINDINGS_TABLE_NAME": aws.findings_table,
        "STATE_TABLE_NAME": aws.state_table,
        "COVERAGE_TABLE_NAME": aws.coverage_table,
        "DEAD_LETTER_QUEUE_URL": aws.dead_letter_url,
        "FINDING_RETENTION_DAYS": "90",
        "VIGIL_ACCOUNT_ID": ACCOUNT,
        "AWS_REGION": REGION,
        "INSTANCE_IDENTITY_CERTIFICATES": test_authority().cert_pem.decode(),
    }


@pytest.fixture
def ingest(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler("ingest_function", ingest_env(aws), monkeypatch)


@pytest.fixture
def publish(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler(
        "publish_function",
        {
            "POWERTOOLS_SERVICE_NAME": "PublishFunction",
            "FINDINGS_TABLE_NAME": aws.findings_table,
            "FINDINGS_BUS_NAME": aws.bus_name,
            "FINDING_PUBLISHING_FREQUENCY": "FIFTEEN_MINUTES",
            "AWS_REGION": REGION,
        },
        monkeypatch,
    )


def kinesis_event(name: str, *, sign: bool = True) -> dict[str, Any]:
    """A recorded Kinesis event; each record's batch header signed by the test authority (as the
    agent on that instance would), unless ``sign`` is False."""
    event = dict(json.loads((EVENTS / "ingest_function" / name).read_text()))
    if sign:
        for r in event["Records"]:
            data = base64.b64decode(r["kinesis"]["data"])
            r["kinesis"]["data"] = base64.b64encode(sign_batch(data)).decode()
    return event


def kinesis_event_for(
    batches: list[tuple[str, bytes]], first_seq: int = 1, *, sign: bool = True
) -> dict[str, Any]:
    """A Kinesis event with the given (partition key, data) records and fresh sequence numbers;
    each batch header signed by the test authority for the instance it names, unless ``sign`` is
    False (``local.identity.sign_batch`` leaves what is not a batch unchanged)."""
    records = []
    for n, (key, data) in enumerate(batches, start=first_seq):
        if sign:
            data = sign_batch(data)
        seq = f"4965{n:052d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": key,
                    "sequenceNumber": seq,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1764000100.5,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{seq}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/ingest",
                "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/telemetry",
            }
        )
    return {"Records": records}


def stream_record(
    event_name: str, new: dict[str, Any] | None, old: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One findings-table stream record, as the DynamoDB event-source mapping delivers it."""
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": 1764000100,
        "Keys": {"id": (new or old or {})["id"]},
        "SequenceNumber": str(uuid.uuid4().int)[:21],
        "SizeBytes": 1024,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": dynamodb,
        "eventSourceARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/FindingsTable/stream/2026-01-01T00:00:00.000",
    }
