"""What was already applied, by identity: sets of agent ``seq`` intervals (DESIGN §6, exactly-once).

An agent event is identified by (instance id, seq): seq is monotonic per instance across agent
restarts, and one Kinesis record (one agent batch) covers the seq interval ``[lo, hi]`` of its
events. Every item the ingest changes non-idempotently (a finding's count, a detection counter)
keeps the intervals of the records it has absorbed, so a record delivered again, by Kinesis (a
retry, a bisected batch) or by the agent (a re-send under a new sequence number), is recognised by
what it carries, never by its position: batches that arrive out of order, or a batch split in
halves with the second half first, all count, each once.

The set is kept small: adjacent intervals coalesce (an agent's consecutive batches are adjacent),
and beyond ``MAX_INTERVALS`` the two intervals with the smallest gap between them are merged. That
bound is the one approximation: a record that arrives after more than ``MAX_INTERVALS`` later,
non-adjacent records of the same item, and that falls into a merged gap, is taken as applied. It
never counts anything twice.

Encoding (a DynamoDB string): ``lo-hi,lo-hi`` with both bounds in base 36, sorted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

MAX_INTERVALS: Final = 32
MAX_ENCODED_CHARS: Final = 2048  # what a stored set may be; a longer one is corrupt, not trusted


class AppliedSetError(ValueError):
    """A stored set that does not parse: the item was written by something else."""


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(digits[r])
    return "".join(reversed(out))


class SeqSet:
    """A sorted set of disjoint, non-adjacent closed intervals of non-negative ints."""

    __slots__ = ("_iv",)

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        self._iv: list[tuple[int, int]] = []
        for lo, hi in intervals:
            self.add(lo, hi)

    @classmethod
    def parse(cls, text: str) -> SeqSet:
        if len(text) > MAX_ENCODED_CHARS:
            raise AppliedSetError(f"applied set of {len(text)} chars (max {MAX_ENCODED_CHARS})")
        out = cls()
        if not text:
            return out
        try:
            for part in text.split(","):
                lo_s, hi_s = part.split("-")
                lo, hi = int(lo_s, 36), int(hi_s, 36)
                if lo > hi:
                    raise AppliedSetError(f"interval {part!r} runs backwards")
                out.add(lo, hi)
        except ValueError as exc:
            raise AppliedSetError(f"applied set {text[:80]!r} does not parse: {exc}") from None
        return out

    def dump(self) -> str:
        return ",".join(f"{_b36(lo)}-{_b36(hi)}" for lo, hi in self._iv)

    @property
    def intervals(self) -> tuple[tuple[int, int], ...]:
        return tuple(self._iv)

    def __len__(self) -> int:
        return len(self._iv)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeqSet) and self._iv == other._iv

    def __repr__(self) -> str:
        return f"SeqSet({self._iv!r})"

    def copy(self) -> SeqSet:
        out = SeqSet()
        out._iv = list(self._iv)
        return out

    def contains(self, seq: int) -> bool:
        return any(lo <= seq <= hi for lo, hi in self._iv)

    def intersects(self, lo: int, hi: int) -> bool:
        """True if any seq of ``[lo, hi]`` is in the set."""
        return any(a <= hi and lo <= b for a, b in self._iv)

    def covers(self, lo: int, hi: int) -> bool:
        """True if every seq of ``[lo, hi]`` is in the set."""
        return any(a <= lo and hi <= b for a, b in self._iv)

    def add(self, lo: int, hi: int) -> None:
        if lo < 0 or hi < lo:
            raise ValueError(f"bad interval [{lo}, {hi}]")
        merged: list[tuple[int, int]] = []
        placed = False
        for a, b in self._iv:
            if b + 1 < lo:
                merged.append((a, b))
            elif hi + 1 < a:
                if not placed:
                    merged.append((lo, hi))
                    placed = True
                merged.append((a, b))
            else:  # overlapping or adjacent: absorb
                lo, hi = min(lo, a), max(hi, b)
        if not placed:
            merged.append((lo, hi))
            merged.sort()
        self._iv = merged
        self._bound()

    def _bound(self) -> None:
        while len(self._iv) > MAX_INTERVALS:
            gaps = [(self._iv[i + 1][0] - self._iv[i][1], i) for i in range(len(self._iv) - 1)]
            _, i = min(gaps)
            self._iv[i : i + 2] = [(self._iv[i][0], self._iv[i + 1][1])]
