"""Execution:Runtime/MaliciousFileExecuted.Custom: an executable whose SHA-256 is on a customer threat list ran."""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import evidence, example_intel, hash_listed
from vigil.events import ProcessActivity

_HASH = "3f" * 32
_LISTS = example_intel(custom_hashes=_HASH)


class MaliciousFileExecutedCustom(Detection):
    meta = Meta(
        type="Execution:Runtime/MaliciousFileExecuted.Custom",
        severity=severity.HIGH,
        title="A file on a custom threat list was executed",
        description=(
            "A process was started from an executable whose SHA-256 hash is on one of your threat lists "
            "(the list's name is in service.evidence.threatIntelligenceDetails)."
        ),
        mitre=("T1204.002",),
        runbook=(
            "Check which of your lists matched and why the hash is there; isolate the instance, collect the file, and find "
            "how it arrived."
        ),
        false_positives=("Stale or over-broad entries on your own lists.",),
        references=("https://attack.mitre.org/techniques/T1204/002/",),
    )
    kinds = frozenset({"process_exec", "memfd_exec"})
    gate = hash_listed  # shared with the other hash-list type: one lookup per exec for both

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        sha = event.process.file.sha256
        if not sha:
            return False
        hit = ctx.intel.match_hash(sha)
        return hit is not None and hit.indicator.custom

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return {"threatFilePath": event.process.file.path}

    def threat_intel(self, event: ProcessActivity, ctx: Context) -> list[dict[str, Any]]:
        return evidence(ctx.intel.match_hash(event.process.file.sha256))

    fires: ClassVar = (
        Example(
            "a listed tool run from /tmp", (s.exec_(s.proc("/tmp/.t/agent", sha256=_HASH)),), intel=_LISTS
        ),
    )
    near_misses: ClassVar = (
        Example("another hash", (s.exec_(s.proc("/tmp/.t/agent", sha256="3e" * 32)),), intel=_LISTS),
    )
