"""Execution:Runtime/MaliciousFileExecuted: an executable whose SHA-256 is on a built-in malware list ran."""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import evidence, example_intel, hash_listed
from vigil.events import ProcessActivity

EICAR = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


class MaliciousFileExecuted(Detection):
    meta = Meta(
        type="Execution:Runtime/MaliciousFileExecuted",
        severity=severity.HIGH,
        title="A known malicious file was executed",
        description=(
            "A process was started from an executable whose SHA-256 hash is on a malware list curated by Vigil "
            "(customer lists produce MaliciousFileExecuted.Custom)."
        ),
        mitre=("T1204.002",),
        runbook=(
            "The hash is in service.evidence (threatFileSha256) and the path in runtimeDetails.context.threatFilePath. "
            "Isolate the instance, collect the file, and find how it arrived and whether it persisted."
        ),
        false_positives=("Test files such as EICAR executed on purpose.",),
        references=("https://attack.mitre.org/techniques/T1204/002/",),
        maturity="stable",
    )
    kinds = frozenset({"process_exec", "memfd_exec"})
    gate = hash_listed  # shared with the other hash-list type: one lookup per exec for both

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        sha = event.process.file.sha256
        if not sha:
            return False
        hit = ctx.intel.match_hash(sha)
        return hit is not None and not hit.indicator.custom

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return {"threatFilePath": event.process.file.path}

    def threat_intel(self, event: ProcessActivity, ctx: Context) -> list[dict[str, Any]]:
        return evidence(ctx.intel.match_hash(event.process.file.sha256))

    fires: ClassVar = (
        Example("the EICAR test file run as a program", (s.exec_(s.proc("/tmp/eicar.com", sha256=EICAR)),)),
    )
    near_misses: ClassVar = (
        Example("an unlisted binary", (s.exec_(s.proc("/usr/bin/ls", sha256="0" * 64)),)),
        Example(
            "a hash on a customer list only (that is the .Custom type)",
            (s.exec_(s.proc("/tmp/tool", sha256="ab" * 32)),),
            also_fires=frozenset({"Execution:Runtime/MaliciousFileExecuted.Custom"}),
            intel=example_intel(custom_hashes="ab" * 32),
        ),
    )
