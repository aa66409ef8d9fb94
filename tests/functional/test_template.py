"""template.yaml: lint-clean, translatable offline, and saying what DESIGN.md says.

GIVEN the template users deploy with `sam deploy` (and the offline stack runs), THEN cfn-lint is
clean, samtranslator translates it without AWS, resources read in flow order, each function's
folder, logical id and Powertools service name are one spelling, and storage is encrypted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse(TEMPLATE.read_text()))


def _camel(folder: str) -> str:
    return "".join(part.capitalize() for part in folder.split("_"))


def test_cfn_lint_is_clean() -> None:
    from cfnlint.api import lint_all

    problems = [p for p in lint_all(TEMPLATE.read_text()) if p.rule.id[0] in "EW"]  # what `cfn-lint` fails on
    assert [str(p) for p in problems] == []


def test_samtranslator_translates_it_offline(template: dict[str, Any]) -> None:
    import copy

    import local.deploy as deploy

    tpl = copy.deepcopy(template)
    for res in tpl["Resources"].values():  # what `sam package` would do: local paths -> S3
        props = res.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = "s3://bucket/key.zip"
        if isinstance(props.get("DefinitionUri"), str):
            props["Definition"] = {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
            del props["DefinitionUri"]
    cfn = deploy.translate(tpl, {})
    types = {r["Type"] for r in cfn["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping", "AWS::Lambda::LayerVersion"} <= types


def test_sections_are_in_flow_order_with_the_shared_markers() -> None:
    text = TEMPLATE.read_text()
    order = [
        text.index(f"# === {name}") for name in ("INGEST", "DETECT", "STORE", "PUBLISH", "RESPOND", "OBSERVE")
    ]
    assert order == sorted(order)
    assert "# === RESPOND (statemachines) ===" in text
    assert "# === AGENT DEPLOYMENT ===" in text


def test_function_folder_logical_id_and_service_name_are_one_spelling(template: dict[str, Any]) -> None:
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert {"IngestFunction", "PublishFunction"} <= set(functions)
    for logical_id, res in functions.items():
        folder = Path(res["Properties"]["CodeUri"]).name
        assert _camel(folder) == logical_id, f"{logical_id} lives in functions/{folder}"
        assert (REPO / "functions" / folder / "app.py").is_file()
        env = res["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == logical_id


def test_handlers_name_their_trigger_reads_and_writes(template: dict[str, Any]) -> None:
    for res in template["Resources"].values():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        doc = (REPO / res["Properties"]["CodeUri"] / "app.py").read_text().split('"""')[1]
        for word in ("Trigger:", "Writes:"):
            assert word in doc, f"{res['Properties']['CodeUri']} docstring lacks {word!r}"


def test_the_bus_is_never_referenced_with_ref() -> None:
    # moto resolves Ref of an EventBus to an object and create_stack fails (toolchain.md §4)
    assert not re.search(r"!Ref\s+FindingsBus\b|\{\s*\"?Ref\"?\s*:\s*\"?FindingsBus", TEMPLATE.read_text())


def test_storage_and_streams_are_encrypted(template: dict[str, Any]) -> None:
    res = template["Resources"]
    for name, r in res.items():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::DynamoDB::Table":
            assert props["SSESpecification"]["SSEEnabled"] is True, name
            assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}, name
        if r["Type"] == "AWS::SQS::Queue":
            assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, name
        if r["Type"] == "AWS::Kinesis::Stream":
            assert props["StreamEncryption"]["EncryptionType"] == "KMS", name


def test_findings_table_has_the_indexes_and_stream_the_design_names(template: dict[str, Any]) -> None:
    props = template["Resources"]["FindingsTable"]["Properties"]
    indexes = {
        i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in props["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "ByResource": ["instanceId", "createdAt"],  # never changes: an update moves no entry
        "ByType": ["type", "createdAt"],
        "ByStatus": ["status", "createdAt"],
    }
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_ingest_mapping_reports_partial_failures_bisects_and_bounds_retries(template: dict[str, Any]) -> None:
    props = template["Resources"]["IngestFunction"]["Properties"]["Events"]["Telemetry"]["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == {"Ref": "IngestMaximumRetryAttempts"}
    assert template["Parameters"]["IngestMaximumRetryAttempts"]["MaxValue"] <= 10000
    assert props["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_publishing_frequency_is_a_parameter_like_guardduty(template: dict[str, Any]) -> None:
    param = template["Parameters"]["FindingPublishingFrequency"]
    assert param["AllowedValues"] == ["FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"]
    from vigil_aws.settings import PUBLISHING_FREQUENCY_S

    assert set(PUBLISHING_FREQUENCY_S) == set(param["AllowedValues"])
