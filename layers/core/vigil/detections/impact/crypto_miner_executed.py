"""Impact:Runtime/CryptoMinerExecuted: a cryptocurrency miner was started.

By program name (xmrig, cpuminer, t-rex ...) or by miner command-line markers (stratum URLs,
``--donate-level``, RandomX/CryptoNight options) so a renamed miner still shows.
"""

from __future__ import annotations

from typing import ClassVar

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import MINER_ARG_MARKERS, MINER_NAMES, base_name


@memo_by_command
def _miner(event: ProcessActivity) -> str:
    p = event.process
    name = base_name(p).lower()
    if name in MINER_NAMES:
        return name
    cmd = p.cmd_line
    if (
        "stratum" in cmd
        or "donate-level" in cmd
        or "rx/0" in cmd
        or "cryptonight" in cmd
        or "-threads-hint" in cmd
        or "coin" in cmd
        or "randomx" in cmd
    ):
        low = cmd.lower()
        for m in MINER_ARG_MARKERS:
            if m in low:
                return m
    return ""


class CryptoMinerExecuted(Detection):
    meta = Meta(
        type="Impact:Runtime/CryptoMinerExecuted",
        severity=severity.HIGH,
        title="A cryptocurrency miner was executed",
        description=(
            "A process associated with cryptocurrency mining started (a known miner binary, or a command line carrying "
            "mining-pool and miner options): the instance's compute is being used to mine."
        ),
        mitre=("T1496",),
        runbook=(
            "Kill the miner, find its persistence (cron, systemd, ~/.bashrc, ld.so.preload) and how it arrived (lineage, "
            "downloads); miners usually follow an exposed service or leaked credentials. Rebuild the instance."
        ),
        false_positives=("Instances that mine on purpose: suppress by instance tag.",),
        references=("https://attack.mitre.org/techniques/T1496/",),
        maturity="stable",
    )
    kinds = frozenset({"process_exec", "memfd_exec"})

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _miner(event) != ""

    fires: ClassVar = (
        Example("xmrig", (s.exec_(s.proc("/tmp/.x/xmrig", "-o", "pool.example.net:3333", "-u", "wallet")),)),
        Example("a renamed miner with a stratum URL", (s.exec_(s.proc("/var/tmp/.k/kswapd0", "-o", "stratum+tcp://198.51.100.50:3333", "--donate-level", "1")),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("a build with long options", (s.exec_(s.proc("/usr/bin/make", "--jobs", "4", "all")),)),
        Example("grep for the word stratum", (s.exec_(s.proc("/usr/bin/grep", "-r", "stratum", "/etc")),)),
    )
