"""What every normalizer shares."""

from __future__ import annotations

import msgspec


class Rejection(msgspec.Struct, frozen=True):
    """An input that could not become an event: where it was, why, and (a prefix of) what it was."""

    source: str  # agent|vpcflow|resolver|cloudtrail
    line: int  # 1-based position within the record; 0 = the record as a whole
    reason: str
    raw: bytes = b""
