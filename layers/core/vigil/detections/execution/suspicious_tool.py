"""Execution:Runtime/SuspiciousTool: a penetration-testing, credential-theft or scanning tool ran.

Severity follows GuardDuty: High for tools with no legitimate production use (offensive-only),
Low for dual-use tools administrators also run (scanners, sniffers, relays).
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from vigil import sample as s
from vigil import severity
from vigil.detection import Context, Detection, Example, Meta
from vigil.events import ProcessActivity
from vigil.vocab import base_name

# name -> category. Offensive-only tools are High; dual-use tools are Low.
OFFENSIVE: Final[dict[str, str]] = {
    "msfconsole": "PenetrationTestingFramework",
    "msfvenom": "PenetrationTestingFramework",
    "msfrpcd": "PenetrationTestingFramework",
    "sliver-server": "CommandAndControl",
    "sliver-client": "CommandAndControl",
    "chisel": "Tunneling",
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
    "ngrok": "Tunneling",
    "proxychains": "Tunneling",
    "proxychains4": "Tunneling",
    "socat": "NetworkRelay",
    "ncat": "NetworkRelay",
}


def _tool(event: ProcessActivity) -> tuple[str, str, bool] | None:
    name = base_name(event.process).lower()
    if name in OFFENSIVE:
        return name, OFFENSIVE[name], True
    if name in DUAL_USE:
        return name, DUAL_USE[name], False
    return None


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
    programs = frozenset(OFFENSIVE) | frozenset(DUAL_USE)  # _tool: the lower-cased name in either table

    def match(self, event: ProcessActivity, ctx: Context) -> bool:
        return _tool(event) is not None

    def severity(self, event: ProcessActivity) -> float:
        t = _tool(event)
        return severity.HIGH if t is not None and t[2] else severity.LOW

    def dedup_key(self, event: ProcessActivity) -> str:
        t = _tool(event)
        return t[0] if t else ""

    def context(self, event: ProcessActivity, ctx: Context) -> dict[str, Any]:
        t = _tool(event)
        return {"toolName": t[0], "toolCategory": t[1]} if t else {}

    fires: ClassVar = (
        Example(
            "hydra brute-forcing ssh",
            (s.exec_(s.proc("/usr/bin/hydra", "-l", "root", "-P", "rockyou.txt", "ssh://198.51.100.3")),),
        ),
        Example("nmap scan (dual-use, Low)", (s.exec_(s.proc("/usr/bin/nmap", "-sS", "198.51.100.0/24")),)),
        Example("linpeas from /tmp", (s.exec_(s.proc("/tmp/linpeas.sh")),)),
    )
    near_misses: ClassVar = (
        Example("curl", (s.exec_(s.proc("/usr/bin/curl", "-sS", "https://example.com/")),)),
        Example(
            "a file named after a tool passed as an argument",
            (s.exec_(s.proc("/usr/bin/cat", "/usr/share/doc/nmap/README")),),
        ),
    )
