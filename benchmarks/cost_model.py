"""The pure part of `make bench-cost`: AWS's billing units and the price table.

Given what one scenario consumed (counted by benchmarks/cost.py on the offline stack), price it
per monitored vCPU-month. No I/O except reading the TOML price table; no clock. Unit rules (us-east-1,
as AWS documents them):

- Kinesis: one PUT payload unit per started 25 KiB of a record (data + partition key); a shard
  takes 1 MiB/s and 1,000 records/s of writes: the shard-hours a fleet needs are prorated by the
  larger of the two ratios (the 1-shard minimum is a fixed cost per stack, reported apart).
- Lambda: one request per invocation; GB-s = billed ms (rounded up to 1 ms) x MemorySize / 1024.
- DynamoDB on-demand: a write costs one WRU per started 1 KiB of the larger of the item before
  and after (failed conditional writes too; transactional writes twice); each GSI entry put or
  deleted costs its own WRUs; a read costs one RRU per started 4 KiB (half for eventually
  consistent reads); a missing item still costs the minimum.
- EventBridge: one event per started 64 KiB of an entry. SQS: one request per started 64 KiB of a
  call's payload. CloudWatch Logs: bytes ingested (+ ~300 bytes of START/END/REPORT per invocation).
"""

from __future__ import annotations

import base64
import math
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))

from vigil.usage import HOURS_PER_MONTH

PRICES_FILE = Path(__file__).resolve().parent / "prices.toml"
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0

KINESIS_PUT_UNIT_BYTES = 25 * 1024
SHARD_BYTES_PER_S = 1024 * 1024
SHARD_RECORDS_PER_S = 1000
DDB_WRITE_UNIT_BYTES = 1024
DDB_READ_UNIT_BYTES = 4096
EVENTBRIDGE_CHUNK_BYTES = 64 * 1024
SQS_CHUNK_BYTES = 64 * 1024
LAMBDA_PLATFORM_LOG_BYTES = 300  # START, END and REPORT lines of one invocation


# -- units --------------------------------------------------------------------------------------
def kinesis_put_units(record_bytes: int) -> int:
    return max(1, math.ceil(record_bytes / KINESIS_PUT_UNIT_BYTES))


def shards_needed(bytes_per_s: float, records_per_s: float) -> float:
    """Fractional shards for a write throughput (prorated; at least 1 is deployed, see floor)."""
    return max(bytes_per_s / SHARD_BYTES_PER_S, records_per_s / SHARD_RECORDS_PER_S)


def billed_duration_ms(cpu_ms: float, aws_calls: int, memory_mb: int, model: Mapping[str, Any]) -> int:
    """A Lambda invocation's billed duration from what was measured here: its CPU time, stretched
    by Lambda's CPU share at ``memory_mb`` (one vCPU at ``full_vcpu_mb``, proportionally less
    below), plus one network round trip per AWS call (the emulator answers in-process, so its
    wall time says nothing of AWS's latency), rounded up to 1 ms."""
    share = min(1.0, memory_mb / float(model["full_vcpu_mb"]))
    return math.ceil(cpu_ms / share + aws_calls * float(model["aws_call_ms"]))


def lambda_gb_s(duration_ms: float, memory_mb: int) -> float:
    return math.ceil(duration_ms) / 1000.0 * memory_mb / 1024.0


def ddb_write_units(item_bytes: int) -> int:
    return max(1, math.ceil(item_bytes / DDB_WRITE_UNIT_BYTES))


def ddb_read_units(item_bytes: int, consistent: bool = False) -> float:
    units = max(1, math.ceil(item_bytes / DDB_READ_UNIT_BYTES))
    return float(units) if consistent else units / 2.0


def eventbridge_events(entry_bytes: int) -> int:
    return max(1, math.ceil(entry_bytes / EVENTBRIDGE_CHUNK_BYTES))


def sqs_requests(payload_bytes: int) -> int:
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value in the low-level format ({"S": ...})."""
    (kind, v), *_ = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":  # ~1 byte per two significant digits, plus 1
        digits = str(v).lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(v) if isinstance(v, bytes | bytearray) else len(str(v)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: x}) for x in v)
    if kind == "L":
        return 3 + sum(1 + attribute_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(x) for k, x in v.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def json_default(value: Any) -> Any:
    """``json.dumps``'s ``default`` for an emulated item's attributes: a Binary as the base64 text
    the wire carries (what ``attribute_size`` sizes at 3/4 of its length), anything else as text.
    (``default=str`` made a Binary its repr, ``b'x\\x9c...'``: ~3x its bytes, so every compressed
    finding document was billed about three times its size.)"""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    return str(value)


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values."""
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(v) for name, v in item.items())


# -- prices -------------------------------------------------------------------------------------
def load_prices(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The repo's price table, with a file given by ``path`` or ``VIGIL_PRICES`` laid over it."""
    prices = tomllib.loads(PRICES_FILE.read_text())
    override = path or (os.environ if env is None else env).get("VIGIL_PRICES")
    if override:
        for section, values in tomllib.loads(Path(override).read_text()).items():
            if not isinstance(values, dict):
                raise ValueError(f"{override}: [{section}] must be a table of prices")
            prices.setdefault(section, {}).update(values)
    return prices


# -- one scenario -------------------------------------------------------------------------------
@dataclass
class FunctionUse:
    invocations: int = 0
    billed_ms: float = 0.0  # sum of modelled durations, each rounded up to 1 ms (billed_duration_ms)
    cpu_ms: float = 0.0  # the handler thread's CPU time, measured (time.thread_time)
    aws_calls: int = 0  # AWS API calls the handler made
    wall_ms: float = 0.0  # wall time in-process against moto on this VM: a reference, not billed
    memory_mb: int = 512
    architecture: str = "x86_64"
    log_bytes: int = 0  # what the handler wrote (incl. Powertools EMF), without platform lines


@dataclass
class Measured:
    """What one scenario consumed over ``seconds`` of simulated fleet time."""

    name: str
    hosts: int
    vcpus_per_host: int
    seconds: float
    events: int = 0
    records: int = 0
    record_bytes: int = 0  # data + partition key
    raw_bytes: int = 0  # NDJSON before gzip
    put_units: int = 0
    functions: dict[str, FunctionUse] = field(default_factory=dict)
    ddb_write_units: float = 0.0
    ddb_read_units: float = 0.0
    ddb_calls: dict[str, int] = field(default_factory=dict)
    ddb_write_units_by_table: dict[str, float] = field(default_factory=dict)
    eventbridge_events: int = 0
    sqs_requests: int = 0
    per_invocation: int = 0  # records fed per ingest invocation (a full shard's second)
    finding_occurrences: int = 0  # findings stored (new or a new occurrence of one), counted

    @property
    def vcpus(self) -> int:
        return self.hosts * self.vcpus_per_host

    def monthly_scale(self) -> float:
        """Multiplier from the measured span to a 730-h month, per monitored vCPU."""
        return SECONDS_PER_MONTH / self.seconds / self.vcpus


def price_per_vcpu_month(m: Measured, prices: Mapping[str, Any], *, tracing: bool = True) -> dict[str, float]:
    """USD per monitored vCPU-month by service (the throughput-proportional cost; fixed costs per
    stack are in ``fixed_per_month``). ``tracing``: X-Ray active on the functions (template.yaml's
    ``Tracing`` parameter)."""
    scale = m.monthly_scale()
    k, lam, ddb = prices["kinesis"], prices["lambda"], prices["dynamodb"]
    shards = shards_needed(m.record_bytes / m.seconds, m.records / m.seconds)
    invocations = sum(f.invocations for f in m.functions.values())
    gb_s_usd = sum(
        lambda_gb_s(f.billed_ms, f.memory_mb) * lam[f"gb_second_{f.architecture}"]
        for f in m.functions.values()
    )
    log_bytes = sum(f.log_bytes + f.invocations * LAMBDA_PLATFORM_LOG_BYTES for f in m.functions.values())
    logs = prices["cloudwatch_logs"]
    xray = prices["xray"]
    return {
        "kinesis_shard_hours": shards * HOURS_PER_MONTH * k["shard_hour"] / m.vcpus,
        "kinesis_put_units": m.put_units * scale * k["put_payload_unit_per_million"] / 1e6,
        "lambda_requests": invocations * scale * lam["request_per_million"] / 1e6,
        "lambda_gb_s": gb_s_usd * scale,
        "dynamodb_writes": m.ddb_write_units * scale * ddb["write_request_unit_per_million"] / 1e6,
        "dynamodb_reads": m.ddb_read_units * scale * ddb["read_request_unit_per_million"] / 1e6,
        "eventbridge": m.eventbridge_events * scale * prices["eventbridge"]["custom_event_per_million"] / 1e6,
        "sqs": m.sqs_requests * scale * prices["sqs"]["request_per_million"] / 1e6,
        "cloudwatch_logs": log_bytes * scale / 1e9 * (logs["ingest_per_gb"] + logs["storage_per_gb_month"]),
        "xray_sampled": invocations * scale * xray["sample_rate"] * xray["trace_recorded_per_million"] / 1e6
        if tracing
        else 0.0,
    }


def fixed_per_month(
    prices: Mapping[str, Any], metrics: int, sweep_gb_s: float = 0.0, *, tracing: bool = True
) -> dict[str, float]:
    """Costs a stack pays whatever its fleet: the 1-shard minimum, X-Ray's 1 trace/s reservoir
    (once any function is invoked that often), EMF custom metrics, PublishSweepFunction's schedule."""
    lam = prices["lambda"]
    sweeps = HOURS_PER_MONTH * 12  # rate(5 minutes)
    return {
        "kinesis_min_one_shard": HOURS_PER_MONTH * prices["kinesis"]["shard_hour"],
        "xray_reservoir": prices["xray"]["reservoir_per_second"] * SECONDS_PER_MONTH
        * prices["xray"]["trace_recorded_per_million"] / 1e6 if tracing else 0.0,
        "cloudwatch_custom_metrics": metrics * prices["cloudwatch_metrics"]["custom_metric_month"],
        "publish_sweep_schedule": sweeps * (lam["request_per_million"] / 1e6 + sweep_gb_s * lam["gb_second_x86_64"]),
    }  # fmt: skip
