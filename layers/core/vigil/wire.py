"""The agent wire format (agent -> Kinesis), DESIGN §3.1, as msgspec structs.

One Kinesis record is one gzip-compressed batch of newline-delimited JSON events from one host.
Every event carries ``v`` (schema version), ``kind``, ``time`` (epoch ns) and ``seq`` (per-agent
monotonic: a gap is loss). The ``host`` block is written on the first event of a batch (the batch
header) and may be repeated on any event; decoders carry it forward to the events that follow.

Decoding is bounded (issue 13): every field has a range (``vigil.bounds``, as msgspec ``Meta``
constraints, so a value out of range is a line error naming the field), and ``decode_record``
caps what one record can cost: its inflated size, its lines and the line errors it lists.

**Version 2** (the agent's default since issue 14) adds a per-record *process table*: a ``proc``
line defines a process once (``ref``, its block without its lineage, and its ``lineage`` as refs
of ancestors defined before it), and the events after it in the same record name it by its ref
(``"process":7``) instead of repeating the block and its five ancestors on every event. Version 1
records (every block inline) still decode, and a v2 record may mix both. The table is resolved
once per record, so each block is decoded once, not once per event. A reference to a process not
defined before it in its record is a line error with its reason, never a crash; the table holds at
most ``PROC_TABLE_MAX`` processes.

This module is shared by the agent (encode) and the Lambda core (decode). It does no I/O.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Final, Literal

import msgspec

from vigil import bounds as b
from vigil import events as ev

WIRE_VERSION: Final = 1  # an event's schema (its `v`); the record format with a process table is 2
RECORD_VERSION: Final = 2  # written on `proc` lines
MAX_RECORD_BYTES: Final = 1024 * 1024  # Kinesis record limit
GZIP_MAGIC: Final = b"\x1f\x8b"


class Identity(msgspec.Struct, frozen=True, gc=False):
    """The EC2 instance identity document and its AWS signature, as IMDS serves them, both base64
    (the document's exact bytes are what is signed). Verified by ingest: ``vigil.identity``."""

    document: Annotated[str, msgspec.Meta(max_length=8192)]  # base64 of .../instance-identity/document
    signature: Annotated[str, msgspec.Meta(max_length=2048)]  # .../instance-identity/signature (base64)


class Host(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    instance_id: b.InstanceId
    account_id: b.AccountId = ""
    region: b.Region = ""
    hostname: b.HostName = ""
    boot_id: b.HostToken = ""
    # wall-clock ns of the boot (/proc/stat btime): with boot_id, what a wire v2 process block
    # that leaves out its uid is derived from (``derived_uid``)
    boot_time: b.OptionalTime = 0
    agent_version: b.HostToken = ""
    instance_type: b.InstanceType = ""
    image_id: b.ImageId = ""
    availability_zone: b.Zone = ""
    vcpus: b.Vcpus = 0
    identity: Identity | None = None  # the batch header's proof of instance_id (docs/wire-format.md)


# The process block is OCSF-shaped on the wire (vigil.events.Process, with File, User, Stdio and
# Endpoint), so the Lambda decodes it straight into the normalized model with no copy: at ~100k
# events/s per core, a per-event conversion of a process and its lineage cost more than decoding.
Process = ev.Process
File = ev.File
User = ev.User
Stdio = ev.Stdio
Endpoint = ev.Endpoint

# Wire v2: where an event carries a process it may carry its ref in the record's table instead;
# decode_record resolves every ref, so consumers (and the type checker) only ever see Process.
if TYPE_CHECKING:
    ProcField = Process
    OptProcField = Process | None
else:
    ProcField = Process | b.Ref
    OptProcField = Process | b.Ref | None


class ProcDef(
    msgspec.Struct, frozen=True, gc=False, omit_defaults=True, tag_field="kind", tag="proc", kw_only=True
):
    """Wire v2: one entry of the record's process table (a ``proc`` line). ``process`` is the block
    without its lineage (or with it inline); ``lineage`` the refs of its ancestors, nearest first,
    each defined earlier in the record without a lineage of its own. A ``host`` block here applies
    to the events after it, as on an event."""

    ref: b.Ref
    process: Process
    lineage: Annotated[list[b.Ref], msgspec.Meta(max_length=b.LINEAGE_MAX)] = []
    v: b.Version = RECORD_VERSION
    host: Host | None = None


class Repeats(
    msgspec.Struct, frozen=True, gc=False, omit_defaults=True, tag_field="kind", tag="repeats", kw_only=True
):
    """Wire v2: events the agent folded into one (a ``repeats`` line, not an event). Each entry is
    ``[seq, n, last_time]``: after the connect, accept or DNS query ``seq`` of this record, ``n``
    more events equal to it but for their time, seq and ephemeral port (a connect's local port, an
    accept's remote port) happened, the last at ``last_time``. A busy host's connects and queries
    repeat: in a second of the bench's busy mix, ~490 of its ~500 connects and accepts and 100
    queries equal one earlier in that second; folding them is a third of its record's bytes."""

    of: Annotated[list[tuple[b.Seq, b.RepeatCount, b.Time]], msgspec.Meta(max_length=b.FOLDS_MAX)]
    v: b.Version = RECORD_VERSION


class _Base(msgspec.Struct, frozen=True, gc=False, omit_defaults=True, tag_field="kind", kw_only=True):
    time: b.Time  # epoch ns
    seq: b.Seq
    v: b.Version = WIRE_VERSION
    host: Host | None = None


class ProcessExec(_Base, frozen=True, tag="process_exec"):
    process: ProcField


class ProcessExit(_Base, frozen=True, tag="process_exit"):
    process: ProcField
    exit_code: b.Int32 = 0


class _Net(_Base, frozen=True):
    process: ProcField
    protocol: b.Word = "tcp"  # tcp|udp
    family: b.Word = "inet"  # inet|inet6
    local_ip: b.Ip = ""
    local_port: b.Port = 0
    remote_ip: b.Ip = ""
    remote_port: b.Port = 0
    success: bool = True
    # wire v2 repeats (``Repeats``): how many more events of this record this one stands for, and
    # the time of the last of them; set from the record's ``repeats`` line, 0 when it stands alone
    repeats: b.Repeats = 0
    last_time: b.OptionalTime = 0


class NetConnect(_Net, frozen=True, tag="net_connect"):
    pass


class NetAccept(_Net, frozen=True, tag="net_accept"):
    pass


class NetListen(_Net, frozen=True, tag="net_listen"):
    pass


class UnixConnect(_Base, frozen=True, tag="unix_connect"):
    process: ProcField
    path: b.Path
    success: bool = True


class DnsAnswer(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    type: b.Word  # A|AAAA|CNAME|...
    rdata: b.Domain
    ttl: b.UInt32 = 0


class DnsQuery(_Base, frozen=True, tag="dns_query"):
    hostname: b.Domain
    type: b.Word = "A"
    process: OptProcField = None  # attributed when audit saw the sending socket
    protocol: b.Word = "udp"
    resolver_ip: b.Ip = ""
    resolver_port: b.Port = 53
    rcode: b.Word = ""  # NOERROR|NXDOMAIN|... when a response was seen
    answers: Annotated[list[DnsAnswer], msgspec.Meta(max_length=b.ANSWERS_MAX)] = []
    repeats: b.Repeats = 0  # as on a connect (``Repeats``)
    last_time: b.OptionalTime = 0


class _File(_Base, frozen=True):
    process: ProcField
    path: b.Path
    success: bool = True


class FileWrite(_File, frozen=True, tag="file_write"):
    pass


class FileRename(_File, frozen=True, tag="file_rename"):
    new_path: b.Path = ""


class FileUnlink(_File, frozen=True, tag="file_unlink"):
    pass


class FileLink(_File, frozen=True, tag="file_link"):
    target: b.Path = ""  # the existing file the new link points at
    symbolic: bool = False


class FileOpenSensitive(_File, frozen=True, tag="file_open_sensitive"):
    flags: b.Flags = ""  # O_RDONLY|O_WRONLY|...


class Ptrace(_Base, frozen=True, tag="ptrace"):
    process: ProcField
    request: b.Word  # PTRACE_ATTACH|PTRACE_POKETEXT|PTRACE_TRACEME|...
    target: OptProcField = None


class ProcessVmWrite(_Base, frozen=True, tag="process_vm_write"):
    process: ProcField
    target: OptProcField = None


class ProcMemWrite(_Base, frozen=True, tag="proc_mem_write"):
    process: ProcField
    path: b.Path  # /proc/<pid>/mem
    target: OptProcField = None


class ModuleLoad(_Base, frozen=True, tag="module_load"):
    """A kernel module (``syscall`` init_module/finit_module) or a shared library mapped
    executable (``syscall`` "mmap")."""

    process: ProcField
    name: b.Name = ""
    path: b.Path = ""
    sha256: b.Token = ""
    syscall: b.Word = "finit_module"
    modified_time: b.OptionalTime = 0  # the file's mtime, ns (libraries: NewLibraryLoaded compares it)


class MemfdExec(_Base, frozen=True, tag="memfd_exec"):
    process: ProcField
    memfd_name: b.Name = ""


class Mount(_Base, frozen=True, tag="mount"):
    process: ProcField
    source: b.Path = ""
    target: b.Path = ""
    fs_type: b.Name = ""
    flags: b.Flags = ""


class Userfaultfd(_Base, frozen=True, tag="userfaultfd"):
    process: ProcField


class Setuid(_Base, frozen=True, tag="setuid"):
    process: ProcField
    syscall: b.Word = "setuid"  # setuid|setresuid|setreuid
    new_uid: b.Id = -1
    new_euid: b.Id = -1


class Counters(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    captured: b.Count = 0
    sent: b.Count = 0
    dropped: b.Count = 0  # shed on purpose (limits) or lost (spool full): the agent never hides loss
    spooled: b.Count = 0
    spool_evicted: b.Count = 0
    audit_lost: b.Count = 0
    send_errors: b.Count = 0
    audit_overruns: b.Count = 0  # times the kernel dropped audit multicast for the agent (ENOBUFS)
    ebpf_lost: b.Count = 0  # eBPF records the kernel had no ring buffer room for
    dns_lost: b.Count = 0  # DNS messages captured but not reported (unreadable, untracked, not reassembled)
    # events shed by the limiter, by class (also counted in dropped)
    shed: Annotated[dict[b.Word, b.Count], msgspec.Meta(max_length=b.SENSORS_MAX)] = {}


class Heartbeat(_Base, frozen=True, tag="heartbeat"):
    agent_version: b.Token = ""
    sensors_active: Annotated[list[b.Word], msgspec.Meta(max_length=b.SENSORS_MAX)] = []
    # sensor -> the reason it is unavailable
    sensors_unavailable: Annotated[dict[b.Word, b.Text], msgspec.Meta(max_length=b.SENSORS_MAX)] = {}
    counters: Counters = Counters()
    cpu_percent: b.Percent = 0.0
    rss_bytes: b.Count = 0
    vcpus: b.Vcpus = 0
    kernel: b.Name = ""
    # event classes currently shed by the limiter
    degraded: Annotated[list[b.Word], msgspec.Meta(max_length=b.SENSORS_MAX)] = []


WireEvent = (
    ProcessExec
    | ProcessExit
    | NetConnect
    | NetAccept
    | NetListen
    | UnixConnect
    | DnsQuery
    | FileWrite
    | FileRename
    | FileUnlink
    | FileLink
    | FileOpenSensitive
    | Ptrace
    | ProcessVmWrite
    | ProcMemWrite
    | ModuleLoad
    | MemfdExec
    | Mount
    | Userfaultfd
    | Setuid
    | Heartbeat
)

KINDS: Final[tuple[str, ...]] = tuple(str(t.__struct_config__.tag) for t in WireEvent.__args__)
Net = NetConnect | NetAccept
# what an agent may fold into one event and a ``repeats`` line (``Repeats``)
FOLDABLE: Final[frozenset[type]] = frozenset({NetConnect, NetAccept, DnsQuery})
# what decode_record's process table looks up per event, by class instead of by getattr
_NO_PROCESS: Final[frozenset[type]] = frozenset(
    t for t in WireEvent.__args__ if "process" not in t.__struct_fields__
)
_HAS_TARGET: Final[frozenset[type]] = frozenset(
    t for t in WireEvent.__args__ if "target" in t.__struct_fields__
)

_decoder: Final[msgspec.json.Decoder[WireEvent]] = msgspec.json.Decoder(WireEvent)
# a record's lines: events and (v2) process table entries
_line_decoder: Final[msgspec.json.Decoder[WireEvent | ProcDef | Repeats]] = msgspec.json.Decoder(
    WireEvent | ProcDef | Repeats
)
_encoder: Final = msgspec.json.Encoder()


class LineError(msgspec.Struct, frozen=True):
    """A line that could not be decoded: where it was and why. Goes to the dead-letter queue.

    ``line`` 0 is the record as a whole: either the record was rejected whole (not gzip, inflates
    past the bound, too many lines) or, when it comes last, the summary of the bad lines beyond
    the first ``LINE_ERRORS_LISTED`` (see ``Decoded``).
    """

    line: int  # 1-based within the batch; 0 = the record as a whole, or the summary
    reason: str
    raw: bytes


class Decoded(msgspec.Struct, frozen=True):
    """One record decoded, with bounded error reporting.

    - ``events``: the lines that decoded, in order.
    - ``errors``: at most ``LINE_ERRORS_LISTED`` (100) line errors with a raw prefix each, then, if
      there were more, ONE summary ``LineError(line=0, reason="N more bad lines not listed ...",
      raw=<up to 3 samples>)``; a record rejected whole is a single ``LineError(line=0, ...)``.
    - ``bad_lines``: every bad line, listed or not (the metric to publish); ``lines``: non-blank
      lines seen (0 for a record rejected whole).
    - ``rejected_whole``: the record was refused before any line was decoded (``events`` is empty).
    """

    events: list[WireEvent]
    errors: list[LineError]
    bad_lines: int = 0
    lines: int = 0
    rejected_whole: bool = False


class BatchTooLarge(ValueError):
    """The record inflates past the agent's raw batch bound: a gzip bomb, never decoded in part."""


def decompress(data: bytes, max_size: int = b.RAW_BATCH_BYTES) -> bytes:
    """Gzip batches are inflated; plain NDJSON passes through (tests and `vigil replay`).

    Bounded: at most ``max_size`` bytes are ever produced (zlib's ``max_length``), so a bomb costs
    ``max_size`` of memory, not what it would inflate to; beyond it, ``BatchTooLarge``.
    Concatenated gzip members (up to ``MAX_GZIP_MEMBERS``) and zero padding after them are
    accepted, as ``gzip.decompress`` does; anything else after a member is ``gzip.BadGzipFile``;
    a truncated member is ``EOFError``; a bad CRC, length or deflate stream is ``zlib.error``.
    """
    if data[:2] != GZIP_MAGIC:
        if len(data) > max_size:
            raise BatchTooLarge(f"plain batch of {len(data)} bytes exceeds {max_size} bytes")
        return data
    parts: list[bytes] = []
    size = 0
    rest = data
    for _ in range(b.MAX_GZIP_MEMBERS):
        d = zlib.decompressobj(wbits=31)  # one gzip member: header, deflate, CRC32 and ISIZE checked
        out = d.decompress(rest, max_size - size + 1)
        size += len(out)
        if size > max_size:
            raise BatchTooLarge(f"inflates past {max_size} bytes (the agent's batch_max_raw_mb bound)")
        if not d.eof:
            raise EOFError("compressed data ended before the end-of-stream marker was reached")
        parts.append(out)
        rest = d.unused_data.lstrip(b"\x00")
        if not rest:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if rest[:2] != GZIP_MAGIC:
            raise gzip.BadGzipFile(f"{len(rest)} bytes of trailing garbage after gzip member {len(parts)}")
    raise BatchTooLarge(f"more than {b.MAX_GZIP_MEMBERS} gzip members (the agent writes one)")


def iter_lines(payload: bytes) -> Iterator[tuple[int, bytes]]:
    for n, line in enumerate(payload.split(b"\n"), start=1):
        if line.strip():
            yield n, line


def decode_line(line: bytes) -> WireEvent:
    """Decode one NDJSON line; raises msgspec.DecodeError / ValidationError on bad input. A line
    alone has no process table: a v2 ref (``"process":7``) is an error here (``decode_record``
    resolves them)."""
    e = _Table().take(_decoder.decode(line))
    if e is None:
        raise msgspec.ValidationError("a process ref needs its record's process table (wire v2)")
    return e


_BAD_LINE: Final = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


def _reject(reason: str, data: bytes) -> Decoded:
    return Decoded([], [LineError(0, reason, data[: b.SAMPLE_BYTES])], rejected_whole=True)


def decode_record(data: bytes, *, max_raw: int = b.RAW_BATCH_BYTES) -> Decoded:
    """Decode one Kinesis record. Never raises, and its memory and output are bounded.

    A record is refused whole (one ``LineError(0, ...)``, no event) when it is not gzip, inflates
    past ``max_raw`` (the agent's ``batch_max_raw_mb``) or has more than ``MAX_LINES`` lines (the
    most an agent can put in ``max_raw``); otherwise every line that decodes is kept and the bad
    ones are reported as described on ``Decoded``. Wire v2's ``proc`` lines are not events: they
    fill the record's process table, and the refs of the events after them are resolved here.
    """
    try:
        payload = decompress(data, max_raw)
    except BatchTooLarge as exc:
        return _reject(f"batch rejected whole, not decoded: {exc}", data)
    except (OSError, EOFError, zlib.error) as exc:
        return _reject(f"not a gzip batch: {exc}", data)
    max_lines = max(b.MAX_LINES, -(-max_raw // b.MIN_LINE_BYTES))
    newlines = payload.count(b"\n")
    if newlines > max_lines:  # a trailing newline is not a line of its own
        return _reject(
            f"batch rejected whole, not decoded: {newlines} lines exceed {max_lines}, the most "
            f"{max_raw} bytes of valid events can hold",
            payload,
        )
    try:  # the common case, a clean batch, in one call; a bad line falls back to line by line
        items = _line_decoder.decode_lines(payload)
    except _BAD_LINE:
        pass
    else:
        events: list[WireEvent] = []
        table = _Table(events)
        for item in items:
            e = table.take(item)
            if e is None:
                if table.error:
                    break  # a bad ref or table entry: line by line, for its line number
                continue
            events.append(e)
        else:
            table.name_processes()
            return Decoded(events, [], 0, len(items))
    events = []
    errors: list[LineError] = []
    bad = lines = 0
    unlisted: list[tuple[int, str, bytes]] = []  # (line, reason, raw) beyond the listed ones
    reasons: Counter[str] = Counter()
    decode = _line_decoder.decode
    table = _Table(events)
    for n, line in iter_lines(payload):
        lines += 1
        try:
            e = table.take(decode(line))
            if e is not None:
                events.append(e)
                continue
            if not table.error:
                continue
            reason = table.error
        except _BAD_LINE as exc:
            reason = _reason(exc)
        bad += 1
        if len(errors) < b.LINE_ERRORS_LISTED:
            errors.append(LineError(n, reason, line[: b.RAW_PREFIX_BYTES]))
            continue
        reasons[reason] += 1
        if len(unlisted) < b.SUMMARY_SAMPLES:
            unlisted.append((n, reason, line[: b.SAMPLE_BYTES]))
        else:  # keep the first samples and the latest one
            unlisted[-1] = (n, reason, line[: b.SAMPLE_BYTES])
    if unlisted:
        errors.append(_summary(bad - len(errors), unlisted, reasons))
    table.name_processes()
    return Decoded(events, errors, bad, lines)


_set = msgspec.structs.force_setattr


# (boot id, boot time, pid, start) -> uuid: derived once per process, not once per record
_derived: dict[tuple[str, int, int, int], str] = {}
_DERIVED_MAX: Final = 65_536


class _Table:
    """A record's process table (wire v2), filled and used in one pass over its lines."""

    __slots__ = (
        "boot",
        "by_seq",
        "error",
        "events",
        "expanded",
        "host",
        "indexed",
        "lineages",
        "procs",
        "unnamed",
        "weights",
    )

    def __init__(self, events: list[WireEvent] | None = None) -> None:
        self.events = events if events is not None else []  # the record's events so far (repeats)
        self.by_seq: dict[int, Net | DnsQuery] = {}  # seq -> a foldable event of events[:indexed]
        self.indexed = 0
        self.procs: dict[int, Process] = {}
        self.weights: dict[int, int] = {}  # ref -> process_weight of it and its ancestors
        # ancestor refs -> (their processes, their weight): the children of one parent share it
        self.lineages: dict[tuple[int, ...], tuple[list[Process], int]] = {}
        self.expanded = 0  # what the events named so far (EXPANDED_MAX)
        self.host: Host | None = None  # a proc line's host, for the next event
        self.boot: Host | None = None  # the record's first host block: its boot names processes
        self.unnamed: list[Process] = []  # defined without a uid, to derive once the boot is known
        self.error = ""

    def name_processes(self) -> None:
        """Give every process defined without a uid the one derived from the record's boot
        (``derived_uid``); one that cannot be derived (no boot in the record, a start time off
        the tick) keeps none, as a process the agent sent without one always did."""
        boot = self.boot
        if boot is None or not self.unnamed:
            return
        boot_id, boot_time = boot.boot_id, boot.boot_time
        known = _derived
        for p in self.unnamed:
            key = (boot_id, boot_time, p.pid, p.created_time)
            uid = known.get(key)
            if uid is None:  # a host's long-lived processes come back in each of its records
                uid = derived_uid(p, boot_id, boot_time)
                if len(known) >= _DERIVED_MAX:
                    known.clear()
                known[key] = uid
            if uid:
                _set(p, "uid", uid)

    def take(self, item: WireEvent | ProcDef | Repeats) -> WireEvent | None:
        """The event with its refs resolved; None for a table entry (stored) or a line in error
        (``error`` says why; the event is dropped, the record goes on)."""
        self.error = ""
        cls = item.__class__
        if cls is ProcDef:
            self._define(item)  # type: ignore[arg-type]
            return None
        if cls is Repeats:
            self._repeat(item)  # type: ignore[arg-type]
            return None
        e: WireEvent = item  # type: ignore[assignment]  # not a ProcDef: checked by class above
        p = e.process if cls not in _NO_PROCESS else None  # type: ignore[union-attr]
        t = e.target if cls in _HAS_TARGET else None  # type: ignore[union-attr]
        if p.__class__ is int:
            q = self.procs.get(p)
            if q is None:
                self.error = f"process ref {p} is not defined before it in the record"
                return None
            weight = self.weights[p]
        else:
            q, weight = None, 0
        if t.__class__ is int:
            target = self.procs.get(t)
            if target is None:
                self.error = f"target ref {t} is not defined before it in the record"
                return None
            weight += self.weights[t]
        if weight:
            if self.expanded + weight > b.EXPANDED_MAX:
                self.error = (
                    f"the record's events name more than {b.EXPANDED_MAX} bytes of process blocks "
                    "(wire v2: the agent seals a batch before)"
                )
                return None
            self.expanded += weight
            if q is not None:
                _set(e, "process", q)
            if t.__class__ is int:
                _set(e, "target", target)
        if self.host is not None:
            if e.host is None:
                _set(e, "host", self.host)
            self.host = None
        if self.boot is None:
            self.boot = e.host
        return e

    def _repeat(self, r: Repeats) -> None:
        """Apply a ``repeats`` line to the events before it: all of its entries or, when one is
        wrong (a seq that names no foldable event before it, one folded twice, a last time before
        the event's own), none, and the line is an error with the reason."""
        by_seq = self.by_seq
        events = self.events
        for x in events[self.indexed :]:
            if x.__class__ in FOLDABLE and x.seq not in by_seq:
                by_seq[x.seq] = x  # type: ignore[assignment]  # NetConnect | NetAccept | DnsQuery
        self.indexed = len(events)
        todo: dict[int, tuple[Net | DnsQuery, int, int]] = {}
        for seq, n, last in r.of:
            e = by_seq.get(seq)
            if e is None:
                self.error = (
                    f"repeats: seq {seq} names no connect, accept or DNS query before it in the record"
                )
                return
            if e.repeats or seq in todo:
                self.error = f"repeats: seq {seq} is folded twice"
                return
            if last < e.time:
                self.error = f"repeats: the last repeat of seq {seq} ({last}) is before it ({e.time})"
                return
            todo[seq] = (e, n, last)
        for e, n, last in todo.values():
            _set(e, "repeats", n)
            _set(e, "last_time", last)

    def _define(self, d: ProcDef) -> None:
        procs = self.procs
        ref = d.ref
        if ref in procs:
            self.error = f"process ref {ref} is defined twice in the record"
            return
        if len(procs) >= b.PROC_TABLE_MAX:
            self.error = f"the record's process table is full ({b.PROC_TABLE_MAX} processes)"
            return
        p = d.process
        weight = process_weight(p)
        if p.lineage:
            weight += sum(map(process_weight, p.lineage))
        if d.lineage:
            if p.lineage:
                self.error = f"process ref {ref} has a lineage both inline and by ref"
                return
            key = tuple(d.lineage)
            known = self.lineages.get(key)
            if known is None:
                weights = self.weights
                lineage = []
                lw = 0
                for r in key:
                    a = procs.get(r)
                    if a is None:
                        self.error = f"ancestor ref {r} of process ref {ref} is not defined before it"
                        return
                    if a.lineage:
                        self.error = f"ancestor ref {r} of process ref {ref} has a lineage of its own"
                        return
                    lineage.append(a)
                    lw += weights[r]
                # valid for the rest of the record: a ref is defined once, and never changes
                known = self.lineages[key] = (lineage, lw)
            weight += known[1]
            # p was decoded from this line and nothing else holds it: set its lineage in place
            # (a copy of the block per definition cost more than the rest of the definition). The
            # children of one parent share one list: nothing mutates a decoded lineage.
            _set(p, "lineage", known[0])
        procs[ref] = p
        self.weights[ref] = weight
        if not p.uid:
            self.unnamed.append(p)
        if d.host is not None:
            self.host = d.host
            if self.boot is None:
                self.boot = d.host


def process_weight(p: Process) -> int:
    """What naming ``p`` (without its lineage) may ask of the detections, for ``EXPANDED_MAX``:
    its variable-size strings and a constant. The agent counts the same to seal its batches."""
    return (
        b.PROC_WEIGHT_BASE
        + len(p.cmd_line)
        + sum(map(len, p.args))
        + len(p.file.path)
        + len(p.working_directory)
        + len(p.ld_preload)
        + len(p.ld_library_path)
    )


CLOCK_TICK_NS: Final = 10_000_000  # USER_HZ: 100 on every Linux architecture the agent runs on


def process_uuid(boot_id: str, pid: int, start: str) -> str:
    """The stable process uuid (DESIGN 3.1): sha1 of boot id, pid and start time (in clock ticks
    since boot, as /proc/<pid>/stat gives it), as 8-4-4-4-12 hex. The agent's and the ingest's."""
    h = hashlib.sha1(f"{boot_id}:{pid}:{start}".encode(), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def derived_uid(p: Process, boot_id: str, boot_time: int) -> str:
    """``p``'s uuid from its pid and start on a host whose boot is (``boot_id``, ``boot_time``):
    keyed on the start in clock ticks since the boot when ``created_time`` falls on a tick, else
    on the start itself (``a<ns>``: a process the agent saw only by audit, gone before it could
    read its start). "" without a boot or a start. The agent leaves a uid out only when this
    gives it back exactly, so any other uid is always sent."""
    created = p.created_time
    if not boot_id or boot_time <= 0 or created <= 0:
        return ""
    ticks, rest = divmod(created - boot_time, CLOCK_TICK_NS)
    return process_uuid(boot_id, p.pid, str(ticks) if not rest and ticks >= 0 else f"a{created}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to decode"
    return str(exc)[:512]


def _summary(more: int, samples: list[tuple[int, str, bytes]], reasons: Counter[str]) -> LineError:
    top = "; ".join(f"{n} x {r[:120]}" for r, n in reasons.most_common(3))
    where = ", ".join(str(n) for n, _, _ in samples)
    return LineError(
        0,
        f"{more} more bad lines not listed (first at line {samples[0][0]}, last at line {samples[-1][0]}); "
        f"most common reasons: {top}; samples in raw from lines {where}",
        b"\n".join(raw for _, _, raw in samples),
    )


def decode_batch(data: bytes) -> tuple[list[WireEvent], list[LineError]]:
    """Decode one batch: ``decode_record``'s events and (bounded) errors. Never raises.

    Events keep ``host`` as sent (usually only the first has it); consumers carry the last seen
    host forward (see ``vigil.normalize.agent.normalize_batch``).
    """
    d = decode_record(data)
    return d.events, d.errors


def encode_event(event: WireEvent) -> bytes:
    return _encoder.encode(event)


def encode_batch(events: list[WireEvent], *, compress: bool = True) -> bytes:
    """NDJSON (one event per line), gzip-compressed unless ``compress`` is False."""
    body = b"\n".join(_encoder.encode(e) for e in events) + b"\n"
    return gzip.compress(body, compresslevel=6) if compress else body


EventKind = Literal[
    "process_exec",
    "process_exit",
    "net_connect",
    "net_accept",
    "net_listen",
    "unix_connect",
    "dns_query",
    "file_write",
    "file_rename",
    "file_unlink",
    "file_link",
    "file_open_sensitive",
    "ptrace",
    "process_vm_write",
    "proc_mem_write",
    "module_load",
    "memfd_exec",
    "mount",
    "userfaultfd",
    "setuid",
    "heartbeat",
]
