"""The engine's program prefilter (``Detection.programs`` / ``program_prefixes``, rule in ``Detection.offered``).

A prefiltered detection is only offered events whose acting program it accepts; the prefilter must
never hide a match: with prefilters honoured, the engine finds exactly the (finding type, event)
pairs it finds when every detection is offered every event of its kinds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from vigil import events as ev
from vigil import sample as s
from vigil.detection import Context, Detection, Meta, program_name
from vigil.engine import Engine
from vigil.intel import Intel
from vigil.intel.builtin import builtin_intel
from vigil.normalize.agent import normalize_batch
from vigil.registry import all_detections
from vigil.state import InMemoryState

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from workload import generate

DETECTIONS = all_detections()


def _meta(t: str) -> Meta:
    return Meta(
        type=t, severity=5.0, title="t", description="d", mitre=("T1059",), runbook="r", false_positives=()
    )


class Counting(Detection):
    """Fires on every event it is offered, and counts them by program name."""

    meta = _meta("Execution:Runtime/Counting")
    kinds = frozenset({"process_exec"})
    programs: ClassVar[frozenset[str] | None] = frozenset({"bash", "python", "php"})
    seen: list[str]

    def __init__(self) -> None:
        self.seen = []

    def match(self, event: Any, ctx: Context) -> bool:
        self.seen.append(program_name(event))
        return True


class CountingPrefix(Counting):
    meta = _meta("Execution:Runtime/CountingPrefix")
    programs = None
    program_prefixes = ("python",)


class Unfiltered(Counting):
    meta = _meta("Execution:Runtime/Unfiltered")
    programs = None


class PrefilteredBoom(Detection):
    meta = _meta("Execution:Runtime/PrefilteredBoom")
    kinds = frozenset({"process_exec"})
    programs = frozenset({"bash"})

    def match(self, event: Any, ctx: Context) -> bool:
        raise RuntimeError("bad rule")


class BrokenDeclaration(Counting):
    """A prefilter that cannot be evaluated: the engine must offer every event rather than hide one."""

    meta = _meta("Execution:Runtime/BrokenDeclaration")
    programs = frozenset({"bash"})

    @classmethod
    def offered(cls, program: str) -> bool:
        raise TypeError("broken prefilter")


def _exec(exe: str, *args: str) -> ev.ProcessActivity:
    return s.exec_(s.proc(exe, *args))


def _run(engine: Engine, events: list[Any]) -> list[tuple[str, int]]:
    res = engine.run(events, InMemoryState())
    index = {id(e): i for i, e in enumerate(events)}
    return [(m.detection.meta.type, index[id(m.event)]) for m in res.matches]


# --- (a) a prefiltered detection is not called for other programs ------------------------------


def test_a_prefiltered_detection_is_only_offered_its_programs() -> None:
    counting, unfiltered = Counting(), Unfiltered()
    engine = Engine([counting, unfiltered])
    names = ["curl", "bash", "git", "ls", "python3", "node", "bash", "sh", "php-fpm"]
    events = [_exec(f"/usr/bin/{n}") for n in names]
    matches = _run(engine, events)
    assert counting.seen == ["bash", "python3", "bash"]
    assert unfiltered.seen == names  # no prefilter: offered every event of its kinds
    assert ("Execution:Runtime/Counting", 0) not in matches
    assert engine.by_kind["process_exec"] == (counting, unfiltered)  # the kind index is unchanged


def test_events_of_other_kinds_and_without_a_process() -> None:
    class DnsCounting(Counting):
        meta = _meta("Execution:Runtime/DnsCounting")
        kinds = frozenset({"dns_query"})
        programs = frozenset({"curl"})

    d = DnsCounting()
    engine = Engine([d])
    events: list[Any] = [
        s.dns("example.com"),  # no process: program '' is never offered to a prefiltered rule
        s.dns("example.com", process=s.proc("/usr/bin/curl")),
        _exec("/usr/bin/curl"),  # not a kind it consumes
    ]
    assert _run(engine, events) == [("Execution:Runtime/DnsCounting", 1)]
    assert program_name(events[0]) == ""


def test_comm_is_the_name_when_the_exe_name_is_unknown() -> None:
    counting = Counting()
    p = s.proc("/usr/bin/bash")
    p = msgspec.structs.replace(p, file=ev.File(path=""), name="bash")
    _run(Engine([counting]), [s.exec_(p)])
    assert counting.seen == ["bash"]


# --- (b) the name rule: versions stripped, case folded, prefixes ---------------------------------


@pytest.mark.parametrize(
    ("program", "offered"),
    [
        ("bash", True),
        ("python3.11", True),  # trailing version characters stripped -> python
        ("python3", True),
        ("php8.2", True),
        ("bash5.2", True),
        ("BASH", True),  # compared lower-case
        ("Python3.11", True),
        ("pythonw", False),  # not a version suffix
        ("python3-dbg", False),
        ("php-fpm", False),
        ("3.11", False),
        ("", False),
        ("curl", False),
    ],
)
def test_version_stripping_rule(program: str, offered: bool) -> None:
    assert Counting.offered(program) is offered
    counting = Counting()
    engine = Engine([counting])
    assert (counting in engine.offered("process_exec", program)) is offered
    _run(engine, [_exec(f"/usr/bin/{program}" if program else "/")])
    assert len(counting.seen) == int(offered)


@pytest.mark.parametrize(
    ("program", "offered"),
    [("python", True), ("pythonw", True), ("python3-dbg", True), ("PYTHON3", True), ("ipython", False)],
)
def test_program_prefixes(program: str, offered: bool) -> None:
    assert CountingPrefix.offered(program) is offered


def test_no_prefilter_is_offered_everything() -> None:
    assert not Unfiltered.prefiltered() and Unfiltered.offered("anything")
    assert Counting.prefiltered() and CountingPrefix.prefiltered()


def test_route_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import vigil.engine as engine_mod

    monkeypatch.setattr(engine_mod, "_ROUTES_MAX", 8)
    counting = Counting()
    engine = Engine([counting])
    events = [_exec(f"/tmp/x{i}a") for i in range(50)] + [_exec("/bin/bash")]
    assert _run(engine, events) == [("Execution:Runtime/Counting", 50)]
    assert len(engine._routes["process_exec"]) <= 8


# --- (c) error isolation --------------------------------------------------------------------------


def test_error_isolation_holds_for_prefiltered_detections() -> None:
    counting = Counting()
    engine = Engine([PrefilteredBoom(), counting, *DETECTIONS])
    shell = s.exec_(
        s.proc("/bin/bash", "-i", stdin=s.sock("198.51.100.7", 4444), stdout=s.sock("198.51.100.7", 4444))
    )
    curl = _exec("/usr/bin/curl", "-s", "https://example.com/")
    res = engine.run([shell, curl], InMemoryState())
    types = {m.detection.meta.type for m in res.matches}
    assert "Execution:Runtime/ReverseShell" in types
    assert "Execution:Runtime/Counting" in types
    # the broken rule is reported once: for bash only, curl never reached it
    assert [(e.detection_type, e.event_kind) for e in res.errors] == [
        ("Execution:Runtime/PrefilteredBoom", "process_exec")
    ]


def test_a_broken_prefilter_offers_every_event() -> None:
    d = BrokenDeclaration()
    engine = Engine([d])
    _run(engine, [_exec("/usr/bin/curl"), _exec("/bin/bash")])
    assert d.seen == ["curl", "bash"]


# --- (d) equivalence: the prefilter never hides a match ---------------------------------------


def _reference(engine: Engine, events: list[Any]) -> list[tuple[str, int]]:
    """Every detection offered every event of its kinds (the engine without its program index)."""
    state = InMemoryState()
    ctx = Context(state=state, intel=engine.intel, settings=engine.settings)
    out = []
    for i, e in enumerate(events):
        for d in engine.by_kind.get(e.kind, ()):
            try:
                if d.match(e, ctx):
                    out.append((d.meta.type, i))
            except Exception:
                pass
    return out


def _assert_equivalent(events: list[Any], intel: Intel | None = None) -> int:
    engine = Engine(DETECTIONS, intel=intel if intel is not None else builtin_intel())
    routed = _run(engine, events)
    reference = _reference(engine, events)
    assert sorted(routed) == sorted(reference)
    assert len(routed) == len(set(routed))
    return len(routed)


def _declared_names() -> set[str]:
    names: set[str] = set()
    for d in DETECTIONS:
        names |= set(d.programs or ())
        names |= set(d.program_prefixes)
    return names


def _renamed(e: Any, name: str) -> Any:
    """The event with its acting program renamed (exe name, exe path, comm), everything else kept."""
    p = e.process
    head = p.file.path.rsplit("/", 1)[0] if "/" in p.file.path else "/usr/bin"
    f = msgspec.structs.replace(p.file, name=name, path=f"{head}/{name}")
    return msgspec.structs.replace(e, process=msgspec.structs.replace(p, file=f, name=name))


def _name_pool() -> list[str]:
    pool = {
        "",
        "curl",
        "ls",
        "x",
        "pythonw",
        "python3-dbg",
        "ipython",
        "kswapd0",
        "php-fpm",
        "node18",
        "3.11",
    }
    for n in _declared_names():
        pool |= {n, n.upper(), f"{n}3", f"{n}3.11", f"{n}-x", f"x{n}", n[:-1]}
    return sorted(pool)


def test_equivalence_on_the_benchmark_workload() -> None:
    events, rejected = normalize_batch(generate(4000))
    assert not rejected and len(events) == 4000
    assert _assert_equivalent(list(events)) > 0


EXAMPLES = [(d, ex) for d in DETECTIONS for ex in (*d.fires, *d.near_misses)]


@pytest.mark.parametrize(("det", "ex"), EXAMPLES, ids=[f"{d.meta.type}: {ex.name}" for d, ex in EXAMPLES])
def test_equivalence_on_every_example(det: Detection, ex: Any) -> None:
    _assert_equivalent(list(ex.events), ex.intel)


def test_equivalence_on_examples_renamed_to_every_near_name() -> None:
    # every example event with a process, its program renamed to every declared name and near
    # variants (versions, case, prefixes, suffixes): a rule that fires on a name its prefilter
    # rejects shows up as a reference match the engine does not find
    pool = _name_pool()
    total = 0
    for _, ex in EXAMPLES:
        events = [_renamed(e, n) for e in ex.events if getattr(e, "process", None) is not None for n in pool]
        total += len(events)
        _assert_equivalent(events, ex.intel)
    assert total > 5000


def test_declared_programs_are_lower_case_names() -> None:
    for d in DETECTIONS:
        for n in (*(d.programs or ()), *d.program_prefixes):
            assert n and n == n.lower() and "/" not in n, (d.meta.type, n)


# --- shared gates ------------------------------------------------------------------------------

GATE_CALLS: list[str] = []


def _gate(event: Any, ctx: Context) -> bool:
    GATE_CALLS.append(program_name(event))
    if program_name(event) == "boom":
        raise RuntimeError("bad gate")
    return program_name(event) in ("bash", "boom")


class GatedA(Counting):
    meta = _meta("Execution:Runtime/GatedA")
    programs = None
    gate = _gate


class GatedB(GatedA):
    meta = _meta("Execution:Runtime/GatedB")


class GatedBoom(GatedA):
    meta = _meta("Execution:Runtime/GatedBoom")

    def match(self, event: Any, ctx: Context) -> bool:
        raise RuntimeError("bad rule")


def test_a_shared_gate_runs_once_per_event_and_guards_its_members() -> None:
    GATE_CALLS.clear()
    a, b, boom, plain = GatedA(), GatedB(), GatedBoom(), Unfiltered()
    engine = Engine([a, plain, b, boom])
    res = engine.run([_exec("/usr/bin/curl"), _exec("/bin/bash"), _exec("/tmp/boom")], InMemoryState())
    assert GATE_CALLS == ["curl", "bash", "boom"]  # once per event, not once per member
    assert a.seen == b.seen == ["bash", "boom"]  # a gate that raises offers the event
    assert plain.seen == ["curl", "bash", "boom"]
    assert sorted((m.detection.meta.type, program_name(m.event)) for m in res.matches) == sorted(
        [("Execution:Runtime/Unfiltered", n) for n in ("curl", "bash", "boom")]
        + [(t, n) for t in ("Execution:Runtime/GatedA", "Execution:Runtime/GatedB") for n in ("bash", "boom")]
    )
    assert [e.detection_type for e in res.errors] == ["Execution:Runtime/GatedBoom"] * 2  # members isolated
    assert set(engine.offered("process_exec", "curl")) == {a, b, boom, plain}
    assert engine.by_kind["process_exec"] == (a, plain, b, boom)


def test_the_threat_list_families_share_one_gate_per_event() -> None:
    engine = Engine(DETECTIONS, intel=builtin_intel())
    for kind, n in (("net_connect", 1), ("dns_query", 2), ("process_exec", 1)):
        gates = [d for d, _ in engine._dispatch[kind] if type(d).__name__ == "_Gate"]
        assert len(gates) == n, kind
