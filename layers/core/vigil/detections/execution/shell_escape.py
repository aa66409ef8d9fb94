"""Execution:Runtime/ShellEscape (Vigil-specific): a program that should not start shells gave one out.

GTFOBins catalogues how ordinary programs (awk, vim, find, less, man, git, tar, zip, gdb, rsync,
expect ...) run a shell: the way out of restricted shells and, under sudo or setuid, to root.
Two mechanisms, so either event is enough:
- ``escape-command``: the program's own command line carries the escape (``awk 'BEGIN
  {system("/bin/sh")}'``, ``find -exec /bin/sh``, ``tar --checkpoint-action=exec=``, ``zip -TT``,
  ``vim -c ':!sh'``, ``gdb -ex '!sh'``, ``rsync -e 'sh -c ...'``, ``expect spawn sh``,
  ``perl -e 'exec "/bin/sh"'``, ``python -c 'pty.spawn(...)'``, ``socat ... exec:/bin/sh``);
- ``escape-shell``: an interactive shell (no script: bare, ``-i``, ``-p``, or ``-c`` running just a
  shell) whose parent is one of those programs.

Severity: High when the escape runs with more privilege than its user (euid 0, setuid or sudo in
the lineage), Medium otherwise; Low for ``:shell`` out of an editor in an administrator's own
interactive session.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context, memo_by_command
from vigil.events import Process, ProcessActivity
from vigil.vocab import (
    SHELL_NAMES,
    base_name,
    is_shell,
    lineage_has,
    session,
    shell_command,
    stdio_on_network_socket,
)

ESCAPERS: Final = frozenset(
    {"awk", "gawk", "mawk", "nawk", "busybox", "vim", "vi", "vim.basic", "vim.tiny", "nvim", "view", "rvim", "ex", "find",
     "less", "more", "man", "pager", "most", "git", "tar", "zip", "gdb", "rsync", "expect", "ftp", "ed", "nmap", "perl",
     "python", "python2", "python3", "ruby", "lua", "php", "socat", "script", "tclsh", "wish", "xargs", "flock", "nice",
     "ionice", "taskset", "timeout", "stdbuf", "watch", "run-parts", "start-stop-daemon", "cpulimit", "strace", "ltrace",
     "env", "journalctl", "systemctl", "mysql", "psql", "sqlite3", "aria2c", "make", "node", "jjs", "irb", "emacs",
     "nano", "pico", "dmesg", "sftp", "scp", "openssl", "crontab", "docker", "kubectl", "screen", "tmux", "ssh",
     "check_by_ssh", "unshare", "chroot", "capsh", "setarch", "valgrind", "pkexec"}
)  # fmt: skip
_EDITORS: Final = frozenset(
    {"vim", "vi", "vim.basic", "vim.tiny", "nvim", "view", "emacs", "nano", "pico", "ex", "rvim"}
)
_SH = r"(?:/usr)?(?:/bin/)?(?:ba|da|z|k|tc|c|fi|a)?sh\b"
ESCAPE_PATTERNS: Final = (
    re.compile(rf"\bsystem\s*\(\s*[\"']{_SH}"),  # awk / perl / ruby / lua
    re.compile(rf"\bexec\s*\(?\s*[\"']{_SH}"),  # perl exec "/bin/sh"
    re.compile(r"\bpty\.spawn\s*\("),  # python
    re.compile(rf"os\.(?:system|exec\w*|spawn\w*)\s*\(\s*[\"']{_SH}"),
    re.compile(rf"^:?!{_SH}"),  # vim -c ':!sh', gdb -ex '!sh', less !sh
    re.compile(rf"^(?::set shell={_SH}|:shell|:sh)$"),
    re.compile(rf"--checkpoint-action=exec={_SH}"),  # tar
    re.compile(rf"^{_SH}\s+#"),  # zip -TT 'sh #'
    re.compile(rf"^{_SH} -c \"?{_SH}"),  # rsync -e 'sh -c "sh 0<&2 1>&2"'
    re.compile(rf"spawn {_SH}"),  # expect
    re.compile(rf"exec:{_SH}"),  # socat
    re.compile(r"^--interactive$"),  # old nmap
)


_NETWORKED: Final = re.compile(
    r"socket|fsockopen|TCPSocket|IO::Socket|net\.connect|/dev/tcp/|tcp-connect:|tcp:", re.I
)


_BARE_SHELL: Final = re.compile(_SH)
_TRAILERS: Final = frozenset({"-p", "-i", "-ip", "-pi", "-l", "-il", "-li", ";", "\\;", "-quit", "+"})


def _escape_in_args(p: Process) -> bool:
    """An escape pattern in an argument; a one-liner that also opens a socket is a reverse shell
    (ReverseShell / Execution:Runtime/SuspiciousCommand), not an escape."""
    if stdio_on_network_socket(p) or any(_NETWORKED.search(a) for a in p.args[1:]):
        return False
    args = p.args[1:]
    if any(len(a) < 200 and any(rx.search(a) for rx in ESCAPE_PATTERNS) for a in args):
        return True
    # a bare shell as an argument with nothing after it but shell flags: find -exec /bin/sh -p \; -quit,
    # env /bin/sh, nice sh (a shell given a script or command to run is not an escape)
    for i, a in enumerate(args):
        if _BARE_SHELL.fullmatch(a):
            return all(x in _TRAILERS for x in args[i + 1 :])
    return False


def _interactive_shell(p: Process) -> bool:
    if not is_shell(p):
        return False
    script = shell_command(p)
    if script:
        return (
            bool(re.fullmatch(rf"\s*(?:exec\s+)?{_SH}(?:\s+-[ip]+)?(?:\s+[0-9]?[<>]&[0-9])*\s*#?.*", script))
            and len(script) < 80
        )
    rest = p.args[1:]
    return all(a.startswith("-") and not a.startswith("--") and "c" not in a for a in rest)


@memo_by_command
def _escape_command(event: ProcessActivity) -> bool:
    p = event.process
    name = base_name(p).rstrip("0123456789.") or base_name(p)
    return (name in ESCAPERS or base_name(p) in ESCAPERS) and not is_shell(p) and _escape_in_args(p)


def _mechanism(event: ProcessActivity) -> str:
    p = event.process
    if _escape_command(event):
        return "escape-command"
    parent = p.parent_process
    if parent is not None and _interactive_shell(p):
        pname = base_name(parent)
        if (pname in ESCAPERS or pname.rstrip("0123456789.") in ESCAPERS) and pname not in SHELL_NAMES:
            return "escape-shell"
    return ""


def _privileged(p: Process) -> bool:
    return (p.euid == 0 and p.user.uid not in (0, -1)) or lineage_has(
        p, frozenset({"sudo", "doas", "pkexec"})
    )


class ShellEscape(Detection):
    meta = Meta(
        type="Execution:Runtime/ShellEscape",
        severity=severity.MEDIUM,
        title="A program that should not start shells gave out a shell",
        description=(
            "A program such as awk, vim, find, less, tar, zip, gdb or rsync was used to start an interactive shell "
            "(GTFOBins techniques): an escape from a restricted shell, a web application or, under sudo or setuid, a "
            "route to root. Vigil-specific type."
        ),
        mitre=("T1059.004", "T1548.001", "T1548.003"),
        runbook=(
            "Read commandLineExample and the lineage: who could run that program, and with which privileges (sudoers "
            "rules, setuid bits)? Remove the sudo rule or setuid bit that allowed it and review what the shell did."
        ),
        false_positives=(
            "Developers using :shell in an editor or !sh in a pager at their own terminal (Low).",
        ),
        references=("https://gtfobins.github.io/", "https://attack.mitre.org/techniques/T1548/"),
    )
    kinds = frozenset({"process_exec"})
    programs = (
        ESCAPERS | SHELL_NAMES
    )  # escape-command needs an escaper (versions stripped), escape-shell a shell

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _mechanism(event) != ""

    def severity(self, event: ProcessActivity) -> float:
        p = event.process
        actor = p if _mechanism(event) == "escape-command" else (p.parent_process or p)
        if _privileged(p) or _privileged(actor):
            return severity.HIGH
        if base_name(actor) in _EDITORS and session(p) == "interactive":
            return severity.LOW
        return severity.MEDIUM

    def dedup_key(self, event: ProcessActivity) -> str:
        p = event.process
        actor = p if _mechanism(event) == "escape-command" else (p.parent_process or p)
        return f"{base_name(actor)}|{actor.cmd_line[:200]}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process)

    fires: ClassVar = (
        Example("awk system(\"/bin/sh\")", (s.exec_(s.proc("/usr/bin/awk", 'BEGIN {system("/bin/sh")}')),)),
        Example("a shell started by vim -c ':!/bin/sh'", (s.exec_(s.proc("/bin/sh", parent=s.proc("/usr/bin/vim", "-c", ":!/bin/sh", pid=10))),)),
        Example("find -exec /bin/sh -p as setuid root (High)", (s.exec_(s.proc("/usr/bin/find", ".", "-exec", "/bin/sh", "-p", ";", "-quit", euid=0)),), also_fires=frozenset({"PrivilegeEscalation:Runtime/ElevationToRoot"})),
        Example("tar checkpoint action", (s.exec_(s.proc("/usr/bin/tar", "-cf", "/dev/null", "/dev/null", "--checkpoint=1", "--checkpoint-action=exec=/bin/sh")),)),
        Example("a shell out of the pager git started", (s.exec_(s.proc("/bin/sh", "-c", "/bin/sh", parent=s.proc("/usr/bin/less", pid=11, parent=s.proc("/usr/bin/git", "-p", "help", pid=10)))),)),
        Example("python pty.spawn", (s.exec_(s.proc("/usr/bin/python3", "-c", 'import pty; pty.spawn("/bin/bash")')),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("awk summing a column", (s.exec_(s.proc("/usr/bin/awk", "{s+=$1} END {print s}", "data.txt")),)),
        Example("vim running ls", (s.exec_(s.proc("/bin/bash", "-c", "ls", parent=s.proc("/usr/bin/vim", "notes.txt", pid=10))),)),
        Example("find -exec grep", (s.exec_(s.proc("/usr/bin/find", ".", "-name", "*.py", "-exec", "grep", "-l", "x", "{}", "+")),)),
        Example("a git hook script", (s.exec_(s.proc("/bin/sh", ".git/hooks/pre-commit", parent=s.proc("/usr/bin/git", "commit", pid=10))),)),
        Example("make running a recipe", (s.exec_(s.proc("/bin/sh", "-c", "gcc -c x.c", parent=s.proc("/usr/bin/make", pid=10))),)),
    )  # fmt: skip
