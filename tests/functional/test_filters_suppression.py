"""Filters and suppression rules on moto: the rule store, its change events, suppression at ingest,
and archive / unarchive / feedback racing ingest.

GIVEN FiltersTable created from template.yaml's own properties and the ingest/publish handlers
loaded with the template's environment, WHEN rules change and findings arrive, THEN every change
is on the bus, a new finding matching an ARCHIVE rule is stored archived with the rule's name and
never published, and a person's archive and an ingest update never lose each other.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from handler_harness import (
    EVENTS,
    Aws,
    context,
    ingest_env,
    kinesis_event_for,
    load_handler,
    stream_record,
    template_resources,
)

from vigil.criteria import MAX_FILTERS, parse_filter
from vigil_aws.filters import DETAIL_TYPE, FilterChangeError, FilterStore
from vigil_aws.finding_actions import FindingActionError, FindingActions
from vigil_aws.findings_store import document

pytestmark = pytest.mark.integration  # moto

FILTERS = "FiltersTable"
SUSPICIOUS_TOOL = "Execution:Runtime/SuspiciousTool"
DONE_WHEN = {
    "Name": "pentest-tools",
    "Description": "Authorized penetration tests from instances tagged Role=pentest",
    "Action": "ARCHIVE",
    "Rank": 1,
    "FindingCriteria": {
        "Criterion": {
            "type": {"Equals": [SUSPICIOUS_TOOL]},
            "resource.instanceDetails.tags.key": {"Equals": ["Role"]},
            "resource.instanceDetails.tags.value": {"Equals": ["pentest"]},
        }
    },
}


@pytest.fixture
def filters(aws: Aws) -> FilterStore:
    props = template_resources()[FILTERS]["Properties"]
    aws.client("dynamodb").create_table(
        TableName=FILTERS,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
    )
    return FilterStore(FILTERS, aws.bus_name)


@pytest.fixture
def ingest_with_rules(aws: Aws, filters: FilterStore, monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_handler("ingest_function", {**ingest_env(aws), "FILTERS_TABLE_NAME": FILTERS}, monkeypatch)


def _bus(aws: Aws) -> list[dict[str, Any]]:
    return aws.drain(aws.bus_tap_url)


def _tool_batch(seq: int, tool: str = "hydra") -> tuple[str, bytes]:
    """An agent batch from the recorded web server: one exec of ``tool`` (seq and time moved)."""
    line = json.loads((EVENTS / "agent" / "reverse_shell.ndjson").read_text().splitlines()[0])
    p = line["process"]
    p.update(
        name=tool,
        cmd_line=f"{tool} -l root ssh://198.51.100.3",
        args=[tool, "-l", "root", "ssh://198.51.100.3"],
    )
    p["file"] = {"path": f"/usr/bin/{tool}", "name": tool}
    p["stdin"] = p["stdout"] = p["stderr"] = {"type": "pipe"}
    line["seq"] = seq
    line["time"] += seq * 10**9
    return line["host"]["instance_id"], (json.dumps(line) + "\n").encode()


def _rule(name: str, criterion: dict[str, Any], **extra: Any) -> Any:
    return parse_filter(
        {"Name": name, "Action": "ARCHIVE", "FindingCriteria": {"Criterion": criterion}, **extra}
    )


# -- the store -----------------------------------------------------------------------------------
def test_crud_in_rank_order_and_every_change_on_the_bus(aws: Aws, filters: FilterStore) -> None:
    # GIVEN two rules created out of rank order, one without a rank
    filters.create(parse_filter(dict(DONE_WHEN, Rank=5)))
    filters.create(_rule("scanner-ami", {"resource.instanceDetails.imageId": {"Equals": ["ami-0123"]}}))
    filters.create(_rule("first", {"severity": {"Gte": 9}}, Rank=2))
    # WHEN listed THEN by rank, the unranked one appended after the highest rank
    stored, problems = filters.list_filters()
    assert problems == []
    assert [(s.filter.name, s.filter.rank) for s in stored] == [
        ("first", 2),
        ("pentest-tools", 5),
        ("scanner-ami", 6),
    ]
    # WHEN one is updated and another deleted
    updated = filters.update("first", {"Action": "NOOP", "Rank": 9})
    assert updated.version == 2 and updated.filter.action == "NOOP"
    filters.delete("scanner-ami")
    assert filters.get("scanner-ami") is None
    # THEN five changes reached the bus, each with who and what
    events = [e for e in _bus(aws) if e["detail-type"] == DETAIL_TYPE]
    assert [(e["detail"]["operation"], e["detail"]["name"]) for e in events] == [
        ("CREATE", "pentest-tools"), ("CREATE", "scanner-ami"), ("CREATE", "first"),
        ("UPDATE", "first"), ("DELETE", "scanner-ami"),
    ]  # fmt: skip
    upd = events[3]["detail"]
    assert upd["before"]["Action"] == "ARCHIVE" and upd["after"]["Action"] == "NOOP"
    assert upd["after"]["Rank"] == 9 and upd["before"]["Rank"] == 2
    assert events[4]["detail"]["after"] is None and events[4]["detail"]["before"]["Name"] == "scanner-ami"
    assert all("arn:aws:" in e["detail"]["who"] for e in events)  # STS caller identity (moto's)


def test_get_filter_output_round_trips(filters: FilterStore) -> None:
    # GIVEN a rule created; WHEN its GetFilter-shaped JSON is imported under another name
    got = filters.create(parse_filter(DONE_WHEN)).to_json()
    assert got["Version"] == 1 and got["CreatedAt"]
    copy = filters.create(parse_filter(dict(got, Name="pentest-tools-2")))
    # THEN the criteria are the same
    assert copy.filter.criteria.criterion == parse_filter(DONE_WHEN).criteria.criterion


def test_refusals_say_why(filters: FilterStore) -> None:
    filters.create(parse_filter(DONE_WHEN))
    with pytest.raises(FilterChangeError, match="already exists"):
        filters.create(parse_filter(DONE_WHEN))
    with pytest.raises(FilterChangeError, match="no filter named"):
        filters.update("nope", {"Action": "NOOP"})
    with pytest.raises(FilterChangeError, match="no filter named"):
        filters.delete("nope")
    with pytest.raises(FilterChangeError, match="cannot be renamed"):
        filters.update("pentest-tools", {"Name": "other"})


def test_at_most_one_hundred_filters(filters: FilterStore) -> None:
    # GIVEN 100 filters (GuardDuty's limit per account and Region)
    for i in range(MAX_FILTERS):
        filters.create(_rule(f"rule-{i:03d}", {"severity": {"Gte": 1}}, Rank=1 + i % 100))
    # WHEN a 101st is created THEN it is refused, and after a delete it fits
    with pytest.raises(FilterChangeError, match="at most 100"):
        filters.create(_rule("one-too-many", {"severity": {"Gte": 1}}, Rank=1))
    filters.delete("rule-000")
    filters.create(_rule("one-too-many", {"severity": {"Gte": 1}}, Rank=1))
    assert len(filters.list_filters()[0]) == MAX_FILTERS


def test_a_change_that_cannot_be_published_is_undone(aws: Aws, filters: FilterStore) -> None:
    # GIVEN a store whose bus does not exist (put_events fails)
    broken = FilterStore(FILTERS, "no-such-bus")
    # WHEN a rule is created THEN the error says it was undone, and the rule is not in force
    with pytest.raises(FilterChangeError, match="undone"):
        broken.create(parse_filter(DONE_WHEN))
    assert filters.get("pentest-tools") is None
    # AND an update that cannot be published leaves the old rule in force
    filters.create(parse_filter(DONE_WHEN))
    with pytest.raises(FilterChangeError, match="undone"):
        broken.update("pentest-tools", {"Action": "NOOP"})
    kept = filters.get("pentest-tools")
    assert kept is not None and kept.filter.action == "ARCHIVE"
    with pytest.raises(FilterChangeError, match="undone"):
        broken.delete("pentest-tools")
    assert filters.get("pentest-tools") is not None


# -- suppression at ingest -----------------------------------------------------------------------
def test_a_matching_new_finding_is_stored_archived_with_the_rule_and_never_published(
    aws: Aws, filters: FilterStore, ingest_with_rules: Any, publish: Any
) -> None:
    # GIVEN an ARCHIVE rule for hydra on the recorded web server
    instance, data = _tool_batch(1000)
    filters.create(
        _rule(
            "hydra-on-web",
            {"type": {"Equals": [SUSPICIOUS_TOOL]}, "resource.instanceDetails.instanceId": {"Equals": [instance]},
             "service.runtimeDetails.context.toolName": {"Equals": ["hydra"]}},
        )
    )  # fmt: skip
    _bus(aws)  # the CREATE event
    # WHEN ingest sees a hydra exec there, and a nikto exec (no rule)
    event = kinesis_event_for([(instance, data), _tool_batch(1001, "nikto")])
    assert ingest_with_rules.handler(event, context("IngestFunction")) == {"batchItemFailures": []}
    found = {f["type"] + "|" + json.loads(f["finding"])["service"]["runtimeDetails"]["context"]["toolName"]: f
             for f in aws.findings().values()}  # fmt: skip
    hydra, nikto = found[f"{SUSPICIOUS_TOOL}|hydra"], found[f"{SUSPICIOUS_TOOL}|nikto"]
    # THEN the hydra finding is stored, ARCHIVED, with the rule's name (attribute and document)
    assert hydra["status"] == "ARCHIVED" and hydra["suppressedBy"] == "hydra-on-web"
    doc = json.loads(hydra["finding"])
    assert doc["service"]["archived"] is True
    assert json.loads(doc["service"]["additionalInfo"]["value"])["suppressedBy"] == "hydra-on-web"
    assert nikto["status"] == "ACTIVE" and "suppressedBy" not in nikto
    # AND only the nikto finding reaches the bus
    records = [stream_record("INSERT", aws.raw_item(f["id"])) for f in (hydra, nikto)]
    publish.handler({"Records": records}, context("PublishFunction"))
    published = [e["detail"]["service"]["runtimeDetails"]["context"]["toolName"] for e in _bus(aws)]
    assert published == ["nikto"]


def test_the_done_when_guardduty_filter_archives_suspicious_tool_on_pentest_instances(
    aws: Aws, filters: FilterStore, ingest_with_rules: Any, publish: Any
) -> None:
    # GIVEN the GuardDuty filter JSON of the issue, imported as is
    filters.create(parse_filter(DONE_WHEN))
    _bus(aws)
    # AND the instance-details enrichment (another step of the pipeline, which runs before
    # suppression) stood in for here: it tags the recorded web server Role=pentest
    ingestor = ingest_with_rules.ingestor
    real_current = ingestor.suppression.current

    def enriched_then_rules() -> Any:
        rules = real_current()

        def suppress(doc: dict[str, Any]) -> Any:
            doc["resource"]["instanceDetails"]["tags"] = [{"key": "Role", "value": "pentest"}]
            return rules(doc)

        return suppress

    ingestor.suppression.current = enriched_then_rules
    # WHEN hydra runs there
    instance, data = _tool_batch(2000)
    ingest_with_rules.handler(kinesis_event_for([(instance, data)]), context("IngestFunction"))
    # THEN the finding is archived by the rule, and not published
    [item] = aws.findings().values()
    assert item["type"] == SUSPICIOUS_TOOL and item["status"] == "ARCHIVED"
    assert item["suppressedBy"] == "pentest-tools"
    publish.handler(
        {"Records": [stream_record("INSERT", aws.raw_item(item["id"]))]}, context("PublishFunction")
    )
    assert _bus(aws) == []


def test_ingest_sees_a_rule_change_within_the_check_period_for_one_small_read(
    aws: Aws, filters: FilterStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN ingest's rules on a fake clock, read once (none yet)
    handler = load_handler("ingest_function", {**ingest_env(aws), "FILTERS_TABLE_NAME": FILTERS}, monkeypatch)
    now = [1_000.0]
    rules = handler.ingestor.suppression
    rules.clock = lambda: now[0]
    assert not rules.current()
    scans = []
    real_list = filters.list_filters
    rules.store.list_filters = lambda: scans.append(1) or real_list()  # type: ignore[method-assign]
    # WHEN nothing changes THEN later checks do not read the table whole
    now[0] += 6
    assert not rules.current() and scans == []
    # WHEN a rule is created THEN ingest sees it at the next check, not before
    filters.create(_rule("all", {"severity": {"Gte": 1}}))
    now[0] += 1
    assert not rules.current()
    now[0] += 5
    assert [r.name for r in rules.current().rules] == ["all"] and scans == [1]
    # AND an update and a delete are seen the same way
    filters.update("all", {"Action": "NOOP"})
    now[0] += 5
    assert not rules.current() and scans == [1, 1]


def test_a_rule_that_no_longer_parses_is_skipped_with_its_reason(aws: Aws, filters: FilterStore) -> None:
    # GIVEN a good rule and an item someone wrote by hand that is not a filter
    filters.create(_rule("good", {"severity": {"Gte": 1}}))
    aws.client("dynamodb").put_item(
        TableName=FILTERS, Item={"name": {"S": "bad"}, "filter": {"S": '{"Name":"bad","FindingCriteria":{}}'}}
    )
    # WHEN listed THEN the good one is in force and the bad one reported
    stored, problems = filters.list_filters()
    assert [s.filter.name for s in stored] == ["good"]
    assert len(problems) == 1 and "bad" in problems[0] and "Criterion" in problems[0]


# -- archive / unarchive / feedback --------------------------------------------------------------
def test_archive_and_an_ingest_update_never_lose_each_other(
    aws: Aws, filters: FilterStore, ingest_with_rules: Any, publish: Any
) -> None:
    # GIVEN a finding ingested (the ingest container caches its revision)
    instance, data = _tool_batch(3000)
    ingest_with_rules.handler(kinesis_event_for([(instance, data)]), context("IngestFunction"))
    [item] = aws.findings().values()
    fid = item["id"]
    # WHEN a person archives it, and then the same ingest container applies a new occurrence
    actions = FindingActions(aws.client("dynamodb"), aws.findings_table)
    assert actions.archive([fid], "arn:aws:iam::123456789012:user/analyst").done == [fid]
    before = aws.raw_item(fid)
    _, later = _tool_batch(3001)
    ingest_with_rules.handler(kinesis_event_for([(instance, later)], first_seq=9), context("IngestFunction"))
    # THEN both stand: still archived by the analyst, and the occurrence counted
    after = aws.findings()[fid]
    assert after["status"] == "ARCHIVED" and after["archiveSource"] == "MANUAL"
    assert after["archivedBy"].endswith("user/analyst") and after["count"] == 2
    # AND the recurrence is published (GuardDuty publishes recurrences of findings archived by hand)
    _bus(aws)
    publish.handler(
        {"Records": [stream_record("MODIFY", aws.raw_item(fid), before)]}, context("PublishFunction")
    )
    [event] = _bus(aws)
    assert event["detail"]["service"]["archived"] is True and event["detail"]["service"]["count"] == 2


def test_archive_unarchive_and_feedback_are_not_published(
    aws: Aws, filters: FilterStore, ingest_with_rules: Any, publish: Any
) -> None:
    instance, data = _tool_batch(4000)
    ingest_with_rules.handler(kinesis_event_for([(instance, data)]), context("IngestFunction"))
    [fid] = aws.findings()
    actions = FindingActions(aws.client("dynamodb"), aws.findings_table)
    records = []
    for act in (
        lambda: actions.archive([fid], "a"),
        lambda: actions.unarchive([fid], "a"),
        lambda: actions.feedback([fid], "NOT_USEFUL", "a", "pentest window"),
    ):
        old = aws.raw_item(fid)
        act()
        records.append(stream_record("MODIFY", aws.raw_item(fid), old))
    # WHEN their stream records reach PublishFunction THEN nothing is put on the bus
    publish.handler({"Records": records}, context("PublishFunction"))
    assert _bus(aws) == []
    # AND the finding is active again, with the feedback as GuardDuty's userFeedback
    from vigil_aws.findings_store import document

    item = aws.findings()[fid]
    assert item["status"] == "ACTIVE" and "archiveSource" not in item
    assert item["feedback"] == "NOT_USEFUL" and item["feedbackComment"] == "pentest window"
    assert document(item)["service"]["userFeedback"] == "NOT_USEFUL"


def test_actions_refuse_bad_input_and_report_missing_findings(aws: Aws) -> None:
    actions = FindingActions(aws.client("dynamodb"), aws.findings_table)
    assert actions.archive(["0" * 32], "a").missing == ["0" * 32]
    with pytest.raises(FindingActionError, match="at most 50"):
        actions.archive([f"{i:032x}" for i in range(51)], "a")
    with pytest.raises(FindingActionError, match="not a finding id"):
        actions.unarchive(["[/]\x1b"], "a")
    with pytest.raises(FindingActionError, match="USEFUL or NOT_USEFUL"):
        actions.feedback(["0" * 32], "MEH", "a")
    with pytest.raises(FindingActionError, match="at most 1024"):
        actions.feedback(["0" * 32], "USEFUL", "a", "x" * 1025)


def test_archive_and_feedback_are_reflected_in_security_hub_when_the_stack_imports_there(
    aws: Aws, filters: FilterStore, ingest_with_rules: Any
) -> None:
    """With SecurityHubImport, each action is mirrored on the imported finding with
    BatchUpdateFindings (moto has none: botocore's Stubber checks each request against the model);
    a refusal there is reported, and the action in Vigil stands."""
    from botocore.stub import Stubber

    from vigil_aws.securityhub import workflow_update

    instance, data = _tool_batch(4100)
    ingest_with_rules.handler(kinesis_event_for([(instance, data)]), context("IngestFunction"))
    [fid] = aws.findings()
    arn = document(aws.findings()[fid])["arn"]
    hub = aws.client("securityhub")
    actions = FindingActions(aws.client("dynamodb"), aws.findings_table, securityhub=hub)
    with Stubber(hub) as stub:
        for req in (
            workflow_update(arn, archived=True),
            workflow_update(arn, archived=True, feedback="NOT_USEFUL", comment="scanner <!channel>"),
        ):
            stub.add_response(
                "batch_update_findings",
                {"ProcessedFindings": req["FindingIdentifiers"], "UnprocessedFindings": []},
                req,
            )
        stub.add_response(
            "batch_update_findings",
            {
                "ProcessedFindings": [],
                "UnprocessedFindings": [
                    {
                        "FindingIdentifier": workflow_update(arn, archived=False)["FindingIdentifiers"][0],
                        "ErrorCode": "FindingNotFound",
                        "ErrorMessage": "never imported",
                    }
                ],
            },
            workflow_update(arn, archived=False),
        )
        assert actions.archive([fid], "a").unreflected == []
        assert actions.feedback([fid], "NOT_USEFUL", "a", "scanner <!channel>").unreflected == []
        result = actions.unarchive([fid], "a")
        stub.assert_no_pending_responses()
    assert result.done == [fid] and result.unreflected == [
        (fid, "Security Hub: FindingNotFound never imported")
    ]
    assert aws.findings()[fid]["status"] == "ACTIVE"  # Vigil's own action stands
