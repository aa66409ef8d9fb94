"""Threat intelligence and trusted lists, as pure lookups (no I/O: adapters load the lists).

An ``Intel`` holds indicators (IPs, CIDRs, domains with ``*.`` wildcards) each tagged with a
category (``CryptoCurrency``, ``C&C``, ``Tor`` ...) and the list it came from. A domain matches
itself and, for wildcard entries, any subdomain; an exact entry also covers subdomains, as
GuardDuty's domain lists do. Trusted entries win over threat entries.
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


@dataclass(frozen=True, slots=True)
class Indicator:
    value: str  # normalized: lowercase domain without trailing dot / IP / CIDR / sha256
    category: str
    list_name: str
    threat_name: str = ""


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


@dataclass
class Intel:
    domains: dict[str, Indicator] = field(default_factory=dict)
    ips: dict[str, Indicator] = field(default_factory=dict)
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Indicator]] = field(
        default_factory=list
    )
    hashes: dict[str, Indicator] = field(default_factory=dict)
    trusted_domains: set[str] = field(default_factory=set)
    trusted_ips: set[str] = field(default_factory=set)
    trusted_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)

    def add(self, ind: Indicator) -> None:
        v = ind.value
        if len(v) == 64 and all(c in "0123456789abcdef" for c in v):
            self.hashes[v] = ind
            return
        try:
            if "/" in v:
                self.networks.append((ipaddress.ip_network(v, strict=False), ind))
            else:
                self.ips[str(ipaddress.ip_address(v))] = ind
        except ValueError:
            self.domains[normalize_domain(v)] = ind

    def trust(self, value: str) -> None:
        try:
            if "/" in value:
                self.trusted_networks.append(ipaddress.ip_network(value.strip(), strict=False))
            else:
                self.trusted_ips.add(str(ipaddress.ip_address(value.strip())))
        except ValueError:
            self.trusted_domains.add(normalize_domain(value))

    def match_domain(self, hostname: str) -> Hit | None:
        if not self.domains:
            return None
        trusted = self.trusted_domains
        domains = self.domains
        for d in _labels_up(hostname):
            if d in trusted:
                return None
            ind = domains.get(d)
            if ind is not None:
                # a trusted subdomain higher up still wins
                for t in _labels_up(hostname):
                    if t in trusted:
                        return None
                return Hit(ind, hostname)
        return None

    def is_trusted_ip(self, ip: str) -> bool:
        if ip in self.trusted_ips:
            return True
        if self.trusted_networks:
            try:
                a = ipaddress.ip_address(ip)
            except ValueError:
                return False
            return any(a in n for n in self.trusted_networks)
        return False

    def match_ip(self, ip: str) -> Hit | None:
        ind = self.ips.get(ip)
        if ind is None and self.networks:
            try:
                a = ipaddress.ip_address(ip)
            except ValueError:
                return None
            for net, i in self.networks:
                if a.version == net.version and a in net:
                    ind = i
                    break
        if ind is None or self.is_trusted_ip(ip):
            return None
        return Hit(ind, ip)

    def match_hash(self, sha256: str) -> Hit | None:
        ind = self.hashes.get(sha256.lower()) if sha256 else None
        return Hit(ind, sha256) if ind is not None else None


EMPTY: Final = Intel()
