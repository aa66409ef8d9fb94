"""DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite: a process wrote into another with process_vm_writev."""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import process_brief
from vigil.events import ProcessActivity


class ProcessInjectionVirtualMemoryWrite(Detection):
    meta = Meta(
        type="DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite",
        severity=severity.HIGH,
        title="A process injected code with process_vm_writev",
        description=(
            "A process called process_vm_writev to write directly into another process's memory, a code-injection "
            "technique that leaves no file behind."
        ),
        mitre=("T1055",),
        runbook=(
            "Identify the writer and the victim (context.targetProcess); capture the victim's memory, then trace the "
            "writer's origin through its lineage."
        ),
        false_positives=("Checkpoint/restore tools (CRIU) and some debuggers.",),
        references=("https://attack.mitre.org/techniques/T1055/",),
    )
    kinds = frozenset({"process_vm_write"})

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        t = event.target_process
        return t is None or t.pid != event.process.pid

    def dedup_key(self, event: ProcessActivity) -> str:
        t = event.target_process
        return f"{event.process.file.path}|{t.file.path if t else ''}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        t = event.target_process
        return {"targetProcess": process_brief(t)} if t is not None else {}

    fires: ClassVar = (
        Example("a write into sshd", (s.inject(s.proc("/dev/shm/w", uid=0), "process_vm_write", s.SSHD),)),
    )
    near_misses: ClassVar = (
        Example("a process writing to itself", (s.inject(s.proc("/usr/bin/app", pid=77), "process_vm_write", s.proc("/usr/bin/app", pid=77)),)),
    )  # fmt: skip
