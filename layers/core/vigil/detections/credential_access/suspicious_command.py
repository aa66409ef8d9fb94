"""CredentialAccess:Runtime/SuspiciousCommand (Vigil-specific): a command that reads credentials.

Mechanisms (issue 17), by command line:
- ``imds-credentials``: the instance role's credentials fetched from the metadata service
  (``/latest/meta-data/iam/security-credentials/``), IMDSv1 or with an IMDSv2 token header;
- ``shadow-read``: /etc/shadow or /etc/gshadow read by a file reader, encoder, copier or cracker;
- ``process-memory``: another process's memory read (``/proc/PID/mem``, ``gcore``, gdb ``dump
  memory``, ``strace -p`` on reads) or every process's environment (``/proc/*/environ``);
- ``credential-files``: cloud, cluster and tool credentials read (``~/.aws/credentials``, the
  Kubernetes service-account token, ``.git-credentials``, ``.netrc``, ``.pgpass``, private keys);
- ``secret-search``: searching the filesystem for keys and passwords (``grep -r`` for secrets,
  ``find`` for private keys).

Severity follows who ran it: High from a web/app server or cron child, Medium otherwise, Low in an
administrator's interactive session for credential files and secret searches (what admins do when
debugging); role credentials, shadow reads and memory dumps stay Medium there.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context, memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import DOWNLOADERS, SHELL_NAMES, base_name, by_package_manager, session, shell_command

IMDS_HOSTS: Final = ("169.254.169.254", "fd00:ec2::254", "instance-data.ec2.internal")
IMDS_SECRETS: Final = ("security-credentials", "identity-credentials")
SHADOW_FILES: Final = ("/etc/shadow", "/etc/gshadow", "/etc/security/opasswd")
READERS: Final = frozenset(
    {"cat", "tac", "head", "tail", "less", "more", "view", "base64", "base32", "basenc", "xxd", "od", "hexdump", "strings",
     "cp", "dd", "grep", "egrep", "fgrep", "rg", "awk", "gawk", "mawk", "sed",
     "cut", "sort", "uniq", "nl", "paste", "diff", "unshadow", "john", "hashcat", "openssl",
     "python", "python2", "python3", "perl", "ruby", "php", "node", "busybox", "install", "split",
     "tee", "look", "fold", "expand", "column", "iconv", "comm", "join", "pr", "fmt", "rev", "jq", "sqlite3", "file"}
)  # fmt: skip
_PROC_MEM: Final = re.compile(r"/proc/(?:\d+|self|\*|\$\w+|\[0-9\]\*)/(?:task/\d+/)?mem\b")
_PROC_ENVIRON: Final = re.compile(r"/proc/(?:\*|\d+|\[0-9\]\*|\$\w+)/environ\b")
CREDENTIAL_FILES: Final = re.compile(
    r"(?:/\.aws/credentials|/serviceaccount/token|/\.git-credentials|/\.netrc|/\.pgpass|/\.my\.cnf|/\.docker/config\.json"
    r"|/\.kube/config|/\.ssh/id_(?:rsa|dsa|ecdsa|ed25519)(?:\s|$|\")|/\.gnupg/private-keys|/\.vault-token|/\.boto\b"
    r"|/\.azure/accessTokens|/\.config/gcloud/credentials|/etc/ssh/ssh_host_\w+_key(?:\s|$))"
)
_SECRET_WORDS: Final = re.compile(
    r"passw(?:or)?d|secret|aws_secret_access_key|aws_access_key_id|api[_-]?key|BEGIN (?:RSA |OPENSSH |EC |DSA )?PRIVATE KEY|token",
    re.I,
)
_KEY_NAMES: Final = re.compile(
    r"^(?:id_rsa|id_dsa|id_ecdsa|id_ed25519|\*\.pem|\*\.key|\.git-credentials|credentials|\*\.ppk|\*\.kdbx|\.pgpass|\.netrc)$"
)
_DUMPERS: Final = frozenset({"gcore", "procdump", "unshadow", "3snake", "swap_digger"})
_ADMIN_LOW: Final = frozenset({"credential-files", "secret-search"})


def _texts(event: ProcessActivity) -> tuple[str, ...]:
    p = event.process
    script = shell_command(p)
    return (script,) if script else tuple(p.args[1:])


_NAMES: Final = (
    READERS
    | _DUMPERS
    | DOWNLOADERS
    | SHELL_NAMES
    | frozenset(
        {"gdb", "strace", "find", "grep", "egrep", "fgrep", "rg", "ruby", "php", "node", "lua", "wget2"}
    )
)


@memo_by_command
def _mechanism(event: ProcessActivity) -> str:
    p = event.process
    name = base_name(p)
    if name not in _NAMES and name.rstrip("0123456789.") not in _NAMES:
        return ""
    texts = _texts(event)
    joined = " ".join(texts)
    script = shell_command(p) != ""
    if any(h in joined for h in IMDS_HOSTS) and any(k in joined for k in IMDS_SECRETS):
        return "imds-credentials"
    reader = script or name in READERS or name.rstrip("0123456789.") in READERS
    if name in _DUMPERS:
        return "shadow-read" if name == "unshadow" else "process-memory"
    if reader and any(f in joined for f in SHADOW_FILES):
        return "shadow-read"
    if (reader or name == "dd") and _PROC_MEM.search(joined):
        return "process-memory"
    if (name == "gdb" and "dump memory" in joined) or (
        name == "gdb" and re.search(r"generate-core-file|gcore", joined)
    ):
        return "process-memory"
    if name == "strace" and "-p" in texts and re.search(r"(?:-e\s*|trace=)(?:read|write)", joined):
        return "process-memory"
    if reader and _PROC_ENVIRON.search(joined):
        return "process-memory"
    if reader and CREDENTIAL_FILES.search(joined):
        return "credential-files"
    if name in ("grep", "egrep", "fgrep", "rg") and any(
        a.startswith("-") and ("r" in a or "R" in a) for a in texts
    ):
        pattern = next((a for a in texts if not a.startswith("-")), "")
        if _SECRET_WORDS.search(pattern):
            return "secret-search"
    if name == "find" and "/" in texts:
        for i, a in enumerate(texts[:-1]):
            if a in ("-name", "-iname") and _KEY_NAMES.match(texts[i + 1]):
                return "secret-search"
    return ""


class CredentialAccessSuspiciousCommand(Detection):
    meta = Meta(
        type="CredentialAccess:Runtime/SuspiciousCommand",
        severity=severity.MEDIUM,
        title="A command that reads credentials was executed",
        description=(
            "A process ran a command that reads credentials: the instance role's keys from the metadata service, the "
            "password hashes in /etc/shadow, another process's memory or environment, cloud and cluster credential files, "
            "or a filesystem-wide search for keys and passwords. Vigil-specific type (GuardDuty has no runtime "
            "CredentialAccess type)."
        ),
        mitre=("T1552.005", "T1003.008", "T1003.007", "T1552.001", "T1552.004"),
        runbook=(
            "Read commandLineExample and the lineage. For instance-role credentials, look in CloudTrail for the role's "
            "session used from outside the instance and revoke its sessions; rotate every secret the command could read."
        ),
        false_positives=(
            "Administrators debugging credentials at a terminal (Low for credential files and searches).",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1552/005/",
            "https://attack.mitre.org/techniques/T1003/008/",
        ),
    )
    kinds = frozenset({"process_exec"})
    programs = _NAMES  # _mechanism returns "" for every other program (versions stripped)

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _mechanism(event) != "" and not by_package_manager(event.process)

    def severity(self, event: ProcessActivity) -> float:
        who = session(event.process)
        if who == "service":
            return severity.HIGH
        if who == "interactive" and _mechanism(event) in _ADMIN_LOW:
            return severity.LOW
        return severity.MEDIUM

    def dedup_key(self, event: ProcessActivity) -> str:
        return f"{_mechanism(event)}|{event.process.cmd_line[:256]}"

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        # RuntimeContext has no IMDS field: the token header in commandLineExample tells v2 from v1
        return command_context(event.process)

    _WEB: ClassVar = s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, stdin=s.pipe())
    fires: ClassVar = (
        Example("curl of the role credentials (IMDSv1)", (s.exec_(s.proc("/usr/bin/curl", "-s", "http://169.254.169.254/latest/meta-data/iam/security-credentials/app-role")),)),
        Example("IMDSv2: token header, then the credentials, from a web shell (High)", (s.exec_(s.proc("/usr/bin/curl", "-s", "-H", "X-aws-ec2-metadata-token: AQAE", "http://169.254.169.254/latest/meta-data/iam/security-credentials/web", uid=33, parent=_WEB)),)),
        Example("python one-liner fetching role credentials", (s.exec_(s.proc("/usr/bin/python3", "-c", "import urllib.request as u;print(u.urlopen('http://169.254.169.254/latest/meta-data/iam/security-credentials/x').read())")),)),
        Example("cat /etc/shadow", (s.exec_(s.proc("/usr/bin/cat", "/etc/shadow", uid=0)),)),
        Example("base64 of /etc/shadow by a setuid copy (GTFOBins file read)", (s.exec_(s.proc("/usr/bin/base64", "/etc/shadow", euid=0)),), also_fires=frozenset({"PrivilegeEscalation:Runtime/ElevationToRoot"})),
        Example("unshadow", (s.exec_(s.proc("/usr/sbin/unshadow", "/etc/passwd", "/etc/shadow", uid=0)),)),
        Example("dd of sshd's memory", (s.exec_(s.proc("/usr/bin/dd", "if=/proc/812/mem", "of=/tmp/m", "bs=1", "skip=9400", uid=0)),)),
        Example("gdb dumping init's memory", (s.exec_(s.proc("/usr/bin/gdb", "-p", "1", "--batch", "-ex", "dump memory /tmp/m 0x7f0000 0x7f9000", uid=0)),)),
        Example("every process's environment", (s.exec_(s.proc("/bin/sh", "-c", "cat /proc/*/environ | tr '\\0' '\\n' | grep -i key")),)),
        Example("AWS credential files from a web shell", (s.exec_(s.proc("/bin/sh", "-c", "cat /home/*/.aws/credentials", uid=33, parent=_WEB)),)),
        Example("grep -r for AWS secrets", (s.exec_(s.proc("/usr/bin/grep", "-rniI", "aws_secret_access_key", "/")),)),
        Example("find / for private keys", (s.exec_(s.proc("/usr/bin/find", "/", "-name", "id_rsa")),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("curl of the instance id", (s.exec_(s.proc("/usr/bin/curl", "-s", "http://169.254.169.254/latest/meta-data/instance-id")),)),
        Example("IMDSv2 token alone", (s.exec_(s.proc("/usr/bin/curl", "-sX", "PUT", "http://169.254.169.254/latest/api/token", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60")),)),
        Example("ls -l /etc/shadow", (s.exec_(s.proc("/usr/bin/ls", "-l", "/etc/shadow")),)),
        Example("sha256sum of /etc/shadow (integrity scan)", (s.exec_(s.proc("/usr/bin/sha256sum", "/etc/shadow", uid=0)),)),
        Example("cat of a process's status", (s.exec_(s.proc("/usr/bin/cat", "/proc/812/status")),)),
        Example("grep -r for a config key", (s.exec_(s.proc("/usr/bin/grep", "-rn", "server_name", "/etc/nginx")),)),
        Example("find by name in a project", (s.exec_(s.proc("/usr/bin/find", ".", "-name", "*.pem")),)),
        Example("aws configure list", (s.exec_(s.proc("/usr/local/bin/aws", "configure", "list")),)),
    )  # fmt: skip
