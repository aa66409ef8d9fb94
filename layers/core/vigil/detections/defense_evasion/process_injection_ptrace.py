"""DefenseEvasion:Runtime/ProcessInjection.Ptrace: a process injected code into another with ptrace.

The agent reports ptrace requests that write (POKETEXT/POKEDATA/POKEUSER, SETREGS), attaches and
TRACEME. An attach alone is how debuggers and tracers start, so of those only writes count; and a
TRACEME by a fork of its parent (the parent starts a program under its control, then reads and
writes it: the GuardDuty tester's ptrace check, PTRACE_TRACEME in the child, PTRACE_PEEKUSER from
the parent). Known debuggers in system paths are excluded (a renamed copy elsewhere is not).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import process_brief, traceme_for_parent
from vigil.events import ProcessActivity
from vigil.vocab import DEBUGGERS, base_name

WRITE_REQUESTS: Final = frozenset(
    {"PTRACE_POKETEXT", "PTRACE_POKEDATA", "PTRACE_POKEUSER", "PTRACE_SETREGS", "PTRACE_SETFPREGS", "PTRACE_SETREGSET",
     "4", "5", "6", "13"}
)  # fmt: skip
_SYSTEM_DIRS: Final = (
    "/usr/bin/",
    "/usr/sbin/",
    "/bin/",
    "/sbin/",
    "/usr/local/bin/",
    "/usr/libexec/",
    "/opt/",
)


def _debugger(event: ProcessActivity) -> bool:
    p = event.process
    return base_name(p) in DEBUGGERS and p.file.path.startswith(_SYSTEM_DIRS)


class ProcessInjectionPtrace(Detection):
    meta = Meta(
        type="DefenseEvasion:Runtime/ProcessInjection.Ptrace",
        severity=severity.MEDIUM,
        title="A process injected code with ptrace",
        description=(
            "A process used ptrace to write into another process's memory or registers: code injection that runs a "
            "payload inside a legitimate process."
        ),
        mitre=("T1055.008",),
        runbook=(
            "Identify the injector and the victim (context.targetProcess). If no one was debugging, capture the victim's "
            "memory, then investigate the injector's origin."
        ),
        false_positives=("Debuggers run from unusual paths; profilers that patch code.",),
        references=("https://attack.mitre.org/techniques/T1055/008/",),
    )
    kinds = frozenset({"ptrace"})

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        if traceme_for_parent(event):
            return not _debugger(event)  # the fork runs the tracer's executable
        if event.ptrace_request not in WRITE_REQUESTS:
            return False
        t = event.target_process
        if t is not None and t.pid == event.process.pid:
            return False
        return not _debugger(event)

    def dedup_key(self, event: ProcessActivity) -> str:
        t = event.target_process
        return f"{event.process.file.path}|{t.file.path if t else ''}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        t = event.target_process
        return {"targetProcess": process_brief(t)} if t is not None else {}

    _INJECTOR: ClassVar = s.proc("/tmp/ptrace", pid=5000, uid=0, parent=s.LOGIN_SHELL)
    fires: ClassVar = (
        Example(
            "the GuardDuty tester's check: a fork of the injector calls TRACEME for its parent, then execs ls",
            (s.inject(s.proc("/tmp/ptrace", pid=5001, uid=0, parent=_INJECTOR), "ptrace", _INJECTOR, request="PTRACE_TRACEME"),
             s.exec_(s.proc("/usr/bin/ls", pid=5001, uid=0, parent=_INJECTOR))),
        ),
        Example(
            "an injector poking code into a web server",
            (s.inject(s.proc("/tmp/.p/linux-inject", uid=0), "ptrace", s.proc("/usr/sbin/nginx", pid=900, uid=33),
                      request="PTRACE_POKETEXT"),),
        ),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example(
            "gdb setting a breakpoint",
            (s.inject(s.proc("/usr/bin/gdb", "-p", "900"), "ptrace", s.proc("/usr/bin/myapp", pid=900), request="PTRACE_POKETEXT"),),
        ),
        Example(
            "strace starting a program (its fork calls TRACEME)",
            (s.inject(s.proc("/usr/bin/strace", pid=5101, parent=s.proc("/usr/bin/strace", "ls", pid=5100)), "ptrace",
                      s.proc("/usr/bin/strace", "ls", pid=5100), request="PTRACE_TRACEME"),),
        ),
        Example(
            "a tracer attaching (no write)",
            (s.inject(s.proc("/tmp/x"), "ptrace", s.proc("/usr/bin/myapp", pid=900), request="PTRACE_ATTACH"),),
        ),
    )  # fmt: skip
