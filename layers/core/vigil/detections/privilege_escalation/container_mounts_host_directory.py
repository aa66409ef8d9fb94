"""PrivilegeEscalation:Runtime/ContainerMountsHostDirectory: a process in a container mounted a host filesystem.

A mount of a block device (the host's disk) or of a disk filesystem type from inside a container,
by anything but the container runtime setting the container up.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import FileSystemActivity
from vigil.vocab import CONTAINER_RUNTIME_NAMES, base_name

DISK_FS: Final = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "ntfs", "zfs", "f2fs", "jfs", "reiserfs"}
)
_VIRTUAL_DEVS: Final = ("/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/null", "/dev/hugepages")


class ContainerMountsHostDirectory(Detection):
    meta = Meta(
        type="PrivilegeEscalation:Runtime/ContainerMountsHostDirectory",
        severity=severity.MEDIUM,
        title="A container mounted a host filesystem",
        description=(
            "A process inside a container mounted a block device or a disk filesystem: with the host's disk mounted, the "
            "container can read and change host files and escape."
        ),
        mitre=("T1611",),
        runbook=(
            "Identify the container and the device (context.mountSource); check what was read or written under the mount "
            "target. Remove privileged mode and device access from the container's definition."
        ),
        false_positives=("Storage tooling that runs in privileged containers (CSI node plugins).",),
        references=("https://attack.mitre.org/techniques/T1611/",),
    )
    kinds = frozenset({"mount"})

    def match(self, event: FileSystemActivity, ctx: Context) -> bool:
        p = event.process
        if (
            not p.container_uid
            or base_name(p) in CONTAINER_RUNTIME_NAMES
            or p.name in CONTAINER_RUNTIME_NAMES
        ):
            return False
        src = event.mount_source
        block = src.startswith("/dev/") and not src.startswith(_VIRTUAL_DEVS)
        return block or event.fs_type in DISK_FS

    def dedup_key(self, event: FileSystemActivity) -> str:
        return f"{event.process.container_uid}|{event.mount_source}|{event.file.path}"

    def context(self, event: FileSystemActivity, ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {"mountSource": event.mount_source, "mountTarget": event.file.path}
        if event.fs_type:
            out["fileSystemType"] = event.fs_type
        if event.mount_flags:
            out["flags"] = [f for f in event.mount_flags.replace("|", ",").split(",") if f]
        return out

    fires: ClassVar = (
        Example("mounting the host's root disk", (s.mount(s.proc("/usr/bin/mount", "/dev/nvme0n1p1", "/mnt", uid=0, container="c0ffee"), "/dev/nvme0n1p1", "/mnt", "xfs", "MS_RDONLY"),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("runc mounting proc during setup", (s.mount(s.proc("/usr/bin/runc", uid=0, container="c0ffee"), "proc", "/proc", "proc"),)),
        Example("a tmpfs inside a container", (s.mount(s.proc("/usr/bin/mount", uid=0, container="c0ffee"), "tmpfs", "/scratch", "tmpfs"),)),
        Example("mounting a disk on the host", (s.mount(s.proc("/usr/bin/mount", uid=0), "/dev/xvdf", "/data", "ext4"),)),
    )  # fmt: skip
