"""DefenseEvasion:Runtime/SuspiciousCommand: a command that weakens defences or covers tracks.

Severity by mechanism (GuardDuty's is variable too):
- High: LD_PRELOAD pointing at a library in a writable or hidden location (process takeover).
- Medium: firewall disabled or flushed, SELinux set permissive, a security/logging service
  stopped or disabled, audit rules deleted, shell history cleared, system logs deleted or emptied.
- Low: every crontab entry removed (``crontab -r``).
Package managers and configuration management are excluded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context, memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import base_name, by_package_manager, is_shell, shell_command

FIREWALL_UNITS: Final = frozenset(
    {"firewalld", "ufw", "iptables", "ip6tables", "nftables", "netfilter-persistent", "ebtables"}
)
SECURITY_UNITS: Final = frozenset(
    {"auditd", "amazon-guardduty-agent", "vigil-agent", "falco", "apparmor", "amazon-ssm-agent", "snap.amazon-ssm-agent.amazon-ssm-agent",
     "amazon-cloudwatch-agent", "rsyslog", "syslog", "syslog-ng", "systemd-journald", "falcon-sensor", "osqueryd", "wazuh-agent",
     "ossec", "aide", "clamav-daemon", "clamav-freshclam", "sysdig", "tetragon", "crowdstrike"}
)  # fmt: skip
_STOP_VERBS: Final = frozenset({"stop", "disable", "mask", "kill"})
_WRITABLE_LIB: Final = re.compile(
    r"(?:^|[:\s])(?:/tmp/|/var/tmp/|/dev/shm/|/run/user/|\S*/\.[^/\s]+/|\./|[^/\s:]+\.so)"
)
_HISTORY: Final = re.compile(
    r"history\s+-c|unset\s+HISTFILE|HISTFILE=/dev/null|HISTSIZE=0|HISTFILESIZE=0|set\s+\+o\s+history"
    r"|(?:rm|shred|truncate|unlink)\b[^;&|]*(\S*_history)|ln\s+-sf?\s+/dev/null\s+(\S*_history)|>\s*(\S*_history)"
)
_HISTORY_ARG: Final = re.compile(r"(?:^|/)\.(?:bash|zsh|sh|ash|mysql|psql)_history$")
_SYSTEM_LOG: Final = re.compile(
    r"^/var/log/(?:auth\.log|secure|syslog|messages|kern\.log|wtmp|btmp|lastlog|faillog|audit/|journal/)"
)


_NAMES: Final = frozenset(
    {"systemctl", "service", "iptables", "ip6tables", "iptables-legacy", "iptables-nft", "ufw", "nft", "setenforce", "auditctl",
     "crontab", "rm", "shred", "truncate", "unlink", "srm", "wipe"}
)  # fmt: skip


def _units(args: Sequence[str]) -> list[str]:
    return [a.removesuffix(".service") for a in args if not a.startswith("-")]


@memo_by_command
def _mechanism(event: ProcessActivity) -> tuple[str, float, dict[str, str]]:
    p = event.process
    if p.ld_preload and _WRITABLE_LIB.search(p.ld_preload):
        return "ld-preload", severity.HIGH, {"ldPreloadValue": p.ld_preload}
    name = base_name(p)
    if name not in _NAMES:
        script = shell_command(p)
        if script and ("hist" in script or "HIST" in script):
            m = _HISTORY.search(script)
            if m:
                path = next((g for g in m.groups() if g), "")
                return "history-cleared", severity.MEDIUM, {"shellHistoryFilePath": path} if path else {}
        return "", 0.0, {}
    args = p.args[1:]
    if name == "systemctl" or name == "service":
        verbs = [a for a in args if a in _STOP_VERBS]
        if verbs:
            units = set(_units(args))
            if units & FIREWALL_UNITS:
                return (
                    "firewall-disabled",
                    severity.MEDIUM,
                    {"serviceName": sorted(units & FIREWALL_UNITS)[0]},
                )
            if units & SECURITY_UNITS:
                return (
                    "security-service-disabled",
                    severity.MEDIUM,
                    {"serviceName": sorted(units & SECURITY_UNITS)[0]},
                )
        return "", 0.0, {}
    if name in ("iptables", "ip6tables", "iptables-legacy", "iptables-nft"):
        if any(a in ("-F", "--flush") for a in args) and not any(a in ("-t", "--table") for a in args):
            return "firewall-flushed", severity.MEDIUM, {}
        if ("-P" in args or "--policy" in args) and "ACCEPT" in args and "INPUT" in args:
            return "firewall-flushed", severity.MEDIUM, {}
        return "", 0.0, {}
    if name == "ufw" and "disable" in args:
        return "firewall-disabled", severity.MEDIUM, {"serviceName": "ufw"}
    if name == "nft" and "flush" in args and "ruleset" in args:
        return "firewall-flushed", severity.MEDIUM, {}
    if name == "setenforce" and len(args) >= 1 and args[0] in ("0", "Permissive", "permissive"):
        return "selinux-permissive", severity.MEDIUM, {}
    if name == "auditctl" and ("-D" in args or ("-e" in args and "0" in args)):
        return "audit-disabled", severity.MEDIUM, {"serviceName": "auditd"}
    if name == "crontab" and "-r" in args:
        return "crontab-removed", severity.LOW, {}
    if name in ("rm", "shred", "truncate", "unlink", "srm", "wipe"):
        for a in args:
            if _HISTORY_ARG.search(a):
                return "history-cleared", severity.MEDIUM, {"shellHistoryFilePath": a}
            if _SYSTEM_LOG.match(a):
                return "logs-cleared", severity.MEDIUM, {}
        return "", 0.0, {}
    return "", 0.0, {}


class DefenseEvasionSuspiciousCommand(Detection):
    meta = Meta(
        type="DefenseEvasion:Runtime/SuspiciousCommand",
        severity=severity.MEDIUM,
        title="A command that weakens defences was executed",
        description=(
            "A process disabled or flushed the firewall, stopped a security or logging service, deleted audit rules, "
            "cleared shell history or system logs, removed the crontab, or ran with LD_PRELOAD pointing at a library in "
            "a writable location."
        ),
        mitre=("T1562.001", "T1562.004", "T1070.003", "T1070.002", "T1574.006"),
        runbook=(
            "Read commandLineExample (and serviceName / ldPreloadValue / shellHistoryFilePath): restore the control that "
            "was turned off, then look at what the same lineage did just before and after."
        ),
        false_positives=(
            "Administrators stopping services during maintenance; troubleshooting with iptables -F.",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1562/",
            "https://attack.mitre.org/techniques/T1070/",
        ),
    )
    kinds = frozenset({"process_exec"})

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        p = event.process
        # _mechanism's own gates, checked before paying for the memo key: no program prefilter
        # here, since LD_PRELOAD counts for any program
        if not p.ld_preload and base_name(p) not in _NAMES and not is_shell(p):
            return False
        return _mechanism(event)[0] != "" and not by_package_manager(p)

    def severity(self, event: ProcessActivity) -> float:
        return _mechanism(event)[1] or self.meta.severity

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_mechanism(event)[0]}|{event.process.cmd_line[:256]}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process, **_mechanism(event)[2])

    fires: ClassVar = (
        Example("LD_PRELOAD of a library in /dev/shm", (s.exec_(s.proc("/usr/sbin/sshd", "-D", uid=0, ld_preload="/dev/shm/.l/libprocesshider.so")),)),
        Example("firewall disabled", (s.exec_(s.proc("/usr/bin/systemctl", "disable", "--now", "firewalld", uid=0)),)),
        Example("iptables flushed", (s.exec_(s.proc("/usr/sbin/iptables", "-F", uid=0)),)),
        Example("auditd stopped", (s.exec_(s.proc("/usr/sbin/service", "auditd", "stop", uid=0)),)),
        Example("history cleared", (s.exec_(s.proc("/bin/bash", "-c", "history -c; rm -f /root/.bash_history", uid=0)),)),
        Example("crontab removed", (s.exec_(s.proc("/usr/bin/crontab", "-r")),)),
        Example("auth log deleted", (s.exec_(s.proc("/usr/bin/rm", "-f", "/var/log/auth.log", uid=0)),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("LD_PRELOAD of jemalloc", (s.exec_(s.proc("/usr/bin/redis-server", ld_preload="/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")),)),
        Example("restarting nginx", (s.exec_(s.proc("/usr/bin/systemctl", "restart", "nginx", uid=0)),)),
        Example("iptables flush of the nat table (docker-style)", (s.exec_(s.proc("/usr/sbin/iptables", "-t", "nat", "-F", "DOCKER", uid=0)),)),
        Example("a package postinst stopping a service", (s.exec_(s.proc("/usr/bin/systemctl", "stop", "auditd", uid=0, parent=s.proc("/usr/bin/dpkg", "--configure", "-a", pid=7, uid=0))),)),
        Example("removing an app log", (s.exec_(s.proc("/usr/bin/rm", "/var/log/myapp/app.log.3")),)),
    )  # fmt: skip
