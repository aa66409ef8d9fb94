"""The ingest path as one pure function: record bytes -> decode -> normalize -> detect -> occurrences.

Used unchanged by IngestFunction (Lambda), `vigil replay` (no AWS) and `make bench`. No I/O: the
caller passes the State and gets back what to store (occurrences), what to dead-letter
(rejections) and what to count.

With an identity verifier (IngestFunction), a record speaks only for the instance whose signed
identity document its batch header carries (``vigil.identity``): the document must verify, name
the Kinesis partition key, and every host block in the record must name the same instance (and
account and region, when they say). The device of every event is then built from the verified
document, not from what the agent wrote. Without one (`vigil replay`, `make bench`) hosts are
taken as written and findings say ``identityVerified: false``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from vigil import wire
from vigil.accounts import AccountAllowList
from vigil.detection import Context, Detection
from vigil.engine import DetectionError, Engine
from vigil.events import AgentHealth, Event
from vigil.findings import DEFAULT_DETECTOR_ID, Occurrence, occurrences
from vigil.identity import IdentityRejected, IdentityVerifier, VerifiedIdentity
from vigil.indicators import HealthLookup, note_carried, waive
from vigil.instance_details import merge as merge_instance_details
from vigil.intel import Intel
from vigil.intel.builtin import builtin_intel
from vigil.normalize.agent import normalize_batch
from vigil.normalize.common import Rejection
from vigil.registry import all_detections
from vigil.sequences import attack_sequences
from vigil.sources import SourceConfig, decode_source_record
from vigil.state import State

# the finding document -> the name of the suppression rule it matches (True: an unnamed one),
# or None/False (vigil.criteria.Suppressor is one)
Suppressor = Callable[[dict[str, Any]], "str | bool | None"]
# instance ids -> GuardDuty instanceDetails of those EC2 describes (vigil.instance_details); an
# instance it cannot describe is left out. Called once per batch with the distinct instances of its
# findings, before suppression (rules match resource.instanceDetails.tags and imageId).
InstanceDetailsLookup = Callable[[Sequence[str]], Mapping[str, Mapping[str, Any]]]


@dataclass(slots=True)
class BatchResult:
    occurrences: list[Occurrence] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    heartbeats: list[AgentHealth] = field(default_factory=list)
    detection_errors: list[DetectionError] = field(default_factory=list)
    events: int = 0
    # instance id -> the (lo, hi) agent seq interval of this record's events: the identity of
    # what the record carries, which the stores keep to recognise it when it comes again
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    # identity (with a verifier): who the record proved to be, and what failed the proof
    identity: VerifiedIdentity | None = None
    identity_rejected: int = 0  # 1 for a record rejected whole, else the events rejected for their host
    identity_problem: str = ""  # the first reason, for the coverage note
    account_rejected: int = 0  # 1 for a record whose signed account is not on the allow-list
    instance_details_missing: int = 0  # findings stored without EC2's instance details
    waived: int = 0  # EC2 matches a runtime finding on a HEALTHY instance already carries (vigil.indicators)

    def extend(self, other: BatchResult) -> None:
        self.occurrences.extend(other.occurrences)
        self.rejected.extend(other.rejected)
        self.heartbeats.extend(other.heartbeats)
        self.detection_errors.extend(other.detection_errors)
        self.events += other.events
        for instance, (lo, hi) in other.ranges.items():
            cur = self.ranges.get(instance)
            self.ranges[instance] = (lo, hi) if cur is None else (min(lo, cur[0]), max(hi, cur[1]))
        self.identity_rejected += other.identity_rejected
        self.identity_problem = self.identity_problem or other.identity_problem
        self.account_rejected += other.account_rejected
        self.instance_details_missing += other.instance_details_missing
        self.waived += other.waived


def seq_ranges(events: Sequence[Event]) -> dict[str, tuple[int, int]]:
    """instance id -> (lowest, highest) seq among ``events``."""
    if not events:
        return {}
    first = events[0].device
    if all(e.device is first for e in events):  # the usual record: one host block, one device
        seqs = [e.seq for e in events]
        return {first.instance_uid: (min(seqs), max(seqs))}
    out: dict[str, tuple[int, int]] = {}
    for e in events:
        instance = e.device.instance_uid
        cur = out.get(instance)
        if cur is None:
            out[instance] = (e.seq, e.seq)
        elif e.seq < cur[0] or e.seq > cur[1]:
            out[instance] = (min(e.seq, cur[0]), max(e.seq, cur[1]))
    return out


_replace = msgspec.structs.replace


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        *,
        account_id: str = "",
        region: str = "",
        detector_id: str = DEFAULT_DETECTOR_ID,
        suppress: Suppressor | None = None,
        identity: IdentityVerifier | None = None,
        instance_details: InstanceDetailsLookup | None = None,
        accounts: AccountAllowList | None = None,
        healthy: HealthLookup | None = None,
    ) -> None:
        self.engine = engine
        self._types = {d.meta.type: d.meta.title for d in engine.detections}  # vigil.sequences' signals
        self.account_id = account_id
        self.region = region
        self.detector_id = detector_id
        self.suppress = suppress
        self.identity = identity
        self.instance_details = instance_details
        # multi-account (vigil.accounts): the accounts whose signed identities count; None: any
        self.accounts = accounts
        # coverage: which instances' agents report (one finding per indicator, vigil.indicators);
        # None (replay, bench): no EC2 match is waived
        self.healthy = healthy

    @classmethod
    def default(
        cls,
        *,
        account_id: str = "",
        region: str = "",
        intel: Intel | None = None,
        detections: Sequence[Detection] | None = None,
        settings: Mapping[str, Any] | None = None,
        disabled: Sequence[str] = (),
        suppress: Suppressor | None = None,
        identity: IdentityVerifier | None = None,
        instance_details: InstanceDetailsLookup | None = None,
        accounts: AccountAllowList | None = None,
        healthy: HealthLookup | None = None,
    ) -> Pipeline:
        engine = Engine(
            detections if detections is not None else all_detections(),
            intel=intel if intel is not None else builtin_intel(),
            settings=settings,
            disabled=disabled,
        )
        return cls(
            engine,
            account_id=account_id,
            region=region,
            suppress=suppress,
            identity=identity,
            instance_details=instance_details,
            accounts=accounts,
            healthy=healthy,
        )

    def process_record(self, data: bytes, state: State, *, partition_key: str | None = None) -> BatchResult:
        """One Kinesis record (a gzip NDJSON batch, or plain NDJSON).

        ``partition_key``: the record's Kinesis partition key; with an identity verifier the
        verified instance id must equal it (None: not checked, for callers without a stream).
        """
        decoded, line_errors = wire.decode_batch(data)
        if self.identity is None or not decoded:  # nothing decoded: the line errors say it all
            result = self.process_events(decoded, state)
        else:
            bound = bind_identity(self.identity, decoded, partition_key)
            if isinstance(bound, IdentityRejected):
                # the record as a whole: nothing in it may count for anyone
                result = BatchResult(
                    rejected=[Rejection("agent", 0, f"identity: {bound.reason}", data[:1024])],
                    identity_rejected=1,
                    identity_problem=bound.reason,
                )
                result.rejected[:0] = [Rejection("agent", e.line, e.reason, e.raw) for e in line_errors]
                return result
            accepted, identity, rejected_hosts = bound
            refusal = self.accounts.refusal(identity.account_id) if self.accounts is not None else None
            if refusal is not None:  # a proven instance, but not of an account this stack serves
                result = BatchResult(
                    rejected=[Rejection("agent", 0, f"account: {refusal}", data[:1024])],
                    identity=identity,
                    account_rejected=1,
                )
                result.rejected[:0] = [Rejection("agent", e.line, e.reason, e.raw) for e in line_errors]
                return result
            # the finding belongs to the account the signed document names (a member account's
            # instance: its id and ARN say that account, as GuardDuty's administrator view does)
            result = self.process_events(
                accepted, state, identity_verified=True, account_id=identity.account_id
            )
            result.identity = identity
            if rejected_hosts:
                result.rejected[:0] = rejected_hosts
                result.identity_rejected = len(rejected_hosts)
                result.identity_problem = rejected_hosts[0].reason
        result.rejected[:0] = [Rejection("agent", e.line, e.reason, e.raw) for e in line_errors]
        return result

    def process_events(
        self,
        decoded: Sequence[wire.WireEvent],
        state: State,
        *,
        identity_verified: bool = False,
        account_id: str | None = None,
    ) -> BatchResult:
        events, rejected = normalize_batch(decoded)
        result = self.detect(events, state, identity_verified=identity_verified, account_id=account_id)
        result.rejected.extend(rejected)
        return result

    def process_source_record(self, data: bytes, state: State, sources: SourceConfig) -> BatchResult:
        """One record of the AWS-delivered sources stream (``vigil.sources``): a CloudWatch Logs
        subscription record (VPC Flow Logs, Resolver query logs, a trail's log group) or an
        EventBridge CloudTrail event. Never call it for a record of the agents' stream: it carries
        no instance identity, and only the stream it came on says AWS wrote it (docs/sources.md)."""
        decoded = decode_source_record(data, sources)
        # no agent seq interval: each event counts by its own seq (vigil.sources.event_seq)
        result = self.detect(decoded.events, state, ranges=False)
        result.rejected.extend(decoded.rejections)
        return result

    def detect(
        self,
        events: Sequence[Event],
        state: State,
        *,
        identity_verified: bool = False,
        ranges: bool = True,
        account_id: str | None = None,
    ) -> BatchResult:
        """``account_id``: the account the findings belong to (default: the pipeline's)."""
        result = BatchResult(events=len(events), ranges=seq_ranges(events) if ranges else {})
        result.heartbeats = [e for e in events if isinstance(e, AgentHealth)]
        state.begin_record(result.ranges)
        run = self.engine.run(events, state)
        result.detection_errors = run.errors
        matches = run.matches
        if matches:  # one finding per indicator (vigil.indicators): note the runtime's, waive EC2's
            note_carried(matches, state)
            matches, result.waived = waive(matches, state, self.healthy)
            # attack sequences (vigil.sequences): one more match per signal of a multi-tactic instance
            matches += attack_sequences(
                matches, state, self._types, counted=ranges, details=self.instance_details
            )
        if matches:
            ctx = Context(state=state, intel=self.engine.intel, settings=self.engine.settings)
            occ = occurrences(
                matches,
                ctx,
                account_id=self.account_id if account_id is None else account_id,
                region=self.region,
                detector_id=self.detector_id,
                identity_verified=identity_verified,
            )
            if self.instance_details is not None:  # before suppression: rules match on tags, imageId
                result.instance_details_missing = self._enrich(occ)
            if self.suppress is not None:
                occ = [self._apply_suppression(o) for o in occ]
            result.occurrences = occ
        return result

    def _enrich(self, occ: Sequence[Occurrence]) -> int:
        """Fill each finding's instanceDetails from the lookup (one call for the batch); returns
        how many findings kept only what the agent knew."""
        assert self.instance_details is not None
        wanted = sorted({o.instance_id for o in occ})
        found = self.instance_details(wanted)
        missing = 0
        for o in occ:
            resource = o.finding["resource"]
            details = found.get(o.instance_id)
            if details is None:
                missing += 1
            resource["instanceDetails"] = merge_instance_details(resource["instanceDetails"], details)
        return missing

    def _apply_suppression(self, o: Occurrence) -> Occurrence:
        assert self.suppress is not None
        rule = self.suppress(o.finding)
        if not rule:
            return o
        service = o.finding["service"]
        service["archived"] = True
        name = rule if isinstance(rule, str) else ""
        if name:  # recorded in the document too, so whoever reads the finding sees why
            info = service.setdefault("additionalInfo", {"type": "default", "value": "{}"})
            try:
                extra = json.loads(info.get("value") or "{}")
            except ValueError:
                extra = {}
            if isinstance(extra, dict):
                extra["suppressedBy"] = name
                info["value"] = json.dumps(extra, separators=(",", ":"))
        return dataclasses.replace(o, suppressed=True, suppressed_by=name)


def bind_identity(
    verifier: IdentityVerifier, decoded: Sequence[wire.WireEvent], partition_key: str | None
) -> tuple[list[wire.WireEvent], VerifiedIdentity, list[Rejection]] | IdentityRejected:
    """Bind a decoded batch to the instance its header proves, or say why the record is rejected.

    Returns the events that may count (their host blocks replaced by the verified one, so every
    device is built from the signed document), the identity, and one Rejection per event that
    claims another instance: a host block naming another instance, account or region, and the
    events after it that inherit it, up to the next host block that is the verified instance's.
    """
    header = decoded[0].host if decoded else None
    if header is None:
        return IdentityRejected("the batch header (first event) has no host block")
    if header.identity is None:
        return IdentityRejected(
            f"the batch header of {header.instance_id[:64]!r} carries no signed instance identity"
        )
    verified = verifier.verify(header.identity.document, header.identity.signature)
    if isinstance(verified, IdentityRejected):
        return verified
    if partition_key is not None and partition_key != verified.instance_id:
        return IdentityRejected(
            f"partition key {partition_key[:64]!r} is not the verified instance {verified.instance_id}"
        )
    bound: dict[int, wire.Host | None] = {}  # id(host block as sent) -> the verified one (None: forged)
    accepted: list[wire.WireEvent] = []
    rejected: list[Rejection] = []
    current: wire.Host | None = None
    for i, w in enumerate(decoded, start=1):
        host = w.host
        if host is not None:
            key = id(host)
            if key in bound:
                current = bound[key]
            else:
                current = bound[key] = _bind_host(host, verified)
            if current is None:
                reason = _mismatch(host, verified)
                rejected.append(Rejection("agent", i, f"identity: {reason}"))
                continue
            accepted.append(_replace(w, host=current))
        elif current is None:
            rejected.append(
                Rejection(
                    "agent",
                    i,
                    f"identity: follows a host block for another instance than {verified.instance_id}",
                )
            )
        else:
            accepted.append(w)
    return accepted, verified, rejected


def _mismatch(host: wire.Host, v: VerifiedIdentity) -> str:
    if host.instance_id != v.instance_id:
        return (
            f"host block claims instance {host.instance_id[:64]!r}, the verified identity is {v.instance_id}"
        )
    if host.account_id and host.account_id != v.account_id:
        return f"host block claims account {host.account_id[:64]!r}, the verified identity is {v.account_id}"
    return f"host block claims region {host.region[:64]!r}, the verified identity is {v.region}"


def _bind_host(host: wire.Host, v: VerifiedIdentity) -> wire.Host | None:
    """The host block with the signed document's fields, or None when it claims someone else."""
    if (
        host.instance_id != v.instance_id
        or (host.account_id and host.account_id != v.account_id)
        or (host.region and host.region != v.region)
    ):
        return None
    return _replace(
        host,
        instance_id=v.instance_id,
        account_id=v.account_id,
        region=v.region,
        instance_type=v.instance_type or host.instance_type,
        image_id=v.image_id or host.image_id,
        availability_zone=v.availability_zone or host.availability_zone,
        identity=None,  # proven: nothing downstream needs the proof again
    )
