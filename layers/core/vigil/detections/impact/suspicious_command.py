"""Impact:Runtime/SuspiciousCommand (Vigil-specific): a command that destroys, wipes or encrypts data.

Mechanisms:
- ``disk-wipe``: a block device overwritten or erased (``dd of=/dev/nvme0n1``, ``wipefs -a``,
  ``shred /dev/xvdf``, ``blkdiscard``);
- ``mass-delete``: ``rm -rf`` of the root or a system/data directory, or with ``--no-preserve-root``;
- ``encrypt-and-delete``: files encrypted with openssl/gpg/ccrypt and the originals removed, or
  encryption in a loop over files (ransomware's shape);
- ``data-shred``: data files shredded (history and logs are DefenseEvasion's);
- ``stop-datastore``: a database stopped or killed by a web/app server's or cron child.

High from a web/app server or cron child and for wipes; Medium otherwise. Package managers excluded.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context, memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import SHELL_NAMES, base_name, by_package_manager, is_shell, session, shell_command

_BLOCK_DEV: Final = re.compile(
    r"^(?:of=)?/dev/(?:sd[a-z]+|nvme\d+n\d+|xvd[a-z]+|vd[a-z]+|hd[a-z]+|mmcblk\d+|dm-\d+|mapper/\S+|md\d+|disk/\S+)"
)
CRITICAL_DIRS: Final = frozenset(
    {"/", "/*", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/var", "/var/lib", "/home", "/root", "/opt",
     "/srv", "/var/www", "/var/lib/mysql", "/var/lib/postgresql", "/var/lib/mongodb", "/var/lib/docker", "/var/backups",
     "/var/lib/redis", "/data", "/mnt/data"}
)  # fmt: skip
_ENCRYPT: Final = re.compile(
    r"\bopenssl\s+(?:enc|aes-\d+-\w+|des3?)\b|\bgpg\b[^|;&]*(?:-c\b|--symmetric|-e\b|--encrypt)|\bccrypt\b|\b7z\s+a\b[^|;&]*-p"
)
_REMOVE: Final = re.compile(r"\b(?:rm|shred|unlink)\b")
_LOOP: Final = re.compile(r"\bfor\s+\w+\s+in\b|\bfind\b[^|;]*-exec|\bxargs\b")
DATASTORES: Final = frozenset(
    {"mysql", "mysqld", "mariadb", "postgresql", "postgres", "mongod", "mongodb", "redis", "redis-server",
     "elasticsearch", "cassandra", "memcached", "influxdb", "couchdb", "clickhouse-server", "etcd", "minio"}
)  # fmt: skip
_STOPPERS: Final = frozenset({"systemctl", "service", "pkill", "killall"})


def _rm_critical(args: list[str]) -> bool:
    flags = "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--"))
    if "--no-preserve-root" in args:
        return True
    return (
        "r" in flags.lower()
        and "f" in flags
        and any(a.rstrip("/") in CRITICAL_DIRS or a == "/" for a in args if not a.startswith("-"))
    )


@memo_by_command
def _mechanism(event: ProcessActivity) -> str:
    p = event.process
    name = base_name(p)
    args = list(p.args[1:])
    if name == "dd" and any(_BLOCK_DEV.match(a) for a in args if a.startswith("of=")):
        return "disk-wipe"
    if name == "wipefs" and any(a in ("-a", "--all") for a in args):
        return "disk-wipe"
    if name in ("shred", "blkdiscard") and any(_BLOCK_DEV.match(a) for a in args):
        return "disk-wipe"
    if name == "shred" and any(a.startswith("-") and "u" in a for a in args):
        targets = [a for a in args if not a.startswith("-")]
        if targets and not any("history" in t or t.startswith("/var/log/") for t in targets):
            return "data-shred"
        return ""
    if name == "rm" and _rm_critical(args):
        return "mass-delete"
    if is_shell(p):
        script = shell_command(p)
        if script and _ENCRYPT.search(script) and (_REMOVE.search(script) or _LOOP.search(script)):
            return "encrypt-and-delete"
        return ""
    if name in _STOPPERS:
        verbs = {"stop", "disable", "mask", "kill"} if name in ("systemctl", "service") else {""}
        units = {a.removesuffix(".service") for a in args if not a.startswith("-")}
        if (name not in ("systemctl", "service") or units & verbs) and units & DATASTORES:
            return "stop-datastore"
    return ""


class ImpactSuspiciousCommand(Detection):
    meta = Meta(
        type="Impact:Runtime/SuspiciousCommand",
        severity=severity.MEDIUM,
        title="A command that destroys or encrypts data was executed",
        description=(
            "A process overwrote a disk, deleted a system or data directory recursively, encrypted files and removed "
            "the originals, shredded data files, or stopped a database from a web or cron child: the shapes of wipers "
            "and ransomware. Vigil-specific type (GuardDuty's runtime Impact types are about mining and domains)."
        ),
        mitre=("T1485", "T1486", "T1561.001", "T1489"),
        runbook=(
            "Stop the process and isolate the instance at once; snapshot the volumes before anything else, then restore "
            "from backups and find the entry point from the lineage."
        ),
        false_positives=(
            "Decommissioning scripts wiping disks; administrators stopping databases by hand (not flagged).",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1485/",
            "https://attack.mitre.org/techniques/T1486/",
        ),
    )
    kinds = frozenset({"process_exec"})
    # every name _mechanism compares with, or a shell (is_shell: versions stripped)
    programs = frozenset({"dd", "wipefs", "shred", "blkdiscard", "rm"}) | _STOPPERS | SHELL_NAMES

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        m = _mechanism(event)
        if m == "" or by_package_manager(event.process):
            return False
        if m == "stop-datastore":
            return session(event.process) == "service"
        return True

    def severity(self, event: ProcessActivity) -> float:
        if _mechanism(event) == "disk-wipe" or session(event.process) == "service":
            return severity.HIGH
        return severity.MEDIUM

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_mechanism(event)}|{event.process.cmd_line[:256]}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process)

    _WEB: ClassVar = s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, stdin=s.pipe())
    fires: ClassVar = (
        Example("dd over the root disk", (s.exec_(s.proc("/usr/bin/dd", "if=/dev/zero", "of=/dev/nvme0n1", "bs=1M", uid=0)),)),
        Example("wipefs -a", (s.exec_(s.proc("/usr/sbin/wipefs", "-a", "/dev/xvdf", uid=0)),)),
        Example("rm -rf --no-preserve-root /", (s.exec_(s.proc("/usr/bin/rm", "-rf", "--no-preserve-root", "/", uid=0)),)),
        Example("openssl encryption loop", (s.exec_(s.proc("/bin/sh", "-c", "for f in /var/www/*; do openssl enc -aes-256-cbc -in $f -out $f.enc -k x && rm $f; done")),)),
        Example("shred of a database file", (s.exec_(s.proc("/usr/bin/shred", "-uzn", "3", "/var/lib/mysql/ibdata1", uid=0)),)),
        Example("mysql stopped by a web shell", (s.exec_(s.proc("/usr/bin/systemctl", "stop", "mysql", uid=0, parent=_WEB)),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("dd writing an image file", (s.exec_(s.proc("/usr/bin/dd", "if=/dev/zero", "of=/tmp/swap.img", "bs=1M", "count=100")),)),
        Example("rm -rf of a build directory", (s.exec_(s.proc("/usr/bin/rm", "-rf", "/home/ec2-user/src/app/build")),)),
        Example("an admin stopping mysql", (s.exec_(s.proc("/usr/bin/systemctl", "stop", "mysql", uid=0, parent=s.LOGIN_SHELL)),)),
        Example("openssl making a certificate", (s.exec_(s.proc("/bin/sh", "-c", "openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem")),)),
        Example("gpg encrypting a backup, keeping it", (s.exec_(s.proc("/bin/sh", "-c", "gpg -e -r ops@example.com /var/backups/db.sql")),)),
    )  # fmt: skip
