"""Vigil's built-in category set, loaded the same way as customer lists (the TXT parser).

Every entry is a public fact we wrote down ourselves (no third-party feed is redistributed):
mining-pool endpoints miners are configured with, the Tor directory authorities hard-coded in the
Tor source, dynamic-DNS / free-subdomain / tunnel providers and abused free TLDs, GuardDuty's own
documented test domain, and the EICAR test file's hash. Kept short on purpose: lists from S3 are
the real source. No sinkhole or drop-point data is shipped: we know of none that is both current
and redistributable, so those findings fire from lists the operator registers.
"""

from __future__ import annotations

from typing import Final

from vigil.intel import (
    ABUSED,
    BITCOIN_REPUTATION,
    BLACKHOLE,
    C2,
    CRYPTO,
    DGA,
    DRIVE_BY,
    DROP_POINT,
    MALICIOUS_REPUTATION,
    MALWARE,
    PHISHING,
    SUSPICIOUS_REPUTATION,
    TOR,
    Indicator,
    Intel,
)
from vigil.intel.formats import ParsedList, parse_txt

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

# Tor v3 directory authorities (tor's src/app/config/auth_dirs.inc). They rarely change, but they
# do: a Tor list from S3 (category=tor) is the maintained source.
TOR_DIRECTORY_AUTHORITIES: Final = (
    "128.31.0.39",  # moria1
    "131.188.40.189",  # gabelmoo
    "193.23.244.244",  # dannenberg
    "171.25.193.9",  # maatuska
    "199.58.81.140",  # longclaw
    "204.13.164.118",  # bastet
)

# Dynamic DNS, free-subdomain and tunnel providers, and the formerly free Freenom TLDs that
# abuse reports are dominated by (AbusedDomainRequest.Reputation).
ABUSED_ZONES: Final = (
    "duckdns.org", "no-ip.org", "no-ip.biz", "no-ip.info", "ddns.net", "hopto.org", "zapto.org", "sytes.net",
    "servebeer.com", "serveftp.com", "myftp.biz", "redirectme.net", "dyndns.org", "dynu.net", "changeip.com",
    "afraid.org", "ngrok.io", "ngrok-free.app", "serveo.net", "loca.lt", "trycloudflare.com", "portmap.io",
    "pagekite.me", "tk", "ml", "ga", "cf", "gq",
)  # fmt: skip

C2_DOMAINS: Final = ("guarddutyc2activityb.com",)  # GuardDuty's documented C&C test domain

# GuardDuty's published test domains, one per finding type, as its own intel carries them (the
# amazon-guardduty-tester's runtime threat-intel checks query them: lib/common/testResources/
# definitions.json). Sub-domains of the C&C test domain name other types; the nearest entry wins.
TEST_DOMAINS: Final = {
    "crypto.guarddutyc2activityb.com": CRYPTO,  # CryptoCurrency:Runtime/BitcoinTool.B!DNS
    "abused-rep.guarddutyc2activityb.com": ABUSED,  # Impact:Runtime/AbusedDomainRequest.Reputation
    "crypto-rep.guarddutyc2activityb.com": BITCOIN_REPUTATION,  # Impact:Runtime/BitcoinDomainRequest.Reputation
    "malicious-rep.guarddutyc2activityb.com": MALICIOUS_REPUTATION,  # Impact:Runtime/MaliciousDomainRequest.Reputation
    "suspicious-rep.guarddutyc2activityb.com": SUSPICIOUS_REPUTATION,  # Impact:Runtime/SuspiciousDomainRequest.Reputation
    "guarddutyblackholeactivity.com": BLACKHOLE,  # Trojan:Runtime/BlackholeTraffic!DNS
    "guarddutydgaactivity.com": DGA,  # Trojan:Runtime/DGADomainRequest.C!DNS
    "guarddutydrivebyactivity.com": DRIVE_BY,  # Trojan:Runtime/DriveBySourceTraffic!DNS
    "guarddutydroppointactivity.com": DROP_POINT,  # Trojan:Runtime/DropPoint!DNS
    "guarddutyphishingactivity.com": PHISHING,  # Trojan:Runtime/PhishingDomainRequest!DNS
}
TEST_THREAT_NAME: Final = "GuardDuty test domain"

MALWARE_SHA256: Final = (
    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
)  # EICAR test file


def _txt(entries: tuple[str, ...]) -> str:
    return "\n".join(entries)


def builtin_lists() -> tuple[ParsedList, ...]:
    return (
        parse_txt(_txt(MINING_POOL_DOMAINS), name=LIST_NAME, category=CRYPTO, custom=False),
        parse_txt(_txt(TOR_DIRECTORY_AUTHORITIES), name=LIST_NAME, category=TOR, custom=False),
        parse_txt(_txt(ABUSED_ZONES), name=LIST_NAME, category=ABUSED, custom=False),
        parse_txt(_txt(C2_DOMAINS), name=LIST_NAME, category=C2, custom=False),
        parse_txt(_txt(MALWARE_SHA256), name=LIST_NAME, category=MALWARE, custom=False),
    )


_THREAT_NAMES: Final = {CRYPTO: "mining pool", TOR: "Tor directory authority", ABUSED: "abused zone",
                        C2: TEST_THREAT_NAME, MALWARE: "EICAR test file"}  # fmt: skip


def builtin_intel() -> Intel:
    """A fresh Intel with the built-in set (callers may add their lists to it)."""
    intel = Intel(version="builtin")
    for parsed in builtin_lists():
        for ind in parsed.indicators:
            intel.add(type(ind)(ind.value, ind.category, ind.list_name, _THREAT_NAMES[ind.category], False))
    for domain, category in TEST_DOMAINS.items():
        intel.add(Indicator(domain, category, LIST_NAME, TEST_THREAT_NAME, False))
    return intel
