"""The audit rules the agent installs: which syscalls, which watched paths, and the filters that
keep their volume low (success only, ptrace requests that write, setuid to root, never the agent).

Syscall numbers per architecture are tables here (no libaudit needed).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable

from vigil_agent.auditnl import (
    ARCH_AARCH64,
    ARCH_I386,
    ARCH_X86_64,
    AUDIT_ARCH,
    AUDIT_ARG0,
    AUDIT_ARG1,
    AUDIT_DIR,
    AUDIT_EXE,
    AUDIT_EXIT,
    AUDIT_FILTER_EXCLUDE,
    AUDIT_FILTERKEY,
    AUDIT_MSGTYPE,
    AUDIT_PERM,
    AUDIT_PERM_ATTR,
    AUDIT_PERM_READ,
    AUDIT_PERM_WRITE,
    AUDIT_PID,
    AUDIT_SUCCESS,
    AUDIT_WATCH,
    Rule,
)

SYSCALLS: dict[int, dict[str, int]] = {
    ARCH_X86_64: {
        "execve": 59,
        "execveat": 322,
        "connect": 42,
        "accept": 43,
        "accept4": 288,
        "listen": 50,
        "ptrace": 101,
        "process_vm_writev": 311,
        "init_module": 175,
        "finit_module": 313,
        "memfd_create": 319,
        "mount": 165,
        "userfaultfd": 323,
        "setuid": 105,
        "setresuid": 117,
        "setreuid": 113,
        # file syscalls (only to name events from watch rules)
        "open": 2,
        "openat": 257,
        "creat": 85,
        "truncate": 76,
        "ftruncate": 77,
        "rename": 82,
        "renameat": 264,
        "renameat2": 316,
        "unlink": 87,
        "unlinkat": 263,
        "link": 86,
        "linkat": 265,
        "symlink": 88,
        "symlinkat": 266,
        "openat2": 437,
        "rmdir": 84,
        "mkdir": 83,
        "mkdirat": 258,
        "chmod": 90,
        "fchmodat": 268,
        "chown": 92,
        "fchownat": 260,
        "lchown": 94,
        "fchmod": 91,
        "fchown": 93,
        "setxattr": 188,
        "removexattr": 197,
        "utimensat": 280,
    },
    ARCH_I386: {
        "execve": 11,
        "execveat": 358,
        "connect": 362,
        "accept4": 364,
        "listen": 363,
        "ptrace": 26,
        "process_vm_writev": 348,
        "init_module": 128,
        "finit_module": 350,
        "memfd_create": 356,
        "mount": 21,
        "userfaultfd": 374,
        "setuid": 213,
        "setresuid": 208,
        "setreuid": 203,
        "open": 5,
        "openat": 295,
        "creat": 8,
        "truncate": 92,
        "ftruncate": 93,
        "rename": 38,
        "renameat": 302,
        "renameat2": 353,
        "unlink": 10,
        "unlinkat": 301,
        "link": 9,
        "linkat": 303,
        "symlink": 83,
        "symlinkat": 304,
        "openat2": 437,
    },
    ARCH_AARCH64: {
        "execve": 221,
        "execveat": 281,
        "connect": 203,
        "accept": 202,
        "accept4": 242,
        "listen": 201,
        "ptrace": 117,
        "process_vm_writev": 271,
        "init_module": 105,
        "finit_module": 273,
        "memfd_create": 279,
        "mount": 40,
        "userfaultfd": 282,
        "setuid": 146,
        "setresuid": 147,
        "setreuid": 145,
        "openat": 56,
        "truncate": 45,
        "ftruncate": 46,
        "renameat": 38,
        "renameat2": 276,
        "unlinkat": 35,
        "linkat": 37,
        "symlinkat": 36,
        "openat2": 437,
        "mkdirat": 34,
        "fchmodat": 53,
        "fchownat": 54,
        "fchmod": 52,
        "fchown": 55,
        "setxattr": 5,
        "utimensat": 88,
    },
}
# number -> name, per arch (the parser names syscalls with this)
SYSCALL_NAMES: dict[int, dict[int, str]] = {a: {nr: n for n, nr in t.items()} for a, t in SYSCALLS.items()}

EINPROGRESS = 115
PTRACE_WRITES = ((">=", 4), ("<=", 6))  # POKETEXT, POKEDATA, POKEUSER
PTRACE_SINGLE = (0, 13, 16, 0x4206)  # TRACEME, SETREGS, ATTACH, SEIZE

# Sensitive paths (DESIGN: writes/renames/unlinks/links). Directories are watched recursively.
SENSITIVE_PATHS: tuple[str, ...] = (
    # accounts, privilege, PAM
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/pam.d",
    "/etc/security",
    "/etc/ld.so.preload",
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d",
    "/root/.ssh",
    # scheduled tasks
    "/etc/crontab",
    "/etc/cron.d",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/var/spool/cron",
    "/etc/anacrontab",
    # services and boot scripts
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/etc/init.d",
    "/etc/rc.local",
    # shell startup
    "/etc/profile",
    "/etc/profile.d",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/environment",
    "/root/.bashrc",
    "/root/.profile",
    "/root/.bash_profile",
    "/root/.bash_logout",
    # logs and history (tampering)
    "/var/log",
    "/root/.bash_history",
    "/root/.zsh_history",
)
READ_SENSITIVE: tuple[str, ...] = ("/etc/shadow", "/etc/gshadow")  # reads become file_open_sensitive
HOME_FILES = (".ssh", ".bashrc", ".profile", ".bash_profile", ".bash_history", ".zsh_history")
MAX_HOMES = 64


def native_arches() -> list[int]:
    m = platform.machine()
    if m in ("x86_64", "amd64"):
        return [ARCH_X86_64, ARCH_I386]
    if m in ("aarch64", "arm64"):
        return [ARCH_AARCH64]
    return []


def user_homes(passwd: str = "/etc/passwd") -> list[str]:
    homes: list[str] = []
    try:
        with open(passwd) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[5].startswith("/home/") and parts[5] not in homes:
                    homes.append(parts[5])
    except OSError:
        pass
    return homes[:MAX_HOMES]


def watch_paths(extra: Iterable[str] = (), defaults: bool = True) -> list[str]:
    paths = list(SENSITIVE_PATHS) if defaults else []
    if defaults:
        for home in user_homes():
            paths += [f"{home}/{name}" for name in HOME_FILES]
    for p in extra:
        if p not in paths:
            paths.append(p)
    return paths


def build_rules(
    *,
    key: str,
    agent_pid: int,
    arches: Iterable[int],
    watched: Iterable[str],
    exclude_exes: Iterable[str] = (),
    connect_failures: bool = False,
    skip: Iterable[str] = (),
) -> list[Rule]:
    """Every rule carries ``pid!=agent`` (no feedback loop), exe exclusions and the agent's key.

    ``skip``: rule groups another sensor covers ("exec", "net": the eBPF sensor's)."""
    skipped = frozenset(skip)
    tail: list[tuple[int, str, int | str]] = [(AUDIT_PID, "!=", agent_pid)]
    tail += [(AUDIT_EXE, "!=", exe) for exe in exclude_exes]
    tail.append((AUDIT_FILTERKEY, "=", key))
    rules: list[Rule] = []

    for arch in arches:
        t = SYSCALLS[arch]

        def nrs(*names: str, _t: dict[str, int] = t) -> tuple[int, ...]:
            return tuple(_t[n] for n in names if n in _t)

        a: list[tuple[int, str, int | str]] = [(AUDIT_ARCH, "=", arch)]

        def add(
            syscalls: tuple[int, ...],
            extra: list[tuple[int, str, int | str]],
            label: str,
            _a: list[tuple[int, str, int | str]] = a,
        ) -> None:
            if syscalls and label.split("-")[0] not in skipped:
                rules.append(Rule(tuple(_a + extra + tail), syscalls, label))

        add(nrs("execve", "execveat"), [(AUDIT_SUCCESS, "=", 1)], "exec")
        if connect_failures:
            add(nrs("connect", "accept", "accept4", "listen"), [], "net")
        else:
            add(nrs("connect", "accept", "accept4", "listen"), [(AUDIT_SUCCESS, "=", 1)], "net")
            add(nrs("connect"), [(AUDIT_EXIT, "=", -EINPROGRESS)], "net-nonblocking")
        add(nrs("ptrace"), [(AUDIT_ARG0, op, v) for op, v in PTRACE_WRITES], "ptrace-poke")
        for req in PTRACE_SINGLE:
            add(nrs("ptrace"), [(AUDIT_ARG0, "=", req)], f"ptrace-{req}")
        add(
            nrs("process_vm_writev", "init_module", "finit_module", "memfd_create", "mount", "userfaultfd"),
            [],
            "injection-modules-mounts",
        )
        add(nrs("setuid"), [(AUDIT_ARG0, "=", 0)], "setuid-root")
        add(nrs("setresuid", "setreuid"), [(AUDIT_ARG1, "=", 0)], "setresuid-root")

    for path in watched:
        path = os.path.normpath(path)
        if os.path.isdir(path):
            fid = AUDIT_DIR
        elif os.path.isdir(os.path.dirname(path)):
            fid = AUDIT_WATCH
        else:
            continue
        perm = AUDIT_PERM_WRITE | AUDIT_PERM_ATTR
        if path in READ_SENSITIVE:
            perm |= AUDIT_PERM_READ
        rules.append(Rule(tuple([(fid, "=", path), (AUDIT_PERM, "=", perm), *tail]), (), f"watch:{path}"))
    return rules


# Record types the agent never reads and that are emitted for most of its events: PROCTITLE comes
# with every syscall record (one in five of all records the agent would read), BPRM_FCAPS with
# execs of files with capabilities. The exclude list is global (auditd would lose them too), so
# the agent adds these only when no audit daemon is registered, and removes them on exit.
EXCLUDED_TYPES: tuple[tuple[int, str], ...] = ((1327, "PROCTITLE"), (1321, "BPRM_FCAPS"))


def build_exclude_rules(*, key: str) -> list[Rule]:
    return [
        Rule(
            ((AUDIT_MSGTYPE, "=", t), (AUDIT_FILTERKEY, "=", key)),
            (),
            f"exclude:{name}",
            listnr=AUDIT_FILTER_EXCLUDE,
        )
        for t, name in EXCLUDED_TYPES
    ]
