"""Wire v2 (issue 14): a record's process table. v1 and v2 records decode to the same events; a
bad table entry or a dangling ref is a line error with its reason, never a crash; the table is
bounded."""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil import bounds, wire
from vigil.normalize.agent import normalize_batch

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_764_000_000 * 10**9
HOST = wire.Host(instance_id="i-0abc123456789def0", account_id="123456789012", region="us-east-1")
SSHD = wire.Process(pid=800, uid="u800", name="sshd", cmd_line="sshd -D")
BASH = wire.Process(pid=900, uid="u900", name="bash", ppid=800, parent_uid="u800", lineage=[SSHD])
CURL = wire.Process(pid=1000, uid="u1000", name="curl", args=["curl", "x"], ppid=900, lineage=[BASH, SSHD])


def _j(obj: object) -> bytes:
    return msgspec.json.encode(obj)


def _bare(p: wire.Process) -> bytes:
    return _j(msgspec.structs.replace(p, lineage=[]))


def _v2_lines() -> list[bytes]:
    return [
        b'{"kind":"proc","ref":0,"process":%s}' % _j(SSHD),
        b'{"kind":"proc","ref":1,"process":%s}' % _bare(BASH),
        b'{"kind":"proc","ref":2,"process":%s,"lineage":[1,0],"host":%s}' % (_bare(CURL), _j(HOST)),
        b'{"kind":"process_exec","process":2,"time":%d,"seq":1}' % (T0 + 1),
        b'{"kind":"net_connect","process":2,"remote_ip":"198.51.100.7","remote_port":443,"time":%d,"seq":2}'
        % (T0 + 2),
        b'{"kind":"ptrace","process":2,"request":"PTRACE_ATTACH","target":1,"time":%d,"seq":3}' % (T0 + 3),
    ]


def _v1_events() -> list[wire.WireEvent]:
    curl = msgspec.structs.replace(CURL, lineage=[msgspec.structs.replace(BASH, lineage=[]), SSHD])
    return [
        wire.ProcessExec(time=T0 + 1, seq=1, process=curl, host=HOST),
        wire.NetConnect(time=T0 + 2, seq=2, process=curl, remote_ip="198.51.100.7", remote_port=443),
        wire.Ptrace(
            time=T0 + 3,
            seq=3,
            process=curl,
            request="PTRACE_ATTACH",
            target=msgspec.structs.replace(BASH, lineage=[]),
        ),
    ]


def test_a_v2_record_decodes_to_the_events_its_v1_form_decodes_to() -> None:
    v2 = wire.decode_record(gzip.compress(b"\n".join(_v2_lines()) + b"\n"))
    v1 = wire.decode_record(gzip.compress(b"\n".join(_j(e) for e in _v1_events()) + b"\n"))
    assert v2.errors == [] and v1.errors == []
    assert v2.events == v1.events == _v1_events()
    assert v2.lines == 6 and len(v2.events) == 3
    # the table is decoded once: the events share one Process object
    assert v2.events[0].process is v2.events[1].process  # type: ignore[union-attr]
    events, rejected = normalize_batch(v2.events)
    assert rejected == [] and [e.process.lineage[0].name for e in events] == ["bash"] * 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"kind":"net_connect","process":7,"time":%d,"seq":9}' % (T0 + 9), "process ref 7 is not defined"),
        (
            b'{"kind":"ptrace","process":2,"target":7,"request":"x","time":%d,"seq":9}' % (T0 + 9),
            "target ref 7",
        ),
        (b'{"kind":"proc","ref":1,"process":{"pid":1}}', "process ref 1 is defined twice"),
        (
            b'{"kind":"proc","ref":5,"process":{"pid":1},"lineage":[9]}',
            "ancestor ref 9 of process ref 5 is not defined",
        ),
        (
            b'{"kind":"proc","ref":5,"process":{"pid":1},"lineage":[2]}',
            "ancestor ref 2 of process ref 5 has a lineage",
        ),
        (
            b'{"kind":"proc","ref":5,"process":{"pid":1,"lineage":[{"pid":2}]},"lineage":[0]}',
            "both inline and by ref",
        ),
        (b'{"kind":"proc","ref":-1,"process":{"pid":1}}', "Expected `int` >= 0 - at `$.ref`"),
        (b'{"kind":"proc","ref":2147483648,"process":{"pid":1}}', "at `$.ref`"),
        (b'{"kind":"net_connect","process":-3,"time":%d,"seq":9}' % (T0 + 9), "$.process"),
        (b'{"kind":"proc","ref":6,"process":{"pid":1},"lineage":%s}' % _j(list(range(17))), "$.lineage"),
    ],
)
def test_a_bad_table_entry_or_a_dangling_ref_is_a_line_error_and_the_rest_decodes(
    line: bytes, reason: str
) -> None:
    lines = _v2_lines()
    lines.insert(4, line)  # after the table and the first event
    d = wire.decode_record(gzip.compress(b"\n".join(lines)))
    assert [(e.line, reason in e.reason) for e in d.errors] == [(5, True)], d.errors
    assert d.events == _v1_events() and d.bad_lines == 1


def test_events_naming_a_bad_entry_are_line_errors_too() -> None:
    lines = [
        b'{"kind":"proc","ref":0,"process":{"pid":"not a pid"}}',
        _j(wire.Heartbeat(time=T0, seq=1, host=HOST)),
    ]
    lines += [b'{"kind":"process_exit","process":0,"time":%d,"seq":%d}' % (T0 + i, i) for i in (2, 3)]
    d = wire.decode_record(b"\n".join(lines))
    assert [e.line for e in d.errors] == [1, 3, 4] and [e.seq for e in d.events] == [1]
    assert "not defined before it" in d.errors[1].reason


def test_the_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "PROC_TABLE_MAX", 3)
    lines = [b'{"kind":"proc","ref":%d,"process":{"pid":%d}}' % (i, i + 1) for i in range(5)]
    lines.append(_j(wire.ProcessExit(time=T0, seq=1, host=HOST, process=SSHD)))
    d = wire.decode_record(b"\n".join(lines))
    assert [(e.line, "process table is full" in e.reason) for e in d.errors] == [(4, True), (5, True)]
    assert len(d.events) == 1


def test_a_ref_outside_a_record_is_an_error_not_an_int_process() -> None:
    with pytest.raises(msgspec.ValidationError, match="process table"):
        wire.decode_line(b'{"kind":"process_exit","process":1,"time":%d,"seq":1}' % T0)
    with pytest.raises(msgspec.ValidationError):
        wire.decode_line(b'{"kind":"proc","ref":1,"process":{"pid":1}}')


def test_the_recorded_v1_corpora_still_decode_whole() -> None:
    for path in sorted((ROOT / "events" / "agent").glob("*.ndjson.gz")):
        d = wire.decode_record(path.read_bytes(), max_raw=1 << 30)
        assert d.errors == [] and d.events and d.lines == len(d.events), path


_ref = st.integers(min_value=-2, max_value=6)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.builds(
                lambda r, lin, pid: {"kind": "proc", "ref": r, "process": {"pid": pid}, "lineage": lin},
                _ref,
                st.lists(_ref, max_size=3),
                st.integers(min_value=0, max_value=3),
            ),
            st.builds(
                lambda r, s: {"kind": "process_exit", "process": r, "time": T0, "seq": s},
                _ref,
                st.integers(1, 9),
            ),
            st.builds(
                lambda r, t: {
                    "kind": "ptrace",
                    "process": r,
                    "target": t,
                    "request": "x",
                    "time": T0,
                    "seq": 1,
                },
                _ref,
                _ref,
            ),
        ),
        max_size=12,
    )
)
def test_any_mix_of_table_entries_and_refs_never_raises(items: list[dict]) -> None:  # type: ignore[type-arg]
    lines = [_j(i) for i in items]
    d = wire.decode_record(b"\n".join([_j(wire.Heartbeat(time=T0, seq=1, host=HOST)), *lines]))
    assert len(d.events) + d.bad_lines + sum(1 for i in items if i["kind"] == "proc") >= len(items) + 1
    assert all(isinstance(getattr(e, "process", None), (wire.Process, type(None))) for e in d.events)
    assert all(isinstance(getattr(e, "target", None), (wire.Process, type(None))) for e in d.events)
    normalize_batch(d.events)


def test_what_a_records_refs_name_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ref costs a few bytes and names a whole process: a record may name at most EXPANDED_MAX
    of process (its strings and a constant per process and ancestor), so a small record cannot
    make the detections read a huge command line on every one of its events."""
    big = wire.Process(pid=7, name="x", cmd_line="a" * 10_000, lineage=[SSHD])
    weight = wire.process_weight(big) + wire.process_weight(SSHD)
    assert weight == 2 * bounds.PROC_WEIGHT_BASE + 10_000 + len(SSHD.cmd_line)
    monkeypatch.setattr(bounds, "EXPANDED_MAX", 5 * weight)
    lines = [
        b'{"kind":"proc","ref":0,"process":%s}' % _j(SSHD),
        b'{"kind":"proc","ref":1,"process":%s,"lineage":[0]}' % _bare(big),
        _j(wire.Heartbeat(time=T0, seq=1, host=HOST)),
    ]
    lines += [b'{"kind":"process_exit","process":1,"time":%d,"seq":%d}' % (T0 + i, i) for i in range(2, 10)]
    d = wire.decode_record(b"\n".join(lines))
    assert [e.seq for e in d.events] == [1, 2, 3, 4, 5, 6]  # five named it whole
    assert [e.line for e in d.errors] == [9, 10, 11] and "process blocks" in d.errors[0].reason
    # an inline block (v1) costs its own bytes, already bounded: not counted here
    v1 = [_j(wire.ProcessExit(time=T0 + i, seq=i, process=big, host=HOST)) for i in range(1, 10)]
    assert len(wire.decode_record(b"\n".join(v1)).events) == 9


def test_siblings_naming_one_lineage_each_get_it_and_each_pay_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The children of one parent resolve their lineage once per record; each still names it whole
    (its weight counts for every child) and a bad lineage after a good one is still an error."""
    kids = [wire.Process(pid=2000 + i, uid=f"k{i}", name="true", cmd_line="true " * 50) for i in range(4)]
    per_child = wire.process_weight(kids[0]) + wire.process_weight(BASH) + wire.process_weight(SSHD)
    monkeypatch.setattr(bounds, "EXPANDED_MAX", 3 * per_child)  # three children's worth
    lines = [
        b'{"kind":"proc","ref":0,"process":%s}' % _j(SSHD),
        b'{"kind":"proc","ref":1,"process":%s}' % _bare(BASH),
        _j(wire.Heartbeat(time=T0, seq=1, host=HOST)),
    ]
    for i, k in enumerate(kids):
        lines.append(b'{"kind":"proc","ref":%d,"process":%s,"lineage":[1,0]}' % (10 + i, _j(k)))
        lines.append(b'{"kind":"process_exec","process":%d,"time":%d,"seq":%d}' % (10 + i, T0 + i, 2 + i))
    lines.append(b'{"kind":"proc","ref":20,"process":{"pid":1},"lineage":[10,0]}')  # a child as ancestor
    d = wire.decode_record(b"\n".join(lines))
    execs = [e for e in d.events if isinstance(e, wire.ProcessExec)]
    assert [e.process.pid for e in execs] == [2000, 2001, 2002]  # the fourth exceeds the bound
    assert all([a.name for a in e.process.lineage] == ["bash", "sshd"] for e in execs)
    assert [e.line for e in d.errors] == [11, 12]
    assert "process blocks" in d.errors[0].reason and "has a lineage of its own" in d.errors[1].reason


# --- repeats: events the agent folded into one --------------------------------------------------
def _repeats(*entries: tuple[int, int, int]) -> bytes:
    return _j({"kind": "repeats", "of": [list(x) for x in entries]})


def _dns(seq: int) -> bytes:
    return b'{"kind":"dns_query","hostname":"example.com","time":%d,"seq":%d}' % (T0 + seq, seq)


def test_a_repeats_line_counts_its_events_on_the_ones_it_names() -> None:
    # GIVEN a record whose connect (seq 2) and query (seq 4) stand for 5 and 2 more of themselves
    lines = [*_v2_lines(), _dns(4), _repeats((2, 5, T0 + 90), (4, 2, T0 + 80))]
    d = wire.decode_record(gzip.compress(b"\n".join(lines)))
    # THEN they carry their repeats and the time of the last one, and nothing else changed
    assert d.errors == [] and [e.seq for e in d.events] == [1, 2, 3, 4]
    assert [(getattr(e, "repeats", None), getattr(e, "last_time", None)) for e in d.events] == [
        (None, None),
        (5, T0 + 90),
        (None, None),
        (2, T0 + 80),
    ]
    assert d.events[:3] == [
        _v1_events()[0],
        msgspec.structs.replace(_v1_events()[1], repeats=5, last_time=T0 + 90),
        _v1_events()[2],
    ]
    # and the normalized events say how many they stand for (OCSF count, end_time)
    events, rejected = normalize_batch(d.events)
    assert rejected == [] and [(getattr(e, "count", 1), getattr(e, "end_time", 0)) for e in events] == [
        (1, 0),
        (6, T0 + 90),
        (1, 0),
        (3, T0 + 80),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_repeats((9, 1, T0 + 9)), "seq 9 names no connect, accept or DNS query before it"),
        (_repeats((1, 1, T0 + 9)), "seq 1 names no connect"),  # an exec: never folded
        (_repeats((2, 1, T0 + 9), (2, 1, T0 + 9)), "seq 2 is folded twice"),
        (_repeats((2, 1, T0)), "is before it"),
        (_repeats((2, 0, T0 + 9)), "at `$.of[0][1]`"),
        (_repeats((2, bounds.REPEATS_MAX + 1, T0 + 9)), "at `$.of[0][1]`"),
        (_repeats((2, 1, 7)), "at `$.of[0][2]`"),
    ],
)
def test_a_bad_repeats_line_is_a_line_error_and_counts_nothing(line: bytes, reason: str) -> None:
    # GIVEN a good record whose repeats line is wrong
    lines = [*_v2_lines(), line]
    d = wire.decode_record(gzip.compress(b"\n".join(lines)))
    # THEN that line is the one error, with its reason, and every event decodes as if it were absent
    assert [(e.line, reason in e.reason) for e in d.errors] == [(7, True)], d.errors
    assert d.events == _v1_events()


def test_repeats_already_counted_cannot_be_counted_again() -> None:
    # GIVEN a connect that carries its repeats inline, and a repeats line naming it
    lines = _v2_lines()
    lines[4] = lines[4].replace(b'"seq":2', b'"seq":2,"repeats":3,"last_time":%d' % (T0 + 5))
    d = wire.decode_record(gzip.compress(b"\n".join([*lines, _repeats((2, 1, T0 + 9))])))
    # THEN the line is refused and the inline count stands
    assert [(e.line, "folded twice" in e.reason) for e in d.errors] == [(7, True)]
    assert (d.events[1].repeats, d.events[1].last_time) == (3, T0 + 5)  # type: ignore[union-attr]
