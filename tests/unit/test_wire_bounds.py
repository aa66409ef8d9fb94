"""Bounded decoding (issue 13, item 1): a record costs bounded memory and bounded dead letters."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from vigil import bounds, wire
from vigil.normalize.agent import normalize_batch

T0 = 1_764_000_000 * 10**9
HOST = wire.Host(instance_id="i-0abc123456789def0", account_id="123456789012", region="us-east-1")
PROC = wire.Process(pid=10, name="bash", file=wire.File(path="/bin/bash", name="bash"))


def _good(seq: int, *, host: bool = False) -> bytes:
    return wire.encode_event(
        wire.ProcessExec(time=T0 + seq, seq=seq, host=HOST if host else None, process=PROC)
    )


def _zeros_bomb(inflated: int) -> bytes:
    """A gzip member of ``inflated`` zero bytes, built in chunks (never held inflated here)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [c.compress(chunk) for _ in range(inflated >> 20)]
    return b"".join(parts) + c.flush()


def _peak(fn) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_gzip_bomb_is_rejected_whole_with_a_reason_and_bounded_memory() -> None:
    # GIVEN a 64 KiB record that inflates to 64 MiB of zeros (8x the agent's raw bound)
    bomb = _zeros_bomb(64 << 20)
    assert len(bomb) < 100_000
    # WHEN it is decoded
    out: list[wire.Decoded] = []
    peak = _peak(lambda: out.append(wire.decode_record(bomb)))
    # THEN it is one record-level error, nothing was decoded, and memory stayed near the bound
    d = out[0]
    assert d.rejected_whole and d.events == [] and len(d.errors) == 1
    assert d.errors[0].line == 0 and "inflates past 8388608 bytes" in d.errors[0].reason
    assert peak < 2 * bounds.RAW_BATCH_BYTES + (1 << 20), peak


def test_a_batch_of_exactly_the_bound_decodes_and_one_byte_more_is_refused() -> None:
    # GIVEN a batch whose NDJSON is padded with blank lines to exactly max_raw bytes
    body = b"\n".join(_good(i, host=i == 1) for i in range(1, 4)) + b"\n"
    max_raw = 4096
    exact = body + b" " * (max_raw - len(body))
    # WHEN it is decoded with that bound, then one byte over
    ok = wire.decode_record(gzip.compress(exact), max_raw=max_raw)
    over = wire.decode_record(gzip.compress(exact + b" "), max_raw=max_raw)
    # THEN the first keeps its 3 events and the second is refused whole
    assert [e.seq for e in ok.events] == [1, 2, 3] and ok.errors == []
    assert over.rejected_whole and over.events == [] and "inflates past 4096 bytes" in over.errors[0].reason


def test_a_plain_batch_over_the_bound_is_refused_whole() -> None:
    d = wire.decode_record(_good(1, host=True) + b"\n" + b" " * 5000, max_raw=4096)
    assert d.rejected_whole and "exceeds 4096 bytes" in d.errors[0].reason


def test_concatenated_members_and_zero_padding_decode_as_gzip_decompress_does() -> None:
    # GIVEN two gzip members, the second followed by zero padding
    a, b_ = _good(1, host=True) + b"\n", _good(2) + b"\n"
    data = gzip.compress(a) + gzip.compress(b_) + b"\x00" * 16
    # WHEN it is inflated and decoded
    # THEN the result is what gzip.decompress gives, and both events come out
    assert wire.decompress(data) == gzip.decompress(data) == a + b_
    assert [e.seq for e in wire.decode_record(data).events] == [1, 2]


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"garbage!", "trailing garbage after gzip member 1"),
        (gzip.compress(b"x")[:-3], "end-of-stream marker"),  # a truncated second member
    ],
)
def test_what_follows_a_member_is_a_gzip_member_or_the_record_is_refused(tail: bytes, reason: str) -> None:
    data = gzip.compress(_good(1, host=True)) + tail
    with pytest.raises((OSError, EOFError)):
        gzip.decompress(data)  # the standard library refuses it too
    d = wire.decode_record(data)
    assert d.rejected_whole and d.events == [] and reason in d.errors[0].reason


def test_a_corrupt_member_is_refused_with_zlibs_reason() -> None:
    good = bytearray(gzip.compress(_good(1, host=True)))
    good[-6] ^= 0xFF  # the CRC32
    d = wire.decode_record(bytes(good))
    assert d.rejected_whole and d.errors[0].reason.startswith("not a gzip batch:")


def test_more_gzip_members_than_an_agent_writes_are_refused() -> None:
    empty = gzip.compress(b"")
    d = wire.decode_record(empty * (bounds.MAX_GZIP_MEMBERS + 1))
    assert d.rejected_whole and "gzip members" in d.errors[0].reason
    assert wire.decode_record(empty * bounds.MAX_GZIP_MEMBERS).rejected_whole is False


def test_a_dead_letter_flood_becomes_the_listed_errors_and_one_summary() -> None:
    # GIVEN 20,000 `{}` lines (gzip: ~100 bytes) between two good events
    body = _good(1, host=True) + b"\n" + b"{}\n" * 20_000 + _good(2) + b"\n"
    # WHEN decoded
    d = wire.decode_record(gzip.compress(body))
    # THEN the good neighbours are kept, 100 errors are listed and ONE summary counts the rest
    assert [e.seq for e in d.events] == [1, 2]
    assert d.bad_lines == 20_000 and d.lines == 20_002
    assert len(d.errors) == bounds.LINE_ERRORS_LISTED + 1
    assert [e.line for e in d.errors[:3]] == [2, 3, 4] and d.errors[0].raw == b"{}"
    summary = d.errors[-1]
    assert summary.line == 0
    assert summary.reason.startswith(
        "19900 more bad lines not listed (first at line 102, last at line 20001)"
    )
    assert "19900 x Object missing required field `kind`" in summary.reason
    assert summary.raw.split(b"\n") == [b"{}", b"{}", b"{}"]
    # and decode_batch gives the same bounded list
    events, errors = wire.decode_batch(gzip.compress(body))
    assert len(events) == 2 and errors == d.errors


def test_more_lines_than_8_mib_of_valid_events_can_hold_are_refused_whole() -> None:
    # GIVEN the flood: `{}` lines, 66 KB of gzip; within 8 MiB raw that is 2.8 M lines
    body = b"{}\n" * (bounds.RAW_BATCH_BYTES // 3)
    data = gzip.compress(body, 9)
    # WHEN decoded
    out: list[wire.Decoded] = []
    peak = _peak(lambda: out.append(wire.decode_record(data)))
    # THEN it is refused whole before any line is decoded: one error, not millions
    d = out[0]
    assert d.rejected_whole and len(d.errors) == 1
    assert f"lines exceed {bounds.MAX_LINES}" in d.errors[0].reason
    assert peak < 2 * bounds.RAW_BATCH_BYTES + (1 << 20), peak


def test_the_line_bound_admits_a_batch_of_the_shortest_valid_events() -> None:
    # GIVEN the shortest line that decodes, repeated up to the bound
    line = b'{"kind":"heartbeat","time":946684800000000000,"seq":1}'
    assert len(line) + 1 == bounds.MIN_LINE_BYTES
    n = bounds.RAW_BATCH_BYTES // bounds.MIN_LINE_BYTES
    # WHEN decoded  THEN every line is an event: the line bound never refuses what 8 MiB can hold
    d = wire.decode_record(gzip.compress((line + b"\n") * n, 1))
    assert len(d.events) == n and d.errors == []


def test_a_deeply_nested_line_is_a_line_error_not_a_crash() -> None:
    # GIVEN a process whose lineage nests 5,000 levels deep (beyond the decoder's recursion)
    deep = b'{"pid":1' + b',"lineage":[{"pid":1' * 5000 + b"}]" * 5000 + b"}"
    line = b'{"kind":"process_exec","time":%d,"seq":2,"process":%s}' % (T0, deep)
    body = b"\n".join([_good(1, host=True), line, _good(3)])
    # WHEN decoded  THEN that line is rejected with a reason and its neighbours kept
    d = wire.decode_record(body)
    assert [e.seq for e in d.events] == [1, 3]
    assert [(e.line, e.reason) for e in d.errors] == [(2, "nested too deeply to decode")]


def test_normalize_rejections_are_bounded_like_line_errors() -> None:
    # GIVEN 5,000 events and no host block anywhere (a batch header that failed to decode)
    events = [wire.ProcessExec(time=T0 + i, seq=i, process=PROC) for i in range(1, 5001)]
    # WHEN normalized
    out, rejected = normalize_batch(events)
    # THEN 100 rejections are listed and one summary counts the other 4,900
    assert out == [] and len(rejected) == bounds.LINE_ERRORS_LISTED + 1
    assert rejected[-1].line == 0
    assert rejected[-1].reason.startswith(
        "4900 more events rejected, not listed (first at event 101, last at event 5000)"
    )
