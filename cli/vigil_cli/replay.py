"""`vigil replay`: normalize + detect in-process over agent NDJSON (plain or .gz), no AWS.

Reads line by line, so a live pipe works (`vigil-agent --stdout | vigil replay -`): findings are
printed as they fire when reading stdin, and aggregated per finding id (with counts) for files.
A bad line is reported on stderr with its line number and skipped; the rest is processed.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from vigil import wire
from vigil.bounds import SEQ_MAX
from vigil.findings import Occurrence
from vigil.normalize.agent import normalize_batch
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState


@dataclass
class ReplayStats:
    lines: int = 0
    events: int = 0
    bad_lines: int = 0
    rejected: int = 0
    detection_errors: int = 0
    findings: dict[str, Occurrence] = field(default_factory=dict)


def open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such file")
    raw = p.open("rb")
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == wire.GZIP_MAGIC:
        return gzip.open(raw, "rb")  # type: ignore[return-value]
    return raw


def _chunks(stream: IO[bytes], size: int, live: bool) -> Iterator[list[tuple[int, bytes]]]:
    buf: list[tuple[int, bytes]] = []
    for n, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        buf.append((n, line.rstrip(b"\r\n")))
        if live or len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def merge(a: Occurrence, b: Occurrence) -> Occurrence:
    """Aggregate two occurrences of one finding id, as the findings table does."""
    last = b if a.last_seen_ns <= b.last_seen_ns else a
    doc: dict[str, Any] = last.finding
    # an attack sequence's sightings are its signals (seqs above every event's, vigil.sequences),
    # brought again by every chunk that repeats them: each counts once, as in the findings table
    units = {x for o in (a, b) for x in o.sightings if x[0] > SEQ_MAX}
    count = len(units) if units else a.count + b.count
    doc["service"]["count"] = count
    doc["service"]["eventFirstSeen"] = min(
        a.finding["service"]["eventFirstSeen"], b.finding["service"]["eventFirstSeen"]
    )
    doc["createdAt"] = min(a.finding["createdAt"], b.finding["createdAt"])
    return Occurrence(
        doc,
        count,
        min(a.first_seen_ns, b.first_seen_ns),
        last.last_seen_ns,
        min(a.min_seq, b.min_seq),
        max(a.max_seq, b.max_seq),
        last.suppressed,
        tuple(sorted(units)),
    )


def replay(
    stream: IO[bytes],
    pipeline: Pipeline,
    *,
    live: bool,
    on_error: Any,
    on_finding: Any | None = None,
    chunk: int = 1000,
) -> ReplayStats:
    stats = ReplayStats()
    state = InMemoryState()
    host: wire.Host | None = None
    for batch in _chunks(stream, chunk, live):
        decoded: list[wire.WireEvent] = []
        for n, line in batch:
            stats.lines = n
            try:
                decoded.append(wire.decode_line(line))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                stats.bad_lines += 1
                on_error(f"line {n}: {exc}")
        events, rejected = normalize_batch(decoded, default_host=host)
        for w in decoded:
            if w.host is not None:
                host = w.host
        for r in rejected:
            stats.rejected += 1
            on_error(f"event {r.line} of chunk ending at line {stats.lines}: {r.reason}")
        result = pipeline.detect(events, state)
        state.commit()
        stats.events += result.events
        stats.detection_errors += len(result.detection_errors)
        for e in result.detection_errors:
            on_error(f"detection {e.detection_type} failed on {e.event_kind}: {e.error}")
        for occ in result.occurrences:
            if on_finding is not None:
                on_finding(occ)
            prev = stats.findings.get(occ.id)
            stats.findings[occ.id] = occ if prev is None else merge(prev, occ)
    return stats


def as_text_stream(data: bytes) -> IO[bytes]:
    return io.BytesIO(data)


# --- AWS-delivered sources (`vigil replay --source ...`) -----------------------------------------
SOURCES = ("flowlogs", "resolver", "cloudtrail")


def _source_lines(stream: IO[bytes], source: str) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines; a CloudTrail file (``{"Records": [...]}``) yields its records."""
    import json

    if source == "cloudtrail":
        data = stream.read()
        head = data.lstrip()[:64]
        if head.startswith(b"{") and b'"Records"' in head:
            try:
                records = json.loads(data)["Records"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"not a CloudTrail file: {exc}") from None
            for n, r in enumerate(records, start=1):
                yield n, json.dumps(r).encode()
            return
        lines: Iterator[bytes] = iter(data.splitlines())
    else:
        lines = iter(stream)
    for n, line in enumerate(lines, start=1):
        if line.strip():
            yield n, line.rstrip(b"\r\n")


def replay_source(
    stream: IO[bytes],
    pipeline: Pipeline,
    source: str,
    *,
    on_error: Any,
    flow_format: str = "",
    chunk: int = 1000,
) -> ReplayStats:
    """Flow-log lines (default v2 format; a header line or ``flow_format`` gives a custom one),
    Resolver query-log JSON lines, or CloudTrail records / EventBridge events (one per line, or a
    trail file) through normalize + detect. A bad line is reported and skipped."""
    from vigil.normalize.cloudtrail import normalize_cloudtrail_record
    from vigil.normalize.common import Normalized
    from vigil.normalize.resolver import normalize_resolver_record
    from vigil.normalize.vpcflow import DEFAULT_FORMAT, FlowFormat, FormatError, normalize_flow_line
    from vigil.sources import event_seq

    fmt = FlowFormat.parse(flow_format) if flow_format else DEFAULT_FORMAT
    stats = ReplayStats()
    state = InMemoryState()
    pending = Normalized()

    def flush() -> None:
        nonlocal pending
        for r in pending.rejections:
            on_error(f"line {r.line}: {r.reason}")
        stats.rejected += pending.rejected
        result = pipeline.detect(pending.events, state, ranges=False)
        state.commit()
        stats.events += result.events
        stats.detection_errors += len(result.detection_errors)
        for e in result.detection_errors:
            on_error(f"detection {e.detection_type} failed on {e.event_kind}: {e.error}")
        for occ in result.occurrences:
            prev = stats.findings.get(occ.id)
            stats.findings[occ.id] = occ if prev is None else merge(prev, occ)
        pending = Normalized()

    first = True
    for n, line in _source_lines(stream, source):
        stats.lines = n
        if source == "flowlogs" and first and not flow_format and b"srcaddr" in line and b"dstaddr" in line:
            try:  # a header line (S3 delivery) names the fields of the lines after it
                fmt = FlowFormat.parse(line.decode("ascii", "replace"))
                first = False
                continue
            except FormatError as exc:
                on_error(f"line {n}: header not usable: {exc}")
        first = False
        if source == "flowlogs":
            got: Any = normalize_flow_line(line, fmt, number=n)
        elif source == "resolver":
            got = normalize_resolver_record(line, number=n)
        else:
            got = normalize_cloudtrail_record(line, number=n)
        if not isinstance(got, str) and hasattr(got, "time"):
            got = msgspec.structs.replace(got, seq=event_seq(got.time // 1_000_000, f"{n}"))
        pending.add(got)
        if len(pending.events) >= chunk:
            flush()
    flush()
    stats.bad_lines = stats.rejected
    return stats
