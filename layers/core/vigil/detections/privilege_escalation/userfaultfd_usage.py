"""PrivilegeEscalation:Runtime/UserfaultfdUsage: a process used the userfaultfd system call.

userfaultfd lets a process pause the kernel on a page fault, which kernel exploits use to widen
race windows. Legitimate users are virtual-machine and checkpoint tools (QEMU, CRIU), excluded.
"""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import ProcessActivity
from vigil.vocab import base_name

_EXPECTED: Final = ("qemu-system-", "qemu-kvm", "criu", "firecracker", "cloud-hypervisor", "crosvm")


class UserfaultfdUsage(Detection):
    meta = Meta(
        type="PrivilegeEscalation:Runtime/UserfaultfdUsage",
        severity=severity.MEDIUM,
        title="A process used userfaultfd",
        description=(
            "A process called userfaultfd, a system call kernel exploits use to control the timing of page faults and win "
            "race conditions on the way to root."
        ),
        mitre=("T1068",),
        runbook=(
            "Look at the binary and its lineage: outside VM and checkpoint tooling this is rare. Check for a root shell or "
            "ElevationToRoot findings that followed; patch the kernel."
        ),
        false_positives=("Live-migration, checkpoint/restore and garbage collectors using userfaultfd.",),
        references=("https://attack.mitre.org/techniques/T1068/",),
    )
    kinds = frozenset({"userfaultfd"})

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return not base_name(event.process).startswith(_EXPECTED)

    fires: ClassVar = (
        Example("an exploit using userfaultfd", (s.syscall(s.proc("/tmp/exp", uid=1000), "userfaultfd"),)),
    )
    near_misses: ClassVar = (
        Example(
            "qemu live migration", (s.syscall(s.proc("/usr/bin/qemu-system-x86_64", uid=0), "userfaultfd"),)
        ),
    )
