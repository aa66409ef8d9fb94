"""The State port: windows, counters and baselines for stateful detections (DESIGN §3.3).

The engine asks every stateful detection which keys an event needs (``state_keys``), loads them
all at once (one BatchGetItem in Lambda), runs the detections, then the adapter writes each
changed key once per batch. ``InMemoryState`` is the pure implementation used by `vigil replay`,
tests and benchmarks; ``vigil_aws.state.DynamoDBState`` is the Lambda one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

Op = Literal["remember", "add"]


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    op: Op
    value: int  # 1 for remember, the increment for add
    ttl_s: int


class State(Protocol):
    def load(self, keys: Iterable[str]) -> None:
        """Prefetch ``keys`` (one round trip); unknown keys read as unseen / zero."""

    def begin_record(self, ranges: dict[str, tuple[int, int]]) -> None:
        """The next events come from a record carrying these agent seq intervals (instance id ->
        (lo, hi)): a store that keeps what it applied by identity skips a record it already has."""

    def seen(self, key: str) -> bool:
        """True if ``key`` was remembered before (in an earlier batch or earlier in this one)."""

    def remember(self, key: str, ttl_s: int) -> None: ...

    def count(self, key: str) -> int: ...

    def add(self, key: str, n: int, ttl_s: int) -> None: ...

    def changes(self) -> list[Change]:
        """What this batch changed, one entry per key: the adapter's write set."""


class InMemoryState:
    """A State that lives in a dict. ``commit()`` folds the batch's changes into the base."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._counts: dict[str, int] = {}
        self._pending: dict[str, Change] = {}

    def load(self, keys: Iterable[str]) -> None:
        return None

    def begin_record(self, ranges: dict[str, tuple[int, int]]) -> None:
        return None

    def seen(self, key: str) -> bool:
        return key in self._seen

    def remember(self, key: str, ttl_s: int) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self._pending[key] = Change(key, "remember", 1, ttl_s)

    def count(self, key: str) -> int:
        return self._counts.get(key, 0)

    def add(self, key: str, n: int, ttl_s: int) -> None:
        self._counts[key] = self._counts.get(key, 0) + n
        prev = self._pending.get(key)
        self._pending[key] = Change(key, "add", n + (prev.value if prev else 0), ttl_s)

    def changes(self) -> list[Change]:
        return list(self._pending.values())

    def commit(self) -> None:
        self._pending.clear()
