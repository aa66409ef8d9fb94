"""Fixtures for the agent tests on this machine's real kernel (marker ``agent``, root only).

The agent runs as a subprocess with ``--stdout``; a reader thread collects its events so a test
can wait for the one it caused. Other processes on the host produce events too: tests always
select theirs by a unique marker, pid or port. Every run uses its own audit key, so it never
touches the rules of another agent on the host, and it checks those rules are gone afterwards.
"""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session", params=["ebpf", "ebpf-python", "audit"])
def agent(request: pytest.FixtureRequest, agent_workdir: Path) -> Iterator[RunningAgent]:
    """The agent with its eBPF sensor (exec/exit/connect/accept from tracepoints, the rest from
    audit), its native fast path and native DNS reader; then the same with every eBPF record and
    DNS packet handled in Python; then with audit alone (the fallback where eBPF is unavailable;
    DNS read natively): every kernel test runs against all three. Without the compiled sensor the eBPF runs skip, saying why, unless
    VIGIL_REQUIRE_BPF=1 (CI) makes that a failure."""
    if kernel_skip_reason():
        pytest.skip(kernel_skip_reason() or "")
    mode = request.param
    key = f"vigiltest{uuid.uuid4().hex[:8]}"
    extra = {
        "ebpf": "",
        "ebpf-python": "[sensors]\nebpf_native = false\ndns_native = false\n",
        "audit": "[sensors]\nebpf = false\n",
    }
    a = start_agent(agent_workdir, key, extra=extra[mode])
    a.mode = "audit" if mode == "audit" else "ebpf"
    a.native = mode == "ebpf"
    if a.mode == "ebpf":
        hb = a.wait_for(lambda e: e["kind"] == "heartbeat", what="first heartbeat")
        missing = [
            s
            for s in ("ebpf", "ebpf_native" if a.native else "", "dns_native" if a.native else "")
            if s and s not in hb["sensors_active"]
        ]
        if missing:
            a.stop()
            why = "; ".join(f"{s}: {hb.get('sensors_unavailable', {}).get(s, '?')}" for s in missing)
            if os.environ.get("VIGIL_REQUIRE_BPF") == "1":
                pytest.fail(f"eBPF sensor unavailable: {why}")
            pytest.skip(f"eBPF sensor unavailable: {why}")
    yield a
    a.stop()
    assert a.bad_lines == [], f"the agent's NDJSON had {len(a.bad_lines)} cut lines: {a.bad_lines[:1]}"
    from vigil_agent import auditnl

    ctl = auditnl.AuditControl()
    try:
        left = [b for b in ctl.list_rules() if auditnl.rule_key(b) == key]
        for b in left:  # never leave rules behind, even when the agent failed
            ctl.del_rule(b)
    finally:
        ctl.close()
    assert not left, f"agent left {len(left)} audit rules behind"
