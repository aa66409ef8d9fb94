"""Scenarios as data: a small, readable event language turned into Vigil's normalized events.

`make detection-quality` measures recall on attack scenarios and false alarms on benign
administrator scenarios written in this language (benchmarks/scenarios/*.toml). A scenario is a
short sequence of what the agent would report on one instance, in order:

    [[scenario]]
    id = "gtfobins-find-exec"
    tactic = "execution"               # ATT&CK tactic, snake_case (attack files only)
    source = "GTFOBins: find (shell)"  # where the technique description came from
    context = "web"                    # who runs the execs (see CONTEXTS); default "terminal"
    events = [
      { exec = "/usr/bin/find . -exec /bin/sh -p ; -quit" },
      { exec = "/bin/sh -p", parent = "prev" },
    ]

Event forms (``by`` = the acting process's command line, default: the last exec):
  exec = "CMD" or ["argv0", ...]  (argv[0] is the executable's path) with optional uid, euid,
      parent ("prev" = the previous exec, or a context name), stdin/stdout/stderr ("tty", "pipe",
      "pipe:N" (a pipe inode), "null", "file:/path", "sock:IP:PORT"), ld_preload, container, cwd
  open = PATH (a read of a watched secret: file_open_sensitive) | write = PATH | unlink = PATH
  rename = SRC, to = DST | symlink = TARGET, to = LINK
  dns = HOSTNAME, answers = [IP...] | connect = "IP:PORT" | listen = "IP:PORT"
  module = NAME, path = PATH | library = PATH | memfd = NAME | ptrace = REQUEST, target = CMD
  proc_mem = PID (a write-open of /proc/PID/mem) | unix = SOCKET_PATH

Addresses are documentation ranges or loopback; nothing here is contacted.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from vigil import events as ev
from vigil import sample as s

HERE: Final = Path(__file__).resolve().parent / "scenarios"
TACTICS: Final = (
    "execution", "persistence", "privilege_escalation", "defense_evasion", "credential_access",
    "discovery", "collection", "command_and_control", "exfiltration", "impact", "lateral_movement",
)  # fmt: skip
CORE_TACTICS: Final = frozenset(
    {"execution", "persistence", "privilege_escalation", "defense_evasion", "credential_access"}
)


class ScenarioError(ValueError):
    pass


def _login_shell(uid: int) -> ev.Process:
    sshd = s.proc("/usr/sbin/sshd", "-D", pid=812, uid=0, cwd="/")
    session = s.proc("/usr/sbin/sshd", pid=2000, uid=0, parent=sshd)
    return s.proc("/bin/bash", pid=2001, uid=uid, parent=session, cwd="/home/ec2-user" if uid else "/root")


def _contexts() -> dict[str, ev.Process]:
    systemd = s.proc(
        "/usr/lib/systemd/systemd", pid=1, uid=0, cwd="/", stdin=ev.Stdio(type="file", path="/dev/null")
    )
    quiet = {"stdin": ev.Stdio(type="file", path="/dev/null"), "stdout": s.pipe(), "stderr": s.pipe()}
    nginx = s.proc("/usr/sbin/nginx", pid=900, uid=0, parent=systemd, cwd="/", **quiet)
    php = s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, parent=systemd, cwd="/var/www/html", **quiet)
    tomcat = s.proc("/usr/lib/jvm/java-17/bin/java", "-jar", "catalina.jar", pid=960, uid=998, parent=systemd, cwd="/opt/tomcat", **quiet)  # fmt: skip
    cron = s.proc("/usr/sbin/cron", "-f", pid=700, uid=0, parent=systemd, cwd="/", **quiet)
    cron_sh = s.proc(
        "/bin/sh", "-c", "/usr/local/bin/job.sh", pid=7001, uid=0, parent=cron, cwd="/root", **quiet
    )
    user_shell = _login_shell(1000)
    sudo = s.proc("/usr/bin/sudo", "-i", pid=2100, uid=0, parent=user_shell)
    root_shell = s.proc("/bin/bash", pid=2101, uid=0, parent=sudo, cwd="/root")
    return {
        "terminal": user_shell,  # an administrator's interactive ssh session (tty)
        "root-terminal": root_shell,  # the same after `sudo -i`
        "web": s.proc(
            "/bin/sh", "-c", "php-exec", pid=3001, uid=33, parent=php, cwd="/var/www/html", **quiet
        ),
        "nginx": nginx,
        "java": tomcat,
        "cron": cron_sh,
        "service": systemd,
    }


CONTEXTS: Final = _contexts()


def _stdio(spec: str | None) -> ev.Stdio | None:
    if spec is None:
        return None
    if spec == "tty":
        return s.tty()
    if spec == "pipe":
        return s.pipe()
    if spec.startswith("pipe:"):
        return ev.Stdio(type="pipe", path=f"pipe:[{int(spec[5:])}]")
    if spec == "null":
        return ev.Stdio(type="file", path="/dev/null")
    if spec.startswith("file:"):
        return ev.Stdio(type="file", path=spec[5:])
    if spec.startswith("sock:"):
        ip, _, port = spec[5:].rpartition(":")
        return s.sock(ip.strip("[]"), int(port))
    raise ScenarioError(f"unknown stdio {spec!r}")


def _argv(cmd: Any) -> list[str]:
    if isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd):
        return cmd
    if isinstance(cmd, str) and cmd.strip():
        return shlex.split(cmd)
    raise ScenarioError(f"a command is a string or a list of strings, got {cmd!r}")


def _endpoint(spec: str) -> tuple[str, int]:
    ip, _, port = spec.rpartition(":")
    return ip.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    tactic: str
    source: str
    events: tuple[ev.Event, ...]
    expect: str = ""  # optional: the finding type this scenario is written for


class _Builder:
    def __init__(self, context: str, uid: int | None) -> None:
        if context not in CONTEXTS:
            raise ScenarioError(f"unknown context {context!r} (one of {sorted(CONTEXTS)})")
        self.context = CONTEXTS[context]
        self.uid = self.context.user.uid if uid is None else uid
        self.last: ev.Process | None = None
        self.pid = 5000
        self.t = 0

    def _next_pid(self) -> int:
        self.pid += 1
        return self.pid

    def process(self, cmd: Any, d: dict[str, Any], parent: ev.Process | None = None) -> ev.Process:
        argv = _argv(cmd)
        if parent is None:
            pspec = d.get("parent")
            if pspec == "prev":
                if self.last is None:
                    raise ScenarioError("parent = 'prev' before any exec")
                parent = self.last
            elif isinstance(pspec, str):
                if pspec not in CONTEXTS:
                    raise ScenarioError(f"unknown parent {pspec!r}")
                parent = CONTEXTS[pspec]
            elif pspec is None:
                parent = self.context
            else:
                raise ScenarioError(f"parent must be 'prev' or a context name, got {pspec!r}")
        inherited = parent if parent is not None and parent.stdin is not None else None
        uid = int(d.get("uid", self.uid))
        p = s.proc(
            argv[0],
            *argv[1:],
            pid=self._next_pid(),
            uid=uid,
            euid=int(d["euid"]) if "euid" in d else None,
            cwd=str(d.get("cwd", parent.working_directory if parent is not None else "/")),
            parent=parent,
            stdin=_stdio(d.get("stdin")) or (inherited.stdin if inherited else None),
            stdout=_stdio(d.get("stdout")) or (inherited.stdout if inherited else None),
            stderr=_stdio(d.get("stderr")) or (inherited.stderr if inherited else None),
            container=str(d.get("container", "")),
            ld_preload=str(d.get("ld_preload", "")),
            exe_deleted=bool(d.get("exe_deleted", False)),
        )
        if p.tty == "" and p.stdin is not None and p.stdin.type == "tty":
            p = msgspec.structs.replace(p, tty=p.stdin.path)
        return p

    def actor(self, d: dict[str, Any]) -> ev.Process:
        if "by" in d:
            return self.process(d["by"], d)
        if self.last is None:
            raise ScenarioError(f"{sorted(d)}: no 'by' and no exec before it")
        return self.last

    def event(self, d: dict[str, Any]) -> ev.Event:
        self.t += 1_000_000  # 1 ms apart, in order
        t = self.t
        if "exec" in d:
            p = self.process(d["exec"], d)
            self.last = p
            return s.exec_(p, t=t)
        for kind, form in (
            ("open", "file_open_sensitive"),
            ("write", "file_write"),
            ("unlink", "file_unlink"),
        ):
            if kind in d:
                return s.file_op(self.actor(d), form, str(d[kind]), t=t)
        if "rename" in d:
            return s.file_op(self.actor(d), "file_rename", str(d["rename"]), new_path=str(d["to"]), t=t)
        if "symlink" in d:
            return s.file_op(
                self.actor(d), "file_link", str(d["to"]), new_path=str(d["symlink"]), symbolic=True, t=t
            )
        if "dns" in d:
            return s.dns(str(d["dns"]), *[str(a) for a in d.get("answers", [])], process=self.actor(d), t=t)
        if "connect" in d:
            ip, port = _endpoint(str(d["connect"]))
            return s.connect(self.actor(d), ip, port, t=t)
        if "listen" in d:
            ip, port = _endpoint(str(d["listen"]))
            return s.listen(self.actor(d), ip, port, t=t)
        if "unix" in d:
            return s.unix_connect(self.actor(d), str(d["unix"]), t=t)
        if "module" in d:
            return s.module_load(self.actor(d), str(d["module"]), str(d.get("path", "")), t=t)
        if "library" in d:
            return s.library_load(self.actor(d), str(d["library"]), t=t)
        if "memfd" in d:
            p = self.actor(d)
            name = str(d["memfd"])
            p = msgspec.structs.replace(
                p, file=ev.File(path=f"/memfd:{name} (deleted)", name=f"memfd:{name}"), exe_deleted=True
            )
            return s.memfd_exec(p, name, t=t)
        if "ptrace" in d:
            target = self.process(d.get("target", "/usr/sbin/sshd -D"), {}, parent=CONTEXTS["service"])
            return s.inject(self.actor(d), "ptrace", target, request=str(d["ptrace"]), t=t)
        if "proc_mem" in d:
            pid = int(d["proc_mem"])
            target = msgspec.structs.replace(
                self.process("/usr/sbin/sshd -D", {}, parent=CONTEXTS["service"]), pid=pid
            )
            return s.inject(self.actor(d), "proc_mem_write", target, path=f"/proc/{pid}/mem", t=t)
        raise ScenarioError(f"unknown event {sorted(d)}")


def build(raw: dict[str, Any], *, need_tactic: bool = True) -> Scenario:
    sid = str(raw.get("id", ""))
    try:
        tactic = str(raw.get("tactic", ""))
        if need_tactic and tactic not in TACTICS:
            raise ScenarioError(f"tactic {tactic!r} is not one of {TACTICS}")
        b = _Builder(str(raw.get("context", "terminal")), raw.get("uid"))
        items = raw.get("events")
        if not isinstance(items, list) or not items:
            raise ScenarioError("needs a non-empty events list")
        built = tuple(b.event(d) for d in items)
    except (ScenarioError, ValueError, KeyError, TypeError) as e:
        raise ScenarioError(f"scenario {sid or '?'}: {e}") from None
    return Scenario(
        id=sid,
        tactic=tactic,
        source=str(raw.get("source", "")),
        events=built,
        expect=str(raw.get("expect", "")),
    )


def load(path: Path, *, need_tactic: bool = True) -> list[Scenario]:
    data = tomllib.loads(path.read_text())
    out = [build(r, need_tactic=need_tactic) for r in data.get("scenario", [])]
    ids = [x.id for x in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ScenarioError(f"{path.name}: duplicate scenario ids {sorted(dup)}")
    return out
