"""DefenseEvasion:Runtime/ProcessInjection.Ptrace: a process injected code into another with ptrace.

The agent reports ptrace requests that write (POKETEXT/POKEDATA/POKEUSER, SETREGS) and attaches.
An attach alone is how debuggers and tracers start, so only writes count, and known debuggers in
system paths are excluded (a renamed copy elsewhere is not).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import process_brief
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

    fires: ClassVar = (
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
            "a tracer attaching (no write)",
            (s.inject(s.proc("/tmp/x"), "ptrace", s.proc("/usr/bin/myapp", pid=900), request="PTRACE_ATTACH"),),
        ),
    )  # fmt: skip
