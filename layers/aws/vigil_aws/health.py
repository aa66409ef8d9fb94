"""Which instances' agents report now: the health lookup of one finding per indicator
(vigil.indicators). Reads the coverage rows (CoverageTable) that CoverageStore and
CoverageFunction write.

HEALTHY here = the last coverage evaluation stored ``covStatus = HEALTHY`` for a row still in the
inventory, and the row's last heartbeat is at most ``disconnected_after_s`` old (the evaluation
runs every 5 minutes: an agent stopped since then is not trusted to carry anything). Called by the
pipeline only for instances with an EC2 match a runtime finding already carries (rare), so a read
per call is affordable; answers are cached ``cache_s`` per instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final

from vigil.coverage import CoverageConfig
from vigil_aws.clients import client
from vigil_aws.coverage_eval import report

BATCH_GET_MAX: Final = 100


class CoverageHealth:
    def __init__(
        self,
        table: str,
        *,
        clock: Callable[[], float] = time.time,
        disconnected_after_s: float = CoverageConfig().disconnected_after_s,
        cache_s: float = 60.0,
    ) -> None:
        self.table = table
        self.clock = clock
        self.disconnected_after_s = disconnected_after_s
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, bool]] = {}

    def healthy(self, item: dict[str, Any], now: float) -> bool:
        if item.get("covStatus", {}).get("S") != "HEALTHY" or "covInactiveAt" in item:
            return False
        seen = report(item).last_heartbeat_at
        return seen is not None and now - seen <= self.disconnected_after_s

    def __call__(self, instances: Sequence[str]) -> Collection[str]:
        now = self.clock()
        wanted = [i for i in dict.fromkeys(instances) if i and not self._fresh(i, now)]
        for n in range(0, len(wanted), BATCH_GET_MAX):
            chunk = wanted[n : n + BATCH_GET_MAX]
            found: dict[str, dict[str, Any]] = {}
            request: dict[str, Any] = {self.table: {"Keys": [{"instanceId": {"S": i}} for i in chunk]}}
            for _ in range(5):
                out = client("dynamodb").batch_get_item(RequestItems=request)
                for item in out.get("Responses", {}).get(self.table, []):
                    found[item["instanceId"]["S"]] = item
                request = out.get("UnprocessedKeys") or {}
                if not request:
                    break
            for i in chunk:  # unprocessed after retries: not known HEALTHY (the EC2 type stays)
                self._cache[i] = (now, i in found and self.healthy(found[i], now))
        return {i for i in instances if self._cache.get(i, (0.0, False))[1]}

    def _fresh(self, instance: str, now: float) -> bool:
        hit = self._cache.get(instance)
        return hit is not None and now - hit[0] < self.cache_s
