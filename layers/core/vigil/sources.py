"""AWS-delivered sources on the ingest path: CloudWatch Logs subscription records and EventBridge
CloudTrail events -> the source normalizers (VPC Flow Logs, Resolver query logs, CloudTrail).

A Kinesis record written by a CloudWatch Logs subscription filter is gzip JSON:
``{"messageType": "DATA_MESSAGE", "owner": account, "logGroup": name, "logStream": ...,
"subscriptionFilters": [...], "logEvents": [{"id", "timestamp", "message"}, ...]}``; CloudWatch Logs
also writes one ``CONTROL_MESSAGE`` when the subscription is created (skipped). The log group says
which normalizer reads its messages (``SourceConfig``). A record an EventBridge rule writes to the
stream is the event JSON itself; ``AWS API Call via CloudTrail`` events go to the CloudTrail
normalizer.

Trust: these records are not the agent's and carry no instance identity. They are accepted only
from the stream AWS writes to (the caller decides by the record's stream, never by its content:
docs/sources.md), and only when ``owner`` is the configured account and ``logGroup`` is configured.

Every event gets a ``seq`` derived from its log event (time in ms and a hash of its id), so the
findings store can recognise an event delivered twice; records carry no agent seq interval.

Total and bounded: ``decode_source_record`` never raises; a bad message is a Rejection with its
reason and position (1-based index in ``logEvents``) and never blocks its neighbours; a record that
is not an envelope at all is rejected whole (line 0).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import msgspec

from vigil import bounds as b
from vigil import events as ev
from vigil import wire
from vigil.normalize.cloudtrail import normalize_cloudtrail_record
from vigil.normalize.common import Normalized, Rejection
from vigil.normalize.resolver import normalize_resolver_record
from vigil.normalize.vpcflow import DEFAULT_FORMAT, FlowFormat, FormatError, normalize_flow_line

SourceName = Literal["vpcflow", "resolver", "cloudtrail"]
SOURCE_NAMES: Final = ("vpcflow", "resolver", "cloudtrail")
LOG_EVENTS_MAX: Final = 10_000  # CloudWatch Logs puts at most 10,000 events in a PutLogEvents batch
MESSAGE_MAX: Final = 256 * 1024  # CloudWatch Logs' event size limit


@dataclass(frozen=True, slots=True)
class LogSource:
    source: SourceName
    flow_format: FlowFormat = DEFAULT_FORMAT


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Which log groups feed which normalizer, and whose they must be."""

    log_groups: Mapping[str, LogSource] = field(default_factory=dict)
    owner: str = ""  # the account id a subscription record must name ('' = not checked)

    @classmethod
    def parse(cls, spec: str, *, owner: str = "") -> SourceConfig:
        """JSON ``{"<log group>": "vpcflow" | "resolver" | "cloudtrail" | {"source": "vpcflow",
        "format": "${version} ..."}}``; raises ValueError with the reason (a cold-start error)."""
        try:
            raw = json.loads(spec) if spec.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"log sources: not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError("log sources: expected an object of log group -> source")
        groups: dict[str, LogSource] = {}
        for group, value in raw.items():
            item: dict[str, Any] = value if isinstance(value, dict) else {"source": value}
            source = item.get("source")
            if source not in SOURCE_NAMES:
                raise ValueError(f"log sources: {group!r}: source must be one of {', '.join(SOURCE_NAMES)}")
            fmt = DEFAULT_FORMAT
            if item.get("format"):
                try:
                    fmt = FlowFormat.parse(str(item["format"]))
                except FormatError as exc:
                    raise ValueError(f"log sources: {group!r}: {exc}") from None
            groups[str(group)] = LogSource(source, fmt)
        return cls(groups, owner)


class _LogEvent(msgspec.Struct, frozen=True, gc=False):
    id: Annotated[str, msgspec.Meta(max_length=128)] = ""
    timestamp: Annotated[int, msgspec.Meta(ge=0, le=b.TIME_MAX_NS // 1_000_000)] = 0
    message: Annotated[str, msgspec.Meta(max_length=MESSAGE_MAX)] = ""


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    messageType: b.Word
    owner: Annotated[str, msgspec.Meta(max_length=32)] = ""
    logGroup: Annotated[str, msgspec.Meta(max_length=512)] = ""
    logStream: Annotated[str, msgspec.Meta(max_length=512)] = ""
    logEvents: Annotated[list[_LogEvent], msgspec.Meta(max_length=LOG_EVENTS_MAX)] = []


_envelope: Final = msgspec.json.Decoder(_Envelope)
_SEQ_HASH_BITS: Final = 20


def event_seq(time_ms: int, ident: str) -> int:
    """A seq for an AWS-delivered event: its time in ms, then 20 bits of a hash of its id (the
    CloudWatch Logs event id, or the CloudTrail eventID). Same event, same seq; >= 1."""
    h = zlib.crc32(ident.encode()) & ((1 << _SEQ_HASH_BITS) - 1)
    return max(1, (max(time_ms, 0) << _SEQ_HASH_BITS) | h)


def _with_seq(event: ev.Event, time_ms: int, ident: str) -> ev.Event:
    return msgspec.structs.replace(event, seq=event_seq(time_ms, ident))


def normalize_message(source: LogSource, message: str, number: int) -> ev.Event | Rejection | str:
    if source.source == "vpcflow":
        return normalize_flow_line(message, source.flow_format, number=number)
    if source.source == "resolver":
        return normalize_resolver_record(message, number=number)
    return normalize_cloudtrail_record(message, number=number)


def _whole(reason: str, data: bytes) -> Normalized:
    out = Normalized()
    out.add(Rejection("logs", 0, reason, data[: b.SAMPLE_BYTES]))
    return out


def decode_source_record(data: bytes, config: SourceConfig) -> Normalized:
    """One Kinesis record of the sources stream -> events, rejections and skips. Never raises."""
    try:
        payload = wire.decompress(data, b.RAW_BATCH_BYTES)
    except Exception as exc:
        return _whole(f"not a CloudWatch Logs or EventBridge record: {exc}"[:512], data)
    try:
        env = _envelope.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        if b'"detail-type"' in payload[:4096]:  # an EventBridge event (CloudTrail via a rule)
            out = Normalized()
            call = normalize_cloudtrail_record(payload, number=1)
            if isinstance(call, ev.ApiActivity):
                out.add(_with_seq(call, call.time // 1_000_000, call.event_uid or str(zlib.crc32(payload))))
            else:
                out.add(call)
            return out
        return _whole(f"not a CloudWatch Logs subscription record: {str(exc)[:300]}", payload)
    if env.messageType == "CONTROL_MESSAGE":
        out = Normalized()
        out.add("control message")
        return out
    if env.messageType != "DATA_MESSAGE":
        return _whole(f"messageType {env.messageType!r} is not DATA_MESSAGE or CONTROL_MESSAGE", payload)
    if config.owner and env.owner != config.owner:
        return _whole(f"owner {env.owner[:32]!r} is not this account ({config.owner})", payload)
    source = config.log_groups.get(env.logGroup)
    if source is None:
        return _whole(f"log group {env.logGroup[:128]!r} is not a configured source", payload)
    out = Normalized()
    for n, le in enumerate(env.logEvents, start=1):
        got = normalize_message(source, le.message, n)
        if isinstance(got, Rejection | str):
            out.add(got)
        else:
            out.add(_with_seq(got, le.timestamp, le.id or f"{env.logStream}|{n}"))
    return out


def subscription_record(
    log_group: str, messages: list[str], *, owner: str = "123456789012", t0_ms: int = 1_764_000_000_000
) -> bytes:
    """The gzip JSON a CloudWatch Logs subscription writes to Kinesis for ``messages`` (tests, demo)."""
    import gzip

    body = {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": log_group,
        "logStream": "stream-1",
        "subscriptionFilters": ["vigil"],
        "logEvents": [
            {"id": f"{t0_ms + i:056d}", "timestamp": t0_ms + i, "message": m} for i, m in enumerate(messages)
        ],
    }
    return gzip.compress(json.dumps(body).encode())
