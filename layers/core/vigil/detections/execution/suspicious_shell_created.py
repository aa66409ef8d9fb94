"""Execution:Runtime/SuspiciousShellCreated: a network service spawned an interactive shell.

Services run ``sh -c CMD`` all the time (CGI, archive commands); an *interactive* shell (no
``-c`` script, or ``-i``) under a web server or database is how a web shell or an exploited
service hands out a session. Shells wired to a network socket are ReverseShell instead.
"""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import ProcessActivity
from vigil.vocab import (
    NETWORK_SERVICE_NAMES,
    SHELL_NAMES,
    base_name,
    is_shell,
    shell_command,
    stdio_on_network_socket,
)

_NOT_SERVICES = frozenset(
    {"dockerd", "containerd", "kubelet"}
)  # they start container entrypoints, not sessions


def _service_parent(event: ProcessActivity) -> str:
    parent = event.process.parent_process
    if parent is None:
        return ""
    name = base_name(parent)
    return name if name in NETWORK_SERVICE_NAMES and name not in _NOT_SERVICES else ""


class SuspiciousShellCreated(Detection):
    meta = Meta(
        type="Execution:Runtime/SuspiciousShellCreated",
        severity=severity.LOW,
        title="A network service started an interactive shell",
        description=(
            "A network-facing service (web server, application server, database) started an interactive shell: "
            "the way a web shell or an exploited service gives an attacker a session."
        ),
        mitre=("T1059.004", "T1505.003"),
        runbook=(
            "Look at the service in the lineage and at its recent requests (web logs around eventFirstSeen). Check the "
            "shell's children for reconnaissance and downloads; look for web shells in the document root."
        ),
        false_positives=("Applications that deliberately open a shell for operators (admin consoles).",),
        references=("https://attack.mitre.org/techniques/T1505/003/",),
    )
    kinds = frozenset({"process_exec"})
    programs = SHELL_NAMES  # is_shell (versions stripped)

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        p = event.process
        if not is_shell(p) or not _service_parent(event):
            return False
        if stdio_on_network_socket(p):
            return False  # ReverseShell
        return "-i" in p.args[1:] or (shell_command(p) == "" and len(p.args) <= 2)

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_service_parent(event)}|{event.process.file.path}"

    fires: ClassVar = (
        Example("nginx worker spawning bash -i", (s.exec_(s.proc("/bin/bash", "-i", stdin=s.pipe(), parent=s.proc("/usr/sbin/nginx", pid=900, uid=33))),)),
        Example("php-fpm spawning a bare sh", (s.exec_(s.proc("/bin/sh", stdin=s.pipe(), parent=s.proc("/usr/sbin/php-fpm", pid=901, uid=33))),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("a service running a command through sh -c", (s.exec_(s.proc("/bin/sh", "-c", "gzip -9 /var/lib/postgresql/wal/0001", parent=s.proc("/usr/lib/postgresql/16/bin/postgres", pid=902, uid=999))),)),
        Example("an ssh login shell", (s.exec_(s.proc("/bin/bash", "-i", parent=s.SSHD)),)),
    )  # fmt: skip
