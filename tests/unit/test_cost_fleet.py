"""What `make bench-cost`'s simulated fleet replays (benchmarks/cost.py): the benign corpus without
the agent tests' own simulated attacks, which were recorded with it. No timing here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import cost

from vigil import wire
from vigil.events import File, Process


def _exec(cmd: str, path: str = "/usr/bin/dash", lineage: tuple[Process, ...] = ()) -> wire.ProcessExec:
    p = Process(
        pid=7, name=path.rsplit("/", 1)[-1], cmd_line=cmd, file=File(path=path), lineage=list(lineage)
    )
    return wire.ProcessExec(process=p, time=1, seq=1)


def test_an_agent_tests_command_is_recognised_by_its_marker_on_it_or_an_ancestor() -> None:
    shell = _exec('/bin/sh -c read line; echo "$line" # vigil-marker-c96f29642b9d')
    child = _exec("sleep 1", "/usr/bin/sleep", lineage=(shell.process,))
    memfd = _exec("echo hi", "/memfd:vigil-memfd-test (deleted)")
    assert cost.agent_test_event(shell)
    assert cost.agent_test_event(child)
    assert cost.agent_test_event(memfd)


def test_ordinary_commands_are_not_agent_test_events() -> None:
    assert not cost.agent_test_event(_exec("/bin/sh -c make test", lineage=(_exec("bash").process,)))
    assert not cost.agent_test_event(_exec("grep vigil-marker README.md", "/usr/bin/grep"))
    # grep's argument is not a marker: markers are a test's own command, with their random suffix
    assert not cost.agent_test_event(wire.DnsQuery(hostname="vigil-marker-1.example.com", time=1, seq=1))


@pytest.fixture(scope="module")
def corpus() -> cost.Corpus:
    return cost.Corpus()


def test_the_fleet_replays_the_corpus_without_the_agent_tests_attacks(corpus: cost.Corpus) -> None:
    # the corpus's intended findings (docs/detection-quality.md): the tests' reverse shell, memfd exec
    tests = corpus.tests
    assert any("read line" in e.process.cmd_line for e in tests if isinstance(e, wire.ProcessExec))
    assert any(isinstance(e, wire.MemfdExec) for e in tests)
    assert not any(cost.agent_test_event(e) for e in corpus.all)
    for pool in corpus.by_kind.values():
        assert pool and not any(cost.agent_test_event(e) for e in pool)


def test_the_recorded_view_keeps_the_tests_events_in_their_places(corpus: cost.Corpus) -> None:
    rec = corpus.recorded()
    assert len(rec.all) == len(corpus.all) + len(corpus.tests)
    assert [e for e in rec.all if cost.agent_test_event(e)] == corpus.tests
    execs = sum(isinstance(e, wire.ProcessExec) for e in corpus.tests)
    assert len(rec.by_kind["process_exec"]) == len(corpus.by_kind["process_exec"]) + execs
    assert corpus.by_kind["process_exec"] is not rec.by_kind["process_exec"]  # the benign view is untouched
    assert not any(cost.agent_test_event(e) for e in corpus.by_kind["process_exec"])
