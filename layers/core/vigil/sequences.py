"""Attack sequences: one instance's findings across ATT&CK tactics, correlated into one Critical finding.

Like GuardDuty Extended Threat Detection's ``AttackSequence:EC2/CompromisedInstanceGroup``: when the
findings of one instance within ``WINDOW_S`` span at least ``MIN_TACTICS`` distinct ATT&CK tactics,
Vigil raises one Critical finding that lists its signals in the order they first happened, each with
its tactic (``service.detection.sequence``, GuardDuty's ``Sequence`` shape). It is published when
it forms and updated (signals, count, latest process) when a new signal joins it; its count is its
number of signals. A batch that only repeats known signals leaves it as it is (issue 14: rewriting
it with every batch cost more than the rest of a busy host's findings).

A signal is a finding type seen on the instance at Medium severity or more (a Low finding alone is
context, not a step of an attack). State (the State table, per instance and type): ``first`` holds the
epoch second the type was first seen (written once; it expires ``WINDOW_S`` later, which is what
makes the window slide) and ``n`` how many of its events were seen (counted once per agent record:
``State.add`` is idempotent by the record's seq interval). Which types a scope has seen is indexed
in one more key, ``types``: a counter used as a bit set, two bits per bucket of types (``_bucket``: a
stable hash of the type, so adding a detection moves no type), set once when a type's ``first`` is
written (two bits: a concurrent double add still leaves the bucket non-zero instead of carrying into
the next), all of a record's new bits in one add: the State table counts one add per key and
record, so a second add from the same record would be dropped as its repeat. A batch with signals
reads, in two round trips, the index and its own types' keys, then the keys of the types in the
index's buckets: a few keys instead of every type's (issue 14: reading two keys of each of ~140
types per batch cost more than the rest of a busy host's ingest).

Exactly once: each signal is one sighting of the sequence, with a seq of its own above every
event's (``unit_seq``: from the signal's type and first time, both in the State), so the findings
store counts it once however often and in whatever order records arrive or are replayed, and skips
the write when a batch brings no new signal; the document is rebuilt from the State each time, so a
replay writes the same signal list.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from vigil import severity
from vigil.bounds import SEQ_MAX
from vigil.detection import Context, Detection, Meta
from vigil.engine import Match
from vigil.events import Event
from vigil.findings import iso
from vigil.state import State

_replace = msgspec.structs.replace

TYPE: Final = "AttackSequence:EC2/CompromisedInstanceGroup"
WINDOW_S: Final = 24 * 3600
MIN_TACTICS: Final = 2
MIN_SIGNAL_SEVERITY: Final = severity.MEDIUM
ASG_TAG: Final = "aws:autoscaling:groupName"
_SEC: Final = 1_000_000_000
_UNIT_BASE: Final = SEQ_MAX + 1  # sightings of signals (``unit_seq``): above every event's seq

# ATT&CK enterprise tactics by GuardDuty threat purpose (vigil.detection.Meta.threat_purpose)
_TACTICS: Final = {
    "InitialAccess": ("TA0001", "Initial Access"),
    "Execution": ("TA0002", "Execution"),
    "Persistence": ("TA0003", "Persistence"),
    "PrivilegeEscalation": ("TA0004", "Privilege Escalation"),
    "DefenseEvasion": ("TA0005", "Defense Evasion"),
    "Stealth": ("TA0005", "Defense Evasion"),
    "CredentialAccess": ("TA0006", "Credential Access"),
    "Discovery": ("TA0007", "Discovery"),
    "Recon": ("TA0007", "Discovery"),
    "Collection": ("TA0009", "Collection"),
    "Exfiltration": ("TA0010", "Exfiltration"),
    "Backdoor": ("TA0011", "Command and Control"),
    "Trojan": ("TA0011", "Command and Control"),
    "Behavior": ("TA0011", "Command and Control"),
    "UnauthorizedAccess": ("TA0011", "Command and Control"),
    "CryptoCurrency": ("TA0040", "Impact"),
    "Impact": ("TA0040", "Impact"),
}
# types whose threat purpose names a different tactic than the behaviour's
_BY_TYPE: Final = {
    "UnauthorizedAccess:Runtime/MetadataDNSRebind": ("TA0006", "Credential Access"),
    "UnauthorizedAccess:EC2/MetadataDNSRebind": ("TA0006", "Credential Access"),
    "UnauthorizedAccess:EC2/SSHBruteForce": ("TA0006", "Credential Access"),
    "UnauthorizedAccess:EC2/RDPBruteForce": ("TA0006", "Credential Access"),
    "Impact:EC2/WinRMBruteForce": ("TA0006", "Credential Access"),
    "Trojan:Runtime/DropPoint": ("TA0010", "Exfiltration"),
    "Trojan:Runtime/DropPoint!DNS": ("TA0010", "Exfiltration"),
    "Trojan:EC2/DropPoint": ("TA0010", "Exfiltration"),
    "Trojan:EC2/DropPoint!DNS": ("TA0010", "Exfiltration"),
    "Trojan:EC2/DNSDataExfiltration": ("TA0010", "Exfiltration"),
    "Impact:EC2/PortSweep": ("TA0007", "Discovery"),
}


def tactic(finding_type: str) -> tuple[str, str] | None:
    """(ATT&CK tactic id, name) of a finding type, None for one that is no step of an attack."""
    if finding_type in _BY_TYPE:
        return _BY_TYPE[finding_type]
    return _TACTICS.get(finding_type.split(":", 1)[0])


def _first_key(instance: str, finding_type: str) -> str:
    return f"atkseq|{instance}|{finding_type}|first"


def _count_key(instance: str, finding_type: str) -> str:
    return f"atkseq|{instance}|{finding_type}|n"


def _index_key(scope: str) -> str:
    """The scope's index of the types it has seen (``_bucket``s, two bits each)."""
    return f"atkseq|{scope}|types"


_BUCKETS: Final = 60  # x 2 bits = 120 bits: within a DynamoDB number's 38 digits (< 2**126)


def _bucket(finding_type: str) -> int:
    return zlib.crc32(finding_type.encode()) % _BUCKETS


def _indexed(index: int, finding_type: str) -> bool:
    return (index >> (2 * _bucket(finding_type))) & 3 != 0


def _instance_key(scope: str, finding_type: str) -> str:
    """A group's: the instance the type was first seen on (``_encode``d: State keeps numbers)."""
    return f"atkseq|{scope}|{finding_type}|inst"


_INSTANCE_ID: Final = re.compile(r"i-([0-9a-f]{8}|[0-9a-f]{17})")


def _encode(instance: str) -> int:
    m = _INSTANCE_ID.fullmatch(instance)
    return (int(m.group(1), 16) << 5) | len(m.group(1)) if m else 0


def _decode(n: int) -> str:
    width = n & 31
    return f"i-{n >> 5:0{width}x}" if width in (8, 17) else ""


def groups_of(details: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """instance -> the group its sequence is shared with: its Auto Scaling group (the
    ``aws:autoscaling:groupName`` tag), else its instance profile (the role), from GuardDuty
    ``instanceDetails`` (vigil.instance_details); an instance with neither has none."""
    out: dict[str, str] = {}
    for instance, d in details.items():
        tags = d.get("tags") or []
        asg = next((t.get("value") for t in tags if isinstance(t, Mapping) and t.get("key") == ASG_TAG), None)
        profile = (d.get("iamInstanceProfile") or {}).get("arn")
        if isinstance(asg, str) and asg:
            out[instance] = f"asg:{asg}"
        elif isinstance(profile, str) and profile:
            out[instance] = f"role:{profile}"
    return out


@dataclass(frozen=True, slots=True)
class Signal:
    type: str
    tactic_id: str
    tactic: str
    first_s: int
    count: int
    severity: float  # 0: not seen in this batch (the State keeps no severity)
    title: str
    resource: str  # the instance it was first seen on


@dataclass(frozen=True, slots=True)
class _Seq:
    """One instance's sequence as of this batch: its own, or its group's (``group`` set)."""

    dedup: str
    signals: list[Signal]
    group: str = ""


class AttackSequence(Detection):
    """The sequence as a detection the pipeline builds per batch (never registered: it consumes
    findings, not events). ``signals`` holds each instance's signals as of this batch."""

    meta = Meta(
        type=TYPE,
        severity=severity.CRITICAL,
        title="A sequence of attack steps across ATT&CK tactics was observed",
        description=(
            "Findings on this instance within a day span several ATT&CK tactics (for example a reverse shell followed by "
            "theft of the instance's credentials): together they are one attack in progress, listed in "
            "service.detection.sequence in the order they happened."
        ),
        mitre=(),
        runbook=(
            "Treat the instance as compromised: read the signals in order (service.detection.sequence.signals), isolate the "
            "instance, revoke its role's sessions, and start from the first signal's process lineage for the entry point."
        ),
        false_positives=(
            "An administrator's own testing that trips findings of several tactics (archive the sequence).",
        ),
        references=(
            "https://docs.aws.amazon.com/guardduty/latest/ug/guardduty-extended-threat-detection.html",
            "https://attack.mitre.org/tactics/enterprise/",
        ),
    )
    kinds = frozenset()

    def __init__(self, sequences: Mapping[str, _Seq]) -> None:
        self.sequences = sequences

    def _of(self, event: Event) -> _Seq:
        return self.sequences.get(event.device.instance_uid) or _Seq("", [])

    def match(self, event: Any, ctx: Context) -> bool:
        return False  # never run by the engine

    def dedup_key(self, event: Event) -> str:
        """One finding per sequence: its scope and first signal's time (a new one once that expired)."""
        return self._of(event).dedup

    def title(self, event: Event) -> str:
        seq = self._of(event)
        tactics = _tactic_names(seq.signals)
        where = f" across the instances of {seq.group}" if seq.group else ""
        return (
            f"An attack sequence spanning {len(tactics)} tactics ({', '.join(tactics)}){where} was observed"
        )

    def additional_info(self, event: Event) -> dict[str, Any]:
        seq = self._of(event)
        out: dict[str, Any] = {
            "tactics": _tactic_names(seq.signals),
            "signals": [s.type for s in seq.signals],
        }
        if seq.group:
            out["group"] = seq.group
            out["instances"] = sorted({s.resource for s in seq.signals})
        return out

    def detection_details(self, event: Event, ctx: Context) -> dict[str, Any] | None:
        instance = event.device.instance_uid
        seq = self._of(event)
        sig = seq.signals
        uid = hashlib.sha256(f"{instance}|{seq.dedup}".encode()).hexdigest()[:32]
        where = f"the instances of {seq.group}" if seq.group else instance
        return {
            "sequence": {
                "uid": uid,
                "description": (
                    f"{len(sig)} signals on {where} across {', '.join(_tactic_names(sig))}, "
                    "in the order they first happened."
                ),
                "signals": [
                    {
                        "uid": hashlib.sha256(f"{s.resource}|{s.type}|{s.first_s}".encode()).hexdigest()[:32],
                        "type": "FINDING",
                        "name": s.type,
                        "description": s.title,
                        "createdAt": iso(s.first_s * _SEC),
                        "updatedAt": iso(max(s.first_s * _SEC, event.time)),
                        "firstSeenAt": iso(s.first_s * _SEC),
                        "lastSeenAt": iso(s.first_s * _SEC),
                        **({"severity": s.severity} if s.severity else {}),
                        "count": s.count,
                        "resourceUids": [s.resource],
                        "signalIndicators": [
                            {"key": "ATTACK_TACTIC", "values": [s.tactic], "title": s.tactic_id},
                        ],
                    }
                    for s in sig
                ],
                "sequenceIndicators": [{"key": "ATTACK_TACTIC", "values": _tactic_names(sig)}],
            }
        }


def _tactic_names(signals: Iterable[Signal]) -> list[str]:
    out: list[str] = []
    for s in signals:
        if s.tactic not in out:
            out.append(s.tactic)
    return out


def _signal_matches(matches: Iterable[Match]) -> list[tuple[Match, float]]:
    out = []
    for m in matches:
        if tactic(m.detection.meta.type) is None:
            continue
        try:
            sev = float(m.detection.severity(m.event))
        except Exception:  # a broken severity hook: the finding itself reports it, the sequence skips it
            continue
        if sev >= MIN_SIGNAL_SEVERITY:
            out.append((m, sev))
    return out


def _signals(
    state: State,
    scope: str,
    kinds: Sequence[str],
    types: Mapping[str, str],
    severities: Mapping[tuple[str, str], float],
) -> list[Signal]:
    group = not scope.startswith("i-")
    sig = []
    for t in kinds:
        first_s = state.count(_first_key(scope, t))
        if first_s <= 0:
            continue
        tid, tname = tactic(t) or ("", "")
        resource = _decode(state.count(_instance_key(scope, t))) if group else scope
        sig.append(
            Signal(
                t,
                tid,
                tname,
                first_s,
                max(1, state.count(_count_key(scope, t))),
                severities.get((scope, t), 0.0),  # known for this batch's signals only
                types.get(t, t),
                resource,
            )
        )
    sig.sort(key=lambda s: (s.first_s, s.type))
    return sig


def _note(
    state: State, scope: str, m: Match, counted: bool, bits: dict[str, int], instance: str = ""
) -> None:
    """Remember the signal in the State; the index bits it adds go to ``bits`` (added once per
    scope and record by the caller: the State counts one add per key and record, so a second
    type's bit added on its own would be dropped as that record's repeat)."""
    t = m.detection.meta.type
    first = _first_key(scope, t)
    if state.count(first) == 0:
        state.add(first, max(1, m.event.time // _SEC), WINDOW_S)
    # the index and a group's instance are checked on their own, not only with a new ``first``: a
    # retry after a State write that stored ``first`` but failed on the index repairs it (else the
    # type would be left out of every later batch's sequence)
    if not _indexed(state.count(_index_key(scope)) | bits.get(scope, 0), t):
        bits[scope] = bits.get(scope, 0) | 1 << (2 * _bucket(t))
    if instance and _encode(instance) and state.count(_instance_key(scope, t)) == 0:
        state.add(_instance_key(scope, t), _encode(instance), WINDOW_S)
    if counted or state.count(_count_key(scope, t)) == 0:
        state.add(_count_key(scope, t), 1, WINDOW_S)


def attack_sequences(
    matches: Sequence[Match],
    state: State,
    types: Mapping[str, str],
    *,
    counted: bool = True,
    details: Callable[[Sequence[str]], Mapping[str, Mapping[str, Any]]] | None = None,
) -> list[Match]:
    """The matches of ``AttackSequence:EC2/CompromisedInstanceGroup`` this batch's ``matches`` make:
    one per signal event of an instance whose signals (remembered ones and this batch's) span at
    least ``MIN_TACTICS`` tactics, or whose group's do, across at least two of its instances.
    ``types``: every finding type the engine can raise -> its title (their keys are loaded for the
    instances and groups with signals). ``counted``: the State dedupes ``add`` by the record's
    agent seq interval (False for the AWS-delivered sources, which have none: their signal counts
    are then left as first seen). ``details``: the pipeline's instance details lookup (EC2; None in
    `vigil replay`), for the groups (``groups_of``)."""
    found = _signal_matches(matches)
    if not found:
        return []
    kinds = sorted(t for t in set(types) if tactic(t) is not None)
    instances = sorted({m.event.device.instance_uid for m, _ in found})
    groups: dict[str, str] = {}
    if details is not None:
        try:
            groups = groups_of(details(instances))
        except Exception:  # no EC2 details now: instances' own sequences still form
            groups = {}
    scopes = [*instances, *sorted(set(groups.values()))]
    batch_types = sorted({m.detection.meta.type for m, _ in found})

    def keys(sc: str, ts: Iterable[str]) -> Iterator[str]:
        for t in ts:
            yield _first_key(sc, t)
            yield _count_key(sc, t)
            if not sc.startswith("i-"):
                yield _instance_key(sc, t)

    state.load([k for sc in scopes for k in (_index_key(sc), *keys(sc, batch_types))])
    candidates = {
        sc: sorted({t for t in kinds if _indexed(state.count(_index_key(sc)), t)} | set(batch_types))
        for sc in scopes
    }
    state.load([k for sc in scopes for k in keys(sc, candidates[sc])])
    severities: dict[tuple[str, str], float] = {}
    bits: dict[str, int] = {}
    for m, sev in found:
        instance, t = m.event.device.instance_uid, m.detection.meta.type
        _note(state, instance, m, counted, bits)
        severities[(instance, t)] = max(sev, severities.get((instance, t), 0.0))
        group = groups.get(instance)
        if group:
            _note(state, group, m, counted, bits, instance)
            severities[(group, t)] = max(sev, severities.get((group, t), 0.0))
    for scope, b in sorted(bits.items()):  # one add per scope: the index's new types of this record
        state.add(_index_key(scope), b, WINDOW_S)
    sequences: dict[str, _Seq] = {}
    for group in sorted(set(groups.values())):
        sig = _signals(state, group, candidates[group], types, severities)
        if len({s.tactic for s in sig}) >= MIN_TACTICS and len({s.resource for s in sig}) >= 2:
            for instance in instances:  # a group's sequence spans instances: it supersedes their own
                if groups.get(instance) == group:
                    sequences[instance] = _Seq(f"{group}|{sig[0].first_s}", sig, group)
    for instance in instances:
        if instance in sequences:
            continue
        sig = _signals(state, instance, candidates[instance], types, severities)
        if len({s.tactic for s in sig}) >= MIN_TACTICS:
            sequences[instance] = _Seq(str(sig[0].first_s), sig)
    if not sequences:
        return []
    det = AttackSequence(sequences)
    out: list[Match] = []
    for instance, seq in sequences.items():
        firsts = {s.type: s.first_s for s in seq.signals}
        anchor = max(  # shown as the latest process: this batch's event of the newest step
            (m for m, _ in found if m.event.device.instance_uid == instance),
            key=lambda m: (firsts.get(m.detection.meta.type, 0), m.event.time, m.event.seq),
        ).event
        out += [Match(det, _replace(anchor, seq=unit_seq(s), time=s.first_s * _SEC)) for s in seq.signals]
    return out


def unit_seq(signal: Signal) -> int:
    """The sequence finding's sighting of one signal: a stable number above every event seq
    (``vigil.bounds.SEQ_MAX``), ordered by when the signal first happened. The findings store counts a
    sighting once, so the finding is written when a signal joins and never when a batch only
    repeats its signals (issue 14), its count is its number of signals whatever the order of
    arrival or replays, and a crash between the finding and the State write loses nothing: the
    replay brings the same sightings."""
    return (
        _UNIT_BASE
        + (signal.first_s << 16)
        + (zlib.crc32(f"{signal.resource}|{signal.type}".encode()) & 0xFFFF)
    )
