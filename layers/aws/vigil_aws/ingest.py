"""One Kinesis record (an agent batch) through the core and into the stores.

Order matters for retries: findings first (idempotent by their seq condition), then state,
coverage and dead letters, and the ledger mark last, so a record that failed half-way is applied
again on retry and a record that completed is skipped whole.

Errors: AWS errors (throttling, an unavailable table) propagate, so the record is reported as a
batch item failure and retried. A failure of the pure core on this input is deterministic, so
retrying cannot help: the record goes to the dead-letter queue with the error as its reason and
counts as handled (poison never blocks the shard).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from vigil.normalize.common import Rejection
from vigil.pipeline import BatchResult, Pipeline
from vigil_aws.coverage import CoverageStore
from vigil_aws.dead_letters import DeadLetterQueue, Source
from vigil_aws.findings_store import FindingsStore
from vigil_aws.settings import IngestSettings
from vigil_aws.state_store import DynamoDBState, Ledger


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    events: int = 0
    findings_applied: int = 0
    findings_replayed: int = 0
    suppressed: int = 0
    rejected: int = 0
    heartbeats: int = 0
    state_writes: int = 0
    detection_errors: int = 0
    records_replayed: int = 0
    records_poison: int = 0
    identity_rejected: int = 0  # records rejected whole + events claiming another instance


class Ingestor:
    """Built once per container; ``begin`` once per invocation, ``process`` once per record."""

    def __init__(
        self, settings: IngestSettings, pipeline: Pipeline, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.clock = clock
        self.findings = FindingsStore(settings.findings_table, clock=clock)
        self.coverage = CoverageStore(settings.coverage_table, clock=clock)
        self.dead_letters = DeadLetterQueue(settings.dead_letter_queue_url)
        self.ledger = Ledger(settings.state_table, clock=clock)
        self.totals: Counter[str] = Counter()

    def begin(self, event_ids: Iterable[str]) -> None:
        """Start an invocation: one read tells which of its records were already applied."""
        self.ledger = Ledger(self.settings.state_table, clock=self.clock)
        self.ledger.load(event_ids)
        self.totals = Counter()

    def process(self, data: bytes, src: Source) -> RecordOutcome:
        if self.ledger.applied(src.event_id):
            return self._count(RecordOutcome(records_replayed=1))
        state = DynamoDBState(self.settings.state_table, clock=self.clock)
        poison = 0
        try:
            result = self.pipeline.process_record(data, state, partition_key=src.partition_key)
        except (ClientError, BotoCoreError):
            raise  # the state prefetch failed: retry the record
        except Exception as exc:  # deterministic: dead-letter the record, never retry it
            result = BatchResult(rejected=[Rejection("agent", 0, f"pipeline error: {exc!r}", data[:1024])])
            state = DynamoDBState(self.settings.state_table, clock=self.clock)
            poison = 1
        applied = self.findings.apply(result.occurrences, self.settings.retention_days)
        state_writes = state.write()
        heartbeats = self.coverage.record(result.heartbeats) if result.heartbeats else 0
        if result.identity_problem:  # noted on a row that exists; never creates one (docs/identity.md)
            sender = result.identity.instance_id if result.identity is not None else src.partition_key
            self.coverage.record_identity_problem(sender, result.identity_problem)
        if result.rejected:
            self.dead_letters.send(src, result.rejected)
        self.ledger.mark(src.event_id)
        return self._count(
            RecordOutcome(
                events=result.events,
                findings_applied=applied.applied,
                findings_replayed=applied.skipped,
                suppressed=sum(1 for o in result.occurrences if o.suppressed),
                rejected=len(result.rejected),
                heartbeats=heartbeats,
                state_writes=state_writes,
                detection_errors=len(result.detection_errors),
                records_poison=poison,
                identity_rejected=result.identity_rejected,
            )
        )

    def _count(self, outcome: RecordOutcome) -> RecordOutcome:
        for name in outcome.__slots__:
            self.totals[name] += getattr(outcome, name)
        return outcome
