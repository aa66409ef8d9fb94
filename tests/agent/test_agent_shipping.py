"""Batching, Kinesis shipping, the disk spool and its replay (no root needed).

Kinesis is moto (in-process) or a fake client that fails on purpose, so the tests show exactly
what happens to every event when Kinesis is throttled, unreachable, and back again.
"""

from __future__ import annotations

import gzip
import io
import itertools
import random
import time

import boto3
import msgspec
import pytest
from moto import mock_aws

from vigil import wire
from vigil.sample import T0
from vigil_agent import ship
from vigil_agent.ship import Batcher, KinesisShipper, Stats, StdoutSink
from vigil_agent.spool import Batch, Spool

HOST = wire.Host(instance_id="i-0123456789abcdef0", region="us-east-1")


def _ev(seq: int) -> wire.WireEvent:
    return wire.ProcessExec(
        time=T0 + seq, seq=seq, process=wire.Process(pid=seq, name="x", args=["x", str(seq)])
    )


class _Collect:
    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.lines: list[list[bytes]] = []
        self.holds: list[float] = []

    def submit(self, batch: Batch, lines: list[bytes], hold_s: float = 0.0) -> None:
        self.batches.append(batch)
        self.lines.append(lines)
        self.holds.append(hold_s)

    def close(self, timeout: float) -> None:
        pass


def test_batcher_writes_gzip_ndjson_with_host_header_and_seals_on_size() -> None:
    sink = _Collect()
    b = Batcher(sink, HOST, max_raw=4096)
    for i in range(1, 101):
        b.add(_ev(i))
    b.seal()
    assert len(sink.batches) > 1
    seqs = []
    for batch in sink.batches:
        assert batch.payload[:2] == b"\x1f\x8b"
        events, errors = wire.decode_batch(batch.payload)
        assert errors == []
        assert events[0].host == HOST  # the batch header
        assert all(e.host is None for e in events[1:])
        assert len(gzip.decompress(batch.payload)) <= 4096
        assert (batch.first_seq, batch.last_seq, batch.count) == (events[0].seq, events[-1].seq, len(events))
        seqs += [e.seq for e in events]
    assert seqs == list(range(1, 101))


def test_batcher_seals_on_the_gzipd_size_of_a_batch() -> None:
    """The record bound is on the payload Kinesis gets: events that barely compress (random
    argv here) fill a 4 KiB record with ~4 KiB of NDJSON; the compressor is flushed near the
    bound so no payload passes it, and every payload is still the batch's exact NDJSON."""
    import random

    rng = random.Random(5)
    sink = _Collect()
    b = Batcher(sink, HOST, max_bytes=4096, v2=False)  # v1: each line is the event's own encoding
    for i in range(1, 201):
        noise = "".join(rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(150))
        b.add(wire.ProcessExec(time=T0 + i, seq=i, process=wire.Process(pid=i, name="x", args=["x", noise])))
    b.seal()
    assert len(sink.batches) > 5
    seqs = []
    for batch in sink.batches:
        events = wire.decode_batch(batch.payload)[0]
        assert len(batch.payload) <= 4096
        assert gzip.decompress(batch.payload) == b"".join(msgspec.json.encode(e) + b"\n" for e in events)
        seqs += [e.seq for e in events]
    assert seqs == list(range(1, 201))
    assert min(len(x.payload) for x in sink.batches[:-1]) > 3000  # full, not sealed early
    # compressible events: the same bound holds ~10x more of them
    b = Batcher(sink := _Collect(), HOST, max_bytes=4096, v2=False)
    for i in range(1, 401):
        b.add(_ev(i))
    b.seal()
    assert all(len(x.payload) <= 4096 for x in sink.batches)
    assert sum(len(gzip.decompress(x.payload)) for x in sink.batches) / len(sink.batches) > 16_000


def test_native_lines_are_cut_between_lines_at_the_gzipd_bound() -> None:
    """add_lines (a ring pass's lines from C) seals a full batch between two lines, on the same
    gzip'd bound, and the next batch's first line gets the host (wire v1: v2 never cuts C's lines,
    see the v2 tests)."""
    import random

    rng = random.Random(9)
    evs = []
    for i in range(1, 301):
        noise = "".join(rng.choice("0123456789abcdef") for _ in range(rng.randrange(20, 400)))
        evs.append(
            wire.ProcessExec(time=T0 + i, seq=i, process=wire.Process(pid=i, name="x", args=["x", noise]))
        )
    sink = _Collect()
    b = Batcher(sink, HOST, max_bytes=4096, v2=False)
    b.add_lines(b"\n".join(msgspec.json.encode(e) for e in evs[:250]), 250, 1)
    b.add_lines(b"\n".join(msgspec.json.encode(e) for e in evs[250:]), 50, 251)
    b.seal()
    assert len(sink.batches) > 5
    got = []
    for batch in sink.batches:
        events, errors = wire.decode_batch(batch.payload)
        assert errors == [] and len(batch.payload) <= 4096 and events[0].host == HOST
        assert [e.seq for e in events] == list(range(batch.first_seq, batch.last_seq + 1))
        got += [msgspec.structs.replace(e, host=None) for e in events]
    assert got == evs


def test_batcher_flushes_on_time() -> None:
    now = [0.0]
    sink = _Collect()
    b = Batcher(sink, HOST, flush_s=1.0, stretch_s=1.0, clock=lambda: now[0])
    b.add(_ev(1))
    now[0] = 0.5
    assert not b.due()
    now[0] = 1.0
    assert b.due()


def _big(seq: int) -> wire.WireEvent:
    """An exec whose command line gzip cannot shrink much (its own 1 KiB of random hex)."""
    arg = random.Random(seq).randbytes(512).hex()
    return wire.ProcessExec(
        time=T0 + seq, seq=seq, process=wire.Process(pid=seq, name="x", cmd_line=f"x {arg}", args=["x", arg])
    )


def test_a_small_batch_waits_up_to_stretch_s_and_a_fuller_one_keeps_flush_s() -> None:
    """Stretch (ship.py): a batch still under half a PUT unit when it is flush_s old waits up to
    stretch_s (two seconds in the unit one would pay alone); once it reaches half a unit it leaves."""
    now = [0.0]
    sink = _Collect()
    b = Batcher(sink, HOST, flush_s=1.0, stretch_s=2.0, clock=lambda: now[0])
    # GIVEN a quiet second: a few small events
    for i in range(1, 6):
        b.add(_ev(i))
    now[0] = 1.0
    # THEN it is not due at flush_s, and the loop may sleep until stretch_s
    assert b.small() and not b.due() and b.due_in() == 1.0
    now[0] = 2.0
    assert b.due()
    b.seal()
    assert b.stretched == 1 and len(sink.batches) == 1
    # GIVEN a batch that is small at flush_s and then fills half a unit (12 KiB of gzip)
    now[0] = 3.0
    b.add(_ev(6))
    now[0] = 4.2
    assert not b.due()
    seq = 7
    while b.small():
        b.add(_big(seq))
        seq += 1
    # THEN it leaves at once, not at stretch_s
    assert b.due() and b.due_in() == 0.0
    b.seal()
    assert b.stretched == 1  # it did not wait for being small
    events = wire.decode_batch(sink.batches[1].payload)[0]
    assert len(sink.batches[1].payload) >= ship.STRETCH_GZ // 2 and len(events) == seq - 6


def test_a_busy_batch_and_a_plain_sink_keep_flush_s() -> None:
    now = [0.0]
    # GIVEN a batch of half a PUT unit or more by its first second
    b = Batcher(_Collect(), HOST, flush_s=1.0, stretch_s=2.0, clock=lambda: now[0])
    seq = 1
    while b.small():
        b.add(_big(seq))
        seq += 1
    # THEN it is due at flush_s, not later
    now[0] = 0.99
    assert not b.due() and abs(b.due_in() - 0.01) < 1e-9
    now[0] = 1.0
    assert b.due()
    # GIVEN --stdout (no record to pay for): one event is due at flush_s
    p = Batcher(
        StdoutSink(Stats(), io.BytesIO()),
        HOST,
        flush_s=1.0,
        stretch_s=2.0,
        compress=False,
        clock=lambda: now[0],
    )
    p.add(_ev(1))
    now[0] = 2.0
    assert p.due()
    p.seal()
    assert p.stretched == 0


def test_batcher_dates_a_batch_from_the_read_round_before_it() -> None:
    """The loop reads the kernel in rounds: what it reads in one was recorded after the previous
    one began, so a batch opened at t=0.25 in the round that began then is due 1 s after the
    round before (t=0), and no event in it leaves later than flush_s after it was recorded."""
    now = [0.0]
    b = Batcher(_Collect(), HOST, flush_s=1.0, stretch_s=1.0, clock=lambda: now[0])
    assert b.due_in() == float("inf")  # nothing open: the loop may sleep its full round
    b.round(0.0)
    now[0] = 0.25
    b.round(0.25)
    b.add(_ev(1))
    assert b.due_in() == 0.75
    now[0] = 0.9
    assert not b.due() and abs(b.due_in() - 0.1) < 1e-9
    now[0] = 1.0
    assert b.due() and b.due_in() == 0.0
    b.seal()  # the loop seals it right after a round's read: the next batch dates from that round
    b.round(1.0)
    now[0] = 1.25
    b.round(1.25)
    b.add(_ev(2))
    assert b.due_in() == 0.75


class _SpyIsal:
    """isal_zlib, recording the levels it is asked for."""

    def __init__(self) -> None:
        from isal import isal_zlib

        self.real = isal_zlib
        self.DEFLATED = isal_zlib.DEFLATED
        self.levels: list[int] = []

    def compressobj(self, level: int, method: int, wbits: int):  # type: ignore[no-untyped-def]
        self.levels.append(level)
        return self.real.compressobj(level, method, wbits)


@pytest.mark.parametrize("engine", ["isal", "zlib"])
@pytest.mark.parametrize("level", [0, 1, 3, 6, 9])
def test_batches_are_gzip_of_the_exact_ndjson_on_isal_and_on_zlib(monkeypatch, engine, level) -> None:
    # GIVEN ISA-L (pinned in requirements-dev, so it must be there) or, without it, zlib
    assert ship._isal is not None, "isal is pinned in requirements-dev.txt: reinstall the venv"
    spy = _SpyIsal()
    monkeypatch.setattr(ship, "_isal", spy if engine == "isal" else None)
    sink = _Collect()
    b = Batcher(sink, HOST, gzip_level=level, max_raw=4096, v2=False)
    # WHEN batches of events are sealed (on size, and the last one by hand)
    for i in range(1, 301):
        b.add(_ev(i))
    b.seal()
    # THEN each payload is one gzip member whose content is byte for byte the batch's NDJSON
    assert len(sink.batches) > 1
    for batch, lines in zip(sink.batches, sink.lines, strict=True):
        assert batch.payload[:2] == b"\x1f\x8b" and lines == []  # compressed as it filled
        events = wire.decode_batch(batch.payload)[0]
        assert gzip.decompress(batch.payload) == b"".join(msgspec.json.encode(e) + b"\n" for e in events)
        assert len(events) == batch.count
        assert [e.seq for e in wire.decode_batch(batch.payload)[0]] == list(
            range(batch.first_seq, batch.last_seq + 1)
        )
    # and zlib's levels map onto ISA-L's 0-3 (0, no compression, stays zlib's stored blocks)
    want = {0: [], 1: [1], 3: [1], 6: [3], 9: [3]}[level] if engine == "isal" else []
    assert set(spy.levels) == set(want)


def test_only_a_batch_sealed_full_may_wait_for_the_next_ones() -> None:
    now = [10.0]
    sink = _Collect()
    b = Batcher(sink, HOST, flush_s=1.0, max_raw=1024, clock=lambda: now[0])
    # GIVEN a batch opened at t=10.0 that fills up at t=10.25
    b.add(_ev(1))
    now[0] = 10.25
    while len(sink.batches) == 0:
        b.add(_ev(2))
    # THEN it may wait until its first event is flush_s old, like a batch sealed on time
    assert sink.holds == [0.75]
    # WHEN the next batch is sealed on time (or at start or stop): it goes at once
    now[0] = 11.5
    b.seal()
    assert sink.holds == [0.75, 0.0]


def test_stdout_sink_is_exact_wire_ndjson() -> None:
    out = io.BytesIO()
    stats = Stats()
    b = Batcher(StdoutSink(stats, out), HOST, compress=False)
    b.add(_ev(1))
    b.add(_ev(2))
    b.seal()
    lines = out.getvalue().splitlines()
    assert [wire.decode_line(line).seq for line in lines] == [1, 2]
    assert stats.sent == 2


def test_reused_process_blocks_encode_byte_for_byte_like_msgspec() -> None:
    """A process's block is encoded once and spliced (msgspec.Raw) into its later events: the
    lines must be exactly what encoding each event whole gives."""
    import msgspec

    parent = wire.Process(pid=1, uid="p-uuid", name="sh", args=["sh"])
    proc = wire.Process(
        pid=7,
        uid="c-uuid",
        name="curl",
        args=["curl", "x"],
        parent_uid="p-uuid",
        lineage=[parent, parent],
        stdin=wire.Stdio(type="pipe", path="pipe:[1]"),
    )
    events: list[wire.WireEvent] = [wire.ProcessExec(time=T0 + 1, seq=1, process=proc)]
    for i in range(2, 6):
        events.append(wire.NetConnect(time=T0 + i, seq=i, process=proc, remote_ip="10.0.0.1", remote_port=i))
    events.append(wire.DnsQuery(time=T0 + 9, seq=9, hostname="a.example", process=proc))
    events.append(wire.DnsQuery(time=T0 + 10, seq=10, hostname="b.example"))
    out = io.BytesIO()
    b = Batcher(StdoutSink(Stats(), out), HOST, compress=False)
    for e in events:
        b.add(e)
    b.seal()
    want = [msgspec.json.encode(msgspec.structs.replace(events[0], host=HOST))]
    want += [msgspec.json.encode(e) for e in events[1:]]
    assert out.getvalue().splitlines() == want


def test_spool_evicts_oldest_and_counts_the_loss(tmp_path) -> None:
    sp = Spool(str(tmp_path), max_bytes=3000)
    for i in range(1, 6):
        sp.append(Batch(i, 10, b"x" * 1000))
    assert len(sp) == 3 and sp.evicted_events == 20 and sp.evicted_batches == 2
    assert sp.head().id == 3
    # a restart finds the same queue, in order
    sp2 = Spool(str(tmp_path), max_bytes=3000)
    assert [int(n.split("-")[0]) for n, _, _ in sp2.files] == [3, 4, 5]
    assert sp2.pending_events() == 30


class FlakyKinesis:
    """Fails whole calls while ``down``; throttles the first record of the first call when up."""

    def __init__(self) -> None:
        self.down = True
        self.records: list[bytes] = []
        self.calls = 0
        self.throttled_once = False

    def put_records(self, StreamName: str, Records: list[dict]) -> dict:
        self.calls += 1
        if self.down:
            raise ConnectionError("endpoint unreachable")
        out = []
        for i, r in enumerate(Records):
            if i == 0 and not self.throttled_once:
                self.throttled_once = True
                out.append(
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
                )
            else:
                self.records.append(r["Data"])
                out.append({"SequenceNumber": "1", "ShardId": "shardId-0"})
        return {"FailedRecordCount": sum(1 for o in out if "ErrorCode" in o), "Records": out}


def _wait(pred, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met")


def test_unreachable_kinesis_spools_then_replays_in_order(tmp_path) -> None:
    fake = FlakyKinesis()
    stats = Stats()
    spool = Spool(str(tmp_path), max_bytes=10 << 20)
    sh = KinesisShipper(
        stream="s",
        partition_key=HOST.instance_id,
        spool=spool,
        stats=stats,
        client_factory=lambda: fake,
        memory_batches=2,
        max_attempts=2,
        backoff_base_s=0.01,
        backoff_max_s=0.02,
    )
    sh.start()
    b = Batcher(sh, HOST, max_raw=2048)
    for i in range(1, 201):
        b.add(_ev(i))
    b.seal()
    _wait(lambda: len(spool) > 0 and not sh.healthy)
    assert stats.spooled > 0 and stats.sent == 0
    fake.down = False  # Kinesis is back
    _wait(lambda: stats.sent == 200 and len(spool) == 0 and not sh.memory)
    sh.close(timeout=2)
    seqs = [e.seq for rec in fake.records for e in wire.decode_batch(rec)[0]]
    assert sorted(seqs) == list(range(1, 201))  # nothing lost, nothing doubled
    # the spool replays in order; only a throttled record retried later may come back out of place
    assert sum(1 for x, y in itertools.pairwise(seqs) if y < x) <= 1
    assert stats.dropped == 0 and stats.spool_evicted == 0 and stats.send_errors >= 2


def test_full_spool_drops_oldest_and_reports_it(tmp_path) -> None:
    fake = FlakyKinesis()
    stats = Stats()
    spool = Spool(str(tmp_path), max_bytes=1 << 20)
    sh = KinesisShipper(
        stream="s",
        partition_key="i-1",
        spool=spool,
        stats=stats,
        client_factory=lambda: fake,
        memory_batches=1,
        max_attempts=1,
        backoff_base_s=10,
        backoff_max_s=10,
    )
    sh.start()
    big = b"z" * (300 << 10)
    for i in range(1, 8):  # 7 x 300 KiB into a 1 MiB spool while Kinesis is down
        sh.submit(Batch(i, 5, big, i, i))
        _wait(lambda: not sh.memory or not sh.healthy)
    _wait(lambda: len(spool) >= 3)
    assert stats.spool_evicted > 0 and stats.dropped == stats.spool_evicted
    assert stats.spool_evicted % 5 == 0
    assert [int(n.split("-")[0]) for n, _, _ in spool.files] == sorted(
        int(n.split("-")[0]) for n, _, _ in spool.files
    )
    assert spool.files[-1][0].startswith(f"{7:020d}")  # the newest survived
    sh.stopping = True


@pytest.mark.parametrize("by_arn", [False, True], ids=["stream-name", "stream-arn"])
@mock_aws
def test_ships_to_kinesis_partitioned_by_instance(by_arn: bool) -> None:
    kin = boto3.client("kinesis", region_name="us-east-1")
    kin.create_stream(StreamName="telemetry", ShardCount=1)
    arn = kin.describe_stream_summary(StreamName="telemetry")["StreamDescriptionSummary"]["StreamARN"]
    stats = Stats()
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        sh = KinesisShipper(
            # a member account's agent names the administrator's stream by ARN (cross-account)
            stream=arn if by_arn else "telemetry",
            partition_key=HOST.instance_id,
            spool=Spool(d, 1 << 20),
            stats=stats,
            client_factory=lambda: boto3.client("kinesis", region_name="us-east-1"),
        )
        sh.start()
        b = Batcher(sh, HOST, max_raw=8192)
        for i in range(1, 51):
            b.add(_ev(i))
        b.seal()
        _wait(lambda: stats.sent == 50)
        sh.close(timeout=2)
    shard = kin.describe_stream(StreamName="telemetry")["StreamDescription"]["Shards"][0]["ShardId"]
    it = kin.get_shard_iterator(StreamName="telemetry", ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    recs = kin.get_records(ShardIterator=it)["Records"]
    assert {r["PartitionKey"] for r in recs} == {HOST.instance_id}
    seqs = [e.seq for r in recs for e in wire.decode_batch(r["Data"])[0]]
    assert seqs == list(range(1, 51))


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "InternalFailure"])
def test_per_record_retry_only_resends_failed_records(tmp_path, code) -> None:
    sent: list[list[bytes]] = []

    class OneFails:
        def put_records(self, StreamName, Records):
            sent.append([r["Data"] for r in Records])
            if len(sent) == 1:
                return {"FailedRecordCount": 1, "Records": [{"SequenceNumber": "1"}, {"ErrorCode": code}]}
            return {"FailedRecordCount": 0, "Records": [{"SequenceNumber": "2"} for _ in Records]}

    stats = Stats()
    sh = KinesisShipper(
        stream="s",
        partition_key="i-1",
        spool=Spool(str(tmp_path), 1 << 20),
        stats=stats,
        client_factory=OneFails,
        backoff_base_s=0.001,
        sleep=lambda s: None,
    )
    assert sh._send_all([Batch(1, 3, b"a"), Batch(2, 4, b"b")]) == []
    assert sent == [[b"a", b"b"], [b"b"]]
    assert stats.sent == 7 and stats.send_errors == 1


class _Recorder:
    """A Kinesis that accepts everything and remembers each call's records, and when."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, list[bytes]]] = []

    def put_records(self, StreamName: str, Records: list[dict]) -> dict:
        self.calls.append((time.monotonic(), [r["Data"] for r in Records]))
        return {"FailedRecordCount": 0, "Records": [{"SequenceNumber": "1"} for _ in Records]}


def _shipper(tmp_path, kinesis: _Recorder, memory_batches: int = 16) -> KinesisShipper:
    sh = KinesisShipper(
        stream="s",
        partition_key="i-1",
        spool=Spool(str(tmp_path), 1 << 20),
        stats=Stats(),
        client_factory=lambda: kinesis,
        memory_batches=memory_batches,
    )
    sh.start()
    return sh


def test_batches_sealed_full_leave_together_when_the_first_is_due(tmp_path) -> None:
    kin = _Recorder()
    sh = _shipper(tmp_path, kin)
    # GIVEN three batches sealed full in a row (later ones are due later), the first due in 1 s
    t0 = time.monotonic()
    sh.submit(Batch(1, 1, b"a"), None, 1.0)
    sh.submit(Batch(2, 1, b"b"), None, 1.2)
    sh.submit(Batch(3, 1, b"c"), None, 1.4)
    time.sleep(0.2)
    assert kin.calls == []  # held
    # THEN they leave in one call, once the first is due
    _wait(lambda: sh.stats.sent == 3)
    assert [d for _, d in kin.calls] == [[b"a", b"b", b"c"]]
    assert kin.calls[0][0] - t0 >= 0.95
    # WHEN a batch is sealed on time: it goes at once
    sh.submit(Batch(4, 1, b"d"))
    _wait(lambda: sh.stats.sent == 4)
    assert [d for _, d in kin.calls] == [[b"a", b"b", b"c"], [b"d"]]
    sh.close(timeout=1)


def test_held_batches_go_at_once_on_close_or_when_memory_is_half_full(tmp_path) -> None:
    kin = _Recorder()
    sh = _shipper(tmp_path, kin, memory_batches=4)
    t0 = time.monotonic()
    # GIVEN batches that may wait 30 s: two of four memory slots make the shipper send anyway
    sh.submit(Batch(1, 1, b"a"), None, 30.0)
    sh.submit(Batch(2, 1, b"b"), None, 30.0)
    _wait(lambda: sh.stats.sent == 2, timeout=5)
    # and close() does not wait for a held batch either
    sh.submit(Batch(3, 1, b"c"), None, 30.0)
    sh.close(timeout=5)
    assert [d for _, d in kin.calls] == [[b"a", b"b"], [b"c"]]
    assert time.monotonic() - t0 < 5
    assert len(sh.spool) == 0


def _sock(ip: str = "198.51.100.7") -> wire.Stdio:
    return wire.Stdio(type="socket", family="inet", protocol="tcp", remote=wire.Endpoint(ip=ip, port=4444))


def test_an_urgent_event_makes_its_batch_leave_at_once_at_most_every_express_min_s() -> None:
    """The express lane: a batch holding a shell on an inet socket (or an injection, a memfd exec,
    a module load) leaves right after the read that brought it, not flush_s later; ordinary events
    wait as before; and a host that keeps doing it gets at most one express seal per express_min_s."""
    now = [0.0]
    sink = _Collect()
    b = Batcher(sink, HOST, flush_s=1.0, express_min_s=0.2, clock=lambda: now[0])
    b.round(0.0)
    b.add(_ev(1))  # ordinary, in a small batch: it would wait stretch_s (2 s)
    assert not b.express_due() and b.due_in() == 2.0
    shell = wire.Process(pid=7, name="bash", stdin=_sock(), stdout=_sock())
    b.add(wire.ProcessExec(time=T0 + 2, seq=2, process=shell))
    assert b.express_due() and b.due_in() == 0.0
    b.seal()
    assert len(sink.batches) == 1 and sink.batches[0].count == 2 and b.express_seals == 1 and not b.stretched
    # a second urgent event 0.1 s later waits for express_min_s, then leaves
    now[0] = 0.1
    b.round(0.1)
    b.add(wire.MemfdExec(time=T0 + 3, seq=3, process=shell))
    assert not b.express_due() and abs(b.due_in() - 0.1) < 1e-9
    now[0] = 0.2
    assert b.express_due()
    b.seal()
    assert b.express_seals == 2 and not b.urgent


@pytest.mark.parametrize(
    ("event", "is_urgent"),
    [
        (wire.ProcessExec(time=T0, seq=1, process=wire.Process(pid=1, stderr=_sock())), True),
        (
            wire.ProcessExec(
                time=T0, seq=1, process=wire.Process(pid=1, stdin=wire.Stdio(type="socket", family="unix"))
            ),
            False,
        ),
        (wire.ProcessExec(time=T0, seq=1, process=wire.Process(pid=1, stdin=wire.Stdio(type="pipe"))), False),
        (wire.Ptrace(time=T0, seq=1, process=wire.Process(pid=1), request="PTRACE_POKETEXT"), True),
        (
            wire.NetConnect(
                time=T0, seq=1, process=wire.Process(pid=1), remote_ip="198.51.100.7", remote_port=4444
            ),
            False,
        ),
    ],
)
def test_what_is_urgent(event: wire.WireEvent, is_urgent: bool) -> None:
    assert ship.urgent(event) is is_urgent


def test_the_express_lane_can_be_turned_off() -> None:
    b = Batcher(_Collect(), HOST, express=False, clock=lambda: 0.0)
    b.add(wire.MemfdExec(time=T0, seq=1, process=wire.Process(pid=1)))
    b.mark_urgent()
    assert not b.express_due() and b.due_in() == 2.0  # a small batch: stretch_s


# --- wire v2: a process table per batch (issue 14) -------------------------------------------------
_SSHD = wire.Process(pid=800, uid="u800", name="sshd", cmd_line="sshd: /usr/sbin/sshd -D")
_BASH = wire.Process(
    pid=900, uid="u900", name="bash", cmd_line="-bash", ppid=800
)  # as an ancestor: no lineage


def _v2_events(n: int) -> list[wire.WireEvent]:
    """n connects of 5 processes (children of one bash), some sharing objects, some equal copies."""
    procs = [
        wire.Process(
            pid=1000 + k, uid=f"u{k}", name="curl", args=["curl", str(k)], ppid=900, lineage=[_BASH, _SSHD]
        )
        for k in range(5)
    ]
    out: list[wire.WireEvent] = []
    for i in range(1, n + 1):
        p = (
            procs[i % 5]
            if i % 2
            else msgspec.json.decode(msgspec.json.encode(procs[i % 5]), type=wire.Process)
        )
        out.append(wire.NetConnect(time=T0 + i, seq=i, process=p, remote_ip="198.51.100.7", remote_port=443))
    return out


def test_v2_batches_define_each_process_once_and_decode_to_the_v1_events() -> None:
    # GIVEN the same events batched as v1 and as v2 (the default for a gzip'd batch; these connects
    # repeat, and folding them is tested on its own below)
    evs = _v2_events(300)
    b1, b2 = Batcher(s1 := _Collect(), HOST, v2=False), Batcher(s2 := _Collect(), HOST, fold=False)
    for e in evs:
        b1.add(e)
        b2.add(e)
    b1.seal()
    b2.seal()
    assert b2.v2 and not b1.v2 and len(s1.batches) == len(s2.batches) == 1
    # THEN v2 decodes to exactly the events v1 does, with the batch header on the first event
    v1, v2 = wire.decode_record(s1.batches[0].payload), wire.decode_record(s2.batches[0].payload)
    assert v1.errors == v2.errors == [] and v2.events == v1.events and len(v2.events) == 300
    assert v2.events[0].host == HOST and s2.batches[0].count == 300
    # and the table holds 5 processes and their 2 ancestors, once each
    ndjson = gzip.decompress(s2.batches[0].payload)
    assert ndjson.count(b'"kind":"proc"') == 7 and ndjson.count(b'"name":"sshd"') == 1
    assert len(ndjson) * 2 < len(gzip.decompress(s1.batches[0].payload))


def test_v2_batches_sealed_on_size_each_carry_their_own_table() -> None:
    b = Batcher(sink := _Collect(), HOST, max_bytes=2048, fold=False)  # every seq on a line of its own
    evs = _v2_events(400)
    for e in evs:
        b.add(e)
    b.seal()
    assert len(sink.batches) > 2
    got: list[wire.WireEvent] = []
    for batch in sink.batches:
        d = wire.decode_record(batch.payload)
        assert d.errors == [] and len(batch.payload) <= 2048 and d.events[0].host == HOST
        assert [e.seq for e in d.events] == list(range(batch.first_seq, batch.last_seq + 1))
        got += [msgspec.structs.replace(e, host=None) for e in d.events]
    assert got == evs


def test_v2_native_lines_go_whole_into_a_batch_sized_for_them() -> None:
    """C's lines (with refs to what C defined earlier in the batch) are never cut: native_room
    tells C how much it may write, sealing the batch first when little is left."""
    b = Batcher(sink := _Collect(), HOST, max_bytes=4096)
    first = b.native_room(low=1024, margin=256)
    assert first == 4096 - 4096 // 1000 - 64 - 256  # an empty batch
    table = b'{"kind":"proc","ref":0,"process":{"pid":5,"name":"sh"}}'
    line = b'{"kind":"process_exit","process":0,"time":%d,"seq":%d}'
    b.add_lines(table + b"\n" + b"\n".join(line % (T0 + i, i) for i in (1, 2)), 2, 1)
    b.next_ref = 1  # C gave out ref 0 (the agent copies ctx.next_ref back after each pass)
    assert (b.count, b.last_seq) == (2, 2)
    epoch = b.epoch
    import random

    rng = random.Random(3)
    for i in range(3, 60):  # fill the batch from Python (with what barely compresses)
        noise = "".join(rng.choice("0123456789abcdef") for _ in range(60))
        b.add(wire.ProcessExit(time=T0 + i, seq=i, process=wire.Process(pid=i, name="x", cmd_line=noise)))
    room = b.native_room(low=1024, margin=256)
    assert b.epoch > epoch and sink.batches  # sealed to make room: C's refs start in a new batch
    assert room == first or b.count == 0 or room > 0
    # a batch bound smaller than the margin still bounds C's pass (never 0 or negative: no bound)
    assert Batcher(_Collect(), HOST, max_bytes=1024).native_room() == 1
    b.seal()
    d = wire.decode_record(sink.batches[0].payload)
    assert d.errors == [] and [e.seq for e in d.events[:2]] == [1, 2] and d.events[0].host == HOST


def test_a_plain_sink_writes_v1() -> None:
    b = Batcher(sink := _Collect(), HOST, compress=False)
    for e in _v2_events(4):
        b.add(e)
    b.seal()
    assert not b.v2 and all(b'"kind":"proc"' not in line for line in sink.lines[0])
    assert [wire.decode_line(line).seq for line in sink.lines[0]] == [1, 2, 3, 4]


def test_v2_batches_are_sealed_before_their_refs_name_too_much(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ref names a whole process: the batcher seals a batch when what its refs name reaches
    half the ingest's bound (EXPANDED_MAX), so no record it makes is refused for it."""
    from vigil import bounds

    big = wire.Process(pid=7, uid="u7", name="x", cmd_line="a" * 5000, lineage=[_SSHD])
    weight = wire.process_weight(big) + wire.process_weight(_SSHD)
    monkeypatch.setattr(bounds, "EXPANDED_MAX", 40 * weight)  # the ingest's
    b = Batcher(sink := _Collect(), HOST)
    assert b.expanded_max == 20 * weight
    for i in range(1, 101):
        b.add(wire.ProcessExit(time=T0 + i, seq=i, process=big))
    b.seal()
    assert [x.count for x in sink.batches] == [20] * 5  # bytes allow 100 in one; the refs do not
    for batch in sink.batches:
        d = wire.decode_record(batch.payload)
        assert d.errors == [] and len(d.events) == 20


# --- repeats: equal connects, accepts and queries folded into their first (issue 14) ----------------
def _busy_network(curl: wire.Process, copy: wire.Process) -> list[wire.WireEvent]:
    """What a busy host repeats: the same peer over and over (each time from a new ephemeral port),
    with the odd different one in between, from a process shared and from an equal copy of it."""
    out: list[wire.WireEvent] = []

    def add(e: type, **kw: object) -> None:
        out.append(e(time=T0 + len(out) + 1, seq=len(out) + 1, **kw))

    for i in range(5):
        add(
            wire.NetConnect,
            process=curl if i % 2 else copy,
            remote_ip="198.51.100.7",
            remote_port=443,
            local_port=40000 + i,
        )
        add(wire.NetAccept, process=curl, local_port=22, remote_ip="203.0.113.9", remote_port=50000 + i)
        add(wire.DnsQuery, process=curl, hostname="example.com", rcode="NOERROR")
    add(wire.NetConnect, process=curl, remote_ip="198.51.100.7", remote_port=80)  # another port
    add(wire.NetConnect, process=curl, remote_ip="198.51.100.7", remote_port=443, success=False)
    add(wire.ProcessExec, process=curl)
    add(wire.DnsQuery, process=curl, hostname="example.com", rcode="NXDOMAIN")  # another answer
    add(wire.DnsQuery, hostname="example.com", rcode="NOERROR")  # no process: another query
    add(wire.NetConnect, process=curl, remote_ip="198.51.100.7", remote_port=443, local_port=40009)
    return out


def test_repeats_are_counted_on_the_first_equal_event_not_sent() -> None:
    # GIVEN a batch of network events that repeat, but for their time, seq and ephemeral port
    curl = wire.Process(pid=1000, uid="u1000", name="curl", args=["curl", "x"], lineage=[_BASH])
    copy = msgspec.json.decode(msgspec.json.encode(curl), type=wire.Process)
    evs = _busy_network(curl, copy)
    b = Batcher(sink := _Collect(), HOST)
    for e in evs:
        b.add(e)
    b.seal()
    [batch] = sink.batches
    d = wire.decode_record(batch.payload)
    # THEN the first of each sends the count and the last time of those after it, which are not sent
    assert d.errors == [] and batch.count == len(evs) and b.folded == 4 + 4 + 4 + 1
    kept = {e.seq: e for e in d.events}
    assert sorted(kept) == [1, 2, 3, 16, 17, 18, 19, 20]
    assert [(kept[s].repeats, kept[s].last_time) for s in (1, 2, 3)] == [  # type: ignore[union-attr]
        (5, T0 + 21),  # the five connects to :443 and the one at the end
        (4, T0 + 14),
        (4, T0 + 15),
    ]
    assert all(not getattr(kept[s], "repeats", 0) for s in (16, 17, 18, 19, 20))
    # and apart from that the events are the ones sent (the first's ephemeral port kept)
    unfolded = {e.seq: msgspec.structs.replace(e, host=None) for e in evs}
    for s, e in kept.items():
        if isinstance(e, (wire.NetConnect, wire.NetAccept, wire.DnsQuery)):
            e = msgspec.structs.replace(e, repeats=0, last_time=0)
        assert msgspec.structs.replace(e, host=None) == unfolded[s]
    # one repeats line, after every event
    ndjson = gzip.decompress(batch.payload).splitlines()
    assert [n for n, line in enumerate(ndjson) if b'"kind":"repeats"' in line] == [len(ndjson) - 1]


def test_folding_is_off_for_a_plain_sink_and_on_request() -> None:
    curl = wire.Process(pid=1000, uid="u1000", name="curl")
    evs = _busy_network(curl, curl)
    for b in (
        Batcher(plain := _Collect(), HOST, compress=False),
        Batcher(off := _Collect(), HOST, fold=False),
    ):
        for e in evs:
            b.add(e)
        b.seal()
    assert len(plain.lines[0]) == len(evs) and not any(b"repeats" in x for x in plain.lines[0])
    assert len(wire.decode_record(off.batches[0].payload).events) == len(evs)


def test_an_event_stands_for_at_most_what_the_ingest_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    from vigil import bounds

    monkeypatch.setattr(bounds, "REPEATS_MAX", 3)  # the ingest's bound (10,000,000)
    curl = wire.Process(pid=1000, uid="u1000", name="curl")
    b = Batcher(sink := _Collect(), HOST)
    for i in range(1, 11):
        b.add(wire.NetConnect(time=T0 + i, seq=i, process=curl, remote_ip="198.51.100.7", remote_port=443))
    b.seal()
    d = wire.decode_record(sink.batches[0].payload)
    # THEN the first stands for 3 more, and the rest go as lines: nothing is lost, nothing refused
    assert d.errors == [] and [e.repeats for e in d.events] == [3] + [0] * 6  # type: ignore[union-attr]
    assert sum(1 + e.repeats for e in d.events) == 10  # type: ignore[union-attr]


def test_a_full_batch_keeps_room_for_its_repeats_line() -> None:
    # GIVEN many distinct peers, each connected to a few times, in batches of at most 2 KiB
    import random

    rng = random.Random(5)
    curl = wire.Process(pid=1000, uid="u1000", name="curl")
    evs: list[wire.WireEvent] = []
    for i in range(1, 3001):
        port = rng.randrange(1, 400)  # a peer seen again within a batch, or not
        evs.append(
            wire.NetConnect(time=T0 + i, seq=i, process=curl, remote_ip="198.51.100.7", remote_port=port)
        )
    b = Batcher(sink := _Collect(), HOST, max_bytes=2048, max_raw=16 << 10)
    for e in evs:
        b.add(e)
    b.seal()
    # THEN every record keeps its bounds, decodes whole, and the events it stands for are all sent
    assert len(sink.batches) > 3
    total = 0
    for batch in sink.batches:
        d = wire.decode_record(batch.payload)
        assert (
            d.errors == [] and len(batch.payload) <= 2048 and len(gzip.decompress(batch.payload)) <= 16 << 10
        )
        assert sum(1 + e.repeats for e in d.events) == batch.count  # type: ignore[union-attr]
        total += batch.count
    assert total == len(evs) and b.folded > 0


def test_a_folded_record_makes_the_findings_its_unfolded_events_make() -> None:
    """The ingest counts what a folded event stands for: random queries and connects of two
    processes, batched folded and not, make the same findings with the same counts and times."""
    import random

    from vigil.pipeline import Pipeline
    from vigil.state import InMemoryState

    rng = random.Random(11)
    procs = [wire.Process(pid=1000 + k, uid=f"u{k}", name="curl", args=["curl", str(k)]) for k in range(2)]
    names = ["guarddutyc2activityb.com", "example.com", "pool.supportxmr.com"]
    evs: list[wire.WireEvent] = []
    for i in range(1, 401):
        p = rng.choice(procs)
        if rng.random() < 0.5:
            evs.append(wire.DnsQuery(time=T0 + i * 1000, seq=i, process=p, hostname=rng.choice(names)))
        else:
            port = rng.choice([443, 8080])
            evs.append(
                wire.NetConnect(
                    time=T0 + i * 1000,
                    seq=i,
                    process=p,
                    remote_ip="198.51.100.7",
                    remote_port=port,
                    local_port=rng.randrange(32768, 61000),
                )
            )
    found = []
    for fold in (True, False):
        b = Batcher(sink := _Collect(), HOST, fold=fold)
        for e in evs:
            b.add(e)
        b.seal()
        assert b.folded > 300 if fold else b.folded == 0
        [batch] = sink.batches
        result = Pipeline.default().process_record(batch.payload, InMemoryState())
        assert not result.rejected
        found.append(
            sorted(
                (
                    o.finding["type"],
                    o.id,
                    o.count,
                    o.first_seen_ns,
                    o.last_seen_ns,
                    o.finding["service"]["count"],
                    o.finding["service"]["eventLastSeen"],
                )
                for o in result.occurrences
            )
        )
    assert found[0] == found[1] and len(found[0]) >= 2 and max(x[2] for x in found[0]) > 10


BOOT_ID, BOOT_TIME = "cce47ffd-b636-462f-a2bd-c329f7a18e89", 1_795_816_816 * 10**9


def _started(pid: int, *, ticks: int | None = None, audit_ns: int = 0, **kw: object) -> wire.Process:
    """A process as the agent's table makes it: its uuid from the boot and its start in ticks
    (/proc or eBPF), or from the audit time when it was gone before its start could be read."""
    if ticks is not None:
        created, key = BOOT_TIME + ticks * wire.CLOCK_TICK_NS, str(ticks)
    else:
        created, key = audit_ns, f"a{audit_ns}"
    return wire.Process(pid=pid, uid=wire.process_uuid(BOOT_ID, pid, key), created_time=created, **kw)  # type: ignore[arg-type]


def _one_batch(host: wire.Host, events: list[wire.WireEvent]) -> bytes:
    """The record the agent's batcher makes of ``events`` (wire v2, one batch)."""
    b = Batcher(sink := _Collect(), host)
    for e in events:
        b.add(e)
    b.seal()
    assert len(sink.batches) == 1
    return sink.batches[0].payload


def _uid_events(host: wire.Host) -> tuple[list[wire.WireEvent], list[wire.Process]]:
    sshd = _started(800, ticks=1_000, name="sshd")
    bash = _started(900, ticks=52_345, name="bash", ppid=800, parent_uid=sshd.uid)
    by_proc = _started(1001, ticks=99_001, name="curl", ppid=900, parent_uid=bash.uid, lineage=[bash, sshd])
    by_audit = _started(1002, audit_ns=BOOT_TIME + 12_345_678_901, name="true", ppid=900, lineage=[bash])
    foreign = wire.Process(
        pid=1003, uid="not-derivable", created_time=BOOT_TIME + 10**9, name="x", lineage=[bash]
    )
    procs = [by_proc, by_audit, foreign]
    evs: list[wire.WireEvent] = [
        wire.ProcessExec(time=T0 + i, seq=i + 1, process=p, host=host if i == 0 else None)
        for i, p in enumerate(procs)
    ]
    return evs, [*procs, bash, sshd]


def test_v2_proc_lines_leave_out_the_uuids_the_ingest_derives_and_it_restores_them() -> None:
    # GIVEN a host whose header carries its boot, and processes named as the agent's table names them
    host = wire.Host(instance_id="i-0123456789abcdef0", boot_id=BOOT_ID, boot_time=BOOT_TIME)
    evs, procs = _uid_events(host)
    payload = _one_batch(host, evs)
    ndjson = gzip.decompress(payload)
    # THEN only the uuid that does not derive from the boot is on the wire as a uid (parents' as
    # their children's parent_uid still are)
    for p in procs:
        assert (b'"uid":"%s"' % p.uid.encode() in ndjson) == (p.uid == "not-derivable"), p.name
    # AND the ingest decodes every process, ancestors included, with the uuid the agent had
    dec = wire.decode_record(payload)
    assert dec.errors == [] and [e.process for e in dec.events] == [e.process for e in evs]  # type: ignore[attr-defined]
    assert dec.events[0].process.lineage[0].uid == procs[3].uid  # type: ignore[attr-defined]


def test_without_a_boot_in_the_header_every_uuid_is_sent() -> None:
    host = wire.Host(instance_id="i-0123456789abcdef0", boot_id=BOOT_ID)  # no boot_time
    evs, procs = _uid_events(host)
    payload = _one_batch(host, evs)
    ndjson = gzip.decompress(payload)
    assert all(b'"uid":"%s"' % p.uid.encode() in ndjson for p in procs)
    assert [e.process for e in wire.decode_record(payload).events] == [e.process for e in evs]  # type: ignore[attr-defined]


def test_a_record_that_leaves_out_uuids_without_a_boot_decodes_them_empty() -> None:
    # a hostile or broken agent: proc lines without uid, and no boot to derive them from
    lines = [
        b'{"kind":"proc","ref":0,"process":{"pid":7,"name":"sh","created_time":1795816826000000000}}',
        b'{"kind":"process_exec","process":0,"time":%d,"seq":1,"host":{"instance_id":"i-0123456789abcdef0"}}'
        % T0,
    ]
    dec = wire.decode_record(gzip.compress(b"\n".join(lines)))
    assert dec.errors == [] and dec.events[0].process.uid == ""  # type: ignore[attr-defined]
    # and with the boot in the header, the same line gets its uuid
    lines[1] = lines[1].replace(
        b'"i-0123456789abcdef0"}', b'"i-0123456789abcdef0","boot_id":"b","boot_time":1795816816000000000}'
    )
    dec = wire.decode_record(gzip.compress(b"\n".join(lines)))
    assert dec.events[0].process.uid == wire.process_uuid("b", 7, "1000")  # type: ignore[attr-defined]


def test_processes_read_from_this_kernel_leave_their_uuids_to_the_ingest() -> None:
    # GIVEN a live process on this machine, read from /proc by the agent's table (lineage included),
    # and the header the agent builds for this host (its boot id and /proc/stat btime)
    import subprocess

    from vigil_agent.agent import host_identity
    from vigil_agent.config import Config
    from vigil_agent.proctable import ProcessTable

    child = subprocess.Popen(["/bin/sleep", "30"])
    try:
        table = ProcessTable()
        entry = table.get(child.pid)
        assert entry is not None
        p = entry.process
        host = msgspec.structs.replace(
            host_identity(Config()), instance_id=HOST.instance_id
        )  # not on EC2 here
        assert host.boot_id == table.boot and host.boot_time == table.btime > 0
        # THEN every uuid of the process and its ancestors derives from the header: none is sent
        for q in [p, *p.lineage]:
            assert wire.derived_uid(q, host.boot_id, host.boot_time) == q.uid, q.name
        payload = _one_batch(host, [wire.ProcessExec(time=T0, seq=1, process=p)])
        assert b'"uid":"' not in gzip.decompress(payload)
        # AND the ingest gives them back
        dec = wire.decode_record(payload)
        assert dec.errors == [] and dec.events[0].process == p  # type: ignore[attr-defined]
    finally:
        child.kill()
        child.wait()
