"""Impact:EC2/BitcoinDomainRequest.Reputation: the instance queried a low-reputation
cryptocurrency-related domain (Route 53 Resolver query logs): the runtime type's rule (a mining
token in the registered label of an unlisted, untrusted name; or a list's verdict)."""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._reputation import reputation_candidate
from vigil.detections.ec2._common import RESOLVER
from vigil.detections.impact import bitcoin_domain_request_reputation as runtime
from vigil.events import DnsActivity

_RUNTIME = runtime.BitcoinDomainRequestReputation()  # the runtime type's rule, reused on Resolver records


class BitcoinDomainRequestReputation(Detection):
    kinds = RESOLVER
    gate = reputation_candidate  # the runtime type's shared gate
    meta = Meta(
        type="Impact:EC2/BitcoinDomainRequest.Reputation",
        severity=severity.HIGH,
        title="The instance is querying a low-reputation cryptocurrency-related domain",
        description=(
            "The instance looked up an unlisted domain whose name says cryptocurrency mining (pool, stratum, proxy "
            "naming) (Route 53 Resolver query logs): a miner looking for its pool."
        ),
        mitre=("T1496",),
        runbook="Isolate the instance, find the miner and how it got there, and rebuild it.",
        false_positives=("Developers of cryptocurrency software resolving project infrastructure.",),
        references=("https://attack.mitre.org/techniques/T1496/",),
    )

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        return _RUNTIME.match(event, ctx)

    def dedup_key(self, event: DnsActivity) -> str:
        return _RUNTIME.dedup_key(event)

    fires: ClassVar = (
        Example(
            "GuardDuty's test domain (built-in)", (s.resolver_query("crypto-rep.guarddutyc2activityb.com"),)
        ),
        Example("a mining proxy's name", (s.resolver_query("eu.xmr-proxy-fast.net"),)),
    )
    near_misses: ClassVar = (
        Example("a token only in a subdomain", (s.resolver_query("xmr.example.org"),)),
        Example("the Monero project's own site", (s.resolver_query("www.getmonero.org"),)),
    )
