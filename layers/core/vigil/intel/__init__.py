"""Threat intelligence and trusted lists, as pure lookups (no I/O: adapters load the lists).

An ``Intel`` holds indicators (IPs, CIDRs, domains with ``*.`` wildcards, SHA-256 file hashes),
each tagged with a category (``CryptoCurrency``, ``C&C``, ``Tor`` ...) that routes a match to a
finding type, the list it came from, and whether that list is a customer (``custom``) list. A
domain matches itself and, for wildcard entries, any subdomain; an exact entry also covers
subdomains, as GuardDuty's domain lists do. Trusted entries win over threat entries (GuardDuty:
"trusted wins if an entry is on both lists").

Lookups are memoized per hostname / IP (bounded), because a DNS event meets about a dozen
intel-based detections and each asks the same question.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

# Categories are the threat families of GuardDuty's runtime finding names.
CRYPTO: Final = "CryptoCurrency"
C2: Final = "C&C"
TOR: Final = "Tor"
BLACKHOLE: Final = "Blackhole"
DROP_POINT: Final = "DropPoint"
DGA: Final = "DGA"
DRIVE_BY: Final = "DriveBy"
PHISHING: Final = "Phishing"
MALWARE: Final = "Malware"  # file hashes (MaliciousFileExecuted)
ABUSED: Final = "Abused"  # dynamic DNS, free subdomains, abused TLDs (AbusedDomainRequest.Reputation)
# Domain-reputation verdicts as list entries (GuardDuty's published reputation test domains; an
# operator's list may use them too): the reputation types fire on them without their heuristics.
BITCOIN_REPUTATION: Final = "BitcoinReputation"
MALICIOUS_REPUTATION: Final = "MaliciousReputation"
SUSPICIOUS_REPUTATION: Final = "SuspiciousReputation"
REPUTATION_CATEGORIES: Final = frozenset({BITCOIN_REPUTATION, MALICIOUS_REPUTATION, SUSPICIOUS_REPUTATION})
CATEGORIES: Final = frozenset(
    {CRYPTO, C2, TOR, BLACKHOLE, DROP_POINT, DGA, DRIVE_BY, PHISHING, MALWARE, ABUSED} | REPUTATION_CATEGORIES
)

_CACHE_MAX: Final = 65_536

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Indicator:
    value: str  # normalized: lowercase domain without trailing dot / IP / CIDR / sha256
    category: str
    list_name: str
    threat_name: str = ""
    custom: bool = False  # from a customer threat list (drives the `.Custom` finding variants)


@dataclass(frozen=True, slots=True)
class Hit:
    indicator: Indicator
    matched: str  # the domain/IP that matched


def _labels_up(domain: str) -> Iterable[str]:
    """'a.b.example.org' -> 'a.b.example.org', 'b.example.org', 'example.org', 'org'."""
    d = domain
    while d:
        yield d
        dot = d.find(".")
        if dot < 0:
            return
        d = d[dot + 1 :]


def normalize_domain(value: str) -> str:
    v = value.strip().lower().rstrip(".")
    return v[2:] if v.startswith("*.") else v


def is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


@dataclass
class Intel:
    domains: dict[str, Indicator] = field(default_factory=dict)
    ips: dict[str, Indicator] = field(default_factory=dict)
    networks: list[tuple[Network, Indicator]] = field(default_factory=list)
    hashes: dict[str, Indicator] = field(default_factory=dict)
    trusted_domains: set[str] = field(default_factory=set)
    trusted_ips: set[str] = field(default_factory=set)
    trusted_networks: list[Network] = field(default_factory=list)
    version: str = ""  # identifies the set of lists this was built from (adapters set it)
    _domain_cache: dict[str, Hit | None] = field(default_factory=dict, repr=False, compare=False)
    _ip_cache: dict[str, Hit | None] = field(default_factory=dict, repr=False, compare=False)

    def _invalidate(self) -> None:
        self._domain_cache.clear()
        self._ip_cache.clear()

    def add(self, ind: Indicator) -> None:
        self._invalidate()
        v = ind.value
        if is_sha256(v):
            self.hashes[v] = ind
            return
        try:
            if "/" in v:
                self.networks.append((ipaddress.ip_network(v, strict=False), ind))
            else:
                self.ips[str(ipaddress.ip_address(v))] = ind
        except ValueError:
            self.domains[normalize_domain(v)] = ind

    def extend(self, indicators: Iterable[Indicator]) -> None:
        for ind in indicators:
            self.add(ind)

    def trust(self, value: str) -> None:
        self._invalidate()
        try:
            if "/" in value:
                self.trusted_networks.append(ipaddress.ip_network(value.strip(), strict=False))
            else:
                self.trusted_ips.add(str(ipaddress.ip_address(value.strip())))
        except ValueError:
            self.trusted_domains.add(normalize_domain(value))

    def merge(self, other: Intel) -> None:
        """Add every entry of ``other`` (threat and trusted) to this set."""
        self._invalidate()
        self.domains.update(other.domains)
        self.ips.update(other.ips)
        self.networks.extend(other.networks)
        self.hashes.update(other.hashes)
        self.trusted_domains |= other.trusted_domains
        self.trusted_ips |= other.trusted_ips
        self.trusted_networks.extend(other.trusted_networks)

    def __len__(self) -> int:
        return len(self.domains) + len(self.ips) + len(self.networks) + len(self.hashes)

    # --- lookups ----------------------------------------------------------------------------
    def is_trusted_domain(self, hostname: str) -> bool:
        trusted = self.trusted_domains
        return bool(trusted) and any(d in trusted for d in _labels_up(hostname))

    def match_domain(self, hostname: str) -> Hit | None:
        """The threat entry covering ``hostname`` (nearest label first), unless a trusted entry covers it."""
        cache = self._domain_cache
        try:
            return cache[hostname]
        except KeyError:
            pass
        hit: Hit | None = None
        if self.domains:
            domains = self.domains
            for d in _labels_up(hostname):
                ind = domains.get(d)
                if ind is not None:
                    hit = None if self.is_trusted_domain(hostname) else Hit(ind, hostname)
                    break
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[hostname] = hit
        return hit

    def is_trusted_ip(self, ip: str) -> bool:
        if ip in self.trusted_ips:
            return True
        if self.trusted_networks:
            try:
                a = ipaddress.ip_address(ip)
            except ValueError:
                return False
            return any(a.version == n.version and a in n for n in self.trusted_networks)
        return False

    def match_ip(self, ip: str) -> Hit | None:
        cache = self._ip_cache
        try:
            return cache[ip]
        except KeyError:
            pass
        ind = self.ips.get(ip)
        if ind is None and self.networks:
            try:
                a = ipaddress.ip_address(ip)
            except ValueError:
                a = None
            if a is not None:
                for net, i in self.networks:
                    if a.version == net.version and a in net:
                        ind = i
                        break
        hit = None if ind is None or self.is_trusted_ip(ip) else Hit(ind, ip)
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[ip] = hit
        return hit

    def match_hash(self, sha256: str) -> Hit | None:
        if not sha256 or not self.hashes:
            return None
        ind = self.hashes.get(sha256)
        if ind is None and not sha256.islower():
            ind = self.hashes.get(sha256.lower())
        return Hit(ind, sha256) if ind is not None else None


EMPTY: Final = Intel()
