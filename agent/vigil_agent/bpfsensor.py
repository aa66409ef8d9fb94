"""The eBPF sensor: exec, exit, connect, accept, listen, /proc/<pid>/mem opened for writing and
library loads, as one compact kernel record each.

The programs (agent/bpf/vigil.bpf.c, compiled CO-RE into ``vigil.bpf.o`` next to this module by
``make agent-bpf``) are loaded and attached with the system's libbpf (``libbpf.so.1``) through
ctypes, and their ring buffer is read with libbpf's ``ring_buffer__consume``: no compiler, headers
or Python extension on the instance. Records are decoded here with ``struct``; the layouts mirror
the C structs (whose sizes the C file pins with static asserts) and are checked against the record
sizes on every read.

Where the sensor cannot start (no libbpf, no BTF, an old kernel without bpf_loop, no CAP_BPF),
:class:`BpfSensor` raises OSError with the reason and the agent runs on audit alone.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
import struct
from collections import deque
from dataclasses import dataclass

log = logging.getLogger("vigil_agent")

OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vigil.bpf.o")

EV_EXEC, EV_EXIT, EV_CONNECT, EV_ACCEPT, EV_LISTEN, EV_PROC_MEM, EV_LIB = 1, 2, 3, 4, 5, 6, 7
NET_KINDS = frozenset({EV_CONNECT, EV_ACCEPT, EV_LISTEN, EV_PROC_MEM})  # records in the net layout
F_EXE_UNLINKED, F_ARGS_TRUNC, F_ENV_TRUNC, F_EXE_TRUNC, F_CWD_TRUNC = 1, 2, 4, 8, 16

HDR = struct.Struct("<IIIIQQIIII16s")  # kind pid tid ppid time start uid euid gid egid comm
FDINFO = struct.Struct("<IIQHHHH16s16s112s")  # mode rdev ino family type lport rport laddr raddr name
EXEC_FIXED = struct.Struct("<QqqIIIIIIII")  # exe ino/size/mtime s/ns/dev, ns_pid, flags, 4 lengths
EXIT_TAIL = struct.Struct("<iI")
LIB_FIXED = struct.Struct("<QqqIIII")  # ino, size, mtime s/ns, dev, path_len, flags
NET_TAIL = struct.Struct("<iHHHHI16s16s112s")  # ret family type lport rport fd laddr raddr path
NET_REC = struct.Struct(HDR.format + NET_TAIL.format[1:])  # a whole connect/accept record, one unpack
EXIT_REC = struct.Struct(HDR.format + EXIT_TAIL.format[1:])
TTY_LEN, CGROUP_LEN, PATH_BUF, ARGS_MAX, ENV_MAX = 32, 128, 1024, 4096, 4096
_EXEC_FDS = HDR.size + EXEC_FIXED.size
_EXEC_TTY = _EXEC_FDS + 3 * FDINFO.size
_EXEC_CGROUP = _EXEC_TTY + TTY_LEN
_EXEC_EXE = _EXEC_CGROUP + CGROUP_LEN
_EXEC_CWD = _EXEC_EXE + PATH_BUF
_EXEC_DATA = _EXEC_CWD + PATH_BUF  # argv (args_len bytes), then the environment (env_len bytes)
EXEC_MIN = _EXEC_DATA  # an exec record is sent only as long as its data: EXEC_MIN + args + env
EXEC_SIZE = _EXEC_DATA + ARGS_MAX + ENV_MAX  # the C struct (its scratch copy in the kernel)
EXIT_SIZE = HDR.size + EXIT_TAIL.size
NET_SIZE = HDR.size + NET_TAIL.size
LIB_SIZE = HDR.size + LIB_FIXED.size + PATH_BUF
SIZES = {EV_EXIT: EXIT_SIZE, EV_LIB: LIB_SIZE, **dict.fromkeys(NET_KINDS, NET_SIZE)}

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
S_IFMT, S_IFSOCK, S_IFIFO, S_IFCHR, S_IFREG, S_IFDIR = (
    0o170000,
    0o140000,
    0o010000,
    0o020000,
    0o100000,
    0o040000,
)
TTY_MAJORS = frozenset({4, 5, *range(136, 144)})  # tty, /dev/tty + console, the pty slaves (/dev/pts)
CONFIG = struct.Struct("<IIII")  # agent tgid, unix_all, connect_failed, pad
UNIX_PATH = 108


def _cstr(b: bytes) -> str:
    return b.partition(b"\0")[0].decode("utf-8", "replace")


def _path(raw: bytes) -> str:
    """Components leaf first, NUL terminated each (the walk in the kernel) -> an absolute path."""
    s = _paths.get(raw)  # the same few executables and working directories come back all the time
    if s is None:
        parts = raw.decode("utf-8", "replace").split("\0")  # one decode: no component holds a NUL
        if parts and not parts[-1]:
            parts.pop()
        parts.reverse()
        if len(_paths) >= 4096:
            _paths.clear()
        s = _paths[raw] = "/" + "/".join(parts)
    return s


_paths: dict[bytes, str] = {}


def _ip(family: int, raw: bytes) -> str:
    if family == AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    ip = socket.inet_ntop(socket.AF_INET6, raw)
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


@dataclass(slots=True)
class Header:
    kind: int
    pid: int
    tid: int
    ppid: int
    time_ns: int  # CLOCK_BOOTTIME
    start_ns: int  # CLOCK_BOOTTIME
    uid: int
    euid: int
    gid: int
    egid: int
    comm: str


@dataclass(slots=True)
class FdInfo:
    mode: int
    rdev: int
    ino: int
    family: int
    type: int
    lport: int
    rport: int
    laddr: bytes
    raddr: bytes
    name: str


@dataclass(slots=True)
class Exec:
    h: Header
    exe: str
    exe_key: tuple[int, int, int, int]  # (dev, inode, mtime ns, size): the exe hash cache key
    exe_mtime_ns: int
    exe_unlinked: bool
    ns_pid: int
    argv: list[str]
    env: bytes
    cwd: str
    tty: str
    cgroup: str
    fds_raw: bytes  # fds 0/1/2 as the record holds them (FDINFO each): decoded on demand, cached
    flags: int

    @property
    def fds(self) -> tuple[FdInfo | None, FdInfo | None, FdInfo | None]:
        raw = self.fds_raw
        return _fd(raw, 0), _fd(raw, FDINFO.size), _fd(raw, 2 * FDINFO.size)


@dataclass(slots=True)
class Exit:
    h: Header
    code: int


@dataclass(slots=True)
class Net:
    h: Header
    ret: int
    family: int
    type: int
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    fd: int
    path: str  # unix connects


@dataclass(slots=True)
class Lib:
    """A file's first executable mapping in its cgroup (a library load)."""

    h: Header
    path: str
    key: tuple[int, int, int, int]  # (dev, inode, mtime ns, size): the hash cache key
    mtime_ns: int
    unlinked: bool


Record = Exec | Exit | Net | Lib


def _header(data: bytes) -> Header:
    kind, pid, tid, ppid, t, start, uid, euid, gid, egid, comm = HDR.unpack_from(data)
    return Header(kind, pid, tid, ppid, t, start, uid, euid, gid, egid, _cstr(comm))


def _fd(data: bytes, off: int) -> FdInfo | None:
    mode, rdev, ino, fam, typ, lport, rport, laddr, raddr, name = FDINFO.unpack_from(data, off)
    if not mode:
        return None
    if mode & S_IFMT == S_IFSOCK and fam == AF_UNIX:
        nm = "@" + _cstr(name[1:]) if name[:1] == b"\0" and name[1:2] not in (b"", b"\0") else _cstr(name)
    else:
        nm = _cstr(name)
    return FdInfo(mode, rdev, ino, fam, typ, lport, rport, laddr, raddr, nm)


def decode(data: bytes) -> Record:
    """One ring buffer record; ValueError on a size that does not match its kind's layout."""
    if len(data) < HDR.size:
        raise ValueError(f"eBPF record of {len(data)} bytes is shorter than its header")
    h = _header(data)
    if h.kind == EV_EXEC:
        if len(data) < EXEC_MIN:
            raise ValueError(f"eBPF exec record has {len(data)} bytes, less than its fixed part ({EXEC_MIN})")
        ino, size, msec, mnsec, dev, ns_pid, flags, args_len, env_len, exe_len, cwd_len = (
            EXEC_FIXED.unpack_from(data, HDR.size)
        )
        if len(data) != EXEC_MIN + args_len + env_len or args_len >= ARGS_MAX or env_len >= ENV_MAX:
            raise ValueError(
                f"eBPF exec record of {len(data)} bytes does not hold argv {args_len} + env {env_len}"
            )
        exe = _path(data[_EXEC_EXE : _EXEC_EXE + min(exe_len, PATH_BUF)]) if exe_len else ""
        unlinked = bool(flags & F_EXE_UNLINKED)
        if exe and unlinked:
            exe += " (deleted)"  # what d_path (and audit's exe=) says of an unlinked file
        args = data[_EXEC_DATA : _EXEC_DATA + args_len].split(b"\0")
        if args and not args[-1]:
            args.pop()
        mtime_ns = msec * 1_000_000_000 + mnsec
        return Exec(
            h=h,
            exe=exe,
            exe_key=(dev, ino, mtime_ns, size),
            exe_mtime_ns=mtime_ns,
            exe_unlinked=unlinked,
            ns_pid=ns_pid,
            argv=[a.decode("utf-8", "replace") for a in args],
            env=data[_EXEC_DATA + args_len :],
            cwd=_path(data[_EXEC_CWD : _EXEC_CWD + min(cwd_len, PATH_BUF)]) if cwd_len else "",
            tty=_cstr(data[_EXEC_TTY:_EXEC_CGROUP]),
            cgroup=_cstr(data[_EXEC_CGROUP:_EXEC_EXE]),
            fds_raw=data[_EXEC_FDS:_EXEC_TTY],
            flags=flags,
        )
    want = SIZES.get(h.kind)
    if want is None or len(data) != want:
        raise ValueError(f"eBPF record kind {h.kind} has {len(data)} bytes, expected {want}")
    if h.kind == EV_EXIT:
        code, _ = EXIT_TAIL.unpack_from(data, HDR.size)
        return Exit(h, code)
    if h.kind == EV_LIB:
        ino, size, msec, mnsec, dev, path_len, flags = LIB_FIXED.unpack_from(data, HDR.size)
        off = HDR.size + LIB_FIXED.size
        path = _path(data[off : off + min(path_len, PATH_BUF)]) if path_len else ""
        unlinked = bool(flags & F_EXE_UNLINKED)
        mtime_ns = msec * 1_000_000_000 + mnsec
        return Lib(
            h,
            path + " (deleted)" if path and unlinked else path,
            (dev, ino, mtime_ns, size),
            mtime_ns,
            unlinked,
        )
    ret, fam, typ, lport, rport, fd, laddr, raddr, path = NET_TAIL.unpack_from(data, HDR.size)
    if h.kind == EV_PROC_MEM:
        return Net(h, ret, 0, 0, "", 0, "", 0, fd, _cstr(path))
    if fam == AF_UNIX:
        return Net(h, ret, fam, typ, "", 0, "", 0, fd, unix_path(path))
    return Net(h, ret, fam, typ, ip(fam, laddr), lport, ip(fam, raddr), rport, fd, "")


def unix_path(raw: bytes) -> str:
    return "@" + _cstr(raw[1:]) if raw[:1] == b"\0" else _cstr(raw)


_ips: dict[bytes, str] = {}  # the same few local and remote addresses come back all the time


def ip(family: int, raw: bytes) -> str:
    """``_ip``, memoized (a connect and its accept carry 4 addresses; most repeat)."""
    key = raw if family == AF_INET6 else raw[:4]
    s = _ips.get(key)
    if s is None:
        if len(_ips) >= 4096:
            _ips.clear()
        s = _ips[key] = _ip(family, raw)
    return s


# --- libbpf through ctypes --------------------------------------------------------------------
_SAMPLE_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_PRINT_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_LIBBPF_NAMES = ("libbpf.so.1", "libbpf.so.0", "libbpf.so")
_log_tail: deque[str] = deque(maxlen=40)  # libbpf's last words (the verifier's log on a refusal)
_verbose = os.environ.get("VIGIL_LIBBPF_DEBUG") == "1"


def _load_libbpf() -> ctypes.CDLL:
    last = ""
    for name in _LIBBPF_NAMES:
        try:
            lib = ctypes.CDLL(name, use_errno=True)
            break
        except OSError as exc:
            last = str(exc)
    else:
        raise OSError(errno.ENOENT, f"libbpf not found (install libbpf1 / libbpf): {last}")
    vp, ip = ctypes.c_void_p, ctypes.c_int
    sigs: dict[str, tuple[object, list[object]]] = {
        "bpf_object__open_file": (vp, [ctypes.c_char_p, vp]),
        "bpf_object__load": (ip, [vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__next_program": (vp, [vp, vp]),
        "bpf_object__find_map_by_name": (vp, [vp, ctypes.c_char_p]),
        "bpf_program__attach": (vp, [vp]),
        "bpf_program__name": (ctypes.c_char_p, [vp]),
        "bpf_link__destroy": (ip, [vp]),
        "bpf_map__fd": (ip, [vp]),
        "bpf_map__set_max_entries": (ip, [vp, ctypes.c_uint32]),
        "bpf_map_update_elem": (ip, [ip, vp, vp, ctypes.c_uint64]),
        "bpf_map_lookup_elem": (ip, [ip, vp, vp]),
        "libbpf_num_possible_cpus": (ip, []),
        "ring_buffer__new": (vp, [ip, _SAMPLE_CB, vp, vp]),
        "ring_buffer__free": (None, [vp]),
        "ring_buffer__consume": (ip, [vp]),
        "ring_buffer__epoll_fd": (ip, [vp]),
        "libbpf_set_print": (vp, [_PRINT_CB]),
    }
    for fname, (res, args) in sigs.items():
        try:
            fn = getattr(lib, fname)
        except AttributeError as exc:
            raise OSError(errno.ENOSYS, f"libbpf lacks {fname} (libbpf >= 0.7 needed)") from exc
        fn.restype = res
        fn.argtypes = args
    return lib


_libc = ctypes.CDLL(None, use_errno=True)
_vsnprintf = _libc.vsnprintf
_vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]


@_PRINT_CB
def _libbpf_print(level: int, fmt: bytes, args: int) -> int:
    if level > 1 and not _verbose:  # LIBBPF_DEBUG: hundreds of lines per load, none needed
        return 0
    buf = ctypes.create_string_buffer(1024)
    _vsnprintf(buf, len(buf), fmt, args)
    line = buf.value.decode("utf-8", "replace").rstrip()
    if line:
        _log_tail.append(line)
        if level <= 1:  # LIBBPF_WARN, LIBBPF_INFO
            log.debug("libbpf: %s", line)
    return 0


def _err(what: str) -> OSError:
    e = ctypes.get_errno() or errno.EINVAL
    return OSError(e, f"{what}: {os.strerror(e)}")


def _tracefs_ready() -> str | None:
    """Tracepoints attach through tracefs; mount it where libbpf looks if nobody did (as systemd
    does at boot). Returns the mount point when the agent mounted it (to unmount on close)."""
    for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.isdir(os.path.join(d, "events")):
            return None
    target = "/sys/kernel/tracing"
    mount = _libc.mount
    mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    if mount(b"tracefs", target.encode(), b"tracefs", 0, None) != 0:
        raise _err(f"tracefs is not mounted and mounting it on {target} failed")
    log.info("mounted tracefs on %s (tracepoints attach through it)", target)
    return target


class BpfSensor:
    """Loaded, configured and attached programs plus their ring buffer (``fileno`` for epoll)."""

    def __init__(
        self,
        *,
        agent_pid: int,
        unix_paths: list[str],
        unix_all: bool,
        connect_failed: bool,
        path: str = OBJECT,
        ring_bytes: int = 2 << 20,
        native: tuple[object, int | None] | None = None,
    ) -> None:
        """``native``: (a C ring_buffer_sample_fn, its context) that libbpf calls for each record
        instead of the Python callback (the fast path, fastpath.py); then use ``consume``."""
        if ring_bytes < 4096 or ring_bytes & (ring_bytes - 1):
            raise OSError(
                errno.EINVAL, f"eBPF ring size {ring_bytes} must be a power of two of at least 4096 bytes"
            )
        if not os.path.exists(path):
            raise OSError(errno.ENOENT, f"{path} is missing (build it with `make agent-bpf`)")
        if not os.path.exists("/sys/kernel/btf/vmlinux"):
            raise OSError(
                errno.ENOTSUP, "the kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE cannot relocate"
            )
        self.lib = lib = _load_libbpf()
        lib.libbpf_set_print(_libbpf_print)
        self.obj: int | None = None
        self.links: list[int] = []
        self.rb: int | None = None
        self.mounted: str | None = None
        self.pending: list[bytes] = []
        self._cb = _SAMPLE_CB(self._on_sample)  # kept alive as long as the ring buffer
        self.native = native
        try:
            self._open(path, agent_pid, unix_paths, unix_all, connect_failed, ring_bytes)
        except BaseException:
            self.close()
            raise

    def _open(
        self,
        path: str,
        agent_pid: int,
        unix_paths: list[str],
        unix_all: bool,
        connect_failed: bool,
        ring_bytes: int,
    ) -> None:
        lib = self.lib
        _log_tail.clear()
        obj = lib.bpf_object__open_file(path.encode(), None)
        if not obj:
            raise _err(f"cannot open {path}")
        self.obj = obj
        events = lib.bpf_object__find_map_by_name(obj, b"events")
        if not events or lib.bpf_map__set_max_entries(events, ring_bytes):
            raise _err("cannot size the ring buffer")
        rc = lib.bpf_object__load(obj)
        if rc:
            tail = " | ".join(list(_log_tail)[-4:])
            raise OSError(-rc, f"the kernel refused the eBPF programs ({os.strerror(-rc)}): {tail}")
        zero = ctypes.c_uint32(0)
        cfg = ctypes.create_string_buffer(
            CONFIG.pack(agent_pid, int(unix_all), int(connect_failed), 0), CONFIG.size
        )
        if lib.bpf_map_update_elem(self._map_fd(b"settings"), ctypes.byref(zero), cfg, 0):
            raise _err("cannot write the sensor's settings map")
        paths_fd = self._map_fd(b"unix_paths")
        one = ctypes.c_uint8(1)
        for p in unix_paths[:64]:
            key = ctypes.create_string_buffer(p.encode()[:UNIX_PATH].ljust(UNIX_PATH, b"\0"), UNIX_PATH)
            if lib.bpf_map_update_elem(paths_fd, key, ctypes.byref(one), 0):
                raise _err(f"cannot add {p} to the unix socket list")
        self.lost_fd = self._map_fd(b"lost")
        self.ncpu = max(1, lib.libbpf_num_possible_cpus())
        self.mounted = _tracefs_ready()
        prog = lib.bpf_object__next_program(obj, None)
        while prog:
            link = lib.bpf_program__attach(prog)
            if not link:
                name = (lib.bpf_program__name(prog) or b"?").decode()
                raise _err(f"cannot attach {name}")
            self.links.append(link)
            prog = lib.bpf_object__next_program(obj, prog)
        cb, ctx = self.native if self.native is not None else (self._cb, None)
        rb = lib.ring_buffer__new(self._map_fd(b"events"), cb, ctx, None)
        if not rb:
            raise _err("cannot set up the ring buffer")
        self.rb = rb
        self.fd = lib.ring_buffer__epoll_fd(rb)
        self.programs = len(self.links)

    def _map_fd(self, name: bytes) -> int:
        m = self.lib.bpf_object__find_map_by_name(self.obj, name)
        if not m:
            raise OSError(errno.ENOENT, f"map {name.decode()} missing from the eBPF object")
        return int(self.lib.bpf_map__fd(m))

    def _on_sample(self, _ctx: int | None, data: int, size: int) -> int:
        self.pending.append(ctypes.string_at(data, size))
        return 0

    def fileno(self) -> int:
        return self.fd

    def drain(self) -> list[bytes]:
        """Every record in the ring now, oldest first."""
        if self.rb is None:
            return []
        if self.lib.ring_buffer__consume(self.rb) < 0:
            raise _err("ring_buffer__consume")
        out, self.pending = self.pending, []
        return out

    def consume(self) -> int:
        """One pass of libbpf over the ring with the native callback: its return (records handled,
        or the callback's negative code where it stopped)."""
        if self.rb is None:
            return 0
        return int(self.lib.ring_buffer__consume(self.rb))

    def lost(self) -> int:
        """Records the kernel could not put in the ring (it was full), since the sensor started."""
        vals = (ctypes.c_uint64 * self.ncpu)()
        zero = ctypes.c_uint32(0)
        if self.lib.bpf_map_lookup_elem(self.lost_fd, ctypes.byref(zero), vals):
            return 0
        return int(sum(vals))

    def close(self) -> None:
        lib = self.lib
        if self.rb is not None:
            lib.ring_buffer__free(self.rb)
            self.rb = None
        for link in self.links:
            lib.bpf_link__destroy(link)
        self.links.clear()
        if self.obj is not None:
            lib.bpf_object__close(self.obj)
            self.obj = None
        if self.mounted:
            umount2 = _libc.umount2
            umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
            umount2(self.mounted.encode(), 2)  # MNT_DETACH
            self.mounted = None
