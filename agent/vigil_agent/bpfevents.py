"""eBPF sensor records -> wire events, with process context from the process table.

The counterpart of collector.py for the records of bpfsensor.py: the same wire events, built
from what the kernel put in the record instead of from audit text plus /proc reads. /proc is
read only where the record cannot carry it: a binary's sha256 the first time it is seen, and the
rest of an environment longer than the record holds. A regular file on fds 0/1/2 keeps its name
only (the record has no directory).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

import msgspec

from vigil import wire
from vigil_agent import bpfsensor as b
from vigil_agent.fastpath import NO_START, FastPath
from vigil_agent.proctable import ProcessTable, container_id, env_vars, read_bytes

_FAMILY = {b.AF_INET: "inet", b.AF_INET6: "inet6", b.AF_UNIX: "unix"}
_PROTO = {1: "tcp", 2: "udp"}  # SOCK_STREAM, SOCK_DGRAM
_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
EINPROGRESS = 115
_MISS = wire.Stdio(type="")  # a cache miss (None is a cached answer: no such fd)


def stdio(fd: b.FdInfo | None) -> wire.Stdio | None:
    """What /proc/<pid>/fd/N would have told (sockinfo.describe_fd), from the kernel's view."""
    if fd is None:
        return None
    kind = fd.mode & b.S_IFMT
    if kind == b.S_IFSOCK:
        family = _FAMILY.get(fd.family, "other")
        proto = _PROTO.get(fd.type, "")
        if family == "unix":
            return wire.Stdio(type="socket", family="unix", protocol=proto, path=fd.name)
        if family == "other":
            return wire.Stdio(type="socket", path=f"socket:[{fd.ino}]")
        remote = b._ip(fd.family, fd.raddr) if fd.rport else ""
        return wire.Stdio(
            type="socket",
            family=family,
            protocol=proto,
            path=f"socket:[{fd.ino}]",
            local=wire.Endpoint(ip=b._ip(fd.family, fd.laddr), port=fd.lport),
            remote=wire.Endpoint(ip=remote, port=fd.rport) if remote else None,
        )
    if kind == b.S_IFIFO:
        return wire.Stdio(type="pipe", path=f"pipe:[{fd.ino}]")
    if kind == b.S_IFCHR:
        major, minor = fd.rdev >> 20, fd.rdev & 0xFFFFF
        if 136 <= major < 144:
            return wire.Stdio(type="tty", path=f"/dev/pts/{(major - 136) * 256 + minor}")
        path = f"/dev/{fd.name}"
        return wire.Stdio(type="tty" if major in b.TTY_MAJORS else "file", path=path)
    if kind in (b.S_IFREG, b.S_IFDIR):
        return wire.Stdio(type="file", path=fd.name)  # the file's name: the record has no directory
    return wire.Stdio(type="other", path=fd.name)


class BpfCollector:
    def __init__(
        self,
        table: ProcessTable,
        *,
        unix_sockets: Iterable[str],
        unix_all: bool,
        exclude_comm: Iterable[str],
        exclude_exes: Iterable[str],
        dns_ports: Iterable[int],
        on_dns_connect: Callable[[wire.Process, str, str, int, int], None] | None,
        self_pid: int,
    ) -> None:
        self.table = table
        self.unix_sockets = frozenset(unix_sockets)
        self.unix_all = unix_all
        self.exclude_comm = frozenset(exclude_comm)
        self.exclude_exes = frozenset(exclude_exes)
        self.dns_ports = frozenset(dns_ports)
        self.on_dns_connect = on_dns_connect
        self.self_pid = self_pid
        self.ignored = 0
        # the native fast path (fastpath.FastPath) and how a block is encoded for it: set by the
        # agent when the fast path runs. A process is registered at its first connect, accept or
        # listen (most processes never make one: registering every exec cost more than it saved)
        self.fast: FastPath | None = None
        # fds 0/1/2 as recorded -> what they are: children inherit their parent's (the same
        # pipe, tty or /dev/null), so most execs decode none
        self._stdio: dict[bytes, wire.Stdio | None] = {}
        self.encode: Callable[[wire.Process], bytes] = msgspec.json.encode
        self.sync_clock()

    def sync_clock(self) -> None:
        """Records are stamped with CLOCK_BOOTTIME; events carry wall-clock time."""
        self.wall_offset = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)

    def _context(self, r: b.Exec) -> dict[str, object]:
        h = r.h
        pid = h.pid
        ctx: dict[str, object] = {}
        cid = container_id(r.cgroup)
        if cid:
            ctx["container_id"] = cid
            if r.ns_pid and r.ns_pid != pid:
                ctx["ns_pid"] = r.ns_pid
        if not self.table.enrich:
            return ctx
        env = r.env
        if r.flags & b.F_ENV_TRUNC:  # the rest of a long environment, if the process is still there
            env = read_bytes(f"/proc/{pid}/environ") or env
        pre, lib = env_vars(env)
        if pre:
            ctx["ld_preload"] = pre
        if lib:
            ctx["ld_library_path"] = lib
        raw, cache, size = r.fds_raw, self._stdio, b.FDINFO.size
        for i, name in enumerate(("stdin", "stdout", "stderr")):
            key = raw[i * size : (i + 1) * size]  # mode, device, inode, endpoints, name: exact
            s = cache.get(key, _MISS)
            if s is _MISS:
                if len(cache) >= 1024:
                    cache.clear()
                s = cache[key] = stdio(b._fd(key, 0))
                if self.fast is not None:  # C writes the next execs with this fd itself
                    self.fast.set_stdio(key, msgspec.json.encode(s) if s is not None else b"")
            if s is not None:
                ctx[name] = s
        key = r.exe_key
        paths = (f"/proc/{pid}/exe",) if r.exe_unlinked or not r.exe else (f"/proc/{pid}/exe", r.exe)
        sha = self.table.hashes.digest_known(key, key[3], paths)
        if sha:
            ctx["exe_sha256"] = sha
            if self.fast is not None:
                self.fast.set_hash(key, sha)
        if r.exe_mtime_ns:
            ctx["exe_mtime"] = r.exe_mtime_ns
        return ctx

    def register(self, pid: int, start_ns: int, p: wire.Process) -> None:
        """Hand a live process of the table to the fast path: its block for its connects'
        lines, its brief and lineage for its children's execs."""
        assert self.fast is not None
        entry = self.table.entries.get(pid)
        if entry is None or entry.process is not p or entry.dead_at:
            return
        enc = self.encode
        self.fast.set(
            pid, start_ns, enc(p), uuid=p.uid, brief=enc(entry.brief), lineage=[enc(x) for x in p.lineage]
        )

    def _excluded(self, comm: str) -> bool:
        if self.exclude_comm and comm in self.exclude_comm:
            self.ignored += 1
            return True
        return False

    def exec_(self, r: b.Exec, seq: Callable[[], int]) -> list[wire.WireEvent]:
        h = r.h
        if h.pid == self.self_pid or self._excluded(h.comm):
            return []
        if self.exclude_exes and r.exe in self.exclude_exes:
            self.ignored += 1
            return []
        t = h.time_ns + self.wall_offset
        p = self.table.on_exec(
            pid=h.pid,
            ppid=h.ppid,
            exe=r.exe,
            name=h.comm,
            argv=r.argv,
            cwd=r.cwd,
            uid=h.uid,
            euid=h.euid,
            gid=h.gid,
            egid=h.egid,
            tty=r.tty,
            time_ns=t,
            start_ticks=h.start_ns // _TICK_NS,
            ctx=self._context(r),
        )
        if self.fast is not None:  # so that C can write the execs of its children
            self.fast.set_user(h.uid, p.user.name)
            self.register(h.pid, h.start_ns, p)
            if h.ppid > 0 and h.ppid not in self.fast.registered:
                parent = self.table.entries.get(h.ppid)
                if parent is not None and not parent.dead_at:
                    self.register(h.ppid, NO_START, parent.process)
        out: list[wire.WireEvent] = [wire.ProcessExec(time=t, seq=seq(), process=p)]
        if r.exe.startswith("/memfd:"):
            memfd = r.exe[len("/memfd:") :].removesuffix(" (deleted)")
            out.append(wire.MemfdExec(time=t, seq=seq(), process=p, memfd_name=memfd))
        return out

    def lib(self, r: b.Lib, seq: Callable[[], int]) -> list[wire.WireEvent]:
        """A library mapped executable for the first time in its cgroup: module_load "mmap"."""
        h = r.h
        if h.pid == self.self_pid or self._excluded(h.comm):
            return []
        proc = self._process(h.pid, h.ppid, h.comm, h.uid, h.euid)
        sha = ""
        if self.table.enrich and r.path and not r.unlinked:
            sha = self.table.hashes.digest_known(r.key, r.key[3], (r.path,))
        return [
            wire.ModuleLoad(
                time=h.time_ns + self.wall_offset,
                seq=seq(),
                process=proc,
                name=r.path.rsplit("/", 1)[-1].removesuffix(" (deleted)"),
                path=r.path,
                sha256=sha,
                syscall="mmap",
                modified_time=r.mtime_ns,
            )
        ]

    def _process(self, pid: int, ppid: int, comm: str | bytes, uid: int, euid: int) -> wire.Process:
        """``comm`` may be the record's raw bytes: decoded only for a process the table lacks."""
        entry = self.table.entries.get(pid)  # the common case: a process the table knows
        if entry is not None:
            return entry.process
        name = b._cstr(comm) if isinstance(comm, bytes) else comm
        return self.table.process(pid, ppid=ppid, name=name, uid=uid, euid=euid)

    def exit_(self, data: bytes) -> tuple[int, int, int]:
        """(pid, exit code, wall time) of an exit record."""
        f = b.EXIT_REC.unpack(data)
        return f[1], f[11], f[4] + self.wall_offset

    def _proc_mem(self, proc: wire.Process, path: str, t: int, seq: Callable[[], int]) -> wire.WireEvent:
        """/proc/<pid>/mem (or /proc/<pid>/task/<tid>/mem, /proc/self/mem) opened for writing."""
        parts = path.split("/")
        who = parts[2] if len(parts) > 3 else ""
        target = None
        if who in ("self", "thread-self"):
            target = proc
        elif who.isdigit() and int(who) > 0:
            target = self.table.process(int(who))
        return wire.ProcMemWrite(time=t, seq=seq(), process=proc, path=path, target=target)

    def dns_noted(self, data: bytes) -> None:
        """A connect to a DNS port whose line the native fast path wrote (EV_DNS_NOTED): what is
        left is Python's, attributing the process's queries."""
        (_kind, pid, _tid, ppid, t, _start, uid, euid, _gid, _egid, comm_raw,
         _ret, fam, typ, lport, _rport, _fd, _laddr, raddr, _path) = b.NET_REC.unpack(data)  # fmt: skip
        if self.on_dns_connect is not None:
            proc = self._process(pid, ppid, comm_raw, uid, euid)
            self.on_dns_connect(proc, b.ip(fam, raddr), _PROTO.get(typ, "tcp"), lport, t + self.wall_offset)

    def net(self, data: bytes, seq: Callable[[], int]) -> list[wire.WireEvent]:
        """A record in the net layout: connect, accept, listen (the hot path, ~1,000 a second,
        skips ``decode``), or a /proc/<pid>/mem write-open."""
        (kind, pid, _tid, ppid, t, start, uid, euid, _gid, _egid, comm_raw,
         ret, fam, typ, lport, rport, _fd, laddr, raddr, path) = b.NET_REC.unpack(data)  # fmt: skip
        if pid == self.self_pid:
            return []
        comm = ""
        if self.exclude_comm:
            comm = b._cstr(comm_raw)
            if self._excluded(comm):
                return []
        proc = self._process(pid, ppid, comm or comm_raw, uid, euid)
        excluded = bool(self.exclude_exes) and proc.file.path in self.exclude_exes
        if self.fast is not None and self.fast.takes(kind, fam):
            # so it came here for want of the process: a process of the table is registered,
            # and its next records stay in C
            if excluded:
                self.fast.set(pid, start, None)
            else:
                self.register(pid, start, proc)
        if excluded:
            self.ignored += 1
            return []
        t += self.wall_offset
        if kind == b.EV_PROC_MEM:
            return [self._proc_mem(proc, b._cstr(path), t, seq)]
        connect = kind == b.EV_CONNECT
        ok = ret >= 0 or ret == -EINPROGRESS
        if fam == b.AF_UNIX:
            upath = b.unix_path(path)
            if not connect or not upath:
                return []
            if not self.unix_all and upath not in self.unix_sockets:
                self.ignored += 1
                return []
            return [wire.UnixConnect(time=t, seq=seq(), process=proc, path=upath, success=ok)]
        if fam != b.AF_INET and fam != b.AF_INET6:
            return []
        proto = _PROTO.get(typ, "tcp")
        remote_ip = b.ip(fam, raddr) if kind != b.EV_LISTEN else ""  # a listener has no peer
        local_ip = b.ip(fam, laddr)
        if connect and rport in self.dns_ports and self.on_dns_connect is not None:
            self.on_dns_connect(proc, remote_ip, proto, lport, t)
        cls = wire.NetConnect if connect else wire.NetAccept if kind == b.EV_ACCEPT else wire.NetListen
        return [
            cls(
                time=t,
                seq=seq(),
                process=proc,
                protocol=proto,
                family=_FAMILY[fam],
                local_ip=local_ip,
                local_port=lport,
                remote_ip=remote_ip,
                remote_port=rport,
                success=ok,
            )
        ]
