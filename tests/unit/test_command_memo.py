"""The command memo shared by the command-line rules (``vigil.detections._common.memo_by_command``).

A verdict is computed once per distinct command and rule, never shared between rules or between
commands that differ in any part of the key, and the memo's memory is bounded by commands and by
the characters of their keys (hostile command lines are long).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vigil import sample as s
from vigil.detections import _common


@pytest.fixture(autouse=True)
def _fresh_memo() -> Iterator[None]:
    _common._memo.clear()
    _common._memo_chars[0] = 0
    _common._slot[0] = _common._slot[1] = None
    yield
    _common._memo.clear()
    _common._memo_chars[0] = 0
    _common._slot[0] = _common._slot[1] = None


def _counting(tag: str, calls: list[tuple[str, str]]) -> Any:
    def verdict(event: Any) -> str:
        calls.append((tag, event.process.cmd_line))
        return f"{tag}:{event.process.cmd_line}"

    return _common.memo_by_command(verdict)


def test_each_rule_computes_a_command_once_and_keeps_its_own_verdict() -> None:
    calls: list[tuple[str, str]] = []
    a, b = _counting("a", calls), _counting("b", calls)
    first = s.exec_(s.proc("/usr/bin/curl", "-s", "http://example.test"))
    again = s.exec_(s.proc("/usr/bin/curl", "-s", "http://example.test"))  # same command, new event
    assert first is not again
    cmd = "curl -s http://example.test"
    assert [a(first), b(first), a(again), b(again)] == [f"a:{cmd}", f"b:{cmd}", f"a:{cmd}", f"b:{cmd}"]
    assert calls == [("a", cmd), ("b", cmd)]


def test_commands_that_differ_in_argv_split_or_program_never_share_a_verdict() -> None:
    calls: list[tuple[str, str]] = []
    a = _counting("a", calls)
    one = s.exec_(s.proc("/usr/bin/sh", "-c", "id"))
    split = s.exec_(s.proc("/usr/bin/sh", "-c id"))  # the same joined command line, split otherwise
    other = s.exec_(s.proc("/usr/bin/bash", "-c", "id"))
    for e in (one, split, other, one):
        a(e)
    assert len(calls) == 3


def test_the_memo_is_bounded_by_the_characters_of_its_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "_MEMO_CHARS", 10_000)
    calls: list[tuple[str, str]] = []
    a = _counting("a", calls)
    for i in range(200):  # ~1 KB each: 200 KB of commands through a 10 KB memo
        a(s.exec_(s.proc("/usr/bin/echo", f"{i:04d}" + "x" * 1000)))
        assert _common._memo_chars[0] <= 10_000
        assert (
            sum(len(k[0]) + len(k[1]) + sum(map(len, k[2])) + len(k[3]) + len(k[4]) for k in _common._memo)
            == _common._memo_chars[0]
        )
    assert len(_common._memo) < 10
    assert len(calls) == 200  # every command was new: each was computed, none was lost


def test_the_memo_is_bounded_by_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "_MEMO_MAX", 50)
    calls: list[tuple[str, str]] = []
    a = _counting("a", calls)
    for i in range(500):
        a(s.exec_(s.proc("/usr/bin/true", str(i))))
        assert len(_common._memo) <= 50
    a(s.exec_(s.proc("/usr/bin/true", "499")))  # the latest command is still remembered
    assert len(calls) == 500
