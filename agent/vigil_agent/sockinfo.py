"""What a process's file descriptor is: file, pipe, tty, or a socket with its endpoints.

Sockets are inspected through a duplicate taken with pidfd_getfd(2) (root, Linux >= 5.6): one
getsockname/getpeername answers family, protocol and both endpoints without scanning
/proc/net/*. Where pidfd_getfd is refused (Yama ptrace_scope 3, old kernels) the socket inode is
looked up in /proc/<pid>/net/{tcp,tcp6,udp,udp6} instead.
"""

from __future__ import annotations

import _socket
import ctypes
import os
import socket
import struct

from vigil import wire

_SYS_PIDFD_GETFD = 438  # same number on x86_64 and aarch64
_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_int, ctypes.c_uint]

_CSocket = _socket.socket
_FAMILY = {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}
_PROTO = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}


class SockDesc:
    __slots__ = ("family", "local_ip", "local_port", "protocol", "remote_ip", "remote_port", "unix_path")

    def __init__(
        self,
        family: str,
        protocol: str = "",
        local: tuple[str, int] = ("", 0),
        remote: tuple[str, int] = ("", 0),
        unix_path: str = "",
    ) -> None:
        self.family = family
        self.protocol = protocol
        self.local_ip, self.local_port = local
        self.remote_ip, self.remote_port = remote
        self.unix_path = unix_path


def _unmap(ip: str) -> str:
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


PIDFD_CACHE = 64
_pidfds: dict[int, int] = {}  # pid -> pidfd: a process that connects 500 times a second is opened once


def _pidfd(pid: int) -> int:
    pidfd = _pidfds.get(pid)
    if pidfd is None:
        pidfd = os.pidfd_open(pid)
        if len(_pidfds) >= PIDFD_CACHE:
            for old in list(_pidfds)[: PIDFD_CACHE // 4]:
                os.close(_pidfds.pop(old))
        _pidfds[pid] = pidfd
    return pidfd


def forget(pid: int) -> None:
    """The process exited: drop its cached pidfd."""
    pidfd = _pidfds.pop(pid, None)
    if pidfd is not None:
        os.close(pidfd)


def dup_fd(pid: int, fd: int) -> int:
    """A duplicate of ``pid``'s ``fd`` (pidfd_getfd). A cached pidfd of an exited process whose pid
    was reused fails with ESRCH: it is reopened once."""
    for _ in range(2):
        pidfd = _pidfd(pid)
        r = _syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
        if r >= 0:
            return int(r)
        e = ctypes.get_errno()
        if e != 3:  # ESRCH: the process behind the cached pidfd is gone
            raise OSError(e, os.strerror(e))
        forget(pid)
    raise OSError(3, os.strerror(3))


def local_endpoint(pid: int, fd: int, family: int = -1) -> tuple[str, str, int] | None:
    """(protocol, local ip, local port) of an inet socket of another process: what a connect or
    accept audit record lacks (the remote end is in its SOCKADDR record, whose address family is
    the socket's: passed as ``family``, it saves a getsockopt). The C socket type, not the
    socket.socket wrapper: its constructor and ``type`` property are Python code."""
    try:
        dfd = dup_fd(pid, fd)
    except OSError:
        return None
    try:
        s = _CSocket(family, -1, 0 if family != -1 else -1, dfd)
    except OSError:
        os.close(dfd)
        return None
    try:
        local = s.getsockname()
        if not isinstance(local, tuple):
            return None
        ip = local[0]
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]
        return _PROTO.get(s.type, ""), ip, local[1]
    except OSError:
        return None
    finally:
        s.close()


def describe_socket(pid: int, fd: int) -> SockDesc | None:
    try:
        dfd = dup_fd(pid, fd)
    except OSError:
        return None
    try:
        s = socket.socket(fileno=dfd)
    except OSError:
        os.close(dfd)
        return None
    try:
        fam = _FAMILY.get(s.family, "other")
        proto = _PROTO.get(s.type, "")
        if fam == "unix":
            try:
                peer = s.getpeername()
            except OSError:
                peer = ""
            name = s.getsockname()
            path = peer or name
            if isinstance(path, bytes):
                path = (
                    "@" + path[1:].decode(errors="replace")
                    if path[:1] == b"\0"
                    else path.decode(errors="replace")
                )
            return SockDesc("unix", proto, unix_path=path or "")
        if fam in ("inet", "inet6"):
            local = s.getsockname()
            try:
                remote = s.getpeername()
            except OSError:
                remote = ("", 0)
            return SockDesc(
                fam,
                proto,
                (_unmap(local[0]), local[1]),
                (_unmap(remote[0]), remote[1]) if remote[0] else ("", 0),
            )
        return SockDesc(fam, proto)
    except OSError:
        return None
    finally:
        s.close()


def _hex_ip(h: str) -> str:
    raw = bytes.fromhex(h)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = struct.unpack("<4I", raw)
    ip = socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words))
    return _unmap(ip)


def describe_socket_inode(pid: int, inode: str) -> SockDesc | None:
    """Fallback: find the socket inode in the process's network namespace tables."""
    for name, fam, proto in (
        ("tcp", "inet", "tcp"),
        ("tcp6", "inet6", "tcp"),
        ("udp", "inet", "udp"),
        ("udp6", "inet6", "udp"),
    ):
        try:
            with open(f"/proc/{pid}/net/{name}") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 9 and parts[9] == inode:
                        lip, lport = parts[1].split(":")
                        rip, rport = parts[2].split(":")
                        remote_ip = _hex_ip(rip)
                        remote = (remote_ip, int(rport, 16)) if int(rport, 16) else ("", 0)
                        return SockDesc(fam, proto, (_hex_ip(lip), int(lport, 16)), remote)
        except (OSError, StopIteration, ValueError):
            continue
    return None


def describe_fd(pid: int, fd: int) -> wire.Stdio | None:
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None
    if target.startswith("socket:["):
        d = describe_socket(pid, fd) or describe_socket_inode(pid, target[8:-1])
        if d is None:
            return wire.Stdio(type="socket", path=target)
        if d.family == "unix":
            return wire.Stdio(type="socket", family="unix", protocol=d.protocol, path=d.unix_path)
        return wire.Stdio(
            type="socket",
            family=d.family,
            protocol=d.protocol,
            path=target,
            local=wire.Endpoint(ip=d.local_ip, port=d.local_port),
            remote=wire.Endpoint(ip=d.remote_ip, port=d.remote_port) if d.remote_ip else None,
        )
    if target.startswith("pipe:["):
        return wire.Stdio(type="pipe", path=target)
    if target.startswith(("/dev/pts/", "/dev/tty", "/dev/console")):
        return wire.Stdio(type="tty", path=target)
    if target.startswith("/"):
        return wire.Stdio(type="file", path=target)
    return wire.Stdio(type="other", path=target)
