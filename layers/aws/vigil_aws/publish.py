"""Which findings-table changes reach the bus, and when (GuardDuty's publishing rules).

- a new finding is published at once;
- an update is published only if the finding was last published at least one publishing period
  ago (FIFTEEN_MINUTES | ONE_HOUR | SIX_HOURS);
- archived (suppressed) findings are never published; TTL removals are not events;
- the table's own bookkeeping (``lastPublishedAt``) is not an update.

A conditional write of ``lastPublishedAt`` claims each publication before ``put_events``, so two
batches that carry the same finding never both publish it; if ``put_events`` fails the claim is
released and the error propagates, so the record is retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from vigil_aws.findings_store import ARCHIVED, FindingsStore, document, iso_before, now_iso, plain
from vigil_aws.publisher import FindingsPublisher
from vigil_aws.settings import PublishSettings

Outcome = Literal["published_new", "published_update", "not_due", "archived", "ignored"]


class Publication:
    def __init__(self, settings: PublishSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.store = FindingsStore(settings.findings_table, clock=clock)
        self.publisher = FindingsPublisher(settings.bus_name)

    def handle(
        self, event_name: str, old_image: dict[str, Any] | None, new_image: dict[str, Any] | None
    ) -> Outcome:
        """One stream record (images as DynamoDB AttributeValue maps)."""
        if event_name not in ("INSERT", "MODIFY") or not new_image:
            return "ignored"
        new = plain(new_image)
        if "finding" not in new:
            return "ignored"  # not a finding item (nothing to publish; never retry it)
        if new.get("status") == ARCHIVED:
            return "archived"
        old = plain(old_image) if old_image else None
        if (
            old is not None
            and old.get("updatedAt") == new.get("updatedAt")
            and old.get("status") == new.get("status")
        ):
            return "ignored"  # not a finding update (e.g. our own lastPublishedAt mark)
        previous = new.get("lastPublishedAt")
        now = now_iso(self.clock)
        if not self.store.claim_publication(
            new["id"], now, iso_before(self.settings.frequency_s, self.clock)
        ):
            return "not_due"
        try:
            self.publisher.publish(document(new))
        except Exception:
            self.store.release_claim(new["id"], now, previous)
            raise
        return "published_update" if previous else "published_new"
