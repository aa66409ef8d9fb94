"""GuardDuty's published test domains raise the types the official tester expects.

The amazon-guardduty-tester's runtime threat-intel checks (lib/common/testResources/
definitions.json) have curl query one test domain per finding type and expect that type.
GIVEN the built-in intel, WHEN a process queries each test domain, THEN exactly the expected type
fires (and the C&C test domain's other sub-domains still raise C&CActivity.B!DNS).
"""

from __future__ import annotations

import pytest

from vigil import sample as s
from vigil.engine import Engine
from vigil.intel.builtin import builtin_intel
from vigil.registry import all_detections
from vigil.state import InMemoryState

TESTER_CHECKS = {
    "c2.guarddutyc2activityb.com": "Backdoor:Runtime/C&CActivity.B!DNS",
    "crypto.guarddutyc2activityb.com": "CryptoCurrency:Runtime/BitcoinTool.B!DNS",
    "abused-rep.guarddutyc2activityb.com": "Impact:Runtime/AbusedDomainRequest.Reputation",
    "crypto-rep.guarddutyc2activityb.com": "Impact:Runtime/BitcoinDomainRequest.Reputation",
    "malicious-rep.guarddutyc2activityb.com": "Impact:Runtime/MaliciousDomainRequest.Reputation",
    "suspicious-rep.guarddutyc2activityb.com": "Impact:Runtime/SuspiciousDomainRequest.Reputation",
    "guarddutyblackholeactivity.com": "Trojan:Runtime/BlackholeTraffic!DNS",
    "guarddutydgaactivity.com": "Trojan:Runtime/DGADomainRequest.C!DNS",
    "guarddutydrivebyactivity.com": "Trojan:Runtime/DriveBySourceTraffic!DNS",
    "guarddutydroppointactivity.com": "Trojan:Runtime/DropPoint!DNS",
    "guarddutyphishingactivity.com": "Trojan:Runtime/PhishingDomainRequest!DNS",
}


def _fired(hostname: str) -> set[str]:
    engine = Engine(all_detections(), intel=builtin_intel())
    event = s.dns(hostname, process=s.proc("/usr/bin/curl", "-s", hostname))
    run = engine.run([event], InMemoryState())
    assert run.errors == []
    return {m.detection.meta.type for m in run.matches}


@pytest.mark.parametrize(("domain", "expected"), sorted(TESTER_CHECKS.items()))
def test_each_tester_domain_raises_exactly_its_type(domain: str, expected: str) -> None:
    assert _fired(domain) == {expected}


def test_there_are_eleven_checks_one_per_type() -> None:
    assert len(TESTER_CHECKS) == 11 and len(set(TESTER_CHECKS.values())) == 11


def test_another_subdomain_of_the_c2_test_domain_is_still_c2() -> None:
    assert _fired("www.guarddutyc2activityb.com") == {"Backdoor:Runtime/C&CActivity.B!DNS"}


def test_a_lookalike_of_a_test_domain_raises_nothing_from_the_test_entries() -> None:
    assert not _fired("guarddutyphishingactivity.com.example.net") & set(TESTER_CHECKS.values())
