"""`vigil replay`: in-process normalize + detect over agent NDJSON, findings as JSON lines.

GIVEN recorded agent NDJSON (plain, gzip, stdin, with bad lines), WHEN replayed, THEN every
printed finding is valid against botocore's GuardDuty Finding shape, bad lines are reported with
their line numbers and skipped, and the good lines around them are still processed.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import msgspec
import pytest
from guardduty_shape import validate
from typer.testing import CliRunner

from vigil import sample as s
from vigil import wire
from vigil.pipeline import Pipeline
from vigil_cli.main import app
from vigil_cli.replay import as_text_stream, replay

ROOT = Path(__file__).resolve().parents[2]
HOST = wire.Host(instance_id="i-0e0e1a4000000001a", account_id="123456789012", region="eu-west-1")
SOCK = wire.Stdio(
    type="socket", family="inet", protocol="tcp", remote=wire.Endpoint(ip="198.51.100.7", port=4444)
)


def _shell(seq: int) -> wire.ProcessExec:
    p = s.proc("/bin/bash", "-i", stdin=SOCK, stdout=SOCK, parent=s.proc("/usr/sbin/nginx", pid=900, uid=33))
    return wire.ProcessExec(time=s.T0 + seq, seq=seq, host=HOST if seq == 1 else None, process=p)


def _lines(*events: wire.WireEvent) -> list[bytes]:
    return [wire.encode_event(e) for e in events]


def run(args: list[str], stdin: bytes | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, args, input=stdin)


def test_replay_prints_schema_valid_findings_aggregated_per_id(tmp_path: Path) -> None:
    f = tmp_path / "batch.ndjson"
    f.write_bytes(b"\n".join(_lines(_shell(1), _shell(2), _shell(3))) + b"\n")
    res = run(["replay", str(f)])
    assert res.exit_code == 0, res.output
    docs = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [d["type"] for d in docs] == ["Execution:Runtime/ReverseShell"]
    assert docs[0]["service"]["count"] == 3 and docs[0]["region"] == "eu-west-1"
    assert validate(docs[0]) == []


def test_bad_lines_are_reported_by_number_and_neighbours_still_processed(tmp_path: Path) -> None:
    good = _lines(_shell(1), _shell(2))
    f = tmp_path / "bad.ndjson.gz"
    f.write_bytes(gzip.compress(good[0] + b"\n{oops\n" + good[1] + b"\n"))
    res = run(["replay", str(f)])
    assert res.exit_code == 0
    assert "line 2:" in res.stderr
    docs = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert docs[0]["service"]["count"] == 2


def test_stdin_prints_findings_as_they_fire() -> None:
    res = run(["replay", "-"], stdin=b"\n".join(_lines(_shell(1))) + b"\n")
    assert res.exit_code == 0
    assert json.loads(res.stdout.splitlines()[0])["type"] == "Execution:Runtime/ReverseShell"


def test_missing_file_is_a_clear_error() -> None:
    res = run(["replay", "/nonexistent/file.ndjson"])
    assert res.exit_code == 2 and "no such file" in res.stderr


def test_table_output_for_people(tmp_path: Path) -> None:
    f = tmp_path / "b.ndjson"
    f.write_bytes(b"\n".join(_lines(_shell(1))) + b"\n")
    res = run(["replay", str(f), "--table"])
    assert res.exit_code == 0 and "Execution:Runtime" in res.stdout and "High (8)" in res.stdout


RECORDED = (
    sorted((ROOT / "events" / "agent").glob("*.ndjson*")) if (ROOT / "events" / "agent").exists() else []
)


@pytest.mark.skipif(not RECORDED, reason="no recorded agent batches in events/agent yet")
def test_replay_over_the_recorded_events_prints_schema_valid_findings() -> None:
    types: set[str] = set()
    for path in RECORDED:
        res = run(["replay", str(path)])
        assert res.exit_code == 0, res.output
        for line in res.stdout.splitlines():
            if line.startswith("{"):
                doc = json.loads(line)
                assert validate(doc) == [], (path.name, doc["type"])
                types.add(doc["type"])
    assert {"Execution:Runtime/ReverseShell", "CryptoCurrency:Runtime/BitcoinTool.B!DNS"} <= types


SOURCES = Path(__file__).resolve().parents[2] / "events" / "sources"


@pytest.mark.parametrize(
    ("source", "file", "expected"),
    [
        ("flowlogs", "flowlogs_portscan.log", ["Recon:EC2/Portscan"]),
        ("resolver", "resolver_dns_exfiltration.ndjson", ["Trojan:EC2/DNSDataExfiltration"]),
    ],
)
def test_replay_source_prints_the_ec2_findings_of_a_log_file(
    source: str, file: str, expected: list[str]
) -> None:
    # GIVEN a recorded log of one source, WHEN `vigil replay --source` reads it
    result = CliRunner().invoke(app, ["replay", "--source", source, str(SOURCES / file)])
    # THEN it prints the EC2 findings, each valid for GuardDuty tooling, and a summary on stderr
    assert result.exit_code == 0, result.output
    docs = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert [d["type"] for d in docs] == expected
    assert all(validate(d) == [] for d in docs)


def test_replay_source_skips_a_bad_line_escaped_and_refuses_an_unknown_source(tmp_path: Path) -> None:
    f = tmp_path / "flows.log"
    good = (SOURCES / "flowlogs_portscan.log").read_text()
    f.write_text("not a flow \x1b[2J record\n" + good)
    result = CliRunner().invoke(app, ["replay", "--source", "flowlogs", str(f)])
    assert result.exit_code == 0
    assert "line 1:" in result.stderr and "\x1b" not in result.stderr
    assert "Recon:EC2/Portscan" in result.stdout
    bad = CliRunner().invoke(app, ["replay", "--source", "syslog", str(f)])
    assert bad.exit_code == 2 and "--source must be one of" in bad.stderr and "Traceback" not in bad.output


def test_an_attack_sequence_counts_each_signal_once_however_many_chunks_repeat_it(tmp_path: Path) -> None:
    # GIVEN a reverse shell, then its credential theft (a second tactic), then both again, in
    # separate replay chunks (--chunk 1: every line is its own batch)
    imds = s.proc(
        "/usr/bin/curl", "http://169.254.169.254/latest/meta-data/iam/security-credentials/r", pid=4001
    )

    def cred(seq: int) -> wire.ProcessExec:
        shell = _shell(1).process
        p = msgspec.structs.replace(
            imds, lineage=[msgspec.structs.replace(shell, lineage=[]), *shell.lineage]
        )
        return wire.ProcessExec(time=s.T0 + seq, seq=seq, host=None, process=p)

    data = b"\n".join(_lines(_shell(1), cred(2), _shell(3), cred(4), _shell(5))) + b"\n"
    errors: list[str] = []
    stats = replay(
        as_text_stream(data),
        Pipeline.default(account_id="123456789012", region="eu-west-1"),
        live=False,
        on_error=errors.append,
        chunk=1,
    )
    assert errors == []
    docs = {o.finding["type"]: o for o in stats.findings.values()}
    seq = docs["AttackSequence:EC2/CompromisedInstanceGroup"]
    # THEN the sequence's count is its number of signals (as stored), not one per repeating chunk
    signals = seq.finding["service"]["detection"]["sequence"]["signals"]
    assert seq.count == seq.finding["service"]["count"] == len(signals) == 2
    assert docs["Execution:Runtime/ReverseShell"].count == 3
