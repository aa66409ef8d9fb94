"""Persistence:Runtime/SensitiveFileModified: SSH keys, accounts, scheduled tasks, services or shell startup files changed.

Excluded as GuardDuty's "legitimate admin activity": package managers and configuration
management, and each file's designated tool (account tools for passwd/shadow, crontab for cron
spools, systemctl for unit links). Everything else writing there is how persistence is planted.
"""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import SensitiveFileModified
from vigil.events import FileSystemActivity

EXACT: Final = frozenset(
    {"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/crontab", "/etc/anacrontab", "/etc/rc.local",
     "/etc/rc.d/rc.local", "/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/environment", "/etc/zsh/zshrc",
     "/etc/zshrc", "/etc/zshenv", "/etc/ssh/sshd_config", "/etc/ssh/sshrc", "/etc/inittab"}
)  # fmt: skip
PREFIXES: Final = (
    "/etc/cron.d/", "/etc/cron.hourly/", "/etc/cron.daily/", "/etc/cron.weekly/", "/etc/cron.monthly/", "/var/spool/cron/",
    "/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/", "/etc/systemd/user/", "/etc/init.d/",
    "/etc/profile.d/", "/etc/ssh/sshd_config.d/", "/etc/update-motd.d/", "/etc/xdg/autostart/", "/etc/rc.d/init.d/",
)  # fmt: skip
HOME_STARTUP: Final = frozenset(
    {
        ".bashrc",
        ".profile",
        ".bash_profile",
        ".bash_login",
        ".bash_logout",
        ".zshrc",
        ".zprofile",
        ".zshenv",
        ".zlogin",
    }
)
SSH_FILES: Final = ("/.ssh/authorized_keys", "/.ssh/authorized_keys2", "/.ssh/rc")
ACCOUNT_TOOLS: Final = frozenset(
    {"useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "passwd", "chpasswd", "chage", "chsh", "chfn",
     "vipw", "vigr", "gpasswd", "newusers", "pwconv", "grpconv", "pwunconv", "grpunconv", "adduser", "deluser", "addgroup",
     "delgroup", "lusermod", "crontab", "systemctl", "systemd", "systemd-sysv-install", "update-rc.d", "chkconfig"}
)  # fmt: skip


def _home_file(path: str) -> bool:
    if not path.startswith(("/root/", "/home/")):
        return False
    if path.endswith(SSH_FILES):
        return True
    head, _, name = path.rpartition("/")
    return name in HOME_STARTUP and (head == "/root" or head.count("/") == 2)


class PersistenceSensitiveFileModified(SensitiveFileModified):
    meta = Meta(
        type="Persistence:Runtime/SensitiveFileModified",
        severity=severity.MEDIUM,
        title="A process modified a file used for persistence",
        description=(
            "A process wrote, renamed, linked or deleted a file that controls who can log in or what runs automatically: "
            "SSH authorized keys and server configuration, accounts (passwd/shadow/group), cron, systemd units, init "
            "scripts or shell start-up files."
        ),
        mitre=("T1098.004", "T1136.001", "T1053.003", "T1543.002", "T1546.004"),
        runbook=(
            "Diff context.filePath against a known-good copy (image, configuration management); remove what was added and "
            "investigate the writing process's lineage."
        ),
        false_positives=(
            "Administrators editing these files by hand; deployment tools not in the built-in list.",
        ),
        references=("https://attack.mitre.org/tactics/TA0003/",),
    )
    trusted_programs = ACCOUNT_TOOLS

    def is_sensitive(self, path: str, event: FileSystemActivity) -> bool:
        return path in EXACT or path.startswith(PREFIXES) or _home_file(path)

    fires: ClassVar = (
        Example("an SSH key appended by a script", (s.file_op(s.proc("/bin/bash", "-c", "echo ssh-ed25519 AAAA... >> /root/.ssh/authorized_keys", uid=0), "file_write", "/root/.ssh/authorized_keys"),)),
        Example("a cron file dropped", (s.file_op(s.proc("/usr/bin/python3", uid=0), "file_write", "/etc/cron.d/.sysupdate"),)),
        Example("a unit renamed into place", (s.file_op(s.proc("/usr/bin/mv", uid=0), "file_rename", "/tmp/x.service", new_path="/etc/systemd/system/kworker.service"),)),
        Example("passwd replaced by a non-account tool", (s.file_op(s.proc("/usr/bin/sed", "-i", "s/x:1000/x:0/", "/etc/passwd", uid=0), "file_write", "/etc/passwd"),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("useradd updating passwd", (s.file_op(s.proc("/usr/sbin/useradd", "deploy", uid=0), "file_write", "/etc/passwd"),)),
        Example("apt installing a unit", (s.file_op(s.proc("/usr/bin/dpkg", uid=0, parent=s.proc("/usr/bin/apt-get", pid=9, uid=0)), "file_write", "/lib/systemd/system/nginx.service"),)),
        Example("ssh client updating known_hosts", (s.file_op(s.proc("/usr/bin/ssh"), "file_write", "/home/ec2-user/.ssh/known_hosts"),)),
        Example("a project's .profile is not a home start-up file", (s.file_op(s.proc("/usr/bin/vim"), "file_write", "/home/ec2-user/src/app/.profile"),)),
    )  # fmt: skip
