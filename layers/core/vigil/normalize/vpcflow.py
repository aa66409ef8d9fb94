"""VPC Flow Log records (text, versions 2-5 and custom formats) -> ``NetworkFlow`` (OCSF 4001).

A flow-log line is a space-separated list of fields in the order of its log format: the default
(version 2) format, or a custom one given as AWS writes it (``${version} ${srcaddr} ...``) or as
the header line of a file delivered to S3 (``version srcaddr ...``). ``-`` is a field with no
value. A ``NODATA`` line (no traffic in the interval) and a ``SKIPDATA`` line (records the
capture skipped) carry no flow: they are skipped, not rejected, and counted.

Total: ``normalize_flow_line`` never raises; a line that is not a flow record in the format
becomes a ``Rejection`` naming the field. Bounded like the agent path (``vigil.bounds``): a line
of at most ``LINE_MAX`` bytes, times in the ingest's window, ports, counts and ids in range.

The instance: the record's ``instance-id`` (v3+), else the interface's instance from the caller's
map (``FlowFormat.interfaces``), else the interface id itself (a v2 record names no instance).
The direction: ``flow-direction`` (v5), else inferred: internal -> external is Outbound,
external -> internal Inbound (``is_internal``), anything else Unknown.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from vigil import bounds
from vigil import events as ev
from vigil.normalize.common import Normalized, Rejection

SOURCE: Final = "vpcflow"
KIND: Final = "vpc_flow"
LINE_MAX: Final = 8192  # bytes; a v5 record with every field is under 1 KiB
FIELDS_MAX: Final = 64
V2_FIELDS: Final = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
]
# every field AWS documents for versions 2-5 (later versions' fields are accepted and ignored)
KNOWN_FIELDS: Final = frozenset(
    [
        *V2_FIELDS,
        "vpc-id",
        "subnet-id",
        "instance-id",
        "tcp-flags",
        "type",
        "pkt-srcaddr",
        "pkt-dstaddr",
        "region",
        "az-id",
        "sublocation-type",
        "sublocation-id",
        "pkt-src-aws-service",
        "pkt-dst-aws-service",
        "flow-direction",
        "traffic-path",
    ]
)
REQUIRED: Final = ("srcaddr", "dstaddr", "srcport", "dstport", "protocol", "start")
PROTOCOLS: Final = {
    1: "icmp",
    6: "tcp",
    17: "udp",
    2: "igmp",
    47: "gre",
    50: "esp",
    58: "icmpv6",
    132: "sctp",
}

_ID: Final = {
    "interface-id": re.compile(r"^eni-[0-9a-z]{1,32}$"),
    "instance-id": re.compile(r"^i-[0-9a-z]{1,32}$"),
    "account-id": re.compile(r"^[0-9]{12}$"),
    "vpc-id": re.compile(r"^vpc-[0-9a-z]{1,32}$"),
    "subnet-id": re.compile(r"^subnet-[0-9a-z]{1,32}$"),
    "region": re.compile(r"^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$"),
}
_FIELD_NAME: Final = re.compile(r"^[a-z0-9-]{1,40}$")
_INTERNAL: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


class FormatError(ValueError):
    """A log format that cannot be used: said once, when the source is configured."""


@dataclass(frozen=True, slots=True)
class FlowFormat:
    """The field order of a flow log, and the caller's interface -> instance map (v2 has no
    instance-id field)."""

    fields: tuple[str, ...] = tuple(V2_FIELDS)
    interfaces: Mapping[str, str] = field(default_factory=dict)
    region: str = ""  # the log's region, when its records do not say

    @classmethod
    def parse(cls, spec: str, *, interfaces: Mapping[str, str] | None = None, region: str = "") -> FlowFormat:
        """``${version} ${srcaddr} ...`` (a LogFormat), or ``version srcaddr ...`` (a header line)."""
        names = tuple(t[2:-1] if t.startswith("${") and t.endswith("}") else t for t in spec.split())
        if not names or len(names) > FIELDS_MAX:
            raise FormatError(f"a flow-log format has 1 to {FIELDS_MAX} fields, got {len(names)}")
        for n in names:
            if not _FIELD_NAME.match(n):
                raise FormatError(f"{n[:40]!r} is not a flow-log field name")
        if len(set(names)) != len(names):
            raise FormatError("a flow-log format names a field twice")
        missing = [r for r in REQUIRED if r not in names]
        if missing:
            raise FormatError(f"the format lacks {', '.join(missing)}: no flow can be read from it")
        return cls(names, dict(interfaces or {}), region)


DEFAULT_FORMAT: Final = FlowFormat()


@functools.lru_cache(maxsize=65_536)
def is_internal(ip: str) -> bool:
    """RFC 1918, shared (CGNAT), loopback, link-local and unique-local addresses; everything else
    (documentation ranges included, as in the examples) counts as external ("public").
    Memoized: a fleet's records name the same addresses over and over."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in n for n in _INTERNAL if n.version == addr.version)


class _Bad(ValueError):
    pass


def _int(values: Mapping[str, str], name: str, lo: int, hi: int, *, required: bool = False) -> int:
    v = values.get(name, "-")
    if v == "-":
        if required:
            raise _Bad(f"{name} has no value")
        return -1
    if not v.isdigit() or len(v) > 20:
        raise _Bad(f"{name} {v[:40]!r} is not a number")
    n = int(v)
    if not lo <= n <= hi:
        raise _Bad(f"{name} {n} is out of range [{lo}, {hi}]")
    return n


@functools.lru_cache(maxsize=65_536)
def _canonical_ip(v: str) -> str:
    """The address's canonical text, or '' (memoized: parsing is a third of a record's cost)."""
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        return ""


def _ip(values: Mapping[str, str], name: str) -> str:
    v = values.get(name, "-")
    ip = "" if v == "-" or len(v) > bounds.IP_CHARS else _canonical_ip(v)
    if not ip:
        raise _Bad(f"{name} {v[:64]!r} is not an IP address")
    return ip


def _id(values: Mapping[str, str], name: str) -> str:
    v = values.get(name, "-")
    if v == "-":
        return ""
    if not _ID[name].match(v):
        raise _Bad(f"{name} {v[:64]!r} is not a valid {name}")
    return v


_S: Final = 1_000_000_000
_SECONDS_MIN: Final = bounds.TIME_MIN_NS // _S
_SECONDS_MAX: Final = bounds.TIME_MAX_NS // _S


def _flow(values: Mapping[str, str], fmt: FlowFormat) -> ev.NetworkFlow:
    src = _ip(values, "srcaddr")
    dst = _ip(values, "dstaddr")
    sport = _int(values, "srcport", 0, 65535, required=True)
    dport = _int(values, "dstport", 0, 65535, required=True)
    proto = _int(values, "protocol", 0, 255, required=True)
    start = _int(values, "start", _SECONDS_MIN, _SECONDS_MAX, required=True)
    end = _int(values, "end", _SECONDS_MIN, _SECONDS_MAX)
    if 0 <= end < start:
        raise _Bad(f"end {end} is before start {start}")
    packets = max(_int(values, "packets", 0, bounds.INT64_MAX), 0)
    nbytes = max(_int(values, "bytes", 0, bounds.INT64_MAX), 0)
    flags = _int(values, "tcp-flags", 0, 65535)
    _int(values, "version", 2, 1000)  # range only: the field list, not the version, says what is where
    action = values.get("action", "-")
    if action not in ("ACCEPT", "REJECT", "-"):
        raise _Bad(f"action {action[:40]!r} is not ACCEPT or REJECT")
    direction_field = values.get("flow-direction", "-")
    if direction_field not in ("ingress", "egress", "-"):
        raise _Bad(f"flow-direction {direction_field[:40]!r} is not ingress or egress")
    eni = _id(values, "interface-id")
    instance = _id(values, "instance-id") or fmt.interfaces.get(eni, "") or eni
    if not instance:
        raise _Bad("the record names neither an instance nor an interface")
    if direction_field == "ingress":
        direction = "Inbound"
    elif direction_field == "egress":
        direction = "Outbound"
    else:
        si, di = is_internal(src), is_internal(dst)
        direction = "Outbound" if si and not di else "Inbound" if di and not si else "Unknown"
    local = src if direction == "Outbound" else dst if direction == "Inbound" else ""
    device = ev.Device(
        instance_uid=instance,
        account_uid=_id(values, "account-id"),
        region=_id(values, "region") if "region" in values else fmt.region,
    )
    return ev.NetworkFlow(
        kind=KIND,
        time=start * _S,
        device=device,
        activity_id=6,
        src_endpoint=ev.Endpoint(ip=src, port=sport),
        dst_endpoint=ev.Endpoint(ip=dst, port=dport),
        protocol_num=proto,
        protocol_name=PROTOCOLS.get(proto, ""),
        direction=direction,
        packets=packets,
        bytes=nbytes,
        start_time=start * _S,
        end_time=(end if end >= 0 else start) * _S,
        action="" if action == "-" else action,
        interface_uid=eni,
        vpc_uid=_id(values, "vpc-id"),
        subnet_uid=_id(values, "subnet-id"),
        tcp_flags=flags,
        local_ip=local,
    )


SKIPPED: Final = ("NODATA", "SKIPDATA")


def normalize_flow_line(
    line: bytes | str, fmt: FlowFormat = DEFAULT_FORMAT, *, number: int = 1
) -> ev.NetworkFlow | Rejection | str:
    """One flow-log line -> its flow, a Rejection with the reason, or (a str) why a valid line
    carries no flow: ``NODATA``, ``SKIPDATA``, ``header`` or ``blank``. Never raises."""
    raw = line.encode(errors="replace") if isinstance(line, str) else line
    try:
        if len(raw) > LINE_MAX:
            raise _Bad(f"line of {len(raw)} bytes exceeds {LINE_MAX}")
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise _Bad("not ASCII: a flow-log record is ASCII") from None
        tokens = text.split()
        if not tokens:
            return "blank"
        if tuple(tokens) == fmt.fields:
            return "header"
        if len(tokens) != len(fmt.fields):
            raise _Bad(f"{len(tokens)} fields, the format has {len(fmt.fields)}")
        values = dict(zip(fmt.fields, tokens, strict=True))
        status = values.get("log-status", "OK")
        if status in SKIPPED:
            return status
        if status not in ("OK", "-"):
            raise _Bad(f"log-status {status[:40]!r} is not OK, NODATA or SKIPDATA")
        return _flow(values, fmt)
    except _Bad as exc:
        return Rejection(SOURCE, number, str(exc), raw[: bounds.RAW_PREFIX_BYTES])
    except Exception as exc:  # totality: a bug here dead-letters the line, never the batch
        return Rejection(SOURCE, number, f"unexpected: {exc!r}"[:512], raw[: bounds.RAW_PREFIX_BYTES])


def normalize_flow_lines(lines: Iterable[bytes | str], fmt: FlowFormat = DEFAULT_FORMAT) -> Normalized:
    out = Normalized()
    for n, line in enumerate(lines, start=1):
        out.add(normalize_flow_line(line, fmt, number=n))
    return out
