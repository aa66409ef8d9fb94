"""Execution:Runtime/ReverseShell: a shell whose stdin or stdout is a network socket."""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import ProcessActivity
from vigil.vocab import INTERPRETER_NAMES, SHELL_NAMES, base_name, is_network_socket, is_shell


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
    programs = SHELL_NAMES | INTERPRETER_NAMES  # is_shell (versions stripped) or an interpreter

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        p = event.process
        if not (is_network_socket(p.stdin) or is_network_socket(p.stdout)):
            return False
        # an interpreter only counts when both directions are on the socket (a pty.spawn one-liner)
        return is_shell(p) or (
            base_name(p) in INTERPRETER_NAMES and is_network_socket(p.stdin) and is_network_socket(p.stdout)
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

    fires: ClassVar = (
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
