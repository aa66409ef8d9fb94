"""CryptoCurrency:Runtime/BitcoinTool.B: a process connected to an IP address associated with cryptocurrency mining."""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import ThreatListIp, example_intel

_LISTS = example_intel(crypto="198.51.100.50")


class BitcoinToolB(ThreatListIp):
    category = ti.CRYPTO
    meta = Meta(
        type="CryptoCurrency:Runtime/BitcoinTool.B",
        severity=severity.HIGH,
        title="A process connected to a cryptocurrency-related IP address",
        description=(
            "A process on the instance connected to an IP address on a threat list of cryptocurrency-related activity, "
            "typically a mining pool: the instance is likely mining."
        ),
        mitre=("T1496",),
        runbook=(
            "Identify the process and binary (runtimeDetails.process, executableSha256); look for the miner's persistence "
            "(cron, systemd, ~/.bashrc). If mining is not sanctioned, isolate and rebuild the instance."
        ),
        false_positives=("Instances that mine on purpose: suppress by instance id or tag.",),
        references=("https://attack.mitre.org/techniques/T1496/",),
        maturity="stable",
    )

    fires: ClassVar = (
        Example(
            "a miner connecting to a pool IP",
            (s.connect(s.proc("/tmp/.x/xmrig"), "198.51.100.50", 3333),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "the same port on an unlisted IP",
            (s.connect(s.proc("/usr/bin/python3"), "198.51.100.51", 3333),),
            intel=_LISTS,
        ),
    )
