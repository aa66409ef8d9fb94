"""amazon-guardduty-tester compatibility: each of its EC2 checks raises its expected type from
recorded data of the same traffic.

The checks are the tester's own (tests/data/guardduty_tester_ec2_checks.json: its
definitions.json entries for resource ec2 that are not Runtime types). Each was run in the
namespace lab (`make record-sources`, local/scenarios/netns.py) the way the tester runs it: its
scripts (nmap -sT -Pn, the DoS Python loops, dig -f queries.txt, curl to each test domain and to
MALICIOUS_IP:8009) or, where the tester uses tools not installed here (crowbar, hydra), the same
connections to sshd and to an RDP listener. GIVEN the recording of a check, WHEN it is replayed,
THEN the check's findingType is raised (with both roles where the tester expects an inbound and
an outbound finding), and a test-domain query raises exactly its type.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_recorded_sources import LINUX, RED, WIN, custom_intel, recording, replay, summary

CHECKS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "guardduty_tester_ec2_checks.json").read_text()
)["definitions"]
# the tester's script (alias) -> the recording of the same traffic
RECORDING = {
    "ec2/Portscan.sh": "tester_portscan.flowlogs-v5.log",
    "ec2/SSHBruteForce.sh": "tester_ssh_bruteforce.flowlogs-v5.log",
    "ec2/RDPBruteForce.sh": "tester_rdp_bruteforce.flowlogs-v5.log",
    "ec2/DenialOfService-UDP.sh": "tester_dos_udp.flowlogs-v5.log",
    "ec2/DenialOfService-DNS.sh": "tester_dos_dns.flowlogs-v5.log",
    "ec2/DNSDataExfiltration.sh": "tester_dns_exfiltration.resolver.ndjson",
}
# the instances the tester names in its expected findings (RED_TEAM, LINUX, WINDOWS)
EXPECTED = {
    "ec2/Portscan.sh": {(LINUX, "ACTOR")},
    "ec2/SSHBruteForce.sh": {(RED, "ACTOR"), (LINUX, "TARGET")},
    "ec2/RDPBruteForce.sh": {(RED, "ACTOR"), (WIN, "TARGET")},
    "ec2/DenialOfService-UDP.sh": {(RED, "ACTOR")},
    "ec2/DenialOfService-DNS.sh": {(RED, "ACTOR")},
    "ec2/DNSDataExfiltration.sh": {(RED, "ACTOR")},
}


def _id(c: dict[str, str]) -> str:
    return f"{c['findingType']} ({c['alias']}{' ' + c['indicator'] if c.get('indicator') else ''})"


def test_the_tester_has_eighteen_ec2_checks_and_each_is_covered() -> None:
    assert len(CHECKS) == 18
    for c in CHECKS:
        assert c["alias"] in RECORDING or c["alias"] == "threatIntel/request.sh", _id(c)


def _resolver_lines_for(domain: str) -> list[bytes]:
    lines = recording("tester_dns_domains.resolver.ndjson").read_bytes().splitlines()
    mine = [x for x in lines if json.loads(x)["query_name"].rstrip(".") == domain]
    assert mine, f"no query for {domain} in the recording"
    return mine


@pytest.mark.parametrize("check", CHECKS, ids=[_id(c) for c in CHECKS])
def test_each_tester_ec2_check_raises_its_finding_type_from_recorded_traffic(check: dict[str, str]) -> None:
    expected = check["findingType"]
    if check["alias"] in RECORDING:
        findings = summary(replay(RECORDING[check["alias"]]))
        assert {(i, r) for t, i, r in findings if t == expected} == EXPECTED[check["alias"]]
    elif check["indicator"]:
        # curl http://<test domain>/sample.dat from the Debian target: the Resolver's records of it
        findings = summary(
            replay("tester_dns_domains.resolver.ndjson", lines=_resolver_lines_for(check["indicator"]))
        )
        assert findings == {(expected, LINUX, "ACTOR")}
    else:
        # MaliciousIPCaller.Custom: curl to MALICIOUS_IP:8009, which the tester put on a custom list
        assert check["port"] == "8009" and check["logSource"] == "vpc-flowlogs"
        findings = summary(replay("tester_malicious_ip_caller.flowlogs-v5.log", intel=custom_intel()))
        assert findings == {(expected, RED, "ACTOR")}
