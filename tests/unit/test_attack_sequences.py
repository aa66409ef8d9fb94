"""Attack sequences (vigil.sequences): one instance's findings across tactics become one Critical finding.

GIVEN the pipeline over agent batches, WHEN one instance's Medium+ findings span two ATT&CK tactics
(in separate batches, in either order), THEN one AttackSequence:EC2/CompromisedInstanceGroup finding
forms, lists its signals in order with their tactics, grows with later signals, and a replayed
batch neither adds a sighting nor changes its signals; one tactic, Low signals or another
instance's findings form none.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from guardduty_shape import validate

from vigil import sample as s
from vigil import wire
from vigil.findings import Occurrence
from vigil.pipeline import Pipeline
from vigil.sequences import TYPE, tactic
from vigil.state import InMemoryState

EVENTS = Path(__file__).resolve().parents[2] / "events" / "agent"
SEC = 1_000_000_000
WEB = s.proc("/usr/sbin/nginx", pid=900, uid=33, user="www-data")
REVERSE = s.proc(
    "/bin/bash",
    "-i",
    pid=4000,
    stdin=s.sock("198.51.100.7", 4444),
    stdout=s.sock("198.51.100.7", 4444),
    parent=WEB,
)
IMDS = s.proc(
    "/usr/bin/curl",
    "-s",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/r",
    pid=4001,
    parent=REVERSE,
)
DISCOVERY = s.proc("/usr/bin/cat", "/etc/os-release", pid=4002, parent=REVERSE)  # no finding at all


def _run(pipeline: Pipeline, state: InMemoryState, *batches: list) -> list[Occurrence]:
    out: list[Occurrence] = []
    for events in batches:
        out += pipeline.detect(events, state).occurrences
        state.commit()
    return out


def _seq(occ: list[Occurrence]) -> list[Occurrence]:
    return [o for o in occ if o.finding["type"] == TYPE]


def _signals(o: Occurrence) -> list[tuple[str, str]]:
    sig = o.finding["service"]["detection"]["sequence"]["signals"]
    return [(x["name"], x["signalIndicators"][0]["values"][0]) for x in sig]


def test_a_second_tactic_forms_one_critical_sequence_listing_the_signals_in_order() -> None:
    p, state = Pipeline.default(account_id="123456789012", region="us-east-1"), InMemoryState()
    first = _run(p, state, [s.exec_(REVERSE, t=0)])
    assert _seq(first) == [] and {o.finding["type"] for o in first} == {"Execution:Runtime/ReverseShell"}
    second = _run(p, state, [s.exec_(IMDS, t=30 * SEC)])
    (o,) = _seq(second)
    assert o.finding["severity"] == 9.0 and o.count == 2  # a sighting per signal: count = its signals
    assert _signals(o) == [
        ("Execution:Runtime/ReverseShell", "Execution"),
        ("CredentialAccess:Runtime/SuspiciousCommand", "Credential Access"),
    ]
    assert "2 tactics (Execution, Credential Access)" in o.finding["title"]
    assert validate(o.finding) == []
    # it grows: a later signal of a third tactic updates the same finding with three signals
    later = s.exec_(s.proc("/usr/bin/crontab", "/tmp/c", pid=4003, parent=REVERSE), t=60 * SEC)
    (grown,) = _seq(_run(p, state, [later]))  # crontab from a web server's shell: Persistence, Medium
    assert grown.id == o.id and _signals(grown)[2:] == [
        ("Persistence:Runtime/SuspiciousCommand", "Persistence")
    ]
    assert "3 tactics" in grown.finding["title"]
    assert set(o.sightings) < set(grown.sightings) and grown.count == 3  # the store counts one more


def test_a_batch_that_only_repeats_known_signals_brings_no_new_sighting_so_no_write() -> None:
    # GIVEN a formed sequence (issue 14: it used to be rewritten by every batch with a signal)
    p, state = Pipeline.default(account_id="123456789012", region="us-east-1"), InMemoryState()
    _run(p, state, [s.exec_(REVERSE, t=0)])
    (formed,) = _seq(_run(p, state, [s.exec_(IMDS, t=30 * SEC)]))
    # WHEN later batches repeat both signals (new events, new seqs, later times)
    shell = s.proc("/bin/bash", "-i", pid=5000, stdin=REVERSE.stdin, stdout=REVERSE.stdout, parent=WEB)
    again = _run(p, state, [s.exec_(shell, t=600 * SEC), s.exec_(IMDS, t=601 * SEC)])
    # THEN the findings store gets the same sightings: it has counted them all, and writes nothing
    (repeat,) = _seq(again)
    assert repeat.id == formed.id and repeat.sightings == formed.sightings
    assert {o.finding["type"] for o in again} >= {"Execution:Runtime/ReverseShell"}  # those still count


def test_replaying_an_earlier_record_after_the_sequence_formed_adds_no_sighting() -> None:
    # GIVEN a sequence formed by the second record
    p, state = Pipeline.default(account_id="123456789012", region="us-east-1"), InMemoryState()
    shell, cred = [s.exec_(REVERSE, t=0)], [s.exec_(IMDS, t=30 * SEC)]
    _run(p, state, shell)
    (formed,) = _seq(_run(p, state, cred))
    # WHEN the first record (before the sequence existed) is delivered again, then the second
    (replayed,) = _seq(_run(p, state, shell))
    (twice,) = _seq(_run(p, state, cred))
    # THEN both carry exactly the sightings already counted (the old code counted the shell again)
    assert replayed.sightings == formed.sightings == twice.sightings
    # and arriving in the other order forms the same sightings
    other = InMemoryState()
    _run(p, other, cred)
    (reordered,) = _seq(_run(p, other, shell))
    assert reordered.sightings == formed.sightings


def test_the_order_of_arrival_does_not_matter_and_replays_add_nothing() -> None:
    p, state = Pipeline.default(account_id="123456789012", region="us-east-1"), InMemoryState()
    cred, shell = s.exec_(IMDS, t=30 * SEC), s.exec_(REVERSE, t=0)
    a = _seq(_run(p, state, [cred]))
    b = _seq(_run(p, state, [shell]))
    assert a == [] and len(b) == 1
    # the State orders by time first seen: the shell (t=0) before the credentials (t=30 s)
    assert [n for n, _ in _signals(b[0])] == [
        "Execution:Runtime/ReverseShell",
        "CredentialAccess:Runtime/SuspiciousCommand",
    ]
    again = _seq(_run(p, state, [shell]))  # the same record again: the same event, the same document
    assert [x.sightings for x in again] == [b[0].sightings]
    assert _signals(again[0]) == _signals(b[0]) and again[0].id == b[0].id


def test_one_tactic_low_signals_or_another_instance_form_no_sequence() -> None:
    p, state = Pipeline.default(account_id="123456789012", region="us-east-1"), InMemoryState()
    other = msgspec.structs.replace(s.DEVICE, instance_uid="i-0fffffffffffffff1")
    shell2 = s.exec_(s.proc("/bin/sh", stdin=s.sock("203.0.113.9", 9001), pid=4100, parent=WEB), t=SEC)
    occ = _run(p, state, [s.exec_(REVERSE)], [shell2], [s.exec_(DISCOVERY, t=2 * SEC)])
    assert _seq(occ) == []  # Execution twice, and a command that raises nothing
    assert _seq(_run(p, state, [s.exec_(IMDS, t=3 * SEC, device=other)])) == []  # another instance
    # at an administrator's terminal: an installer piped to sh (Execution, Medium), then crontab
    # (Persistence, Low at a terminal): a Low finding is no step of a sequence
    admin = InMemoryState()
    install = s.exec_(
        s.proc("/bin/sh", "-c", "curl -fsSL https://get.example.com/i | sh", pid=4200, parent=s.LOGIN_SHELL)
    )
    cron = s.exec_(s.proc("/usr/bin/crontab", "/tmp/c", pid=4201, parent=s.LOGIN_SHELL), t=SEC)
    occ = _run(p, admin, [install], [cron])
    assert {(o.finding["type"], o.finding["severity"]) for o in occ} == {
        ("Execution:Runtime/SuspiciousCommand", 5.0),
        ("Persistence:Runtime/SuspiciousCommand", 2.0),
    }
    assert tactic("Backdoor:Runtime/C&CActivity.B") == ("TA0011", "Command and Control")
    assert tactic("Trojan:EC2/DropPoint") == ("TA0010", "Exfiltration")
    assert tactic("Policy:Runtime/Nothing") is None


def test_the_demo_batches_form_a_sequence_on_the_reverse_shell_instance_only_after_its_next_step() -> None:
    p, state = Pipeline.default(account_id="123456789012", region="us-east-1"), InMemoryState()
    occ: list[Occurrence] = []
    for name in ("benign.ndjson.gz", "reverse_shell.ndjson.gz", "crypto_dns.ndjson.gz"):
        occ += p.process_record((EVENTS / name).read_bytes(), state).occurrences
        state.commit()
    assert _seq(occ) == []
    data = (EVENTS / "reverse_shell_next.ndjson.gz").read_bytes()
    (o,) = _seq(p.process_record(data, state).occurrences)
    state.commit()
    host = wire.decode_batch(data)[0][0].host
    assert host is not None and o.instance_id == host.instance_id
    assert [t for _, t in _signals(o)] == ["Execution", "Execution", "Credential Access"]
    (again,) = _seq(p.process_record(data, state).occurrences)
    assert again.sightings == o.sightings and _signals(again) == _signals(o)


def _details(groups: dict[str, dict]) -> object:
    calls: list[list[str]] = []

    def lookup(instances: object) -> dict[str, dict]:
        calls.append(list(instances))  # type: ignore[call-overload]
        return {i: groups[i] for i in instances if i in groups}  # type: ignore[attr-defined]

    lookup.calls = calls  # type: ignore[attr-defined]
    return lookup


def test_instances_of_one_auto_scaling_group_share_a_sequence_across_them() -> None:
    """GIVEN EC2 details that put two instances in one Auto Scaling group, WHEN one raises an
    Execution finding and the other a Credential Access one, THEN a sequence forms on the second,
    listing each signal with the instance it came from; without the group (or with another
    group's instance) each instance alone has one tactic and none forms."""
    a, b, c = "i-0a1b2c3d4e5f60011", "i-0a1b2c3d4e5f60012", "i-0a1b2c3d4e5f60013"
    asg = {
        "tags": [{"key": "aws:autoscaling:groupName", "value": "web-asg"}, {"key": "Name", "value": "web"}]
    }
    other = {"iamInstanceProfile": {"arn": "arn:aws:iam::123456789012:instance-profile/batch"}}
    lookup = _details({a: asg, b: asg, c: other})
    dev = {i: msgspec.structs.replace(s.DEVICE, instance_uid=i) for i in (a, b, c)}
    for details, expect in ((None, False), (lookup, True)):
        p = Pipeline.default(account_id="123456789012", region="us-east-1", instance_details=details)  # type: ignore[arg-type]
        state = InMemoryState()
        first = _seq(_run(p, state, [s.exec_(REVERSE, t=0, device=dev[a])]))
        on_c = _seq(_run(p, state, [s.exec_(IMDS, t=10 * SEC, device=dev[c])]))  # another group
        on_b = _seq(_run(p, state, [s.exec_(IMDS, t=30 * SEC, device=dev[b])]))
        assert first == [] and on_c == []
        if not expect:
            assert on_b == []
            continue
        (o,) = on_b
        assert o.instance_id == b and "across the instances of asg:web-asg" in o.finding["title"]
        sig = o.finding["service"]["detection"]["sequence"]["signals"]
        assert [(x["name"], x["resourceUids"]) for x in sig] == [
            ("Execution:Runtime/ReverseShell", [a]),
            ("CredentialAccess:Runtime/SuspiciousCommand", [b]),
        ]
        assert validate(o.finding) == []
        # the same batch again: the same sighting, the same signals
        (again,) = _seq(_run(p, state, [s.exec_(IMDS, t=30 * SEC, device=dev[b])]))
        assert again.id == o.id and _signals(again) == _signals(o)


def test_a_failing_instance_lookup_leaves_the_instances_own_sequences() -> None:
    from vigil.engine import Engine
    from vigil.intel.builtin import builtin_intel
    from vigil.registry import all_detections
    from vigil.sequences import attack_sequences

    def broken(instances: object) -> dict:
        raise RuntimeError("EC2 throttled")

    dets = all_detections()
    engine = Engine(dets, intel=builtin_intel())
    types = {d.meta.type: d.meta.title for d in dets}
    state = InMemoryState()
    events = [s.exec_(REVERSE), s.exec_(IMDS, t=30 * SEC)]
    matches = engine.run(events, state).matches
    got = attack_sequences(matches, state, types, details=broken)
    assert {m.detection.meta.type for m in got} == {TYPE} and len(got) == 2  # one per signal event


class _TableState(InMemoryState):
    """Like the State table: a key's value is known only once loaded (what is not loaded reads as
    absent); counts every key read."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, int] = {}
        self.reads: list[str] = []

    def load(self, keys) -> None:  # type: ignore[no-untyped-def]
        for k in keys:
            if k not in self.reads:
                self.reads.append(k)
                if k in self.stored:
                    self._counts[k] = self.stored[k]

    def commit(self) -> None:
        super().commit()
        self.stored.update(self._counts)
        self._counts, self.reads = {}, []


def test_a_batch_reads_the_keys_of_the_types_its_instance_has_seen_not_of_every_type() -> None:
    # GIVEN an instance that has seen one signal, in a State that knows only what is loaded
    p, state = Pipeline.default(account_id="123456789012", region="us-east-1"), _TableState()
    _run(p, state, [s.exec_(REVERSE, t=0)])
    # WHEN a second tactic's signal arrives in a later batch
    (o,) = _seq(_run_reading(p, state, [s.exec_(IMDS, t=30 * SEC)]))
    # THEN the sequence forms from the loaded keys alone, and the batch read the scope's index,
    # its own type's keys and those of the few types in the index's buckets: not 2 x every type
    assert [t for t, _ in _signals(o)] == [
        "Execution:Runtime/ReverseShell",
        "CredentialAccess:Runtime/SuspiciousCommand",
    ]
    seq_reads = [k for k in _LAST_READS if k.startswith("atkseq|")]
    kinds = [t for t in p._types if tactic(t) is not None]
    assert len(kinds) > 50 and 3 <= len(seq_reads) <= 12, seq_reads


_LAST_READS: list[str] = []


def _run_reading(pipeline: Pipeline, state: _TableState, events: list) -> list[Occurrence]:
    out = pipeline.detect(events, state).occurrences
    _LAST_READS[:] = state.reads
    state.commit()
    return out


class _StoreLikeState(InMemoryState):
    """Like the State table (vigil_aws.state_store): a commit writes one add per key and record
    (a record's repeated add to a key is taken for a redelivery of it)."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, int] = {}
        self.adds: list[tuple[str, object, int]] = []
        self.record: object = None

    def begin_record(self, ranges) -> None:  # type: ignore[no-untyped-def]
        self.record = tuple(sorted(ranges.items()))

    def add(self, key: str, n: int, ttl_s: int) -> None:
        super().add(key, n, ttl_s)
        self.adds.append((key, self.record, n))

        self.applied: set[tuple[str, object]] = set()  # (key, record) already counted, across commits

    def commit(self) -> None:
        for key, record, n in self.adds:
            if (key, record) not in self.applied:
                self.applied.add((key, record))
                self.stored[key] = self.stored.get(key, 0) + n
        self.adds = []
        super().commit()
        self._counts = dict(self.stored)

    def lose(self, key: str) -> None:
        """A write of ``key`` that failed while the others of its invocation were stored."""
        self.stored.pop(key, None)
        self.applied = {(k, r) for k, r in self.applied if k != key}
        self._counts = dict(self.stored)


def test_two_new_signal_types_in_one_record_are_both_remembered_for_later_batches() -> None:
    # GIVEN one record with two new Execution signals (a reverse shell and a piped installer from
    # it), in a State that, like the State table, counts one add per key and record
    from vigil.sequences import _bucket

    install = s.proc("/bin/sh", "-c", "curl -fsSL https://get.example.com/i | sh", pid=4200, parent=REVERSE)
    p, state = Pipeline.default(account_id="123456789012", region="us-east-1"), _StoreLikeState()
    first = _run(p, state, [s.exec_(REVERSE, t=0), s.exec_(install, t=SEC)])
    kinds = {o.finding["type"] for o in first}
    assert kinds >= {"Execution:Runtime/ReverseShell", "Execution:Runtime/SuspiciousCommand"}
    assert _bucket("Execution:Runtime/ReverseShell") != _bucket("Execution:Runtime/SuspiciousCommand")
    # WHEN a later record brings a second tactic
    (o,) = _seq(_run(p, state, [s.exec_(IMDS, t=30 * SEC)]))
    # THEN the sequence lists all three signals (the index of seen types kept both of the first
    # record's types: their bits are added in one add, not two of which the State keeps one)
    assert [n for n, _ in _signals(o)] == [
        "Execution:Runtime/ReverseShell",
        "Execution:Runtime/SuspiciousCommand",
        "CredentialAccess:Runtime/SuspiciousCommand",
    ]
    assert o.count == 3


def test_a_retry_after_the_index_write_failed_repairs_the_index() -> None:
    # GIVEN a reverse shell whose State write stored the type's first sighting but failed on the
    # scope's index of seen types (a throttled write; the record is retried)
    p, state = Pipeline.default(account_id="123456789012", region="us-east-1"), _StoreLikeState()
    shell = [s.exec_(REVERSE, t=0)]
    _run(p, state, shell)
    index = next(k for k in state.stored if k.endswith("|types"))
    state.lose(index)
    # WHEN the record is delivered again, then a second tactic arrives
    _run(p, state, shell)
    (o,) = _seq(_run(p, state, [s.exec_(IMDS, t=30 * SEC)]))
    # THEN the sequence forms with both signals (the retry put the type back in the index)
    assert [n for n, _ in _signals(o)] == [
        "Execution:Runtime/ReverseShell",
        "CredentialAccess:Runtime/SuspiciousCommand",
    ]
