"""Impact:Runtime/AbusedDomainRequest.Reputation: a name under a commonly abused zone was queried.

GuardDuty scores domain reputation with a model; we use categories: dynamic-DNS, free-subdomain
and tunnel providers and abused free TLDs (built-in ``Abused`` set, extendable with lists of
category ``abused``). The provider's own site (``www.``/``api.`` of the zone) is not a finding.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import domain_listed, evidence
from vigil.events import DnsActivity
from vigil.intel.builtin import TEST_THREAT_NAME

_PROVIDER_HOSTS: Final = ("www.", "api.", "dynupdate.", "update.", "members.", "dashboard.")


class AbusedDomainRequestReputation(Detection):
    meta = Meta(
        type="Impact:Runtime/AbusedDomainRequest.Reputation",
        severity=severity.MEDIUM,
        title="A process queried a low-reputation domain under a commonly abused zone",
        description=(
            "A process looked up a name under a dynamic-DNS, free-subdomain or tunnelling provider, or an abused free TLD: "
            "zones attackers favour for command-and-control and staging because names there are free and disposable."
        ),
        mitre=("T1568", "T1583.001"),
        runbook=(
            "Check which process resolved the name (runtimeDetails.process) and whether the instance is expected to use "
            "that provider. If not, look at what the process downloaded or sent, and at its lineage."
        ),
        false_positives=(
            "Home labs and small services published through dynamic DNS or ngrok-style tunnels.",
        ),
        references=("https://attack.mitre.org/techniques/T1568/",),
    )
    kinds = frozenset({"dns_query"})
    gate = domain_listed  # match needs a list hit (shared with the ThreatListDns types)

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        hit = ctx.intel.match_domain(event.query.hostname)
        if hit is None or hit.indicator.category != ti.ABUSED:
            return False
        if hit.indicator.threat_name == TEST_THREAT_NAME:
            return True  # GuardDuty's abused-rep test domain
        zone = hit.indicator.value
        host = event.query.hostname
        return host != zone and not (
            host.startswith(_PROVIDER_HOSTS) and host.count(".") == zone.count(".") + 1
        )

    def dedup_key(self, event: DnsActivity) -> str:
        return event.query.hostname

    def threat_intel(self, event: DnsActivity, ctx: Context) -> list[dict[str, Any]]:
        return evidence(ctx.intel.match_domain(event.query.hostname))

    fires: ClassVar = (
        Example(
            "GuardDuty's test domain (built-in)",
            (s.dns("abused-rep.guarddutyc2activityb.com", process=s.proc("/usr/bin/curl")),),
        ),
        Example(
            "a dynamic-DNS name",
            (s.dns("x7-update.duckdns.org", "198.51.100.30", process=s.proc("/tmp/.u/upd")),),
        ),
        Example("a name under a free TLD", (s.dns("secure-login.tk"),)),
    )
    near_misses: ClassVar = (
        Example("the DDNS provider's own update endpoint", (s.dns("www.duckdns.org"),)),
        Example("an ordinary domain", (s.dns("www.example.com"),)),
    )
