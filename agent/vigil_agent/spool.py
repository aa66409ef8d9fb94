"""A bounded on-disk FIFO of batches for when Kinesis is unreachable.

One file per batch, named ``<batch id>-<event count>.gz`` (the id is a zero-padded nanosecond
time, so names sort in submission order, across agent restarts too). Writes are atomic (tmp +
rename). When a new batch does not fit, the *oldest* batches are deleted and their events counted
as evicted: the agent loses the least recent data, and says how much.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Batch:
    id: int  # monotonic, nanoseconds
    count: int  # events in the batch
    payload: bytes  # gzip NDJSON (one Kinesis record)
    first_seq: int = 0
    last_seq: int = 0

    @property
    def name(self) -> str:
        return f"{self.id:020d}-{self.count}.gz"


class Spool:
    def __init__(self, directory: str, max_bytes: int) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self.lock = threading.RLock()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".tmp"):
                os.unlink(os.path.join(directory, name))
        self.files: list[tuple[str, int, int]] = []  # (name, size, count), oldest first
        for name in sorted(os.listdir(directory)):
            count = _count(name)
            if count is not None:
                self.files.append((name, os.path.getsize(os.path.join(directory, name)), count))
        self.bytes = sum(f[1] for f in self.files)
        self.evicted_events = 0
        self.evicted_batches = 0
        self.spooled_events = 0

    def __len__(self) -> int:
        return len(self.files)

    def pending_events(self) -> int:
        return sum(f[2] for f in self.files)

    def append(self, batch: Batch) -> int:
        """Store a batch; returns the number of events evicted (oldest first) to make room."""
        size = len(batch.payload)
        evicted = 0
        with self.lock:
            if size > self.max_bytes:  # cannot ever fit: it is the loss itself
                self.evicted_events += batch.count
                self.evicted_batches += 1
                return batch.count
            while self.files and self.bytes + size > self.max_bytes:
                name, fsize, count = self.files.pop(0)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.dir, name))
                self.bytes -= fsize
                evicted += count
                self.evicted_batches += 1
            tmp = os.path.join(self.dir, batch.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(batch.payload)
            os.replace(tmp, os.path.join(self.dir, batch.name))
            self.files.append((batch.name, size, batch.count))
            self.files.sort()
            self.bytes += size
            self.evicted_events += evicted
            self.spooled_events += batch.count
        return evicted

    def head(self) -> Batch | None:
        with self.lock:
            while self.files:
                name, _size, count = self.files[0]
                try:
                    with open(os.path.join(self.dir, name), "rb") as f:
                        payload = f.read()
                except FileNotFoundError:
                    self.files.pop(0)
                    continue
                return Batch(int(name.split("-", 1)[0]), count, payload)
            return None

    def pop(self, batch: Batch) -> None:
        with self.lock:
            if self.files and self.files[0][0] == batch.name:
                name, size, _ = self.files.pop(0)
                self.bytes -= size
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.dir, name))


def _count(name: str) -> int | None:
    if not name.endswith(".gz"):
        return None
    try:
        ident, count = name[:-3].split("-", 1)
        int(ident)
        return int(count)
    except ValueError:
        return None
