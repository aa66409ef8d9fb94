"""Execution:Runtime/NewBinaryExecuted: a binary created or modified after its container started was executed.

Containers should be immutable: a binary that appeared after start was dropped there. The
container's start is approximated by its oldest process in the lineage (``container_started_ns``).
Outside containers we only consider binaries dropped into /dev/shm or under a hidden name in
/tmp or /var/tmp after their parent started (compile-and-run in visible build directories is normal
on the host; GuardDuty's type is container-only). Baseline: one finding per binary per container (State: first seen), so a dropped
tool that runs in a loop is one finding with a count, not a storm.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Example, Meta
from vigil.detections._common import FirstSeenOnInstance, iso
from vigil.events import ProcessActivity
from vigil.vocab import container_started_ns

_WRITABLE: Final = ("/tmp/", "/var/tmp/", "/dev/shm/")
_BUILD_DIRS: Final = ("/tmp/go-build", "/tmp/cargo-install", "/tmp/pip-", "/tmp/bazel", "/tmp/tmp")
_TTL_S: Final = 30 * 86_400
_SEC: Final = 1_000_000_000


def _new_binary(event: ProcessActivity) -> bool:
    p = event.process
    mtime = p.file.modified_time
    if not mtime:
        return False
    if p.container_uid:
        return mtime > container_started_ns(p) > 0
    path = p.file.path
    # on the host, only where droppers hide: shared memory or a hidden name under a writable dir
    # (compilers write visible paths; build trees run what they just built all day)
    if not path.startswith(_WRITABLE) or path.startswith(_BUILD_DIRS):
        return False
    if not (path.startswith("/dev/shm/") or "/." in path):
        return False
    parent = p.parent_process
    return parent is not None and parent.created_time > 0 and mtime > parent.created_time


def _key(event: ProcessActivity) -> str:
    p = event.process
    return f"newbin|{event.device.instance_uid}|{p.container_uid}|{p.file.sha256 or p.file.path}"


class NewBinaryExecuted(FirstSeenOnInstance):
    meta = Meta(
        type="Execution:Runtime/NewBinaryExecuted",
        severity=severity.MEDIUM,
        title="A newly created or modified binary was executed",
        description=(
            "A process ran an executable that was created or modified after its container started (or, on the host, "
            "dropped into a world-writable directory moments before it ran): typical of a downloaded payload."
        ),
        mitre=("T1105", "T1204.002"),
        runbook=(
            "Collect the binary (executablePath, executableSha256) and check it against malware scanners; find what wrote it "
            "(downloads or package installs in the lineage). Rebuild the container from its image if it was not expected."
        ),
        false_positives=(
            "Containers that install or compile software at start-up (anti-pattern, but common in development images).",
        ),
        references=("https://attack.mitre.org/techniques/T1105/",),
    )
    kinds = frozenset({"process_exec"})
    baseline_ttl_s = _TTL_S

    def candidate(self, event: ProcessActivity) -> bool:
        return _new_binary(event)

    def baseline_key(self, event: ProcessActivity) -> str:
        return _key(event)

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return {"modifiedAt": iso(event.process.file.modified_time)}

    _shell = s.proc("/bin/sh", pid=300, uid=0, container="c0ffee", created_time=s.T0 - 3600 * _SEC)
    fires: ClassVar = (
        Example(
            "a binary downloaded into a running container",
            (s.exec_(s.proc("/usr/local/bin/kworkerd", pid=310, uid=0, container="c0ffee", parent=_shell,
                            modified_time=s.T0 - 60 * _SEC)),),
        ),
        Example(
            "a payload dropped in /dev/shm and run on the host",
            (s.exec_(s.proc("/dev/shm/.x", parent=s.proc("/bin/bash", pid=500, created_time=s.T0 - 120 * _SEC),
                            modified_time=s.T0 - 5 * _SEC)),),
        ),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example(
            "an image binary older than the container",
            (s.exec_(s.proc("/usr/bin/python3", pid=311, uid=0, container="c0ffee", parent=_shell,
                            modified_time=s.T0 - 86_400 * _SEC)),),
        ),
        Example(
            "a program compiled in /tmp and run",
            (s.exec_(s.proc("/tmp/build/hello", parent=s.proc("/bin/bash", pid=500, created_time=s.T0 - 120 * _SEC),
                            modified_time=s.T0 - 5 * _SEC)),),
        ),
        Example(
            "a host binary updated by a package install",
            (s.exec_(s.proc("/usr/bin/git", parent=s.proc("/bin/bash", pid=500, created_time=s.T0 - 120 * _SEC),
                            modified_time=s.T0 - 5 * _SEC)),),
        ),
    )  # fmt: skip
