"""One invocation's Kinesis records (agent batches) through the core and into the stores.

Two phases. ``process`` runs each record through the pure pipeline (decode -> normalize ->
detect) and keeps what it would change; ``flush`` then writes the whole invocation at once: one
write per finding and per state key, however many records touched them.

Exactly once without a write per record: every effect is idempotent by the identity of what it
carries (instance id + agent seq, ``vigil.applied``), never by an ordering watermark or a ledger.
Findings and counters keep the seq intervals they absorbed and write conditionally on their
revision; ``remember`` and the coverage row are idempotent by nature; dead letters are
deduplicated by content. So a record may be applied any number of times, partly or wholly, in any
order (a retry after a crash half-way, a bisected batch, an agent re-send under a new sequence
number, two batches of one host reordered) and each event still counts once.

Errors: a write that may succeed later (throttling, an unavailable table) fails, in ``flush``,
only the records that contributed to it (``FlushOutcome.failed``), and the mapping retries from
the lowest of them. A failure of the pure core on an input, or a value DynamoDB refuses for its
content, is deterministic: it goes to the dead-letter queue with its reason, and the record
counts as handled (poison never blocks the shard).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from vigil.events import AgentHealth
from vigil.normalize.common import Rejection
from vigil.pipeline import BatchResult, Pipeline
from vigil.sources import SourceConfig
from vigil_aws.coverage import CoverageStore
from vigil_aws.dead_letters import DeadLetterQueue, Source
from vigil_aws.filters import FilterStore, SuppressionRules
from vigil_aws.findings_store import Contribution, FindingsStore
from vigil_aws.instances import InstanceDetailsCache
from vigil_aws.settings import IngestSettings
from vigil_aws.state_store import DynamoDBState

log = logging.getLogger(__name__)
TRANSIENT = (ClientError, BotoCoreError, RuntimeError)


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    events: int = 0
    occurrences: int = 0
    suppressed: int = 0
    rejected: int = 0
    heartbeats: int = 0
    detection_errors: int = 0
    records_poison: int = 0
    identity_rejected: int = 0  # records rejected whole + events claiming another instance
    account_rejected: int = 0  # records whose signed account is not on the allow-list (vigil.accounts)
    instance_details_missing: int = 0  # findings stored without EC2's details (vigil_aws.instances)
    waived: int = 0  # EC2 matches a HEALTHY instance's runtime finding already carries (vigil.indicators)


@dataclass(slots=True)
class FlushOutcome:
    failed: list[str] = field(default_factory=list)  # Kinesis sequence numbers to retry
    errors: list[str] = field(default_factory=list)  # what failed, for the log


@dataclass(slots=True)
class _Pending:
    """What the records processed so far in this invocation will write."""

    contributions: list[Contribution] = field(default_factory=list)
    finding_sources: dict[str, list[Source]] = field(default_factory=lambda: defaultdict(list))
    heartbeats: list[AgentHealth] = field(default_factory=list)
    heartbeat_sources: list[Source] = field(default_factory=list)
    letters: list[tuple[Source, list[Rejection], str]] = field(default_factory=list)
    state_sources: list[Source] = field(default_factory=list)
    identity_problems: list[tuple[str, str, Source]] = field(default_factory=list)  # (instance, reason)


def record_identity(result: BatchResult, data: bytes, src: Source) -> str:
    """What a record carries, for its dead letters' deduplication: the agent seq intervals of its
    events when any decoded (a re-send is recompressed into other bytes, but carries the same
    seqs), else its bytes."""
    what = f"{src.partition_key}|{sorted(result.ranges.items())}".encode() if result.ranges else data
    return hashlib.sha256(what).hexdigest()


class Ingestor:
    """Built once per container; ``begin`` once per invocation, ``process`` once per record,
    ``flush`` once at the end of the invocation."""

    def __init__(
        self,
        settings: IngestSettings,
        pipeline: Pipeline,
        *,
        clock: Callable[[], float] = time.time,
        instances: InstanceDetailsCache | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.clock = clock
        self.instances = instances  # the pipeline's instance_details, for its counters and prefetch
        self.findings = FindingsStore(settings.findings_table, clock=clock)  # its cache spans invocations
        self.coverage = CoverageStore(settings.coverage_table, clock=clock)
        self.dead_letters = DeadLetterQueue(settings.dead_letter_queue_url)
        # ARCHIVE rules, in force within 5 s of a change (vigil_aws.filters, docs/filters.md)
        store = FilterStore(settings.filters_table) if settings.filters_table else None
        self.suppression = SuppressionRules(store, clock=clock)
        self.totals: Counter[str] = Counter()
        self.begin(read_rules=False)  # no AWS call at cold start: the first invocation reads them

    def begin(self, partition_keys: Iterable[str] = (), *, read_rules: bool = True) -> None:
        """Start an invocation (``partition_keys``: its records', so that instances needing EC2's
        details are described in one call; ``read_rules``: refresh the suppression rules)."""
        self.state = DynamoDBState(self.settings.state_table, clock=self.clock)
        self.pending = _Pending()
        self.totals = Counter()
        if self.instances is not None:
            self.instances.expect(partition_keys)
        if read_rules:
            self.pipeline.suppress = self.suppression.current() or None  # None: no rule, no cost
            for problem in self.suppression.problems:
                log.error("suppression rule problem: %s", problem)
            self.totals["suppression_rule_problems"] = len(self.suppression.problems)

    def process(self, data: bytes, src: Source, *, sources: SourceConfig | None = None) -> RecordOutcome:
        """Run one record through the core; raises only for what a retry may fix (a state read).

        ``sources``: the record came on the AWS-delivered sources stream (CloudWatch Logs
        subscriptions, EventBridge CloudTrail): read it with these log groups, not as an agent batch.
        The caller decides by the record's stream ARN, never by its content (docs/sources.md)."""
        poison = 0
        try:
            if sources is not None:
                result = self.pipeline.process_source_record(data, self.state, sources)
            else:
                result = self.pipeline.process_record(data, self.state, partition_key=src.partition_key)
        except (ClientError, BotoCoreError):
            raise  # the state prefetch failed: retry the record
        except Exception as exc:  # deterministic: dead-letter the record, never retry it
            log.exception("pipeline error on a record; dead-lettered")
            result = BatchResult(rejected=[Rejection("agent", 0, f"pipeline error: {exc!r}", data[:1024])])
            poison = 1
        self._keep(result, data, src)
        return self._count(
            RecordOutcome(
                events=result.events,
                occurrences=len(result.occurrences),
                suppressed=sum(1 for o in result.occurrences if o.suppressed),
                rejected=len(result.rejected),
                heartbeats=len(result.heartbeats),
                detection_errors=len(result.detection_errors),
                records_poison=poison,
                identity_rejected=result.identity_rejected,
                account_rejected=result.account_rejected,
                instance_details_missing=result.instance_details_missing,
                waived=result.waived,
            )
        )

    def _keep(self, result: BatchResult, data: bytes, src: Source) -> None:
        p = self.pending
        for occ in result.occurrences:
            p.contributions.append(Contribution(occ, result.ranges.get(occ.instance_id)))
            p.finding_sources[occ.id].append(src)
        if result.heartbeats:
            p.heartbeats.extend(result.heartbeats)
            p.heartbeat_sources.append(src)
        if result.rejected:
            p.letters.append((src, result.rejected, record_identity(result, data, src)))
        if self.state.changes():
            p.state_sources.append(src)
        if result.identity_problem:  # noted on a row that exists; never creates one (docs/identity.md)
            sender = result.identity.instance_id if result.identity is not None else src.partition_key
            p.identity_problems.append((sender, result.identity_problem, src))

    def flush(self) -> FlushOutcome:
        """Write what the invocation's records changed. Each store is tried even when another
        failed (each is idempotent), so only the records whose effects are missing are retried."""
        out = FlushOutcome()
        p = self.pending

        def failed(what: str, exc: Exception, sources: list[Source]) -> None:
            out.errors.append(f"{what}: {exc!r}")
            out.failed.extend(s.sequence_number for s in sources)

        try:
            applied = self.findings.apply(p.contributions, self.settings.retention_days)
        except TRANSIENT as exc:
            failed("findings", exc, [s for srcs in p.finding_sources.values() for s in srcs])
        else:
            self.totals["findings_applied"] += applied.applied
            self.totals["findings_replayed"] += applied.skipped
            self.totals["events_replayed"] += applied.events_replayed
            for fid, error in applied.failed.items():
                failed(f"finding {fid}", error, p.finding_sources[fid])
            for poison in applied.poison:
                for src in p.finding_sources[poison.finding_id]:
                    p.letters.append((src, [Rejection("store", 0, poison.reason)], poison.finding_id))
                self.totals["findings_poison"] += 1
        try:
            self.totals["state_writes"] += self.state.write()
        except TRANSIENT as exc:
            failed("state", exc, p.state_sources)
        if p.heartbeats:
            try:
                self.totals["coverage_writes"] += self.coverage.record(p.heartbeats)
            except TRANSIENT as exc:
                failed("coverage", exc, p.heartbeat_sources)
        for instance, reason, src in p.identity_problems:  # after the heartbeats, so the note stays
            try:
                self.coverage.record_identity_problem(instance, reason)
            except TRANSIENT as exc:
                failed("coverage identity note", exc, [src])
        for src, rejections, digest in p.letters:
            try:
                self.totals["dead_letters"] += self.dead_letters.send(src, rejections, digest)
            except TRANSIENT as exc:
                failed("dead letters", exc, [src])
        out.failed = sorted(set(out.failed), key=lambda s: (len(s), s))
        self.pending = _Pending()
        if self.instances is not None:
            self.totals.update(self.instances.take_counters())
        return out

    def _count(self, outcome: RecordOutcome) -> RecordOutcome:
        self.totals["records"] += 1
        for name in outcome.__slots__:
            self.totals[name] += getattr(outcome, name)
        return outcome
