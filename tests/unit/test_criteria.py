"""vigil.criteria: GuardDuty's FindingCriteria semantics on real Vigil findings.

The findings are the ones the pipeline builds from detection examples (the SuspiciousTool hydra
example, a reverse shell), enriched with the ``instanceDetails`` GuardDuty documents (tags, image
id, network interfaces) the way the enrichment step fills them, so each operator is checked
against the same document shape a GuardDuty rule sees.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil import sample as s
from vigil.criteria import (
    MAX_ATTRIBUTES,
    MAX_VALUES,
    FilterError,
    Suppressor,
    epoch_ms,
    parse_criteria,
    parse_expressions,
    parse_filter,
    values_at,
)
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState


def _finding(*events: Any) -> dict[str, Any]:
    result = Pipeline.default(account_id="123456789012", region="us-east-1").detect(
        list(events), InMemoryState()
    )
    assert len(result.occurrences) == 1
    return result.occurrences[0].finding


def _enrich(
    doc: dict[str, Any], tags: dict[str, str], image: str = "ami-0abcdef1234567890"
) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    d = doc["resource"]["instanceDetails"]
    d["imageId"] = image
    d["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    d["networkInterfaces"] = [
        {"privateIpAddress": "10.0.0.12", "securityGroups": [{"groupId": "sg-0a", "groupName": "web"}]},
        {"privateIpAddress": "10.0.1.12", "securityGroups": [{"groupId": "sg-0b", "groupName": "ssh"}]},
    ]
    return doc


HYDRA = _finding(
    s.exec_(
        s.proc(
            "/usr/bin/hydra",
            "-l",
            "root",
            "-P",
            "rockyou.txt",
            "ssh://198.51.100.3",
            parent=s.proc("/bin/bash"),
        )
    )
)
PENTEST = _enrich(HYDRA, {"Role": "pentest", "Name": "kali-1"})
WEB = _enrich(HYDRA, {"Role": "web", "Name": "web-1"}, image="ami-0123")
SHELL = _finding(s.exec_(s.proc("/bin/bash", "-i", stdin=s.sock("198.51.100.7", 4444))))


def crit(criterion: dict[str, Any]) -> Any:
    return parse_criteria({"Criterion": criterion})


# -- the Done-when example -----------------------------------------------------------------------
DONE_WHEN = {
    "Name": "pentest-tools",
    "Description": "Authorized penetration tests run from instances tagged Role=pentest",
    "Action": "ARCHIVE",
    "Rank": 1,
    "FindingCriteria": {
        "Criterion": {
            "type": {"Equals": ["Execution:Runtime/SuspiciousTool"]},
            "resource.instanceDetails.tags.key": {"Equals": ["Role"]},
            "resource.instanceDetails.tags.value": {"Equals": ["pentest"]},
        }
    },
}


def test_the_done_when_rule_archives_suspicious_tool_on_pentest_instances_only() -> None:
    # GIVEN the GuardDuty filter JSON; WHEN parsed into a suppressor
    rule = parse_filter(DONE_WHEN)
    suppress = Suppressor([rule])
    # THEN the hydra finding on a Role=pentest instance is suppressed by name, on a web server not
    assert suppress(PENTEST) == "pentest-tools"
    assert suppress(WEB) is None
    assert suppress(_enrich(SHELL, {"Role": "pentest"})) is None  # another type


def test_get_filter_output_is_accepted_as_is() -> None:
    # GIVEN what `aws guardduty get-filter` prints (CreatedAt/UpdatedAt/Version included)
    got = dict(DONE_WHEN, CreatedAt="2026-12-01T10:00:00Z", UpdatedAt="2026-12-01T10:00:00Z", Version=3)
    # WHEN parsed, THEN the same rule, and it prints back GetFilter's shape
    f = parse_filter(got)
    assert f.name == "pentest-tools" and f.action == "ARCHIVE" and f.rank == 1
    assert parse_filter(f.to_json()).to_json() == f.to_json() == DONE_WHEN


# -- every operator ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("criterion", "pentest", "web"),
    [
        ({"resource.instanceDetails.tags.value": {"Equals": ["pentest", "red-team"]}}, True, False),
        ({"resource.instanceDetails.tags.value": {"Eq": ["pentest"]}}, True, False),
        ({"resource.instanceDetails.tags.value": {"NotEquals": ["pentest"]}}, False, True),
        ({"resource.instanceDetails.tags.value": {"Neq": ["pentest", "web"]}}, False, False),
        ({"resource.instanceDetails.imageId": {"Equals": ["ami-0123"]}}, False, True),
        ({"resource.instanceDetails.tags.value": {"Matches": ["pen*"]}}, True, False),
        ({"resource.instanceDetails.tags.value": {"Matches": ["w?b"]}}, False, True),
        ({"resource.instanceDetails.tags.value": {"NotMatches": ["kali-*"]}}, False, True),
        ({"resource.instanceDetails.tags.value": {"NotMatches": ["*-1"]}}, False, False),
        (
            {"resource.instanceDetails.networkInterfaces.securityGroups.groupName": {"Equals": ["ssh"]}},
            True,
            True,
        ),
        ({"service.runtimeDetails.process.executablePath": {"Matches": ["/usr/bin/*"]}}, True, True),
        ({"service.runtimeDetails.process.lineage.executablePath": {"Equals": ["/bin/bash"]}}, True, True),
        ({"service.runtimeDetails.context.toolName": {"Equals": ["hydra"]}}, True, True),
        ({"service.archived": {"Equals": ["false"]}}, True, True),
        ({"service.archived": {"Equals": ["true"]}}, False, False),
        ({"severity": {"Equals": ["8"]}}, True, True),
        ({"severity": {"GreaterThanOrEqual": 8}}, True, True),
        ({"severity": {"Gte": 7, "Lt": 9}}, True, True),
        ({"severity": {"GreaterThan": 8}}, False, False),
        ({"severity": {"Gt": 7}}, True, True),
        ({"severity": {"LessThan": 8}}, False, False),
        ({"severity": {"LessThanOrEqual": 8, "Lte": 10}}, True, True),
        ({"service.count": {"Equals": ["1"]}}, True, True),
        ({"resource.instanceDetails.tags.key": {"Equals": ["Owner"]}}, False, False),
        ({"resource.instanceDetails.productCodes.code": {"NotEquals": ["x"]}}, True, True),  # absent
        ({"resource.instanceDetails.productCodes.code": {"Equals": ["x"]}}, False, False),
    ],
)
def test_operator_on_enriched_findings(criterion: dict[str, Any], pentest: bool, web: bool) -> None:
    # GIVEN a criterion; WHEN matched against the pentest and the web server findings; THEN:
    c = crit(criterion)
    assert (c.matches(PENTEST), c.matches(WEB)) == (pentest, web)


def test_timestamps_compare_in_epoch_ms() -> None:
    # GIVEN a finding updated at a known instant (ISO in the document, epoch ms in the filter)
    doc = dict(PENTEST, updatedAt="2026-12-01T10:00:00.250Z")
    ms = epoch_ms("2026-12-01T10:00:00.250Z")
    assert ms == 1_796_119_200_250
    # WHEN / THEN each comparison holds exactly on its side of the instant
    assert crit({"updatedAt": {"GreaterThanOrEqual": ms}}).matches(doc)
    assert not crit({"updatedAt": {"GreaterThan": ms}}).matches(doc)
    assert crit({"updatedAt": {"LessThan": ms + 1}}).matches(doc)
    assert crit({"updatedAt": {"Equals": [str(ms)]}}).matches(doc)
    first = epoch_ms(PENTEST["service"]["eventFirstSeen"])
    assert first is not None
    assert crit({"service.eventFirstSeen": {"Gte": first, "Lte": first}}).matches(PENTEST)
    assert not crit({"service.eventLastSeen": {"Lt": first}}).matches(PENTEST)


def test_attributes_are_anded_and_values_ored() -> None:
    both = crit(
        {
            "type": {"Equals": ["Execution:Runtime/SuspiciousTool"]},
            "resource.instanceDetails.imageId": {"Equals": ["ami-0123", "ami-9"]},
        }
    )
    assert (both.matches(PENTEST), both.matches(WEB)) == (False, True)


def test_additional_info_keys_are_looked_up_in_its_json_value() -> None:
    # GIVEN a finding whose additionalInfo.value is GuardDuty's JSON string
    assert values_at(SHELL, ("service", "additionalInfo", "maturity")) == ["stable"]
    # THEN a filter on service.additionalInfo.<key> sees it
    assert crit({"service.additionalInfo.identityVerified": {"Equals": ["false"]}}).matches(SHELL)


def test_runtime_context_and_network_action_fields() -> None:
    # GIVEN the reverse shell's runtime context, and a GuardDuty-documented networkConnectionAction
    assert crit({"service.runtimeDetails.context.addressFamily": {"Equals": ["AF_INET"]}}).matches(SHELL)
    doc = copy.deepcopy(SHELL)
    doc["service"]["action"] = {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
        "connectionDirection": "OUTBOUND", "remoteIpDetails": {"ipAddressV4": "198.51.100.7"},
        "remotePortDetails": {"port": 4444}}}  # fmt: skip
    c = crit({"service.action.networkConnectionAction.remoteIpDetails.ipAddressV4": {"Equals": ["198.51.100.7"]},
              "service.action.networkConnectionAction.remotePortDetails.port": {"Gte": 1024}})  # fmt: skip
    assert c.matches(doc) and not c.matches(SHELL)


def test_bastion_by_tag_and_scanner_by_ami_examples() -> None:
    # AWS's suppression examples, on our findings: a tool on a bastion by tag, a scanner by AMI
    bastion = parse_filter({"Name": "bastion", "Action": "ARCHIVE", "FindingCriteria": {"Criterion": {
        "resource.instanceDetails.tags.value": {"Equals": ["bastion"]}}}})  # fmt: skip
    scanner = parse_filter({"Name": "scanner-ami", "Action": "ARCHIVE", "Rank": 2, "FindingCriteria": {"Criterion": {
        "type": {"Equals": ["Execution:Runtime/SuspiciousTool"]},
        "resource.instanceDetails.imageId": {"Equals": ["ami-0123"]}}}})  # fmt: skip
    s_ = Suppressor([bastion, scanner])
    assert s_(WEB) == "scanner-ami"
    assert s_(_enrich(SHELL, {"Role": "bastion"})) == "bastion"
    assert s_(PENTEST) is None


def test_rank_decides_which_rule_is_recorded_and_noop_filters_never_suppress() -> None:
    rules = [
        parse_filter({"Name": "second", "Action": "ARCHIVE", "Rank": 2, "FindingCriteria": {"Criterion": {"severity": {"Gte": 1}}}}),
        parse_filter({"Name": "first", "Action": "ARCHIVE", "Rank": 1, "FindingCriteria": {"Criterion": {"severity": {"Gte": 1}}}}),
        parse_filter({"Name": "saved-view", "Rank": 0 + 3, "FindingCriteria": {"Criterion": {"severity": {"Gte": 1}}}}),
    ]  # fmt: skip
    assert Suppressor(rules)(PENTEST) == "first"
    assert Suppressor(rules[2:])(PENTEST) is None and not Suppressor(rules[2:])


def test_wildcards_are_literal_otherwise() -> None:
    doc = {"a": "x.y[1]+"}
    assert crit({"a": {"Matches": ["x.y[1]+"]}}).matches(doc)
    assert not crit({"a": {"Matches": ["x?y[2]*"]}}).matches(doc)
    assert crit({"a": {"Matches": ["*"]}}).matches({"a": ""})


# -- the short syntax ----------------------------------------------------------------------------
def test_short_expressions() -> None:
    c = parse_expressions(
        ["type=Execution:Runtime/SuspiciousTool", "severity>=7", "resource.instanceDetails.tags.value~pen*",
         "updatedAt>=2025-01-01", "type=Other"]
    )  # fmt: skip
    assert c.criterion["type"] == {"Equals": ["Execution:Runtime/SuspiciousTool", "Other"]}
    assert c.criterion["updatedAt"] == {"GreaterThanOrEqual": epoch_ms("2025-01-01T00:00:00Z")}
    assert c.matches(PENTEST) and not c.matches(WEB)
    j = parse_expressions([json.dumps({"severity": {"Lt": 5}})])
    assert not j.matches(PENTEST)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("severity", "expected FIELD OP VALUE"),
        ("severity>=high", "not an integer"),
        ("{nope", "not valid JSON"),
        ("..=x", "not a finding field path"),
    ],
)
def test_bad_short_expressions_say_why(expr: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_expressions([expr])


# -- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"Name": "ab", "FindingCriteria": {"Criterion": {"type": {"Eq": ["x"]}}}}, "3-64"),
        ({"Name": "a b c", "FindingCriteria": {"Criterion": {"type": {"Eq": ["x"]}}}}, "3-64"),
        (
            {"Name": "abc", "Action": "DELETE", "FindingCriteria": {"Criterion": {"type": {"Eq": ["x"]}}}},
            "NOOP or ARCHIVE",
        ),
        ({"Name": "abc", "Rank": 101, "FindingCriteria": {"Criterion": {"type": {"Eq": ["x"]}}}}, "1 to 100"),
        (
            {"Name": "abc", "Rank": True, "FindingCriteria": {"Criterion": {"type": {"Eq": ["x"]}}}},
            "1 to 100",
        ),
        (
            {
                "Name": "abc",
                "Description": "d" * 513,
                "FindingCriteria": {"Criterion": {"type": {"Eq": ["x"]}}},
            },
            "512",
        ),
        ({"Name": "abc"}, "FindingCriteria: missing"),
        ({"Name": "abc", "FindingCriteria": {"Criterion": {}}}, "at least one attribute"),
        ({"Name": "abc", "FindingCriteria": {"Criterion": {"type": {}}}}, "at least one operator"),
        ({"Name": "abc", "FindingCriteria": {"Criterion": {"type": {"Like": ["x"]}}}}, "unknown operator"),
        (
            {"Name": "abc", "FindingCriteria": {"Criterion": {"severity": {"Equals": [8]}}}},
            "must be a string",
        ),
        ({"Name": "abc", "FindingCriteria": {"Criterion": {"severity": {"Gt": "8"}}}}, "must be an integer"),
        ({"Name": "abc", "FindingCriteria": {"Criterion": {"type": {"Matches": ["a"] * 6}}}}, "at most 5"),
        (
            {"Name": "abc", "FindingCriteria": {"Criterion": {"type": {"Equals": ["a"] * (MAX_VALUES + 1)}}}},
            "at most 50",
        ),
        (
            {
                "Name": "abc",
                "FindingCriteria": {"Criterion": {f"f{i}": {"Eq": ["x"]} for i in range(MAX_ATTRIBUTES + 1)}},
            },
            "at most 50",
        ),
        (
            {
                "Name": "abc",
                "Tags": {"aws:x": "y"},
                "FindingCriteria": {"Criterion": {"type": {"Eq": ["x"]}}},
            },
            "tag key",
        ),
        (
            {"Name": "abc", "Bogus": 1, "FindingCriteria": {"Criterion": {"type": {"Eq": ["x"]}}}},
            "unknown key",
        ),
        ([], "must be a JSON object"),
    ],
)
def test_invalid_filters_are_refused_with_the_reason(doc: Any, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(doc)


def test_the_validator_accepts_what_botocore_models() -> None:
    # GIVEN botocore's GuardDuty model: the keys a CreateFilter request and a Condition may carry
    model = botocore.session.get_session().get_service_model("guardduty")
    condition = set(model.shape_for("Condition").members)
    create = set(model.shape_for("CreateFilterRequest").members)
    got = set(model.shape_for("GetFilterResponse").members)
    # THEN every Condition operator parses, and every CreateFilter / GetFilter key is accepted
    for op in condition:
        arg: Any = ["x"] if model.shape_for("Condition").members[op].type_name == "list" else 1
        assert op in crit({"type": {op: arg}}).criterion["type"]
    doc = {k: None for k in (create | got)}
    doc.update(
        DONE_WHEN,
        Tags={"team": "sec"},
        DetectorId="d",
        ClientToken="t",
        Version=1,
        CreatedAt="x",
        UpdatedAt="y",
    )
    assert parse_filter(doc).tags == {"team": "sec"}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_condition = st.dictionaries(
    st.sampled_from(
        ["Equals", "NotEquals", "Eq", "Gt", "Lte", "Matches", "NotMatches", "GreaterThan", "Bogus"]
    ),
    _json | st.lists(st.text(max_size=8), max_size=3) | st.integers(),
    max_size=3,
)
_filters = st.fixed_dictionaries(
    {},
    optional={
        "Name": st.text(max_size=70) | st.integers(),
        "Action": st.sampled_from(["NOOP", "ARCHIVE", "x"]) | _json,
        "Rank": st.integers(-5, 105) | _json,
        "Description": st.text(max_size=20) | _json,
        "FindingCriteria": st.fixed_dictionaries(
            {"Criterion": st.dictionaries(st.text(max_size=30), _condition | _json, max_size=4)}
        )
        | _json,
        "Tags": st.dictionaries(st.text(max_size=10), st.text(max_size=5) | _json, max_size=3) | _json,
    },
)


@settings(max_examples=400, deadline=None)
@given(doc=_filters | _json, finding=_json)
def test_the_validator_raises_only_filter_error_and_a_valid_filter_matches_anything(
    doc: Any, finding: Any
) -> None:
    # GIVEN any JSON value; WHEN parsed as a filter THEN it is a Filter or a FilterError, and a
    # parsed filter evaluates any document (however shaped) to a boolean without raising
    try:
        f = parse_filter(doc)
    except FilterError:
        return
    assert isinstance(f.matches(finding if isinstance(finding, dict) else {"x": finding}), bool)


@settings(max_examples=200, deadline=None)
@given(exprs=st.lists(st.text(max_size=40), max_size=3))
def test_short_expressions_raise_only_filter_error(exprs: list[str]) -> None:
    try:
        c = parse_expressions(exprs)
    except FilterError:
        return
    assert isinstance(c.matches(PENTEST), bool)


_paths = st.sampled_from(["a", "a.b", "a.b.c", "t.key", "t.value", "n"])
_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from(["x", "y", "8", "true", "2026-12-01T10:00:00Z"])
)
_doc = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "t", "key", "value", "n"]), inner, max_size=3)
    ),
    max_leaves=12,
)
_cond = st.one_of(
    st.fixed_dictionaries(
        {"Equals": st.lists(st.sampled_from(["x", "8", "true", "1796119200000"]), min_size=1, max_size=2)}
    ),
    st.fixed_dictionaries(
        {"NotEquals": st.lists(st.sampled_from(["x", "y", "false"]), min_size=1, max_size=2)}
    ),
    st.fixed_dictionaries({"Matches": st.lists(st.sampled_from(["x*", "?", "*"]), min_size=1, max_size=2)}),
    st.fixed_dictionaries({"Gte": st.integers(-3, 3)}),
    st.fixed_dictionaries({"LessThan": st.integers(-3, 3)}),
)


@settings(max_examples=300, deadline=None)
@given(
    docs=st.lists(_doc, min_size=1, max_size=3),
    specs=st.lists(st.dictionaries(_paths, _cond, min_size=1, max_size=3), min_size=1, max_size=4),
)
def test_the_suppressor_shares_lookups_without_changing_any_verdict(
    docs: list[Any], specs: list[dict[str, Any]]
) -> None:
    # GIVEN rules in rank order; WHEN the suppressor (one lookup cache per finding) decides
    rules = [parse_filter({"Name": f"rule-{i}", "Action": "ARCHIVE", "Rank": i + 1, "FindingCriteria": {"Criterion": c}})
             for i, c in enumerate(specs)]  # fmt: skip
    suppress = Suppressor(rules)
    for d in docs:
        doc = d if isinstance(d, dict) else {"a": d}
        # THEN it names the first rule that matches the finding on its own, uncached
        expected = next((r.name for r in rules if r.matches(doc)), None)
        assert suppress(doc) == expected
