"""UnauthorizedAccess:EC2/MetadataDNSRebind: a name the instance resolved answered with the instance
metadata service's address (Route 53 Resolver query logs carry the answers).

The runtime MetadataDNSRebind's rule (same expected names, same trusted-list exception), read from
the Resolver's log instead of the agent's DNS capture.
"""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections.ec2._common import RESOLVER
from vigil.detections.unauthorized_access import metadata_dns_rebind as runtime
from vigil.events import DnsActivity

_RUNTIME = runtime.MetadataDnsRebind()  # the runtime type's rule, reused on Resolver records


class MetadataDnsRebind(Detection):
    kinds = RESOLVER
    meta = Meta(
        type="UnauthorizedAccess:EC2/MetadataDNSRebind",
        severity=severity.HIGH,
        title="The instance resolved a domain that points at the instance metadata service",
        description=(
            "The instance looked up a domain whose answer is 169.254.169.254, the instance metadata service (Route 53 "
            "Resolver query logs): DNS rebinding that tricks an application (often through SSRF) into fetching "
            "instance credentials from IMDS."
        ),
        mitre=("T1552.005", "T1557"),
        runbook=(
            "Find the application that resolved the domain (often one fetching user-supplied URLs). Require IMDSv2 "
            "(hop limit 1), rotate the instance role's credentials, and fix the SSRF."
        ),
        false_positives=(
            "Internal names deliberately pointed at IMDS: suppress by dnsRequestAction.domain.",
        ),
        references=("https://attack.mitre.org/techniques/T1552/005/",),
        maturity="stable",
    )

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        return _RUNTIME.match(event, ctx)

    def dedup_key(self, event: DnsActivity) -> str:
        return _RUNTIME.dedup_key(event)

    fires: ClassVar = (
        Example("a rebinding name", (s.resolver_query("7f000001.a9fea9fe.rbndr.us", "169.254.169.254"),)),
        Example(
            "an IPv6 answer of IMDS",
            (s.resolver_query("imds6.rebind.example", "fd00:ec2::254", qtype="AAAA"),),
        ),
    )
    near_misses: ClassVar = (
        Example(
            "EC2's own instance-data alias",
            (s.resolver_query("instance-data.ec2.internal", "169.254.169.254"),),
        ),
        Example("a normal answer", (s.resolver_query("api.example.com", "198.51.100.4"),)),
    )
