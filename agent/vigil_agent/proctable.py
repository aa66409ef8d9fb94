"""The process table: stable uuids, lineage, exe sha256 (cached by inode+mtime), container id,
LD_PRELOAD, and what fds 0/1/2 point at.

Entries are made on exec (from the audit record plus /proc) or lazily from /proc for processes
the agent did not see start; they are evicted a few seconds after the process exits (the proc
connector says when), so late audit records of a short-lived process still find their entry.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from vigil import wire
from vigil_agent.auditparse import MAX_ARGS, MAX_ARGV_CHARS, bounded_argv
from vigil_agent.sockinfo import describe_fd

LINEAGE_DEPTH = 5
_CONTAINER_RE = re.compile(r"([0-9a-f]{64})")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
EARLY_MAX = 4096  # pids with fds read at an exec notification, waiting for the exec's audit record
EARLY_SLACK_NS = 5_000_000  # audit stamps in milliseconds: a read may look up to that much early
EARLY_TTL_NS = 10_000_000_000  # a read this long after the record's exec is another exec's


def read_bytes(path: str) -> bytes | None:
    """A whole (small, /proc) file; os.open/os.read cost half of open() and its buffered reader."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 65536)
        if len(data) == 65536:
            chunks = [data]
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def read_text(path: str) -> str | None:
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")


def boot_id() -> str:
    return (read_text("/proc/sys/kernel/random/boot_id") or "").strip()


def boot_time_ns() -> int:
    for line in (read_text("/proc/stat") or "").splitlines():
        if line.startswith("btime "):
            return int(line.split()[1]) * 1_000_000_000
    return 0


stable_uuid = wire.process_uuid  # one definition: the ingest derives the uuids it is not sent


def container_id(cgroup: str | None) -> str:
    if not cgroup:
        return ""
    m = _CONTAINER_RE.search(cgroup)
    return m.group(1) if m else ""


def parse_stat(text: str) -> tuple[str, int, int]:
    """/proc/<pid>/stat -> (comm, ppid, start ticks); comm may contain spaces and parens."""
    lp, rp = text.find("("), text.rfind(")")
    comm = text[lp + 1 : rp]
    rest = text[rp + 2 :].split()
    return comm, int(rest[1]), int(rest[19])


def env_vars(environ: bytes | None) -> tuple[str, str]:
    if not environ or b"LD_" not in environ:
        return "", ""
    pre = lib = ""
    for kv in environ.split(b"\0"):
        if kv.startswith(b"LD_PRELOAD="):
            pre = kv[11:].decode("utf-8", "replace")
        elif kv.startswith(b"LD_LIBRARY_PATH="):
            lib = kv[16:].decode("utf-8", "replace")
    return pre, lib


def make_process(
    *,
    pid: int,
    uuid: str,
    ppid: int = 0,
    parent_uuid: str = "",
    name: str = "",
    exe: str = "",
    argv: list[str] | None = None,
    cwd: str = "",
    uid: int = -1,
    euid: int = -1,
    gid: int = -1,
    egid: int = -1,
    user: str = "",
    start_time: int = 0,
    tty: str = "",
    exe_deleted: bool = False,
    lineage: list[wire.Process] | None = None,
    container_id: str = "",
    ns_pid: int = 0,
    ld_preload: str = "",
    ld_library_path: str = "",
    stdin: wire.Stdio | None = None,
    stdout: wire.Stdio | None = None,
    stderr: wire.Stdio | None = None,
    exe_sha256: str = "",
    exe_mtime: int = 0,
) -> wire.Process:
    """The wire process block (OCSF Process) from the agent's flat view of a process."""
    args = argv or []
    return wire.Process(
        pid=pid,
        uid=uuid,
        name=name,
        cmd_line=" ".join(args),
        args=args,
        file=wire.File(path=exe, name=exe.rsplit("/", 1)[-1], sha256=exe_sha256, modified_time=exe_mtime),
        user=wire.User(uid=uid, name=user),
        euid=euid,
        gid=gid,
        egid=egid,
        working_directory=cwd,
        created_time=start_time,
        namespace_pid=ns_pid,
        container_uid=container_id,
        ld_preload=ld_preload,
        ld_library_path=ld_library_path,
        tty=tty,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        exe_deleted=exe_deleted,
        ppid=ppid,
        parent_uid=parent_uuid,
        lineage=lineage or [],
    )


@dataclass(slots=True)
class Entry:
    process: wire.Process  # full: argv, fds, lineage
    dead_at: int = 0
    _brief: wire.Process | None = None

    @property
    def brief(self) -> wire.Process:
        """What goes in a descendant's lineage: made when the first child needs it (most
        processes have none)."""
        b = self._brief
        if b is None:
            p = self.process
            b = self._brief = wire.Process(
                pid=p.pid,
                uid=p.uid,
                ppid=p.ppid,
                parent_uid=p.parent_uid,
                name=p.name,
                file=p.file,
                user=p.user,
                euid=p.euid,
                created_time=p.created_time,
                container_uid=p.container_uid,
                exe_deleted=p.exe_deleted,
                cmd_line=p.cmd_line[:256],
            )
        return b


class HashCache:
    """sha256 of executables, keyed by (dev, inode, mtime, size): each binary is read once."""

    def __init__(self, max_entries: int = 4096, max_bytes: int = 64 << 20) -> None:
        self.cache: OrderedDict[tuple[int, int, int, int], str] = OrderedDict()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.hashed = 0

    def digest(self, path: str) -> tuple[str, int]:
        """(sha256 hex or "", mtime ns) of the file at ``path`` (e.g. /proc/<pid>/exe)."""
        try:
            st = os.stat(path)
        except OSError:
            return "", 0
        key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        h = self.cache.get(key)
        if h is not None:
            return h, st.st_mtime_ns
        if st.st_size > self.max_bytes:
            return "", st.st_mtime_ns
        try:
            with open(path, "rb") as f:
                h = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError:
            return "", st.st_mtime_ns
        self._put(key, h)
        return h, st.st_mtime_ns

    def _put(self, key: tuple[int, int, int, int], h: str) -> None:
        self.hashed += 1
        self.cache[key] = h
        if len(self.cache) > self.max_entries:
            self.cache.popitem(last=False)

    def digest_known(self, key: tuple[int, int, int, int], size: int, paths: tuple[str, ...]) -> str:
        """sha256 of a file the kernel described (``key`` = its dev, inode, mtime, size): no stat;
        on a miss the first of ``paths`` that opens is hashed ("" if none does, or too big)."""
        h = self.cache.get(key)
        if h is not None:
            return h
        if size > self.max_bytes:
            return ""
        for path in paths:
            try:
                with open(path, "rb") as f:
                    h = hashlib.file_digest(f, "sha256").hexdigest()
            except OSError:
                continue
            self._put(key, h)
            return h
        return ""


class ProcessTable:
    def __init__(
        self,
        *,
        proc: str = "/proc",
        max_entries: int = 32768,
        enrich: bool = True,
        hash_max_bytes: int = 64 << 20,
        grace_ns: int = 5_000_000_000,
    ) -> None:
        self.proc = proc
        self.boot = boot_id()
        self.btime = boot_time_ns()
        self.entries: dict[int, Entry] = {}
        self.max_entries = max_entries
        self.hashes = HashCache(max_bytes=hash_max_bytes)
        self.enrich = enrich  # the limiter turns this off under pressure (fds, env, hash)
        self.grace_ns = grace_ns
        self._dead: deque[tuple[int, int]] = deque()  # (evict at, pid)
        # exits the proc connector reported before the audit records of the exec came in
        # (kauditd delivers late; /bin/true is gone in a millisecond): pid -> when
        self._exited: dict[int, int] = {}
        self._users: dict[int, str] = {}
        # fds 0-2 read when the proc connector announced an exec (before its audit records): pid
        # -> (when read, fds) per exec, oldest first, taken by on_exec in order (``note_exec``)
        self._early: dict[int, deque[tuple[int, dict[str, wire.Stdio]]]] = {}
        self._early_lock = threading.Lock()
        self.self_pid = os.getpid()
        # processes someone else built (the native fast path writes most execs): asked before
        # /proc, so a process that is gone already keeps what its exec record said
        # (the process, whether it has exited already)
        self.fallback: Callable[[int], tuple[wire.Process, bool] | None] | None = None

    # --- helpers ---------------------------------------------------------------------------
    def user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except (KeyError, OverflowError):
                name = ""
            self._users[uid] = name
        return name

    def _start(self, pid: int) -> tuple[str, int, int] | None:
        text = read_text(f"{self.proc}/{pid}/stat")
        if text is None:
            return None
        try:
            return parse_stat(text)
        except (ValueError, IndexError):
            return None

    def _lineage(self, ppid: int) -> tuple[str, list[wire.Process]]:
        if ppid <= 0:
            return "", []
        parent = self.get(ppid, depth=1)
        if parent is None:
            return "", []
        return parent.brief.uid, [parent.brief, *parent.process.lineage[: LINEAGE_DEPTH - 1]]

    def _store(self, pid: int, process: wire.Process) -> Entry:
        e = Entry(process)
        self.entries[pid] = e
        if len(self.entries) > self.max_entries:  # no proc connector: bound the table
            for old in list(self.entries)[: len(self.entries) // 8]:
                del self.entries[old]
        return e

    def _context(self, pid: int, exe_hint: str) -> dict[str, object]:
        """The /proc-derived part of a process (all best effort: the process may be gone)."""
        ctx: dict[str, object] = {}
        base = f"{self.proc}/{pid}"
        cid = container_id(read_text(f"{base}/cgroup"))
        if cid:
            ctx["container_id"] = cid
            status = read_text(f"{base}/status") or ""
            for line in status.splitlines():
                if line.startswith("NSpid:"):
                    ctx["ns_pid"] = int(line.split()[-1])
                    break
        if not self.enrich:
            return ctx
        pre, lib = env_vars(read_bytes(f"{base}/environ"))
        if pre:
            ctx["ld_preload"] = pre
        if lib:
            ctx["ld_library_path"] = lib
        for n, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
            fd = describe_fd(pid, n)
            if fd is not None:
                ctx[name] = fd
        sha, mtime = self.hashes.digest(f"{base}/exe")
        if (
            not sha
            and exe_hint
            and not exe_hint.endswith(" (deleted)")
            and not exe_hint.startswith("/memfd:")
        ):
            sha, mtime = self.hashes.digest(exe_hint)
        if sha:
            ctx["exe_sha256"] = sha
        if mtime:
            ctx["exe_mtime"] = mtime
        return ctx

    def note_exec(self, pid: int) -> None:
        """The proc connector announced an exec of ``pid``: read its fds 0-2 now, while it runs
        (its audit records come later, when a short-lived program may be gone); ``on_exec`` of
        that exec's audit record takes them. Called from the exec watcher's thread
        (procconn.ExecWatcher): ``_early`` is shared under ``_early_lock``."""
        if not self.enrich or pid == self.self_pid:
            return
        fds: dict[str, wire.Stdio] = {}
        for n, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
            fd = describe_fd(pid, n)
            if fd is not None:
                fds[name] = fd
        if not fds:
            return
        read_at = time.time_ns()
        with self._early_lock:
            if len(self._early) >= EARLY_MAX:  # execs whose audit records never came (excluded, lost)
                for old in list(self._early)[: EARLY_MAX // 8]:
                    del self._early[old]
            self._early.setdefault(pid, deque()).append((read_at, fds))

    def _early_fds(self, pid: int, time_ns: int) -> dict[str, wire.Stdio]:
        """The fds read at the notification of the exec whose audit record says ``time_ns``: the
        oldest read at or after it (earlier reads belong to execs whose records never came)."""
        if not self._early:
            return {}
        with self._early_lock:
            q = self._early.get(pid)
            if not q:
                return {}
            found: dict[str, wire.Stdio] = {}
            while q:
                read_at, fds = q[0]
                if read_at > time_ns + EARLY_TTL_NS:
                    break  # a later exec's (this one's notification was lost)
                q.popleft()
                if read_at + EARLY_SLACK_NS >= time_ns:
                    found = fds
                    break
            if not q:
                del self._early[pid]
            return found

    # --- events ----------------------------------------------------------------------------
    def on_exec(
        self,
        *,
        pid: int,
        ppid: int,
        exe: str,
        name: str,
        argv: list[str],
        cwd: str,
        uid: int,
        euid: int,
        gid: int,
        egid: int,
        tty: str,
        time_ns: int,
        start_ticks: int | None = None,
        ctx: dict[str, object] | None = None,
    ) -> wire.Process:
        """A process that just exec'd. The eBPF sensor passes its start (``start_ticks``, as
        /proc/<pid>/stat counts it) and its context (``ctx``: what ``_context`` reads from /proc);
        from audit records both are read here, while the process may still be there."""
        st = self._start(pid) if start_ticks is None else ("", ppid, start_ticks)
        if st is not None:
            start_key, start_ns = str(st[2]), self.btime + st[2] * 1_000_000_000 // _CLK_TCK
        else:  # gone already (or pid reused): key on the audit time, still stable for this event
            start_key, start_ns = f"a{time_ns}", time_ns
        parent_uuid, lineage = self._lineage(ppid)
        deleted = exe.endswith(" (deleted)") or exe.startswith("/memfd:")
        if ctx is not None:
            pass
        else:
            if st is not None:
                ctx = self._context(pid, exe)
            else:  # hash what the audit record names, if it is still a file
                ctx = {}
                if self.enrich and not deleted:
                    sha, mtime = self.hashes.digest(exe)
                    if sha:
                        ctx = {"exe_sha256": sha, "exe_mtime": mtime}
            # the fds read when the exec was announced describe this exec (/proc may show a later
            # exec of the pid, or nothing: it is gone)
            ctx.update(self._early_fds(pid, time_ns))
        p = make_process(
            pid=pid,
            uuid=stable_uuid(self.boot, pid, start_key),
            ppid=ppid,
            parent_uuid=parent_uuid,
            name=name,
            exe=exe,
            argv=argv,
            cwd=cwd,
            uid=uid,
            euid=euid,
            gid=gid,
            egid=egid,
            user=self.user(uid),
            start_time=start_ns,
            tty="" if tty in ("(none)", "") else tty,
            exe_deleted=deleted,
            lineage=lineage,
            **ctx,  # type: ignore[arg-type]
        )
        e = self._store(pid, p)
        exited = self._exited.pop(pid, None)
        if exited is not None and exited >= time_ns:  # it exited before we got here: evict in time
            e.dead_at = exited
            self._dead.append((exited + self.grace_ns, pid))
        return p

    def get(self, pid: int, depth: int = 0) -> Entry | None:
        e = self.entries.get(pid)
        if e is not None:
            return e
        if self.fallback is not None:
            got = self.fallback(pid)
            if got is not None:
                e = self._store(pid, got[0])
                if got[1]:  # gone already: evicted after the grace, like any exited process
                    self.on_exit(pid, time.time_ns())
                return e
        if depth > LINEAGE_DEPTH + 1:
            return None
        return self._load(pid, depth)

    def process(
        self, pid: int, *, ppid: int = 0, name: str = "", exe: str = "", uid: int = -1, euid: int = -1
    ) -> wire.Process:
        """The process an event belongs to; a minimal one from the audit record if /proc has none."""
        e = self.get(pid)
        if e is not None:
            return e.process
        parent_uuid, lineage = self._lineage(ppid)
        return make_process(
            pid=pid,
            ppid=ppid,
            name=name,
            exe=exe,
            uid=uid,
            euid=euid,
            user=self.user(uid) if uid >= 0 else "",
            parent_uuid=parent_uuid,
            lineage=lineage,
            uuid=stable_uuid(self.boot, pid, "unknown"),
        )

    def _load(self, pid: int, depth: int) -> Entry | None:
        """A process we did not see exec (started before the agent, or forked without exec)."""
        base = f"{self.proc}/{pid}"
        st = self._start(pid)
        if st is None:
            return None
        comm, ppid, ticks = st
        try:
            with open(f"{base}/cmdline", "rb") as f:  # an argv can be MBs: read what the bound keeps
                raw = f.read(4 * MAX_ARGV_CHARS + MAX_ARGS)
            argv = bounded_argv(a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1])
        except OSError:
            argv = []
        try:
            exe = os.readlink(f"{base}/exe")
        except OSError:
            exe = ""
        try:
            cwd = os.readlink(f"{base}/cwd")
        except OSError:
            cwd = ""
        uid = euid = gid = egid = -1
        for line in (read_text(f"{base}/status") or "").splitlines():
            if line.startswith("Uid:"):
                u = line.split()
                uid, euid = int(u[1]), int(u[2])
            elif line.startswith("Gid:"):
                g = line.split()
                gid, egid = int(g[1]), int(g[2])
                break
        parent_uuid, lineage = ("", [])
        if ppid > 0:
            parent = self.get(ppid, depth + 1)
            if parent is not None:
                parent_uuid = parent.brief.uid
                lineage = [parent.brief, *parent.process.lineage[: LINEAGE_DEPTH - 1]]
        ctx = self._context(pid, exe) if depth == 0 else {}
        p = make_process(
            pid=pid,
            uuid=stable_uuid(self.boot, pid, str(ticks)),
            ppid=ppid,
            parent_uuid=parent_uuid,
            name=comm,
            exe=exe,
            argv=argv[:128],
            cwd=cwd,
            uid=uid,
            euid=euid,
            gid=gid,
            egid=egid,
            user=self.user(uid) if uid >= 0 else "",
            start_time=self.btime + ticks * 1_000_000_000 // _CLK_TCK,
            exe_deleted=exe.endswith(" (deleted)") or exe.startswith("/memfd:"),
            lineage=lineage,
            **ctx,  # type: ignore[arg-type]
        )
        return self._store(pid, p)

    def on_exit(self, pid: int, now_ns: int) -> wire.Process | None:
        e = self.entries.get(pid)
        if e is None:
            self._exited[pid] = now_ns
            return None
        e.dead_at = now_ns
        self._dead.append((now_ns + self.grace_ns, pid))
        return e.process

    def evict(self, now_ns: int) -> int:
        n = 0
        if len(self._exited) > 1024:
            old = now_ns - self.grace_ns
            self._exited = {p: t for p, t in self._exited.items() if t >= old}
        while self._dead and self._dead[0][0] <= now_ns:
            _, pid = self._dead.popleft()
            e = self.entries.get(pid)
            if e is not None and e.dead_at and e.dead_at + self.grace_ns <= now_ns:
                del self.entries[pid]
                n += 1
        return n

    def shrink(self) -> None:
        """Memory pressure: forget everything that can be rebuilt from /proc."""
        self.entries.clear()
        with self._early_lock:
            self._early.clear()
        self._dead.clear()
        self._exited.clear()
        self.hashes.cache.clear()


def with_fds(p: wire.Process, pid: int) -> wire.Process:
    """Refresh fds 0/1/2 (e.g. for a shell that was already known)."""
    upd = {}
    for n, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        fd = describe_fd(pid, n)
        if fd is not None:
            upd[name] = fd
    return msgspec.structs.replace(p, **upd) if upd else p
