"""PrivilegeEscalation:Runtime/SuspiciousCommand: a command that tries to gain privileges.

Setting the setuid/setgid bit on a file, granting a file dangerous capabilities, entering the init
process's namespaces (nsenter -t 1), the PwnKit (pkexec with no arguments) and Baron Samedit
(sudoedit -s ending in a backslash) exploit shapes, and appending NOPASSWD rules to sudoers from a
shell. Package managers and configuration management are excluded.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context, memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import SHELL_NAMES, base_name, by_package_manager, shell_command

_SETID_NUMERIC: Final = re.compile(r"^[0-7]?[2467][0-7]{3}$")
_SETID_SYMBOLIC: Final = re.compile(r"^[ugoa]*[+=][rwxXt]*s")
DANGEROUS_CAPS: Final = ("cap_setuid", "cap_setgid", "cap_sys_admin", "cap_dac_override", "cap_dac_read_search", "cap_sys_ptrace",
                         "cap_sys_module", "cap_chown", "cap_fowner")  # fmt: skip
_SUDOERS_APPEND: Final = re.compile(r"(?:>>?|tee\s+(?:-a\s+)?)\s*/etc/sudoers")


_NAMES: Final = frozenset({"chmod", "setcap", "nsenter", "pkexec", "sudoedit", "sudo"})


@memo_by_command
def _mechanism(event: ProcessActivity) -> str:
    p = event.process
    name = base_name(p)
    if name not in _NAMES:
        script = shell_command(p)
        if script and "sudoers" in script and _SUDOERS_APPEND.search(script):
            return "sudoers-append"
        return ""
    args = p.args[1:]
    if name == "chmod":
        if any(_SETID_NUMERIC.match(a) or _SETID_SYMBOLIC.match(a) for a in args if not a.startswith("--")):
            return "setuid-bit"
        return ""
    if name == "setcap":
        low = " ".join(args).lower()
        return "dangerous-capability" if any(c in low for c in DANGEROUS_CAPS) and "+" in low else ""
    if name == "nsenter":
        joined = " ".join(args)
        return "enter-host-namespaces" if re.search(r"(?:-t|--target)[ =]1\b", joined) else ""
    if name == "pkexec":
        return "pwnkit" if not p.args else ""
    if (
        name in ("sudoedit", "sudo")
        and ("-s" in args or "--shell" in args)
        and any(a.endswith("\\") for a in args)
    ):
        return "sudo-heap-overflow"
    return ""


class PrivilegeEscalationSuspiciousCommand(Detection):
    meta = Meta(
        type="PrivilegeEscalation:Runtime/SuspiciousCommand",
        severity=severity.MEDIUM,
        title="A command that attempts privilege escalation was executed",
        description=(
            "A process ran a command used to gain or keep elevated privileges: a setuid/setgid bit or dangerous capability "
            "set on a file, the host's namespaces entered from a container, a sudoers rule appended from a shell, or the "
            "argument shapes of known sudo and pkexec exploits."
        ),
        mitre=("T1548.001", "T1548.003", "T1611", "T1068"),
        runbook=(
            "Read commandLineExample; find the file that gained setuid or capabilities and remove them; check whether a "
            "root shell followed (ElevationToRoot findings, new root processes in the lineage)."
        ),
        false_positives=("Administrators installing software by hand that needs setuid helpers.",),
        references=(
            "https://attack.mitre.org/techniques/T1548/001/",
            "https://attack.mitre.org/techniques/T1611/",
        ),
    )
    kinds = frozenset({"process_exec"})
    # a name in _NAMES, or a shell (shell_command: is_shell) appending to sudoers
    programs = _NAMES | SHELL_NAMES

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _mechanism(event) != "" and not by_package_manager(event.process)

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_mechanism(event)}|{event.process.cmd_line[:256]}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process)

    fires: ClassVar = (
        Example("setuid bit on a copied shell", (s.exec_(s.proc("/usr/bin/chmod", "u+s", "/tmp/.sh", uid=0)),)),
        Example("numeric setuid mode", (s.exec_(s.proc("/usr/bin/chmod", "4755", "/var/tmp/x", uid=0)),)),
        Example("cap_setuid granted to python", (s.exec_(s.proc("/usr/sbin/setcap", "cap_setuid+ep", "/usr/bin/python3.11", uid=0)),)),
        Example("nsenter into the host's init namespaces", (s.exec_(s.proc("/usr/bin/nsenter", "-t", "1", "-m", "-u", "-i", "-n", "sh", uid=0, container="c0ffee")),)),
        Example("NOPASSWD appended to sudoers", (s.exec_(s.proc("/bin/sh", "-c", "echo 'www-data ALL=(ALL) NOPASSWD:ALL' >> /etc/sudoers", uid=0)),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("chmod 0755", (s.exec_(s.proc("/usr/bin/chmod", "0755", "/opt/app/bin/run")),)),
        Example("chmod u+x", (s.exec_(s.proc("/usr/bin/chmod", "u+x", "deploy.sh")),)),
        Example("a package postinst setting a setuid helper", (s.exec_(s.proc("/usr/bin/chmod", "4754", "/usr/lib/dbus-1.0/dbus-daemon-launch-helper", uid=0, parent=s.proc("/usr/bin/dpkg", pid=7, uid=0))),)),
        Example("pkexec with a command", (s.exec_(s.proc("/usr/bin/pkexec", "/usr/bin/apt", "update")),)),
    )  # fmt: skip
