"""Multi-account on the offline stack: the real template.yaml deployed as an administrator with
``MemberAccountIds``, three account ids (administrator, member, stranger), Lambda code in this
process.

GIVEN the administrator stack with MemberAccountIds=111122223333, WHEN an instance of the member
account and an instance of a stranger account each send the recorded reverse-shell batch, both
with a valid signed identity (the test authority signs for any account, as AWS does), THEN the
member's finding reaches the administrator's bus and table under the member's account and
`vigil findings list --account` shows exactly it, while the stranger's record is one dead letter
with its reason and leaves no finding.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local import demo  # noqa: E402
from local.scenarios import multiaccount as ma  # noqa: E402
from local.stack import LocalStack, free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("stack") / "stack.json"
    s = LocalStack(
        port=free_port(), stack_name="vigil-admin", parameters=dict(ma.PARAMETERS), state_file=state
    )
    with s:
        yield s


@pytest.fixture(scope="module")
def traffic(stack: LocalStack) -> tuple[dict[str, Any], list[str]]:
    """The member's and the stranger's recorded batches, sent once for the module's tests (each test
    asks for it, so one selected alone still has the traffic it reads)."""
    assert stack.info is not None
    tap = demo.tap_bus(stack, stack.info.outputs["FindingsBusName"])
    said: list[str] = []
    return ma.run_multiaccount_demo(stack, tap, say=said.append, out=said.append), said


def test_a_member_finding_reaches_the_administrator_and_a_stranger_is_refused(
    stack: LocalStack, traffic: tuple[dict[str, Any], list[str]]
) -> None:
    assert stack.info is not None
    out = stack.info.outputs
    assert "TelemetryKeyArn" in out  # multi-account: the stream is on the stack's own key
    result, said = traffic
    assert result["checks"] == dict.fromkeys(result["checks"], True), "\n".join(said)
    (finding,) = [f for f in result["member_findings"] if f["type"] == ma.REVERSE_SHELL]
    assert finding["accountId"] == ma.MEMBER and f":{ma.MEMBER}:detector/" in finding["arn"]
    assert finding["resource"]["instanceDetails"]["instanceId"] == ma.MEMBER_INSTANCE
    assert [d["id"] for d in result["listed"]] == [f["id"] for f in result["member_findings"]]
    (letter,) = result["letters"]
    assert letter["line"] == 0 and "MemberAccountIds" in letter["reason"]
    # the administrator's own account is unaffected by the member list
    own = ma.vigil_cli(stack, "findings", "list", "--account", stack.info.account_id, "--json")
    assert own.returncode == 0 and ma.MEMBER not in own.stdout


def test_coverage_and_usage_list_the_member_instance_under_its_account(
    stack: LocalStack, traffic: tuple[dict[str, Any], list[str]]
) -> None:
    # the member's heartbeat (in the recorded batch) has been ingested
    assert stack.info is not None
    import json

    cov = ma.vigil_cli(stack, "coverage", "list", "--refresh", "--json", "--account", ma.MEMBER)
    assert cov.returncode == 0, cov.stderr
    rows = [json.loads(line) for line in cov.stdout.splitlines() if line.startswith("{")]
    # the administrator cannot DescribeInstances in the member: the instance is known by its heartbeats
    assert [(r["resourceDetails"]["ec2InstanceDetails"]["instanceId"], r["accountId"]) for r in rows] == [
        (ma.MEMBER_INSTANCE, ma.MEMBER)
    ]
    admin_rows = ma.vigil_cli(
        stack, "coverage", "list", "--refresh", "--json", "--account", stack.info.account_id
    )
    assert ma.MEMBER_INSTANCE not in admin_rows.stdout
    usage = ma.vigil_cli(stack, "usage", "--account", ma.MEMBER)
    assert usage.returncode == 0 and ma.MEMBER_INSTANCE in usage.stdout
    other = ma.vigil_cli(stack, "usage", "--account", ma.STRANGER)
    assert other.returncode == 0 and ma.MEMBER_INSTANCE not in other.stdout
