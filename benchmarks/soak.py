"""make soak: simulated agents at the busy mix through the offline stack, hostile input and chaos.

    python benchmarks/soak.py [--hosts 4] [--seconds 150] [--hostile all|none|bomb,flood,...]
                              [--chaos all|none|reorder,split,resend,throttle] [--seed 13]

Starts the offline stack (local.stack: moto on loopback, template.yaml deployed by CloudFormation,
the real IngestFunction run in-process by the stream pollers) and drives ``--hosts`` simulated
agents through the public path only: PutRecords into TelemetryStream, then the tables and queues.

Each agent has its own instance id (``i-`` + 17 hex), a per-instance monotonic seq that starts at
the wall clock in microseconds (like the agent's ``_load_seq``), and sends one gzip NDJSON record
per second of traffic with its host block in the batch header: 200 process execs + 500 connects +
100 DNS queries drawn from the benign corpus (benchmarks/corpus/benign.ndjson.gz), a heartbeat a
minute, and, in about half the batches, an attack scenario from events/agent/ (reverse shell,
crypto miner), re-stamped with the agent's instance, seq and time, so findings fire often.

Delivery chaos (``--chaos``): ``reorder`` (a batch held back and sent after the next one),
``split`` (a batch cut in two records, the second half sent first), ``resend`` (the same record
sent again 1-3 s later, like the agent's retry), ``throttle`` (a botocore hook on the ingest's
DynamoDB client raises ProvisionedThroughputExceededException on a few % of its writes, so the
mapping retries and bisects). Hostile records (``--hostile``): ``bomb`` (~1 MB of gzip inflating to
1 GiB of zeros), ``flood`` (66 KB of gzip'd ``{}`` lines), ``garbage`` (random bytes, a broken
gzip), ``range`` (records whose lines carry seq=10**40, time=2**70 or an empty instance id),
``forged`` (a host block claiming an instance no agent owns), ``badlines`` (malformed and
out-of-range lines between the good lines of good batches).

The oracle: every good event, once and in order, through ``Pipeline.default`` with an
``InMemoryState`` (same account and region as the stack). After the stream drains (pollers idle),
each stored finding's ``count`` is compared with the oracle's, which counts each sighting once (an
attack sequence's sightings are its signals, brought again by every batch that repeats them).
Definitions (docs/benchmarks.md):

- events_sent: distinct good events put on the stream (a re-sent or split batch counts once);
- events_applied: the sum of the IngestFunction's ``events`` metric (Powertools EMF, read back from
  the functions' CloudWatch log groups): the events its pipeline normalized and ran detections on;
  a record processed twice counts twice, a record the ingest skips as a replay does not, and
  hostile lines that normalize count too;
- lost: sum over expected findings of max(0, expected - stored) (a missing finding counts fully);
- duplicated: sum over stored findings of max(0, stored - expected) (an unexpected one fully);
- dead_lettered: messages in IngestDeadLetterQueue at the end;
- max_rss_mb: this process's peak RSS (VmHWM): stack, moto and the handler all run in it.

A progress line every ``--every`` seconds; the last line is the contract:
``events_sent=S events_applied=A lost=L duplicated=D dead_lettered=Q max_rss_mb=M``.
Exit status 0 only when lost=0 and duplicated=0. If RSS passes ``--max-rss-mb`` the run stops at
once (a guard for the shared machine) and reports -1 for what it could not measure.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "layers/core", ROOT / "layers/aws"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from cost import CORPUS_BOOT_TIME_NS, build_records  # noqa: E402

from vigil import wire  # noqa: E402

CORPUS = ROOT / "benchmarks" / "corpus" / "benign.ndjson.gz"
SCENARIOS = ROOT / "events" / "agent"
ATTACKS = ("reverse_shell.ndjson", "crypto_dns.ndjson")
HOSTILE = ("bomb", "flood", "garbage", "range", "forged", "badlines")
CHAOS = ("reorder", "split", "resend", "throttle")
RATES = {"process_exec": 200, "net_connect": 500, "dns_query": 100}  # per host per second
PUT_MAX_BYTES = 4 * 1024 * 1024  # under PutRecords' 5 MiB per call
PUT_MAX_RECORDS = 500
DDB_WRITES = ("UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


@dataclass
class Config:
    hosts: int = 4
    seconds: int = 120
    seed: int = 13
    hostile: frozenset[str] = frozenset(HOSTILE)
    chaos: frozenset[str] = frozenset(CHAOS)
    attack_share: float = 0.5  # batches carrying an attack scenario
    reorder_share: float = 0.05
    split_share: float = 0.05
    resend_share: float = 0.05
    throttle_share: float = 0.03  # of the ingest's DynamoDB writes
    badline_share: float = 0.05  # good batches with hostile lines inside
    hostile_every: int = 20  # seconds between two hostile records (each kind in turn)
    drain_timeout: float = 600.0
    max_rss_mb: int = 6144
    every: float = 10.0
    port: int = 0
    stack_parameters: dict[str, str] = field(default_factory=dict)


# --- the simulated agents -------------------------------------------------------------------
def instance_id(rng: random.Random) -> str:
    return "i-" + "".join(rng.choice("0123456789abcdef") for _ in range(17))


@dataclass
class SimAgent:
    host: wire.Host
    seq: int  # the last seq used
    held: list[bytes] = field(default_factory=list)  # a batch held back to be sent after the next

    @property
    def instance_id(self) -> str:
        return str(self.host.instance_id)

    def stamp(self, events: Iterable[wire.WireEvent], start_ns: int, span_ns: int) -> list[wire.WireEvent]:
        """The events as this agent emits them: its seq (monotonic), times spread over the span."""
        evs = list(events)
        step = span_ns // max(1, len(evs))
        out = []
        for i, e in enumerate(evs):
            self.seq += 1
            out.append(msgspec.structs.replace(e, seq=self.seq, time=start_ns + i * step, host=None))
        return out


_SIGNED: dict[str, wire.Host] = {}


def _signed(host: wire.Host) -> wire.Host:
    from local.identity import sign_host

    if host.instance_id not in _SIGNED:
        _SIGNED[host.instance_id] = sign_host(host)
    return _SIGNED[host.instance_id]


def build_batch(
    sender: SimAgent,
    events: Sequence[wire.WireEvent],
    *,
    claimed: wire.Host | None = None,
    extra_lines: Sequence[tuple[int, bytes]] = (),
) -> bytes:
    """THE one place a record is made: gzip NDJSON, the host block in the batch header; the agent's
    own batcher makes it (``cost.build_records``) unless it carries hostile lines or a forged header.

    ``claimed`` is the host block written in the header (a forged one claims another instance;
    default: the sender's own). ``extra_lines`` are raw lines inserted before the event at that
    index (hostile lines between good ones). The header carries the sender's own signed identity
    (the offline stack's test authority, local/identity.py), as the agent's does; a forged header
    claims another instance with it, which is all an attacker on the sender could do.
    """
    own = _signed(sender.host)
    if claimed is None and not extra_lines:
        # as the agent makes it (wire v2: its process table, derived uuids, repeats folded), so the
        # in-order oracle, which sees every event, checks what the ingest makes of those end to end
        records = build_records(own, list(events))
        if len(records) == 1:
            return records[0]
    header = own if claimed is None else msgspec.structs.replace(claimed, identity=own.identity)
    lines = [
        wire.encode_event(msgspec.structs.replace(e, host=header if i == 0 else None))
        for i, e in enumerate(events)
    ]
    for index, raw in sorted(extra_lines, key=lambda x: -x[0]):
        lines.insert(index, raw)
    return gzip.compress(b"\n".join(lines) + b"\n", compresslevel=6)


class Corpus:
    """Benign events by kind (the busy mix is drawn from these) and the attack scenarios."""

    def __init__(self) -> None:
        corpus = wire.decode_record(CORPUS.read_bytes(), max_raw=1 << 30)  # a trusted file, not a record
        events, errors = corpus.events, corpus.errors
        assert not errors, f"{CORPUS}: {errors[:1]}"
        self.pools: dict[str, list[wire.WireEvent]] = {k: [] for k in RATES}
        self.heartbeat: wire.WireEvent | None = None
        # the recording host's boot: agents that carry it leave out the uuids the ingest derives,
        # so the soak checks that derivation end to end (cost.CORPUS_BOOT_TIME_NS)
        self.boot_id = next((e.host.boot_id for e in events if e.host is not None), "")
        for e in events:
            kind = e.__struct_config__.tag
            if kind in self.pools:
                self.pools[str(kind)].append(e)
            elif kind == "heartbeat" and self.heartbeat is None:
                self.heartbeat = e
        self.attacks: list[list[wire.WireEvent]] = []
        for name in ATTACKS:
            evs, errs = wire.decode_batch((SCENARIOS / name).read_bytes())
            assert not errs, f"{name}: {errs[:1]}"
            self.attacks.append([e for e in evs if e.__struct_config__.tag != "heartbeat"])
        self.firing = self._firing(self.attacks[0])

    @staticmethod
    def _firing(events: list[wire.WireEvent]) -> wire.WireEvent:
        """The first event of a scenario that fires a finding on its own."""
        from vigil.pipeline import Pipeline
        from vigil.state import InMemoryState

        pipeline = Pipeline.default()
        host = wire.Host(instance_id="i-00000000000000000")
        for e in events:
            if pipeline.process_events([msgspec.structs.replace(e, host=host)], InMemoryState()).occurrences:
                return e
        raise AssertionError("no event of the scenario fires a finding")

    def busy_second(self, rng: random.Random) -> list[wire.WireEvent]:
        out = [e for kind, n in RATES.items() for e in rng.sample(self.pools[kind], n)]
        rng.shuffle(out)
        return out


# --- hostile records --------------------------------------------------------------------------
def gzip_bomb(inflated: int = 1 << 30) -> bytes:
    """~1 MB of gzip that inflates to ``inflated`` bytes of zeros (built in 16 MiB steps)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(16 << 20)
    parts = [comp.compress(chunk) for _ in range(inflated // len(chunk))]
    parts.append(comp.flush())
    return b"".join(parts)


def empty_object_flood(target: int = 62_000) -> bytes:
    """About 66 KB of gzip'd ``{}`` lines (~23 million lines; ``target`` is where it stops adding)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"{}\n" * (1 << 20)
    parts: list[bytes] = []
    size = 0
    while size < target - 200:
        part = comp.compress(chunk)
        parts.append(part)
        size += len(part)
    parts.append(comp.flush())
    return b"".join(parts)


def out_of_range_lines(template: wire.WireEvent, sender: SimAgent, now_ns: int) -> list[bytes]:
    """Lines whose values no store can take: seq 10**40, time 2**70, an empty instance id. They
    take seqs of their own from the sender (never one of a good event's)."""
    host = sender.host
    sender.seq += 2
    return [
        wire.encode_event(msgspec.structs.replace(template, seq=10**40, time=now_ns, host=host)),
        wire.encode_event(msgspec.structs.replace(template, seq=sender.seq - 1, time=2**70, host=host)),
        wire.encode_event(
            msgspec.structs.replace(
                template, seq=sender.seq, time=now_ns, host=msgspec.structs.replace(host, instance_id="")
            )
        ),
    ]


BAD_LINES = (
    b'{"kind":"process_exec","time":',  # truncated
    b'{"v":1,"kind":"teleport","time":1,"seq":1}',  # unknown kind
    b'{"kind":"net_connect","time":"yesterday","seq":-1}',  # wrong types
    b"\xff\xfe not json at all \x00",
)


# --- throttling -------------------------------------------------------------------------------
class Throttle:
    """A botocore ``before-call`` hook on the ingest's DynamoDB client: a share of its writes fail
    with ProvisionedThroughputExceededException before reaching moto (no SDK retry: the record
    fails, the mapping retries it and bisects the batch). Only calls made on the ingest mapping's
    poller thread are touched, so the harness and PublishFunction are not throttled."""

    def __init__(self, share: float, rng: random.Random, ingest_function: str) -> None:
        self.share = share
        self.rng = rng
        self.thread_name = f"esm-{ingest_function}"
        self.injected = 0
        self.writes = 0

    def install(self) -> None:
        from vigil_aws.clients import client  # the process-wide client every ingest adapter uses

        events = client("dynamodb").meta.events
        for op in DDB_WRITES:
            events.register(f"before-call.dynamodb.{op}", self, unique_id=f"vigil-soak-throttle-{op}")

    def __call__(self, model: Any, **_: Any) -> Any:
        if threading.current_thread().name != self.thread_name:
            return None
        self.writes += 1
        if self.rng.random() >= self.share:
            return None
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        self.injected += 1
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "injected by make soak"}
        return AWSResponse("http://127.0.0.1/", 400, HTTPHeaders(), None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }


# --- memory ---------------------------------------------------------------------------------
class RssSampler(threading.Thread):
    """VmRSS every ``period`` s (and VmHWM, the peak between samples); stops the run past a limit."""

    def __init__(self, limit_mb: int, on_limit: Callable[[float], None], period: float = 1.0) -> None:
        super().__init__(name="soak-rss", daemon=True)
        self.limit_mb = limit_mb
        self.on_limit = on_limit
        self.period = period
        self.samples: list[tuple[float, float]] = []  # (monotonic s, rss MiB)
        self.stop = threading.Event()

    @staticmethod
    def status(key: str) -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def run(self) -> None:
        while not self.stop.wait(self.period):
            rss = self.status("VmRSS")
            self.samples.append((time.monotonic(), rss))
            if rss > self.limit_mb:
                self.on_limit(rss)
                return

    def window(self, start: float, end: float) -> list[float]:
        return [r for t, r in self.samples if start <= t <= end]


# --- the run --------------------------------------------------------------------------------
@dataclass
class Tally:
    events_sent: int = 0
    batches: int = 0
    records_put: int = 0
    bytes_put: int = 0
    chaos: Counter[str] = field(default_factory=Counter)
    hostile: Counter[str] = field(default_factory=Counter)


class Soak:
    def __init__(self, cfg: Config, say: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.say = say
        self.rng = random.Random(cfg.seed)
        self.tally = Tally()
        self.expected: Counter[str] = Counter()
        self.seen: defaultdict[str, set[tuple[int, int]]] = defaultdict(set)  # sightings counted
        self.expected_instance: dict[str, str] = {}
        self.expected_type: dict[str, str] = {}
        self.corpus = Corpus()
        self.stack: Any = None
        self.stream = ""
        self.throttle: Throttle | None = None
        self.rss = RssSampler(cfg.max_rss_mb, self._abort)
        self.t0 = time.monotonic()
        self.traffic_end = 0.0

    # -- setup ----------------------------------------------------------------------------
    def _agents(self) -> list[SimAgent]:
        floor = time.time_ns() // 1000  # the agent's seq floor: the wall clock in microseconds
        ids = {instance_id(self.rng) for _ in range(self.cfg.hosts)}
        return [
            SimAgent(
                wire.Host(
                    instance_id=i,
                    account_id=self.stack.info.account_id,
                    region=self.stack.region,
                    hostname=f"ip-10-0-{n}-{n + 10}.ec2.internal",
                    boot_id=self.corpus.boot_id,
                    boot_time=CORPUS_BOOT_TIME_NS,
                    agent_version="0.1.0",
                    instance_type="m7i.large",
                    image_id="ami-0123456789abcdef0",
                    vcpus=2,
                ),
                seq=floor + n * 10**9,
            )
            for n, i in enumerate(sorted(ids))
        ]

    def _oracle(self) -> Any:
        from vigil.pipeline import Pipeline
        from vigil.state import InMemoryState

        info = self.stack.info
        self.pipeline = Pipeline.default(account_id=info.account_id, region=self.stack.region)
        self.state = InMemoryState()

    def expect(self, events: list[wire.WireEvent], host: wire.Host) -> None:
        result = self.pipeline.process_events(
            [msgspec.structs.replace(e, host=host if i == 0 else None) for i, e in enumerate(events)],
            self.state,
        )
        self.state.commit()
        assert not result.rejected, f"the oracle rejected a good event: {result.rejected[:1]}"
        for o in result.occurrences:
            # a finding counts each sighting once (the findings store's rule): an attack sequence
            # brings its signals' sightings again with every batch that repeats them (vigil.sequences)
            fresh = [x for x in o.sightings if x not in self.seen[o.id]] if o.sightings else None
            if fresh is None:
                self.expected[o.id] += o.count
            else:
                self.seen[o.id].update(fresh)
                self.expected[o.id] += len(fresh)
            self.expected_instance[o.id] = host.instance_id
            self.expected_type[o.id] = o.finding["type"]
        self.tally.events_sent += len(events)

    # -- traffic --------------------------------------------------------------------------
    def batch_events(self, agent: SimAgent, second: int, start_ns: int) -> list[wire.WireEvent]:
        events = self.corpus.busy_second(self.rng)
        if second % 60 == 0 and self.corpus.heartbeat is not None:
            events.insert(0, self.corpus.heartbeat)
        if self.rng.random() < self.cfg.attack_share:
            at = self.rng.randrange(len(events))
            events[at:at] = self.rng.choice(self.corpus.attacks)
        return agent.stamp(events, start_ns, 10**9)

    def records_for(
        self, agent: SimAgent, second: int, later: dict[int, list[tuple[str, bytes]]]
    ) -> list[bytes]:
        """The good batch of this second (oracle first), shaped by the chaos; in put order."""
        start_ns = time.time_ns()
        events = self.batch_events(agent, second, start_ns)
        self.expect(events, agent.host)
        self.tally.batches += 1
        chaos, rng = self.cfg.chaos, self.rng
        extra: list[tuple[int, bytes]] = []
        if "badlines" in self.cfg.hostile and rng.random() < self.cfg.badline_share:
            bad = [*BAD_LINES, *out_of_range_lines(events[0], agent, start_ns)[:2]]
            extra = [(rng.randrange(1, len(events)), line) for line in bad]
            self.tally.hostile["badlines"] += len(bad)
        if "split" in chaos and rng.random() < self.cfg.split_share and not extra:
            half = len(events) // 2
            self.tally.chaos["split"] += 1
            return [
                build_batch(agent, events[half:]),
                build_batch(agent, events[:half]),
                *self._release(agent),
            ]
        record = build_batch(agent, events, extra_lines=extra)
        if "resend" in chaos and rng.random() < self.cfg.resend_share:
            self.tally.chaos["resend"] += 1
            later.setdefault(second + rng.randint(1, 3), []).append((agent.instance_id, record))
        if "reorder" in chaos and not agent.held and rng.random() < self.cfg.reorder_share:
            self.tally.chaos["reorder"] += 1
            agent.held.append(record)  # goes out after the next batch of this agent
            return []
        return [record, *self._release(agent)]

    @staticmethod
    def _release(agent: SimAgent) -> list[bytes]:
        held, agent.held = agent.held, []
        return held

    def hostile_records(self, agents: list[SimAgent], kind: str) -> list[tuple[str, bytes]]:
        sender = self.rng.choice(agents)
        now = time.time_ns()
        template = self.corpus.firing  # an attack event: a finding if accepted
        if kind == "bomb":
            data = self._cached("bomb", gzip_bomb)
        elif kind == "flood":
            data = self._cached("flood", empty_object_flood)
        elif kind == "garbage":
            data = (
                bytes(self.rng.getrandbits(8) for _ in range(4096))
                if self.rng.random() < 0.5
                else wire.GZIP_MAGIC + bytes(self.rng.getrandbits(8) for _ in range(4096))
            )
        elif kind == "range":  # one record per value: each must be refused on its own
            records = [
                (sender.instance_id, gzip.compress(line + b"\n"))
                for line in out_of_range_lines(template, sender, now)
            ]
            self.tally.hostile[kind] += len(records)
            return records
        elif kind == "forged":
            victim = msgspec.structs.replace(sender.host, instance_id=instance_id(self.rng))
            self.forged_ids.add(victim.instance_id)
            events = sender.stamp(self.corpus.attacks[0], now, 10**6)
            data = build_batch(sender, events, claimed=victim)
        else:
            raise ValueError(kind)
        self.tally.hostile[kind] += 1
        return [(sender.instance_id, data)]

    def _cached(self, name: str, make: Callable[[], bytes]) -> bytes:
        if name not in self._hostile_cache:
            self._hostile_cache[name] = make()
        return self._hostile_cache[name]

    def put(self, records: list[tuple[str, bytes]]) -> None:
        kinesis = self.kinesis
        chunk: list[dict[str, Any]] = []
        size = 0

        def flush() -> None:
            nonlocal chunk, size
            pending = chunk
            while pending:
                out = kinesis.put_records(StreamName=self.stream, Records=pending)
                if not out.get("FailedRecordCount"):
                    break
                pending = [r for r, res in zip(pending, out["Records"], strict=True) if res.get("ErrorCode")]
                time.sleep(0.2)
            chunk, size = [], 0

        for key, data in records:
            if chunk and (size + len(data) > PUT_MAX_BYTES or len(chunk) >= PUT_MAX_RECORDS):
                flush()
            chunk.append({"PartitionKey": key, "Data": data})
            size += len(data) + len(key)
            self.tally.records_put += 1
            self.tally.bytes_put += len(data)
        flush()

    # -- observing ------------------------------------------------------------------------
    def progress(self, phase: str) -> None:
        t = self.tally
        rss = self.rss.samples[-1][1] if self.rss.samples else RssSampler.status("VmRSS")
        delivered = sum(p.stats.records for p in self.stack.pollers.pollers if p.kind == "kinesis")
        retries = sum(
            p.stats.retries + p.stats.bisections for p in self.stack.pollers.pollers if p.kind == "kinesis"
        )
        failed = sum(p.stats.sent_to_on_failure for p in self.stack.pollers.pollers if p.kind == "kinesis")
        throttled = self.throttle.injected if self.throttle else 0
        self.say(
            f"[{time.monotonic() - self.t0:6.1f}s {phase}] batches={t.batches} records_put={t.records_put} "
            f"({t.bytes_put / 1e6:.1f} MB) events_sent={t.events_sent} records_delivered={delivered} "
            f"retries+bisections={retries} on_failure={failed} throttled={throttled} rss_mb={rss:.0f}"
        )

    def _abort(self, rss: float) -> None:
        self.say(
            f"ABORTED: RSS {rss:.0f} MB passed --max-rss-mb {self.cfg.max_rss_mb} (hostile: {sorted(self.cfg.hostile)})"
        )
        self.say(Result(self.tally.events_sent, -1, -1, -1, -1, RssSampler.status("VmHWM")).line())
        sys.stdout.flush()
        os._exit(2)

    def stored(self) -> tuple[Counter[str], dict[str, str]]:
        ddb = self.stack.client("dynamodb")
        counts: Counter[str] = Counter()
        owner: dict[str, str] = {}
        for page in ddb.get_paginator("scan").paginate(
            TableName=self.outputs["FindingsTableName"], ConsistentRead=True
        ):
            for item in page["Items"]:
                if "count" not in item:  # moto shows a new item's bare key for a moment
                    continue
                counts[item["id"]["S"]] = int(item["count"]["N"])
                owner[item["id"]["S"]] = item.get("instanceId", {}).get("S", "")
        return counts, owner

    def function_metrics(self) -> Counter[str]:
        """The functions' Powertools metrics (EMF lines in their CloudWatch log groups), summed.

        Every function's log group is read: Powertools keeps metrics in one store per process and
        the offline stack runs all functions in one, so a flush can carry another function's
        metrics (only IngestFunction emits ``events``)."""
        logs = self.stack.client("logs")
        totals: Counter[str] = Counter()
        for fn in self.stack.client("lambda").list_functions()["Functions"]:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=f"/aws/lambda/{fn['FunctionName']}"
            )
            try:
                events = [e for page in pages for e in page["events"]]
            except logs.exceptions.ResourceNotFoundException:
                continue  # never invoked
            for event in events:
                msg = event["message"]
                if '"_aws"' not in msg:
                    continue
                try:
                    doc = json.loads(msg)
                    names = [m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
                except (ValueError, KeyError, IndexError, TypeError):
                    continue
                for name in names:
                    value = doc.get(name)
                    totals[name] += int(sum(value) if isinstance(value, list) else value or 0)
        return totals

    def dead_letters(self) -> int:
        sqs = self.stack.client("sqs")
        attrs = sqs.get_queue_attributes(
            QueueUrl=self.outputs["IngestDeadLetterQueueUrl"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    # -- main loop ------------------------------------------------------------------------
    def run(self) -> Result:
        from local.stack import LocalStack, free_port

        cfg = self.cfg
        self.forged_ids: set[str] = set()
        self._hostile_cache: dict[str, bytes] = {}
        self.say(
            f"soak: {cfg.hosts} hosts x {cfg.seconds} s at {sum(RATES.values())} events/s each; "
            f"chaos {','.join(sorted(cfg.chaos)) or 'none'}; hostile {','.join(sorted(cfg.hostile)) or 'none'}; seed {cfg.seed}"
        )
        self.stack = LocalStack(
            port=cfg.port or free_port(),
            stack_name="vigil-soak",
            parameters=cfg.stack_parameters,
            state_file=None,
        )
        self.rss.start()
        from vigil_aws import clients

        # The handlers' process-wide clients must point at this stack (not one started before in
        # this process), and the throttled one must not outlive the run.
        clients.reset()
        try:
            with self.stack:
                return self._run_on_stack()
        finally:
            clients.reset()
            self.rss.stop.set()

    def _run_on_stack(self) -> Result:
        cfg = self.cfg
        self.outputs = self.stack.info.outputs
        self.stream = self.outputs["TelemetryStreamName"]
        self.kinesis = self.stack.client("kinesis")
        self.say(
            f"offline stack up in {self.stack.info.timings['total_s']:.1f} s at {self.stack.endpoint_url}"
        )
        if "throttle" in cfg.chaos:
            fns = [f["FunctionName"] for f in self.stack.client("lambda").list_functions()["Functions"]]
            self.throttle = Throttle(
                cfg.throttle_share,
                random.Random(cfg.seed + 1),
                next(n for n in fns if "-IngestFunction-" in n),
            )
            self.throttle.install()
        self._oracle()
        agents = self._agents()
        self.say("agents: " + " ".join(a.instance_id for a in agents))
        for kind in ("bomb", "flood"):  # built before the clock starts (seconds of CPU)
            if kind in cfg.hostile:
                self._cached(kind, gzip_bomb if kind == "bomb" else empty_object_flood)
        self.traffic(agents)
        return self.finish(agents)

    def traffic(self, agents: list[SimAgent]) -> None:
        cfg = self.cfg
        later: dict[int, list[tuple[str, bytes]]] = {}
        hostile_kinds = [k for k in HOSTILE if k in cfg.hostile and k != "badlines"]
        start = time.monotonic()
        next_progress = start + cfg.every
        self.traffic_start = start
        for second in range(cfg.seconds):
            due = start + second
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            records: list[tuple[str, bytes]] = []
            for agent in agents:
                records += [(agent.instance_id, r) for r in self.records_for(agent, second, later)]
            records += later.pop(second, [])
            if hostile_kinds and second % cfg.hostile_every == cfg.hostile_every // 2:
                kind = hostile_kinds[(second // cfg.hostile_every) % len(hostile_kinds)]
                at = self.rng.randrange(len(records) + 1)
                records[at:at] = self.hostile_records(agents, kind)
            self.put(records)
            self.stack.pollers.check()
            if time.monotonic() >= next_progress:
                self.progress("traffic")
                next_progress += cfg.every
        leftovers = [(a.instance_id, r) for a in agents for r in self._release(a)]
        leftovers += [r for s in sorted(later) for r in later[s]]
        self.put(leftovers)
        self.traffic_end = time.monotonic()
        lag = self.traffic_end - start - cfg.seconds
        self.say(
            f"traffic done ({cfg.seconds} s of batches; the generator fell behind by {max(0.0, lag):.1f} s)"
        )

    def finish(self, agents: list[SimAgent]) -> Result:
        cfg = self.cfg
        deadline = time.monotonic() + cfg.drain_timeout
        idle = False
        while not idle and time.monotonic() < deadline:
            idle = self.stack.pollers.wait_idle(timeout=min(cfg.every, max(0.1, deadline - time.monotonic())))
            self.progress("drain" if not idle else "idle")
        if not idle:
            self.say(f"WARNING: the pollers were still busy after --drain-timeout {cfg.drain_timeout:.0f} s")
        drained = time.monotonic()
        stored_all, owner = self.stored()
        owned = {a.instance_id for a in agents}
        foreign = {i: n for i, n in stored_all.items() if owner.get(i) not in owned}
        stored = Counter({i: n for i, n in stored_all.items() if i not in foreign})
        ids = set(stored) | set(self.expected)
        t = self.tally
        metrics = self.function_metrics()
        result = Result(
            events_sent=t.events_sent,
            events_applied=int(metrics.get("events", -1)),
            lost=sum(max(0, self.expected[i] - stored[i]) for i in ids),
            duplicated=sum(max(0, stored[i] - self.expected[i]) for i in ids),
            dead_lettered=self.dead_letters(),
            max_rss_mb=RssSampler.status("VmHWM"),
            expected_occurrences=sum(self.expected.values()),
            foreign_findings=len(foreign),
            chaos=t.chaos,
            hostile=t.hostile,
            throttled=self.throttle.injected if self.throttle else 0,
            metrics=metrics,
        )
        missing = [i for i in self.expected if i not in stored]
        short = sum(1 for i in self.expected if 0 < stored[i] < self.expected[i])
        self.say(
            f"oracle: {len(self.expected)} findings, {result.expected_occurrences} occurrences; stored "
            f"{len(stored)} findings, {sum(stored.values())} occurrences (on the agents' instances); "
            f"{len(missing)} expected findings missing, {short} counted short, "
            f"{sum(1 for i in stored if stored[i] > self.expected[i])} counted over"
        )
        for i in sorted(i for i in ids if stored[i] != self.expected[i])[:10]:  # which, when any
            self.say(
                f"  {'short' if stored[i] < self.expected[i] else 'over'}: "
                f"{self.expected_type.get(i, '(not expected)')} {i}: expected {self.expected[i]}, stored {stored[i]}"
            )
        self.say(
            f"forged: {len(foreign)} findings ({sum(foreign.values())} occurrences) attributed to instances no "
            f"simulated agent owns (forged records sent: {t.hostile['forged']}; goal 0 findings)"
        )
        self.say(
            "delivery: "
            + (" ".join(f"{k}={v}" for k, v in sorted(t.chaos.items())) or "in order")
            + (f" throttled_writes={self.throttle.injected}/{self.throttle.writes}" if self.throttle else "")
            + "; hostile: "
            + (" ".join(f"{k}={v}" for k, v in sorted(t.hostile.items())) or "none")
        )
        self.say("function metrics: " + " ".join(f"{k}={v}" for k, v in sorted(metrics.items())))
        traffic = self.rss.window(self.traffic_start, self.traffic_end)
        if traffic:
            q = max(1, len(traffic) // 4)
            self.say(
                f"memory: rss_mb first-quarter median {_median(traffic[:q]):.0f}, last-quarter median "
                f"{_median(traffic[-q:]):.0f}, max during traffic {max(traffic):.0f}, after drain "
                f"{RssSampler.status('VmRSS'):.0f}, peak {result.max_rss_mb:.0f} (moto holds the stream: "
                f"{t.bytes_put / 1e6:.0f} MB put); drain took {drained - self.traffic_end:.1f} s"
            )
        self.rss.stop.set()
        return result


@dataclass
class Result:
    events_sent: int
    events_applied: int
    lost: int
    duplicated: int
    dead_lettered: int
    max_rss_mb: float
    expected_occurrences: int = 0
    foreign_findings: int = 0
    chaos: Counter[str] = field(default_factory=Counter)
    hostile: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    metrics: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        return (
            f"events_sent={self.events_sent} events_applied={self.events_applied} lost={self.lost} "
            f"duplicated={self.duplicated} dead_lettered={self.dead_lettered} max_rss_mb={self.max_rss_mb:.0f}"
        )


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2]


def _choice(value: str, allowed: Sequence[str], flag: str) -> frozenset[str]:
    """``all``, ``none``, a list, or ``all,-x`` (everything but x)."""
    chosen: set[str] = set()
    for part in filter(None, (p.strip() for p in value.split(","))):
        if part == "all":
            chosen |= set(allowed)
        elif part == "none":
            continue
        elif part.startswith("-") and part[1:] in allowed:
            chosen.discard(part[1:])
        elif part in allowed:
            chosen.add(part)
        else:
            raise SystemExit(
                f"{flag}: unknown {part!r} (choose from all, none, {', '.join(allowed)}, or -name)"
            )
    return frozenset(chosen)


def parse_args(argv: Sequence[str] | None = None) -> Config:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="benchmarks/soak.py", description=__doc__.split("\n")[0])
    p.add_argument(
        "--hosts", type=int, default=int(env("SOAK_HOSTS", "4")), help="simulated agents (env SOAK_HOSTS)"
    )
    p.add_argument(
        "--seconds",
        type=int,
        default=int(env("SOAK_SECONDS", "120")),
        help="seconds of traffic (env SOAK_SECONDS)",
    )
    p.add_argument(
        "--hostile",
        default=env("SOAK_HOSTILE", "all"),
        help=f"all, none or a list of {','.join(HOSTILE)}; -x drops x (env SOAK_HOSTILE)",
    )
    p.add_argument(
        "--chaos",
        default=env("SOAK_CHAOS", "all"),
        help=f"all, none or a list of {','.join(CHAOS)} (env SOAK_CHAOS)",
    )
    p.add_argument("--seed", type=int, default=int(env("SOAK_SEED", "13")))
    p.add_argument(
        "--throttle-share", type=float, default=0.03, help="share of the ingest's DynamoDB writes throttled"
    )
    p.add_argument(
        "--max-rss-mb",
        type=int,
        default=int(env("SOAK_MAX_RSS_MB", "6144")),
        help="stop the run past this RSS",
    )
    p.add_argument(
        "--drain-timeout", type=float, default=600.0, help="seconds to wait for the pollers after the traffic"
    )
    p.add_argument("--every", type=float, default=10.0, help="seconds between progress lines")
    p.add_argument("--port", type=int, default=0, help="moto port (default: a free one)")
    a = p.parse_args(argv)
    return Config(
        hosts=a.hosts, seconds=a.seconds, seed=a.seed, hostile=_choice(a.hostile, HOSTILE, "--hostile"),
        chaos=_choice(a.chaos, CHAOS, "--chaos"), throttle_share=a.throttle_share, max_rss_mb=a.max_rss_mb,
        drain_timeout=a.drain_timeout, every=a.every, port=a.port,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    result = Soak(cfg, say).run()
    say(result.line())
    return 0 if result.lost == 0 and result.duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
