"""DefenseEvasion:Runtime/KernelModuleLoaded: a kernel module was loaded other than by the system's module loader.

Modules loaded by modprobe/kmod/udev/systemd-modules-load from the kernel's own module tree are
how Linux boots and hot-plugs; rootkits arrive via insmod of a file elsewhere, or via
init_module from memory (no file at all).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import ModuleActivity
from vigil.vocab import base_name

KERNEL_LOADS: Final = frozenset({"init_module", "finit_module"})
_LOADERS: Final = frozenset(
    {"modprobe", "kmod", "systemd-modules-load", "systemd-udevd", "udevd", "depmod", "kworker"}
)
_MODULE_TREES: Final = ("/lib/modules/", "/usr/lib/modules/")


def _unusual(event: ModuleActivity) -> bool:
    m = event.module
    if m.load_type not in KERNEL_LOADS:
        return False
    path = m.file.path
    if m.load_type == "init_module" and not path:
        return True  # from memory
    return not (base_name(event.process) in _LOADERS and path.startswith(_MODULE_TREES))


class KernelModuleLoaded(Detection):
    meta = Meta(
        type="DefenseEvasion:Runtime/KernelModuleLoaded",
        severity=severity.HIGH,
        title="A kernel module was loaded",
        description=(
            "A process loaded a kernel module from outside the kernel's module tree, or from memory: code running in the "
            "kernel can hide files, processes and connections (rootkits)."
        ),
        mitre=("T1547.006", "T1014"),
        runbook=(
            "Check moduleName/moduleFilePath/moduleSha256 against what the instance should run (DKMS drivers, agents). "
            "Unknown modules mean the kernel can no longer be trusted: isolate and rebuild the instance."
        ),
        false_positives=("Out-of-tree drivers and security agents installed outside /lib/modules.",),
        references=("https://attack.mitre.org/techniques/T1547/006/",),
        maturity="stable",
    )
    kinds = frozenset({"module_load"})

    def match(self, event: ModuleActivity, ctx: Context) -> bool:
        return _unusual(event)

    def dedup_key(self, event: ModuleActivity) -> str:
        return event.module.name or event.module.file.path

    def context(self, event: ModuleActivity, ctx: Context) -> dict[str, Any]:
        m = event.module
        out: dict[str, Any] = {"moduleName": m.name or m.file.name.split(".ko", 1)[0]}
        if m.file.path:
            out["moduleFilePath"] = m.file.path
        if m.file.sha256:
            out["moduleSha256"] = m.file.sha256
        return out

    fires: ClassVar = (
        Example("insmod of a module in /tmp", (s.module_load(s.proc("/usr/sbin/insmod", "/tmp/diamorphine.ko", uid=0), "diamorphine", "/tmp/diamorphine.ko"),)),
        Example("init_module from memory", (s.module_load(s.proc("/tmp/.r/loader", uid=0), "r00t", load_type="init_module"),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("modprobe loading a packaged driver", (s.module_load(s.proc("/usr/sbin/modprobe", "br_netfilter", uid=0), "br_netfilter", "/lib/modules/6.1.0/kernel/net/bridge/br_netfilter.ko"),)),
    )  # fmt: skip
