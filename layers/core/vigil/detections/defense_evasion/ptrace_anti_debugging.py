"""DefenseEvasion:Runtime/PtraceAntiDebugging: a process called ptrace(PTRACE_TRACEME) to block debuggers.

A debugger's child calls TRACEME right before exec (that is how gdb and strace start a program),
so TRACEME under a debugger or tracer is excluded, and so is any TRACEME by a fork of its parent
(a program starting another under its control: ProcessInjection.Ptrace's, as GuardDuty's tester
expects); TRACEME anywhere else is malware making sure no one can attach to it.
"""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import traceme_for_parent
from vigil.events import ProcessActivity
from vigil.vocab import DEBUGGERS, lineage_has

TRACEME: Final = frozenset({"PTRACE_TRACEME", "0"})
_TRACERS: Final = DEBUGGERS | frozenset(
    {"python3", "python", "java", "node", "pytest", "go", "dlv-dap", "code", "gdb-multiarch"}
)


class PtraceAntiDebugging(Detection):
    meta = Meta(
        type="DefenseEvasion:Runtime/PtraceAntiDebugging",
        severity=severity.LOW,
        title="A process used ptrace to prevent debugging",
        description=(
            "A process called ptrace(PTRACE_TRACEME) outside a debugger: a trick malware uses so that analysts cannot "
            "attach a debugger to it."
        ),
        mitre=("T1622",),
        runbook=(
            "Look at the binary (executablePath, executableSha256): legitimate software rarely does this. Collect it for "
            "analysis and check its lineage."
        ),
        false_positives=("Licence-protected commercial software; tracers not in the debugger list.",),
        references=("https://attack.mitre.org/techniques/T1622/",),
    )
    kinds = frozenset({"ptrace"})

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return (
            event.ptrace_request in TRACEME
            and not lineage_has(event.process, _TRACERS)
            and not traceme_for_parent(event)
        )

    fires: ClassVar = (
        Example("a binary traceme-ing itself", (s.inject(s.proc("/tmp/.a/kdmtpfsx", parent=s.proc("/bin/sh", pid=10)), "ptrace", None, request="PTRACE_TRACEME"),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("strace starting a program", (s.inject(s.proc("/usr/bin/ls", parent=s.proc("/usr/bin/strace", "-f", "ls", pid=10)), "ptrace", None, request="PTRACE_TRACEME"),)),
    )  # fmt: skip
