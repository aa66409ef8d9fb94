"""Reads for `vigil usage`: the per-instance per-day usage items CoverageStore accumulates.

The usage items share CoverageTable with the coverage rows (key ``usage#<instance>#<day>``); a
Scan with a filter reads them (the CLI reads a period once; a fleet of 1,000 instances over 30
days is 30,000 small items, about 1 MB scanned).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from vigil_aws.coverage import USAGE_PREFIX


def first_day(days: int, today: dt.date) -> str:
    """The first UTC day of a period of ``days`` days ending today (inclusive)."""
    return (today - dt.timedelta(days=days - 1)).isoformat()


def usage_items(ddb: Any, table: str, since_day: str) -> Iterator[dict[str, Any]]:
    """Usage items from ``since_day`` (YYYY-MM-DD) on, as plain dicts the core sums."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(instanceId, :p) AND usageDay >= :since",
        "ExpressionAttributeValues": {":p": {"S": USAGE_PREFIX}, ":since": {"S": since_day}},
    }
    while True:
        page = ddb.scan(**kwargs)
        for item in page.get("Items", []):
            yield {
                "instanceId": item.get("usageOf", {}).get("S", ""),
                "day": item.get("usageDay", {}).get("S", ""),
                "vcpuSeconds": item.get("vcpuSeconds", {}).get("N", "0"),
                "heartbeats": item.get("heartbeats", {}).get("N", "0"),
                "vcpus": item.get("vcpus", {}).get("N", "0"),
                # the signed identity's account ("" for items written before multi-account)
                "accountId": item.get("accountId", {}).get("S", "").strip("-"),
            }
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
