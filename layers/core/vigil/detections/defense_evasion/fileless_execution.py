"""DefenseEvasion:Runtime/FilelessExecution: code executed from memory (memfd) or a deleted file."""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import ProcessActivity

# runc re-executes itself from a sealed memfd (CVE-2019-5736 hardening): expected, not fileless malware.
_BENIGN_MEMFD_PREFIXES = ("memfd:runc_cloned", "/memfd:runc_cloned", "runc_cloned")


def _in_memory(event: ProcessActivity) -> bool:
    p = event.process
    if event.kind == "memfd_exec":
        return not event.memfd_name.startswith(_BENIGN_MEMFD_PREFIXES)
    path = p.file.path
    if path.startswith(("memfd:", "/memfd:")):
        return not path.startswith(_BENIGN_MEMFD_PREFIXES)
    return p.exe_deleted


class FilelessExecution(Detection):
    meta = Meta(
        type="DefenseEvasion:Runtime/FilelessExecution",
        severity=severity.MEDIUM,
        title="A process executed code from memory",
        description=(
            "A process was started from an anonymous in-memory file (memfd_create) or from an executable that was deleted "
            "from disk, a technique that leaves no file for scanners to find."
        ),
        mitre=("T1620", "T1027"),
        runbook=(
            "Capture the process memory if your tooling allows, note runtimeDetails.process and its parent, and look for the "
            "loader (download-and-run commands, interpreter one-liners) in the lineage."
        ),
        false_positives=(
            "JIT runtimes and self-re-executing binaries (runc is excluded); software updates replacing a running binary.",
        ),
        references=("https://attack.mitre.org/techniques/T1620/",),
    )
    kinds = frozenset({"process_exec", "memfd_exec"})

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _in_memory(event)

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        region = event.memfd_name or event.process.file.path
        return {"memoryRegions": [region]} if region else {}

    fires: ClassVar = (
        Example("exec of a memfd", (s.memfd_exec(s.proc("memfd:payload", "-x"), "payload"),)),
        Example("exec of a deleted binary", (s.exec_(s.proc("/tmp/.cache/kworker", exe_deleted=True)),)),
    )
    near_misses: ClassVar = (
        Example(
            "runc's cloned binary",
            (s.memfd_exec(s.proc("memfd:runc_cloned:/proc/self/exe", "init"), "runc_cloned:/proc/self/exe"),),
        ),
        Example("an ordinary binary", (s.exec_(s.proc("/usr/bin/ls")),)),
    )
