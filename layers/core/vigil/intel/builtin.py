"""Vigil's built-in category set: indicators we curated ourselves from public facts (no
third-party feed is redistributed). Deployments add their own lists through the stack.

Mining-pool domains are the public endpoints miners are configured with; they are not secret and
do not change often. Kept short on purpose: lists from S3 are the real source.
"""

from __future__ import annotations

from typing import Final

from vigil.intel import CRYPTO, Indicator, Intel

LIST_NAME: Final = "VigilBuiltin"

MINING_POOL_DOMAINS: Final = (
    "supportxmr.com",
    "minexmr.com",
    "xmrpool.eu",
    "moneroocean.stream",
    "nanopool.org",
    "2miners.com",
    "f2pool.com",
    "herominers.com",
    "minergate.com",
    "unmineable.com",
    "nicehash.com",
    "hashvault.pro",
    "c3pool.com",
    "ethermine.org",
    "viabtc.com",
    "antpool.com",
    "slushpool.com",
    "braiins.com",
    "poolin.com",
    "kryptex.network",
    "p2pool.io",
    "xmrig.com",
)


def builtin_intel() -> Intel:
    intel = Intel()
    for d in MINING_POOL_DOMAINS:
        intel.add(Indicator(d, CRYPTO, LIST_NAME, "mining pool"))
    return intel
