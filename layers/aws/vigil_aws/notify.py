"""Routing: a published finding -> one ``Vigil Finding Notification`` event with a destination-safe
body per enabled destination (vigil/render.py), on FindingsBus, where one rule per destination
sends its body to an EventBridge API destination (Slack, Jira, ServiceNow, Splunk HEC, webhook).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from vigil.render import DESTINATIONS, NOTIFICATION_DETAIL_TYPE, notification_detail
from vigil_aws.clients import client
from vigil_aws.publisher import SOURCE
from vigil_aws.settings import SettingsError, env_str

MAX_EVENT_BYTES: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class NotifySettings:
    bus_name: str
    destinations: tuple[str, ...]
    jira_project_key: str
    jira_issue_type: str
    splunk_index: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifySettings:
        e = os.environ if env is None else env
        fn = "NotifyFunction"
        names = tuple(n.strip() for n in e.get("NOTIFY_DESTINATIONS", "").split(",") if n.strip())
        unknown = sorted(set(names) - set(DESTINATIONS))
        if unknown:
            raise SettingsError(
                f"{fn}: NOTIFY_DESTINATIONS has unknown {unknown}; known: {', '.join(DESTINATIONS)}"
            )
        return cls(
            bus_name=env_str(e, "FINDINGS_BUS_NAME", fn),
            destinations=names,
            jira_project_key=env_str(e, "JIRA_PROJECT_KEY", fn, default="SEC"),
            jira_issue_type=env_str(e, "JIRA_ISSUE_TYPE", fn, default="Task"),
            splunk_index=e.get("SPLUNK_INDEX", "").strip(),
        )


class NotifyError(RuntimeError):
    """EventBridge refused the notification event (the async invocation is retried)."""


class Notifier:
    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def entry(self, finding: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        detail = notification_detail(
            finding,
            s.destinations,
            jira_project_key=s.jira_project_key,
            jira_issue_type=s.jira_issue_type,
            splunk_index=s.splunk_index,
        )
        body = json.dumps(detail, separators=(",", ":"))
        if len(body) > MAX_EVENT_BYTES - 4096:  # room for the envelope
            for name in ("splunk", "webhook"):  # the two that carry the whole finding
                if name in detail:
                    detail[name] = {k: v for k, v in detail[name].items() if k not in ("event", "finding")}
                    detail[name]["truncated"] = True
            body = json.dumps(detail, separators=(",", ":"))
        return {
            "EventBusName": s.bus_name,
            "Source": SOURCE,
            "DetailType": NOTIFICATION_DETAIL_TYPE,
            "Resources": [finding["arn"]] if finding.get("arn") else [],
            "Detail": body,
        }

    def notify(self, finding: dict[str, Any]) -> None:
        if not self.settings.destinations:
            return
        out = client("events").put_events(Entries=[self.entry(finding)])
        if out.get("FailedEntryCount"):
            e = out["Entries"][0]
            raise NotifyError(
                f"put_events rejected the notification of {finding.get('id')}: {e.get('ErrorCode')} {e.get('ErrorMessage')}"
            )
