"""`make bench-cost`: what the stack costs per monitored vCPU-month, counted on the real ingest path.

Starts the offline stack (moto on loopback, template.yaml deployed by CloudFormation, the real
handlers invoked in-process by local/pollers.py), simulates a fleet of 2-vCPU hosts whose events
are drawn from the recorded benign corpus (so gzip sees real data), batches them as the agent does
(its Batcher with its settings on a simulated clock: a gzip NDJSON record per host when its batch
is due, a heartbeat every 60 s, seq monotonic per host), puts them on the stream as fast as the
stack takes them, and counts every billed AWS unit: Kinesis records and bytes (at the producer),
Lambda invocations, wall time and log bytes (around the in-process runtime), DynamoDB units,
EventBridge entries and SQS requests (botocore hooks on the clients the handlers use,
vigil_aws.clients). benchmarks/cost_model.py prices them.

Two scenarios price a benign fleet: quiet (10 events/s per vCPU, the corpus's own mix) and busy
(the bench-agent mix: 200 exec/s + 500 connects/s + 100 DNS/s per host), both without the agent
tests' simulated attacks recorded in the corpus (``TEST_MARKERS``). A third, attacked, replays the
busy mix with them on one host and prices a finding. The last line is a contract:
``usd_per_vcpu_month_quiet=X usd_per_vcpu_month_busy=Y guardduty_usd_per_vcpu_month=1.50 ratio_quiet=G/X``.

    python benchmarks/cost.py [--quiet-hosts 30] [--busy-hosts 3] [--attacked-hosts 1] [--seconds 60]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import logging
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "layers" / "core", ROOT / "layers" / "aws", ROOT / "agent", Path(__file__).parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import msgspec  # noqa: E402
from cost_model import (  # noqa: E402
    FunctionUse,
    Measured,
    billed_duration_ms,
    ddb_read_units,
    ddb_write_units,
    eventbridge_events,
    fixed_per_month,
    item_size,
    json_default,
    kinesis_put_units,
    load_prices,
    price_per_vcpu_month,
    sqs_requests,
)

from vigil import wire  # noqa: E402
from vigil.usage import guardduty_monthly_usd  # noqa: E402

CORPUS = Path(__file__).parent / "corpus" / "benign.ndjson.gz"
USAGE_MODEL = ROOT / "cli" / "vigil_cli" / "usage_model.json"
T0_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z: simulated time starts here (reproducible)
VCPUS = 2
QUIET_EVENTS_PER_VCPU_S = 10
BUSY_MIX = {"process_exec": 200, "connect": 500, "dns_query": 100}  # per host per second (bench-agent)
HEARTBEAT_S = 60  # agent.heartbeat_s
# The recording host's boot (/proc/stat btime, whole seconds): the corpus predates Host.boot_time,
# and its process uuids derive from its boot id and this time (wire.derived_uid: 92 % of them; the
# rest are processes the agent saw only by audit, whose uuids are always sent). Simulated hosts
# carry that boot, so their batches leave out the uuids the ingest derives, as the agent's do.
CORPUS_BOOT_TIME_NS = 1_795_816_816 * 10**9
SHARD_BYTES_PER_S = 1024 * 1024  # a full shard's write rate: the model prorates shards to it


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the fleet ----------------------------------------------------------------------------------
# The agent's kernel tests (tests/agent) mark every command they run: the corpus was recorded while
# they ran, so it holds their simulated attacks (a reverse shell on a loopback socket, a memfd exec,
# a setuid), its two intended findings (docs/detection-quality.md). They are not benign telemetry.
TEST_MARKERS = ("vigil-marker-", "vigil-memfd-test")


def agent_test_event(e: wire.WireEvent) -> bool:
    """Whether ``e`` is an agent test's own activity: its process or one of its ancestors carries a
    test marker in its command line or executable."""
    p = getattr(e, "process", None)
    if p is None:
        return False
    return any(m in q.cmd_line or m in q.file.path for q in (p, *p.lineage) for m in TEST_MARKERS)


def _pools(events: list[wire.WireEvent]) -> dict[str, list[wire.WireEvent]]:
    return {
        "process_exec": [e for e in events if isinstance(e, wire.ProcessExec)],
        "connect": [e for e in events if isinstance(e, wire.NetConnect | wire.NetAccept)],
        "dns_query": [e for e in events if isinstance(e, wire.DnsQuery)],
    }


class Corpus:
    """The benign corpus, decoded, by kind (host blocks removed: the batcher writes its own).

    The fleet replays it without the agent tests' simulated attacks (``TEST_MARKERS``): a busy host
    goes through the corpus's 32k execs every ~160 s, so keeping them put a reverse shell, a memfd
    exec and an attack sequence on every busy host every 2.7 minutes (docs/cost.md, sixth pass).
    ``recorded()`` is the corpus as it was recorded, attacks included (the ``attacked`` scenario)."""

    def __init__(self, path: Path = CORPUS) -> None:
        recorded: list[wire.WireEvent] = []
        self.boot_id = ""  # the recording host's (its first host block)
        heartbeat: wire.Heartbeat | None = None
        with gzip.open(path, "rb") as f:
            for line in f:
                e = wire.decode_line(line)
                if e.host is not None and not self.boot_id:
                    self.boot_id = e.host.boot_id
                if isinstance(e, wire.Heartbeat):
                    heartbeat = heartbeat or e
                    continue
                recorded.append(msgspec.structs.replace(e, host=None))
        if heartbeat is None:
            raise SystemExit(f"{path}: no heartbeat to shape simulated heartbeats on")
        self.heartbeat = heartbeat
        self._recorded = recorded
        self.tests: list[wire.WireEvent] = []
        self.all: list[wire.WireEvent] = []
        for e in recorded:
            (self.tests if agent_test_event(e) else self.all).append(e)
        self.by_kind = _pools(self.all)

    def recorded(self) -> Corpus:
        """The same corpus with the agent tests' events left in, in their recorded places."""
        c = copy.copy(self)
        c.all, c.tests = self._recorded, []
        c.by_kind = _pools(c.all)
        return c


def host_speed(events: int = 20_000, repeats: int = 3) -> float:
    """json.loads events/s on this core over `make bench`'s workload (its first ``events``; best of
    ``repeats``): the figure `make bench` prints as ``json_loads_events_per_s``, so a run's
    CPU-derived Lambda cost can be set against runs on other machines (docs/cost.md "Lambda CPU")."""
    from workload import batches, generate

    lines = [line for r in batches(generate(events)) for line in r.split(b"\n") if line]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for line in lines:
            json.loads(line)
        best = min(best, time.perf_counter() - t0)
    return len(lines) / best


_SIGNED: dict[str, wire.Host] = {}


def _signed(host: wire.Host) -> wire.Host:
    """The host block with the instance's identity, signed by the offline stack's test authority
    (local/identity.py), as the agent's carries it (+~0.8 KiB of gzip per record, counted)."""
    from local.identity import sign_host

    if host.identity is not None:
        return host
    if host.instance_id not in _SIGNED:
        _SIGNED[host.instance_id] = sign_host(host)
    return _SIGNED[host.instance_id]


class _Payloads:
    """A Batcher's sink that keeps what it would send."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def submit(self, batch: Any, lines: list[bytes], hold_s: float = 0.0) -> None:
        self.out.append(batch.payload)

    def close(self, timeout: float) -> None:
        pass


def _batcher(host: wire.Host, sink: _Payloads, clock: Callable[[], float], **over: float) -> Any:
    """vigil_agent.ship.Batcher with the agent's defaults (AgentConfig: gzip level 1, 960 KiB per
    record, 8 MiB of NDJSON, flush_s, stretch_s), ``over`` overriding flush_s / stretch_s."""
    from vigil_agent.config import AgentConfig
    from vigil_agent.ship import Batcher

    cfg = AgentConfig()
    return Batcher(
        sink, _signed(host), flush_s=over.get("flush_s", cfg.flush_s),
        stretch_s=over.get("stretch_s", cfg.stretch_s), max_bytes=cfg.batch_max_bytes,
        max_raw=cfg.batch_max_raw_mb << 20, gzip_level=cfg.gzip_level, clock=clock,
    )  # fmt: skip


def build_records(host: wire.Host, events: list[wire.WireEvent]) -> list[bytes]:
    """A host's events -> the Kinesis record payloads of one batch (more when full), exactly as the
    agent builds them (``_batcher``; the host block on the first event, with its identity)."""
    sink = _Payloads()
    batcher = _batcher(host, sink, lambda: 0.0)
    for e in events:
        batcher.add(e)
    batcher.seal()
    return sink.out


class SimAgent:
    """One simulated host's agent over time: its events go through one Batcher on a simulated
    clock, so its records leave when the agent's would (``flush_s``, ``stretch_s``, full). The
    agent's loop wakes when its batch is due (``Batcher.due_in``), so the clock is looked at before
    each event and at the end of each simulated second."""

    def __init__(self, host: wire.Host, **over: float) -> None:
        self.now = 0.0
        self.sink = _Payloads()
        self.batcher = _batcher(host, self.sink, lambda: self.now, **over)

    def _at(self, t: float) -> None:
        self.now = t
        if self.batcher.due():
            self.batcher.seal()

    def second(self, s: int, events: list[wire.WireEvent]) -> list[bytes]:
        """The record payloads that leave during simulated second ``s`` given its ``events``."""
        for e in events:
            self._at(e.time / 1e9)
            self.batcher.add(e)
        self._at((T0_NS + (s + 1) * 10**9) / 1e9)
        out, self.sink.out = self.sink.out, []
        return out


@dataclass
class SimHost:
    host: wire.Host
    rng: random.Random
    cursors: dict[str, int]
    seq: int = 0
    captured: int = 0

    def second(self, corpus: Corpus, s: int, mix: dict[str, int] | None) -> list[wire.WireEvent]:
        """The host's events of simulated second ``s`` (times inside it, seqs monotonic)."""
        picked: list[wire.WireEvent] = []
        if mix is None:  # quiet: the corpus's own sequence and mix
            n = QUIET_EVENTS_PER_VCPU_S * self.host.vcpus
            i = self.cursors["all"]
            picked = [corpus.all[(i + k) % len(corpus.all)] for k in range(n)]
            self.cursors["all"] = i + n
        else:
            for kind, n in mix.items():
                pool, i = corpus.by_kind[kind], self.cursors[kind]
                picked.extend(pool[(i + k) % len(pool)] for k in range(n))
                self.cursors[kind] = i + n
        offsets = sorted(self.rng.randrange(10**9) for _ in picked)
        self.rng.shuffle(picked)
        base = T0_NS + s * 10**9
        events: list[wire.WireEvent] = []
        if s % HEARTBEAT_S == 0:
            self.seq += 1
            hb = corpus.heartbeat
            events.append(
                msgspec.structs.replace(
                    hb,
                    time=base,
                    seq=self.seq,
                    host=None,
                    vcpus=self.host.vcpus,
                    counters=wire.Counters(captured=self.captured, sent=self.captured),
                )
            )
        for e, off in zip(picked, offsets, strict=True):
            self.seq += 1
            events.append(msgspec.structs.replace(e, time=base + off, seq=self.seq))
        self.captured += len(picked)
        return events


def fleet(prefix: str, n: int, corpus: Corpus, seed: int) -> list[SimHost]:
    rng = random.Random(seed)
    hosts = []
    for i in range(n):
        host = wire.Host(
            instance_id=f"i-{prefix}{i:015x}", account_id="123456789012", region="us-east-1",
            hostname=f"ip-10-0-{i // 250}-{i % 250}.ec2.internal", boot_id=corpus.boot_id,
            boot_time=CORPUS_BOOT_TIME_NS, agent_version="0.1.0", instance_type="m7i.large", vcpus=VCPUS,
        )  # fmt: skip
        cursors = {k: rng.randrange(len(v)) for k, v in corpus.by_kind.items()}
        cursors["all"] = rng.randrange(len(corpus.all))
        hosts.append(SimHost(host, random.Random(rng.getrandbits(64)), cursors))
    return hosts


# -- counting -----------------------------------------------------------------------------------
class Meter:
    """Counts billed units at the handlers' boto3 clients (botocore hooks) and around the runtime.

    DynamoDB: moto answers ReturnConsumedCapacity with a constant (1.0 per call, whatever the
    size), so units are computed here from item sizes: the item before a write and after it is
    read from the emulated table (moto runs in this process), its GSI entries from the table's
    index definitions."""

    def __init__(self, account_id: str, region: str, lambda_model: dict[str, Any]) -> None:
        self.account_id = account_id
        self.region = region
        self.lambda_model = lambda_model
        self.lock = threading.Lock()
        self._thread = threading.local()  # AWS calls made by the handler running on this thread
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.wcu = 0.0
            self.rcu = 0.0
            self.wcu_by_table: Counter[str] = Counter()
            self.calls: Counter[str] = Counter()
            self.eventbridge = 0
            self.sqs = 0
            self.functions: dict[str, FunctionUse] = {}
            self.metric_names: set[str] = set()
            self.findings_applied = 0  # finding occurrences the ingest stored (its EMF metric)

    # botocore hooks
    def install(self, events: Any) -> None:
        events.register("before-call", self._any_call)
        events.register("before-parameter-build.dynamodb", self._ddb_before)
        events.register("after-call.dynamodb", self._ddb_after)
        events.register("before-parameter-build.events.PutEvents", self._put_events)
        events.register("before-parameter-build.sqs", self._sqs)

    def _any_call(self, **_: Any) -> None:
        self._thread.calls = getattr(self._thread, "calls", 0) + 1

    def _table(self, name: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self.account_id][self.region].get_table(name)

    def _current(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        from moto.dynamodb.models import dynamodb_backends

        try:
            item = dynamodb_backends[self.account_id][self.region].get_item(table, key)
        except Exception:
            return None
        return (
            None
            if item is None
            else json.loads(json.dumps(item.to_json()["Attributes"], default=json_default))
        )

    def _key(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        t = self._table(table)
        names = [t.hash_key_attr] + ([t.range_key_attr] if t.range_key_attr else [])
        return {n: item[n] for n in names if n in item}

    def _writes(self, context: dict[str, Any]) -> list[Any]:
        """(table, key, factor, item before) per item the call writes, kept in the request context."""
        return context.setdefault("vigil_cost_writes", [])  # type: ignore[no-any-return]

    def _ddb_before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        op = model.name
        writes = self._writes(context)
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            key = params["Key"] if "Key" in params else self._key(params["TableName"], params["Item"])
            writes.append((params["TableName"], key, 1, self._current(params["TableName"], key)))
        elif op == "BatchWriteItem":
            for table, reqs in params.get("RequestItems", {}).items():
                for r in reqs:
                    body = r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get("Key") or {}
                    key = self._key(table, body)
                    writes.append((table, key, 1, self._current(table, key)))
        elif op == "TransactWriteItems":
            for t in params.get("TransactItems", []):
                (kind, body), *_ = t.items()
                if kind == "ConditionCheck":  # a check alone: 1 WCU-equivalent read of the item
                    continue
                table = body["TableName"]
                key = body["Key"] if "Key" in body else self._key(table, body["Item"])
                writes.append((table, key, 2, self._current(table, key)))

    def _ddb_after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        op = model.name
        params = context.get("vigil_cost_params") or {}
        wcu = rcu = 0.0
        by_table: Counter[str] = Counter()
        for table, key, factor, before in self._writes(context):
            after = self._current(table, key)
            units = factor * (
                ddb_write_units(max(item_size(before), item_size(after))) + self._gsi(table, before, after)
            )
            wcu += units
            by_table[table] += units
        if op == "GetItem":
            rcu += ddb_read_units(item_size(parsed.get("Item")), bool(params.get("ConsistentRead")))
        elif op == "BatchGetItem":
            for items in (parsed.get("Responses") or {}).values():
                rcu += sum(ddb_read_units(item_size(i)) for i in items)
            requested = sum(len(r.get("Keys", [])) for r in (params.get("RequestItems") or {}).values())
            found = sum(len(v) for v in (parsed.get("Responses") or {}).values())
            unprocessed = sum(len(r.get("Keys", [])) for r in (parsed.get("UnprocessedKeys") or {}).values())
            rcu += max(0, requested - found - unprocessed) * ddb_read_units(0)
        elif op in ("Query", "Scan"):
            rcu += ddb_read_units(
                sum(item_size(i) for i in parsed.get("Items", [])), bool(params.get("ConsistentRead"))
            )
        with self.lock:
            self.calls[f"dynamodb.{op}"] += 1
            self.wcu += wcu
            self.rcu += rcu
            self.wcu_by_table.update(by_table)

    def _gsi(self, table: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
        """WRUs of a table write in its GSIs: a new entry 1 put, a moved key a delete and a put,
        a changed projected entry 1 put (each sized by the projected item)."""
        units = 0
        for idx in self._table(table).global_indexes:
            keys = idx.schema_key_attrs
            old = _projected(idx, before) if before and all(k in before for k in keys) else None
            new = _projected(idx, after) if after and all(k in after for k in keys) else None
            if old is None and new is None:
                continue
            if old is None or new is None:
                units += ddb_write_units(item_size(old or new))
            elif any(old[k] != new[k] for k in keys):
                units += ddb_write_units(item_size(old)) + ddb_write_units(item_size(new))
            elif old != new:
                units += ddb_write_units(max(item_size(old), item_size(new)))
        return units

    def _put_events(self, params: dict[str, Any], **_: Any) -> None:
        n = 0
        for e in params.get("Entries", []):
            size = sum(len(str(e.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail"))
            size += sum(len(r.encode()) for r in e.get("Resources", []))
            n += eventbridge_events(size + (14 if "Time" in e else 0))
        with self.lock:
            self.calls["events.PutEvents"] += 1
            self.eventbridge += n

    def _sqs(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name not in ("SendMessage", "SendMessageBatch"):
            return
        bodies = [params] if model.name == "SendMessage" else params.get("Entries", [])
        size = sum(
            len(str(b.get("MessageBody", "")).encode()) + len(json.dumps(b.get("MessageAttributes", {})))
            for b in bodies
        )
        with self.lock:
            self.calls[f"sqs.{model.name}"] += 1
            self.sqs += sqs_requests(size)

    # the Lambda runtime
    def wrap_runtime(self, runtime: Any, configs: dict[str, tuple[int, str]]) -> None:
        invoke = runtime.invoke

        def counted(fn: Any, event: Any) -> Any:
            calls0, cpu0 = getattr(self._thread, "calls", 0), time.thread_time()
            inv = invoke(fn, event)
            cpu_ms = (time.thread_time() - cpu0) * 1000
            calls = getattr(self._thread, "calls", 0) - calls0
            mem, arch = configs.get(fn.function_name, (int(fn.memory_size), "x86_64"))
            with self.lock:
                use = self.functions.setdefault(
                    fn.function_name, FunctionUse(memory_mb=mem, architecture=arch)
                )
                use.invocations += 1
                use.billed_ms += billed_duration_ms(cpu_ms, calls, mem, self.lambda_model)
                use.cpu_ms += cpu_ms
                use.aws_calls += calls
                use.wall_ms += inv.duration_ms
                use.log_bytes += len(inv.logs.encode())
                self.metric_names.update(_emf_metrics(inv.logs, fn.function_name))
                if "IngestFunction" in fn.function_name:
                    self.findings_applied += int(_emf_sum(inv.logs, "findings_applied"))
            return inv

        runtime.invoke = counted


def _projected(idx: Any, item: dict[str, Any]) -> dict[str, Any]:
    proj = (idx.projection or {}).get("ProjectionType", "ALL")
    if proj == "ALL":
        return item
    keep = set(idx.table_key_attrs) | set(idx.schema_key_attrs)
    if proj == "INCLUDE":
        keep |= set(idx.projection.get("NonKeyAttributes", []))
    return {k: v for k, v in item.items() if k in keep}


def _emf_docs(logs: str) -> Iterator[dict[str, Any]]:
    """The Powertools EMF documents among a log's lines."""
    for line in logs.splitlines():
        if '"_aws"' not in line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            yield doc


def _emf_metrics(logs: str, function: str) -> set[str]:
    """Metric names (per function: the service dimension) in the Powertools EMF lines of a log."""
    names: set[str] = set()
    for doc in _emf_docs(logs):
        for directive in doc.get("_aws", {}).get("CloudWatchMetrics", []):
            names.update(f"{function}:{m['Name']}" for m in directive.get("Metrics", []))
    return names


def _emf_sum(logs: str, name: str) -> float:
    """The sum of metric ``name``'s values in the Powertools EMF lines of a log."""
    total = 0.0
    for doc in _emf_docs(logs):
        v = doc.get(name, 0)
        total += sum(v) if isinstance(v, list) else v if isinstance(v, int | float) else 0
    return total


# -- running ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    name: str
    prefix: str
    hosts: int
    mix: dict[str, int] | None  # None: quiet (the corpus's mix at 10 events/s per vCPU)
    attacks: bool = False  # replay the corpus as recorded, the agent tests' attacks included


def _hook_params(events: Any) -> None:
    """after-call does not see the request: keep the API params in the shared request context."""

    def keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["vigil_cost_params"] = params

    events.register("before-parameter-build.dynamodb", keep)


def run_scenario(
    stack: Any,
    corpus: Corpus,
    meter: Meter,
    sc: Scenario,
    seconds: int,
    warmup_s: int,
    seed: int,
    over: dict[str, float] | None = None,
) -> Measured:
    """``over``: what-if values of the agent's ``flush_s`` / ``stretch_s`` (docs/cost.md); by
    default the agent's own."""
    out = stack.info.outputs
    kinesis = stack.client("kinesis")
    ingest = next(p for p in stack.pollers.pollers if "IngestFunction" in p.function_name)
    if sc.attacks:
        corpus = corpus.recorded()
    hosts = fleet(sc.prefix, sc.hosts, corpus, seed)
    m = Measured(sc.name, sc.hosts, VCPUS, float(seconds))
    put_total = 0
    started = time.perf_counter()

    agents = {h.host.instance_id: SimAgent(h.host, **(over or {})) for h in hosts}

    def generate(s: int, count: bool) -> list[tuple[str, bytes]]:
        records: list[tuple[str, bytes]] = []
        for h in hosts:
            events = h.second(corpus, s, sc.mix)
            if count:
                m.events += len(events)
                m.raw_bytes += sum(len(wire.encode_event(e)) + 1 for e in events)
            key = h.host.instance_id
            records.extend((key, payload) for payload in agents[key].second(s, events))
        return records

    def feed(pending: list[tuple[str, bytes]], count: bool, per_invocation: int) -> None:
        """Put ``per_invocation`` records, then let the ingest take them all before the next: the
        batches Lambda gets from a full shard, not whatever the emulator's timing makes."""
        nonlocal put_total
        while pending:
            chunk, size = [], 0
            while (
                pending
                and len(chunk) < min(500, per_invocation)
                and size + len(pending[0][1]) + 256 <= 5 * 1024 * 1024
            ):
                key, data = pending.pop(0)
                chunk.append({"Data": data, "PartitionKey": key})
                size += len(data) + len(key)
            taken = ingest.stats.records  # (retries count again: the mark is per chunk)
            resp = kinesis.put_records(StreamName=out["TelemetryStreamName"], Records=chunk)
            if resp.get("FailedRecordCount"):
                raise RuntimeError(f"put_records: {resp['FailedRecordCount']} records failed")
            put_total += len(chunk)
            if count:
                for r in chunk:
                    b = len(r["Data"]) + len(r["PartitionKey"].encode())
                    m.records += 1
                    m.record_bytes += b
                    m.put_units += kinesis_put_units(b)
            while ingest.stats.records < taken + len(chunk):  # the stack's pace, not ours
                stack.pollers.check()
                time.sleep(0.01)

    def per_invocation(records: list[tuple[str, bytes]]) -> int:
        """Records per invocation as Lambda reads a full shard: it polls each shard about once a
        second, so an invocation holds a second of the shard (1 MiB of records, the rate the
        model prorates shard-hours to), at most BatchSize."""
        mean = sum(len(d) + len(k) for k, d in records) / max(1, len(records))
        return max(1, min(ingest.batch_size, int(SHARD_BYTES_PER_S // max(mean, 1.0))))

    # Batches are built before they are fed: building them in this process while the handlers run
    # would compete with them for the GIL and inflate the Lambda time measured.
    warm = [r for s in range(warmup_s) for r in generate(s, count=False)]
    feed(warm, count=False, per_invocation=per_invocation(warm))
    stack.pollers.wait_idle(timeout=120)
    say(f"  {sc.name}: building {seconds} s of batches for {sc.hosts} hosts ...")
    counted = [generate(s, count=True) for s in range(warmup_s, warmup_s + seconds)]
    n = per_invocation([r for second in counted for r in second])
    m.per_invocation = n
    say(f"  {sc.name}: {n} records per invocation (a full shard's second, at most BatchSize)")
    meter.reset()
    pending: list[tuple[str, bytes]] = []
    for i, second in enumerate(counted):
        pending += second
        if len(pending) >= n or i == len(counted) - 1:
            cut = len(pending) if i == len(counted) - 1 else len(pending) - len(pending) % n
            feed(pending[:cut], count=True, per_invocation=n)
            pending = pending[cut:]
        if (i + 1) % 10 == 0:
            say(
                f"  {sc.name}: {i + 1}/{seconds} simulated s fed, {m.records} records, "
                f"{ingest.stats.invocations} ingest invocations, {time.perf_counter() - started:.0f} s wall"
            )
    if not stack.pollers.wait_idle(timeout=300):
        raise RuntimeError("the stack did not settle within 300 s")
    st = ingest.stats
    say(
        f"  {sc.name}: ingest so far {st.invocations} invocations, {st.retries} retries, {st.bisections} bisections"
    )
    letters = meter.calls.get("sqs.SendMessageBatch", 0) + meter.calls.get("sqs.SendMessage", 0)
    if letters:  # the fleet is benign and well-formed: a dead letter means the bench measures rejections
        raise SystemExit(f"{sc.name}: {letters} dead-letter calls for benign records; see the ingest's log")
    with meter.lock:
        m.functions = {k: v for k, v in meter.functions.items()}
        m.ddb_write_units = meter.wcu
        m.ddb_read_units = meter.rcu
        m.ddb_calls = dict(meter.calls)
        m.ddb_write_units_by_table = dict(meter.wcu_by_table)
        m.eventbridge_events = meter.eventbridge
        m.sqs_requests = meter.sqs
        m.finding_occurrences = meter.findings_applied
    return m


def report(m: Measured, prices: dict[str, Any]) -> dict[str, float]:
    usd = price_per_vcpu_month(m, prices, tracing=_template_tracing())
    total = sum(usd.values())
    scale = m.monthly_scale()
    say(f"\n== {m.name}: {m.hosts} hosts x {m.vcpus_per_host} vCPU, {m.seconds:.0f} simulated s ==")
    say(
        f"  events {m.events:,} ({m.events / m.seconds / m.vcpus:.0f}/s per vCPU); records {m.records:,} "
        f"({m.records / m.seconds / m.hosts:.2f}/s per host); {m.record_bytes / max(m.records, 1) / 1024:.1f} KiB "
        f"per record gzip, {m.raw_bytes / max(m.record_bytes, 1):.1f}x compression; "
        f"{m.record_bytes / max(m.events, 1):.0f} B/event on the stream; "
        f"{m.finding_occurrences} finding occurrences stored"
    )
    for name, f in sorted(m.functions.items()):
        say(
            f"  {name}: {f.invocations} invocations, {f.billed_ms / max(f.invocations, 1):.1f} ms billed avg "
            f"({f.memory_mb} MB {f.architecture}; measured per invocation: CPU {f.cpu_ms / max(f.invocations, 1):.1f} ms, "
            f"{f.aws_calls / max(f.invocations, 1):.1f} AWS calls, wall against moto {f.wall_ms / max(f.invocations, 1):.1f} ms), "
            f"{f.log_bytes / max(f.invocations, 1):.0f} log B/invocation"
        )
    say(
        f"  DynamoDB {m.ddb_write_units:.0f} WRU ({m.ddb_write_units / m.seconds / m.hosts:.2f}/s per host), "
        f"{m.ddb_read_units:.1f} RRU; calls {dict(sorted(m.ddb_calls.items()))}"
    )
    say(
        f"  WRU by table {dict((k.split('-')[1] if '-' in k else k, round(v)) for k, v in m.ddb_write_units_by_table.items())}"
    )
    say(
        f"  EventBridge events {m.eventbridge_events}, SQS requests {m.sqs_requests}, Kinesis PUT units {m.put_units}"
    )
    say(f"  {'service':<22} {'units/vCPU-month':>18} {'USD/vCPU-month':>15}")
    units = {
        "kinesis_shard_hours": None,
        "kinesis_put_units": m.put_units * scale,
        "lambda_requests": sum(f.invocations for f in m.functions.values()) * scale,
        "lambda_gb_s": sum(f.billed_ms / 1000 * f.memory_mb / 1024 for f in m.functions.values()) * scale,
        "dynamodb_writes": m.ddb_write_units * scale,
        "dynamodb_reads": m.ddb_read_units * scale,
        "eventbridge": m.eventbridge_events * scale,
        "sqs": m.sqs_requests * scale,
        "cloudwatch_logs": None,
        "xray_sampled": None,
    }
    for k, v in usd.items():
        u = units.get(k)
        say(f"  {k:<22} {'' if u is None else f'{u:,.0f}':>18} {v:>15.5f}")
    say(f"  {'total':<22} {'':>18} {total:>15.5f}")
    return usd


def finding_cost(corpus: Corpus, busy_m: Measured, busy: float, m: Measured, usd: dict[str, float]) -> None:
    """What a finding costs: the attacked hosts' $ per vCPU-month over the busy fleet's, per finding
    occurrence stored. Findings are paid per finding, not per vCPU: a fleet adds its own rate."""
    attacked = sum(usd.values())
    cycle_s = len(corpus.by_kind["process_exec"]) / BUSY_MIX["process_exec"]  # a host's pass over the execs
    say(f"\n== findings: the busy mix replayed with the corpus's {len(corpus.tests)} agent-test events ==")
    if busy_m.finding_occurrences:
        say(f"  the benign busy fleet stored {busy_m.finding_occurrences} finding occurrences itself")
    per_month = m.finding_occurrences * m.monthly_scale()
    if not per_month:
        say("  no finding stored: nothing to price (did the corpus change?)")
        return
    extra = attacked - busy
    say(
        f"  {m.finding_occurrences} occurrences in {m.seconds:.0f} s on {m.hosts} host(s) ({per_month:,.0f} per "
        f"vCPU-month: the tests' attacks come back every {cycle_s:.0f} s on a host); ${attacked:.4f} per vCPU-month against the "
        f"benign ${busy:.4f}: ${extra / per_month * 1000:.4f} per 1,000 finding occurrences"
    )


def _template_tracing() -> bool:
    """Whether X-Ray is active as template.yaml deploys by default (Globals' ``Tracing``: the
    ``Tracing`` parameter's default, or a literal)."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text())
    mode = template["Globals"]["Function"].get("Tracing", "PassThrough")
    if isinstance(mode, dict) and "Ref" in mode:
        mode = template["Parameters"][mode["Ref"]]["Default"]
    return mode == "Active"


def _template_architecture() -> str:
    """The functions' architecture as template.yaml sets it (Globals; no function overrides it)."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text())
    archs = {
        tuple(res.get("Properties", {}).get("Architectures") or ())
        for res in template["Resources"].values()
        if res["Type"] == "AWS::Serverless::Function"
    } - {()}
    if archs:
        raise SystemExit(
            f"template.yaml: a function overrides Architectures ({archs}): price it per function"
        )
    return str(template["Globals"]["Function"].get("Architectures", ["x86_64"])[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quiet-hosts", type=int, default=30)
    ap.add_argument("--busy-hosts", type=int, default=3)
    ap.add_argument(
        "--attacked-hosts",
        type=int,
        default=1,
        help="busy hosts that replay the corpus as recorded, the agent tests' attacks included: the "
        "cost of a finding (0: skip)",
    )
    ap.add_argument(
        "--seconds",
        type=int,
        default=300,
        help="simulated seconds measured per scenario (>= the 5-min coverage cadence)",
    )
    ap.add_argument("--warmup", type=int, default=10, help="simulated seconds fed before counting")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument(
        "--flush-s",
        type=float,
        help="what-if: the agent's agent.flush_s (default its own, 1 s; docs/cost.md)",
    )
    ap.add_argument(
        "--stretch-s",
        type=float,
        help="what-if: the agent's agent.stretch_s (default its own, 2 s; = --flush-s: off)",
    )
    ap.add_argument(
        "--prices", help="TOML price overrides (default: $VIGIL_PRICES, then benchmarks/prices.toml)"
    )
    ap.add_argument(
        "--save", action="store_true", help=f"write the measured rates to {USAGE_MODEL.relative_to(ROOT)}"
    )
    args = ap.parse_args(argv)
    over = {k: v for k, v in (("flush_s", args.flush_s), ("stretch_s", args.stretch_s)) if v is not None}
    if any(v <= 0 for v in over.values()):
        ap.error("--flush-s and --stretch-s must be > 0")
    if over and args.save:
        ap.error("--save records what the agent does: not with a --flush-s / --stretch-s what-if")
    prices = load_prices(args.prices)
    # moto's Step Functions threads may still log after the stack stops; the last line is a contract
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)

    from local.stack import LocalStack, free_port
    from vigil_aws import clients

    say("loading the benign corpus ...")
    corpus = Corpus()
    say(
        f"  {len(corpus.all):,} events; pools {', '.join(f'{k} {len(v):,}' for k, v in corpus.by_kind.items())}"
    )
    speed = host_speed()
    say(
        f"  this VM's core: json_loads_events_per_s={speed:.0f} on make bench's workload (the Lambda "
        "GB-s below is this core's CPU time: a slower core inflates it, docs/cost.md, Lambda CPU)"
    )
    say("starting the offline stack (moto on loopback, template.yaml via CloudFormation) ...")
    stack = LocalStack(port=free_port(), state_file=None, step=lambda s: say(f"  {s}"))
    with stack:
        assert stack.info is not None and stack.runtime is not None
        import boto3

        meter = Meter(stack.info.account_id, stack.region, prices["lambda_model"])
        clients.reset()
        clients._session = boto3.session.Session()
        meter.install(clients._session.events)
        _hook_params(clients._session.events)
        lam = stack.client("lambda")
        arch = _template_architecture()  # moto's CloudFormation drops Architectures: the template's
        configs = {f["FunctionName"]: (int(f["MemorySize"]), arch) for f in lam.list_functions()["Functions"]}
        ingest_esm = next(
            e
            for e in lam.list_event_source_mappings()["EventSourceMappings"]
            if ":kinesis:" in e["EventSourceArn"]
        )
        say(
            f"  IngestFunction: BatchSize {ingest_esm['BatchSize']}, "
            f"{', '.join(f'{k} {v[0]} MB {v[1]}' for k, v in sorted(configs.items()) if 'Ingest' in k or 'Publish' in k)}"
        )
        meter.wrap_runtime(stack.runtime, configs)
        scenarios = [
            Scenario("quiet", "a0", args.quiet_hosts, None),
            Scenario("busy", "b0", args.busy_hosts, BUSY_MIX),
        ]
        if args.attacked_hosts > 0:
            scenarios.append(Scenario("attacked", "c0", args.attacked_hosts, BUSY_MIX, attacks=True))
        results: dict[str, tuple[Measured, dict[str, float]]] = {}
        metric_names: set[str] = set()
        for i, sc in enumerate(scenarios):
            say(
                f"running {sc.name}: {sc.hosts} hosts, {args.warmup} s warm-up + {args.seconds} s counted ..."
            )
            m = run_scenario(stack, corpus, meter, sc, args.seconds, args.warmup, args.seed + i, over=over)
            metric_names |= meter.metric_names
            results[sc.name] = (m, report(m, prices))

    fixed = fixed_per_month(prices, metrics=len(metric_names), tracing=_template_tracing())
    say("\n== fixed per stack per month (whatever the fleet) ==")
    for k, v in fixed.items():
        say(f"  {k:<26} {v:>8.2f}")
    say(
        f"  {'total':<26} {sum(fixed.values()):>8.2f}  (spread over 200 vCPUs: {sum(fixed.values()) / 200:.3f}/vCPU-month)"
    )
    quiet = sum(results["quiet"][1].values())
    busy = sum(results["busy"][1].values())
    if "attacked" in results:
        finding_cost(corpus, results["busy"][0], busy, *results["attacked"])
    gd = guardduty_monthly_usd(1) / 1
    if args.save:
        USAGE_MODEL.write_text(
            json.dumps(
                {
                    "source": "make bench-cost (benchmarks/cost.py); docs/cost.md",
                    "usd_per_vcpu_hour_quiet": quiet / 730.0,
                    "usd_per_vcpu_hour_busy": busy / 730.0,
                    "fixed_usd_per_month": round(sum(fixed.values()), 4),
                    "usd_per_vcpu_month_quiet": round(quiet, 5),
                    "usd_per_vcpu_month_busy": round(busy, 5),
                },
                indent=2,
            )
            + "\n"
        )
        say(f"wrote {USAGE_MODEL.relative_to(ROOT)}")
    print(
        f"usd_per_vcpu_month_quiet={quiet:.4f} usd_per_vcpu_month_busy={busy:.4f} "
        f"guardduty_usd_per_vcpu_month={gd:.2f} ratio_quiet={gd / quiet:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
