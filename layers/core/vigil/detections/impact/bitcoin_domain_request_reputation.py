"""Impact:Runtime/BitcoinDomainRequest.Reputation: a low-reputation, mining-related domain was queried.

Threat lists catch known pools (BitcoinTool.B!DNS). This catches unlisted ones: a registered
domain whose own label carries a mining token (xmr, monero, stratum, cryptonight ...).
"""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._reputation import listed_reputation, reputation_candidate, unlisted_profile
from vigil.events import DnsActivity
from vigil.intel import heuristics as h


class BitcoinDomainRequestReputation(Detection):
    meta = Meta(
        type="Impact:Runtime/BitcoinDomainRequest.Reputation",
        severity=severity.HIGH,
        title="A process queried a low-reputation cryptocurrency-related domain",
        description=(
            "A process looked up an unlisted domain whose name marks it as cryptocurrency mining infrastructure "
            "(mining-pool or proxy naming): the instance may be mining for someone else."
        ),
        mitre=("T1496",),
        runbook=(
            "Find the querying process and binary (runtimeDetails.process); look for miner configuration (pool URLs, "
            "wallets) and persistence. If mining is not sanctioned, isolate and rebuild the instance."
        ),
        false_positives=("Developers of cryptocurrency software resolving project infrastructure.",),
        references=("https://attack.mitre.org/techniques/T1496/",),
    )
    kinds = frozenset({"dns_query"})
    gate = reputation_candidate  # match needs unlisted_profile (shared by the reputation types)

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        if listed_reputation(event, ctx):
            return listed_reputation(event, ctx) == ti.BITCOIN_REPUTATION
        p = unlisted_profile(event, ctx)
        return p is not None and h.crypto_token(p.registered) != ""

    def dedup_key(self, event: DnsActivity) -> str:
        return h.registered_domain(event.query.hostname)

    fires: ClassVar = (
        Example(
            "GuardDuty's test domain (built-in)",
            (s.dns("crypto-rep.guarddutyc2activityb.com", process=s.proc("/usr/bin/curl")),),
        ),
        Example(
            "an unlisted Monero pool proxy",
            (s.dns("eu.xmr-proxy-fast.net", process=s.proc("/dev/shm/.k/kswapd0")),),
        ),
        Example("stratum naming", (s.dns("eu.stratum-cheaphash.io"),)),
    )
    near_misses: ClassVar = (
        Example("a token only in a subdomain", (s.dns("xmr.example.org"),)),
        Example("the Monero project's own site", (s.dns("www.getmonero.org"),)),
    )
