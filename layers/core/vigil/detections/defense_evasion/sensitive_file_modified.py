"""DefenseEvasion:Runtime/SensitiveFileModified: system logs, audit/logging configuration or shell history were tampered with.

Logs are appended all day, so only destructive operations on system logs count (delete, rename,
link, symlink), plus writes to login records (wtmp/btmp/lastlog/utmp) by anything but the
programs that keep them. Logging and audit configuration counts for every operation. Shell
history counts for everything but the shell's own appends.
"""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import SensitiveFileModified
from vigil.events import FileSystemActivity
from vigil.vocab import LOG_WRITERS, LOGIN_RECORD_WRITERS, base_name, is_shell

SYSTEM_LOGS: Final = frozenset(
    {"/var/log/auth.log", "/var/log/secure", "/var/log/syslog", "/var/log/messages", "/var/log/kern.log",
     "/var/log/daemon.log", "/var/log/cron", "/var/log/cron.log", "/var/log/cloud-init.log", "/var/log/cloud-init-output.log",
     "/var/log/boot.log", "/var/log/dmesg", "/var/log/user.log", "/var/log/faillog", "/var/log/maillog", "/var/log/mail.log"}
)  # fmt: skip
SYSTEM_LOG_DIRS: Final = ("/var/log/audit/", "/var/log/journal/", "/var/log/amazon/ssm/")
LOGIN_RECORDS: Final = frozenset(
    {"/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog", "/var/run/utmp", "/run/utmp"}
)
AUDIT_CONFIG: Final = frozenset({"/etc/rsyslog.conf", "/etc/syslog.conf", "/etc/systemd/journald.conf", "/etc/audit/auditd.conf",
                                 "/etc/audit/audit.rules", "/etc/logrotate.conf"})  # fmt: skip
AUDIT_CONFIG_DIRS: Final = (
    "/etc/audit/",
    "/etc/rsyslog.d/",
    "/etc/syslog-ng/",
    "/etc/systemd/journald.conf.d/",
    "/etc/audisp/",
)
HISTORY_NAMES: Final = frozenset(
    {
        ".bash_history",
        ".zsh_history",
        ".sh_history",
        ".ash_history",
        ".history",
        ".mysql_history",
        ".psql_history",
    }
)


def _history(path: str) -> bool:
    return path.startswith(("/root/", "/home/")) and path.rsplit("/", 1)[-1] in HISTORY_NAMES


class DefenseEvasionSensitiveFileModified(SensitiveFileModified):
    meta = Meta(
        type="DefenseEvasion:Runtime/SensitiveFileModified",
        severity=severity.MEDIUM,
        title="A process tampered with logs, audit configuration or shell history",
        description=(
            "A process deleted, renamed or linked over a system log, rewrote login records, changed logging or audit "
            "configuration, or tampered with a shell history file: the way intruders erase their traces."
        ),
        mitre=("T1070.002", "T1070.003", "T1562.006"),
        runbook=(
            "Check context.filePath and fileOperation; recover logs from your central log store for the period before "
            "eventFirstSeen, and investigate the process tree that did it."
        ),
        false_positives=(
            "Log rotation by tools not in the built-in writer list; administrators clearing their own history.",
        ),
        references=("https://attack.mitre.org/techniques/T1070/",),
    )
    trusted_programs = LOG_WRITERS

    def is_sensitive(self, path: str, event: FileSystemActivity) -> bool:
        if not path.startswith(("/var/", "/etc/", "/run/", "/root/", "/home/")):
            return False
        if path in AUDIT_CONFIG or path.startswith(AUDIT_CONFIG_DIRS):
            return True
        write = event.kind == "file_write"
        if path in LOGIN_RECORDS:
            return not write or base_name(event.process) not in LOGIN_RECORD_WRITERS
        if path in SYSTEM_LOGS or path.startswith(SYSTEM_LOG_DIRS):
            return not write
        if _history(path):
            return not (write and is_shell(event.process))
        return False

    fires: ClassVar = (
        Example("auth.log deleted", (s.file_op(s.proc("/usr/bin/rm", uid=0), "file_unlink", "/var/log/auth.log"),)),
        Example("history symlinked to /dev/null", (s.file_op(s.proc("/usr/bin/ln", uid=0), "file_link", "/root/.bash_history", new_path="/dev/null", symbolic=True),)),
        Example("wtmp rewritten by a script", (s.file_op(s.proc("/usr/bin/python3", uid=0), "file_write", "/var/log/wtmp"),)),
        Example("audit rules changed", (s.file_op(s.proc("/usr/bin/vi", uid=0), "file_write", "/etc/audit/rules.d/audit.rules"),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("rsyslog appending to syslog", (s.file_op(s.proc("/usr/sbin/rsyslogd", uid=0), "file_write", "/var/log/syslog"),)),
        Example("logrotate rotating auth.log", (s.file_op(s.proc("/usr/sbin/logrotate", uid=0), "file_rename", "/var/log/auth.log", new_path="/var/log/auth.log.1"),)),
        Example("bash appending its history", (s.file_op(s.proc("/bin/bash"), "file_write", "/home/ec2-user/.bash_history"),)),
        Example("sshd recording a login", (s.file_op(s.proc("/usr/sbin/sshd", uid=0), "file_write", "/var/log/wtmp"),)),
    )  # fmt: skip
