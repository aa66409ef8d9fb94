"""Suppression rules on the offline stack end to end: the real template.yaml on moto (FiltersTable
included), `vigil filters create` with GuardDuty's JSON against the stack's state file, agent
batches through Kinesis, the ingest and publish functions, the bus.

GIVEN the stack deployed once for this module, WHEN a rule is imported with the CLI and a matching
new finding arrives, THEN it is stored archived with the rule's name and never reaches the bus,
while a finding the rule does not match does; and the demo's scenario (a repeat false positive)
does what it prints.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local import demo  # noqa: E402
from local.scenarios import suppression  # noqa: E402
from local.stack import LocalStack, free_port  # noqa: E402
from vigil_aws.filters import CHECK_SECONDS  # noqa: E402
from vigil_cli.main import app  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("stack") / "stack.json"
    s = LocalStack(port=free_port(), stack_name="vigil-filters-test", state_file=state)
    with s:
        yield s


@pytest.fixture(scope="module")
def tap(stack: LocalStack) -> str:
    assert stack.info is not None
    return demo.tap_bus(stack, stack.info.outputs["FindingsBusName"])


def test_a_rule_imported_with_the_cli_archives_matching_new_findings(
    stack: LocalStack, tap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.state_file is not None and stack.info is not None
    # GIVEN an instance tagged Role=pentest and another one (untagged)
    instance, other = suppression.pentest_instance(stack), "i-0a1b2c3d4e5f60078"
    # AND the GuardDuty CreateFilter JSON (SuspiciousTool where tag Role = pentest)
    # imported with `vigil filters create` (no AWS keys needed)
    rule = dict(suppression.rule_json(), Name="scanner-host")
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(rule))
    monkeypatch.setenv("VIGIL_LOCAL_STATE", str(stack.state_file))
    res = CliRunner().invoke(app, ["filters", "create", str(path)])
    assert res.exit_code == 0, res.output
    listed = CliRunner().invoke(app, ["filters", "list", "--json"])
    assert "scanner-host" in listed.stdout
    time.sleep(CHECK_SECONDS + 0.5)
    demo.drain(stack, tap)
    # WHEN nmap runs on the rule's instance and on another one
    for inst, seq in ((instance, 5), (other, 6)):
        suppression._send(stack, suppression.nmap_batch(seq, inst), inst)
    archived = suppression._finding(stack, instance, 20, 1)
    active = suppression._finding(stack, other, 20, 1)
    assert stack.pollers is not None and stack.pollers.wait_idle(timeout=30)
    # THEN the matching one (enriched with its tags from EC2) is stored archived with the
    # rule's name, the other one is active
    assert archived is not None and active is not None
    from vigil_aws.findings_store import document

    tags = document(archived)["resource"]["instanceDetails"]["tags"]
    assert {"key": "Role", "value": "pentest"} in tags
    assert archived["status"] == "ARCHIVED" and archived["suppressedBy"] == "scanner-host"
    assert active["status"] == "ACTIVE"
    # AND only the other one reached the bus
    published = [e["detail"]["id"] for e in demo.drain(stack, tap) if e["detail-type"] == "Vigil Finding"]
    assert published == [active["id"]]
    # AND the archived finding is queryable, with the CLI's filter
    res = CliRunner().invoke(app, ["findings", "list", "--json", "--filter", "service.archived=true"])
    assert archived["id"] in res.stdout and active["id"] not in res.stdout
    # (the rule goes: the demo scenario below imports the same criteria under its own name)
    assert CliRunner().invoke(app, ["filters", "delete", "scanner-host"]).exit_code == 0
    time.sleep(CHECK_SECONDS + 0.5)


def test_the_demo_scenario_archives_a_repeat_false_positive(stack: LocalStack, tap: str) -> None:
    lines: list[str] = []
    result = suppression.run_suppression_demo(stack, tap, say=lines.append)
    assert result["ok"], (result, lines)
    assert result["repeat_status"] == "ARCHIVED" and result["repeat_published"] == 0
