"""CredentialAccess:Runtime/SensitiveFileRead (Vigil-specific): /etc/shadow read by an unexpected program.

The agent reports reads of the password-hash files (``file_open_sensitive``). Authentication and
account programs read them all day (sshd, login, su, sudo, passwd, unix_chkpwd, useradd ...), and
so do package maintainer scripts; any other reader is dumping hashes to crack. High when a web/app
server or cron child reads them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import FileSystemActivity
from vigil.vocab import base_name, by_package_manager, session

HASH_FILES: Final = frozenset(
    {"/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/security/opasswd"}
)
AUTH_PROGRAMS: Final = frozenset(
    {"sshd", "sshd-session", "login", "su", "sudo", "sudoedit", "passwd", "unix_chkpwd", "chage", "chpasswd", "chsh",
     "chfn", "useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "gpasswd", "newusers", "vipw", "vigr",
     "pwck", "grpck", "pwconv", "grpconv", "pwunconv", "grpunconv", "adduser", "deluser", "expiry", "cron", "crond",
     "systemd", "systemd-logind", "systemd-homed", "polkitd", "polkit-agent-helper-1", "gdm-session-worker", "lightdm",
     "sssd", "nscd", "accounts-daemon", "runuser", "newgrp", "shadowconfig", "cockpit-session", "xrdp-sesman", "dropbear",
     "vsftpd", "proftpd", "dovecot", "saslauthd", "lastlog", "faillock", "pam_timestamp_check", "unix_update", "doas",
     "pkexec", "ksu", "screen", "vlock", "xscreensaver", "i3lock", "aide", "tripwire", "lynis"}
)  # fmt: skip


class SensitiveFileRead(Detection):
    meta = Meta(
        type="CredentialAccess:Runtime/SensitiveFileRead",
        severity=severity.MEDIUM,
        title="A password-hash file was read by an unexpected program",
        description=(
            "A process other than the system's authentication and account programs opened /etc/shadow or /etc/gshadow "
            "for reading: the password hashes are being collected to crack offline. Vigil-specific type."
        ),
        mitre=("T1003.008",),
        runbook=(
            "Look at the reading process and its lineage (runtimeDetails.process). Assume the hashes are known: rotate the "
            "passwords of every local account with one, and look for how the reader got root."
        ),
        false_positives=(
            "Backup and integrity tools not in the built-in list (add them by suppression rule).",
        ),
        references=("https://attack.mitre.org/techniques/T1003/008/",),
    )
    kinds = frozenset({"file_open_sensitive"})

    def match(self, event: FileSystemActivity, ctx: Context) -> bool:
        p = event.process
        return (
            event.success
            and event.file.path in HASH_FILES
            and base_name(p) not in AUTH_PROGRAMS
            and not by_package_manager(p)
        )

    def severity(self, event: FileSystemActivity) -> float:
        return severity.HIGH if session(event.process) == "service" else severity.MEDIUM

    def dedup_key(self, event: FileSystemActivity) -> str:
        return f"{event.file.path}|{base_name(event.process)}"

    def context(self, event: FileSystemActivity, ctx: Context) -> dict[str, Any]:
        return {"fileOperation": "Read", "filePath": event.file.path}

    fires: ClassVar = (
        Example("a python script reads /etc/shadow", (s.file_op(s.proc("/usr/bin/python3", "/tmp/.h.py", uid=0), "file_open_sensitive", "/etc/shadow"),)),
        Example("cat from a web shell (High)", (s.file_op(s.proc("/usr/bin/cat", "x", uid=0, parent=s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33)), "file_open_sensitive", "/etc/gshadow"),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("sshd checking a password", (s.file_op(s.proc("/usr/sbin/sshd", "-D", uid=0), "file_open_sensitive", "/etc/shadow"),)),
        Example("apt's debconf reading it", (s.file_op(s.proc("/usr/bin/perl", "-w", "/usr/sbin/dpkg-preconfigure", uid=0, parent=s.proc("/usr/bin/apt-get", "install", "x", pid=9, uid=0)), "file_open_sensitive", "/etc/shadow"),)),
    )  # fmt: skip
