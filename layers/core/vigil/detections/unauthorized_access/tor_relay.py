"""UnauthorizedAccess:Runtime/TorRelay: the instance is acting as a Tor relay.

A Tor client only listens on loopback (SocksPort); a relay listens on a public ORPort and accepts
connections from other relays. We fire when a ``tor`` process listens or accepts on a
non-loopback address, or when any process accepts an ORPort/DirPort connection from a listed Tor node.
"""

from __future__ import annotations

from typing import ClassVar, Final

from vigil import intel as ti
from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import NetworkActivity
from vigil.vocab import base_name

_TOR_NAMES: Final = frozenset({"tor", "tor.real", "obfs4proxy", "snowflake-proxy"})
_TOR_PORTS: Final = frozenset({9001, 9030, 9050, 9051, 9150})


def _loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "localhost")


class TorRelay(Detection):
    meta = Meta(
        type="UnauthorizedAccess:Runtime/TorRelay",
        severity=severity.HIGH,
        title="The instance is acting as a Tor relay",
        description=(
            "A Tor process accepts connections on a public address, or the instance accepts Tor relay connections from "
            "known Tor nodes: the instance relays Tor traffic, which can hide abuse behind its address."
        ),
        mitre=("T1090.003",),
        runbook=(
            "Find the listening process (runtimeDetails.process) and its configuration (torrc ORPort). If the relay is not "
            "sanctioned, stop it, remove it and find how it was installed."
        ),
        false_positives=("Sanctioned Tor relays run by the account owner.",),
        references=("https://attack.mitre.org/techniques/T1090/003/",),
    )
    kinds = frozenset({"net_listen", "net_accept"})

    def match(self, event: NetworkActivity, ctx: Context) -> bool:
        if base_name(event.process) in _TOR_NAMES:
            return not _loopback(event.src_endpoint.ip)
        if event.kind != "net_accept" or event.src_endpoint.port not in _TOR_PORTS:
            return False
        hit = ctx.intel.match_ip(event.dst_endpoint.ip)
        return hit is not None and hit.indicator.category == ti.TOR

    def dedup_key(self, event: NetworkActivity) -> str:
        return f"{event.process.file.path}|{event.src_endpoint.port}"

    fires: ClassVar = (
        Example(
            "tor listening on a public ORPort",
            (s.listen(s.proc("/usr/bin/tor", "-f", "/etc/tor/torrc", uid=110), "0.0.0.0", 9001),),
        ),
        Example(
            "a relay connection accepted from a Tor directory authority",
            (s.accept(s.proc("/opt/.r/relayd"), "171.25.193.9", local_port=9001),),
        ),
    )
    near_misses: ClassVar = (
        Example(
            "a Tor client's SOCKS port on loopback",
            (s.listen(s.proc("/usr/bin/tor", uid=110), "127.0.0.1", 9050),),
        ),
        Example(
            "an HTTPS accept from an ordinary client",
            (s.accept(s.proc("/usr/sbin/nginx"), "198.51.100.7", local_port=443),),
        ),
    )
