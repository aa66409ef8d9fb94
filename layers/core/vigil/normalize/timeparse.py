"""ISO-8601 UTC timestamps of AWS logs -> epoch ns, within the ingest's time window (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from vigil import bounds


def iso_to_ns(value: str) -> int:
    """``2021-02-04T17:51:55Z`` (fractions and offsets allowed) -> epoch ns; ValueError otherwise."""
    if not 10 <= len(value) <= 40:
        raise ValueError(f"{value[:40]!r} is not an ISO-8601 timestamp")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ns = int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    if not bounds.TIME_MIN_NS <= ns <= bounds.TIME_MAX_NS:
        raise ValueError(f"{value[:40]!r} is outside the accepted time window (2000-2100)")
    return ns
