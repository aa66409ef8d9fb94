"""Discovery:Runtime/SuspiciousCommand: a command that maps the instance, its cloud identity or its cluster.

Signals with little everyday use on a server: enumerating IAM/STS/Secrets Manager with the AWS CLI, asking Kubernetes what the
pod may do, and searching the filesystem for setuid binaries or capabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import command_context, memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import DOWNLOADERS, base_name

_AWS_RECON: Final = {
    "sts": frozenset({"get-caller-identity"}),
    "iam": frozenset({"list-users", "list-roles", "list-policies", "list-attached-role-policies", "list-attached-user-policies",
                      "get-account-authorization-details", "list-access-keys", "simulate-principal-policy", "list-groups",
                      "get-user", "list-role-policies", "list-user-policies"}),
    "secretsmanager": frozenset({"list-secrets"}),
    "ssm": frozenset({"describe-parameters"}),
    "organizations": frozenset({"list-accounts", "describe-organization"}),
}  # fmt: skip
_IMDS: Final = ("169.254.169.254", "fd00:ec2::254")
_IMDS_RECON: Final = (
    "/latest/user-data",
    "/latest/meta-data/iam/info",
    "/latest/dynamic/instance-identity/document",
)


_NAMES: Final = DOWNLOADERS | frozenset({"find", "getcap", "kubectl", "aws"})


def _aws_args(args: Sequence[str]) -> tuple[str, ...]:
    """The AWS CLI's arguments whether it ran as a binary (aws ...) or a script (python3 /usr/bin/aws ...)."""
    for i, a in enumerate(args[:2]):
        if a.rsplit("/", 1)[-1] == "aws":
            return tuple(x for x in args[i + 1 :] if not x.startswith("-"))
    return ()


@memo_by_command
def _mechanism(event: ProcessActivity) -> str:
    p = event.process
    name = base_name(p)
    if name not in _NAMES and not name.startswith("python"):
        return ""
    args = p.args
    if name in DOWNLOADERS:
        # the role's credentials are CredentialAccess:Runtime/SuspiciousCommand; other IMDS paths are inventory
        if any(h in a for a in args for h in _IMDS) and any(
            a.rstrip("/").endswith(_IMDS_RECON) for a in args
        ):
            return "imds-user-data"
        return ""
    if name == "find":
        for i, a in enumerate(args[:-1]):
            if a == "-perm" and any(m in args[i + 1] for m in ("4000", "2000", "6000", "u=s", "u+s", "g=s")):
                return "suid-search"
        return ""
    if name == "getcap" and "-r" in args:
        return "capability-search"
    if name == "kubectl":
        rest = [a for a in args[1:] if not a.startswith("-")]
        if rest[:2] == ["auth", "can-i"] or (
            rest[:1] == ["get"] and any(r.startswith("secret") for r in rest[1:2])
        ):
            return "kubernetes-permissions"
        return ""
    aws = _aws_args(args) if name == "aws" or name.startswith("python") else ()
    if len(aws) >= 2 and aws[1] in _AWS_RECON.get(aws[0], ()):
        return f"aws-{aws[0]}-{aws[1]}"
    return ""


class DiscoverySuspiciousCommand(Detection):
    meta = Meta(
        type="Discovery:Runtime/SuspiciousCommand",
        severity=severity.LOW,
        title="A reconnaissance command was executed",
        description=(
            "A process ran a command that discovers what the instance can reach: its user data and role from the metadata "
            "service, IAM identities and permissions, secrets, Kubernetes permissions, or setuid binaries to escalate with."
        ),
        mitre=("T1552.005", "T1087.004", "T1069.003", "T1083", "T1613"),
        runbook=(
            "Who ran it (lineage, user) and was it expected? Reconnaissance usually precedes privilege escalation or "
            "credential use: check CloudTrail for the instance role's calls after eventFirstSeen."
        ),
        false_positives=(
            "Administrators and scripts checking their identity (aws sts get-caller-identity).",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1552/005/",
            "https://attack.mitre.org/techniques/T1087/004/",
        ),
    )
    kinds = frozenset({"process_exec"})
    # _mechanism's own gate: a name in _NAMES, or the AWS CLI run as a python script
    programs = _NAMES
    program_prefixes = ("python",)

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _mechanism(event) != ""

    def dedup_key(self, event: ProcessActivity) -> str:
        return _mechanism(event)

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        return command_context(event.process)

    fires: ClassVar = (
        Example("curl of the user data", (s.exec_(s.proc("/usr/bin/curl", "-s", "http://169.254.169.254/latest/user-data")),)),
        Example("aws sts get-caller-identity", (s.exec_(s.proc("/usr/local/bin/aws", "sts", "get-caller-identity")),)),
        Example("aws iam enumeration via the python CLI", (s.exec_(s.proc("/usr/bin/python3", "/usr/bin/aws", "iam", "list-roles")),)),
        Example("setuid search", (s.exec_(s.proc("/usr/bin/find", "/", "-perm", "-4000", "-type", "f")),)),
        Example("kubectl auth can-i", (s.exec_(s.proc("/usr/local/bin/kubectl", "auth", "can-i", "--list")),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("curl of the instance id", (s.exec_(s.proc("/usr/bin/curl", "-s", "http://169.254.169.254/latest/meta-data/instance-id")),)),
        Example("aws s3 cp", (s.exec_(s.proc("/usr/local/bin/aws", "s3", "cp", "a", "s3://b/a")),)),
        Example("find by name", (s.exec_(s.proc("/usr/bin/find", ".", "-name", "*.py")),)),
    )  # fmt: skip
