"""The engine: indexing by kind, per-detection error isolation, stateful prefetch."""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil.detection import Context, Detection, Example, Meta
from vigil.engine import Engine
from vigil.registry import all_detections
from vigil.state import InMemoryState


def _meta(t: str) -> Meta:
    return Meta(
        type=t, severity=5.0, title="t", description="d", mitre=("T1059",), runbook="r", false_positives=()
    )


class Boom(Detection):
    meta = _meta("Execution:Runtime/Boom")
    kinds = frozenset({"process_exec"})
    fires: ClassVar = ()

    def match(self, event, ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("bad rule")


class FirstSeen(Detection):
    meta = _meta("Execution:Runtime/FirstSeen")
    kinds = frozenset({"process_exec"})
    stateful = True
    loaded: ClassVar[list[set[str]]] = []

    def state_keys(self, event):  # type: ignore[no-untyped-def]
        return (f"bin|{event.process.file.path}",)

    def match(self, event, ctx: Context):  # type: ignore[no-untyped-def]
        key = f"bin|{event.process.file.path}"
        if ctx.state.seen(key):
            return False
        ctx.state.remember(key, 86400)
        return True


class RecordingState(InMemoryState):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[set[str]] = []

    def load(self, keys):  # type: ignore[no-untyped-def]
        self.loads.append(set(keys))


def test_a_failing_detection_is_isolated_and_reported() -> None:
    # GIVEN a broken rule next to the real ones, WHEN a reverse shell arrives
    engine = Engine([Boom(), *all_detections()])
    shell = s.exec_(
        s.proc("/bin/bash", "-i", stdin=s.sock("198.51.100.7", 4444), stdout=s.sock("198.51.100.7", 4444))
    )
    result = engine.run([shell], InMemoryState())
    # THEN the real finding still fires and the failure is reported, not raised
    assert [m.detection.meta.type for m in result.matches] == ["Execution:Runtime/ReverseShell"]
    assert [(e.detection_type, e.event_kind) for e in result.errors] == [
        ("Execution:Runtime/Boom", "process_exec")
    ]
    assert "bad rule" in result.errors[0].error


def test_detections_only_see_the_kinds_they_consume() -> None:
    engine = Engine([Boom()])
    result = engine.run([s.dns("example.org")], InMemoryState())
    assert result.errors == [] and result.matches == []


def test_stateful_keys_are_prefetched_once_per_batch_and_written_once_per_key() -> None:
    engine = Engine([FirstSeen()])
    state = RecordingState()
    events = [s.exec_(s.proc("/usr/bin/a")), s.exec_(s.proc("/usr/bin/a")), s.exec_(s.proc("/usr/bin/b"))]
    result = engine.run(events, state)
    assert state.loads == [{"bin|/usr/bin/a", "bin|/usr/bin/b"}]
    assert [m.event.process.file.path for m in result.matches] == ["/usr/bin/a", "/usr/bin/b"]
    assert sorted(c.key for c in state.changes()) == ["bin|/usr/bin/a", "bin|/usr/bin/b"]


class ShellFirstSeen(FirstSeen):
    """A stateful rule with a program prefilter: only shells are offered to it."""

    meta = _meta("Execution:Runtime/ShellFirstSeen")
    programs = frozenset({"bash"})


class BrokenPrefilter(FirstSeen):
    meta = _meta("Execution:Runtime/BrokenPrefilter")

    def prefiltered(self) -> bool:
        return True

    def offered(self, program: str) -> bool:
        raise RuntimeError("bad prefilter")


def test_state_is_prefetched_only_for_the_stateful_rules_a_program_is_offered_to() -> None:
    # GIVEN a shell-only stateful rule WHEN a shell and two other programs run
    engine = Engine([ShellFirstSeen()])
    state = RecordingState()
    events = [s.exec_(s.proc("/usr/bin/ls")), s.exec_(s.proc("/bin/bash")), s.exec_(s.proc("/usr/bin/id"))]
    result = engine.run(events, state)
    # THEN only the shell's key is read, and the rule fires on the shell alone
    assert state.loads == [{"bin|/bin/bash"}]
    assert [m.event.process.file.path for m in result.matches] == ["/bin/bash"]


def test_a_broken_prefilter_still_prefetches_its_rules_state() -> None:
    # GIVEN a stateful rule whose prefilter raises, THEN it is offered every event, with its state
    engine = Engine([BrokenPrefilter()])
    state = RecordingState()
    result = engine.run([s.exec_(s.proc("/usr/bin/a"))], state)
    assert state.loads == [{"bin|/usr/bin/a"}]
    assert len(result.matches) == 1


def test_disabled_detections_do_not_run() -> None:
    engine = Engine(all_detections(), disabled=["Execution:Runtime/ReverseShell"])
    shell = s.exec_(
        s.proc("/bin/bash", "-i", stdin=s.sock("198.51.100.7", 4444), stdout=s.sock("198.51.100.7", 4444))
    )
    assert engine.run([shell], InMemoryState()).matches == []


_ = Example  # imported for readers: examples are what the shared test runs
