"""docs/wire-format.md stays true: every JSON example decodes with the real decoder, and every
wire kind has an example."""

from __future__ import annotations

import re
from pathlib import Path

from vigil import bounds, wire
from vigil.normalize.agent import normalize_batch

DOC = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"


def test_every_kind_has_an_example_that_decodes_and_normalizes() -> None:
    text = DOC.read_text()
    blocks = re.findall(r"### `(\w+)`.*?```json\n(.*?)\n```", text, flags=re.S)
    assert {k for k, _ in blocks} == set(wire.KINDS)
    payload = b"\n".join(b.encode().replace(b"\n", b"") for _, b in blocks)
    decoded, errors = wire.decode_batch(payload)
    assert errors == []
    assert [type(e).__struct_config__.tag for e in decoded] == [k for k, _ in blocks]
    events, rejected = normalize_batch(decoded)
    assert rejected == [] and len(events) == len(blocks)


def test_the_bounds_section_quotes_the_bounds_the_code_enforces() -> None:
    # GIVEN the "Bounds" section's constants, as `NAME` | value rows and `NAME` = value cells
    section = DOC.read_text().split("## 4. Bounds", 1)[1]
    quoted = dict(re.findall(r"\| `([A-Z_]+)` \| (\d+) \|", section))
    quoted |= dict(re.findall(r"`([A-Z_]+)` = (\d+)", section))
    # THEN each is the value in vigil.bounds, and every size bound of a record or a string is quoted
    assert {k: int(v) for k, v in quoted.items()} == {k: getattr(bounds, k) for k in quoted}
    must = {
        "RAW_BATCH_BYTES",
        "MAX_LINES",
        "LINE_ERRORS_LISTED",
        "PATH_CHARS",
        "CMD_LINE_CHARS",
        "LINEAGE_MAX",
    }
    assert must <= quoted.keys()


def test_the_v2_example_decodes_with_its_refs_resolved() -> None:
    section = DOC.read_text().split("### Version 2", 1)[1]
    example = re.search(r"```ndjson\n(.*?)\n```", section, flags=re.S)
    assert example is not None
    d = wire.decode_record(example.group(1).encode())
    assert d.errors == [] and [type(e).__struct_config__.tag for e in d.events] == [
        "process_exec",
        "net_connect",
        "process_exit",
    ]
    events, rejected = normalize_batch(d.events)
    assert rejected == [] and [p.name for p in events[0].process.lineage] == ["bash", "sshd"]  # type: ignore[attr-defined]
    assert all(e.process is d.events[0].process for e in d.events)  # type: ignore[union-attr]
