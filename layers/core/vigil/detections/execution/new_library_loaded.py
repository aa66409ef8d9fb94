"""Execution:Runtime/NewLibraryLoaded: a process in a container loaded a library created after the container started.

Consumes Module Activity events with ``load_type`` ``mmap``/``dlopen``/``ld_preload`` (a shared
object mapped into a process). Same baseline as NewBinaryExecuted: first load per library per
container. Needs library-load telemetry from the agent (see docs/detections.md).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Example, Meta
from vigil.detections._common import FirstSeenOnInstance, iso
from vigil.events import ModuleActivity
from vigil.vocab import container_started_ns

LIBRARY_LOADS: Final = frozenset({"mmap", "dlopen", "ld_preload"})
_TTL_S: Final = 30 * 86_400
_SEC: Final = 1_000_000_000


def _new_library(event: ModuleActivity) -> bool:
    m = event.module
    if m.load_type not in LIBRARY_LOADS or not m.file.modified_time:
        return False
    p = event.process
    return bool(p.container_uid) and m.file.modified_time > container_started_ns(p) > 0


def _key(event: ModuleActivity) -> str:
    f = event.module.file
    return f"newlib|{event.device.instance_uid}|{event.process.container_uid}|{f.sha256 or f.path}"


class NewLibraryLoaded(FirstSeenOnInstance):
    meta = Meta(
        type="Execution:Runtime/NewLibraryLoaded",
        severity=severity.MEDIUM,
        title="A newly created or modified library was loaded",
        description=(
            "A process in a container loaded a shared library that was created or modified after the container started: "
            "containers should be immutable, so the library was likely dropped to hijack the process."
        ),
        mitre=("T1574.006", "T1129"),
        runbook=(
            "Collect the library (libraryPath) and find what wrote it; check LD_PRELOAD and /etc/ld.so.preload in the "
            "container. Rebuild the container from its image."
        ),
        false_positives=("Images that compile native extensions at start-up.",),
        references=("https://attack.mitre.org/techniques/T1574/006/",),
    )
    kinds = frozenset({"module_load"})
    baseline_ttl_s = _TTL_S

    def candidate(self, event: ModuleActivity) -> bool:
        return _new_library(event)

    def baseline_key(self, event: ModuleActivity) -> str:
        return _key(event)

    def dedup_key(self, event: ModuleActivity) -> str:
        return event.module.file.path

    def context(self, event: ModuleActivity, ctx: Context) -> dict[str, Any]:
        return {"libraryPath": event.module.file.path, "modifiedAt": iso(event.module.file.modified_time)}

    _app = s.proc(
        "/usr/bin/node", "server.js", pid=400, uid=1000, container="beef01", created_time=s.T0 - 3600 * _SEC
    )
    fires: ClassVar = (
        Example(
            "a library dropped in /tmp and loaded by a container process",
            (s.library_load(_app, "/tmp/.l/libhook.so", modified_time=s.T0 - 30 * _SEC),),
        ),
    )
    near_misses: ClassVar = (
        Example("an image library", (s.library_load(_app, "/usr/lib/libssl.so.3", modified_time=s.T0 - 86_400 * _SEC),)),
        Example(
            "a new library on the host (not a container)",
            (s.library_load(s.proc("/usr/bin/python3", created_time=s.T0 - 3600 * _SEC), "/tmp/x.so",
                            modified_time=s.T0 - 30 * _SEC),),
        ),
    )  # fmt: skip
