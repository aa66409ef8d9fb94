"""docs/wire-format.md stays true: every JSON example decodes with the real decoder, and every
wire kind has an example."""

from __future__ import annotations

import re
from pathlib import Path

from vigil import wire
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
