"""Shared vocabulary for detections (Falco-style named sets and predicates, as plain Python)."""

from __future__ import annotations

from typing import Final

from vigil.events import Process, Stdio

SHELL_NAMES: Final = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "ash", "busybox", "mksh"}
)
INTERPRETER_NAMES: Final = frozenset(
    {
        "python",
        "python2",
        "python3",
        "perl",
        "ruby",
        "php",
        "node",
        "lua",
        "awk",
        "gawk",
        "tclsh",
        "socat",
        "nc",
        "ncat",
        "netcat",
        "telnet",
    }
)
NETWORK_SERVICE_NAMES: Final = frozenset(
    {
        "nginx", "httpd", "apache2", "lighttpd", "caddy", "java", "tomcat", "node", "php-fpm", "php-fpm8.2", "uwsgi", "gunicorn",
        "mysqld", "postgres", "redis-server", "mongod", "memcached", "named", "vsftpd", "proftpd", "dockerd", "containerd",
        "kubelet", "haproxy", "squid", "elasticsearch", "jenkins",
    }
)  # fmt: skip


def base_name(p: Process) -> str:
    """The program's name, from the exe path (argv[0] and comm can be set by the attacker)."""
    return p.file.name or p.name


def is_shell(p: Process) -> bool:
    name = base_name(p)
    return name in SHELL_NAMES or name.rstrip("0123456789.") in SHELL_NAMES


def is_network_socket(fd: Stdio | None) -> bool:
    return fd is not None and fd.type == "socket" and fd.family in ("inet", "inet6")


def stdio_on_network_socket(p: Process) -> bool:
    """A reverse shell's mark: its stdin or stdout is a TCP/UDP socket to a remote peer."""
    return is_network_socket(p.stdin) or is_network_socket(p.stdout)


def interactive_shell_flag(p: Process) -> bool:
    return "-i" in p.args[1:]
