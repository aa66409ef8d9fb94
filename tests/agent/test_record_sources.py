"""Live: a namespace scenario captured from this kernel raises its EC2 type (marker ``agent``, root).

GIVEN the namespace lab (local/scenarios/netns.py), WHEN the port sweep runs again and its packets
are captured into fresh flow-log records, THEN replaying them raises Impact:EC2/PortSweep for the
sweeping instance, and the lab is gone afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `local` (the namespace lab) lives at the repo root
    sys.path.insert(0, str(REPO))

from local.scenarios import netns  # noqa: E402
from vigil.pipeline import Pipeline  # noqa: E402
from vigil_cli import replay as _replay  # noqa: E402

pytestmark = pytest.mark.agent


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, AF_PACKET)"
    for tool in ("ip", "nmap", "ethtool"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_a_live_port_sweep_captured_from_the_kernel_raises_port_sweep(tmp_path: Path) -> None:
    (scenario,) = [s for s in netns.SCENARIOS if s.name == "portsweep"]
    netns.setup()
    try:
        got = netns.record(scenario, tmp_path, tmp_path)
    finally:
        netns.teardown()
    assert got["packets_dropped"] == 0 and got["flow_records"] >= 25
    pipeline = Pipeline.default(account_id="123456789012", region="us-east-1")
    errors: list[str] = []
    for name, instance in (
        ("flowlogs_v2", netns.HOSTS["red"].eni),
        ("flowlogs_v5", netns.HOSTS["red"].instance),
    ):
        stream = _replay.open_input(str(tmp_path / got["files"][name]))
        stats = _replay.replay_source(stream, pipeline, "flowlogs", on_error=errors.append)
        found = {
            (o.finding["type"], o.finding["resource"]["instanceDetails"]["instanceId"])
            for o in stats.findings.values()
        }
        assert found == {("Impact:EC2/PortSweep", instance)}, name
    assert errors == []
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert netns.PREFIX + "-" not in left
