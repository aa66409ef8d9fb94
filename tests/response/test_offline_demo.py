"""The demo's response path end to end on the offline stack: the real template.yaml deployed to
moto (ResponseDryRun=false), the recorded reverse-shell batch sent to Kinesis for an instance
that exists, the finding published on FindingsBus, TriageRule starting Triage, isolation, then
release — exactly what `make demo` shows (local/scenarios/response.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local.scenarios.response import groups_of, launch_demo_instance, run_response_demo, with_instance_id  # noqa: E402
from local.stack import LocalStack, free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    s = LocalStack(
        port=free_port(),
        stack_name="vigil-response",
        parameters={"ResponseDryRun": "false"},
        state_file=tmp_path_factory.mktemp("stack") / "stack.json",
    )
    with s:
        yield s


def test_reverse_shell_finding_is_isolated_then_released(stack: LocalStack) -> None:
    assert stack.info is not None
    session = boto3.Session(region_name=stack.region)
    # GIVEN the instance the telemetry comes from exists, with two interfaces and three groups
    iid = launch_demo_instance(session, stack.endpoint_url)
    before = groups_of(session, iid, stack.endpoint_url)
    # WHEN the agent's recorded reverse-shell batch arrives for it
    batch = with_instance_id((REPO / "events" / "agent" / "reverse_shell.ndjson.gz").read_bytes(), iid)
    batch = stack.identity.sign_batch(batch)  # as the agent on that instance signs its header
    stack.client("kinesis").put_records(
        StreamName=stack.info.outputs["TelemetryStreamName"], Records=[{"Data": batch, "PartitionKey": iid}]
    )
    lines: list[str] = []
    result = run_response_demo(
        session, stack.info.outputs, iid, before=before, endpoint_url=stack.endpoint_url, say=lines.append
    )
    # THEN triage isolated it automatically (stable detection, High severity) and release restored it
    assert (result["decision"], result["outcome"]) == ("auto-isolate", "isolated"), "\n".join(lines)
    assert result["isolated"] and result["restored"], "\n".join(lines)
    assert result["released_groups"] == before
