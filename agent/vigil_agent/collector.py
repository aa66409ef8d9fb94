"""Audit groups -> wire events, with process context from the process table.

Pure of I/O except the /proc reads the process table and socket inspection do.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterable

from vigil import wire
from vigil_agent.auditparse import Group, parse_sockaddr, value
from vigil_agent.proctable import ProcessTable
from vigil_agent.rules import READ_SENSITIVE, SYSCALL_NAMES
from vigil_agent.sockinfo import local_endpoint

PTRACE_REQUESTS = {
    0: "PTRACE_TRACEME",
    1: "PTRACE_PEEKTEXT",
    2: "PTRACE_PEEKDATA",
    3: "PTRACE_PEEKUSER",
    4: "PTRACE_POKETEXT",
    5: "PTRACE_POKEDATA",
    6: "PTRACE_POKEUSER",
    7: "PTRACE_CONT",
    8: "PTRACE_KILL",
    9: "PTRACE_SINGLESTEP",
    12: "PTRACE_GETREGS",
    13: "PTRACE_SETREGS",
    16: "PTRACE_ATTACH",
    17: "PTRACE_DETACH",
    24: "PTRACE_SYSCALL",
    0x4206: "PTRACE_SEIZE",
}
EXEC = frozenset({"execve", "execveat"})
NET = frozenset({"connect", "accept", "accept4", "listen"})
FILE_WRITE = frozenset(
    {
        "open",
        "openat",
        "openat2",
        "creat",
        "truncate",
        "ftruncate",
        "chmod",
        "fchmod",
        "fchmodat",
        "chown",
        "fchown",
        "fchownat",
        "lchown",
        "setxattr",
        "removexattr",
        "utimensat",
        "mkdir",
        "mkdirat",
    }
)
FILE_RENAME = frozenset({"rename", "renameat", "renameat2"})
FILE_UNLINK = frozenset({"unlink", "unlinkat", "rmdir"})
FILE_LINK = frozenset({"link", "linkat", "symlink", "symlinkat"})
FILE_ALL = FILE_WRITE | FILE_RENAME | FILE_UNLINK | FILE_LINK
OTHER = frozenset(
    {
        "ptrace",
        "process_vm_writev",
        "init_module",
        "finit_module",
        "memfd_create",
        "mount",
        "userfaultfd",
        "setuid",
        "setresuid",
        "setreuid",
    }
)


# (arch as audit prints it, syscall number as text) -> name: no int parsing per record
_NAMES_BY_TEXT: dict[tuple[str | None, str | None], str] = {
    (f"{arch:x}", str(nr)): name for arch, names in SYSCALL_NAMES.items() for nr, name in names.items()
}


_AF = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}


def _image_at_syscall(proc: wire.Process, exe: str, comm: str) -> wire.Process:
    """The process as it was when it made the syscall: the record's ``exe`` is that image's, and it
    differs from the table's when the table already took a later exec of the pid (with eBPF the exec
    comes first; a child's PTRACE_TRACEME is always followed by its exec). The earlier image's argv
    is unknown: it is left out rather than borrowed from the later one."""
    if not exe or not proc.file.path or exe == proc.file.path:
        return proc
    import msgspec

    name = exe.rsplit("/", 1)[-1]
    return msgspec.structs.replace(
        proc, file=wire.File(path=exe, name=name), name=comm or name, args=[], cmd_line="", exe_deleted=False
    )


def event_class(name: str) -> str:
    """The limiter's class of a syscall's events (see limiter.ORDER)."""
    if name in NET:
        return "net"
    if name in FILE_ALL:
        return "file"
    return "core"


def _int(raw: str | None, base: int = 10, default: int = -1) -> int:
    if raw is None:
        return default
    try:
        return int(raw, base)
    except ValueError:
        return default


def _signed_hex(raw: str | None) -> int:
    v = _int(raw, 16, 0)
    return v - (1 << 64) if v >= 1 << 63 else v


def _join(cwd: str, name: str) -> str:
    if not name or name.startswith("/"):
        return os.path.normpath(name) if name else name
    return os.path.normpath(os.path.join(cwd or "/", name))


class Collector:
    def __init__(
        self,
        table: ProcessTable,
        *,
        key: str,
        watched: Iterable[str],
        unix_sockets: Iterable[str],
        unix_all: bool,
        exclude_comm: Iterable[str],
        exclude_paths: Iterable[str],
        dns_ports: Iterable[int],
        on_dns_connect: Callable[[wire.Process, str, str, int, int], None] | None,
        self_pid: int,
    ) -> None:
        self.table = table
        self.key = key
        self.watched = tuple(os.path.normpath(p) for p in watched)
        self.unix_sockets = frozenset(unix_sockets)
        self.unix_all = unix_all
        self.exclude_comm = frozenset(exclude_comm)
        self.exclude_paths = tuple(exclude_paths)
        self.dns_ports = frozenset(dns_ports)
        self.on_dns_connect = on_dns_connect
        self.self_pid = self_pid
        self.ignored = 0

    # ---------------------------------------------------------------------------------------
    def syscall_name(self, g: Group) -> str:
        sc = g.syscall
        name = _NAMES_BY_TEXT.get((sc.get("arch"), sc.get("syscall")))
        if name is not None:
            return name
        arch = _int(sc.get("arch"), 16, 0)
        nr = _int(sc.get("syscall"), 10, -1)
        return SYSCALL_NAMES.get(arch, {}).get(nr, "")

    def _watched(self, path: str) -> bool:
        if any(path == w or path.startswith(w + "/") for w in self.watched):
            return not any(path.startswith(x) for x in self.exclude_paths)
        return False

    def build(self, g: Group, name: str, seq: Callable[[], int]) -> list[wire.WireEvent]:
        """Events for one complete audit group ([] when it is not ours to report)."""
        sc = g.syscall
        get = sc.get
        pid = _int(get("pid"))
        if pid == self.self_pid or pid <= 0:
            return []
        if self.exclude_comm and (value(get("comm")) or "") in self.exclude_comm:
            self.ignored += 1
            return []
        success = get("success") == "yes"
        t = g.time_ns
        ppid = _int(get("ppid"))

        if name in EXEC:
            exe = value(get("exe")) or ""
            p = self.table.on_exec(
                pid=pid,
                ppid=ppid,
                exe=exe,
                name=value(get("comm")) or "",
                argv=g.argv(),
                cwd=g.cwd,
                uid=_int(get("uid")),
                euid=_int(get("euid")),
                gid=_int(get("gid")),
                egid=_int(get("egid")),
                tty=get("tty", ""),
                time_ns=t,
            )
            out: list[wire.WireEvent] = [wire.ProcessExec(time=t, seq=seq(), process=p)]
            if exe.startswith("/memfd:"):
                memfd = exe[len("/memfd:") :].removesuffix(" (deleted)")
                out.append(wire.MemfdExec(time=t, seq=seq(), process=p, memfd_name=memfd))
            return out

        entry = self.table.entries.get(pid)  # the common case: a process the table knows
        if entry is not None:
            proc = entry.process
        else:
            proc = self.table.process(
                pid,
                ppid=ppid,
                name=value(get("comm")) or "",
                exe=value(get("exe")) or "",
                uid=_int(get("uid")),
                euid=_int(get("euid")),
            )
        a0, a1 = sc.get("a0"), sc.get("a1")

        if name == "listen":  # no SOCKADDR record: the listening socket's own address
            loc = local_endpoint(pid, _int(a0, 16), -1)
            if loc is None:
                return []
            proto, local_ip, local_port = loc
            return [
                wire.NetListen(
                    time=t,
                    seq=seq(),
                    process=proc,
                    protocol=proto or "tcp",
                    family="inet6" if ":" in local_ip else "inet",
                    local_ip=local_ip,
                    local_port=local_port,
                )
            ]
        if name in NET:
            sa = parse_sockaddr(g.sockaddr) if g.sockaddr else None
            if sa is None:
                return []
            if sa.family == "unix":
                if name != "connect" or not sa.path:
                    return []
                if not self.unix_all and sa.path not in self.unix_sockets:
                    self.ignored += 1
                    return []
                return [wire.UnixConnect(time=t, seq=seq(), process=proc, path=sa.path, success=success)]
            if sa.family not in ("inet", "inet6"):
                return []
            fd = _int(a0, 16) if name == "connect" else _int(sc.get("exit"))
            loc = local_endpoint(pid, fd, _AF.get(sa.family, -1)) if fd >= 0 else None
            if loc is not None:
                proto, local_ip, local_port = loc
                proto = proto or "tcp"
            else:
                proto, local_ip, local_port = "tcp", "", 0
            cls = wire.NetConnect if name == "connect" else wire.NetAccept
            if name == "connect" and sa.port in self.dns_ports and self.on_dns_connect is not None:
                self.on_dns_connect(proc, sa.ip, proto, local_port, t)
            ok = success or _int(sc.get("exit")) == -115
            return [
                cls(
                    time=t,
                    seq=seq(),
                    process=proc,
                    protocol=proto,
                    family=sa.family,
                    local_ip=local_ip,
                    local_port=local_port,
                    remote_ip=sa.ip,
                    remote_port=sa.port,
                    success=ok,
                )
            ]

        if name == "ptrace":
            req = _int(a0, 16, 0)
            target_pid = _int(a1, 16, 0)
            proc = _image_at_syscall(proc, value(get("exe")) or "", value(get("comm")) or "")
            target = None
            if req == 0:  # TRACEME: the tracer is the parent
                target = self.table.process(ppid) if ppid > 0 else None
            elif target_pid > 0:
                target = self.table.process(target_pid)
            return [
                wire.Ptrace(
                    time=t, seq=seq(), process=proc, request=PTRACE_REQUESTS.get(req, str(req)), target=target
                )
            ]
        if name == "process_vm_writev":
            tp = _int(a0, 16, 0)
            return [
                wire.ProcessVmWrite(
                    time=t, seq=seq(), process=proc, target=self.table.process(tp) if tp > 0 else None
                )
            ]
        if name in ("init_module", "finit_module"):
            path = ""
            if name == "finit_module":
                try:
                    path = os.readlink(f"/proc/{pid}/fd/{_int(a0, 16, 0)}")
                except OSError:
                    path = ""
            sha = self.table.hashes.digest(path)[0] if path.startswith("/") else ""
            return [
                wire.ModuleLoad(
                    time=t, seq=seq(), process=proc, name=g.module, path=path, sha256=sha, syscall=name
                )
            ]
        if name == "mount":
            names = [n for n, _ in g.path_names()]
            source = names[0] if len(names) > 1 else ""
            target = _join(g.cwd, names[-1] if names else "")
            flags = sc.get("a3", "")
            fs_type = ""
            for who in (pid, proc.ppid) if success and target else ():  # (mount(8) is gone by now)
                fs_type = mount_fs_type(f"{self.table.proc}/{who}/mountinfo", target)
                if fs_type:
                    break
            return [
                wire.Mount(
                    time=t,
                    seq=seq(),
                    process=proc,
                    source=source,
                    target=target,
                    fs_type=fs_type,
                    flags=flags,
                )
            ]
        if name == "userfaultfd":
            return [wire.Userfaultfd(time=t, seq=seq(), process=proc)]
        if name in ("setuid", "setresuid", "setreuid"):
            if name == "setuid":
                nu = ne = _signed_hex(a0)
            else:
                nu, ne = _signed_hex(a0), _signed_hex(a1)
            return [wire.Setuid(time=t, seq=seq(), process=proc, syscall=name, new_uid=nu, new_euid=ne)]
        if name == "memfd_create":
            return []  # no wire kind: memfd execution is reported as memfd_exec
        if name in FILE_ALL:
            return self._file(g, name, proc, success, seq)
        return []

    def _file(
        self, g: Group, name: str, proc: wire.Process, success: bool, seq: Callable[[], int]
    ) -> list[wire.WireEvent]:
        t = g.time_ns
        items = [(_join(g.cwd, n), typ) for n, typ in g.path_names()]
        ours = value(g.syscall.get("key")) == self.key

        def keep(path: str) -> bool:
            if any(path.startswith(x) for x in self.exclude_paths):
                return False
            return ours or self._watched(path)

        if name in FILE_RENAME:
            old = next((p for p, typ in items if typ == "DELETE"), "")
            new = next((p for p, typ in items if typ == "CREATE"), "")
            if not (keep(old) or keep(new)):
                return []
            return [wire.FileRename(time=t, seq=seq(), process=proc, path=old, new_path=new, success=success)]
        if name in FILE_UNLINK:
            path = next((p for p, typ in items if typ == "DELETE"), items[-1][0] if items else "")
            return (
                [wire.FileUnlink(time=t, seq=seq(), process=proc, path=path, success=success)]
                if keep(path)
                else []
            )
        if name in FILE_LINK:
            new = next((p for p, typ in items if typ == "CREATE"), items[-1][0] if items else "")
            if not keep(new):
                return []
            symbolic = name.startswith("sym")
            raw = [value(p.get("name")) or "" for p in g.paths]
            if symbolic:
                target = next(
                    (r for r, p in zip(raw, g.paths, strict=False) if p.get("nametype") == "UNKNOWN"), ""
                )
            else:
                target = next((p for p, typ in items if typ == "NORMAL"), "")
            return [
                wire.FileLink(
                    time=t,
                    seq=seq(),
                    process=proc,
                    path=new,
                    target=target,
                    symbolic=symbolic,
                    success=success,
                )
            ]
        # writes, attribute changes, and reads of read-sensitive files
        path = next((p for p, typ in items if typ in ("NORMAL", "CREATE")), items[-1][0] if items else "")
        if not keep(path):
            return []
        flags = -1
        if name == "open":
            flags = _int(g.syscall.get("a1"), 16, -1)
        elif name == "openat":
            flags = _int(g.syscall.get("a2"), 16, -1)
        if flags >= 0 and flags & 3 == 0 and not flags & 0o1000:  # O_RDONLY without O_TRUNC
            if path in READ_SENSITIVE or ours:
                return [
                    wire.FileOpenSensitive(
                        time=t, seq=seq(), process=proc, path=path, flags="O_RDONLY", success=success
                    )
                ]
            return []
        return [wire.FileWrite(time=t, seq=seq(), process=proc, path=path, success=success)]


_OCTAL = re.compile(r"\\([0-7]{3})")


def mount_fs_type(mountinfo: str, target: str) -> str:
    """The type of the filesystem mounted at ``target``, from a mountinfo file: the audit record
    does not carry it (mount(2)'s type is a bare string argument). The last line for the mount
    point is the mount on top. "" when the process, or the mount, is gone."""
    try:
        with open(mountinfo, "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return ""
    fs = ""
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if sep and len(fields) >= 5 and _OCTAL.sub(lambda m: chr(int(m[1], 8)), fields[4]) == target:
            fs = right.split(" ", 1)[0]
    return fs
