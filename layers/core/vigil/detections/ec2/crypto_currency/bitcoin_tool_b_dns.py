"""CryptoCurrency:EC2/BitcoinTool.B!DNS: the instance queried a domain of cryptocurrency activity (Route 53 Resolver query logs).

The name is on one of AWS's threat lists of category ``CryptoCurrency`` (the built-in set, with
GuardDuty's test domain, or a curated feed; a customer's list raises Impact:EC2/
MaliciousDomainRequest.Custom instead).
"""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import example_intel
from vigil.detections.ec2._common import ThreatListResolver, aws_intel

_LISTS = aws_intel(ti.CRYPTO, "pool.coinexample.net")


class BitcoinToolBDns(ThreatListResolver):
    category = ti.CRYPTO
    meta = Meta(
        type="CryptoCurrency:EC2/BitcoinTool.B!DNS",
        severity=severity.HIGH,
        title="The instance is querying a cryptocurrency mining domain",
        description=(
            "The instance looked up a domain on a threat list of cryptocurrency activity (mining pools and proxies): a miner is probably running on it."
        ),
        mitre=("T1496",),
        runbook=("Isolate the instance, find the miner and how it got there, and rebuild it."),
        false_positives=("Sanctioned cryptocurrency software resolving its pool.",),
        references=("https://attack.mitre.org/techniques/T1496/",),
    )

    fires: ClassVar = (
        Example("a mining pool (built-in)", (s.resolver_query("gulf.moneroocean.stream"),)),
        Example("a listed domain", (s.resolver_query("pool.coinexample.net", "203.0.113.40"),), intel=_LISTS),
        Example(
            "a subdomain of a listed domain", (s.resolver_query("www.pool.coinexample.net"),), intel=_LISTS
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a look-alike that is not listed", (s.resolver_query("pools.coinexample.org"),), intel=_LISTS
        ),
        Example(
            "the domain only on a customer list (MaliciousDomainRequest.Custom's)",
            (s.resolver_query("pool.coinexample.net"),),
            intel=example_intel(crypto="pool.coinexample.net"),
            also_fires=frozenset({"Impact:EC2/MaliciousDomainRequest.Custom"}),
        ),
    )
