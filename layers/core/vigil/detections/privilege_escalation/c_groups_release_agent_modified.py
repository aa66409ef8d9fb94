"""PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified: a cgroup release_agent file was written.

The cgroup v1 ``release_agent`` runs as root on the host when a cgroup empties; a container that
can write it escapes (CVE-2022-0492 and the classic privileged-container escape). systemd sets it
once at boot on the host (pid 1), which is excluded.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import FileSystemActivity


class CGroupsReleaseAgentModified(Detection):
    meta = Meta(
        type="PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified",
        severity=severity.HIGH,
        title="A cgroup release agent was modified",
        description=(
            "A process wrote a cgroup release_agent file, which makes the host kernel run a program of the writer's choice "
            "as root: a container escape."
        ),
        mitre=("T1611",),
        runbook=(
            "Read the release_agent's content and find the program it points to; treat the host as compromised. Identify the "
            "container; drop CAP_SYS_ADMIN and privileged mode from its definition."
        ),
        false_positives=("Init systems other than systemd setting a release agent at boot.",),
        references=(
            "https://nvd.nist.gov/vuln/detail/CVE-2022-0492",
            "https://attack.mitre.org/techniques/T1611/",
        ),
        maturity="stable",
    )
    kinds = frozenset({"file_write", "file_open_sensitive"})

    def match(self, event: FileSystemActivity, ctx: Context) -> bool:
        if not event.file.path.endswith("/release_agent"):
            return False
        if (
            event.kind == "file_open_sensitive"
            and "WR" not in event.open_flags
            and "RDWR" not in event.open_flags
        ):
            return False
        p = event.process
        return not (p.pid == 1 and not p.container_uid)

    def dedup_key(self, event: FileSystemActivity) -> str:
        return event.file.path

    def context(self, event: FileSystemActivity, ctx: Context) -> dict[str, Any]:
        return {"releaseAgentPath": event.file.path}

    fires: ClassVar = (
        Example("a privileged container writing release_agent", (s.file_op(s.proc("/bin/sh", "-c", "echo /cmd > /tmp/cgrp/release_agent", uid=0, container="c0ffee"), "file_write", "/tmp/cgrp/release_agent"),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("systemd at boot", (s.file_op(s.proc("/usr/lib/systemd/systemd", pid=1, uid=0), "file_write", "/sys/fs/cgroup/systemd/release_agent"),)),
        Example("a write to notify_on_release", (s.file_op(s.proc("/bin/sh", uid=0, container="c0ffee"), "file_write", "/tmp/cgrp/x/notify_on_release"),)),
    )  # fmt: skip
