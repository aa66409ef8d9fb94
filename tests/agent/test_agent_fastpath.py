"""The native fast path (agent/native/fastpath.c) against the Python path it replaces.

Records are packed here as the kernel program writes them and handed to the C callback directly
(no kernel needed): for every record C either writes the very bytes msgspec writes for the event
the Python path builds, or queues the record for Python, or drops it where Python would too.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

import msgspec
import pytest

from vigil import wire
from vigil.sample import T0
from vigil_agent import bpfsensor as b
from vigil_agent import fastpath, ship
from vigil_agent.bpfevents import BpfCollector
from vigil_agent.proctable import ProcessTable
from vigil_agent.ship import Batcher

pytestmark = pytest.mark.skipif(
    not Path(fastpath.LIBRARY).exists(), reason="libvigilfast.so not built (make agent-native)"
)
START = 5_000_000_000  # the records' process start (CLOCK_BOOTTIME ns)


def _net(
    kind: int,
    pid: int,
    family: int,
    *,
    comm: bytes = b"curl",
    start_ns: int = START,
    ret: int = 0,
    type_: int = 1,
    laddr: bytes = b"",
    raddr: bytes = b"",
    lport: int = 0,
    rport: int = 0,
    path: bytes = b"",
) -> bytes:
    hdr = b.HDR.pack(kind, pid, pid, 1, 7_000_000_123, start_ns, 1000, 0, 1000, 1000, comm)
    return hdr + b.NET_TAIL.pack(ret, family, type_, lport, rport, 3, laddr, raddr, path)


def _exit(pid: int, code: int = 256) -> bytes:
    return b.HDR.pack(b.EV_EXIT, pid, pid, 1, 8_000_000_000, START, 0, 0, 0, 0, b"x") + b.EXIT_TAIL.pack(
        code, 0
    )


class Harness:
    """A FastPath and the Python collector side by side, over the same process table."""

    def __init__(self, tmp_path: Path, *, exclude_comm: tuple[str, ...] = (), max_procs: int = 64) -> None:
        self.table = ProcessTable(proc=str(tmp_path))  # an empty /proc: processes come from execs
        self.col = BpfCollector(
            self.table,
            unix_sockets=["/var/run/docker.sock"],
            unix_all=False,
            exclude_comm=exclude_comm,
            exclude_exes=["/usr/bin/excluded"],
            dns_ports=[53],
            on_dns_connect=lambda *a: None,
            self_pid=1,
        )
        self.fast = fastpath.FastPath(
            self_pid=1,
            dns_ports=[53],
            exclude_comm=exclude_comm,
            max_procs=max_procs,
            boot=self.table.boot,
            btime_ns=self.table.btime,
        )
        self.fast.ctx.wall_offset = self.col.wall_offset
        self.seq = 100

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def process(self, pid: int, exe: str = "/usr/bin/curl", start_ns: int = START) -> wire.Process:
        p = self.table.on_exec(
            pid=pid, ppid=1, exe=exe, name=exe.rsplit("/", 1)[-1], argv=[exe, "https://x"], cwd="/",
            uid=1000, euid=1000, gid=1000, egid=1000, tty="", time_ns=1, start_ticks=start_ns // 10_000_000,
            ctx={},
        )  # fmt: skip
        block = None if exe == "/usr/bin/excluded" else msgspec.json.encode(p)
        assert self.fast.set(pid, start_ns, block)
        return p

    def c(self, record: bytes) -> tuple[bytes, list[bytes]]:
        """(the line C wrote or b"", the records it queued for Python) for one record."""
        self.fast.ctx.seq = self.seq
        assert self.fast.sample(self.fast.ptr, record, len(record)) == 0
        self.seq = self.fast.ctx.seq
        lines, n, queued = self.fast.take()
        assert n == (1 if lines else 0)
        return lines, queued

    def python(self, record: bytes) -> list[bytes]:
        return [msgspec.json.encode(e) for e in self.col.net(record, self.next_seq)]


def _addr(rng: random.Random, family: int) -> bytes:
    if family == b.AF_INET:
        return bytes(rng.randrange(256) for _ in range(4))
    choice = rng.randrange(4)
    if choice == 0:
        return socket.inet_pton(socket.AF_INET6, f"::ffff:10.{rng.randrange(256)}.0.{rng.randrange(256)}")
    if choice == 1:
        return socket.inet_pton(socket.AF_INET6, "::1")
    if choice == 2:
        return b"\0" * 16
    return bytes(rng.randrange(256) for _ in range(16))


def test_lines_are_byte_for_byte_what_the_python_path_writes(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    pids = [1000 + i for i in range(5)]
    for pid in pids:
        h.process(pid)
    rng = random.Random(7)
    kinds = (b.EV_CONNECT, b.EV_ACCEPT, b.EV_LISTEN)
    fast = noted = 0
    for _ in range(3000):
        kind, family = rng.choice(kinds), rng.choice((b.AF_INET, b.AF_INET6))
        rec = _net(
            kind,
            rng.choice(pids),
            family,
            ret=rng.choice((0, 0, 0, 5, -115, -111, -13)),
            type_=rng.choice((1, 1, 2, 5)),
            laddr=_addr(rng, family),
            raddr=_addr(rng, family),
            lport=rng.choice((0, 22, 443, 65535, rng.randrange(1, 65536))),
            rport=rng.choice((0, 53, 80, 65535, rng.randrange(1, 65536))),
        )
        seq_before = h.seq
        line, queued = h.c(rec)
        if queued:  # a connect to the DNS port comes back for Python's attribution, marked
            assert queued == [bytes([fastpath.EV_DNS_NOTED]) + rec[1:]]
            assert kind == b.EV_CONNECT and rec[b.HDR.size + 10 : b.HDR.size + 12] == (53).to_bytes(
                2, "little"
            )
            noted += 1
        h.seq = seq_before  # the Python path gives the same seq
        assert [line] == h.python(rec), rec.hex()
        fast += 1
    assert fast == 3000 and noted > 100


def test_what_c_leaves_to_python_and_what_it_drops(tmp_path: Path) -> None:
    h = Harness(tmp_path, exclude_comm=("noisy",))
    h.process(2000)
    h.process(2001, exe="/usr/bin/excluded")
    lo = socket.inet_aton("127.0.0.1")
    slow = [
        _net(b.EV_CONNECT, 2999, b.AF_INET, raddr=lo, rport=80),  # a process Python has not registered
        _net(b.EV_CONNECT, 2000, b.AF_INET, raddr=lo, rport=80, start_ns=START + 1),  # pid reused
        _net(b.EV_CONNECT, 2000, b.AF_UNIX, path=b"/var/run/docker.sock"),
        _net(b.EV_PROC_MEM, 2000, 0, path=b"/proc/1/mem"),
        _net(b.EV_CONNECT, 2000, b.AF_INET, raddr=lo, rport=80)[:-1],  # a short record
        b"\x07\0\0\0",
    ]
    for rec in slow:
        assert h.c(rec) == (b"", [rec]), rec[:8]  # queued whole, for Python
    dropped = [
        _net(b.EV_CONNECT, 2001, b.AF_INET, raddr=lo, rport=80),  # an excluded executable
        _net(b.EV_CONNECT, 2000, b.AF_INET, raddr=lo, rport=80, comm=b"noisy"),  # an excluded comm
        _net(b.EV_CONNECT, 1, b.AF_INET, raddr=lo, rport=80),  # the agent itself
    ]
    ignored = h.fast.ctx.ignored
    for rec in dropped:
        assert h.c(rec) == (b"", [])
    assert h.fast.ctx.ignored == ignored + 2
    h.fast.ctx.shed_net = 1  # the limiter sheds net events: dropped and counted
    assert h.c(_net(b.EV_ACCEPT, 2000, b.AF_INET, raddr=lo, rport=80)) == (b"", [])
    assert h.fast.ctx.shed == 1


def test_dns_connects_are_written_in_c_and_noted_for_python(tmp_path: Path) -> None:
    """C writes a DNS connect's line like any other; the marked copy it queues gives Python's
    DNS tracker exactly what the Python path would have given it."""
    h = Harness(tmp_path)
    calls: list[tuple[object, ...]] = []
    h.col.on_dns_connect = lambda *a: calls.append(a)
    h.process(2000)
    lo, res = socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.53")
    rec = _net(b.EV_CONNECT, 2000, b.AF_INET, type_=2, laddr=lo, lport=40001, raddr=res, rport=53)
    seq_before = h.seq
    line, queued = h.c(rec)
    assert queued == [bytes([fastpath.EV_DNS_NOTED]) + rec[1:]]
    h.seq = seq_before
    assert [line] == h.python(rec) and len(calls) == 1  # the Python path: line and attribution
    h.col.dns_noted(queued[0])
    assert len(calls) == 2 and calls[1] == calls[0]
    assert calls[0][1:4] == ("127.0.0.53", "udp", 40001) and calls[0][0].pid == 2000  # type: ignore[attr-defined]
    h.fast.ctx.shed_net = 1  # shed: neither a line nor a note, as in Python
    assert h.c(rec) == (b"", [])


def test_exec_and_exit_forget_the_process_so_its_records_keep_their_order(tmp_path: Path) -> None:
    """After an exec or exit of a pid, its records queue behind that record for Python (which
    registers the new image), instead of getting a line with the old image's block."""
    h = Harness(tmp_path)
    h.process(3000)
    h.process(3001)
    lo = socket.inet_aton("127.0.0.1")
    conn = _net(b.EV_CONNECT, 3000, b.AF_INET, raddr=lo, rport=80)
    exec_rec = b.HDR.pack(b.EV_EXEC, 3000, 3000, 1, 1, START, 0, 0, 0, 0, b"sh") + b"\0" * 64
    accept = _net(b.EV_ACCEPT, 3001, b.AF_INET, raddr=lo, rport=80)
    h.fast.ctx.seq = 0
    for rec in (conn, exec_rec, conn, _exit(3001, 9), accept, conn):
        assert h.fast.sample(h.fast.ptr, rec, len(rec)) == 0
    lines, n, queued = h.fast.take()
    assert n == 1 and lines.startswith(b'{"kind":"net_connect"') and lines.endswith(b',"seq":1}')
    assert queued == [exec_rec, conn, _exit(3001, 9), accept, conn]  # in the ring's order
    # an exited process is kept 2 s for late records of it (audit's come milliseconds late), then goes
    assert h.fast.ctx.n_procs == 1 and h.fast.get(3001) is not None
    h.fast.set(3002, START, b'{"pid":3002}')
    late = _exit(3002)
    late = late[:16] + (8_000_000_000 + 2_000_000_001).to_bytes(8, "little") + late[24:]
    assert h.fast.sample(h.fast.ptr, late, len(late)) == 0
    assert h.fast.get(3001) is None and h.fast.ctx.n_procs == 1  # 3002 waits its own 2 s


def test_a_pass_stops_when_its_buffers_fill_and_loses_nothing(tmp_path: Path) -> None:
    """Past 4 MiB of lines the callback says VF_FULL after handling the record: libbpf has
    consumed it either way, so it must already be in the buffer."""
    h = Harness(tmp_path)
    big = h.process(3100)
    assert h.fast.set(3100, START, msgspec.json.encode(big) + b" " * 60_000)  # a 60 KiB block
    lo = socket.inet_aton("127.0.0.1")
    rec = _net(b.EV_CONNECT, 3100, b.AF_INET, raddr=lo, rport=80)
    rcs = [h.fast.sample(h.fast.ptr, rec, len(rec)) for _ in range(80)]
    first_full = rcs.index(fastpath.VF_FULL)
    assert 60 < first_full < 75 and h.fast.ctx.lines == 80 and h.fast.ctx.dropped == 0
    _lines, n, _ = h.fast.take()
    assert n == 80 and h.fast.ctx.out_len == 0


def test_the_process_table_stays_within_its_bounds_and_survives_churn(tmp_path: Path) -> None:
    """Insertions and deletions in random order (linear probing with backward-shift deletion):
    exactly the registered pids go fast."""
    h = Harness(tmp_path, max_procs=40)
    rng = random.Random(3)
    live: set[int] = set()
    lo = socket.inet_aton("127.0.0.1")
    for step in range(4000):
        pid = rng.randrange(2, 200) * 64 + 5  # many share a home slot
        if rng.random() < 0.55:
            ok = h.fast.set(pid, START, b'{"pid":%d}' % pid)
            assert ok == (pid in live or len(live) < 40)
            if ok:
                live.add(pid)
        else:
            h.fast.forget(pid)
            live.discard(pid)
        if step % 97 == 0:
            for probe in rng.sample(range(2, 200), 30):
                probe = probe * 64 + 5
                line, queued = h.c(_net(b.EV_CONNECT, probe, b.AF_INET, raddr=lo, rport=80))
                assert bool(line) == (probe in live) != bool(queued)
                if line:
                    assert line.startswith(b'{"kind":"net_connect","process":{"pid":%d}' % probe)
    assert h.fast.ctx.n_procs == len(live)
    h.fast.clear()
    assert h.fast.ctx.n_procs == 0 and h.fast.ctx.proc_bytes == 0


class _Sink:
    def __init__(self) -> None:
        self.batches: list[tuple[bytes, int, int, int]] = []

    def submit(self, batch, lines, hold_s=0.0):  # type: ignore[no-untyped-def]
        self.batches.append((batch.payload, batch.count, batch.first_seq, batch.last_seq))

    def close(self, timeout: float) -> None:
        pass


def test_batches_of_native_lines_decode_with_their_host_counts_and_seqs(tmp_path: Path) -> None:
    """Lines from C join the batch as they are; a full batch is split at a line end; the first
    event of every batch carries the host."""
    h = Harness(tmp_path)
    h.process(4000)
    host = wire.Host(instance_id="i-0fa5700000000000f", hostname="h")
    sink = _Sink()
    batcher = Batcher(sink, host, max_raw=8 << 10, compress=True, v2=False)  # v1: C's lines are cut
    lo = socket.inet_aton("127.0.0.1")
    ev = wire.NetConnect(
        time=T0 + 1, seq=h.next_seq(), process=h.table.entries[4000].process, remote_ip="127.0.0.1"
    )
    batcher.add(ev)
    h.fast.ctx.seq = h.seq
    first = h.seq + 1
    for port in range(100, 160):
        h.fast.sample(h.fast.ptr, _net(b.EV_CONNECT, 4000, b.AF_INET, raddr=lo, rport=port), b.NET_SIZE)
    h.seq = h.fast.ctx.seq
    lines, n, _ = h.fast.take(view=True)  # as the agent takes them: a view of C's buffer
    assert n == 60 and isinstance(lines, memoryview)
    batcher.add_lines(lines, n, first)
    batcher.seal()
    assert len(sink.batches) > 2  # 61 events of ~0.5 KiB in batches of 8 KiB
    seqs: list[int] = []
    for payload, count, first_seq, last_seq in sink.batches:
        events, errors = wire.decode_batch(payload)
        assert errors == [] and len(events) == count
        assert events[0].host == host
        assert [e.seq for e in events] == list(range(first_seq, last_seq + 1))
        seqs += [e.seq for e in events]
    assert seqs == list(range(ev.seq, h.seq + 1))


def test_the_context_struct_matches_the_c_layout() -> None:
    """_Ctx mirrors the head of struct vf_ctx: a field out of place would misread every count."""
    src = (Path(__file__).resolve().parents[2] / "agent/native/fastpath.c").read_text()
    body = src[src.index("struct vf_ctx {") : src.index("/* private */")]
    names = [
        ln.split(";")[0].split()[-1].lstrip("*").split("[")[0] for ln in body.splitlines()[1:] if ";" in ln
    ]
    assert names == [n for n, _ in fastpath._Ctx._fields_]
    head = [ln for ln in body.splitlines()[1:] if ";" in ln]
    assert all(ln.split()[0] in ("int64_t", "uint64_t", "uint32_t", "uint16_t", "char") for ln in head)


def _exec(
    pid: int,
    ppid: int,
    args: list[bytes],
    *,
    env: bytes = b"",
    exe: bytes = b"true\0bin\0usr\0",
    cwd: bytes = b"tmp\0",
    flags: int = 0,
    cgroup: bytes = b"",
    ns_pid: int = 0,
    tty: bytes = b"",
    uid: int = 1000,
    comm: bytes = b"true",
    fds: bytes = b"",
) -> bytes:
    data = b"".join(a + b"\0" for a in args)
    hdr = b.HDR.pack(
        b.EV_EXEC, pid, pid, ppid, 9_000_000_000 + pid, START + pid * 10_000_000, uid, uid, 100, 100, comm
    )
    fixed = b.EXEC_FIXED.pack(
        77, 4096, 1_700_000_000, 5, 259, ns_pid, flags, len(data), len(env), len(exe), len(cwd)
    )
    fds = fds or b.FDINFO.pack(b.S_IFIFO | 0o600, 0, 31337, 0, 0, 0, 0, b"", b"", b"") * 3
    return (
        hdr + fixed + fds + tty.ljust(b.TTY_LEN, b"\0") + cgroup.ljust(b.CGROUP_LEN, b"\0")
        + exe.ljust(b.PATH_BUF, b"\0") + cwd.ljust(b.PATH_BUF, b"\0") + data + env
    )  # fmt: skip


def test_exec_lines_are_byte_for_byte_what_the_python_path_writes(tmp_path: Path) -> None:
    """Random execs (arguments with quotes, backslashes and spaces; LD_PRELOAD; containers;
    ttys; deleted binaries; lineages deeper than 5) through C and through Python: the same line,
    and C takes over once Python has seen the parent, the binary, the user and the fds once."""
    h = Harness(tmp_path, max_procs=1024)
    h.col.fast = h.fast
    h.col.encode = msgspec.json.encode
    h.fast.ctx.exec_on = 1
    key = (259, 77, 1_700_000_000_000_000_005, 4096)
    h.table.hashes.cache[key] = "ab" * 32
    rng = random.Random(11)
    words = [b"-c", b"echo", b'a"b', b"back\\slash", b"x y", b"", b"--flag=1", b"/etc/passwd", b"z" * 300]
    cid = b"f" * 64
    parents = [1]
    fast = slow = 0
    for i in range(400):
        pid = 5000 + i
        ppid = rng.choice(parents[-6:])
        rec = _exec(
            pid,
            ppid,
            [b"/usr/bin/true", *rng.sample(words, rng.randrange(0, 4))],
            env=rng.choice(
                [b"", b"HOME=/root\0", b"LD_PRELOAD=/tmp/a.so\0LD_LIBRARY_PATH=/opt\0LD_PRELOAD=/tmp/b.so\0"]
            ),
            flags=rng.choice([0, 0, b.F_EXE_UNLINKED]),
            cgroup=rng.choice([b"", b"docker-" + cid + b".scope", b"session-3.scope"]),
            ns_pid=rng.choice([0, 7]),
            tty=rng.choice([b"", b"pts1", b"(none)"]),
            uid=rng.choice([0, 1000]),
        )
        h.fast.ctx.seq = h.seq
        assert h.fast.sample(h.fast.ptr, rec, len(rec)) == 0
        lines, n, queued = h.fast.take()
        seq_before = h.seq
        h.seq = h.fast.ctx.seq
        if n:
            fast += 1
            h.seq = seq_before
            [py] = [msgspec.json.encode(e) for e in h.col.exec_(b.decode(rec), h.next_seq)]
            assert lines == py, (lines[:300], py[:300])
            assert h.fast.get(pid) == (msgspec.json.encode(h.table.entries[pid].process), False)
        else:
            slow += 1
            assert queued == [rec]
            h.col.exec_(b.decode(queued[0]), h.next_seq)  # Python writes it, and teaches C
        parents.append(pid)
    assert fast > 350 and slow < 50
    deep = h.table.entries[parents[-1]].process
    assert len(deep.lineage) == 5  # the lineage is cut at 5, in C as in Python


def test_execs_c_cannot_write_exactly_go_to_python(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.col.fast = h.fast
    h.col.encode = msgspec.json.encode
    h.fast.ctx.exec_on = 1
    h.table.hashes.cache[(259, 77, 1_700_000_000_000_000_005, 4096)] = "ab" * 32
    h.col.exec_(b.decode(_exec(6000, 1, [b"sh"])), h.next_seq)  # parent, binary, user, fds known
    ok = _exec(6001, 6000, [b"true"])
    assert h.c(ok)[1] == []  # written in C
    for rec in (
        _exec(6002, 6000, [b"caf\xc3\xa9"]),  # non-ASCII: Python's decoding rules
        _exec(6003, 6000, [b"a\tb"]),  # a control character
        _exec(6004, 6000, [b"x"], env=b"A=1\0", flags=b.F_ENV_TRUNC),  # the rest of env is in /proc
        _exec(6005, 6000, [b"x"], exe=b"memfd:x\0", flags=b.F_EXE_UNLINKED),  # also memfd_exec
        _exec(6006, 4242, [b"x"]),  # a parent C does not know
        _exec(6007, 6000, [b"x"], uid=4321),  # a user C has no name for
        _exec(6008, 6000, [b"x"], fds=b.FDINFO.pack(b.S_IFCHR, 5, 1, 0, 0, 0, 0, b"", b"", b"null") * 3),
    ):
        assert h.c(rec) == (b"", [rec]), rec[:8]
    h.fast.ctx.exec_on = 0  # the limiter stopped enriching, or an executable is excluded
    assert h.c(_exec(6009, 6000, [b"true"])) == (b"", [_exec(6009, 6000, [b"true"])])


def test_pythons_table_takes_a_process_c_wrote_and_knows_it_exited(tmp_path: Path) -> None:
    """A late record of a short-lived process C wrote the exec of (an audit record, a DNS
    connect): Python's table takes the process from C, as its exec said, marked exited so it
    is evicted after the grace like any other."""
    h = Harness(tmp_path)
    h.col.fast = h.fast
    h.col.encode = msgspec.json.encode
    h.fast.ctx.exec_on = 1
    h.table.hashes.cache[(259, 77, 1_700_000_000_000_000_005, 4096)] = "ab" * 32
    h.col.exec_(b.decode(_exec(7000, 1, [b"sh"])), h.next_seq)
    assert h.c(_exec(7001, 7000, [b"curl", b"-s", b"x"]))[1] == []  # written in C
    h.table.fallback = lambda pid: (
        None if (got := h.fast.get(pid)) is None else (msgspec.json.decode(got[0], type=wire.Process), got[1])
    )
    live = h.table.get(7001)
    assert live is not None and live.process.args == ["curl", "-s", "x"] and not live.dead_at
    assert live.process.lineage[0].pid == 7000
    del h.table.entries[7001]
    assert h.fast.sample(h.fast.ptr, _exit(7001), b.EXIT_SIZE) == 0
    _lines, _n, queued = h.fast.take()
    assert queued == [_exit(7001)]  # Python holds it now: its exit is Python's to see too
    gone = h.table.get(7001)
    assert gone is not None and gone.dead_at > 0  # evicted after the grace, not kept forever


def test_names_and_fds_c_cannot_hold_whole_are_not_held_cut(tmp_path: Path) -> None:
    """A user name longer than C keeps, or an fd description too long, is not kept at all (a cut
    one would be a wrong one): those execs stay Python's."""
    h = Harness(tmp_path)
    h.col.fast = h.fast
    h.col.encode = msgspec.json.encode
    h.fast.ctx.exec_on = 1
    h.table.hashes.cache[(259, 77, 1_700_000_000_000_000_005, 4096)] = "ab" * 32
    h.col.exec_(b.decode(_exec(8000, 1, [b"sh"])), h.next_seq)
    assert h.fast.lib.vf_set_user(h.fast.ptr, 4444, b"u" * 40) != 0
    rec = _exec(8001, 8000, [b"true"], uid=4444)
    assert h.c(rec) == (b"", [rec])
    assert h.fast.lib.vf_set_stdio(h.fast.ptr, b"\1" * b.FDINFO.size, b"x" * 500, 500) != 0


def test_c_counts_an_exec_whose_stdio_is_an_inet_socket_as_urgent(tmp_path: Path) -> None:
    """The express lane from C: an exec line C writes for a process whose fd 0-2 is an inet
    socket (a reverse shell's shape) raises ctx.urgent; one on pipes does not."""
    h = Harness(tmp_path, max_procs=64)
    h.col.fast = h.fast
    h.col.encode = msgspec.json.encode
    h.fast.ctx.exec_on = 1
    h.table.hashes.cache[(259, 77, 1_700_000_000_000_000_005, 4096)] = "ab" * 32
    sock = b.FDINFO.pack(
        b.S_IFSOCK | 0o777, 0, 4242, socket.AF_INET, socket.SOCK_STREAM, 40000, 4444,
        bytes([127, 0, 0, 1]).ljust(16, b"\0"), bytes([198, 51, 100, 7]).ljust(16, b"\0"), b"",
    )  # fmt: skip
    counts = []
    for i, fds in enumerate((b"", sock * 3, b"", sock * 3)):
        rec = _exec(6000 + i, 6000 + i - 1 if i else 1, [b"/usr/bin/true"], fds=fds)
        h.fast.ctx.seq = h.seq
        h.fast.sample(h.fast.ptr, rec, len(rec))
        _, n, queued = h.fast.take()
        if not n:  # the first of each kind teaches C the fds (Python writes it)
            [ev] = h.col.exec_(b.decode(queued[0]), h.next_seq)
            assert ship.urgent(ev) is bool(fds)
        else:
            h.seq = h.fast.ctx.seq
        counts.append((n, h.fast.ctx.urgent))
    assert counts[2][0] == 1 and counts[3][0] == 1  # C wrote the second exec of each kind
    assert counts[3][1] - counts[2][1] == 1 and counts[2][1] == counts[1][1]  # only the socket one


# --- wire v2 (issue 14): C defines each process once per batch and names it by ref ---------------
def _record(host: wire.Host, chunks: list[bytes]) -> bytes:
    head = msgspec.json.encode(wire.Heartbeat(time=T0, seq=1, host=host))
    return b"\n".join([head, *chunks]) + b"\n"


def test_v2_net_lines_name_each_process_by_ref_defined_once_per_batch(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    pids = [1000 + i for i in range(5)]
    for pid in pids:
        h.process(pid)
    c = h.fast.ctx
    c.v2, c.epoch, c.next_ref = 1, 1, 40
    rng = random.Random(3)
    host = wire.Host(instance_id="i-0fa5700000000000f")
    chunks: list[bytes] = []
    expected: list[bytes] = []
    for i in range(600):
        if i == 300:  # the next batch: defined again, with refs going on from where they were
            assert _record(host, chunks).count(b'"kind":"proc"') == 5
            chunks = []
            c.epoch = 2
        family = rng.choice((b.AF_INET, b.AF_INET6))
        rec = _net(
            rng.choice((b.EV_CONNECT, b.EV_ACCEPT)), rng.choice(pids), family,
            raddr=_addr(rng, family), rport=rng.choice((80, 443, 8080)),
        )  # fmt: skip
        seq_before = h.seq
        line, _ = h.c(rec)
        h.seq = seq_before
        expected += h.python(rec)
        chunks.append(line)
    d = wire.decode_record(_record(host, chunks))
    assert d.errors == [] and d.lines == 301 + 5 and c.next_ref == 50
    want = [msgspec.json.decode(x, type=wire.WireEvent) for x in expected[300:]]  # type: ignore[arg-type]
    assert [msgspec.structs.replace(e, host=None) for e in d.events[1:]] == want


@pytest.mark.parametrize("omit_uid", [False, True])
def test_v2_exec_lines_define_the_process_and_its_ancestors_by_ref(tmp_path: Path, omit_uid: bool) -> None:
    """Random execs through C with v2 on: one record of C's chunks (and Python's lines for what C
    left to it) decodes to exactly the events the Python path writes, and each ancestor is
    defined once in the batch however many children name it. With ``omit_uid`` (the header names
    the table's boot), C's proc lines leave every uuid out and the ingest derives each back."""
    h = Harness(tmp_path, max_procs=1024)
    h.col.fast = h.fast
    h.col.encode = msgspec.json.encode
    c = h.fast.ctx
    c.exec_on, c.v2, c.epoch, c.omit_uid = 1, 1, 7, int(omit_uid)
    h.table.hashes.cache[(259, 77, 1_700_000_000_000_000_005, 4096)] = "ab" * 32
    rng = random.Random(12)
    parents = [1]
    chunks: list[bytes] = []
    expected: list[wire.WireEvent] = []
    fast = 0
    for i in range(300):
        pid = 5000 + i
        rec = _exec(pid, rng.choice(parents[-4:]), [b"/usr/bin/true", b"-c", str(i).encode()])
        h.fast.ctx.seq = h.seq
        assert h.fast.sample(h.fast.ptr, rec, len(rec)) == 0
        lines, n, queued = h.fast.take()
        seq_before, h.seq = h.seq, h.fast.ctx.seq
        if n:
            fast += 1
            h.seq = seq_before
            chunks.append(lines)
            h.col.fast = None  # what Python would write, without registering it in C again
            expected += h.col.exec_(b.decode(rec), h.next_seq)
            h.col.fast = h.fast
            assert h.fast.get(pid) == (msgspec.json.encode(h.table.entries[pid].process), False)
        else:
            [ev] = h.col.exec_(b.decode(queued[0]), h.next_seq)
            chunks.append(msgspec.json.encode(ev))  # Python's line, inline (v1 and v2 mix)
            expected.append(ev)
        parents.append(pid)
    assert fast > 250
    # and connects of processes with a lineage (C's execs), in this batch and in the next: the
    # process defined once a batch without its lineage, which goes by ref
    lo = socket.inet_aton("127.0.0.1")
    for batch in (7, 8):
        c.epoch = batch
        for pid in parents[-20:] * 2:
            rec = _net(b.EV_CONNECT, pid, b.AF_INET, raddr=lo, rport=8080, start_ns=START + pid * 10_000_000)
            seq_before = h.seq
            line, queued = h.c(rec)
            assert line and not queued
            h.seq = seq_before
            [ev] = h.col.net(rec, h.next_seq)
            expected.append(ev)
            chunks.append(line)
    boot = {"boot_id": h.table.boot, "boot_time": h.table.btime} if omit_uid else {}
    payload = _record(wire.Host(instance_id="i-0fa5700000000000f", **boot), chunks)  # type: ignore[arg-type]
    d = wire.decode_record(payload)
    assert d.errors == []
    assert [msgspec.structs.replace(e, host=None) for e in d.events[1:]] == expected
    defs = [ln for ln in payload.split(b"\n") if ln.startswith(b'{"kind":"proc"')]
    assert defs and all((b'"uid":"' in ln) != omit_uid for ln in defs)
    # each exec defines itself and its parent's brief; the further ancestors were defined already;
    # a connecting process is defined once a batch, without its lineage inline
    assert payload.count(b'"kind":"proc"') < 2.2 * 300 + 2 * 20 * 6
    assert payload.count(b'"lineage":[{') == 0
    assert len(payload) * 2 < sum(len(msgspec.json.encode(e)) for e in expected)


def test_v2_c_counts_what_its_refs_name_and_stops_a_pass_past_its_bound(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    p = h.process(1000)
    block = len(msgspec.json.encode(p))
    c = h.fast.ctx
    c.v2, c.epoch = 1, 1
    lo = socket.inet_aton("127.0.0.1")
    rec = _net(b.EV_CONNECT, 1000, b.AF_INET, raddr=lo, rport=80)
    assert h.fast.sample(h.fast.ptr, rec, len(rec)) == 0
    assert c.expanded == block  # the block a ref stands for (at least what the ingest counts)
    assert block >= wire.process_weight(p)
    c.soft_expanded = 3 * block
    rcs = [h.fast.sample(h.fast.ptr, rec, len(rec)) for _ in range(4)]
    assert rcs == [0, 0, fastpath.VF_FULL, fastpath.VF_FULL] and c.expanded == 5 * block
    assert h.fast.take()[1] == 5


# --- repeats (issue 14): C folds equal connects and accepts as Python's batcher does -------------
def test_v2_c_folds_repeated_connects_and_accepts_as_the_python_batcher_does(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    pids = [1000, 1001]
    for pid in pids:
        h.process(pid)
    rng = random.Random(9)
    peers = [socket.inet_aton("198.51.100.7") + bytes(12), socket.inet_aton("203.0.113.9") + bytes(12)]
    recs = []
    for i in range(400):  # two processes, two peers, each connect from a new ephemeral port
        kind, pid = rng.choice((b.EV_CONNECT, b.EV_ACCEPT)), rng.choice(pids)
        hdr = b.HDR.pack(kind, pid, pid, 1, 7_000_000_000 + i * 1000, START, 1000, 0, 1000, 1000, b"curl")
        eph = rng.randrange(32768, 61000)
        lport, rport = (eph, rng.choice((80, 443))) if kind == b.EV_CONNECT else (22, eph)
        ret = rng.choice((0, 0, 0, -111))
        recs.append(
            hdr + b.NET_TAIL.pack(ret, b.AF_INET, 1, lport, rport, 3, bytes(16), rng.choice(peers), b"")
        )
    host = wire.Host(instance_id="i-0fa5700000000000f")
    # GIVEN the records through C into batches of 200, as the agent feeds them (fold on)
    sink = _Sink()
    bat = Batcher(sink, host)
    bat.fold_native(h.fast.folds, fastpath.FOLDS_MAX)
    c = h.fast.ctx
    c.v2 = c.fold = 1
    for part in (recs[:200], recs[200:]):
        c.epoch, c.next_ref, c.seq = bat.epoch, bat.next_ref, h.seq
        first, folded = h.seq + 1, c.folded
        for rec in part:
            assert h.fast.sample(h.fast.ptr, rec, len(rec)) == 0
        h.seq, bat.next_ref = c.seq, c.next_ref
        lines, n, queued = h.fast.take()
        assert queued == [] and n < 40  # 2 x 2 x 2 peers and ports, 2 outcomes: few lines
        bat.add_lines(lines, n, first)
        bat.add_folded(c.folded - folded)
        bat.seal()
    # and the same records through Python's collector and batcher
    py_sink = _Sink()
    py = Batcher(py_sink, host)
    for part in (recs[:200], recs[200:]):
        for rec in part:
            for e in h.col.net(rec, h.next_seq):
                py.add(e)
        py.seal()

    def seen(payload: bytes) -> list[tuple[object, ...]]:
        d = wire.decode_record(payload)
        assert d.errors == []
        return [
            (type(e).__name__, e.local_port, e.remote_ip, e.remote_port, e.success, e.repeats, e.last_time)  # type: ignore[union-attr]
            for e in d.events
        ]

    # THEN both make the same events, each standing for the same repeats, in the same order
    assert [x[1] for x in sink.batches] == [x[1] for x in py_sink.batches] == [200, 200]
    for (payload, *_), (py_payload, *_) in zip(sink.batches, py_sink.batches, strict=True):
        got, want = seen(payload), seen(py_payload)
        assert got == want and sum(1 + x[5] for x in got) == 200  # type: ignore[operator]
        assert any(x[5] for x in got)
