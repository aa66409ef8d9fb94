"""UnauthorizedAccess:Runtime/MetadataDNSRebind: a queried name resolved to the instance metadata service."""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import DnsActivity

IMDS_ADDRESSES: Final = frozenset({"169.254.169.254", "fd00:ec2::254"})
# Names that resolve to IMDS by design (EC2's own instance-data alias, other clouds' metadata names).
_EXPECTED_SUFFIXES: Final = (".internal", ".ec2.internal")
_EXPECTED_NAMES: Final = frozenset(
    {"instance-data", "instance-data.ec2.internal", "metadata.google.internal", "metadata"}
)


class MetadataDnsRebind(Detection):
    meta = Meta(
        type="UnauthorizedAccess:Runtime/MetadataDNSRebind",
        severity=severity.HIGH,
        title="A domain resolving to the instance metadata service was queried",
        description=(
            "A process looked up a domain whose answer is 169.254.169.254, the instance metadata service: DNS rebinding "
            "that tricks an application (often through SSRF) into fetching instance credentials from IMDS."
        ),
        mitre=("T1552.005", "T1557"),
        runbook=(
            "Find the process that resolved the domain (often a web application fetching user-supplied URLs). Require "
            "IMDSv2 (hop limit 1), rotate the instance role's credentials, and fix the SSRF."
        ),
        false_positives=(
            "Internal names deliberately pointed at IMDS: suppress by dnsRequestAction.domain.",
        ),
        references=("https://attack.mitre.org/techniques/T1552/005/",),
        maturity="stable",
    )
    kinds = frozenset({"dns_query"})

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        if not event.answers:
            return False
        if not any(a.rdata in IMDS_ADDRESSES for a in event.answers):
            return False
        host = event.query.hostname
        if host in _EXPECTED_NAMES or host.endswith(_EXPECTED_SUFFIXES):
            return False
        return not ctx.intel.is_trusted_domain(host)

    def dedup_key(self, event: DnsActivity) -> str:
        return event.query.hostname

    fires: ClassVar = (
        Example(
            "an SSRF'd web app resolving a rebinding name",
            (
                s.dns(
                    "7f000001.a9fea9fe.rbndr.us", "169.254.169.254", process=s.proc("/usr/bin/node", uid=33)
                ),
            ),
        ),
    )
    near_misses: ClassVar = (
        Example("EC2's own instance-data alias", (s.dns("instance-data.ec2.internal", "169.254.169.254"),)),
        Example("a normal answer", (s.dns("api.example.com", "198.51.100.4"),)),
    )
