"""Which findings reach the bus, and when (GuardDuty's publishing rules).

- a new finding is published at once (stream path);
- an update is published once the finding was last published at least one publishing period ago
  (FIFTEEN_MINUTES | ONE_HOUR | SIX_HOURS): at once by the stream path if the period has already
  passed, else by the scheduled sweep, the first time it runs after the period has passed;
- suppressed findings (archived by a rule) are never published; a finding a person archived is
  still published when it recurs, as GuardDuty does; archive, unarchive and feedback are not
  finding updates (no event); TTL removals are not events;
- the table's own bookkeeping (``lastPublishedAt``, ``publishedUpdatedAt``) is not an update.

Both paths go through :meth:`Publication.publish`: a conditional write of ``lastPublishedAt`` and
``publishedUpdatedAt`` claims the publication of one version of the finding before
``put_events``, so the stream path, the sweep and concurrent batches never publish the same
version twice; if ``put_events`` fails the claim is released and the error propagates, so the
record is retried (stream) or the next sweep picks the finding up again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from vigil_aws.findings_store import FindingsStore, document, iso_before, now_iso, plain, publishable
from vigil_aws.publisher import FindingsPublisher
from vigil_aws.settings import PublishSettings

Outcome = Literal["published_new", "published_update", "not_due", "archived", "ignored"]


@dataclass
class Sweep:
    """What one sweep did: outcomes by kind, and the findings whose publication failed."""

    outcomes: Counter[Outcome] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)  # finding id -> error


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
        if not publishable(new):
            return "archived"
        old = plain(old_image) if old_image else None
        if old is not None and old.get("updatedAt") == new.get("updatedAt"):
            # not a finding update: our own lastPublishedAt mark, an archive, an unarchive, feedback
            return "ignored"
        return self.publish(new)

    def sweep(self) -> Sweep:
        """Publish every ACTIVE finding whose latest update is unpublished and due (the updates
        the stream path held back because they arrived inside the period). A failure is
        recorded and the sweep goes on; the claim was released, so the next sweep retries it."""
        result = Sweep()
        for item in self.store.unpublished_updates(iso_before(self.settings.frequency_s, self.clock)):
            try:
                result.outcomes[self.publish(item)] += 1
            except Exception as exc:  # reported in result.failed, never swallowed
                result.failed[item["id"]] = f"{type(exc).__name__}: {exc}"
        return result

    def publish(self, item: dict[str, Any]) -> Outcome:
        """Claim and publish this version of a finding item (plain values) if it is due."""
        if not publishable(item):
            return "archived"
        now = now_iso(self.clock)
        if not self.store.claim_publication(
            item["id"], now, iso_before(self.settings.frequency_s, self.clock), item["updatedAt"]
        ):
            return "not_due"  # not due, already published by the other path, or superseded
        try:
            self.publisher.publish(document(item))
        except Exception:
            self.store.release_claim(item["id"], now, item)
            raise
        return "published_update" if item.get("lastPublishedAt") else "published_new"
