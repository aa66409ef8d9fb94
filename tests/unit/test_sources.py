"""AWS-delivered sources: the three normalizers (total, bounded) and the CloudWatch Logs / EventBridge
envelope on the ingest path, end to end into GuardDuty-shaped EC2 findings."""

from __future__ import annotations

import gzip
import json

import pytest
from guardduty_shape import validate
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil import events as ev
from vigil.normalize.cloudtrail import normalize_cloudtrail_record
from vigil.normalize.common import Rejection
from vigil.normalize.resolver import normalize_resolver_record
from vigil.normalize.vpcflow import FlowFormat, FormatError, normalize_flow_line
from vigil.pipeline import Pipeline
from vigil.sources import SourceConfig, decode_source_record, subscription_record
from vigil.state import InMemoryState

V2 = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
V5_FORMAT = (
    "${version} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${account-id} ${type} ${srcaddr} ${dstaddr} "
    "${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} ${protocol} ${bytes} ${packets} ${start} ${end} ${action} "
    "${tcp-flags} ${log-status} ${flow-direction}"
)
V5 = (
    "5 vpc-0a1b2c3d subnet-0a1b2c3d i-0123456789abcdef0 eni-0a1b2c3d4e5f60718 123456789012 IPv4 198.51.100.7 "
    "10.0.0.12 51000 22 198.51.100.7 10.0.0.12 6 5400 12 1764000000 1764000060 ACCEPT 2 OK ingress"
)
RESOLVER = {
    "srcaddr": "10.0.0.12",
    "vpc_id": "vpc-0a1b2c3d",
    "answers": [{"Rdata": "203.0.113.9", "Type": "A", "Class": "IN"}],
    "query_name": "Example.COM.",
    "query_class": "IN",
    "srcids": {"instance": "i-0123456789abcdef0"},
    "rcode": "NOERROR",
    "query_type": "A",
    "transport": "UDP",
    "version": "1.100000",
    "account_id": "123456789012",
    "srcport": "56067",
    "query_timestamp": "2025-11-24T16:00:00Z",
    "region": "us-east-1",
}
TRAIL = {
    "eventVersion": "1.09",
    "userIdentity": {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEID:i-0123456789abcdef0",
        "arn": "arn:aws:sts::123456789012:assumed-role/web/i-0123456789abcdef0",
        "accountId": "123456789012",
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::123456789012:role/web"},
                           "ec2RoleDelivery": "2.0"},
    },
    "eventTime": "2025-11-24T16:00:00Z",
    "eventSource": "s3.amazonaws.com",
    "eventName": "ListBuckets",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "198.51.100.9",
    "userAgent": "aws-cli/2.15",
    "eventID": "0b1c2d3e-0000-4000-8000-000000000001",
    "eventType": "AwsApiCall",
    "recipientAccountId": "123456789012",
}  # fmt: skip


def test_a_default_v2_record_becomes_a_network_flow() -> None:
    # GIVEN the default-format record of an SSH connection to a public host
    # WHEN it is normalized
    f = normalize_flow_line(V2)
    # THEN it is an OCSF Network Activity with the record's fields and an inferred direction
    assert isinstance(f, ev.NetworkFlow) and f.class_uid == 4001 and f.kind == "vpc_flow"
    assert (f.src_endpoint.ip, f.src_endpoint.port, f.dst_endpoint.ip, f.dst_endpoint.port) == (
        "172.31.16.139", 20641, "203.0.113.21", 22,
    )  # fmt: skip
    assert (f.protocol_name, f.packets, f.bytes, f.action, f.direction) == (
        "tcp",
        20,
        4249,
        "ACCEPT",
        "Outbound",
    )
    assert f.device.instance_uid == "eni-1235b8ca123456789"  # v2 names no instance
    assert f.time == 1418530010 * 10**9


def test_a_custom_v5_format_gives_instance_direction_and_flags() -> None:
    f = normalize_flow_line(V5, FlowFormat.parse(V5_FORMAT))
    assert isinstance(f, ev.NetworkFlow)
    assert (f.device.instance_uid, f.direction, f.tcp_flags, f.local_ip) == (
        "i-0123456789abcdef0", "Inbound", 2, "10.0.0.12",
    )  # fmt: skip
    assert (f.vpc_uid, f.subnet_uid) == ("vpc-0a1b2c3d", "subnet-0a1b2c3d")


def test_the_interface_map_names_the_instance_of_a_v2_record() -> None:
    fmt = FlowFormat(interfaces={"eni-1235b8ca123456789": "i-0123456789abcdef0"})
    f = normalize_flow_line(V2, fmt)
    assert isinstance(f, ev.NetworkFlow) and f.device.instance_uid == "i-0123456789abcdef0"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA", "NODATA"),
        ("2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - SKIPDATA", "SKIPDATA"),
        (" ".join(FlowFormat().fields), "header"),
        ("   ", "blank"),
    ],
)
def test_lines_without_a_flow_are_skipped_with_their_reason(line: str, why: str) -> None:
    assert normalize_flow_line(line) == why


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ((5, "70000"), "srcport"),
        ((3, "not-an-ip"), "srcaddr"),
        ((7, "300"), "protocol"),
        ((10, "1"), "start"),
        ((11, "1418530000"), "end"),
        ((12, "MAYBE"), "action"),
        ((2, "eni-\x1b[2J"), "interface-id"),
        ((1, "12345"), "account-id"),
        ((13, "BROKEN"), "log-status"),
    ],
)
def test_a_bad_field_rejects_the_line_with_a_reason_naming_it(change: tuple[int, str], field: str) -> None:
    tokens = V2.split()
    tokens[change[0]] = change[1]
    got = normalize_flow_line(" ".join(tokens), number=7)
    assert isinstance(got, Rejection) and got.line == 7 and got.source == "vpcflow"
    assert field in got.reason, got.reason


@pytest.mark.parametrize(
    "spec", ["", "${version} ${srcaddr}", "${srcaddr} ${srcaddr}", "${src addr}", "${Bad!}"]
)
def test_an_unusable_format_is_refused_once_with_its_reason(spec: str) -> None:
    with pytest.raises(FormatError):
        FlowFormat.parse(spec)


def test_a_resolver_record_becomes_dns_activity_of_its_own_kind() -> None:
    d = normalize_resolver_record(json.dumps(RESOLVER))
    assert isinstance(d, ev.DnsActivity) and d.class_uid == 4003
    # resolver_query, not dns_query: the runtime (process-attributed) types never read it
    assert d.kind == "resolver_query" and d.process is None
    assert (d.query.hostname, d.rcode, d.answers[0].rdata, d.device.instance_uid) == (
        "example.com", "NOERROR", "203.0.113.9", "i-0123456789abcdef0",
    )  # fmt: skip


def test_a_resolver_query_from_no_instance_is_skipped_and_a_bad_one_rejected() -> None:
    onprem = dict(RESOLVER, srcids={"resolver_endpoint": "rslvr-in-0123"})
    assert normalize_resolver_record(json.dumps(onprem)) == "no instance"
    bad = normalize_resolver_record(json.dumps(dict(RESOLVER, srcport="99999")))
    assert isinstance(bad, Rejection) and "srcport" in bad.reason
    bad = normalize_resolver_record(json.dumps(dict(RESOLVER, query_timestamp="yesterday")))
    assert isinstance(bad, Rejection)


def test_cloudtrail_trail_record_and_eventbridge_event_give_the_same_activity() -> None:
    bridge = {
        "version": "0",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "detail": TRAIL,
    }
    a = normalize_cloudtrail_record(json.dumps(TRAIL))
    b = normalize_cloudtrail_record(json.dumps(bridge))
    assert isinstance(a, ev.ApiActivity) and a == b and a.class_uid == 6003 and a.kind == "api_call"
    assert a.instance_credentials and a.device.instance_uid == "i-0123456789abcdef0"
    other = dict(bridge, **{"detail-type": "EC2 Instance State-change Notification"})
    assert normalize_cloudtrail_record(json.dumps(other)) == "not a CloudTrail API call"


NORMALIZERS = [
    lambda x: normalize_flow_line(x),
    lambda x: normalize_flow_line(x, FlowFormat.parse(V5_FORMAT)),
    normalize_resolver_record,
    normalize_cloudtrail_record,
]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048), which=st.integers(0, 3))
def test_every_normalizer_is_total_on_arbitrary_bytes(data: bytes, which: int) -> None:
    got = NORMALIZERS[which](data)
    assert isinstance(got, ev.NetworkFlow | ev.DnsActivity | ev.ApiActivity | Rejection | str)


@settings(max_examples=300, deadline=None)
@given(i=st.integers(0, 21), value=st.text(max_size=40))
def test_a_mutated_v5_field_never_raises(i: int, value: str) -> None:
    tokens = V5.split()
    tokens[i] = value or "-"
    got = normalize_flow_line(" ".join(tokens), FlowFormat.parse(V5_FORMAT))
    assert isinstance(got, ev.NetworkFlow | Rejection | str)


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(sorted(RESOLVER)),
    value=st.one_of(st.text(max_size=30), st.integers(), st.none(), st.lists(st.integers(), max_size=3)),
)
def test_a_mutated_resolver_record_never_raises(key: str, value: object) -> None:
    got = normalize_resolver_record(json.dumps(dict(RESOLVER, **{key: value})))
    assert isinstance(got, ev.DnsActivity | Rejection | str)


# --- the envelope on the ingest path -------------------------------------------------------------
GROUPS = SourceConfig.parse('{"/vigil/flow": "vpcflow", "/vigil/dns": "resolver"}', owner="123456789012")


def _scan_lines(n: int) -> list[str]:
    return [
        f"2 123456789012 eni-0a1b2c3d4e5f60718 10.0.0.12 203.0.113.50 {40000 + i} {1 + i} 6 1 60 1764000000 1764000060 ACCEPT OK"
        for i in range(n)
    ]


def test_a_subscription_record_raises_an_ec2_finding_valid_for_guardduty_tooling() -> None:
    # GIVEN a CloudWatch Logs subscription record of a flow-log group with a port scan, one
    # malformed line and a NODATA line among them
    lines = _scan_lines(30)
    lines.insert(3, "garbage")
    lines.append("2 123456789012 eni-0a1b2c3d4e5f60718 - - - - - - - 1764000000 1764000060 - NODATA")
    # WHEN the pipeline processes it as a sources-stream record
    r = Pipeline.default().process_source_record(
        subscription_record("/vigil/flow", lines), InMemoryState(), GROUPS
    )
    # THEN the bad line alone is dead-lettered with its position, and the scan is found
    assert [(x.line, x.source) for x in r.rejected] == [(4, "vpcflow")]
    assert r.events == 30 and r.ranges == {}
    [occ] = r.occurrences
    f = occ.finding
    assert f["type"] == "Recon:EC2/Portscan" and f["service"]["resourceRole"] == "ACTOR"
    assert "runtimeDetails" not in f["service"]
    assert f["service"]["action"]["networkConnectionAction"]["remoteIpDetails"] == {
        "ipAddressV4": "203.0.113.50"
    }
    assert validate(f) == []


def test_every_event_of_a_record_has_its_own_stable_seq() -> None:
    data = subscription_record("/vigil/flow", _scan_lines(50))
    a = decode_source_record(data, GROUPS).events
    b = decode_source_record(data, GROUPS).events
    assert (
        [e.seq for e in a] == [e.seq for e in b]
        and len({e.seq for e in a}) == 50
        and min(e.seq for e in a) >= 1
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (subscription_record("/vigil/flow", _scan_lines(2), owner="999999999999"), "is not this account"),
        (subscription_record("/other/group", _scan_lines(2)), "is not a configured source"),
        (gzip.compress(b'{"messageType": "SURPRISE"}'), "is not DATA_MESSAGE"),
        (b"\x1f\x8b not gzip at all", "not a CloudWatch Logs or EventBridge record"),
        (gzip.compress(b"[1, 2, 3]"), "not a CloudWatch Logs subscription record"),
    ],
)
def test_a_record_that_is_not_a_configured_subscription_is_rejected_whole(data: bytes, reason: str) -> None:
    r = Pipeline.default().process_source_record(data, InMemoryState(), GROUPS)
    assert r.events == 0 and [x.line for x in r.rejected] == [0]
    assert reason in r.rejected[0].reason


def test_a_control_message_is_skipped_and_an_eventbridge_cloudtrail_event_is_read() -> None:
    control = gzip.compress(json.dumps({"messageType": "CONTROL_MESSAGE", "logEvents": []}).encode())
    assert decode_source_record(control, GROUPS).skipped == {"control message": 1}
    bridge = json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": TRAIL}).encode()
    [e] = decode_source_record(bridge, GROUPS).events
    assert isinstance(e, ev.ApiActivity) and e.seq >= 1


def test_a_resolver_group_feeds_the_resolver_normalizer() -> None:
    msgs = [json.dumps(RESOLVER), "{not json"]
    out = decode_source_record(subscription_record("/vigil/dns", msgs), GROUPS)
    assert [type(e).__name__ for e in out.events] == ["DnsActivity"]
    assert [(x.line, x.source) for x in out.rejections] == [(2, "resolver")]


@pytest.mark.parametrize(
    "spec", ['{"g": "nope"}', "[1]", "{", '{"g": {"source": "vpcflow", "format": "${srcaddr}"}}']
)
def test_a_bad_sources_configuration_is_refused_with_its_reason(spec: str) -> None:
    with pytest.raises(ValueError, match="log sources"):
        SourceConfig.parse(spec)
