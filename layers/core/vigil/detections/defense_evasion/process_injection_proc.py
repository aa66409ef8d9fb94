"""DefenseEvasion:Runtime/ProcessInjection.Proc: a process wrote into another process's memory through /proc/<pid>/mem."""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import process_brief
from vigil.events import ProcessActivity


def _other_process(event: ProcessActivity) -> bool:
    t = event.target_process
    if event.target_path.startswith(("/proc/self/", "/proc/thread-self/")):
        return False
    if t is None:
        return True  # the agent could not resolve the victim: still a write into some process's memory
    return t.pid != event.process.pid and (not t.uid or t.uid != event.process.uid)


class ProcessInjectionProc(Detection):
    meta = Meta(
        type="DefenseEvasion:Runtime/ProcessInjection.Proc",
        severity=severity.HIGH,
        title="A process injected code through the proc filesystem",
        description=(
            "A process opened another process's /proc/<pid>/mem for writing: code injection that hides a payload inside a "
            "legitimate process."
        ),
        mitre=("T1055.009",),
        runbook=(
            "Identify the injector (runtimeDetails.process) and the victim (context.targetProcess); capture the victim's "
            "memory before restarting it, then look for how the injector arrived."
        ),
        false_positives=("Debuggers and live-patching tools that write process memory through procfs.",),
        references=("https://attack.mitre.org/techniques/T1055/009/",),
        maturity="stable",
    )
    kinds = frozenset({"proc_mem_write"})

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _other_process(event)

    def dedup_key(self, event: ProcessActivity) -> str:
        t = event.target_process
        return f"{event.process.file.path}|{t.file.path if t else event.target_path}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        t = event.target_process
        return {"targetProcess": process_brief(t)} if t is not None else {}

    fires: ClassVar = (
        Example(
            "a dropper writing into sshd's memory",
            (s.inject(s.proc("/tmp/.i/inj", uid=0), "proc_mem_write", s.SSHD, path="/proc/812/mem"),),
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a process patching its own memory",
            (s.inject(s.proc("/usr/bin/java", uid=0), "proc_mem_write", None, path="/proc/self/mem"),),
        ),
    )
