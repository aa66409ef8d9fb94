"""Self-limits: the agent watches its own CPU and memory and sheds load in a fixed order rather
than being killed by its cgroup. Everything shed is counted (heartbeat: counters.shed, dropped).

Shedding order (first to go first):
  1. file   - file_write/rename/unlink/link/open_sensitive (the noisiest class on busy hosts)
  2. dns    - dns_query events
  3. net    - net_connect/net_accept/unix_connect
  4. enrich - per-exec /proc enrichment (fds 0/1/2, environment, exe hashing)
Never shed: process_exec, memfd_exec, ptrace, process_vm_write, module_load, mount,
userfaultfd, setuid (rare, and the ones detections need most).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ORDER: tuple[str, ...] = ("file", "dns", "net", "enrich")


@dataclass
class Limiter:
    cpu_percent: float  # of one core
    rss_mb: float
    level: int = 0  # how many classes of ORDER are shed
    calm_windows: int = 0
    calm_needed: int = 3
    history: list[tuple[float, float, int]] = field(default_factory=list)

    def update(self, cpu: float, rss_mb: float) -> bool:
        """One measurement window; returns True when the level changed."""
        before = self.level
        if cpu > self.cpu_percent or rss_mb > self.rss_mb:
            self.calm_windows = 0
            self.level = min(self.level + 1, len(ORDER))
        elif cpu < self.cpu_percent * 0.5 and rss_mb < self.rss_mb * 0.8:
            self.calm_windows += 1
            if self.calm_windows >= self.calm_needed and self.level:
                self.level -= 1
                self.calm_windows = 0
        else:
            self.calm_windows = 0
        self.history = [*self.history[-19:], (cpu, rss_mb, self.level)]
        return self.level != before

    def sheds(self, cls: str) -> bool:
        return cls in ORDER[: self.level]

    @property
    def degraded(self) -> list[str]:
        return list(ORDER[: self.level])

    def memory_pressure(self, rss_mb: float) -> bool:
        return rss_mb > self.rss_mb


class CpuMeter:
    """CPU % of one core used by this process (all threads) between two reads of /proc/self/stat."""

    def __init__(self, stat_path: str = "/proc/self/stat") -> None:
        import os
        import time

        self._os, self._time = os, time
        self.path = stat_path
        self.tck = os.sysconf("SC_CLK_TCK")
        self.last = (time.monotonic(), self._ticks())
        try:  # the first reading covers the whole life of the process, start-up included
            with open(self.path) as f:
                start = int(f.read().rsplit(")", 1)[1].split()[19]) / self.tck
            with open("/proc/uptime") as f:
                age = float(f.read().split()[0]) - start
            if age > 0:
                self.last = (time.monotonic() - age, 0)
        except (OSError, ValueError, IndexError):
            pass

    def _ticks(self) -> int:
        with open(self.path) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])  # utime + stime

    def read(self) -> float:
        now, ticks = self._time.monotonic(), self._ticks()
        t0, k0 = self.last
        self.last = (now, ticks)
        dt = now - t0
        return 0.0 if dt <= 0 else 100.0 * (ticks - k0) / self.tck / dt


def rss_bytes() -> int:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
