"""PrivilegeEscalation:Runtime/SensitiveFileModified: sudoers, PAM, polkit, ld.so.preload or other authorization files changed.

Excluded: package managers, configuration management, and the designated editors (visudo for
sudoers, pam-auth-update/authselect for PAM).
"""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import SensitiveFileModified
from vigil.events import FileSystemActivity

EXACT: Final = frozenset(
    {
        "/etc/sudoers",
        "/etc/ld.so.preload",
        "/etc/doas.conf",
        "/etc/pam.conf",
        "/etc/login.defs",
        "/etc/security/opasswd",
    }
)
PREFIXES: Final = (
    "/etc/sudoers.d/", "/etc/pam.d/", "/etc/security/", "/etc/polkit-1/", "/usr/share/polkit-1/rules.d/",
    "/lib/security/", "/lib64/security/", "/usr/lib/security/", "/usr/lib64/security/",
    "/lib/x86_64-linux-gnu/security/", "/usr/lib/x86_64-linux-gnu/security/", "/lib/aarch64-linux-gnu/security/",
    "/usr/lib/aarch64-linux-gnu/security/",
)  # fmt: skip
EDITORS: Final = frozenset({"visudo", "pam-auth-update", "authselect", "authconfig", "pam-config"})


class PrivilegeEscalationSensitiveFileModified(SensitiveFileModified):
    meta = Meta(
        type="PrivilegeEscalation:Runtime/SensitiveFileModified",
        severity=severity.MEDIUM,
        title="A process modified an authorization file",
        description=(
            "A process wrote, renamed, linked or deleted a file that decides who may become root or how authentication "
            "works: sudoers, PAM configuration or modules, polkit rules, /etc/ld.so.preload."
        ),
        mitre=("T1548.003", "T1556.003", "T1574.006"),
        runbook=(
            "Diff context.filePath against a known-good copy; revert additions (NOPASSWD rules, pam_exec lines, preload "
            "entries) and investigate the writing process's lineage."
        ),
        false_positives=("Administrators editing sudoers with an editor other than visudo.",),
        references=(
            "https://attack.mitre.org/techniques/T1548/003/",
            "https://attack.mitre.org/techniques/T1556/003/",
        ),
    )
    trusted_programs = EDITORS

    def is_sensitive(self, path: str, event: FileSystemActivity) -> bool:
        return path in EXACT or path.startswith(PREFIXES)

    fires: ClassVar = (
        Example("a sudoers drop-in written by a shell", (s.file_op(s.proc("/bin/bash", uid=0), "file_write", "/etc/sudoers.d/90-backdoor"),)),
        Example("ld.so.preload created", (s.file_op(s.proc("/tmp/.r/inst", uid=0), "file_write", "/etc/ld.so.preload"),)),
        Example("a PAM module replaced", (s.file_op(s.proc("/usr/bin/cp", uid=0), "file_rename", "/tmp/pam_unix.so", new_path="/lib/x86_64-linux-gnu/security/pam_unix.so"),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("visudo editing sudoers", (s.file_op(s.proc("/usr/sbin/visudo", uid=0), "file_rename", "/etc/sudoers.tmp", new_path="/etc/sudoers"),)),
        Example("an unrelated file in /etc", (s.file_op(s.proc("/usr/bin/vim", uid=0), "file_write", "/etc/hosts"),)),
    )  # fmt: skip
