"""The agent wire format (agent -> Kinesis), DESIGN §3.1, as msgspec structs.

One Kinesis record is one gzip-compressed batch of newline-delimited JSON events from one host.
Every event carries ``v`` (schema version), ``kind``, ``time`` (epoch ns) and ``seq`` (per-agent
monotonic: a gap is loss). The ``host`` block is written on the first event of a batch (the batch
header) and may be repeated on any event; decoders carry it forward to the events that follow.

This module is shared by the agent (encode) and the Lambda core (decode). It does no I/O.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Final, Literal

import msgspec

from vigil import events as ev

WIRE_VERSION: Final = 1
MAX_RECORD_BYTES: Final = 1024 * 1024  # Kinesis record limit
GZIP_MAGIC: Final = b"\x1f\x8b"


class Identity(msgspec.Struct, frozen=True, gc=False):
    """The EC2 instance identity document and its AWS signature, as IMDS serves them, both base64
    (the document's exact bytes are what is signed). Verified by ingest: ``vigil.identity``."""

    document: str  # base64 of /latest/dynamic/instance-identity/document
    signature: str  # /latest/dynamic/instance-identity/signature (already base64 in IMDS)


class Host(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    instance_id: str
    account_id: str = ""
    region: str = ""
    hostname: str = ""
    boot_id: str = ""
    agent_version: str = ""
    instance_type: str = ""
    image_id: str = ""
    availability_zone: str = ""
    vcpus: int = 0
    identity: Identity | None = None  # the batch header's proof of instance_id (docs/wire-format.md)


# The process block is OCSF-shaped on the wire (vigil.events.Process, with File, User, Stdio and
# Endpoint), so the Lambda decodes it straight into the normalized model with no copy: at ~100k
# events/s per core, a per-event conversion of a process and its lineage cost more than decoding.
Process = ev.Process
File = ev.File
User = ev.User
Stdio = ev.Stdio
Endpoint = ev.Endpoint


class _Base(msgspec.Struct, frozen=True, gc=False, omit_defaults=True, tag_field="kind", kw_only=True):
    time: int  # epoch ns
    seq: int
    v: int = WIRE_VERSION
    host: Host | None = None


class ProcessExec(_Base, frozen=True, tag="process_exec"):
    process: Process


class ProcessExit(_Base, frozen=True, tag="process_exit"):
    process: Process
    exit_code: int = 0


class _Net(_Base, frozen=True):
    process: Process
    protocol: str = "tcp"  # tcp|udp
    family: str = "inet"  # inet|inet6
    local_ip: str = ""
    local_port: int = 0
    remote_ip: str = ""
    remote_port: int = 0
    success: bool = True


class NetConnect(_Net, frozen=True, tag="net_connect"):
    pass


class NetAccept(_Net, frozen=True, tag="net_accept"):
    pass


class NetListen(_Net, frozen=True, tag="net_listen"):
    pass


class UnixConnect(_Base, frozen=True, tag="unix_connect"):
    process: Process
    path: str
    success: bool = True


class DnsAnswer(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    type: str  # A|AAAA|CNAME|...
    rdata: str
    ttl: int = 0


class DnsQuery(_Base, frozen=True, tag="dns_query"):
    hostname: str
    type: str = "A"
    process: Process | None = None  # attributed when audit saw the sending socket
    protocol: str = "udp"
    resolver_ip: str = ""
    resolver_port: int = 53
    rcode: str = ""  # NOERROR|NXDOMAIN|... when a response was seen
    answers: list[DnsAnswer] = []


class _File(_Base, frozen=True):
    process: Process
    path: str
    success: bool = True


class FileWrite(_File, frozen=True, tag="file_write"):
    pass


class FileRename(_File, frozen=True, tag="file_rename"):
    new_path: str = ""


class FileUnlink(_File, frozen=True, tag="file_unlink"):
    pass


class FileLink(_File, frozen=True, tag="file_link"):
    target: str = ""  # the existing file the new link points at
    symbolic: bool = False


class FileOpenSensitive(_File, frozen=True, tag="file_open_sensitive"):
    flags: str = ""  # O_RDONLY|O_WRONLY|...


class Ptrace(_Base, frozen=True, tag="ptrace"):
    process: Process
    request: str  # PTRACE_ATTACH|PTRACE_POKETEXT|PTRACE_TRACEME|...
    target: Process | None = None


class ProcessVmWrite(_Base, frozen=True, tag="process_vm_write"):
    process: Process
    target: Process | None = None


class ProcMemWrite(_Base, frozen=True, tag="proc_mem_write"):
    process: Process
    path: str  # /proc/<pid>/mem
    target: Process | None = None


class ModuleLoad(_Base, frozen=True, tag="module_load"):
    """A kernel module (``syscall`` init_module/finit_module) or a shared library mapped
    executable (``syscall`` "mmap")."""

    process: Process
    name: str = ""
    path: str = ""
    sha256: str = ""
    syscall: str = "finit_module"
    modified_time: int = 0  # the file's mtime, ns (libraries: NewLibraryLoaded compares it)


class MemfdExec(_Base, frozen=True, tag="memfd_exec"):
    process: Process
    memfd_name: str = ""


class Mount(_Base, frozen=True, tag="mount"):
    process: Process
    source: str = ""
    target: str = ""
    fs_type: str = ""
    flags: str = ""


class Userfaultfd(_Base, frozen=True, tag="userfaultfd"):
    process: Process


class Setuid(_Base, frozen=True, tag="setuid"):
    process: Process
    syscall: str = "setuid"  # setuid|setresuid|setreuid
    new_uid: int = -1
    new_euid: int = -1


class Counters(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    captured: int = 0
    sent: int = 0
    dropped: int = 0  # shed on purpose (limits) or lost (spool full): the agent never hides loss
    spooled: int = 0
    spool_evicted: int = 0
    audit_lost: int = 0
    send_errors: int = 0
    audit_overruns: int = 0  # times the kernel dropped audit multicast for the agent (ENOBUFS)
    ebpf_lost: int = 0  # eBPF records the kernel had no ring buffer room for
    dns_lost: int = 0  # DNS messages captured but not reported (unreadable, untracked, not reassembled)
    shed: dict[str, int] = {}  # events shed by the limiter, by class (also counted in dropped)


class Heartbeat(_Base, frozen=True, tag="heartbeat"):
    agent_version: str = ""
    sensors_active: list[str] = []
    sensors_unavailable: dict[str, str] = {}  # sensor -> reason
    counters: Counters = Counters()
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    vcpus: int = 0
    kernel: str = ""
    degraded: list[str] = []  # event classes currently shed by the limiter


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

_decoder: Final[msgspec.json.Decoder[WireEvent]] = msgspec.json.Decoder(WireEvent)
_encoder: Final = msgspec.json.Encoder()


class LineError(msgspec.Struct, frozen=True):
    """A line that could not be decoded: where it was and why. Goes to the dead-letter queue."""

    line: int  # 1-based within the batch
    reason: str
    raw: bytes


def decompress(data: bytes) -> bytes:
    """Gzip batches are inflated; plain NDJSON passes through (tests and `vigil replay`)."""
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data


def iter_lines(payload: bytes) -> Iterator[tuple[int, bytes]]:
    for n, line in enumerate(payload.split(b"\n"), start=1):
        if line.strip():
            yield n, line


def decode_line(line: bytes) -> WireEvent:
    """Decode one NDJSON line; raises msgspec.DecodeError / ValidationError on bad input."""
    return _decoder.decode(line)


def decode_batch(data: bytes) -> tuple[list[WireEvent], list[LineError]]:
    """Decode one batch. Never raises: bad lines come back as LineError, good ones are kept.

    Events keep ``host`` as sent (usually only the first has it); consumers carry the last seen
    host forward (see ``vigil.normalize.agent.normalize_batch``).
    """
    try:
        payload = decompress(data)
    except (OSError, EOFError) as exc:
        return [], [LineError(0, f"not a gzip batch: {exc}", data[:256])]
    try:  # the common case, a clean batch, in one call; a bad line falls back to line by line
        return _decoder.decode_lines(payload), []
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    events: list[WireEvent] = []
    errors: list[LineError] = []
    decode = _decoder.decode
    for n, line in iter_lines(payload):
        try:
            events.append(decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            errors.append(LineError(n, str(exc), line[:1024]))
    return events, errors


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
