"""The EventBridge side of publishing: one finding -> one event on FindingsBus."""

from __future__ import annotations

import json
from typing import Any, Final

from vigil_aws.clients import client

SOURCE: Final = "vigil"
DETAIL_TYPE: Final = "Vigil Finding"


class PublishError(RuntimeError):
    """EventBridge accepted the call but rejected the entry (retried by the stream mapping)."""


class FindingsPublisher:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def entry(self, finding: dict[str, Any]) -> dict[str, Any]:
        return {
            "EventBusName": self.bus_name,
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Resources": [finding["arn"]] if finding.get("arn") else [],
            "Detail": json.dumps(finding, separators=(",", ":")),
        }

    def publish(self, finding: dict[str, Any]) -> None:
        out = client("events").put_events(Entries=[self.entry(finding)])
        if out.get("FailedEntryCount"):
            failed = out["Entries"][0]
            raise PublishError(
                f"put_events rejected finding {finding.get('id')}: {failed.get('ErrorCode')} {failed.get('ErrorMessage')}"
            )
