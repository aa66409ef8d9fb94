"""Instance details on the offline stack: the real template, moto's EC2, IngestFunction in process.

GIVEN the stack and an instance launched in its EC2 with tags, WHEN that instance's agent and one
EC2 does not know report attacks, THEN the first finding carries the instance's tags and AMI and
the second is stored all the same, with what the agent's identity said.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local import demo  # noqa: E402
from local.scenarios.instance_details import launch_tagged_instance, summary  # noqa: E402
from local.scenarios.response import with_instance_id  # noqa: E402
from local.stack import LocalStack, free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    s = LocalStack(
        port=free_port(),
        stack_name="vigil-details",
        parameters={"IngestMaximumRetryAttempts": "1"},
        state_file=tmp_path_factory.mktemp("stack") / "stack.json",
    )
    with s:
        yield s


def test_findings_on_the_offline_stack_carry_ec2s_details(stack: LocalStack) -> None:
    from vigil_aws.findings_store import document

    assert stack.info is not None and stack.pollers is not None
    out = stack.info.outputs
    session = boto3.Session(region_name=stack.region)
    pentest = launch_tagged_instance(session, {"Name": "scanner-1", "Role": "pentest"}, stack.endpoint_url)
    by_name = {b.name: b for b in demo.load_batches()}
    shell = by_name["reverse_shell.ndjson.gz"]
    crypto = by_name["crypto_dns.ndjson.gz"]  # its instance is not in moto's EC2
    # WHEN the tagged instance reports the reverse shell and the unknown one its crypto DNS
    demo.send(
        stack,
        out["TelemetryStreamName"],
        [demo.Sent(shell.name, pentest, with_instance_id(shell.data, pentest)), crypto],
    )
    assert stack.pollers.wait_idle(timeout=60)
    docs = {(f["instanceId"], f["type"]): document(f) for f in demo.findings(stack, out["FindingsTableName"])}
    # THEN the tagged instance's findings carry its tags, AMI and type
    mine = [d for (i, _), d in docs.items() if i == pentest]
    assert mine
    for d in mine:
        details = d["resource"]["instanceDetails"]
        assert {"key": "Role", "value": "pentest"} in details["tags"] and details["imageId"].startswith(
            "ami-"
        )
        assert "tags Name=scanner-1, Role=pentest" in summary(d)
    # AND the unknown instance's finding is stored with what its identity said
    theirs = [d for (i, _), d in docs.items() if i == crypto.instance]
    assert theirs and all("tags" not in d["resource"]["instanceDetails"] for d in theirs)
