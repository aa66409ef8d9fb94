"""Hostile strings reach the operator's terminal shown, never interpreted (issue 13, item 5).

GIVEN instance ids, titles, command lines, executable paths and bad input lines carrying ANSI CSI
and OSC sequences (clear screen, window title, OSC 8 hyperlinks), BEL, backspace, carriage
return, C1 controls, DEL, bidi overrides and rich markup (``[/]`` crashed the renderer), WHEN
``vigil replay`` (JSON and --table) and ``vigil findings list|show`` print them, THEN nothing
crashes, the output holds none of those characters, the text is visibly there, escaped, and JSON
output stays valid JSON that decodes back to the original string.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from handler_harness import REGION, Aws
from rich.console import Console
from typer.testing import CliRunner

from vigil import sample as s
from vigil import wire
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState
from vigil_cli import main, safe
from vigil_cli.main import app
from vigil_cli.stack import Target

OSC_TITLE = "\x1b]0;owned\x07"
OSC8_LINK = "\x1b]8;;https://attacker.example/\x1b\\click\x1b]8;;\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b31m"
INSTANCE = f"i-0{OSC_TITLE}[/]{C1_CSI}"
PARENT_EXE = f"/usr/sbin/ngi{CLEAR}nx[bold]\b\r\x7f\u202e"
ARG = f"-i{OSC8_LINK}"

# What must never reach a terminal from a payload: ESC, BEL, BS, CR, DEL, C1, bidi overrides.
FORBIDDEN = re.compile("[\x1b\x07\x08\r\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_inert(output: str, *shown: str) -> None:
    assert not FORBIDDEN.findall(output), FORBIDDEN.findall(output)
    for fragment in shown:
        assert fragment in output, (fragment, output)


SOCK = wire.Stdio(
    type="socket", family="inet", protocol="tcp", remote=wire.Endpoint(ip="198.51.100.7", port=4444)
)
HOST = wire.Host(instance_id=INSTANCE, account_id="123456789012", region=REGION)
# what `vigil replay` decodes must pass the wire's bounds (an instance id is EC2-shaped: docs/wire-format.md §4),
# so its hostile text rides in the fields that take free text: executable paths, arguments
REPLAY_INSTANCE = "i-0a1b2c3d4e5f60001"
REPLAY_HOST = wire.Host(instance_id=REPLAY_INSTANCE, account_id="123456789012", region=REGION)


def _hostile_shell(host: wire.Host = HOST) -> wire.ProcessExec:
    parent = s.proc(PARENT_EXE, pid=900, uid=33)
    p = s.proc("/bin/bash", ARG, stdin=SOCK, stdout=SOCK, parent=parent)
    return wire.ProcessExec(time=s.T0 + 1, seq=1, host=host, process=p)


def _file(tmp_path: Path, *lines: bytes) -> Path:
    f = tmp_path / "hostile.ndjson"
    f.write_bytes(b"\n".join(lines) + b"\n")
    return f


def run(args: list[str]) -> Any:
    return CliRunner().invoke(app, args)


# -- the module ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\x07b\x08c\rd\x7fe", "a\\x07b\\x08c\\rd\\x7fe"),
        ("\x9b1m\x85", "\\x9b1m\\x85"),
        ("line\nnext\ttab", "line\\nnext\\ttab"),
        ("\u202eevil\u2066", "\\u202eevil\\u2066"),
        ("\ud800", "\\ud800"),
        ("plain /usr/bin/python3 -c 'x[0]' C:\\path é 漢", "plain /usr/bin/python3 -c 'x[0]' C:\\path é 漢"),
    ],
)
def test_visible_shows_every_control_character_as_an_escape(raw: str, shown: str) -> None:
    assert safe.visible(raw) == shown


def test_markup_and_text_render_markup_and_emoji_codes_literally() -> None:
    buf = io.StringIO()
    con = safe.console(file=buf, force_terminal=True, color_system="truecolor", width=200)
    hostile = "[/] [link=https://attacker.example]x[/link] [bold]b :skull: \x1b]0;t\x07"
    con.print(f"[red]error:[/] {safe.markup(hostile)}")
    con.print(safe.text(hostile))
    lines = buf.getvalue().splitlines()
    for line in lines:  # the only escapes are rich's own SGR styles (ESC [ ... m), no OSC, no BEL
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
        assert_inert(plain, "[/] [link=https://attacker.example]x[/link] [bold]b :skull: \\x1b]0;t\\x07")
    assert "\x1b]" not in buf.getvalue() and "💀" not in buf.getvalue()


def test_findings_table_on_a_colour_terminal_carries_no_payload_escape() -> None:
    doc = _finding_docs()[0]
    buf = io.StringIO()
    Console(file=buf, force_terminal=True, color_system="truecolor", width=400).print(
        main.findings_table([doc], title=f"from {OSC_TITLE}")
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())  # rich's own styles (severity colour)
    assert_inert(plain, safe.visible(INSTANCE), "from \\x1b]0;owned\\x07")


# -- vigil replay ---------------------------------------------------------------------------------
def test_replay_json_lines_stay_valid_json_with_control_characters_escaped(tmp_path: Path) -> None:
    res = run(["replay", str(_file(tmp_path, wire.encode_event(_hostile_shell(REPLAY_HOST))))])
    assert res.exit_code == 0, res.output
    assert_inert(res.stdout)
    (doc,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert doc["resource"]["instanceDetails"]["instanceId"] == REPLAY_INSTANCE
    assert doc["service"]["runtimeDetails"]["process"]["lineage"][0]["executablePath"] == PARENT_EXE


def test_replay_table_shows_hostile_fields_escaped(tmp_path: Path) -> None:
    res = run(["replay", str(_file(tmp_path, wire.encode_event(_hostile_shell(REPLAY_HOST)))), "--table"])
    assert res.exit_code == 0, res.output
    assert_inert(res.stdout, "Execution:Runtime/ReverseShell", REPLAY_INSTANCE)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (b'{"kind":"[/]"}', "'[/]'"),
        (
            b'{"kind":"[bold]x[/bold][link=https://attacker.example]y"}',
            "[bold]x[/bold][link=https://attacker.example]y",
        ),
        (b'{"kind":"\\u001b]0;owned\\u0007\\u009b2J"}', "\\x1b]0;owned\\x07\\x9b2J"),
        (b'{"kind":"process_exec","time":"[/]\\u001b[2J"}', "line 1:"),
        (b"\x1b]0;owned\x07[/]not json", "line 1:"),
    ],
)
def test_a_bad_line_with_markup_or_escapes_is_reported_escaped_and_neighbours_kept(
    tmp_path: Path, bad: bytes, shown: str
) -> None:
    good = wire.encode_event(_hostile_shell(REPLAY_HOST))
    res = run(["replay", str(_file(tmp_path, bad, good))])
    assert res.exit_code == 0, res.output
    assert_inert(res.stderr, "line 1:", shown)
    assert "1 findings, 1 bad lines skipped" in res.stderr
    assert json.loads(res.stdout)["resource"]["instanceDetails"]["instanceId"] == REPLAY_INSTANCE


def test_a_missing_file_with_escapes_in_its_name_is_reported_escaped() -> None:
    res = run(["replay", f"/nonexistent/{OSC_TITLE}[/].ndjson"])
    assert res.exit_code == 2
    assert_inert(res.stderr, "\\x1b]0;owned\\x07[/].ndjson: no such file")


# -- vigil findings list|show (stored findings, on moto) -------------------------------------------
def _finding_docs() -> list[dict[str, Any]]:
    from vigil.normalize.agent import normalize_batch

    events, rejected = normalize_batch([_hostile_shell()])
    assert rejected == []
    result = Pipeline.default().detect(events, InMemoryState())
    assert result.occurrences, "the hostile reverse shell must still be detected"
    return [o.finding for o in result.occurrences]


@pytest.fixture
def stored(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> str:
    """The hostile finding in FindingsTable, as ingest's first aggregation writes it."""
    from vigil.normalize.agent import normalize_batch
    from vigil_aws.findings_store import new_item, now_iso

    events, _ = normalize_batch([_hostile_shell()])
    (occ,) = Pipeline.default().detect(events, InMemoryState()).occurrences
    item = new_item(occ, now_iso(), int(time.time()) + 86400)
    aws.client("dynamodb").put_item(TableName=aws.findings_table, Item=item)
    monkeypatch.setattr(
        main, "resolve", lambda *a: Target(REGION, None, {"FindingsTableName": aws.findings_table})
    )
    return occ.id


def test_findings_list_table_shows_hostile_fields_escaped(stored: str) -> None:
    res = run(["findings", "list"])
    assert res.exit_code == 0, res.output
    # and the whole finding id, which `vigil findings show` takes
    assert_inert(res.stdout, stored, "Execution:Runtime/ReverseShell", safe.visible(INSTANCE))


def test_findings_list_by_hostile_instance_and_json_round_trip(stored: str) -> None:
    res = run(["findings", "list", "--instance", INSTANCE, "--json"])
    assert res.exit_code == 0, res.output
    assert_inert(res.stdout)
    (doc,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert (doc["id"], doc["resource"]["instanceDetails"]["instanceId"]) == (stored, INSTANCE)


def test_findings_show_prints_valid_json_with_control_characters_escaped(stored: str) -> None:
    res = run(["findings", "show", stored])
    assert res.exit_code == 0, res.output
    assert_inert(res.stdout)
    doc = json.loads(res.stdout)
    assert doc["service"]["runtimeDetails"]["process"]["lineage"][0]["executablePath"] == PARENT_EXE


def test_findings_show_of_an_unknown_hostile_id_is_an_escaped_error(stored: str) -> None:
    res = run(["findings", "show", f"{OSC_TITLE}[/]"])
    assert res.exit_code == 1
    assert_inert(res.stderr, "no finding \\x1b]0;owned\\x07[/] in")
