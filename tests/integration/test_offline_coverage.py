"""Coverage on the offline stack: the real template's CoverageFunction, run by its schedule rule.

GIVEN the stack deployed on a free loopback port, WHEN two launched instances send a heartbeat
through Kinesis (one fresh, one an hour old) and the scheduled CoverageFunction runs, THEN the
fresh one is HEALTHY, the stale one UNHEALTHY (Agent disconnected) and its Unhealthy event reached
FindingsBus: what `make demo` shows (local.scenarios.coverage). And the schedules emulation finds
the template's rate() rules.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local.scenarios.coverage import run_coverage_demo  # noqa: E402
from local.schedules import period_s  # noqa: E402
from local.stack import LocalStack, free_port  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("stack") / "stack.json"
    s = LocalStack(port=free_port(), stack_name="vigil-cov", state_file=state)
    with s:
        yield s


def test_the_template_schedules_are_emulated(stack: LocalStack) -> None:
    names = sorted(
        stack.schedules._function(arn).function_name
        for s in stack.schedules.schedules
        for arn in s.function_arns
    )
    assert any("CoverageFunction" in n for n in names) and any("PublishSweepFunction" in n for n in names)
    assert {s.period_s for s in stack.schedules.schedules} == {300.0}
    assert (period_s("rate(1 day)"), period_s("rate(5 minutes)"), period_s("cron(0 * * * ? *)")) == (
        86400.0,
        300.0,
        None,
    )


def test_the_demo_shows_one_healthy_and_one_unhealthy_instance_with_its_event_on_the_bus(
    stack: LocalStack,
) -> None:
    buf = StringIO()
    ok = run_coverage_demo(stack, Console(file=buf, width=200))
    text = buf.getvalue()
    print(text)
    assert ok, text
    assert "HEALTHY" in text and "No Agent Reporting: Agent disconnected" in text
    assert "on the bus: Vigil Runtime Protection Unhealthy" in text
