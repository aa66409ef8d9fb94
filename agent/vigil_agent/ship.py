"""Batching and shipping: gzip NDJSON batches (DESIGN §3.1) to Kinesis, or NDJSON to stdout.

The event loop owns the Batcher; a Shipper thread owns the network. Batches wait in memory; when
Kinesis fails (after per-record retries with exponential backoff and full jitter), they go to the
disk spool, which is replayed oldest first before anything newer is sent.

A batch sealed early because it is full is held until its first event is ``flush_s`` old (what a
batch sealed on time waits anyway), so under load the batches of one second leave in one
PutRecords call: a call's fixed cost (botocore, HTTP) is most of the shipper's CPU.

**Express lane.** A batch that holds an *urgent* event (``urgent``: an exec whose stdin, stdout or
stderr is an inet socket, a memfd exec, an injection, a kernel module load: what a detection
raises High on by itself) does not wait out ``flush_s``: the loop seals it right after the read
that brought the event, at most once per ``express_min_s`` (so a host that keeps doing it, e.g.
inetd-style services, sends at most a few more records a second, not one per event). Ordinary
traffic is unaffected; an intrusion's first event reaches the ingest up to a second sooner.

**Stretch.** Kinesis bills a record by started 25 KiB (a PUT payload unit), so a quiet host's
second (~2.5 KiB of gzip) pays for ten times what it sends. A batch still small when it is
``flush_s`` old (under ``STRETCH_GZ``, half a unit, by its estimated gzip'd size) waits up to
``stretch_s`` instead: the two seconds then fit the one unit the first would have paid alone.
A batch that reaches ``STRETCH_GZ`` after ``flush_s`` leaves at once, so a host busy enough to
fill half a unit a second keeps the one-second cadence, and the express lane is unchanged: an
urgent event never waits. What it costs is up to ``stretch_s - flush_s`` more for a quiet host's
ordinary events to reach the ingest (docs/agent.md, docs/cost.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

import msgspec

from vigil import bounds as vbounds
from vigil import wire
from vigil_agent.spool import Batch, Spool

try:  # ISA-L's deflate: ~7x zlib's speed at level 1 on our NDJSON, same ratio
    from isal import isal_zlib as _isal
except ImportError:  # the artifact pins isal; without it the agent still works, on zlib
    _isal = None  # type: ignore[assignment]

log = logging.getLogger("vigil_agent.ship")

MAX_PUT_RECORDS = 500
MAX_PUT_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
_encode = msgspec.json.Encoder().encode
_replace = msgspec.structs.replace
_Raw = msgspec.Raw
_Process = wire.Process
_weigh = wire.process_weight
RAW_CACHE = 1024  # processes whose encoded block is kept (reused from their second event on)
EXPRESS_MIN_S = 0.2  # the least time between two express seals
STRETCH_S = 2.0  # the longest a small batch waits (stretch, above)
STRETCH_GZ = 12 * 1024  # gzip'd bytes under which a batch stretches: half a Kinesis PUT payload unit
_GZ_RATIO = 4  # NDJSON bytes per gzip'd byte, at least, for what the compressor still holds (ours: 5-40)
FOLDS_MAX = 4096  # distinct connects, accepts and queries a batch folds repeats into (wire.Repeats)
_FOLD_ENTRY = 52  # NDJSON bytes of one [seq,n,last_time], entry of a repeats line, at most (19+8+19+6)
_FOLD_HEAD = 32  # and of the line around them
_URGENT_KINDS = (wire.MemfdExec, wire.Ptrace, wire.ProcessVmWrite, wire.ProcMemWrite, wire.ModuleLoad)


def _fold_key(e: Any) -> tuple[Any, ...] | None:
    """What makes two events one with repeats (wire.Repeats), for an event naming its process by
    ref: everything but its time, seq and ephemeral port (a connect's local port, an accept's
    remote port). None for an event that already carries repeats of its own."""
    if e.repeats:
        return None
    cls = e.__class__
    if cls is wire.DnsQuery:
        answers = tuple(e.answers)
        return (
            cls,
            e.process,
            e.hostname,
            e.type,
            e.protocol,
            e.resolver_ip,
            e.resolver_port,
            e.rcode,
            answers,
        )
    port = e.remote_port if cls is wire.NetConnect else e.local_port
    peer = e.remote_ip
    return (cls, e.process, e.protocol, e.family, e.local_ip, peer, port, e.success)


def _inet_socket(fd: wire.Stdio | None) -> bool:
    return fd is not None and fd.type == "socket" and fd.family.startswith("inet")


def urgent(event: wire.WireEvent) -> bool:
    """Whether an event makes its batch leave at once (the express lane, above)."""
    if isinstance(event, wire.ProcessExec):
        p = event.process
        return _inet_socket(p.stdin) or _inet_socket(p.stdout) or _inet_socket(p.stderr)
    return isinstance(event, _URGENT_KINDS)


class Stats:
    """Counters shared by the loop and the shipper (each counter has one writer, or the lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.captured = 0
        self.sent = 0
        self.dropped = 0
        self.spooled = 0
        self.spool_evicted = 0
        self.send_errors = 0
        self.audit_lost = 0
        self.audit_overruns = 0
        self.shed: dict[str, int] = {}

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def counters(self) -> wire.Counters:
        with self.lock:
            return wire.Counters(
                captured=self.captured,
                sent=self.sent,
                dropped=self.dropped,
                spooled=self.spooled,
                spool_evicted=self.spool_evicted,
                audit_lost=self.audit_lost,
                send_errors=self.send_errors,
                audit_overruns=self.audit_overruns,
                shed=dict(self.shed),
            )


def gzip_compressor(level: int) -> Any:
    """A gzip (wbits 31) compressobj for ``agent.gzip_level``: ISA-L when installed, else zlib.

    The level keeps zlib's meaning. ISA-L has levels 0-3 and no stored mode, so: 0 stays zlib's
    stored blocks; 1-3 (zlib's fast, greedy levels) -> ISA-L 1, the same ratio on NDJSON; 4-9
    (zlib's lazy levels, CPU for ratio) -> ISA-L 3. Measured on wire v2 records of a busy host
    (the benign corpus, docs/cost.md): ISA-L 3 is 1.5 % smaller than ISA-L 1 for 5.7x its CPU,
    zlib 5 11 % smaller for 8x; the default (1) stays the agent's best trade.
    """
    if _isal is None or level == 0:
        return zlib.compressobj(level, zlib.DEFLATED, 31)
    return _isal.compressobj(1 if level <= 3 else 3, _isal.DEFLATED, 31)


class Sink(Protocol):
    def submit(self, batch: Batch, lines: list[bytes], hold_s: float = 0.0) -> None:
        """``lines``: the batch's NDJSON lines for a plain sink (empty for a gzip'd batch: its
        payload was compressed as it filled). ``hold_s``: how long the batch may wait for the
        next ones (0: send now)."""

    def close(self, timeout: float) -> None: ...


Z_SYNC_FLUSH = 2  # zlib's and ISA-L's


def _bound(raw: int) -> int:
    """The most that ``raw`` bytes can add to a deflate stream (stored blocks, gzip trailer)."""
    return raw + raw // 1000 + 64


def _room(gz: int) -> int:
    """NDJSON bytes that surely fit in ``gz`` bytes of gzip (the inverse of ``_bound``)."""
    return gz - gz // 1000 - 64


class Batcher:
    """Collects encoded events; seals a batch at ``flush_s``, or when it is full: its payload
    (gzip'd) would pass ``max_bytes`` (a Kinesis record is at most 1 MiB), or its NDJSON would
    pass ``max_raw`` (what a consumer inflates per record).

    Sealing on the gzip'd size, not the NDJSON's: the NDJSON compresses ~40x (each event repeats
    its process), so a 1 MiB-NDJSON bound made ~25 KiB records, four a second on the bench, and
    every one of them cost the shipper a PutRecords call of its own."""

    def __init__(
        self,
        sink: Sink,
        host: wire.Host,
        *,
        flush_s: float = 1.0,
        stretch_s: float = STRETCH_S,
        max_bytes: int = 960 * 1024,
        max_raw: int = 8 << 20,
        gzip_level: int = 1,
        compress: bool = True,
        express: bool = True,
        express_min_s: float = EXPRESS_MIN_S,
        clock: Callable[[], float] = time.monotonic,
        v2: bool | None = None,
        fold: bool = True,
    ) -> None:
        self.sink = sink
        # wire v2 (docs/wire-format.md): each process and ancestor is defined once per batch by a
        # "proc" line and its events name it by ref. Gzip'd batches only: a plain sink (--stdout)
        # has no record for a table to live in, so it writes every block inline (v1)
        self.v2 = compress if v2 is None else v2 and compress
        # wire v2 repeats (wire.Repeats): a connect, accept or DNS query equal to one already in
        # the batch but for its time, seq and ephemeral port is counted on that one, not written;
        # a "repeats" line at the seal says how many each stands for
        self.fold = fold and self.v2
        self._folds: dict[tuple[Any, ...], list[int]] = {}  # this batch: key -> [seq, repeats, last time]
        self.reserve = 0  # NDJSON bytes the batch's repeats line will take
        # the native fast path's folds of the open batch (its epoch), when C folds (FastPath.folds);
        # room for their entries is held back from every batch (native_reserve)
        self.native_folds: Callable[[int], list[tuple[int, int, int]]] | None = None
        self.native_reserve = 0
        self.folded = 0  # events folded since the agent started (a counter for its log)
        self.epoch = 1  # the open batch's number (the native fast path's refs are per batch)
        self.next_ref = 0  # refs are unique within a batch (shared with the native fast path)
        self._bare: dict[
            int, tuple[wire.Process, bytes, list[bytes], int]
        ] = {}  # id -> block, ancestors, weight
        # what the open batch's refs name (wire.process_weight): sealed at half the ingest's bound
        self.expanded = 0
        self.expanded_max = vbounds.EXPANDED_MAX // 2
        self._weight = 0  # of the line being built
        self._by_id: dict[int, tuple[wire.Process, int, int]] = {}  # this batch: process -> ref, weight
        self._by_block: dict[tuple[bytes, tuple[int, ...]], int] = {}  # this batch: block, lineage -> ref
        self._ancestors: dict[bytes, int] = {}  # this batch: an ancestor's block -> its ref
        self.host = host
        self.flush_s = flush_s
        # a small batch's deadline (stretch_s <= flush_s: off; a plain sink has no record to pay for)
        self.stretch_s = max(flush_s, stretch_s) if compress else flush_s
        self.stretched = 0  # batches that waited past flush_s because they were small (a counter for its log)
        # the loop reads the kernel in rounds (round()): what it reads in one was recorded after
        # the previous one began, so a batch is dated from there and leaves flush_s later
        self._round_at: float | None = None
        self._floor: float | None = None
        self.max_bytes = max_bytes
        self.max_raw = max_raw if compress else max_bytes
        self.gzip_level = gzip_level
        self.compress = compress
        self.clock = clock
        self.express = express
        self.express_min_s = express_min_s
        self.urgent = False  # the open batch holds an urgent event
        self._express_at = float("-inf")  # when the last express seal happened
        self.express_seals = 0
        # the batch: gzip'd as it fills (no 1 MiB join and copy at the seal), or for a plain sink
        # its lines (an item may hold several events: add_lines)
        self.lines: list[bytes] = []
        self._comp: Any = None
        self._gz: list[bytes] = []
        self.count = 0  # events in ``lines``
        self.size = 0  # NDJSON bytes
        self.gz_size = 0  # gzip'd bytes out of the compressor so far
        self.unsynced = 0  # NDJSON bytes in since the compressor was last flushed (Z_SYNC_FLUSH)
        self.opened = 0.0
        self.first_seq = 0
        self.last_seq = 0
        self._last_id = 0
        # id(process) -> (process, its encoded block or None on first sight): a process's events
        # (connects, DNS, files) splice the same bytes instead of re-encoding it and its lineage.
        # The tuple holds the process, so its id cannot be reused while the entry lives.
        self._raw: dict[int, tuple[wire.Process, msgspec.Raw | None]] = {}
        self._host_key = b'{"host":' + _encode(host) + b","  # add_lines: a batch's first line

    def set_host(self, host: wire.Host) -> None:
        """A new batch header (the identity was fetched again): from the next batch on."""
        self.host = host
        self._host_key = b'{"host":' + _encode(host) + b","

    def round(self, t: float) -> None:
        """The loop begins a round of reading the kernel at ``t`` (on ``clock``)."""
        self._floor, self._round_at = self._round_at, t

    def _opening(self) -> float:
        """When the first event of a batch opened now was recorded, at the earliest."""
        return self._floor if self._floor is not None else self.clock()

    def mark_urgent(self) -> None:
        """The open batch (or the lines just added) holds an urgent event: see ``express_due``."""
        if self.express:
            self.urgent = True

    def express_due(self) -> bool:
        """Whether the open batch should leave now, ahead of ``flush_s`` (the express lane)."""
        return self.urgent and bool(self.count) and self.clock() - self._express_at >= self.express_min_s

    def add(self, event: wire.WireEvent) -> None:
        if self.express and urgent(event):
            self.urgent = True
        foldable = self.fold and event.__class__ in wire.FOLDABLE and event.host is None  # not a new host
        if not self.count:
            if event.host is None:
                event = _replace(event, host=self.host)
            self.opened = self._opening()
            self.first_seq = event.seq
        p = getattr(event, "process", None)
        if self.v2:
            refd, defs = self._refs(event, p)
            key = _fold_key(refd) if foldable else None
            if key is not None and not defs:
                f = self._folds.get(key)
                if f is not None and f[1] < vbounds.REPEATS_MAX and (f[1] or self._reserve_fold()):
                    f[1] += 1
                    f[2] = event.time
                    self.folded += 1
                    self.count += 1
                    self.last_seq = event.seq
                    return
            defs.append(_encode(refd))
            line = defs[0] if len(defs) == 1 else b"\n".join(defs)
            if self.count and (
                self.expanded + self._weight > self.expanded_max or not self._fits(len(line) + 1)
            ):
                self.seal(full=True)
                self.add(event)
                return
            self.expanded += self._weight
            self._append(line)
            self.count += 1
            self.size += len(line) + 1
            self.last_seq = event.seq
            if key is not None and key not in self._folds and len(self._folds) < FOLDS_MAX:
                self._folds[key] = [event.seq, 0, 0]
            return
        if p.__class__ is _Process:
            c = self._raw.get(id(p))
            if c is not None and c[0] is p:
                raw = c[1]
                if raw is None:
                    raw = _Raw(_encode(p))
                    self._raw[id(p)] = (p, raw)
                event = _replace(event, process=raw)  # type: ignore[type-var]
            else:
                if len(self._raw) >= RAW_CACHE:
                    self._raw.clear()
                self._raw[id(p)] = (p, None)
        line = _encode(event)
        if self.count and not self._fits(len(line) + 1):
            self.seal(full=True)
            self.add(event)
            return
        self._append(line)
        self.count += 1
        self.size += len(line) + 1
        self.last_seq = event.seq

    def _refs(self, event: wire.WireEvent, p: Any) -> tuple[wire.WireEvent, list[bytes]]:
        """The event naming its processes by ref, and the "proc" lines of what it names that this
        batch has not defined yet (to go before its line)."""
        defs: list[bytes] = []
        self._weight = 0
        if p.__class__ is _Process:
            event = _replace(event, process=self._ref(p, defs))
        t = getattr(event, "target", None)
        if t.__class__ is _Process:
            event = _replace(event, target=self._ref(t, defs))  # type: ignore[call-arg]
        return event, defs

    def _reserve_fold(self) -> bool:
        """Room in the batch for one more entry of its repeats line (reserved: ``reserve``)."""
        need = _FOLD_ENTRY + (0 if self.reserve else _FOLD_HEAD)
        if not self._fits(need):
            return False  # the event is written instead (and seals the batch)
        self.reserve += need
        return True

    def _new_ref(self) -> int:
        ref = self.next_ref
        self.next_ref = (ref + 1) & 0x7FFFFFFF
        return ref

    def _ref(self, p: wire.Process, defs: list[bytes]) -> Any:
        """p's ref in the open batch (an int, typed as the field it replaces), defining it and
        its ancestors in ``defs`` on first sight. Objects the agent shares (its process table's)
        are found by identity; equal blocks (a corpus decoded event by event) by content."""
        c = self._by_id.get(id(p))
        if c is not None and c[0] is p:
            self._weight += c[2]
            return c[1]
        e = self._bare.get(id(p))
        if e is None or e[0] is not p:
            if len(self._bare) >= RAW_CACHE:
                self._bare.clear()
            lin = p.lineage
            weight = _weigh(p) + sum(_weigh(a) for a in lin)
            if any(a.lineage for a in lin):  # never from the agent: sent inline, as v1
                e = (p, _encode(p), [], weight)
            else:
                e = (p, self._block(p, lineage=[]), [self._block(a) for a in lin], weight)
            self._bare[id(p)] = e
        self._weight += e[3]
        block, ancestors = e[1], e[2]
        refs = []
        for a in ancestors:
            r = self._ancestors.get(a)
            if r is None:
                r = self._ancestors[a] = self._new_ref()
                defs.append(b'{"kind":"proc","ref":%d,"process":%s}' % (r, a))
            refs.append(r)
        key = (block, tuple(refs))
        ref = self._by_block.get(key)
        if ref is None:
            ref = self._by_block[key] = self._new_ref()
            if refs:
                lineage = b",".join(b"%d" % r for r in refs)
                defs.append(b'{"kind":"proc","ref":%d,"process":%s,"lineage":[%s]}' % (ref, block, lineage))
            else:
                defs.append(b'{"kind":"proc","ref":%d,"process":%s}' % (ref, block))
        self._by_id[id(p)] = (p, ref, e[3])
        return ref

    def _block(self, p: wire.Process, **changes: Any) -> bytes:
        """A "proc" line's block for ``p``: without its uid when the ingest derives the same one
        from the pid, start time and the header's boot (``wire.derived_uid``): a uuid is a fifth
        of a busy record's compressed bytes. Any other uid is sent as it is."""
        host = self.host
        if p.uid and host.boot_time and p.uid == wire.derived_uid(p, host.boot_id, host.boot_time):
            changes["uid"] = ""
        return _encode(_replace(p, **changes) if changes else p)

    def native_room(self, low: int = 256 << 10, margin: int = 160 << 10) -> int:
        """Wire v2 with the native fast path: NDJSON bytes C may write in its next pass so that
        its lines fit the open batch whole (a batch is never cut inside C's lines: a ref there may
        name a process C defined earlier in the same batch). Seals the batch first when less
        than ``low`` is left; C stops its pass past the returned size (its ``soft_max``), and a
        record adds less than ``margin``."""
        if not self.count:
            return max(1, min(_room(self.max_bytes), self.max_raw) - margin - self.native_reserve)
        if self.expanded > self.expanded_max - margin:  # what its refs name (EXPANDED_MAX)
            self.seal(full=True)
            return max(1, min(_room(self.max_bytes), self.max_raw) - margin - self.native_reserve)
        room = min(_room(self.max_bytes - self.gz_size - _bound(self.unsynced)), self.max_raw - self.size)
        room -= self.reserve + self.native_reserve
        if room < low and self._comp is not None and self.unsynced:
            out = self._comp.flush(Z_SYNC_FLUSH)  # what the compressor holds, out: its size known
            if out:
                self._gz.append(out)
                self.gz_size += len(out)
            self.unsynced = 0
            room = min(_room(self.max_bytes - self.gz_size), self.max_raw - self.size)
            room -= self.reserve + self.native_reserve
        if room < low:
            self.seal(full=True)
            return max(1, min(_room(self.max_bytes), self.max_raw) - margin - self.native_reserve)
        return max(1, room - margin)  # C stops a pass after the record that passes it (0: no bound)

    def _append(self, piece: bytes | memoryview, head: bytes = b"") -> None:
        """Encoded events (``head`` + ``piece``, joined without a copy when compressing)."""
        if not self.compress:
            self.lines.append(head + piece if head else bytes(piece))
            return
        comp = self._comp
        if comp is None:
            comp = self._comp = gzip_compressor(self.gzip_level)
        gz = self._gz
        for data in (head, piece, b"\n") if head else (piece, b"\n"):
            out = comp.compress(data)
            if out:
                gz.append(out)
                self.gz_size += len(out)
            self.unsynced += len(data)

    def _fits(self, n: int) -> bool:
        """Whether ``n`` more NDJSON bytes keep the open batch within its bounds (and its
        repeats line, ``reserve`` and ``native_reserve``)."""
        n += self.reserve + self.native_reserve
        if self.size + n > self.max_raw:
            return False
        if not self.compress:
            return True
        if self.gz_size + _bound(self.unsynced) + _bound(n) <= self.max_bytes:
            return True  # even if nothing still in the compressor compressed at all
        # near the bound: what the compressor holds is flushed out, so its size is known
        out = self._comp.flush(Z_SYNC_FLUSH)
        if out:
            self._gz.append(out)
            self.gz_size += len(out)
        self.unsynced = 0
        return self.gz_size + _bound(n) <= self.max_bytes

    def encoded(self, p: wire.Process) -> bytes:
        """A process's block as every event of it carries it (encoded once, cached like ``add``'s)."""
        c = self._raw.get(id(p))
        if c is not None and c[0] is p and c[1] is not None:
            return bytes(c[1])
        if len(self._raw) >= RAW_CACHE:
            self._raw.clear()
        block = _encode(p)
        self._raw[id(p)] = (p, _Raw(block))
        return block

    def add_lines(self, chunk: bytes | memoryview, n: int, first_seq: int) -> None:
        """``n`` encoded events joined by newlines, with consecutive seqs from ``first_seq`` (the
        native fast path's output; a view of its buffer is used only during the call). A batch
        that fills up is sealed between two lines; lines are looked for only around such a cut,
        and counted only on its shorter side."""
        view = memoryview(chunk)
        if self.v2:  # C sized its pass to the batch (native_room): whole, never cut (its refs)
            if not self.count:
                self.opened = self._opening()
                self.first_seq = first_seq
                self._append(view[1:], self._host_key)
            else:
                self._append(view)
            self.count += n
            self.size += len(view) + 1
            self.last_seq = first_seq + n - 1
            return
        data = chunk if isinstance(chunk, bytes) else None  # made only to look for line ends
        pos, end = 0, len(view)
        while pos < end:
            size = end - pos
            if not self.count:
                room = min(_room(self.max_bytes), self.max_raw) - 1
            elif self._fits(size + 1):
                room = size
            else:  # _fits flushed the compressor: the room left is known
                room = min(_room(self.max_bytes - self.gz_size), self.max_raw - self.size) - 1
            stop = end
            if size > room:
                if data is None:
                    data = view.tobytes()
                cut = data.rfind(b"\n", pos, pos + max(room, 0) + 1)
                if cut <= pos:
                    if self.count:
                        self.seal(full=True)
                        continue
                    cut = data.find(b"\n", pos)  # a line larger than a batch: it goes alone
                stop = end if cut < 0 else cut
            if stop == end:
                k = n
            elif stop - pos <= end - stop:
                k = data.count(b"\n", pos, stop) + 1  # type: ignore[union-attr]
            else:
                k = n - data.count(b"\n", stop + 1, end) - 1  # type: ignore[union-attr]
            n -= k
            if not self.count:  # the batch's first event carries the host (key order is free)
                self.opened = self._opening()
                self.first_seq = first_seq
                self._append(view[pos + 1 : stop], self._host_key)
            else:
                self._append(view[pos:stop])
            self.count += k
            self.size += stop - pos + 1
            first_seq += k
            self.last_seq = first_seq - 1
            pos = stop + 1

    def small(self) -> bool:
        """Whether the open batch is under ``STRETCH_GZ`` gzip'd, by estimate: the compressor's
        output so far and what it still holds at ``_GZ_RATIO`` (an estimate that errs large, so
        a doubt keeps the one-second cadence)."""
        return self.gz_size + self.unsynced // _GZ_RATIO < STRETCH_GZ

    def _wait(self) -> float:
        """How long after its first event the open batch leaves: ``stretch_s`` while it is small,
        else ``flush_s``."""
        return self.stretch_s if self.stretch_s > self.flush_s and self.small() else self.flush_s

    def due(self) -> bool:
        return bool(self.count) and self.clock() - self.opened >= self._wait()

    def due_in(self) -> float:
        """Seconds until the open batch is due (infinity when there is none)."""
        if not self.count:
            return float("inf")
        now = self.clock()
        due = self.opened + self._wait() - now
        if self.urgent:
            due = min(due, self._express_at + self.express_min_s - now)
        return max(0.0, due)

    def fold_native(self, folds: Callable[[int], list[tuple[int, int, int]]], entries: int) -> None:
        """The native fast path folds too: ``folds(epoch)`` gives its entries at the seal, of at most
        ``entries`` first events a batch, whose room every batch holds back."""
        if self.fold:
            self.native_folds = folds
            self.native_reserve = entries * _FOLD_ENTRY + _FOLD_HEAD

    def add_folded(self, n: int) -> None:
        """``n`` events the native fast path folded into lines of the open batch (counted, not sent)."""
        self.count += n
        self.folded += n

    def _write_repeats(self) -> None:
        """The batch's repeats line (wire.Repeats): what each folded event stands for."""
        folds = [(s, n, t) for s, n, t in self._folds.values() if n]
        if self.native_folds is not None:
            folds += self.native_folds(self.epoch)
        self._folds.clear()
        self.reserve = 0
        if folds:
            line = (
                b'{"kind":"repeats","of":['
                + b",".join(b"[%d,%d,%d]" % (s, n, t) for s, n, t in folds)
                + b"]}"
            )
            self._append(line)
            self.size += len(line) + 1

    def seal(self, *, full: bool = False) -> Batch | None:
        """Seal and submit the open batch. A batch sealed because it is ``full`` may wait, at the
        sink, until its first event is ``flush_s`` old; any other seal (due, start, stop) is sent
        at once, and takes the held batches with it."""
        if not self.count:
            return None
        age = self.clock() - self.opened
        if self.urgent and not full and age < self.flush_s:  # ahead of its time
            self.express_seals += 1
            self._express_at = self.clock()
        elif age >= self.flush_s and self._wait() > self.flush_s:
            self.stretched += 1
        self.urgent = False
        if self._folds or self.native_folds is not None:
            self._write_repeats()
        if self.compress:
            self._gz.append(self._comp.flush())
            payload = b"".join(self._gz)
            self._comp, self._gz = None, []
        else:
            payload = b"\n".join(self.lines) + b"\n"
        self.epoch = (self.epoch + 1) & 0xFFFFFFFF or 1
        self.expanded = 0
        self._by_id.clear()
        self._by_block.clear()
        self._ancestors.clear()
        bid = max(time.time_ns(), self._last_id + 1)
        self._last_id = bid
        batch = Batch(bid, self.count, payload, self.first_seq, self.last_seq)
        lines = self.lines
        self.lines, self.size, self.count = [], 0, 0
        self.gz_size = self.unsynced = 0
        hold_s = max(0.0, self.opened + self.flush_s - self.clock()) if full else 0.0
        self.sink.submit(batch, lines, hold_s)
        return batch


class StdoutSink:
    """``--stdout``: the exact wire NDJSON, one event per line, uncompressed."""

    plain = True  # the batcher skips gzip for this sink

    def __init__(self, stats: Stats, out: BinaryIO | None = None) -> None:
        self.out = out or sys.stdout.buffer
        self.stats = stats
        self.broken = False

    def submit(self, batch: Batch, lines: list[bytes], hold_s: float = 0.0) -> None:
        if self.broken:
            self.stats.add(dropped=batch.count)
            return
        try:
            self._write(b"\n".join(lines) + b"\n")
            self.stats.add(sent=batch.count)
        except (BrokenPipeError, ValueError, OSError):
            self.broken = True
            self.stats.add(dropped=batch.count)

    def _write(self, data: bytes) -> None:
        """All of ``data``, straight to the file descriptor. Through the buffered writer, a write
        blocked on a full pipe and interrupted by SIGTERM (the agent stopping while its reader
        lags) returned having written only the first 64 KiB of the batch: a cut line and the
        rest of the batch lost (seen under load). os.write's partial counts are looped here."""
        try:
            fd = self.out.fileno()
        except (AttributeError, OSError, ValueError):  # not a file (tests write to BytesIO)
            self.out.write(data)
            self.out.flush()
            return
        self.out.flush()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def close(self, timeout: float) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            self.out.flush()


def kinesis_client(region: str, endpoint_url: str, timeout_s: float) -> Any:
    import boto3  # lazy: --stdout never pays for it
    from botocore.config import Config

    client = boto3.client(
        "kinesis",
        region_name=region or None,
        endpoint_url=endpoint_url or None,
        config=Config(
            # retries are ours (per record, below); the request is always built here, so
            # botocore's validation (a walk over every record, every call) buys nothing
            retries={"max_attempts": 1, "mode": "standard"},
            parameter_validation=False,
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            tcp_keepalive=True,
        ),
    )
    # The loader keeps every JSON file it parsed (endpoints, partitions, the service model, the
    # rule set: ~4 MiB of dicts); the client holds what it needs itself.
    with contextlib.suppress(AttributeError):
        client._loader._cache.clear()
    boto3.DEFAULT_SESSION = None
    release_memory()
    return client


def release_memory(collect: bool = True) -> None:
    """Return freed heap to the kernel (glibc keeps it otherwise): after start-up, after the
    Kinesis client is built, and every limits window (without a full collection)."""
    if collect:
        import gc

        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _malloc_trim() -> Any:
    global _TRIM
    if _TRIM is False:
        try:
            import ctypes

            _TRIM = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _TRIM = None
    return _TRIM


_TRIM: Any = False
_NEVER = float("inf")


class KinesisShipper:
    def __init__(
        self,
        *,
        stream: str,
        partition_key: str,
        spool: Spool,
        stats: Stats,
        client_factory: Callable[[], Any],
        memory_batches: int = 16,
        max_attempts: int = 6,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 5.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.stream = stream
        # a member account's agent writes to the administrator's stream by its ARN (cross-account:
        # a stream name would resolve in the instance's own account; docs/multi-account.md)
        self._target = {"StreamARN": stream} if stream.startswith("arn:") else {"StreamName": stream}
        self.key = partition_key
        self.spool = spool
        self.stats = stats
        self.client_factory = client_factory
        self._client: Any = None
        self.memory: deque[Batch] = deque()
        self.memory_batches = memory_batches
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.cond = threading.Condition()
        self.stopping = False
        self.healthy = True
        self.probe_at = 0.0
        self.probe_delay = backoff_base_s
        self.last_error = ""
        self._sleep = sleep
        self.send_at = _NEVER  # monotonic time the batches in memory must leave by
        self.draining = False  # close(): nothing is held any more
        self.thread = threading.Thread(target=self._run, name="vigil-shipper", daemon=True)

    def start(self) -> None:
        self.thread.start()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    # loop thread ----------------------------------------------------------------------------
    def submit(self, batch: Batch, lines: list[bytes] | None = None, hold_s: float = 0.0) -> None:
        with self.cond:
            if len(self.spool) or not self.healthy or len(self.memory) >= self.memory_batches:
                self._spill()
                self._to_spool(batch)
            else:
                self.memory.append(batch)
                self.send_at = min(self.send_at, time.monotonic() + hold_s)
            self.cond.notify()

    def _to_spool(self, batch: Batch) -> None:
        evicted = self.spool.append(batch)
        self.stats.add(spooled=batch.count, spool_evicted=evicted, dropped=evicted)

    def _spill(self) -> None:
        """Memory batches are older than anything submitted now: they go to the spool first."""
        while self.memory:
            self._to_spool(self.memory.popleft())
        self.send_at = _NEVER

    def close(self, timeout: float) -> None:
        """Try to send what is left within ``timeout``; spool the rest (it is replayed next start)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.draining = True
            self.cond.notify()
        while time.monotonic() < deadline:
            with self.cond:
                if not self.memory or not self.healthy:
                    break
            time.sleep(0.05)
        with self.cond:
            self.stopping = True
            self._spill()
            self.cond.notify()
        self.thread.join(timeout=max(0.1, deadline - time.monotonic()) + 1)

    # shipper thread -------------------------------------------------------------------------
    def _ready(self) -> bool:
        """Send what is in memory now? When a batch is due, on close, or when holding more
        would not make the call bigger (a call's worth waits) or would risk the spool."""
        if not self.memory:
            return False
        if self.draining or time.monotonic() >= self.send_at:
            return True
        n = len(self.memory)
        if n >= MAX_PUT_RECORDS or 2 * n >= self.memory_batches:
            return True
        return sum(len(b.payload) for b in self.memory) > MAX_PUT_BYTES - MAX_RECORD_BYTES

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.stopping and not len(self.spool) and not self._ready():
                    self.cond.wait(min(1.0, max(0.001, self.send_at - time.monotonic())))
                if self.stopping:
                    return
                wait = self.probe_at - time.monotonic()
            if not self.healthy and wait > 0:
                with self.cond:
                    self.cond.wait(min(wait, 1.0))
                continue
            if len(self.spool):
                batch = self.spool.head()
                if batch is None:
                    continue
                ok = self._send([batch])
                if ok:
                    self.spool.pop(batch)
                self._health(ok)
                continue
            with self.cond:
                batches: list[Batch] = []
                size = 0
                while (
                    self.memory
                    and len(batches) < MAX_PUT_RECORDS
                    and size + len(self.memory[0].payload) <= MAX_PUT_BYTES
                ):
                    b = self.memory.popleft()
                    batches.append(b)
                    size += len(b.payload)
                self.send_at = 0.0 if self.memory else _NEVER  # what did not fit goes next
            if not batches:
                continue
            failed = self._send_all(batches)
            if failed:
                with self.cond:  # back at the head of the queue, in order: through the spool
                    self.memory.extendleft(reversed(failed))
                    self._spill()
            self._health(not failed)

    def _health(self, ok: bool) -> None:
        if ok:
            if not self.healthy:
                log.info("kinesis reachable again; replaying %d spooled batches", len(self.spool))
            self.healthy = True
            self.probe_delay = self.backoff_base_s
        else:
            if self.healthy:
                log.warning("kinesis unavailable (%s); spooling to %s", self.last_error, self.spool.dir)
            self.healthy = False
            self.probe_delay = min(max(self.probe_delay * 2, self.backoff_base_s), 30.0)
            self.probe_at = time.monotonic() + random.uniform(self.probe_delay / 2, self.probe_delay)

    def _send(self, batches: list[Batch]) -> bool:
        return not self._send_all(batches)

    def _send_all(self, batches: list[Batch]) -> list[Batch]:
        """PutRecords with per-record retry; returns the batches that could not be delivered."""
        pending = list(batches)
        for attempt in range(self.max_attempts):
            if attempt:
                cap = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
                (self._sleep or time.sleep)(random.uniform(0, cap))  # full jitter
                if self.stopping:
                    break
            try:
                resp = self.client.put_records(
                    **self._target,
                    Records=[{"Data": b.payload, "PartitionKey": self.key} for b in pending],
                )
            except Exception as exc:  # network, throttling of the whole call, auth: retry
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self.stats.add(send_errors=1)
                continue
            results = resp.get("Records", [])
            retry = []
            for b, r in zip(pending, results, strict=False):
                if r.get("ErrorCode"):
                    retry.append(b)
                    self.last_error = f"{r.get('ErrorCode')}: {r.get('ErrorMessage', '')}"[:300]
                else:
                    self.stats.add(sent=b.count)
            if len(results) < len(pending):
                retry += pending[len(results) :]
            if retry:
                self.stats.add(send_errors=len(retry))
            pending = retry
            if not pending:
                return []
        return pending
