"""Trojan:Runtime/BlackholeTraffic!DNS: a process looked up a domain that is redirected to a black hole."""

from __future__ import annotations

from typing import Any, ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import evidence, example_intel
from vigil.events import DnsActivity
from vigil.intel import Hit

_LISTS = example_intel(blackhole="192.0.2.10\nsunk.badexample.net")


def _hit(event: DnsActivity, ctx: Context) -> Hit | None:
    hit = ctx.intel.match_domain(event.query.hostname)
    if hit is not None and hit.indicator.category == ti.BLACKHOLE:
        return hit
    for a in event.answers:  # the domain itself may be unlisted but answer with a sinkhole address
        if a.type in ("A", "AAAA"):
            h = ctx.intel.match_ip(a.rdata)
            if (
                h is not None
                and h.indicator.category == ti.BLACKHOLE
                and not ctx.intel.is_trusted_domain(event.query.hostname)
            ):
                return h
    return None


class BlackholeTrafficDns(Detection):
    meta = Meta(
        type="Trojan:Runtime/BlackholeTraffic!DNS",
        severity=severity.MEDIUM,
        title="A process queried a domain that is redirected to a black hole",
        description=(
            "A process looked up a domain that is listed as black-holed, or whose answer is a known sinkhole address: "
            "the domain was taken over from malware operators, and something on the instance still uses it."
        ),
        mitre=("T1071.004",),
        runbook=(
            "Find the querying process (runtimeDetails.process) and the binary behind it; the lookup fails harmlessly but "
            "the software making it is likely malware. Clean or rebuild the instance."
        ),
        false_positives=(
            "Sinkhole research tools; resolvers that answer blocked names with a listed address.",
        ),
        references=("https://attack.mitre.org/techniques/T1071/004/",),
    )
    kinds = frozenset({"dns_query"})

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        return _hit(event, ctx) is not None

    def dedup_key(self, event: DnsActivity) -> str:
        return event.query.hostname

    def threat_intel(self, event: DnsActivity, ctx: Context) -> list[dict[str, Any]]:
        return evidence(_hit(event, ctx))

    fires: ClassVar = (
        Example("a listed black-holed domain", (s.dns("sunk.badexample.net"),), intel=_LISTS),
        Example(
            "an unlisted domain answering with a sinkhole IP",
            (s.dns("old-panel.example.net", "192.0.2.10"),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example("an ordinary answer", (s.dns("old-panel.example.net", "192.0.2.99"),), intel=_LISTS),
    )
