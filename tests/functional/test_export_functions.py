"""ExportFunction and SecurityHubFunction in-process on moto, fed the way the template feeds them.

GIVEN the real PublishFunction publishing a stored finding to FindingsBus, and the template's
ExportRule / SecurityHubRule (their own event patterns) putting it on the sink's queue, WHEN the
sink's handler receives the queue's messages as Lambda's SQS mapping delivers them, THEN the
finding is in S3 as gzip JSON Lines under GuardDuty's layout (SSE-KMS with the export key) and in
Security Lake's layout as OCSF, and in (emulated) Security Hub as ASFF; a suppressed finding is
never published and so never exported; a message that is not a published finding is
dead-lettered with its reason while the good ones next to it go through; a sink failure is
reported for retry, never swallowed.
"""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

import pytest
from asff_shape import validate as validate_asff
from botocore.stub import Stubber
from guardduty_shape import validate as validate_finding
from handler_harness import EVENTS, REGION, Aws, context, load_handler, stream_record, template_resources
from ocsf_shape import validate as validate_ocsf

from vigil.pipeline import Pipeline
from vigil.state import InMemoryState
from vigil_aws import clients, parquet
from vigil_aws.findings_store import FindingsStore, document
from vigil_aws.securityhub import reflect_workflow, workflow_update

pytestmark = pytest.mark.integration  # moto

ACCOUNT = "123456789012"
BUCKET, LAKE = "vigil-export", "aws-security-data-lake-us-east-1-test"


def _store_reverse_shell(aws: Aws, *, suppressed: bool = False, account: str = ACCOUNT) -> str:
    pipeline = Pipeline.default(account_id=account, region=REGION, suppress=(lambda f: suppressed))
    data = (EVENTS / "agent" / "reverse_shell.ndjson.gz").read_bytes()
    occurrences = pipeline.process_record(data, InMemoryState()).occurrences
    [shell] = [o for o in occurrences if o.finding["type"] == "Execution:Runtime/ReverseShell"]
    FindingsStore(aws.findings_table).apply([shell], retention_days=90)
    return shell.id


def _queue_behind_rule(aws: Aws, rule: str) -> str:
    """The sink's queue, subscribed to the bus with the template's own event pattern."""
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName=rule.replace("Rule", "Queue"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = template_resources()[rule]["Properties"]["EventPattern"]
    if isinstance(pattern, dict):  # !Sub with the stack's account (SecurityHubRule: its own findings)
        pattern = pattern["Fn::Sub"].replace("${AWS::AccountId}", ACCOUNT)
    events.put_rule(Name=rule, EventBusName=aws.bus_name, EventPattern=pattern)
    events.put_targets(Rule=rule, EventBusName=aws.bus_name, Targets=[{"Id": "q", "Arn": arn}])
    return str(url)


def _sqs_event(aws: Aws, url: str) -> dict[str, Any]:
    """The queue's messages as Lambda's SQS event-source mapping hands them to the function."""
    sqs = aws.client("sqs")
    records = []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        records += [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "eventSource": "aws:sqs",
            }
            for m in msgs
        ]
    return {"Records": records}


def _publish(aws: Aws, publish: Any, fid: str) -> None:
    publish.handler({"Records": [stream_record("INSERT", aws.raw_item(fid))]}, context("PublishFunction"))


@pytest.fixture
def export_setup(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    s3, kms, sqs = aws.client("s3"), aws.client("kms"), aws.client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=LAKE)
    key = kms.create_key(Description="export")["KeyMetadata"]["Arn"]
    dlq = sqs.create_queue(QueueName="ExportDeadLetterQueue")["QueueUrl"]
    queue = _queue_behind_rule(aws, "ExportRule")
    fn = load_handler(
        "export_function",
        {
            "POWERTOOLS_SERVICE_NAME": "ExportFunction",
            "EXPORT_BUCKET_NAME": BUCKET,
            "EXPORT_PREFIX": "findings",
            "EXPORT_KMS_KEY_ARN": key,
            "SECURITY_LAKE_BUCKET_NAME": LAKE,
            "SECURITY_LAKE_SOURCE_NAME": "vigil",
            "DEAD_LETTER_QUEUE_URL": dlq,
            "AWS_REGION": REGION,
        },
        monkeypatch,
    )
    return {"fn": fn, "queue": queue, "dlq": dlq, "key": key}


def _objects(aws: Aws, bucket: str) -> dict[str, dict[str, Any]]:
    s3 = aws.client("s3")
    out = {}
    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        got = s3.get_object(Bucket=bucket, Key=o["Key"])
        body = got["Body"].read()
        if o["Key"].endswith(".parquet"):
            got["records"] = parquet.read(body)
        else:
            got["lines"] = gzip.decompress(body).decode().splitlines()
        out[o["Key"]] = got
    return out


def test_a_published_finding_lands_in_s3_in_guardduty_and_security_lake_layouts(
    aws: Aws, publish: Any, export_setup: dict[str, Any]
) -> None:
    # GIVEN a stored finding, published by the real PublishFunction
    fid = _store_reverse_shell(aws)
    _publish(aws, publish, fid)
    event = _sqs_event(aws, export_setup["queue"])
    assert len(event["Records"]) == 1
    # WHEN ExportFunction receives the queue's batch
    response = export_setup["fn"].handler(event, context("ExportFunction"))
    # THEN nothing is retried and one object per layout exists
    assert response == {"batchItemFailures": []}
    [(key, obj)] = _objects(aws, BUCKET).items()
    assert re.fullmatch(
        r"findings/AWSLogs/123456789012/GuardDuty/us-east-1/\d{4}/\d{2}/\d{2}/[0-9a-f]{32}\.jsonl\.gz", key
    )
    [line] = obj["lines"]
    finding = json.loads(line)
    assert finding["id"] == fid and validate_finding(finding) == []
    assert obj["ServerSideEncryption"] == "aws:kms" and obj["SSEKMSKeyId"] == export_setup["key"]
    day = finding["updatedAt"][:10].split("-")
    assert key.split("/")[-4:-1] == day
    [(lake_key, lake_obj)] = _objects(aws, LAKE).items()
    assert lake_key.startswith(f"ext/vigil/region=us-east-1/accountId=123456789012/eventDay={''.join(day)}/")
    assert lake_key.endswith(".parquet") and lake_obj["ContentType"] == "application/vnd.apache.parquet"
    [ocsf] = lake_obj["records"]
    assert validate_ocsf(ocsf) == [] and ocsf["finding_info"]["uid"] == finding["arn"]


def test_a_retried_batch_overwrites_its_object_instead_of_adding_a_copy(
    aws: Aws, publish: Any, export_setup: dict[str, Any]
) -> None:
    fid = _store_reverse_shell(aws)
    _publish(aws, publish, fid)
    event = _sqs_event(aws, export_setup["queue"])
    export_setup["fn"].handler(event, context("ExportFunction"))
    export_setup["fn"].handler(event, context("ExportFunction"))  # SQS redelivery
    assert len(_objects(aws, BUCKET)) == 1 and len(_objects(aws, LAKE)) == 1


def test_a_suppressed_finding_is_never_published_so_never_exported(
    aws: Aws, publish: Any, export_setup: dict[str, Any]
) -> None:
    fid = _store_reverse_shell(aws, suppressed=True)
    _publish(aws, publish, fid)
    assert _sqs_event(aws, export_setup["queue"]) == {"Records": []}
    assert _objects(aws, BUCKET) == {}


def test_a_bad_message_is_dead_lettered_with_its_reason_and_its_neighbours_still_go(
    aws: Aws, publish: Any, export_setup: dict[str, Any]
) -> None:
    fid = _store_reverse_shell(aws)
    _publish(aws, publish, fid)
    event = _sqs_event(aws, export_setup["queue"])
    forged = json.loads(event["Records"][0]["body"])
    del forged["detail"]["updatedAt"]
    event["Records"] += [
        {"messageId": "junk", "body": "\x00not json"},
        {"messageId": "forged", "body": json.dumps(forged)},
        {
            "messageId": "other",
            "body": json.dumps({"source": "aws.guardduty", "detail-type": "GuardDuty Finding"}),
        },
    ]
    response = export_setup["fn"].handler(event, context("ExportFunction"))
    assert response == {"batchItemFailures": []}
    assert len(_objects(aws, BUCKET)) == 1
    letters = {m["messageId"]: m["reason"] for m in aws.drain(export_setup["dlq"])}
    assert set(letters) == {"junk", "forged", "other"}
    assert (
        "not JSON" in letters["junk"]
        and "updatedAt" in letters["forged"]
        and "not a 'vigil'" in letters["other"]
    )


def test_an_s3_failure_is_reported_for_retry_not_swallowed(
    aws: Aws, publish: Any, export_setup: dict[str, Any]
) -> None:
    fid = _store_reverse_shell(aws)
    _publish(aws, publish, fid)
    event = _sqs_event(aws, export_setup["queue"])
    aws.client("s3").delete_bucket(Bucket=BUCKET)  # the export bucket is gone
    response = export_setup["fn"].handler(event, context("ExportFunction"))
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_a_published_finding_is_imported_into_security_hub_as_asff(
    aws: Aws, publish: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN Security Hub enabled, SecurityHubRule's queue, and a published finding
    sh = aws.client("securityhub")
    sh.enable_security_hub()
    dlq = aws.client("sqs").create_queue(QueueName="SecurityHubDeadLetterQueue")["QueueUrl"]
    queue = _queue_behind_rule(aws, "SecurityHubRule")
    fn = load_handler(
        "security_hub_function",
        {
            "POWERTOOLS_SERVICE_NAME": "SecurityHubFunction",
            "DEAD_LETTER_QUEUE_URL": dlq,
            "AWS_REGION": REGION,
        },
        monkeypatch,
    )
    fid = _store_reverse_shell(aws)
    _publish(aws, publish, fid)
    # WHEN SecurityHubFunction takes the batch
    response = fn.handler(_sqs_event(aws, queue), context("SecurityHubFunction"))
    # THEN the finding is in Security Hub, as ASFF, under this account's default product
    assert response == {"batchItemFailures": []}
    [doc] = sh.get_findings()["Findings"]
    assert doc["Id"].endswith(f"/finding/{fid}") and doc["ProductArn"].endswith(f"product/{ACCOUNT}/default")
    assert (
        doc["Types"] == ["TTPs/Execution/Execution:Runtime-ReverseShell"]
        and doc["Severity"]["Label"] == "HIGH"
    )
    assert validate_asff(doc) == []


def test_a_member_accounts_finding_never_goes_to_security_hub(aws: Aws, publish: Any) -> None:
    # GIVEN SecurityHubRule's queue and a published finding of a member account (multi-account):
    # with the default product Security Hub imports only the caller's own AwsAccountId
    queue = _queue_behind_rule(aws, "SecurityHubRule")
    own = _store_reverse_shell(aws)
    member = _store_reverse_shell(aws, account="111122223333")
    _publish(aws, publish, member)
    _publish(aws, publish, own)
    # THEN only the administrator's own finding is queued for import
    queued = [json.loads(r["body"])["detail"] for r in _sqs_event(aws, queue)["Records"]]
    assert [d["id"] for d in queued] == [own]


def test_security_hub_rejections_are_reported_per_finding(
    aws: Aws, publish: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two findings, one of which Security Hub refuses (an ASFF without a resource)
    from vigil_aws import securityhub

    aws.client("securityhub").enable_security_hub()
    fid = _store_reverse_shell(aws)
    good = document(aws.findings()[fid])
    bad = dict(good, id="b" * 32, arn=good["arn"].replace(fid, "b" * 32))
    real = securityhub.to_asff
    monkeypatch.setattr(
        securityhub, "to_asff", lambda f: dict(real(f), Resources=[]) if f is bad else real(f)
    )
    # WHEN both are imported in one batch
    failed = securityhub.import_findings([good, bad])
    # THEN only the refused one is reported, with Security Hub's error code
    assert list(failed) == ["b" * 32] and failed["b" * 32].startswith("InvalidInput")
    assert len(aws.client("securityhub").get_findings()["Findings"]) == 1


def test_archive_unarchive_and_feedback_are_valid_batch_update_findings_calls(aws: Aws) -> None:
    # moto has no BatchUpdateFindings: botocore's Stubber checks the request against the model
    arn = f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/vigil/finding/{'a' * 32}"
    client = clients.client("securityhub")
    with Stubber(client) as stub:
        for archived, feedback in ((True, "NOT_USEFUL"), (False, None)):
            expected = workflow_update(arn, archived=archived, feedback=feedback, comment="ok <!channel>\x00")
            stub.add_response(
                "batch_update_findings",
                {"ProcessedFindings": expected["FindingIdentifiers"], "UnprocessedFindings": []},
                expected,
            )
            reflect_workflow(arn, archived, feedback, comment="ok <!channel>\x00")
        stub.assert_no_pending_responses()
    archived_req = workflow_update(arn, archived=True, feedback="NOT_USEFUL")
    assert (
        archived_req["Workflow"] == {"Status": "RESOLVED"}
        and archived_req["VerificationState"] == "FALSE_POSITIVE"
    )
    assert workflow_update(arn, archived=False)["Workflow"] == {"Status": "NEW"}
    assert archived_req["FindingIdentifiers"] == [
        {"Id": arn, "ProductArn": f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"}
    ]
    with pytest.raises(ValueError):
        workflow_update(arn, archived=True, feedback="MAYBE")
    with pytest.raises(ValueError):
        workflow_update("not-an-arn", archived=True)
