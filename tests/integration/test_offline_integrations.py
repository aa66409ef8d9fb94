"""The integrations on the offline stack: the real template.yaml with exports, Security Hub and
Slack routing switched on by parameter, Lambda code in this process.

GIVEN the stack deployed with ExportFindingsToS3, SecurityHubImport and a loopback Slack URL,
WHEN the recorded reverse-shell batch goes into Kinesis, THEN the finding it raises is (through
the bus, the rules, the queues and the functions) an object in the export bucket and a finding in
(emulated) Security Hub, and NotifyFunction put its destination-safe notification on the bus.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local import demo  # noqa: E402
from local.stack import LocalStack, free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("stack") / "stack.json"
    s = LocalStack(
        port=free_port(),
        stack_name="vigil-integrations",
        parameters={
            "ExportFindingsToS3": "true",
            "SecurityHubImport": "true",
            "SlackWebhookUrl": "http://127.0.0.1:9/slack",  # never called: moto has no API destinations
            "SlackSeverityThreshold": "1",
        },
        state_file=state,
    )
    with s:
        yield s


def _wait(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    return check()


def test_a_finding_reaches_s3_security_hub_and_the_notification_bus(stack: LocalStack) -> None:
    assert stack.info is not None
    out = stack.info.outputs
    assert {"ExportBucketName", "ExportDeadLetterQueueUrl", "SecurityHubDeadLetterQueueUrl"} <= set(out)
    assert any("skipped SlackRule" in n for n in stack.info.notes)  # the stand-in's part (local/routing.py)
    stack.client("securityhub").enable_security_hub()
    tap = demo.tap_bus(stack, out["FindingsBusName"], leave_out=())
    demo.send(
        stack, out["TelemetryStreamName"], [b for b in demo.load_batches() if "reverse_shell" in b.name]
    )
    s3 = stack.client("s3")

    def exported() -> list[dict[str, Any]]:
        objs = s3.list_objects_v2(Bucket=out["ExportBucketName"]).get("Contents", [])
        return [o for o in objs if o["Key"].startswith("AWSLogs/123456789012/GuardDuty/us-east-1/")]

    objs = _wait(exported)
    assert objs, "no export object"
    lines = gzip.decompress(s3.get_object(Bucket=out["ExportBucketName"], Key=objs[0]["Key"])["Body"].read())
    finding = json.loads(lines.splitlines()[0])
    assert finding["schemaVersion"] == "2.0"
    hub = _wait(lambda: stack.client("securityhub").get_findings()["Findings"])
    assert finding["arn"] in {f["Id"] for f in hub}
    events = _wait(
        lambda: [e for e in demo.drain(stack, tap) if e["detail-type"] == "Vigil Finding Notification"]
    )
    assert events and "slack" in events[0]["detail"] and events[0]["detail"]["destinations"] == ["slack"]


def test_the_demo_helpers_show_s3_security_lake_and_security_hub(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from local.integrations import DEMO_PARAMETERS, prepare, show_exports

    s = LocalStack(
        port=free_port(),
        stack_name="vigil-demo-integrations",
        parameters=dict(DEMO_PARAMETERS),
        state_file=None,
    )
    with s:
        prepare(s)
        assert s.info is not None
        demo.send(s, s.info.outputs["TelemetryStreamName"], demo.load_batches())
        lines: list[str] = []

        def shown() -> dict[str, int] | None:
            lines.clear()
            counts = show_exports(s, lines.append)
            done = any(
                line.startswith("Security Hub: TTPs/Execution/Execution:Runtime-ReverseShell")
                for line in lines
            )
            return counts if all(counts.values()) and done else None

        assert _wait(shown), lines
        text = "\n".join(lines)
        assert "/AWSLogs/123456789012/GuardDuty/us-east-1/" in text and "/ext/vigil/region=us-east-1/" in text
        assert "Security Hub: TTPs/Execution/Execution:Runtime-ReverseShell  HIGH" in text
