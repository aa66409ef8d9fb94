"""CryptoCurrency:Runtime/BitcoinTool.B!DNS: a process looked up a cryptocurrency (mining pool) domain."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListDns


class BitcoinToolBDns(ThreatListDns):
    category = ti.CRYPTO
    meta = Meta(
        type="CryptoCurrency:Runtime/BitcoinTool.B!DNS",
        severity=severity.HIGH,
        title="A process queried a domain associated with cryptocurrency mining",
        description=(
            "A process on the instance queried a domain that is on a threat list for cryptocurrency-related activity, "
            "typically a mining pool: the instance is likely running a coin miner."
        ),
        mitre=("T1496",),
        runbook=(
            "Find the querying process in runtimeDetails.process and its lineage; check for a miner binary and its persistence "
            "(cron, systemd). If mining is not sanctioned, isolate and rebuild the instance."
        ),
        false_positives=("Instances that mine on purpose: suppress by instance id or tag.",),
        references=("https://attack.mitre.org/techniques/T1496/",),
        maturity="stable",
    )

    fires: ClassVar = (
        Example(
            "xmrig resolving a Monero pool",
            (s.dns("pool.supportxmr.com", "198.51.100.50", process=s.proc("/tmp/.x/xmrig")),),
        ),
        Example("a pool domain with a trailing subdomain", (s.dns("gulf.moneroocean.stream"),)),
    )
    near_misses: ClassVar = (
        Example(
            "package mirror lookup",
            (s.dns("deb.debian.org", "198.51.100.60", process=s.proc("/usr/bin/apt-get", uid=0)),),
        ),
        Example("a name that merely contains a pool name", (s.dns("supportxmr.com.example.org"),)),
    )
