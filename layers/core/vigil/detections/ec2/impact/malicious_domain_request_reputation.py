"""Impact:EC2/MaliciousDomainRequest.Reputation: the instance queried a domain a list gives a
malicious reputation (Route 53 Resolver query logs).

The runtime type also carries two heuristics (a DGA-like name, a tunnel's query volume); among the
EC2 types GuardDuty has its own for each, so here they raise Trojan:EC2/DGADomainRequest.B and
Trojan:EC2/DNSDataExfiltration instead (one indicator, one finding), and this type fires on a
list's malicious-reputation verdict (GuardDuty's test domain, an operator's reputation feed).
"""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._reputation import listed_reputation, reputation_candidate
from vigil.detections.ec2._common import RESOLVER
from vigil.events import DnsActivity
from vigil.intel import heuristics as h


class MaliciousDomainRequestReputation(Detection):
    kinds = RESOLVER
    gate = reputation_candidate
    meta = Meta(
        type="Impact:EC2/MaliciousDomainRequest.Reputation",
        severity=severity.HIGH,
        title="The instance is querying a domain with a malicious reputation",
        description=(
            "The instance looked up a domain that reputation data ties to known malicious domains, sinkholes or "
            "DGA campaigns (Route 53 Resolver query logs)."
        ),
        mitre=("T1568.002", "T1071.004"),
        runbook=(
            "Find the querying process (the runtime agent's findings, or the instance's logs), block the domain at "
            "the Resolver DNS Firewall, isolate the instance and hunt for the malware."
        ),
        false_positives=("Security tools resolving indicators on purpose.",),
        references=("https://attack.mitre.org/techniques/T1568/002/",),
    )

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        return listed_reputation(event, ctx) == ti.MALICIOUS_REPUTATION

    def dedup_key(self, event: DnsActivity) -> str:
        return h.registered_domain(event.query.hostname)

    fires: ClassVar = (
        Example(
            "GuardDuty's test domain (built-in)",
            (s.resolver_query("malicious-rep.guarddutyc2activityb.com"),),
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a DGA-like name (Trojan:EC2/DGADomainRequest.B's)",
            (s.resolver_query("xjwqkzhvbnrtp.com", rcode="NXDOMAIN"),),
            also_fires=frozenset({"Trojan:EC2/DGADomainRequest.B"}),
        ),
        Example(
            "another test domain's verdict",
            (s.resolver_query("crypto-rep.guarddutyc2activityb.com"),),
            also_fires=frozenset({"Impact:EC2/BitcoinDomainRequest.Reputation"}),
        ),
    )
