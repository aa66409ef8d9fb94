"""Shared pre-checks of the domain-reputation detections (Impact:Runtime/*DomainRequest.Reputation).

A name gets at most one reputation verdict, and only when no threat list covers it (a list match
is a stronger finding) and no trusted list does either (trusted wins).
"""

from __future__ import annotations

from typing import Final

from vigil import intel as ti
from vigil.detection import Context
from vigil.events import DnsActivity
from vigil.intel import heuristics as h

MALICIOUS_DGA: Final = 0.9  # dga_score at or above: MaliciousDomainRequest.Reputation
SUSPICIOUS_DGA: Final = 0.75  # [0.75, 0.9): SuspiciousDomainRequest.Reputation
TUNNEL_WINDOW_NS: Final = 600 * 1_000_000_000  # 10 minutes
TUNNEL_QUERIES: Final = 20  # tunnel-like queries per registered domain per window to confirm exfiltration
TUNNEL_TTL_S: Final = 1200


def unlisted_profile(event: DnsActivity, ctx: Context) -> h.DomainProfile | None:
    """The name's profile when heuristics should judge it (not infra, unlisted, untrusted)."""
    host = event.query.hostname
    p = h.profile(host)
    if p.infra:
        return None
    if ctx.intel.match_domain(host) is not None or ctx.intel.is_trusted_domain(host):
        return None
    return p


def reputation_candidate(event: DnsActivity, ctx: Context) -> bool:
    """Shared gate of the heuristic reputation types: ``unlisted_profile`` would return a profile,
    or the name is listed with a reputation verdict (``listed_reputation``)."""
    return unlisted_profile(event, ctx) is not None or listed_reputation(event, ctx) != ""


def listed_reputation(event: DnsActivity, ctx: Context) -> str:
    """The reputation category a list gives the name (GuardDuty's reputation test domains), else ''."""
    hit = ctx.intel.match_domain(event.query.hostname)
    if hit is None or hit.indicator.category not in ti.REPUTATION_CATEGORIES:
        return ""
    return hit.indicator.category


def tunnel_key(event: DnsActivity, registered: str) -> str:
    return f"dnstun|{event.device.instance_uid}|{registered}|{event.time // TUNNEL_WINDOW_NS}"
