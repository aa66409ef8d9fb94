"""DefenseEvasion:Runtime/SuspiciousCommand: a command that weakens defences or covers tracks.

Severity by mechanism (GuardDuty's is variable too):
- High: LD_PRELOAD pointing at a library in a writable or hidden location (process takeover).
- Medium: firewall disabled or flushed, SELinux set permissive, a security/logging service
  stopped or disabled, audit rules deleted, shell history cleared, system logs deleted or emptied.
- Low: every crontab entry removed (``crontab -r``).
- Monitoring stopped (issue 17; GuardDuty's "disable services"), severity by who ran it
  (``vigil.vocab.session``): cron/auditd/logging/security units stopped, disabled or masked
  (systemctl, service), their daemons killed by name (pkill, killall, ``kill $(pidof …)``), the
  journal vacuumed to nothing, logs under /var/log emptied (``truncate -s0``, ``> file`` in a
  shell), the kernel ring buffer cleared (``dmesg -C``), a system file made immutable
  (``chattr +i``), AppArmor torn down. High from a web/app server or cron child, Low at an
  administrator's terminal for the milder ones (cron stopped, journal vacuumed, chattr, dmesg),
  else Medium. Reloads (``systemctl kill -s HUP``, ``pkill -HUP``) and ``journalctl --rotate``
  alone, logrotate's own work, are not stops.
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
from vigil.vocab import base_name, by_package_manager, is_shell, session, shell_command

FIREWALL_UNITS: Final = frozenset(
    {"firewalld", "ufw", "iptables", "ip6tables", "nftables", "netfilter-persistent", "ebtables"}
)
SECURITY_UNITS: Final = frozenset(
    {"auditd", "amazon-guardduty-agent", "vigil-agent", "falco", "apparmor", "amazon-ssm-agent", "snap.amazon-ssm-agent.amazon-ssm-agent",
     "amazon-cloudwatch-agent", "rsyslog", "syslog", "syslog-ng", "systemd-journald", "falcon-sensor", "osqueryd", "wazuh-agent",
     "ossec", "aide", "clamav-daemon", "clamav-freshclam", "sysdig", "tetragon", "crowdstrike"}
)  # fmt: skip
SCHEDULER_UNITS: Final = frozenset({"cron", "crond", "cronie", "atd", "anacron"})
# daemon names as pkill/killall/pidof see them -> the unit they belong to
_DAEMONS: Final = {
    "rsyslogd": "rsyslog", "rsyslog": "rsyslog", "syslog-ng": "syslog-ng", "systemd-journald": "systemd-journald",
    "journald": "systemd-journald", "auditd": "auditd", "falco": "falco", "amazon-cloudwatch-agent": "amazon-cloudwatch-agent",
    "amazon-ssm-agent": "amazon-ssm-agent", "vigil-agent": "vigil-agent", "osqueryd": "osqueryd", "wazuh-agentd": "wazuh-agent",
    "falcon-sensor": "falcon-sensor", "amazon-guardduty-agent": "amazon-guardduty-agent", "cron": "cron", "crond": "crond",
    "auditbeat": "auditbeat", "filebeat": "filebeat", "fluent-bit": "fluent-bit", "td-agent-bit": "fluent-bit",
}  # fmt: skip
# mechanisms whose severity follows the session (High from a service, Low/Medium at a terminal)
_MILD: Final = frozenset(
    {"scheduler-stopped", "journal-vacuumed", "kernel-log-cleared", "file-made-immutable"}
)
_CONTEXTUAL: Final = _MILD | frozenset(
    {"security-service-disabled", "security-process-killed", "logs-cleared", "apparmor-disabled"}
)
_STOP_VERBS: Final = frozenset({"stop", "disable", "mask", "kill"})
_GENTLE_SIGNALS: Final = frozenset({"HUP", "SIGHUP", "1", "USR1", "SIGUSR1", "USR2", "SIGUSR2", "0"})
_PIDOF_KILL: Final = re.compile(r"\bkill(?:all)?\b[^;&|]{0,256}?\$\((?:pidof|pgrep)\s+(?:-\S+\s+)*([\w.-]+)")
_EMPTIED_LOG: Final = re.compile(
    r"(?:^|[;&|(]\s*|cat\s+/dev/null\s*|:\s*|true\s*|echo(?:\s+-n)?\s*(?:\"\"|'')?\s*)(?<!>)>\s*(/var/log/\S+)"
)
_SYSTEM_FILE: Final = (
    "/etc/",
    "/usr/",
    "/bin/",
    "/sbin/",
    "/lib",
    "/boot/",
    "/root/",
    "/var/spool/cron",
    "/home/",
)
_VACUUM: Final = re.compile(r"^--vacuum-(time|size|files)=?(.*)$")
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
     "crontab", "rm", "shred", "truncate", "unlink", "srm", "wipe", "pkill", "killall", "journalctl", "dmesg", "chattr",
     "aa-teardown"}
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
        if script and "/var/log/" in script:
            m = _EMPTIED_LOG.search(script)
            if m:
                return "logs-cleared", severity.MEDIUM, {"filePath": m.group(1)}
        if script and "kill" in script:
            m = _PIDOF_KILL.search(script)
            if m and m.group(1) in _DAEMONS:
                return "security-process-killed", severity.MEDIUM, {"serviceName": _DAEMONS[m.group(1)]}
        return "", 0.0, {}
    args = p.args[1:]
    if name == "systemctl" or name == "service":
        verbs = [a for a in args if a in _STOP_VERBS]
        if verbs == ["kill"] and _gentle_signal(args):
            return "", 0.0, {}  # systemctl kill -s HUP rsyslog: logrotate's reload
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
            if units & SCHEDULER_UNITS:
                return (
                    "scheduler-stopped",
                    severity.MEDIUM,
                    {"serviceName": sorted(units & SCHEDULER_UNITS)[0]},
                )
        return "", 0.0, {}
    if name in ("pkill", "killall"):
        if _gentle_signal(args):
            return "", 0.0, {}
        targets = [a for a in args if not a.startswith("-") and not a.isdigit()]
        for a in targets:
            daemon = _DAEMONS.get(a.strip("^$'\"").rsplit("/", 1)[-1])
            if daemon:
                return "security-process-killed", severity.MEDIUM, {"serviceName": daemon}
        return "", 0.0, {}
    if name == "journalctl":
        for a in args:
            m = _VACUUM.match(a)
            if m and _drastic_vacuum(m.group(1), m.group(2)):
                return "journal-vacuumed", severity.MEDIUM, {}
        return "", 0.0, {}
    if name == "dmesg":
        if any(a in ("-C", "-c", "--clear", "--read-clear") for a in args):
            return "kernel-log-cleared", severity.MEDIUM, {}
        return "", 0.0, {}
    if name == "chattr":
        if any(a.startswith("+") and "i" in a for a in args):
            path = next((a for a in args if a.startswith(_SYSTEM_FILE)), "")
            if path:
                return "file-made-immutable", severity.MEDIUM, {"filePath": path}
        return "", 0.0, {}
    if name == "aa-teardown":
        return "apparmor-disabled", severity.MEDIUM, {"serviceName": "apparmor"}
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
        emptied = name == "truncate" and (
            any(a in ("-s0", "--size=0") for a in args)
            or any(args[k : k + 2] == ["-s", "0"] for k in range(len(args)))
        )
        for a in args:
            if emptied and a.startswith("/var/log/"):
                return "logs-cleared", severity.MEDIUM, {"filePath": a}
            if _HISTORY_ARG.search(a):
                return "history-cleared", severity.MEDIUM, {"shellHistoryFilePath": a}
            if _SYSTEM_LOG.match(a):
                return "logs-cleared", severity.MEDIUM, {}
        return "", 0.0, {}
    return "", 0.0, {}


def _gentle_signal(args: Sequence[str]) -> bool:
    """A reload/probe signal (HUP, USR1 ...), not a stop: ``-HUP``, ``-s HUP``, ``--signal=HUP``."""
    for i, a in enumerate(args):
        if a in ("-s", "--signal") and i + 1 < len(args):
            return args[i + 1].upper() in _GENTLE_SIGNALS
        if a.startswith("--signal="):
            return a.split("=", 1)[1].upper() in _GENTLE_SIGNALS
        if a.startswith("-") and not a.startswith("--") and a[1:].upper() in _GENTLE_SIGNALS:
            return True
    return False


def _drastic_vacuum(what: str, value: str) -> bool:
    """Vacuuming the journal to (almost) nothing: under a day, under 10 MB, or one file."""
    m = re.match(r"^(\d+)\s*([a-zA-Z]*)$", value.strip())
    if not m:
        return False
    n, unit = int(m.group(1)), m.group(2).lower()
    if what == "files":
        return n <= 1
    if what == "size":
        return unit in ("", "b", "k", "kb", "k") or (unit in ("m", "mb") and n < 10)
    return unit in (
        "",
        "s",
        "sec",
        "second",
        "seconds",
        "m",
        "min",
        "minute",
        "minutes",
        "h",
        "hour",
        "hours",
    ) and (unit not in ("h", "hour", "hours") or n < 24)


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
        mechanism, sev, _ = _mechanism(event)
        if mechanism in _CONTEXTUAL:
            who = session(event.process)
            if who == "service":
                return severity.HIGH
            if who == "interactive" and mechanism in _MILD:
                return severity.LOW
        return sev or self.meta.severity

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_mechanism(event)[0]}|{event.process.cmd_line[:256]}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process, **_mechanism(event)[2])

    _WEB: ClassVar = s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, stdin=s.pipe())
    _CRON: ClassVar = s.proc(
        "/bin/sh", "-c", "/etc/cron.hourly/x", pid=960, uid=0, parent=s.proc("/usr/sbin/cron", pid=700, uid=0)
    )
    _LOGROTATE: ClassVar = s.proc(
        "/usr/lib/rsyslog/rsyslog-rotate",
        pid=980,
        uid=0,
        parent=s.proc("/usr/sbin/logrotate", "/etc/logrotate.conf", pid=979, uid=0),
    )
    fires: ClassVar = (
        Example("LD_PRELOAD of a library in /dev/shm", (s.exec_(s.proc("/usr/sbin/sshd", "-D", uid=0, ld_preload="/dev/shm/.l/libprocesshider.so")),)),
        Example("firewall disabled", (s.exec_(s.proc("/usr/bin/systemctl", "disable", "--now", "firewalld", uid=0)),)),
        Example("iptables flushed", (s.exec_(s.proc("/usr/sbin/iptables", "-F", uid=0)),)),
        Example("auditd stopped", (s.exec_(s.proc("/usr/sbin/service", "auditd", "stop", uid=0)),)),
        Example("history cleared", (s.exec_(s.proc("/bin/bash", "-c", "history -c; rm -f /root/.bash_history", uid=0)),)),
        Example("crontab removed", (s.exec_(s.proc("/usr/bin/crontab", "-r")),)),
        Example("auth log deleted", (s.exec_(s.proc("/usr/bin/rm", "-f", "/var/log/auth.log", uid=0)),)),
        Example("cron stopped from a web server's child (High)", (s.exec_(s.proc("/usr/bin/systemctl", "stop", "cron", uid=0, parent=_WEB)),)),
        Example("rsyslogd killed from a cron job", (s.exec_(s.proc("/usr/bin/pkill", "-9", "rsyslogd", uid=0, parent=_CRON)),)),
        Example("falco killed by full command line", (s.exec_(s.proc("/usr/bin/pkill", "-f", "falco", uid=0)),)),
        Example("auditd killed via pidof", (s.exec_(s.proc("/bin/sh", "-c", "kill -9 $(pidof auditd)", uid=0, parent=_WEB)),)),
        Example("journal vacuumed to one second", (s.exec_(s.proc("/usr/bin/journalctl", "--rotate", "--vacuum-time=1s", uid=0)),)),
        Example("auth.log emptied by a redirect", (s.exec_(s.proc("/bin/sh", "-c", "cat /dev/null > /var/log/auth.log", uid=0, parent=_WEB)),)),
        Example("syslog truncated to zero", (s.exec_(s.proc("/usr/bin/truncate", "-s0", "/var/log/syslog", uid=0)),)),
        Example("kernel ring buffer cleared", (s.exec_(s.proc("/usr/bin/dmesg", "-C", uid=0, parent=_WEB)),)),
        Example("cron file made immutable", (s.exec_(s.proc("/usr/bin/chattr", "+i", "/etc/cron.d/sysupdate", uid=0, parent=_CRON)),)),
        Example("AppArmor torn down", (s.exec_(s.proc("/usr/sbin/aa-teardown", uid=0)),)),
        Example("audit rules deleted", (s.exec_(s.proc("/usr/sbin/auditctl", "-D", uid=0)),)),
        Example("SELinux permissive", (s.exec_(s.proc("/usr/sbin/setenforce", "0", uid=0)),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("LD_PRELOAD of jemalloc", (s.exec_(s.proc("/usr/bin/redis-server", ld_preload="/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")),)),
        Example("restarting nginx", (s.exec_(s.proc("/usr/bin/systemctl", "restart", "nginx", uid=0)),)),
        Example("iptables flush of the nat table (docker-style)", (s.exec_(s.proc("/usr/sbin/iptables", "-t", "nat", "-F", "DOCKER", uid=0)),)),
        Example("a package postinst stopping a service", (s.exec_(s.proc("/usr/bin/systemctl", "stop", "auditd", uid=0, parent=s.proc("/usr/bin/dpkg", "--configure", "-a", pid=7, uid=0))),)),
        Example("removing an app log", (s.exec_(s.proc("/usr/bin/rm", "/var/log/myapp/app.log.3")),)),
        Example("systemctl status cron", (s.exec_(s.proc("/usr/bin/systemctl", "status", "cron", uid=0)),)),
        Example("systemctl restart rsyslog", (s.exec_(s.proc("/usr/bin/systemctl", "restart", "rsyslog", uid=0)),)),
        Example("journalctl -u nginx", (s.exec_(s.proc("/usr/bin/journalctl", "-u", "nginx", "-f", uid=0)),)),
        Example("journal vacuumed to 500M", (s.exec_(s.proc("/usr/bin/journalctl", "--vacuum-size=500M", uid=0)),)),
        Example("logrotate's rsyslog reload", (s.exec_(s.proc("/usr/bin/systemctl", "kill", "-s", "HUP", "rsyslog.service", uid=0, parent=_LOGROTATE)),)),
        Example("logrotate's journal rotate", (s.exec_(s.proc("/usr/bin/journalctl", "--rotate", uid=0, parent=_LOGROTATE)),)),
        Example("pkill -HUP rsyslogd", (s.exec_(s.proc("/usr/bin/pkill", "-HUP", "rsyslogd", uid=0)),)),
        Example("appending to an app log in a shell", (s.exec_(s.proc("/bin/sh", "-c", "echo done >> /var/log/backup.log", uid=0)),)),
        Example("chattr +i on a scratch file", (s.exec_(s.proc("/usr/bin/chattr", "+i", "/tmp/scratch", uid=0)),)),
        Example("dmesg -T (reading)", (s.exec_(s.proc("/usr/bin/dmesg", "-T", uid=0)),)),
    )  # fmt: skip
