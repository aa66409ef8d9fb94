"""CryptoCurrency:EC2/BitcoinTool.B: the instance connected to an IP address of cryptocurrency activity (mining pools) (VPC Flow Logs).

The remote address is on one of AWS's threat lists of category ``CryptoCurrency`` (the built-in set or
a curated feed, never a customer's list: those raise UnauthorizedAccess:EC2/MaliciousIPCaller.Custom).
"""

from __future__ import annotations

from typing import ClassVar

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Example, Meta
from vigil.detections._common import example_intel
from vigil.detections.ec2._common import ThreatListFlow, aws_intel

_LISTS = aws_intel(ti.CRYPTO, "203.0.113.120")


class BitcoinToolB(ThreatListFlow):
    category = ti.CRYPTO
    meta = Meta(
        type="CryptoCurrency:EC2/BitcoinTool.B",
        severity=severity.HIGH,
        title="The instance is communicating with a cryptocurrency mining address",
        description=(
            "The instance opened a connection to an IP address on a threat list of cryptocurrency activity (mining pools and proxies): a miner is probably running on it."
        ),
        mitre=("T1496",),
        runbook=(
            "Isolate the instance, find the miner and how it got there (the runtime agent's CryptoMinerExecuted findings name it), and rebuild."
        ),
        false_positives=("Sanctioned cryptocurrency nodes run by the account owner.",),
        references=("https://attack.mitre.org/techniques/T1496/",),
    )

    fires: ClassVar = (
        Example(
            "the instance connects to a listed address",
            (s.flow(s.LOCAL_IP, 43210, "203.0.113.120", 3333, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
    )
    near_misses: ClassVar = (
        Example(
            "an unlisted address",
            (s.flow(s.LOCAL_IP, 43210, "203.0.113.121", 3333, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
        Example(
            "the listed host connecting in to a service of the instance",
            (s.flow("203.0.113.120", 43210, s.LOCAL_IP, 22, packets=14, nbytes=4200),),
            intel=_LISTS,
        ),
        Example(
            "the address only on a customer list (MaliciousIPCaller.Custom's)",
            (s.flow(s.LOCAL_IP, 43210, "203.0.113.120", 3333, packets=14, nbytes=4200),),
            intel=example_intel(crypto="203.0.113.120"),
            also_fires=frozenset({"UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"}),
        ),
    )
