"""The agent: sensors in, events out, one event loop (epoll) plus a shipper thread.

Start-up order: sensors are opened one by one; a sensor that cannot start is reported (log line
and every heartbeat) and the rest run. Shutdown removes exactly the audit rules this agent added
and restores the audit settings it changed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import platform
import selectors
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import msgspec

from vigil import wire
from vigil_agent import __version__, auditnl, bpfsensor, dnscap, procconn, rules, sockinfo
from vigil_agent.auditparse import Assembler, Group
from vigil_agent.bpfevents import BpfCollector
from vigil_agent.collector import EXEC, NET, Collector, event_class
from vigil_agent.config import Config
from vigil_agent.fastpath import EV_DNS_NOTED, FOLDS_MAX, VF_FULL, DnsReader, FastPath
from vigil_agent.identity import IdentitySource, IdentityUnavailable, InstanceIdentity
from vigil_agent.limiter import CpuMeter, Limiter, rss_bytes
from vigil_agent.proctable import ProcessTable, boot_time_ns, read_text
from vigil_agent.ship import Batcher, Sink, Stats, release_memory

log = logging.getLogger("vigil_agent")
_decode_process = msgspec.json.Decoder(wire.Process).decode

MIN_BACKLOG = 8192
READ_BURST = 2048
COALESCE_S = 0.25  # the loop sleeps up to this long between epoll rounds so records batch up
BURST_COALESCE_S = 0.05  # ... and only this long after a round that drained a burst
BURST_RECORDS = 1500  # eBPF records in one drain that make a burst (a few hundred KiB of the 2 MiB ring)


IDENTITY_RETRY_S = 300.0  # while the agent has no identity, IMDS is asked again this often


def identity_source(cfg: Config) -> IdentitySource:
    c = cfg.identity
    return IdentitySource(
        imds=c.imds,
        imds_url=c.imds_url,
        timeout_s=c.timeout_s,
        document_file=c.document_file,
        signature_file=c.signature_file,
    )


def signed_host(host: wire.Host, ident: InstanceIdentity) -> wire.Host:
    """The batch header with the signed identity; the instance fields from the signed document
    (what ingest will trust anyway), so partition key and document agree."""
    if host.instance_id != ident.instance_id:
        log.warning(
            "instance id %s (config/DMI) is not the signed identity's %s: using the signed one",
            host.instance_id,
            ident.instance_id,
        )
    return msgspec.structs.replace(
        host,
        instance_id=ident.instance_id,
        account_id=ident.account_id or host.account_id,
        region=ident.region or host.region,
        instance_type=ident.instance_type or host.instance_type,
        image_id=ident.image_id or host.image_id,
        availability_zone=ident.availability_zone or host.availability_zone,
        identity=ident.wire,
    )


def host_identity(cfg: Config) -> wire.Host:
    dmi = "/sys/devices/virtual/dmi/id"
    vendor = (read_text(f"{dmi}/sys_vendor") or "").strip()
    asset = (read_text(f"{dmi}/board_asset_tag") or "").strip()  # the instance id on Nitro
    on_ec2 = vendor == "Amazon EC2"
    instance_id = cfg.agent.instance_id or (asset if on_ec2 and asset.startswith("i-") else "")
    hostname = socket.gethostname()
    return wire.Host(
        instance_id=instance_id or f"host-{hostname}",
        account_id=cfg.agent.account_id,
        region=cfg.agent.region or cfg.kinesis.region,
        hostname=hostname,
        boot_id=(read_text("/proc/sys/kernel/random/boot_id") or "").strip(),
        boot_time=boot_time_ns(),  # with boot_id, the ingest derives the process uuids it is not sent
        agent_version=__version__,
        instance_type=(read_text(f"{dmi}/product_name") or "").strip() if on_ec2 else "",
        vcpus=os.cpu_count() or 0,
    )


class Agent:
    def __init__(
        self, cfg: Config, sink_factory: Callable[[Stats, wire.Host], Sink], *, stop_after: float = 0.0
    ) -> None:
        self.cfg = cfg
        self.stats = Stats()
        self.host = host_identity(cfg)
        self.identity_source = identity_source(cfg)
        self.identity_problem = ""  # why batches carry no signed identity ("" when they do)
        self._refresh_identity(first=True)
        self.sink = sink_factory(self.stats, self.host)
        # records wait in the kernel up to coalesce_s before the loop reads them (see run)
        self.coalesce_s = min(COALESCE_S, cfg.agent.flush_s / 2)
        self.bpf_burst = False
        self.batcher = Batcher(
            self.sink,
            self.host,
            flush_s=cfg.agent.flush_s,
            stretch_s=cfg.agent.stretch_s,
            max_bytes=cfg.agent.batch_max_bytes,
            max_raw=cfg.agent.batch_max_raw_mb << 20,
            gzip_level=cfg.agent.gzip_level,
            compress=not getattr(self.sink, "plain", False),
            express=cfg.agent.express,
        )
        self.limiter = Limiter(cfg.limits.cpu_percent, cfg.limits.rss_mb)
        self.table = ProcessTable(hash_max_bytes=cfg.sensors.hash_max_mb << 20)
        self.dns = dnscap.DnsTracker()
        self.pid = os.getpid()
        self.watched = rules.watch_paths(cfg.watch.paths, cfg.watch.defaults)
        # what both event builders (audit records, eBPF records) filter and attribute by
        shared: dict[str, Any] = {
            "unix_sockets": cfg.watch.unix_sockets,
            "unix_all": cfg.sensors.unix_connect_all,
            "exclude_comm": cfg.exclude.processes,
            "dns_ports": cfg.sensors.dns_ports,
            "on_dns_connect": self.dns.note_connect if cfg.sensors.dns else None,
            "self_pid": self.pid,
        }
        self.collector = Collector(
            self.table,
            key=cfg.agent.audit_key,
            watched=self.watched,
            exclude_paths=cfg.exclude.paths,
            **shared,
        )
        self.bpf_collector = BpfCollector(self.table, exclude_exes=cfg.exclude.exes, **shared)
        self.bpf: bpfsensor.BpfSensor | None = None
        self.fast: FastPath | None = None
        # syscalls whose audit records are ignored: the eBPF sensor reports them (auditd's or
        # another agent's rules may still make the kernel send them)
        self.audit_skips: frozenset[str] = frozenset()
        self.bpf_errors = 0
        self.assembler = Assembler()
        self.sel = selectors.DefaultSelector()
        self.active: list[str] = []
        self.unavailable: dict[str, str] = {}
        if self.identity_problem:
            self.unavailable["identity"] = self.identity_problem
        self.ctl: auditnl.AuditControl | None = None
        self.audit_sock: socket.socket | None = None
        self.audit_reader: auditnl.BatchReader | None = None
        self.cn_sock: socket.socket | None = None
        self.exec_watch: procconn.ExecWatcher | None = None
        self.pkt_sock: socket.socket | None = None
        self.dns_reader: DnsReader | None = None
        self.installed: list[bytes] = []
        self.restore_enabled: int | None = None
        self.restore_backlog: int | None = None
        self.lost_at_start = 0
        self.seq = self._load_seq()
        self.stopping = False
        self.build_errors = 0
        self.stop_after = stop_after
        self.cpu = CpuMeter()
        self.hb_cpu = CpuMeter()

    # --- the signed instance identity (batch header) --------------------------------------------
    def _refresh_identity(self, *, first: bool = False) -> None:
        """Fetch the identity (at start, then rarely). Never raises: without one the agent runs
        on, says why in its heartbeats, and ingest rejects its batches."""
        try:
            ident = self.identity_source.get()
        except IdentityUnavailable as exc:
            if str(exc) != self.identity_problem:
                log.warning("%s: batches carry no signed identity and ingest will reject them", exc)
            self.identity_problem = str(exc)
            if not first:
                self.unavailable["identity"] = self.identity_problem
            return
        if not first and ident.instance_id != self.host.instance_id:
            now_is, ships_as = ident.instance_id, self.host.instance_id
            self.identity_problem = (
                f"identity: IMDS now says {now_is}, the agent ships as {ships_as}; restart it"
            )
            self.unavailable["identity"] = self.identity_problem
            log.warning("%s", self.identity_problem)
            return
        host = signed_host(self.host, ident)
        if host != self.host:
            self.host = host
            if not first:
                self.batcher.set_host(host)
                log.info("signed instance identity of %s now in every batch header", ident.instance_id)
        if self.identity_problem and not first:
            self.unavailable.pop("identity", None)
        self.identity_problem = ""

    # --- sequence numbers survive restarts (a gap then means real loss) ----------------------
    def _seq_path(self) -> str:
        return os.path.join(self.cfg.agent.state_dir, "seq")

    def _load_seq(self) -> int:
        """The saved seq, but never below the clock in microseconds.

        Findings use seq as their idempotency watermark (an occurrence applies only if newer than
        what was counted), so seq must stay monotonic per instance even when the state dir is lost
        (reinstall, new disk). Starting from the wall clock in microseconds guarantees it: the agent
        emits far fewer than a million events a second, so seq never catches up with the clock.
        """
        floor = time.time_ns() // 1000
        try:
            saved = int((read_text(self._seq_path()) or "0").strip() or 0)
        except ValueError:
            saved = 0
        return max(saved, floor)

    def _save_seq(self) -> None:
        try:
            os.makedirs(self.cfg.agent.state_dir, mode=0o700, exist_ok=True)
            tmp = self._seq_path() + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(self.seq))
            os.replace(tmp, self._seq_path())
        except OSError as exc:
            log.debug("cannot save seq: %s", exc)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # --- sensors ----------------------------------------------------------------------------
    def start_sensors(self) -> None:
        s = self.cfg.sensors
        if s.ebpf:
            self.fast = None
            if s.ebpf_native:
                self.fast = self._fast_path()
            else:
                self.unavailable["ebpf_native"] = "disabled in config; eBPF records are handled in Python"
            try:
                self.bpf = bpfsensor.BpfSensor(
                    agent_pid=self.pid,
                    unix_paths=list(self.cfg.watch.unix_sockets),
                    unix_all=s.unix_connect_all,
                    connect_failed=s.connect_failures,
                    path=s.ebpf_object or bpfsensor.OBJECT,
                    ring_bytes=s.ebpf_ring_kb << 10,
                    native=(self.fast.sample, self.fast.ptr) if self.fast is not None else None,
                )
                self.sel.register(self.bpf, selectors.EVENT_READ, self._on_bpf)
                self.active.append("ebpf")
                if self.fast is not None:
                    self.active.append("ebpf_native")
                self.audit_skips = EXEC | NET
                log.info(
                    "ebpf: %d programs attached (exec, exit, connect, accept, listen, /proc/*/mem, library mmap)",
                    self.bpf.programs,
                )
            except Exception as exc:  # an optional sensor: whatever stops it, the agent runs on
                self.bpf = None
                self._close_fast()
                self.unavailable.pop("ebpf_native", None)
                if not isinstance(exc, OSError):
                    log.exception("the eBPF sensor failed to start")
                    exc = OSError(0, f"{type(exc).__name__}: {exc}")
                self.unavailable["ebpf"] = (
                    f"{exc.strerror or exc}"
                    + (" (needs root: CAP_BPF and CAP_PERFMON)" if exc.errno in (1, 13) else "")
                    + ("; exec/connect/accept come from audit" if s.audit else "")
                )
        else:
            self.unavailable["ebpf"] = "disabled in config"
        if s.audit:
            try:
                self._start_audit()
                self.active.append("audit")
            except OSError as exc:
                self._cleanup_audit()
                self.unavailable["audit"] = f"{exc.strerror or exc}" + (
                    " (needs root: CAP_AUDIT_CONTROL and CAP_AUDIT_READ)" if exc.errno in (1, 13) else ""
                )
        else:
            self.unavailable["audit"] = "disabled in config"
        if self.bpf is not None:
            pass  # exits come from the eBPF sensor, in order with the execs
        elif s.proc_connector:
            try:
                self.cn_sock = procconn.open_exits()
                self.sel.register(self.cn_sock, selectors.EVENT_READ, self._on_cn)
                self.active.append("proc_connector")
                # audit delivers an exec's records late: fds 0-2 are read when the exec is announced
                # (without it, from /proc when the records come: a short-lived program has gone)
                try:
                    self.exec_watch = procconn.ExecWatcher(procconn.open_execs(), self.table.note_exec)
                    self.exec_watch.start()
                except OSError as exc:
                    log.warning("exec watcher unavailable: %s", exc.strerror or exc)
            except OSError as exc:
                self.unavailable["proc_connector"] = str(exc.strerror or exc)
        else:
            self.unavailable["proc_connector"] = "disabled in config"
        if s.dns:
            try:
                self.pkt_sock = dnscap.open_capture(list(s.dns_ports))
                self.sel.register(self.pkt_sock, selectors.EVENT_READ, self._on_packet)
                self.active.append("dns")
            except OSError as exc:
                self.unavailable["dns"] = f"{exc.strerror or exc}" + (
                    " (AF_PACKET needs CAP_NET_RAW)" if exc.errno in (1, 13) else ""
                )
            if self.pkt_sock is not None and s.dns_native:
                try:
                    self.dns_reader = DnsReader()
                    self.active.append("dns_native")
                except OSError as exc:
                    self.unavailable["dns_native"] = f"{exc.strerror or exc}; DNS packets are read in Python"
            elif self.pkt_sock is not None:
                self.unavailable["dns_native"] = "disabled in config; DNS packets are read in Python"
        else:
            self.unavailable["dns"] = "disabled in config"
        for name, why in self.unavailable.items():
            log.warning("sensor %s unavailable: %s", name, why)
        log.info("sensors active: %s", ", ".join(self.active) or "none")

    def _fast_path(self) -> FastPath | None:
        """The native consumer of the eBPF ring, if its library is there (else: Python's)."""
        try:
            fast = FastPath(
                self_pid=self.pid,
                dns_ports=self.cfg.sensors.dns_ports if self.cfg.sensors.dns else (),
                exclude_comm=self.cfg.exclude.processes,
                boot=self.table.boot,
                btime_ns=self.table.btime,
                # the header names the table's boot: C's proc lines may leave derivable uuids out
                omit_uid=(self.host.boot_id, self.host.boot_time) == (self.table.boot, self.table.btime),
            )
        except OSError as exc:
            self.unavailable["ebpf_native"] = f"{exc.strerror or exc}; eBPF records are handled in Python"
            return None
        self.bpf_collector.fast = fast
        self.bpf_collector.encode = self.batcher.encoded
        self.batcher.fold_native(fast.folds, FOLDS_MAX)
        self.table.fallback = self._native_process
        return fast

    def _native_process(self, pid: int) -> tuple[wire.Process, bool] | None:
        got = self.fast.get(pid) if self.fast is not None else None
        return None if got is None else (_decode_process(got[0]), got[1])

    def _close_fast(self) -> None:
        if self.fast is not None:
            self.bpf_collector.fast = None
            self.table.fallback = None
            self.fast.close()
            self.fast = None

    def _start_audit(self) -> None:
        self.ctl = auditnl.AuditControl()
        st = self.ctl.status()
        self.lost_at_start = st.lost
        if st.enabled == 2:
            raise OSError(1, "audit configuration is locked (enabled=2); rules cannot be added")
        # rules left by an agent that was killed: they carry our key and nothing else does
        for blob in self.ctl.list_rules():
            if auditnl.rule_key(blob) == self.cfg.agent.audit_key:
                self.ctl.del_rule(blob)
        self.audit_sock = auditnl.open_reader()
        try:
            self.audit_reader = auditnl.BatchReader(self.audit_sock)
        except OSError as exc:
            log.info("recvmmsg unavailable (%s): one recv per audit record", exc)
        if st.enabled == 0:
            self.ctl.set_enabled(1)
            self.restore_enabled = 0
        if st.backlog_limit < MIN_BACKLOG:
            self.ctl.set_backlog_limit(MIN_BACKLOG)
            self.restore_backlog = st.backlog_limit
        arches = rules.native_arches()
        rs = rules.build_rules(
            key=self.cfg.agent.audit_key,
            agent_pid=self.pid,
            arches=arches,
            watched=self.watched,
            exclude_exes=self.cfg.exclude.exes,
            connect_failures=self.cfg.sensors.connect_failures,
            skip=("exec", "net") if self.bpf is not None else (),
        )
        if st.pid == 0:  # no auditd: nobody else needs the record types we never read
            rs += rules.build_exclude_rules(key=self.cfg.agent.audit_key)
        skipped = 0
        for r in rs:
            blob = r.encode()
            try:
                self.ctl.add_rule(blob)
                self.installed.append(blob)
            except OSError as exc:
                if exc.errno == 17:  # EEXIST: an identical rule is there; it is not ours to delete
                    continue
                skipped += 1
                log.debug("audit rule %s not added: %s", r.label, exc)
        if not self.installed:
            raise OSError(22, "no audit rule could be added")
        if skipped:
            log.warning("%d audit rules were refused by the kernel (e.g. 32-bit syscalls)", skipped)
        self.sel.register(self.audit_sock, selectors.EVENT_READ, self._on_audit)
        log.info("audit: %d rules installed under key %r", len(self.installed), self.cfg.agent.audit_key)

    def _cleanup_audit(self) -> None:
        if self.ctl is None:
            return
        for blob in reversed(self.installed):
            try:
                self.ctl.del_rule(blob)
            except OSError as exc:
                log.warning("could not delete an audit rule: %s", exc)
        self.installed.clear()
        try:
            # another agent or auditd may have come to rely on audit meanwhile: only switch it
            # back off when no rule at all is left in the kernel
            if (
                self.restore_backlog is not None or self.restore_enabled is not None
            ) and self.ctl.list_rules():
                log.info("audit rules of others remain: leaving audit enabled")
            else:
                if self.restore_backlog is not None:
                    self.ctl.set_backlog_limit(self.restore_backlog)
                if self.restore_enabled is not None:
                    self.ctl.set_enabled(self.restore_enabled)
        except OSError as exc:
            log.warning("could not restore audit settings: %s", exc)
        self.restore_backlog = self.restore_enabled = None

    # --- readers ----------------------------------------------------------------------------
    def _on_audit(self, sock: socket.socket) -> None:
        reader = self.audit_reader
        if reader is None:
            self._on_audit_recv(sock)
            return
        recv = reader.recv
        feed = self.assembler.feed_at
        on_group = self._on_group
        buf, slot, vlen = reader.buf, reader.slot, reader.vlen
        for _ in range(READ_BURST):
            try:
                lens = recv()
            except BlockingIOError:
                return
            except OSError as exc:
                if auditnl.is_overrun(exc):
                    self._overrun()
                    continue
                raise
            off = 0
            for n in lens:
                g = feed(buf, off, n)
                if g is not None:
                    on_group(g)
                off += slot
            if len(lens) < vlen:
                return

    def _on_audit_recv(self, sock: socket.socket) -> None:
        """One recv per record (where recvmmsg is unavailable)."""
        recv = sock.recv
        feed = self.assembler.feed
        for _ in range(READ_BURST):
            try:
                data = recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if auditnl.is_overrun(exc):
                    self._overrun()
                    continue
                raise
            g = feed(data)
            if g is not None:
                self._on_group(g)

    def _overrun(self) -> None:
        self.stats.add(audit_overruns=1)
        log.warning("audit multicast overrun: the kernel dropped records for the agent")

    def _on_group(self, g: Group) -> None:
        name = self.collector.syscall_name(g)
        if not name or name in self.audit_skips:
            return
        if self.limiter.level:
            cls = event_class(name)
            if cls != "core" and self.limiter.sheds(cls):
                self._shed(cls)
                return
        try:
            events = self.collector.build(g, name, self.next_seq)
        except Exception:  # one odd record must never stop the sensor
            self.build_errors += 1
            if self.build_errors <= 10:
                log.exception("could not build an event from audit serial %s", g.serial)
            return
        self._emit_all(events)

    def _shed(self, cls: str, n: int = 1) -> None:
        with self.stats.lock:
            self.stats.shed[cls] = self.stats.shed.get(cls, 0) + n
            self.stats.dropped += n

    def _on_bpf(self, sensor: bpfsensor.BpfSensor) -> None:
        if self.fast is not None:
            self._on_bpf_native(sensor, self.fast)
            return
        records = sensor.drain()
        if not records:
            return
        if len(records) >= BURST_RECORDS:
            self.bpf_burst = True
        self.bpf_collector.sync_clock()
        for raw in records:
            self._bpf_record(raw)

    def _on_bpf_native(self, sensor: bpfsensor.BpfSensor, fast: FastPath) -> None:
        """The ring through the native fast path: in one pass C writes the lines of the common
        records and queues the others, which Python then handles in order."""
        col = self.bpf_collector
        col.sync_clock()
        ctx = fast.ctx
        ctx.wall_offset = col.wall_offset
        limiter = self.limiter
        ctx.shed_net = 1 if limiter.level and limiter.sheds("net") else 0
        # execs in C only as Python would write them: enriched, and with no executable excluded
        ctx.exec_on = 1 if fast.exec_ready and self.table.enrich and not self.cfg.exclude.exes else 0
        shed0, ignored0, dropped0, urgent0 = ctx.shed, ctx.ignored, ctx.dropped, ctx.urgent
        handled = 0
        batcher = self.batcher
        ctx.v2 = 1 if batcher.v2 else 0
        ctx.fold = 1 if batcher.native_folds is not None else 0  # repeats (wire.Repeats)
        while True:
            first = self.seq + 1
            ctx.seq = self.seq
            expanded = ctx.expanded
            if batcher.v2:  # C's lines go into the open batch whole, with its refs (wire v2)
                ctx.soft_max = batcher.native_room()
                ctx.soft_expanded = expanded + max(1, batcher.expanded_max - batcher.expanded)
                ctx.epoch = batcher.epoch
                ctx.next_ref = batcher.next_ref
            folded = ctx.folded
            rc = sensor.consume()
            self.seq = ctx.seq
            if batcher.v2:
                batcher.next_ref = ctx.next_ref
                batcher.expanded += ctx.expanded - expanded
            lines, n, records = fast.take(view=True)  # a view of C's buffer: used before the next pass
            if n:
                self.stats.captured += n
                self.batcher.add_lines(lines, n, first)
            if ctx.folded != folded:  # events counted on lines of the open batch, not sent as lines
                self.stats.captured += ctx.folded - folded
                batcher.add_folded(ctx.folded - folded)
            for raw in records:
                self._bpf_record(raw)
            handled += n + len(records)
            if rc != VF_FULL:
                if rc < 0:
                    raise OSError(-rc, f"ring_buffer__consume: {os.strerror(-rc)}")
                break
        if handled >= BURST_RECORDS:
            self.bpf_burst = True
        if ctx.urgent != urgent0:  # C wrote an urgent exec line (a shell on a socket)
            self.batcher.mark_urgent()
        if ctx.shed != shed0:
            self._shed("net", ctx.shed - shed0)
        if ctx.dropped != dropped0:  # out of memory in C: counted, never silent
            self.stats.add(dropped=ctx.dropped - dropped0)
        col.ignored += ctx.ignored - ignored0

    def _bpf_record(self, raw: bytes) -> None:
        col = self.bpf_collector
        seq = self.next_seq
        limiter = self.limiter
        try:
            kind = raw[0]  # the record's kind (u32, little endian) is its first byte
            if kind == EV_DNS_NOTED:  # its line was written in C
                col.dns_noted(raw)
                return
            if kind in bpfsensor.NET_KINDS:
                if limiter.level and kind != bpfsensor.EV_PROC_MEM and limiter.sheds("net"):
                    self._shed("net")
                    return
                events = col.net(raw, seq)
            elif kind == bpfsensor.EV_EXIT:
                self._on_exit(*col.exit_(raw))
                return
            else:
                r = bpfsensor.decode(raw)
                if isinstance(r, bpfsensor.Exec):
                    events = col.exec_(r, seq)
                elif isinstance(r, bpfsensor.Lib):
                    if limiter.level and limiter.sheds("file"):
                        self._shed("file")
                        return
                    events = col.lib(r, seq)
                else:
                    raise ValueError(f"eBPF record kind {kind} is not handled")
        except Exception:  # one odd record must never stop the sensor
            self.bpf_errors += 1
            if self.bpf_errors <= 10:
                log.exception("could not build an event from an eBPF record of %d bytes", len(raw))
            return
        self._emit_all(events)

    def _on_exit(self, pid: int, code: int, now: int) -> None:
        sockinfo.forget(pid)
        if self.fast is not None:  # a connect queued before this exit in the same pass registered it
            self.fast.forget(pid)
        p = self.table.on_exit(pid, now)
        if p is not None and self.cfg.sensors.process_exit:
            self.emit(wire.ProcessExit(time=now, seq=self.next_seq(), process=p, exit_code=code >> 8))

    def _on_cn(self, sock: socket.socket) -> None:
        now = time.time_ns()
        for _ in range(READ_BURST):
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                continue  # ENOBUFS: exits missed; the table bound and start times cover it
            ex = procconn.parse_exit(data)
            if ex is not None:
                self._on_exit(ex[0], ex[1], now)

    def _on_packet(self, sock: socket.socket) -> None:
        reader = self.dns_reader
        if reader is not None and not self.limiter.sheds("dns"):  # (shedding: Python's loop counts)
            on_packet, on_message = self.dns.on_packet, self.dns.on_message
            for t, qr, src, sport, dst, dport, ident, host, qtype, rcode, answers, raw in reader.read(
                sock.fileno(), READ_BURST
            ):
                if qr < 0:
                    on_packet(raw, t)
                else:
                    on_message("udp", src, sport, dst, dport, ident, qr, rcode, host, qtype, answers, t)
            return
        for _ in range(READ_BURST):
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            except OSError:
                continue
            if self.limiter.sheds("dns"):
                self._shed("dns")
                continue
            self.dns.on_packet(data, time.time_ns())

    # --- output -----------------------------------------------------------------------------
    def emit(self, event: wire.WireEvent) -> None:
        self.stats.captured += 1
        self.batcher.add(event)

    def _emit_all(self, events: list[wire.WireEvent]) -> None:
        if events:
            self.stats.captured += len(events)
            add = self.batcher.add
            for e in events:
                add(e)

    def heartbeat(self) -> None:
        if self.ctl is not None:
            with contextlib.suppress(OSError):
                self.stats.audit_lost = max(0, self.ctl.status().lost - self.lost_at_start)
        now = time.time_ns()
        hb = wire.Heartbeat(
            time=now,
            seq=self.next_seq(),
            host=self.host,
            agent_version=__version__,
            sensors_active=list(self.active),
            sensors_unavailable=dict(self.unavailable),
            counters=self._counters(),
            cpu_percent=round(self.hb_cpu.read(), 3),
            rss_bytes=rss_bytes(),
            vcpus=os.cpu_count() or 0,
            kernel=platform.release(),
            degraded=self.limiter.degraded,
        )
        self.emit(hb)
        self._save_seq()

    def _counters(self) -> wire.Counters:
        lost = self.dns.lost + (self.dns_reader.errors if self.dns_reader is not None else 0)
        c = msgspec.structs.replace(self.stats.counters(), dns_lost=lost)
        if self.bpf is not None:
            c = msgspec.structs.replace(c, ebpf_lost=self.bpf.lost())
        return c

    def _flush_dns(self, now: int) -> None:
        for p in self.dns.ready(now):
            self.emit(
                wire.DnsQuery(
                    time=p.time_ns,
                    seq=self.next_seq(),
                    hostname=p.hostname,
                    type=p.qtype,
                    process=p.process,
                    protocol=p.protocol,
                    resolver_ip=p.resolver_ip,
                    resolver_port=p.resolver_port,
                    rcode=p.rcode,
                    answers=p.answers,
                )
            )

    def _check_limits(self) -> None:
        cpu = self.cpu.read()
        release_memory(collect=False)
        rss_mb = rss_bytes() / (1 << 20)
        if self.limiter.memory_pressure(rss_mb):
            self.table.shrink()
            if self.fast is not None:
                self.fast.clear()
        if self.limiter.update(cpu, rss_mb):
            self.table.enrich = not self.limiter.sheds("enrich")
            log.warning(
                "limits (cpu %.1f%% / %.0f MiB): shedding %s",
                cpu,
                rss_mb,
                ", ".join(self.limiter.degraded) or "nothing",
            )

    # --- main loop --------------------------------------------------------------------------
    def stop(self, *_: object) -> None:
        self.stopping = True

    def _identity_every(self) -> float:
        refresh = self.cfg.identity.refresh_s
        return min(refresh, IDENTITY_RETRY_S) if self.identity_problem else refresh

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.start_sensors()
        started = time.monotonic()
        self.heartbeat()  # the first heartbeat says which sensors run
        self.batcher.seal()
        # start-up garbage back to the kernel; what is left is long-lived (modules, config,
        # process table of the running system): out of the collector's way for good
        release_memory()
        gc.freeze()
        next_hb = started + self.cfg.agent.heartbeat_s
        next_limits = started + self.cfg.limits.window_s
        next_identity = started + self._identity_every()
        try:
            while not self.stopping:
                woke = time.monotonic()
                self.batcher.round(woke)
                for key, _ in self.sel.select(timeout=0.1):
                    key.data(key.fileobj)
                now_m = time.monotonic()
                now = time.time_ns()
                for g in self.assembler.expire(now):
                    self._on_group(g)
                if self.dns.pending:
                    self._flush_dns(now)
                self.table.evict(now)
                if now_m >= next_identity:
                    self._refresh_identity()
                    next_identity = now_m + self._identity_every()
                if now_m >= next_hb:
                    self.heartbeat()
                    next_hb = now_m + self.cfg.agent.heartbeat_s
                if now_m >= next_limits:
                    self._check_limits()
                    next_limits = now_m + self.cfg.limits.window_s
                # right after a read: it holds all that is due with it (an urgent event: now)
                if self.batcher.due() or self.batcher.express_due():
                    self.batcher.seal()
                if self.stop_after and now_m - started >= self.stop_after:
                    break
                # Coalesce: let records gather in the ring and the socket buffers for up to
                # ``coalesce`` rather than waking for each one: handling them in bursts costs
                # less CPU per event (bench: 0.1 s -> 0.25 s took 2.9 % to 2.5 % of a core).
                # The batcher dates a batch from the start of the read round before its first
                # event (nothing in it was recorded earlier), and the loop wakes to read and seal
                # it when it is due, so events still leave within agent.flush_s of being
                # recorded (agent.stretch_s while the batch is small), in one batch a second
                # under load. A burst shortens the next wait so the eBPF ring (2 MiB) does not fill.
                pause = (BURST_COALESCE_S if self.bpf_burst else self.coalesce_s) - (time.monotonic() - woke)
                self.bpf_burst = False
                pause = min(pause, self.batcher.due_in())
                if pause > 0:
                    time.sleep(pause)
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        self.batcher.seal()  # what is open leaves now, not after the rules are gone and the ring drained
        self._cleanup_audit()
        if self.bpf is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.bpf)
            self._on_bpf(self.bpf)  # what is still in the ring
            self.bpf.close()
            self.bpf = None
        native = self.fast.ctx.fast + self.fast.ctx.execs if self.fast is not None else 0
        if self.fast is not None:
            log.info(
                "native fast path: %d connect/accept/listen and %d exec lines; %d processes held (%d KiB)",
                self.fast.ctx.fast,
                self.fast.ctx.execs,
                self.fast.ctx.n_procs,
                self.fast.ctx.proc_bytes >> 10,
            )
        self._close_fast()
        if self.batcher.folded:
            log.info(
                "repeats: %d connects, accepts and queries counted on an equal one, not sent",
                self.batcher.folded,
            )
        if self.batcher.express_seals:
            log.info(
                "express lane: %d batches left ahead of flush_s (urgent events)", self.batcher.express_seals
            )
        if self.batcher.stretched:
            log.info(
                "stretch: %d small batches waited up to agent.stretch_s (one PUT unit for two seconds)",
                self.batcher.stretched,
            )
        if self.exec_watch is not None:
            self.exec_watch.stop()
            self.exec_watch = None
        for s in (self.audit_sock, self.cn_sock, self.pkt_sock):
            if s is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.sel.unregister(s)
                s.close()
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None
        self._flush_dns(time.time_ns() + 10**12)
        self.heartbeat()  # the last word: final counters
        if self.dns_reader is not None:
            c = self.dns_reader.ctx
            log.info("native DNS reader: %d messages parsed, %d packets left to Python", c.parsed, c.raw)
            self.dns_reader.close()
            self.dns_reader = None
        self.batcher.seal()
        self.sink.close(timeout=5.0)
        self._save_seq()
        log.info(
            "stopped: captured %d (%d by the native fast path), sent %d, dropped %d, spooled %d",
            self.stats.captured,
            native,
            self.stats.sent,
            self.stats.dropped,
            self.stats.spooled,
        )
