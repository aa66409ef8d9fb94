"""Execution:Runtime/SuspiciousTool: a penetration-testing, credential-theft, scanning or tunnelling tool ran.

Severity follows GuardDuty: High for tools with no legitimate production use (offensive-only),
Low for dual-use tools administrators also run (scanners, sniffers, relays).

Tunnelling (issue 17, toolCategory ``Tunneling``): ngrok, cloudflared quick tunnels (``tunnel
--url``), chisel (``client … R:…``, ``server --reverse``), frp (frpc/frps), iodine, dnscat2, gost
(``rtcp://``), bore (``local N --to``), socat relaying a listener to another address, and
``ssh -R``/``-D``/``-w`` started by a web/app server or cron child. Recognised by name and, for
chisel, cloudflared, dnscat2, gost and bore, by their distinctive arguments too, so a renamed binary
still fires. Severity by who ran it (``vigil.vocab.session``): High from a web/app server or cron
child, Low at an administrator's terminal, else Medium; chisel and dnscat2 (offensive-only) are High
anywhere.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.detections._common import memo_by_command
from vigil.events import ProcessActivity
from vigil.vocab import base_name, session

# name -> category. Offensive-only tools are High; dual-use tools are Low.
OFFENSIVE: Final[dict[str, str]] = {
    "msfconsole": "PenetrationTestingFramework",
    "msfvenom": "PenetrationTestingFramework",
    "msfrpcd": "PenetrationTestingFramework",
    "sliver-server": "CommandAndControl",
    "sliver-client": "CommandAndControl",
    "hydra": "BruteForce",
    "medusa": "BruteForce",
    "ncrack": "BruteForce",
    "john": "PasswordCracker",
    "hashcat": "PasswordCracker",
    "sqlmap": "ExploitTool",
    "nikto": "VulnerabilityScanner",
    "linpeas.sh": "PrivilegeEscalationScanner",
    "linpeas": "PrivilegeEscalationScanner",
    "linenum.sh": "PrivilegeEscalationScanner",
    "les.sh": "PrivilegeEscalationScanner",
    "pspy": "Reconnaissance",
    "pspy64": "Reconnaissance",
    "mimipenguin": "CredentialTheft",
    "lazagne": "CredentialTheft",
    "crackmapexec": "LateralMovement",
    "netexec": "LateralMovement",
    "responder": "CredentialTheft",
    "kerbrute": "BruteForce",
    "gsocket": "Backdoor",
    "gs-netcat": "Backdoor",
}
DUAL_USE: Final[dict[str, str]] = {
    "nmap": "NetworkScanner",
    "masscan": "NetworkScanner",
    "zmap": "NetworkScanner",
    "rustscan": "NetworkScanner",
    "tcpdump": "NetworkSniffer",
    "tshark": "NetworkSniffer",
    "ettercap": "NetworkSniffer",
    "proxychains": "Tunneling",
    "proxychains4": "Tunneling",
    "socat": "NetworkRelay",
    "ncat": "NetworkRelay",
}


# tunnelling tools by name -> (canonical name, offensive-only)
TUNNELS: Final[dict[str, tuple[str, bool]]] = {
    "ngrok": ("ngrok", False), "chisel": ("chisel", True), "frpc": ("frp", False), "frps": ("frp", False),
    "iodine": ("iodine", False), "iodined": ("iodine", False), "dnscat": ("dnscat2", True), "dnscat2": ("dnscat2", True),
    "dnscat2-client": ("dnscat2", True), "gost": ("gost", False), "bore": ("bore", False),
}  # fmt: skip
_SSH_TUNNEL_FLAGS: Final = frozenset("RDw")
_SSH_VALUE_FLAGS: Final = frozenset(
    "BbcDEeFIiJLlmOopQRSWw"
)  # options that take a value (the value is not flags)


def _ssh_tunnel(args: list[str]) -> bool:
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if not a.startswith("-") or a.startswith("--"):
            continue
        for k, c in enumerate(a[1:]):
            if c in _SSH_TUNNEL_FLAGS:
                return True
            if c in _SSH_VALUE_FLAGS:
                skip = k == len(a) - 2  # the value is the next argument
                break
    return False


def _socat_relay(args: list[str]) -> bool:
    addrs = [a.upper() for a in args if not a.startswith("-")]
    return (
        len(addrs) >= 2
        and any("LISTEN" in a for a in addrs)
        and any(a.startswith(("TCP:", "TCP4:", "TCP6:", "UDP:", "OPENSSL:")) for a in addrs)
    )


_VERBS: Final = frozenset({"client", "server", "tunnel", "local"})


def _tunnel_by_args(name: str, args: list[str]) -> tuple[str, bool] | None:
    """A tunnelling tool recognised by its arguments (renamed binaries too)."""
    if not args:
        return None
    verb = args[0]
    if verb in _VERBS:
        if verb == "client" and any(a.startswith("R:") for a in args[1:]):
            return "chisel", True
        if verb == "server" and "--reverse" in args:
            return "chisel", True
        if verb == "tunnel" and any(a == "--url" or a.startswith("--url=") for a in args):
            return "cloudflared", False
    joined = "\0".join(args)  # one scan for the markers below (no marker holds a NUL: none spans two args)
    if "--dns" in joined and "--dns" in args and any(a.startswith(("domain=", "server=")) for a in args):
        return "dnscat2", True
    if "rtcp://" in joined or "rudp://" in joined:
        return "gost", False
    if verb == "local" and "--to" in args:
        return "bore", False
    if name == "socat" and _socat_relay(args):
        return "socat", False
    return None


@memo_by_command
def _tool_of(event: ProcessActivity) -> tuple[str, str, bool] | None:
    p = event.process
    name = base_name(p).lower()
    if name in OFFENSIVE:
        return name, OFFENSIVE[name], True
    args = p.args[1:]
    tunnel = TUNNELS.get(name) or _tunnel_by_args(name, args)
    if tunnel is not None:
        return tunnel[0], "Tunneling", tunnel[1]
    if name == "ssh" and _ssh_tunnel(args):
        return "ssh", "Tunneling", False  # counts from a service's child only (match)
    if name in DUAL_USE:
        return name, DUAL_USE[name], False
    return None


def _tool(event: ProcessActivity) -> tuple[str, str, bool] | None:
    t = _tool_of(event)
    if t is not None and t[0] == "ssh" and session(event.process) != "service":
        return None  # an administrator's own port forwarding
    return t


class SuspiciousTool(Detection):
    meta = Meta(
        type="Execution:Runtime/SuspiciousTool",
        severity=severity.HIGH,
        title="A suspicious tool was executed",
        description=(
            "A process ran a tool used for penetration testing, credential theft, tunnelling or network scanning. "
            "Offensive-only tools are High severity; dual-use tools that administrators also run are Low."
        ),
        mitre=("T1588.002", "T1046"),
        runbook=(
            "Check runtimeDetails.context.toolName and the lineage: was it run from an admin's interactive session during an "
            "approved test? If not, treat the instance as compromised and look for how the tool arrived (downloads, new files)."
        ),
        false_positives=(
            "Authorized penetration tests; network troubleshooting with tcpdump or nmap (Low severity).",
        ),
        references=("https://attack.mitre.org/techniques/T1588/002/",),
        maturity="stable",
    )
    kinds = frozenset({"process_exec"})
    # no program prefilter: renamed tunnelling tools are recognised by their arguments

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _tool(event) is not None

    def severity(self, event: ProcessActivity) -> float:
        t = _tool(event)
        if t is None:
            return self.meta.severity
        if t[2]:
            return severity.HIGH
        if t[1] != "Tunneling":
            return severity.LOW
        who = session(event.process)
        return (
            severity.HIGH if who == "service" else severity.LOW if who == "interactive" else severity.MEDIUM
        )

    def dedup_key(self, event: ProcessActivity) -> str:
        t = _tool(event)
        return t[0] if t else ""

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        t = _tool(event)
        return {"toolName": t[0], "toolCategory": t[1]} if t else {}

    _WEB: ClassVar = s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, stdin=s.pipe())
    _CRON: ClassVar = s.proc(
        "/bin/sh", "-c", "/etc/cron.hourly/x", pid=960, uid=0, parent=s.proc("/usr/sbin/cron", pid=700, uid=0)
    )
    fires: ClassVar = (
        Example(
            "hydra brute-forcing ssh",
            (s.exec_(s.proc("/usr/bin/hydra", "-l", "root", "-P", "rockyou.txt", "ssh://198.51.100.3")),),
        ),
        Example("nmap scan (dual-use, Low)", (s.exec_(s.proc("/usr/bin/nmap", "-sS", "198.51.100.0/24")),)),
        Example("linpeas from /tmp", (s.exec_(s.proc("/tmp/linpeas.sh")),)),
        Example("ngrok tcp from a web server's child (High)", (s.exec_(s.proc("/tmp/ngrok", "tcp", "22", uid=33, parent=_WEB)),)),
        Example("cloudflared quick tunnel, renamed", (s.exec_(s.proc("/var/tmp/.cf", "tunnel", "--url", "http://localhost:22", parent=_CRON)),)),
        Example("chisel client with a reverse remote, renamed", (s.exec_(s.proc("/tmp/.c", "client", "198.51.100.7:8080", "R:socks", uid=33, parent=_WEB)),)),
        Example("chisel server --reverse", (s.exec_(s.proc("/opt/x/srv", "server", "--reverse", "--port", "8443")),)),
        Example("frpc from cron", (s.exec_(s.proc("/tmp/frpc", "-c", "/tmp/frpc.toml", parent=_CRON)),)),
        Example("iodine DNS tunnel", (s.exec_(s.proc("/usr/sbin/iodine", "-f", "t.badexample.net", uid=0, parent=_WEB)),)),
        Example("dnscat2 client, renamed", (s.exec_(s.proc("/tmp/d", "--dns", "server=198.51.100.7,port=53", "--secret=x")),)),
        Example("gost reverse forward", (s.exec_(s.proc("/tmp/g", "-L", "rtcp://:2222/127.0.0.1:22", "-F", "relay+tls://198.51.100.7:443", parent=_CRON)),)),
        Example("bore local port", (s.exec_(s.proc("/tmp/bore", "local", "22", "--to", "bore.badexample.net", parent=_WEB)),)),
        Example("ssh -R from a web server's child", (s.exec_(s.proc("/usr/bin/ssh", "-o", "StrictHostKeyChecking=no", "-fN", "-R", "2222:127.0.0.1:22", "tun@198.51.100.7", uid=33, parent=_WEB)),)),
        Example("socat relaying a listener from a web child", (s.exec_(s.proc("/usr/bin/socat", "TCP-LISTEN:8081,fork", "TCP:10.0.0.5:3306", uid=33, parent=_WEB)),)),
    )  # fmt: skip
    near_misses: ClassVar = (
        Example("curl", (s.exec_(s.proc("/usr/bin/curl", "-sS", "https://example.com/")),)),
        Example(
            "an admin's ssh -D at a terminal",
            (
                s.exec_(
                    s.proc("/usr/bin/ssh", "-D", "1080", "admin@bastion.example.com", parent=s.LOGIN_SHELL)
                ),
            ),
        ),
        Example(
            "ssh -i key -p 2222 from cron (no forwarding)",
            (
                s.exec_(
                    s.proc(
                        "/usr/bin/ssh", "-i", "/root/.ssh/id_R", "-p", "2222", "backup@10.0.0.9", parent=_CRON
                    )
                ),
            ),
        ),
        Example(
            "cloudflared DNS proxy",
            (s.exec_(s.proc("/usr/local/bin/cloudflared", "proxy-dns", "--port", "5053", uid=0)),),
        ),
        Example(
            "cloudflared named tunnel run",
            (s.exec_(s.proc("/usr/local/bin/cloudflared", "tunnel", "run", "prod", uid=0)),),
        ),
        Example(
            "a CLI with a client subcommand",
            (s.exec_(s.proc("/usr/bin/vault", "server", "-config", "/etc/vault.hcl")),),
        ),
        Example(
            "a file named after a tool passed as an argument",
            (s.exec_(s.proc("/usr/bin/cat", "/usr/share/doc/nmap/README")),),
        ),
    )
