"""Persistence:Runtime/SuspiciousCommand: a command that installs persistence (cron, services, users).

Severity follows who ran it (issue 17): Medium from a web/app server, a cron job or an unknown
lineage; Low from an administrator's interactive session (an ssh/console login with a terminal),
where enabling services and adding users is everyday work, except for a second uid-0 account
(``useradd -o -u 0``), which stays Medium anywhere. Package managers and configuration management
(apt maintainer scripts, cloud-init, Ansible) are excluded.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import ProcessActivity
from vigil.vocab import base_name, by_package_manager, session

_CRONTAB_READ_ONLY = frozenset({"-l", "-v", "-T"})
_SYSTEMCTL_PERSIST = frozenset({"enable", "link", "preset", "reenable", "add-wants", "add-requires"})
# every name _mechanism compares with (it returns "" for any other program)
_NAMES = frozenset({"crontab", "systemctl", "useradd", "adduser", "usermod", "update-rc.d", "chkconfig"})


def _mechanism(event: ProcessActivity) -> str:
    p = event.process
    name = base_name(p)
    args = p.args[1:]
    if name == "crontab":
        # `crontab FILE`, `crontab -` and `crontab -e` replace the table; -l/-v/-T only read it
        if args and not all(a in _CRONTAB_READ_ONLY or a.startswith("-u") for a in args) and "-r" not in args:
            return "crontab"
        return ""
    if name == "systemctl" and any(a in _SYSTEMCTL_PERSIST for a in args):
        return "systemd"
    if name in ("useradd", "adduser") and args:
        return "new-user"
    if (
        name == "usermod"
        and any(a in ("-aG", "-G") for a in args)
        and any(g in ("sudo", "wheel", "admin", "root") for a in args for g in a.split(","))
    ):
        return "group-membership"
    if name == "update-rc.d" and any(a in ("defaults", "enable") for a in args):
        return "sysv-init"
    if name == "chkconfig" and "on" in args:
        return "sysv-init"
    return ""


class PersistenceSuspiciousCommand(Detection):
    meta = Meta(
        type="Persistence:Runtime/SuspiciousCommand",
        severity=severity.MEDIUM,
        title="A command that installs persistence was executed",
        description=(
            "A process ran a command that installs or changes a persistence mechanism: a crontab, an enabled systemd unit, "
            "a new local user or a new member of an administrative group."
        ),
        mitre=("T1053.003", "T1543.002", "T1136.001"),
        runbook=(
            "Read runtimeDetails.context.commandLineExample and inspect what was installed (crontab -l -u USER, systemctl cat UNIT, "
            "/etc/passwd). If no change ticket explains it, remove it and investigate the lineage."
        ),
        false_positives=(
            "Configuration management (Ansible, cloud-init, Chef) enabling services or adding users: suppress by lineage.",
        ),
        references=("https://attack.mitre.org/tactics/TA0003/",),
    )
    kinds = frozenset({"process_exec"})
    programs = _NAMES

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _mechanism(event) != "" and not by_package_manager(event.process)

    def severity(self, event: ProcessActivity) -> float:
        p = event.process
        if _mechanism(event) == "new-user" and "0" in p.args and ("-o" in p.args or "--non-unique" in p.args):
            return severity.MEDIUM
        return severity.LOW if session(p) == "interactive" else severity.MEDIUM

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_mechanism(event)}|{event.process.cmd_line}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {"commandLineExample": event.process.cmd_line[:1024]}
        if _mechanism(event) == "systemd":
            units = [
                a for a in event.process.args[1:] if not a.startswith("-") and a not in _SYSTEMCTL_PERSIST
            ]
            if units:
                out["serviceName"] = units[0]
        return out

    fires: ClassVar = (
        Example("crontab installed from a file", (s.exec_(s.proc("/usr/bin/crontab", "/tmp/.c")),)),
        Example(
            "a new service enabled",
            (s.exec_(s.proc("/usr/bin/systemctl", "enable", "--now", "kdevtmpfsi.service", uid=0)),),
        ),
        Example(
            "a backdoor user", (s.exec_(s.proc("/usr/sbin/useradd", "-o", "-u", "0", "-m", "sysadm", uid=0)),)
        ),
        Example(
            "a service enabled by a web server's child (Medium)",
            (s.exec_(s.proc("/usr/bin/systemctl", "enable", "kworkerd", uid=0, stdin=s.pipe(), parent=s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, stdin=s.pipe()))),),
        ),
        Example(
            "an administrator adding a user at a terminal (Low)",
            (s.exec_(s.proc("/usr/sbin/useradd", "-m", "alice", uid=0, parent=s.LOGIN_SHELL)),),
        ),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("listing the crontab", (s.exec_(s.proc("/usr/bin/crontab", "-l")),)),
        Example("service status", (s.exec_(s.proc("/usr/bin/systemctl", "status", "nginx")),)),
        Example(
            "cloud-init adding the default user",
            (s.exec_(s.proc("/usr/sbin/useradd", "-m", "ec2-user", uid=0, parent=s.proc("/usr/bin/cloud-init", "init", pid=300, uid=0))),),
        ),
    )  # fmt: skip
