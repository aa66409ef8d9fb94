"""Fixtures for the agent tests on this machine's real kernel (marker ``agent``, root only).

The agent runs as a subprocess with ``--stdout``; a reader thread collects its events so a test
can wait for the one it caused. Other processes on the host produce events too: tests always
select theirs by a unique marker, pid or port. Every run uses its own audit key, so it never
touches the rules of another agent on the host, and it checks those rules are gone afterwards.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import RunningAgent, kernel_skip_reason, start_agent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = kernel_skip_reason()
    if reason is None:
        return
    for item in items:
        if "agent" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def agent_workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("vigil-agent")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def agent(agent_workdir: Path) -> Iterator[RunningAgent]:
    if kernel_skip_reason():
        pytest.skip(kernel_skip_reason() or "")
    key = f"vigiltest{uuid.uuid4().hex[:8]}"
    a = start_agent(agent_workdir, key)
    yield a
    a.stop()
    from vigil_agent import auditnl

    ctl = auditnl.AuditControl()
    try:
        left = [b for b in ctl.list_rules() if auditnl.rule_key(b) == key]
        for b in left:  # never leave rules behind, even when the agent failed
            ctl.del_rule(b)
    finally:
        ctl.close()
    assert not left, f"agent left {len(left)} audit rules behind"
