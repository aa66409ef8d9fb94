"""PrivilegeEscalation:Runtime/ElevationToRoot: an unusual process gained root through setuid.

From setuid events (a process switching its uid/euid to 0) and from execs of setuid-root programs
(euid 0, real uid not 0). Ordinary elevation (sudo, su, passwd, ping ... ``ORDINARY_SETUID``) is
excluded, as GuardDuty excludes normal sudo. Baseline: the first elevation of each program on an
instance fires, repeats of a program already seen elevating on that instance do not (State).
"""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import FirstSeenOnInstance
from vigil.events import ProcessActivity
from vigil.vocab import ORDINARY_SETUID, base_name

_TTL_S: Final = 90 * 86_400


def _elevates(event: ProcessActivity) -> bool:
    p = event.process
    if event.kind == "setuid":
        if not (event.new_uid == 0 or event.new_euid == 0) or p.user.uid == 0 or p.user.uid < 0:
            return False
    elif not (p.euid == 0 and p.user.uid > 0):
        return False
    return base_name(p) not in ORDINARY_SETUID


def _key(event: ProcessActivity) -> str:
    p = event.process
    return f"root|{event.device.instance_uid}|{p.file.sha256 or p.file.path}"


class ElevationToRoot(FirstSeenOnInstance):
    meta = Meta(
        type="PrivilegeEscalation:Runtime/ElevationToRoot",
        severity=severity.MEDIUM,
        title="A process gained root privileges unusually",
        description=(
            "A process that started as a non-root user switched to root through a setuid program or a setuid call, and "
            "the program is not one of the ordinary elevation tools (sudo, su, passwd ...): a likely privilege-escalation "
            "exploit or a planted setuid backdoor."
        ),
        mitre=("T1548.001", "T1068"),
        runbook=(
            "Check the executable (path, sha256, owner, mode) and its lineage: a setuid copy of a shell or an exploit binary "
            "in /tmp is compromise. Remove the setuid bit, isolate the instance, and look for what root did next."
        ),
        false_positives=("Vendor setuid helpers not in the ordinary list; suppress by executablePath.",),
        references=("https://attack.mitre.org/techniques/T1548/001/",),
    )
    kinds = frozenset({"setuid", "process_exec"})
    baseline_ttl_s = _TTL_S

    def candidate(self, event: ProcessActivity) -> bool:
        return _elevates(event)

    def baseline_key(self, event: ProcessActivity) -> str:
        return _key(event)

    fires: ClassVar = (
        Example("a setuid copy of bash run by www-data", (s.exec_(s.proc("/tmp/.sh", "-p", uid=33, euid=0)),)),
        Example("an exploit calling setuid(0)", (s.syscall(s.proc("/tmp/cve-2024-1086", uid=1000), "setuid", new_uid=0, new_euid=0),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("ordinary sudo", (s.exec_(s.proc("/usr/bin/sudo", "systemctl", "restart", "nginx", uid=1000, euid=0)),)),
        Example("root dropping privileges", (s.syscall(s.proc("/usr/sbin/nginx", uid=0), "setuid", new_uid=33, new_euid=33),)),
        Example("a non-root exec", (s.exec_(s.proc("/usr/bin/id", uid=1000)),)),
    )  # fmt: skip
