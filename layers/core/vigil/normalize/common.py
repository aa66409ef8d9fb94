"""What every normalizer shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from vigil import bounds


class Rejection(msgspec.Struct, frozen=True):
    """An input that could not become an event: where it was, why, and (a prefix of) what it was."""

    source: str  # agent|vpcflow|resolver|cloudtrail
    line: int  # 1-based position within the record; 0 = the record as a whole
    reason: str
    raw: bytes = b""


@dataclass(slots=True)
class Normalized:
    """One batch of source lines, normalized: events, rejections (bounded: the first
    ``LINE_ERRORS_LISTED`` are kept, ``rejected`` counts all) and lines skipped, by reason."""

    events: list[Any] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    rejected: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, out: Any) -> None:
        if isinstance(out, Rejection):
            self.rejected += 1
            if len(self.rejections) < bounds.LINE_ERRORS_LISTED:
                self.rejections.append(out)
        elif isinstance(out, str):
            self.skipped[out] = self.skipped.get(out, 0) + 1
        else:
            self.events.append(out)
