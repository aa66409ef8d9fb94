"""Agent wire events (vigil.wire) -> normalized OCSF-named events (vigil.events).

The wire's process block already is the OCSF ``Process`` (decoded, not copied); this module wraps
each wire event into its OCSF activity class and attaches the device from the batch header.

Total: ``normalize_batch`` never raises; a wire event it cannot map becomes a Rejection. Value
ranges are enforced when the line is decoded (``vigil.bounds`` on the wire structs); what no
field constraint can say is checked here: a lineage entry must not carry a lineage of its own.
Rejections are bounded per batch like line errors: the first ``LINE_ERRORS_LISTED``, then one
summary (line 0) with the count and the most common reasons.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final

from vigil import bounds, wire
from vigil import events as ev
from vigil.normalize.common import Rejection

_UNKNOWN_DEVICE: Final = ev.Device(instance_uid="unknown")


def device_of(host: wire.Host) -> ev.Device:
    return ev.Device(
        instance_uid=host.instance_id,
        hostname=host.hostname,
        region=host.region,
        account_uid=host.account_id,
        boot_uid=host.boot_id,
        agent_version=host.agent_version,
        type=host.instance_type,
        image_uid=host.image_id,
        zone=host.availability_zone,
        vcpu_count=host.vcpus,
    )


class _Invalid(ValueError):
    """A wire event whose fields are each in range but that is not valid as a whole."""


def _check_lineage(p: ev.Process, field: str) -> None:
    """Ancestors are flat (the agent writes each without its own lineage): nesting is refused so
    a process block cannot grow with depth."""
    for i, a in enumerate(p.lineage):
        if a.lineage:
            raise _Invalid(f"$.{field}.lineage[{i}] has a lineage of its own (ancestors are not nested)")


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


_Handler = Callable[[wire.WireEvent, ev.Device], ev.Event]


def _h_exec(w: wire.ProcessExec, d: ev.Device) -> ev.Event:
    return ev.ProcessActivity(
        kind="process_exec", time=w.time, seq=w.seq, device=d, activity_id=1, process=w.process
    )


def _h_exit(w: wire.ProcessExit, d: ev.Device) -> ev.Event:
    return ev.ProcessActivity(
        kind="process_exit",
        time=w.time,
        seq=w.seq,
        device=d,
        activity_id=2,
        process=w.process,
        exit_code=w.exit_code,
    )


def _net(kind: str, activity: int, direction: str) -> _Handler:
    def h(w: wire._Net, d: ev.Device) -> ev.Event:
        return ev.NetworkActivity(
            kind=kind,
            time=w.time,
            seq=w.seq,
            device=d,
            activity_id=activity,
            process=w.process,
            src_endpoint=ev.Endpoint(ip=w.local_ip, port=w.local_port),
            dst_endpoint=ev.Endpoint(ip=w.remote_ip, port=w.remote_port),
            protocol_name=w.protocol,
            direction=direction,
            family=w.family,
            success=w.success,
            count=1 + w.repeats,
            end_time=w.last_time,
        )

    return h  # type: ignore[return-value]


def _h_unix(w: wire.UnixConnect, d: ev.Device) -> ev.Event:
    return ev.NetworkActivity(
        kind="unix_connect",
        time=w.time,
        seq=w.seq,
        device=d,
        activity_id=1,
        process=w.process,
        dst_endpoint=ev.Endpoint(path=w.path),
        protocol_name="unix",
        family="unix",
        success=w.success,
    )


def _h_dns(w: wire.DnsQuery, d: ev.Device) -> ev.Event:
    return ev.DnsActivity(
        kind="dns_query",
        time=w.time,
        seq=w.seq,
        device=d,
        activity_id=2 if (w.answers or w.rcode) else 1,
        query=ev.DnsQuery(hostname=w.hostname.rstrip(".").lower(), type=w.type),
        process=w.process,
        answers=tuple(ev.DnsAnswer(type=a.type, rdata=a.rdata, ttl=a.ttl) for a in w.answers),
        rcode=w.rcode,
        dst_endpoint=ev.Endpoint(ip=w.resolver_ip, port=w.resolver_port),
        protocol_name=w.protocol,
        count=1 + w.repeats,
        end_time=w.last_time,
    )


def _file(kind: str, activity: int) -> _Handler:
    def h(w: wire._File, d: ev.Device) -> ev.Event:
        result: ev.File | None = None
        symbolic = False
        flags = ""
        if isinstance(w, wire.FileRename) and w.new_path:
            result = ev.File(path=w.new_path, name=_basename(w.new_path))
        elif isinstance(w, wire.FileLink):
            result = ev.File(path=w.target, name=_basename(w.target))
            symbolic = w.symbolic
        elif isinstance(w, wire.FileOpenSensitive):
            flags = w.flags
        return ev.FileSystemActivity(
            kind=kind,
            time=w.time,
            seq=w.seq,
            device=d,
            activity_id=activity,
            process=w.process,
            file=ev.File(path=w.path, name=_basename(w.path)),
            file_result=result,
            symbolic=symbolic,
            open_flags=flags,
            success=w.success,
        )

    return h  # type: ignore[return-value]


def _h_inject(w: wire.Ptrace | wire.ProcessVmWrite | wire.ProcMemWrite, d: ev.Device) -> ev.Event:
    """Inject (4): ptrace, process_vm_writev and writes to /proc/<pid>/mem of another process."""
    if w.target is not None and w.target.lineage:
        _check_lineage(w.target, "target")
    return ev.ProcessActivity(
        kind=w.__struct_config__.tag,  # type: ignore[arg-type]
        time=w.time,
        seq=w.seq,
        device=d,
        activity_id=4,
        process=w.process,
        target_process=w.target,
        injection_type=_INJECTION_TYPE[type(w)],
        ptrace_request=w.request if isinstance(w, wire.Ptrace) else "",
        target_path=w.path if isinstance(w, wire.ProcMemWrite) else "",
    )


_INJECTION_TYPE: Final[dict[type, str]] = {
    wire.Ptrace: "ptrace",
    wire.ProcessVmWrite: "process_vm_writev",
    wire.ProcMemWrite: "proc_mem",
}


def _h_module(w: wire.ModuleLoad, d: ev.Device) -> ev.Event:
    return ev.ModuleActivity(
        kind="module_load",
        time=w.time,
        seq=w.seq,
        device=d,
        activity_id=1,
        process=w.process,
        module=ev.Module(
            file=ev.File(path=w.path, name=_basename(w.path), sha256=w.sha256, modified_time=w.modified_time),
            name=w.name,
            load_type=w.syscall,
        ),
    )


def _h_memfd(w: wire.MemfdExec, d: ev.Device) -> ev.Event:
    return ev.ProcessActivity(
        kind="memfd_exec",
        time=w.time,
        seq=w.seq,
        device=d,
        activity_id=1,
        process=w.process,
        memfd_name=w.memfd_name,
    )


def _h_mount(w: wire.Mount, d: ev.Device) -> ev.Event:
    return ev.FileSystemActivity(
        kind="mount",
        time=w.time,
        seq=w.seq,
        device=d,
        activity_id=12,
        process=w.process,
        file=ev.File(path=w.target, name=_basename(w.target)),
        mount_source=w.source,
        fs_type=w.fs_type,
        mount_flags=w.flags,
    )


def _h_uffd(w: wire.Userfaultfd, d: ev.Device) -> ev.Event:
    return ev.ProcessActivity(
        kind="userfaultfd",
        time=w.time,
        seq=w.seq,
        device=d,
        activity_id=99,
        process=w.process,
        syscall="userfaultfd",
    )


def _h_setuid(w: wire.Setuid, d: ev.Device) -> ev.Event:
    return ev.ProcessActivity(
        kind="setuid",
        time=w.time,
        seq=w.seq,
        device=d,
        activity_id=5,
        process=w.process,
        syscall=w.syscall,
        new_uid=w.new_uid,
        new_euid=w.new_euid,
    )


def _h_heartbeat(w: wire.Heartbeat, d: ev.Device) -> ev.Event:
    c = w.counters
    return ev.AgentHealth(
        kind="heartbeat",
        time=w.time,
        seq=w.seq,
        device=d,
        agent_version=w.agent_version,
        sensors_active=tuple(w.sensors_active),
        sensors_unavailable=dict(w.sensors_unavailable),
        captured=c.captured,
        sent=c.sent,
        dropped=c.dropped + c.spool_evicted,
        spooled=c.spooled,
        audit_lost=c.audit_lost,
        cpu_percent=w.cpu_percent,
        rss_bytes=w.rss_bytes,
        vcpus=w.vcpus,
        kernel=w.kernel,
    )


_HANDLERS: Final[dict[type, _Handler]] = {
    wire.ProcessExec: _h_exec,  # type: ignore[dict-item]
    wire.ProcessExit: _h_exit,  # type: ignore[dict-item]
    wire.NetConnect: _net("net_connect", 1, "Outbound"),
    wire.NetAccept: _net("net_accept", 1, "Inbound"),
    wire.NetListen: _net("net_listen", 7, "Inbound"),
    wire.UnixConnect: _h_unix,  # type: ignore[dict-item]
    wire.DnsQuery: _h_dns,  # type: ignore[dict-item]
    wire.FileWrite: _file("file_write", 3),
    wire.FileRename: _file("file_rename", 5),
    wire.FileUnlink: _file("file_unlink", 4),
    wire.FileLink: _file("file_link", 1),
    wire.FileOpenSensitive: _file("file_open_sensitive", 14),
    wire.Ptrace: _h_inject,  # type: ignore[dict-item]
    wire.ProcessVmWrite: _h_inject,  # type: ignore[dict-item]
    wire.ProcMemWrite: _h_inject,  # type: ignore[dict-item]
    wire.ModuleLoad: _h_module,  # type: ignore[dict-item]
    wire.MemfdExec: _h_memfd,  # type: ignore[dict-item]
    wire.Mount: _h_mount,  # type: ignore[dict-item]
    wire.Userfaultfd: _h_uffd,  # type: ignore[dict-item]
    wire.Setuid: _h_setuid,  # type: ignore[dict-item]
    wire.Heartbeat: _h_heartbeat,  # type: ignore[dict-item]
}


def normalize_batch(
    events: Iterable[wire.WireEvent], *, default_host: wire.Host | None = None
) -> tuple[list[ev.Event], list[Rejection]]:
    """Normalize one decoded batch. The last seen ``host`` block is carried to the events after it.

    Rejections: the first ``bounds.LINE_ERRORS_LISTED`` (``line`` = the event's 1-based position),
    then, if there were more, one summary ``Rejection(line=0)`` with their count and reasons.
    """
    out: list[ev.Event] = []
    rejected: list[Rejection] = []
    more: Counter[str] = Counter()
    first_unlisted = last_unlisted = 0
    device = device_of(default_host) if default_host is not None else None
    host_seen: wire.Host | None = default_host
    handlers = _HANDLERS
    checked: set[int] = set()  # processes whose lineage passed (wire v2: events share them)
    for i, w in enumerate(events, start=1):
        if w.host is not None and w.host is not host_seen:
            host_seen = w.host
            device = device_of(w.host)
        if device is None:
            reason = "no host block before this event (batch header missing)"
        else:
            try:
                p = getattr(w, "process", None)
                if p is not None and p.lineage and id(p) not in checked:
                    if any(a.lineage for a in p.lineage):
                        _check_lineage(p, "process")
                    checked.add(id(p))  # the events hold p: its id is not reused meanwhile
                out.append(handlers[type(w)](w, device))
                continue
            except _Invalid as exc:
                reason = str(exc)
            except Exception as exc:  # total: a mapping bug rejects one event, never the batch
                reason = f"cannot normalize {type(w).__name__}: {exc!r}"[:512]
        if len(rejected) < bounds.LINE_ERRORS_LISTED:
            rejected.append(Rejection("agent", i, reason))
        else:
            more[reason] += 1
            first_unlisted = first_unlisted or i
            last_unlisted = i
    if more:
        top = "; ".join(f"{n} x {r[:120]}" for r, n in more.most_common(3))
        rejected.append(
            Rejection(
                "agent",
                0,
                f"{more.total()} more events rejected, not listed (first at event {first_unlisted}, "
                f"last at event {last_unlisted}); most common reasons: {top}",
            )
        )
    return out, rejected


__all__ = ["device_of", "normalize_batch"]
