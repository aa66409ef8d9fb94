"""PrivilegeEscalation:Runtime/RuncContainerEscape: the runc binary was overwritten, or a process started in a leaked runc fd.

CVE-2019-5736: a container process overwrites the host's runc through /proc/self/exe.
CVE-2024-21626 (Leaky Vessels): a container process starts with its working directory under
/proc/self/fd/<n>, a host directory fd leaked by runc.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import FileSystemActivity, ProcessActivity
from vigil.vocab import RUNC_BINARIES, by_package_manager

_LEAKED_FD_CWD: Final = re.compile(r"^/proc/(?:self|thread-self|\d+)/fd/\d+")


def _runc_path(event: Any) -> str:
    if event.kind == "process_exec":
        p = event.process
        return (
            p.working_directory
            if p.container_uid
            and p.working_directory.startswith("/proc/")
            and _LEAKED_FD_CWD.match(p.working_directory)
            else ""
        )
    path: str = event.file.path
    if path in RUNC_BINARIES and not by_package_manager(event.process):
        return path
    return ""


class RuncContainerEscape(Detection):
    meta = Meta(
        type="PrivilegeEscalation:Runtime/RuncContainerEscape",
        severity=severity.HIGH,
        title="A runc container escape was attempted",
        description=(
            "The host's runc binary was modified by something other than a package manager (CVE-2019-5736), or a container "
            "process started with its working directory in a file descriptor leaked by runc (CVE-2024-21626): attempts to "
            "break out of a container onto the host."
        ),
        mitre=("T1611", "T1068"),
        runbook=(
            "Treat the host as compromised: isolate it, compare runc's hash with the package's, and upgrade runc/containerd. "
            "Identify the container and image that made the attempt."
        ),
        false_positives=("Manual runc upgrades copied into place outside the package manager.",),
        references=(
            "https://nvd.nist.gov/vuln/detail/CVE-2019-5736",
            "https://nvd.nist.gov/vuln/detail/CVE-2024-21626",
        ),
    )
    kinds = frozenset({"process_exec", "file_write", "file_rename", "file_unlink"})

    def match(self, event: ProcessActivity | FileSystemActivity, ctx: Context) -> bool:
        return _runc_path(event) != ""

    def dedup_key(self, event: Any) -> str:
        return _runc_path(event)

    def context(self, event: Any, ctx: Context) -> dict[str, Any]:
        if event.kind == "process_exec":
            return {"runcBinaryPath": "runc"}
        return {"runcBinaryPath": event.file.path}

    fires: ClassVar = (
        Example("a container process overwriting runc", (s.file_op(s.proc("/proc/self/exe", uid=0, container="c0ffee"), "file_write", "/usr/bin/runc"),)),
        Example("a process started in a leaked fd", (s.exec_(s.proc("/bin/sh", uid=0, container="c0ffee", cwd="/proc/self/fd/8")),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("apt upgrading runc", (s.file_op(s.proc("/usr/bin/dpkg", uid=0, parent=s.proc("/usr/bin/apt-get", pid=9, uid=0)), "file_write", "/usr/bin/runc"),)),
        Example("a container process in an ordinary directory", (s.exec_(s.proc("/bin/sh", uid=0, container="c0ffee", cwd="/app")),)),
    )  # fmt: skip
