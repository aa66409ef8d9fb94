"""Recordings from the kernel (events/sources/recorded/, `make record-sources`) raise the EC2 types.

GIVEN flow-log records and Resolver query-log records captured in the namespace lab (real
packets aggregated into the exact VPC Flow Log formats, real queries logged by the lab's
resolver), WHEN they are replayed as `vigil replay --source ...` does, THEN each recording raises
exactly its finding types (type, instance, resource role), and the benign ones raise nothing.

Both flow-log formats of each capture are replayed: the default v2 (no instance id, direction
inferred from the addresses) and a v5 custom format with instance-id, tcp-flags and
flow-direction. Traffic between two instances of the VPC has no inferable direction in v2 (both
addresses are private), so those scenarios raise their types only from v5 (the format the
template's flow logs use).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from guardduty_shape import validate
from typer.testing import CliRunner

from vigil.intel import Intel
from vigil.intel.builtin import builtin_intel
from vigil.intel.formats import parse_list
from vigil.pipeline import Pipeline
from vigil_cli import replay as _replay

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "events" / "sources" / "recorded"
MANIFEST = json.loads((RECORDED / "manifest.json").read_text())
LAB = MANIFEST["lab"]["instances"]
RED, LINUX, WIN = (LAB[n]["instance"] for n in ("red", "linux", "win"))
ENI = {LAB[n]["instance"]: LAB[n]["eni"] for n in LAB}


def recording(name: str) -> Path:
    """The recording file, plain or gzipped (the recorder gzips the large ones)."""
    for p in (RECORDED / name, RECORDED / f"{name}.gz"):
        if p.exists():
            return p
    raise FileNotFoundError(f"{name}: not recorded (make record-sources)")


def custom_intel() -> Intel:
    intel = builtin_intel()
    text = (RECORDED / "tester_custom_threat_list.txt").read_bytes()
    intel.extend(parse_list(text, "TXT", name="TesterCustomThreatList", custom=True).indicators)
    return intel


def replay(
    name: str, *, intel: Intel | None = None, lines: list[bytes] | None = None
) -> list[dict[str, Any]]:
    path = recording(name)
    source = "resolver" if ".resolver." in name else "flowlogs"
    pipeline = Pipeline.default(account_id="123456789012", region="us-east-1", intel=intel)
    errors: list[str] = []
    if lines is None:
        stream = _replay.open_input(str(path))
    else:
        stream = _replay.as_text_stream(b"\n".join(lines) + b"\n")
    stats = _replay.replay_source(stream, pipeline, source, on_error=errors.append)
    assert errors == [] and stats.rejected == 0 and stats.events > 0
    return [o.finding for o in stats.findings.values()]


def summary(findings: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (f["type"], f["resource"]["instanceDetails"]["instanceId"], f["service"]["resourceRole"])
        for f in findings
    }


def v2(instance: str) -> str:
    """A v2 record names no instance: the finding's resource is the interface (see docs/sources.md)."""
    return ENI[instance]


# (recording, exact findings as (type, instance, role))
CASES = [
    ("portscan.flowlogs.log", {("Recon:EC2/Portscan", v2(RED), "ACTOR")}),
    ("portscan.flowlogs-v5.log", {("Recon:EC2/Portscan", RED, "ACTOR")}),
    ("portsweep.flowlogs.log", {("Impact:EC2/PortSweep", v2(RED), "ACTOR")}),
    ("portsweep.flowlogs-v5.log", {("Impact:EC2/PortSweep", RED, "ACTOR")}),
    ("ssh_bruteforce_internet.flowlogs.log", {("UnauthorizedAccess:EC2/SSHBruteForce", v2(LINUX), "TARGET")}),
    ("ssh_bruteforce_internet.flowlogs-v5.log", {("UnauthorizedAccess:EC2/SSHBruteForce", LINUX, "TARGET")}),
    ("dns_exfiltration.resolver.ndjson", {("Trojan:EC2/DNSDataExfiltration", RED, "ACTOR")}),
    ("dns_exfiltration.flowlogs-v5.log", set()),  # the queries' packets go to the VPC's resolver
    ("volume_burst.flowlogs.log", set()),  # bulk data to one host: neither a flood nor a scan
    ("volume_burst.flowlogs-v5.log", set()),
    ("tester_dos_udp.flowlogs.log", {("Backdoor:EC2/DenialOfService.Udp", v2(RED), "ACTOR")}),
    ("tester_dos_udp.flowlogs-v5.log", {("Backdoor:EC2/DenialOfService.Udp", RED, "ACTOR")}),
    ("tester_dos_dns.flowlogs.log", {("Backdoor:EC2/DenialOfService.Dns", v2(RED), "ACTOR")}),
    ("tester_dos_dns.flowlogs-v5.log", {("Backdoor:EC2/DenialOfService.Dns", RED, "ACTOR")}),
    ("tester_portscan.flowlogs-v5.log", {("Recon:EC2/Portscan", LINUX, "ACTOR")}),
    ("tester_portscan.flowlogs.log", set()),  # VPC-internal: no direction in v2
    (
        "tester_ssh_bruteforce.flowlogs-v5.log",
        {
            ("UnauthorizedAccess:EC2/SSHBruteForce", RED, "ACTOR"),
            ("UnauthorizedAccess:EC2/SSHBruteForce", LINUX, "TARGET"),
        },
    ),
    ("tester_ssh_bruteforce.flowlogs.log", set()),
    (
        "tester_rdp_bruteforce.flowlogs-v5.log",
        {
            ("UnauthorizedAccess:EC2/RDPBruteForce", RED, "ACTOR"),
            ("UnauthorizedAccess:EC2/RDPBruteForce", WIN, "TARGET"),
        },
    ),
    ("tester_rdp_bruteforce.flowlogs.log", set()),
    ("tester_dns_domains.flowlogs-v5.log", set()),  # the curls reach a sinkhole address on no list
    (
        "tester_dns_exfiltration.resolver.ndjson",
        {
            ("Trojan:EC2/DNSDataExfiltration", RED, "ACTOR"),
            ("Backdoor:EC2/C&CActivity.B!DNS", RED, "ACTOR"),
            # Exfiltration and Command and Control on one instance: an attack sequence (vigil.sequences)
            ("AttackSequence:EC2/CompromisedInstanceGroup", RED, "ACTOR"),
        },
    ),
    ("tester_malicious_ip_caller.flowlogs-v5.log", set()),  # without the customer's list: nothing
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_recording_raises_exactly_its_types(name: str, expected: set[tuple[str, str, str]]) -> None:
    findings = replay(name)
    assert summary(findings) == expected
    for f in findings:
        assert validate(f) == [], f["type"]


def test_every_recording_in_the_manifest_is_checked_here() -> None:
    checked = {c[0] for c in CASES} | {
        "tester_dns_domains.resolver.ndjson",
        "tester_malicious_ip_caller.flowlogs.log",
    }
    recorded = {re.sub(r"\.gz$", "", f) for s in MANIFEST["scenarios"].values() for f in s["files"].values()}
    stems = {n.split(".")[0] for n in recorded}
    assert stems == {n.split(".")[0] for n in checked}


def test_the_recordings_were_captured_without_loss() -> None:
    for name, s in MANIFEST["scenarios"].items():
        assert s["packets_dropped"] == 0, name
        assert s["packets_captured"] > 0 and s["flow_records"] > 0, name


def test_flow_lines_are_in_the_exact_default_format() -> None:
    # version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status
    v2_line = re.compile(
        r"^2 \d{12} eni-[0-9a-f]{17} (\d+\.){3}\d+ (\d+\.){3}\d+ \d+ \d+ \d+ \d+ \d+ \d{10} \d{10} (ACCEPT|REJECT) OK$"
    )
    for name in (
        "portsweep.flowlogs.log",
        "tester_dos_dns.flowlogs.log",
        "tester_ssh_bruteforce.flowlogs.log",
    ):
        with _replay.open_input(str(recording(name))) as fh:
            lines = fh.read().decode().splitlines()
        assert lines and all(v2_line.match(x) for x in lines), name


def test_resolver_records_have_the_exact_query_log_fields() -> None:
    keys = ["version", "account_id", "region", "vpc_id", "query_timestamp", "query_name", "query_type",
            "query_class", "rcode", "answers", "srcaddr", "srcport", "transport", "srcids"]  # fmt: skip
    for line in recording("tester_dns_domains.resolver.ndjson").read_text().splitlines():
        rec = json.loads(line)
        assert list(rec) == keys
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["query_timestamp"])
        assert rec["query_name"].endswith(".") and rec["srcids"]["instance"] == LINUX


def test_the_dns_flood_is_thousands_of_small_records_and_still_one_finding() -> None:
    # the tester's DNS flood opens a socket per packet: the per-record minimum of the other DoS
    # types would never see it (the flaw this recording showed)
    with gzip.open(recording("tester_dos_dns.flowlogs.log")) as fh:
        packets = [int(x.split()[8]) for x in fh.read().decode().splitlines()]
    assert len(packets) > 10_000 and max(packets) < 1_000
    (f,) = replay("tester_dos_dns.flowlogs.log")
    assert f["service"]["action"]["networkConnectionAction"]["remotePortDetails"]["port"] == 53


def test_vigil_replay_reads_a_recording_with_a_customer_threat_list() -> None:
    from vigil_cli.main import app

    res = CliRunner().invoke(
        app,
        [
            "replay",
            "--source",
            "flowlogs",
            "--threat-list",
            str(RECORDED / "tester_custom_threat_list.txt"),
            str(recording("tester_malicious_ip_caller.flowlogs-v5.log")),
        ],
    )
    assert res.exit_code == 0, res.output
    docs = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert summary(docs) == {("UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", RED, "ACTOR")}


def _netns():  # type: ignore[no-untyped-def]
    import sys

    if str(ROOT) not in sys.path:  # `local` (the namespace lab) lives at the repo root
        sys.path.insert(0, str(ROOT))
    from local.scenarios import netns

    return netns


@pytest.mark.parametrize(
    ("tcp", "flowlog"),
    [(0x02, 2), (0x12, 18), (0x10, 0), (0x18, 0), (0x11, 1), (0x14, 4), (0x04, 4), (0x13, 19)],
)
def test_the_recorder_encodes_tcp_flags_as_flow_logs_do(tcp: int, flowlog: int) -> None:
    # FIN 1, SYN 2, RST 4, SYN-ACK 18; a bare ACK or PSH is not recorded
    assert _netns().flowlog_flags(tcp) == flowlog


def test_the_recorders_lines_are_read_back_by_the_normalizer_in_both_formats() -> None:
    from vigil.events import NetworkFlow
    from vigil.normalize.vpcflow import FlowFormat, normalize_flow_line

    netns = _netns()
    red = netns.HOSTS["red"]
    rec = {"host": red, "src": netns.to_aws("10.77.0.10"), "dst": netns.to_aws("10.77.1.10"), "sport": 40001,
           "dport": 22, "proto": 6, "packets": 2, "bytes": 120, "start": 1796571413, "end": 1796571414,
           "flags": 2 | 4, "direction": "egress"}  # fmt: skip
    v2 = normalize_flow_line(netns.v2_line(rec))
    v5 = normalize_flow_line(netns.v5_line(rec), FlowFormat.parse(netns.V5_FORMAT))
    assert isinstance(v2, NetworkFlow) and isinstance(v5, NetworkFlow)
    assert (v2.device.instance_uid, v5.device.instance_uid) == (red.eni, red.instance)
    assert v2.direction == v5.direction == "Outbound" and v5.tcp_flags == 6
    assert (v5.src_endpoint.ip, v5.dst_endpoint.ip) == ("172.31.16.10", "198.51.100.10")
    with pytest.raises(ValueError):
        netns.to_aws("192.0.2.1")  # never a non-lab address


def test_the_tester_exfiltration_recording_holds_every_name_of_its_queries_file() -> None:
    names = (ROOT / "local" / "scenarios" / "guardduty_tester" / "queries.txt").read_text().split()
    with _replay.open_input(str(recording("tester_dns_exfiltration.resolver.ndjson"))) as fh:
        logged = [json.loads(x)["query_name"].rstrip(".") for x in fh.read().splitlines()]
    assert len(names) == 930 and sorted(logged) == sorted(names)
