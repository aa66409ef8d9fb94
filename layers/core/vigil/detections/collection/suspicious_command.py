"""Collection:Runtime/SuspiciousCommand (Vigil-specific): data gathered and staged for theft.

Mechanisms:
- ``archive-secrets``: an archive of key and credential directories (``.ssh``, ``.aws``,
  ``.gnupg``, ``.kube``, ``.docker``, /etc/shadow);
- ``archive-staged``: an archive written to a hidden name or ``/dev/shm``, or protected with a
  password (``zip -P``, ``7z -p``), by anything but an administrator at a terminal;
- ``database-dump``: every database dumped (``mysqldump --all-databases``, ``pg_dumpall``,
  ``mongodump``) by a web/app server's child or into a writable staging directory;
- ``history-read``: shell or database client histories read by a web/app server's or cron child,
  or through a wildcard over every home;
- ``capture-to-file``: packets written to a file by a service or cron child, or into a hidden path;
- ``clipboard``: the clipboard read outside an interactive session.

Severity: Medium; High from a web/app server's child; Low in an administrator's interactive session
(where only ``archive-secrets`` is reported). Backups from cron into /var/backups are not flagged.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context, memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import (
    SHELL_NAMES,
    base_name,
    by_package_manager,
    in_writable_dir,
    is_shell,
    server_child,
    session,
    shell_command,
)

ARCHIVERS: Final = frozenset(
    {"tar", "zip", "7z", "7za", "7zr", "rar", "gzip", "bzip2", "xz", "zstd", "cpio", "pigz"}
)
_SECRET_DIRS: Final = re.compile(
    r"(?:^|/)\.(?:ssh|aws|gnupg|kube|docker|azure|password-store)(?:/|$)|^/etc/shadow$|(?:^|/)\.git-credentials$|(?:^|/)id_(?:rsa|ed25519|ecdsa)$"
)
_HIDDEN_STAGE: Final = re.compile(r"^(?:/tmp|/var/tmp|/dev/shm|/run/shm)/(?:\.|[^/]*/\.)|^/dev/shm/")
_HISTORY: Final = re.compile(
    r"\.(?:bash|zsh|sh|ash|mysql|psql|python|lesshst|rediscli)_history\b|\.lesshst\b"
)
_DUMPERS: Final = frozenset({"mysqldump", "mariadb-dump", "pg_dumpall", "mongodump", "pg_dump"})
_SNIFFERS: Final = frozenset({"tcpdump", "tshark", "dumpcap"})
_CLIPBOARD: Final = frozenset({"xclip", "xsel", "wl-paste", "pbpaste"})
_READERS: Final = frozenset({"cat", "tail", "head", "less", "more", "strings", "grep", "tac", "cp"})


def _archive(args: list[str]) -> str:
    if any(_SECRET_DIRS.search(a) for a in args if not a.startswith("-")):
        return "archive-secrets"
    if any(a in ("-P", "--password", "-e", "--encrypt") or (a.startswith("-p") and len(a) > 2) for a in args):
        return "archive-staged"
    if any(_HIDDEN_STAGE.match(a.split("=", 1)[-1]) for a in args):
        return "archive-staged"
    return ""


@memo_by_command
def _mechanism(event: ProcessActivity) -> str:
    p = event.process
    name = base_name(p)
    args = list(p.args[1:])
    if name in ARCHIVERS:
        return _archive(args)
    if name in _DUMPERS:
        everything = name in ("pg_dumpall", "mongodump") or any(a in ("-A", "--all-databases") for a in args)
        staged = any(
            _HIDDEN_STAGE.match(a.removeprefix("--result-file="))
            or in_writable_dir(a.removeprefix("--result-file="))
            for a in args
        )
        return "database-dump" if everything or staged else ""
    if name in _SNIFFERS and "-w" in args:
        return "capture-to-file"
    if name in _CLIPBOARD and (
        any(a in ("-o", "-out", "--output") for a in args) or name in ("wl-paste", "pbpaste")
    ):
        return "clipboard"
    if name in _READERS and any(_HISTORY.search(a) for a in args):
        return "history-read"
    if is_shell(p):
        script = shell_command(p)
        if (
            script
            and _HISTORY.search(script)
            and re.search(r"\b(?:cat|tail|head|strings|grep|cp|tar)\b", script)
        ):
            return "history-read"
    return ""


class CollectionSuspiciousCommand(Detection):
    meta = Meta(
        type="Collection:Runtime/SuspiciousCommand",
        severity=severity.MEDIUM,
        title="A command that gathers data for theft was executed",
        description=(
            "A process archived key and credential directories, staged a hidden or password-protected archive, dumped "
            "every database, read other users' shell histories, captured packets to a file or read the clipboard. "
            "Vigil-specific type (GuardDuty has no runtime Collection type)."
        ),
        mitre=("T1560.001", "T1005", "T1552.003", "T1040", "T1115"),
        runbook=(
            "Find the archive or dump (commandLineExample) and what else the lineage did: collection usually comes just "
            "before an upload (Exfiltration findings on the same instance)."
        ),
        false_positives=(
            "Backup jobs that archive home directories or dump databases into /var/backups (not flagged).",
        ),
        references=("https://attack.mitre.org/tactics/TA0009/",),
    )
    kinds = frozenset({"process_exec"})
    programs = (
        ARCHIVERS | _DUMPERS | _SNIFFERS | _CLIPBOARD | _READERS | SHELL_NAMES
    )  # _mechanism's names, or a shell

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        m = _mechanism(event)
        if m == "" or by_package_manager(event.process):
            return False
        who = session(event.process)
        if m == "archive-secrets":
            return True
        if who == "interactive":
            return False
        if m in ("history-read", "database-dump"):
            p = event.process
            return server_child(p) or "*" in p.cmd_line or any(in_writable_dir(a) for a in p.args)
        if m == "capture-to-file":
            p = event.process
            return server_child(p) or any(_HIDDEN_STAGE.match(a) for a in p.args)
        return True

    def severity(self, event: ProcessActivity) -> float:
        who = session(event.process)
        if who == "interactive":
            return severity.LOW
        return severity.HIGH if server_child(event.process) else severity.MEDIUM

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_mechanism(event)}|{event.process.cmd_line[:256]}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process)

    _WEB: ClassVar = s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, stdin=s.pipe())
    _CRON: ClassVar = s.proc("/usr/sbin/cron", "-f", pid=700, uid=0)
    fires: ClassVar = (
        Example("tar of SSH and AWS directories", (s.exec_(s.proc("/usr/bin/tar", "czf", "/tmp/.k.tgz", "/root/.ssh", "/root/.aws", uid=33, parent=_WEB)),)),
        Example("a password-protected zip in /dev/shm", (s.exec_(s.proc("/usr/bin/zip", "-r", "-P", "x", "/dev/shm/.w.zip", "/var/www", uid=33, parent=_WEB)),)),
        Example("every database dumped by a web shell", (s.exec_(s.proc("/usr/bin/mysqldump", "--all-databases", "-r", "/tmp/.db.sql", uid=33, parent=_WEB)),)),
        Example("histories read from a web shell", (s.exec_(s.proc("/bin/sh", "-c", "cat /root/.bash_history /home/*/.bash_history", uid=33, parent=_WEB)),)),
        Example("packet capture to a hidden file from cron", (s.exec_(s.proc("/usr/sbin/tcpdump", "-i", "any", "-w", "/tmp/.cap", uid=0, parent=_CRON)),), also_fires=frozenset({"Execution:Runtime/SuspiciousTool"})),
        Example("clipboard read by a cron job", (s.exec_(s.proc("/usr/bin/xclip", "-o", "-selection", "clipboard", parent=_CRON)),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("a nightly backup of /etc", (s.exec_(s.proc("/usr/bin/tar", "czf", "/var/backups/etc.tgz", "/etc", uid=0, parent=_CRON)),)),
        Example("a cron dump of one database into /var/backups", (s.exec_(s.proc("/usr/bin/mysqldump", "--single-transaction", "appdb", "-r", "/var/backups/appdb.sql", parent=_CRON)),)),
        Example("an admin capturing to a file", (s.exec_(s.proc("/usr/sbin/tcpdump", "-w", "/tmp/debug.pcap", uid=0, parent=s.LOGIN_SHELL)),), also_fires=frozenset({"Execution:Runtime/SuspiciousTool"})),
        Example("an admin reading their own history", (s.exec_(s.proc("/usr/bin/tail", "/home/ec2-user/.bash_history", parent=s.LOGIN_SHELL)),)),
    )  # fmt: skip
