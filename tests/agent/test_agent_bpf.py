"""The eBPF sensor's records: layouts pinned against the C source, decoding, and the wire events
built from them (pure: records are packed here exactly as the kernel program writes them)."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vigil import wire
from vigil_agent import bpfsensor as b
from vigil_agent import fastpath
from vigil_agent.bpfevents import BpfCollector, stdio
from vigil_agent.fastpath import FastPath
from vigil_agent.proctable import ProcessTable, stable_uuid

C_SOURCE = Path(__file__).resolve().parents[2] / "agent/bpf/vigil.bpf.c"
CID = "0123456789abcdef" * 4


def test_record_layouts_match_the_c_structs() -> None:
    """The C file pins every struct's size (and the exec record's fixed part) with static asserts;
    the Python layouts must agree, or every record would be misread."""
    src = C_SOURCE.read_text()
    sizes = dict(re.findall(r"_Static_assert\(sizeof\(struct (\w+)\) == (\d+)", src))
    assert {k: int(v) for k, v in sizes.items()} == {
        "hdr": b.HDR.size,
        "fdinfo": b.FDINFO.size,
        "exec_ev": b.EXEC_SIZE,
        "exit_ev": b.EXIT_SIZE,
        "net_ev": b.NET_SIZE,
        "config": b.CONFIG.size,
        "lib_ev": b.LIB_SIZE,
    }
    [data_off] = re.findall(r"_Static_assert\(__builtin_offsetof\(struct exec_ev, data\) == (\d+)", src)
    assert int(data_off) == b.EXEC_MIN
    for name, value in (("ARGS_MAX", b.ARGS_MAX), ("ENV_MAX", b.ENV_MAX), ("PATH_BUF", b.PATH_BUF)):
        assert re.search(rf"#define {name} {value}\b", src), name


def _hdr(kind: int, pid: int = 4242, *, comm: bytes = b"bash", start_ns: int = 5_000_000_000) -> bytes:
    return b.HDR.pack(kind, pid, pid, 1, 7_000_000_000, start_ns, 1000, 0, 1000, 1000, comm)


def _fd(
    mode: int = 0,
    *,
    rdev: int = 0,
    ino: int = 0,
    family: int = 0,
    type_: int = 0,
    lport: int = 0,
    rport: int = 0,
    laddr: bytes = b"",
    raddr: bytes = b"",
    name: bytes = b"",
) -> bytes:
    return b.FDINFO.pack(mode, rdev, ino, family, type_, lport, rport, laddr, raddr, name)


def _exec_record(
    args: bytes,
    env: bytes,
    *,
    exe: bytes = b"bash\0bin\0",
    cwd: bytes = b"www\0var\0",
    flags: int = 0,
    fds: tuple[bytes, bytes, bytes] | None = None,
    cgroup: bytes = b"",
) -> bytes:
    sock = _fd(
        b.S_IFSOCK | 0o777,
        ino=99,
        family=b.AF_INET,
        type_=1,
        lport=8080,
        rport=4444,
        laddr=socket.inet_aton("10.0.0.5"),
        raddr=socket.inet_aton("198.51.100.7"),
    )
    fds = fds or (sock, sock, _fd(b.S_IFIFO | 0o600, ino=7))
    fixed = b.EXEC_FIXED.pack(
        11, 1234, 1_700_000_000, 5, 259, 17, flags, len(args), len(env), len(exe), len(cwd)
    )
    rec = (
        _hdr(b.EV_EXEC)
        + fixed
        + b"".join(fds)
        + b"pts3".ljust(b.TTY_LEN, b"\0")
        + cgroup.ljust(b.CGROUP_LEN, b"\0")
        + exe.ljust(b.PATH_BUF, b"\0")
        + cwd.ljust(b.PATH_BUF, b"\0")
        + args
        + env
    )
    assert len(rec) == b.EXEC_MIN + len(args) + len(env)
    return rec


def test_exec_record_decodes_paths_argv_and_fds() -> None:
    r = b.decode(_exec_record(b"bash\0-i\0", b"HOME=/root\0LD_PRELOAD=/tmp/x.so\0"))
    assert isinstance(r, b.Exec)
    assert (r.h.pid, r.h.ppid, r.h.comm, r.h.uid, r.h.euid) == (4242, 1, "bash", 1000, 0)
    assert r.exe == "/bin/bash" and r.cwd == "/var/www"  # components come leaf first
    assert r.argv == ["bash", "-i"]
    assert r.exe_key == (259, 11, 1_700_000_000_000_000_005, 1234)
    assert r.tty == "pts3" and r.ns_pid == 17
    assert r.fds[0] is not None and r.fds[0].rport == 4444


def test_exec_of_an_unlinked_file_is_marked_deleted_as_dpath_does() -> None:
    r = b.decode(_exec_record(b"x\0", b"", exe=b"memfd:payload\0", flags=b.F_EXE_UNLINKED))
    assert isinstance(r, b.Exec) and r.exe == "/memfd:payload (deleted)" and r.exe_unlinked


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (b"\x01\x00", "shorter than its header"),
        (_hdr(9) + b"\0" * 8, "kind 9"),
        (_hdr(b.EV_EXIT), "expected 72"),
        (_exec_record(b"a\0", b"")[:-1], "does not hold argv"),
        (_hdr(b.EV_EXEC) + b"\0" * 10, "less than its fixed part"),
    ],
)
def test_malformed_records_are_refused_with_the_reason(record: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        b.decode(record)


def _net(
    kind: int,
    family: int,
    *,
    ret: int = 0,
    type_: int = 1,
    laddr: bytes = b"",
    raddr: bytes = b"",
    lport: int = 0,
    rport: int = 0,
    path: bytes = b"",
) -> bytes:
    return _hdr(kind, 777, comm=b"curl") + b.NET_TAIL.pack(
        ret, family, type_, lport, rport, 3, laddr, raddr, path
    )


def test_net_records_unmap_v4_in_v6_and_name_abstract_unix_sockets() -> None:
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:203.0.113.9")
    r = b.decode(
        _net(
            b.EV_CONNECT,
            b.AF_INET6,
            raddr=mapped,
            laddr=socket.inet_pton(socket.AF_INET6, "::1"),
            lport=5555,
            rport=443,
        )
    )
    assert isinstance(r, b.Net) and (r.remote_ip, r.remote_port, r.local_ip) == ("203.0.113.9", 443, "::1")
    u = b.decode(_net(b.EV_CONNECT, b.AF_UNIX, path=b"\0dbus-abc"))
    assert isinstance(u, b.Net) and u.path == "@dbus-abc"


def test_stdio_from_the_kernels_view_of_fds() -> None:
    pts = stdio(b.FdInfo(b.S_IFCHR | 0o620, (136 << 20) | 3, 5, 0, 0, 0, 0, b"", b"", "3"))
    assert pts == wire.Stdio(type="tty", path="/dev/pts/3")
    null = stdio(b.FdInfo(b.S_IFCHR | 0o666, (1 << 20) | 3, 5, 0, 0, 0, 0, b"", b"", "null"))
    assert null == wire.Stdio(type="file", path="/dev/null")
    pipe = stdio(b.FdInfo(b.S_IFIFO | 0o600, 0, 812, 0, 0, 0, 0, b"", b"", ""))
    assert pipe == wire.Stdio(type="pipe", path="pipe:[812]")
    unix = stdio(b.FdInfo(b.S_IFSOCK, 0, 9, b.AF_UNIX, 1, 0, 0, b"", b"", "/run/systemd/journal/stdout"))
    assert unix == wire.Stdio(
        type="socket", family="unix", protocol="tcp", path="/run/systemd/journal/stdout"
    )
    assert stdio(None) is None


def _collector(table: ProcessTable, **kw: object) -> BpfCollector:
    args: dict[str, object] = {
        "unix_sockets": ["/var/run/docker.sock"],
        "unix_all": False,
        "exclude_comm": [],
        "exclude_exes": [],
        "dns_ports": [53],
        "on_dns_connect": None,
        "self_pid": 1,
    }
    args.update(kw)
    return BpfCollector(table, **args)  # type: ignore[arg-type]


def test_exec_record_becomes_a_process_exec_with_full_context(tmp_path: Path) -> None:
    """A reverse-shell-shaped exec: every field detections use comes from the record."""
    table = ProcessTable(proc=str(tmp_path))  # an empty /proc: nothing may come from there
    col = _collector(table)
    rec = b.decode(
        _exec_record(b"bash\0-i\0", b"LD_PRELOAD=/tmp/x.so\0", cgroup=f"docker-{CID}.scope".encode())
    )
    seqs = iter(range(1, 100))
    [ev] = col.exec_(rec, lambda: next(seqs))  # type: ignore[arg-type]
    assert isinstance(ev, wire.ProcessExec)
    p = ev.process
    assert (p.pid, p.ppid, p.name, p.file.path, p.args, p.working_directory) == (
        4242,
        1,
        "bash",
        "/bin/bash",
        ["bash", "-i"],
        "/var/www",
    )
    assert (
        p.stdin is not None
        and p.stdin.type == "socket"
        and p.stdin.remote == wire.Endpoint("198.51.100.7", 4444)
    )
    assert p.stdin.local == wire.Endpoint("10.0.0.5", 8080) and p.stdin.protocol == "tcp"
    assert p.stderr == wire.Stdio(type="pipe", path="pipe:[7]")
    assert p.ld_preload == "/tmp/x.so" and p.container_uid == CID and p.namespace_pid == 17
    assert p.tty == "pts3" and (p.user.uid, p.euid) == (1000, 0)
    ticks = 5_000_000_000 // (1_000_000_000 // 100)  # CLK_TCK is 100 on Linux
    assert p.uid == stable_uuid(table.boot, 4242, str(ticks))  # the same uuid /proc would give
    assert ev.time == 7_000_000_000 + col.wall_offset
    assert table.entries[4242].process is p  # later events of pid 4242 reuse it


def test_connects_become_events_and_unlisted_unix_sockets_are_ignored(tmp_path: Path) -> None:
    table = ProcessTable(proc=str(tmp_path))
    seen: list[tuple[str, str, int]] = []
    col = _collector(table, on_dns_connect=lambda p, ip, proto, port, t: seen.append((ip, proto, port)))
    seqs = iter(range(1, 100))
    seq = lambda: next(seqs)  # noqa: E731
    dns = _net(
        b.EV_CONNECT,
        b.AF_INET,
        type_=2,
        laddr=socket.inet_aton("127.0.0.1"),
        raddr=socket.inet_aton("127.0.0.53"),
        lport=40000,
        rport=53,
    )
    [ev] = col.net(dns, seq)  # type: ignore[arg-type]
    assert isinstance(ev, wire.NetConnect) and ev.protocol == "udp" and ev.remote_port == 53 and ev.success
    assert seen == [("127.0.0.53", "udp", 40000)]  # DNS packets are attributed by this
    refused = _net(b.EV_CONNECT, b.AF_INET, ret=-111, raddr=socket.inet_aton("127.0.0.1"), rport=9)
    [ev] = col.net(refused, seq)  # type: ignore[arg-type]
    assert not ev.success  # type: ignore[union-attr]
    docker = _net(b.EV_CONNECT, b.AF_UNIX, path=b"/var/run/docker.sock")
    [ev] = col.net(docker, seq)  # type: ignore[arg-type]
    assert isinstance(ev, wire.UnixConnect) and ev.path == "/var/run/docker.sock"
    assert col.net((_net(b.EV_CONNECT, b.AF_UNIX, path=b"/run/nscd/socket")), seq) == []  # type: ignore[arg-type]
    accept = _net(
        b.EV_ACCEPT,
        b.AF_INET,
        ret=5,
        laddr=socket.inet_aton("0.0.0.0"),
        lport=22,
        raddr=socket.inet_aton("198.51.100.1"),
        rport=50000,
    )
    [ev] = col.net(accept, seq)  # type: ignore[arg-type]
    assert isinstance(ev, wire.NetAccept) and (ev.local_port, ev.remote_ip) == (22, "198.51.100.1")


def test_excluded_process_names_and_exes_are_dropped(tmp_path: Path) -> None:
    col = _collector(ProcessTable(proc=str(tmp_path)), exclude_comm=["bash"])
    assert col.exec_(b.decode(_exec_record(b"bash\0", b"")), lambda: 1) == []  # type: ignore[arg-type]
    col = _collector(ProcessTable(proc=str(tmp_path)), exclude_exes=["/bin/bash"])
    assert col.exec_(b.decode(_exec_record(b"bash\0", b"")), lambda: 1) == []  # type: ignore[arg-type]
    assert col.ignored == 1
    col = _collector(ProcessTable(proc=str(tmp_path)), exclude_comm=["curl"])
    assert (
        col.net(_net(b.EV_CONNECT, b.AF_INET, raddr=socket.inet_aton("1.2.3.4"), rport=80), lambda: 1) == []
    )


class _Ring:
    """The sensor's two ways of reading: ``drain`` (records for Python) and ``consume`` (a pass
    of the native callback over them, as libbpf makes it)."""

    def __init__(self, records: list[bytes], fast: FastPath | None = None) -> None:
        self.records = records
        self.fast = fast

    def drain(self) -> list[bytes]:
        out, self.records = self.records, []
        return out

    def consume(self) -> int:
        assert self.fast is not None
        out, self.records = self.records, []
        for rec in out:
            self.fast.sample(self.fast.ptr, rec, len(rec))
        return len(out)


class _Events:
    v2 = False  # C writes v1 lines here: each one decodes alone (wire v2: tests/agent/test_agent_fastpath.py)
    native_folds = None  # nor does it fold repeats (a v1 batch has no repeats line)

    def __init__(self) -> None:
        self.events: list[wire.WireEvent] = []

    def add(self, e: wire.WireEvent) -> None:
        self.events.append(e)

    def encoded(self, p: wire.Process) -> bytes:
        return msgspec.json.encode(p)


def _bare_agent(tmp_path: Path, native: bool) -> Any:
    from vigil_agent import agent as agent_mod

    a = agent_mod.Agent.__new__(agent_mod.Agent)
    a.bpf_collector = _collector(ProcessTable(proc=str(tmp_path)))
    a.table = a.bpf_collector.table
    a.limiter = agent_mod.Limiter(50.0, 512)
    a.batcher = _Events()
    a.stats = agent_mod.Stats()
    a.seq = 0
    a.bpf_errors = 0
    a.bpf_burst = False
    a.cfg = agent_mod.Config()
    a.fast = None
    if native:
        if not Path(fastpath.LIBRARY).exists():
            pytest.skip("libvigilfast.so not built (make agent-native)")
        a.fast = FastPath(self_pid=1, dns_ports=[53], exclude_comm=[])
        a.bpf_collector.fast = a.fast
        a.bpf_collector.encode = a.batcher.encoded
    return a


@pytest.mark.parametrize("native", [False, True], ids=["python", "native"])
def test_a_bad_record_in_a_drain_never_loses_its_neighbours(tmp_path: Path, native: bool) -> None:
    """The agent's loop over one drain: the malformed record is counted and skipped, the records
    before and after it still become events."""
    a = _bare_agent(tmp_path, native)
    good = _exec_record(b"bash\0-i\0", b"")
    a._on_bpf(_Ring([good, _hdr(b.EV_EXIT), good], a.fast))
    assert [type(e) for e in a.batcher.events] == [wire.ProcessExec, wire.ProcessExec]
    assert a.bpf_errors == 1 and a.stats.captured == 2


def test_native_pass_registers_at_the_first_connect_and_forgets_at_exit(tmp_path: Path) -> None:
    """Through the agent's loop: a process's first connect comes out via Python and registers it
    with C (its next connects become lines there); an exec or exit forgets it, even where Python
    registered it after C saw the exit in the same pass (no block outlives its process)."""
    a = _bare_agent(tmp_path, native=True)
    conn = _net(b.EV_CONNECT, b.AF_INET, raddr=socket.inet_aton("127.0.0.1"), rport=80)
    conn = conn[:4] + (4242).to_bytes(4, "little") + conn[8:]  # the exec'd process (_exec_record's pid)
    a._on_bpf(_Ring([_exec_record(b"curl\0", b""), conn], a.fast))
    assert [type(e) for e in a.batcher.events] == [wire.ProcessExec, wire.NetConnect]  # both via Python
    assert a.fast.ctx.n_procs == 1
    lines: list[bytes] = []
    a.batcher.add_lines = lambda chunk, n, first: lines.append(bytes(chunk))  # a view: copied
    a._on_bpf(_Ring([conn, conn], a.fast))
    assert len(lines) == 1 and lines[0].count(b'"kind":"net_connect"') == 2 and a.stats.captured == 4
    a._on_bpf(_Ring([_exec_record(b"curl\0", b""), _hdr(b.EV_EXIT) + b.EXIT_TAIL.pack(0, 0)], a.fast))
    assert a.fast.ctx.n_procs == 0
    a._on_bpf(_Ring([_exec_record(b"curl\0", b""), conn, _hdr(b.EV_EXIT) + b.EXIT_TAIL.pack(0, 0)], a.fast))
    assert a.fast.ctx.n_procs == 0 and not a.fast.registered  # registered by the connect, then the exit


def test_listen_and_proc_mem_records(tmp_path: Path) -> None:
    table = ProcessTable(proc=str(tmp_path))
    col = _collector(table)
    seqs = iter(range(1, 100))
    seq = lambda: next(seqs)  # noqa: E731
    listen = _net(b.EV_LISTEN, b.AF_INET6, laddr=socket.inet_pton(socket.AF_INET6, "::"), lport=8443)
    [ev] = col.net(listen, seq)
    assert isinstance(ev, wire.NetListen) and (ev.local_ip, ev.local_port, ev.protocol) == ("::", 8443, "tcp")
    [ev] = col.net(_net(b.EV_PROC_MEM, 0, ret=4, path=b"/proc/4242/mem"), seq)
    assert isinstance(ev, wire.ProcMemWrite) and ev.path == "/proc/4242/mem"
    assert ev.target is not None and ev.target.pid == 4242  # unknown to /proc here: a minimal process
    [ev] = col.net(_net(b.EV_PROC_MEM, 0, ret=4, path=b"/proc/self/mem"), seq)
    assert isinstance(ev, wire.ProcMemWrite) and ev.target is ev.process
    assert isinstance(b.decode(_net(b.EV_PROC_MEM, 0, ret=4, path=b"/proc/9/mem")), b.Net)


def test_library_record_becomes_a_module_load_for_new_library_loaded(tmp_path: Path) -> None:
    lib = tmp_path / "libhook.so"
    lib.write_bytes(b"\x7fELF not really")
    comps = b"".join(c.encode() + b"\0" for c in reversed(str(lib).strip("/").split("/")))
    fixed = b.LIB_FIXED.pack(77, lib.stat().st_size, 1_700_000_000, 9, 259, len(comps), 0)
    r = b.decode(_hdr(b.EV_LIB) + fixed + comps.ljust(b.PATH_BUF, b"\0"))
    assert isinstance(r, b.Lib) and r.path == str(lib) and r.mtime_ns == 1_700_000_000_000_000_009
    col = _collector(ProcessTable(proc=str(tmp_path)))
    [ev] = col.lib(r, lambda: 1)
    assert isinstance(ev, wire.ModuleLoad)
    assert (ev.syscall, ev.path, ev.name, ev.modified_time) == ("mmap", str(lib), "libhook.so", r.mtime_ns)
    assert ev.sha256 == hashlib.sha256(lib.read_bytes()).hexdigest()
