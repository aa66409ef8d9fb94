"""An agent with no sensor at all (no root, no eBPF object, no native library) still reports, and
the ingest records "no sensor active" explicitly (issue 13, item 9).

GIVEN the heartbeat line such an agent writes, in which ``sensors_active`` is absent (the wire
omits fields at their default: absent means ``[]``, docs/wire-format.md), WHEN IngestFunction
handles it, THEN the instance's coverage row lists no active sensor, as an explicit empty list,
and every unavailable sensor with its reason.
"""

from __future__ import annotations

from typing import Any

from handler_harness import Aws, context, kinesis_event_for

from vigil import sample as s
from vigil import wire
from vigil_aws.findings_store import plain

INSTANCE = "i-0b1c2d3e4f5a60003"
WHY = {
    "audit": "audit netlink: Operation not permitted (needs CAP_AUDIT_CONTROL)",
    "ebpf": "vigil.bpf.o is missing (build it with `make agent-bpf`); exec/connect/accept come from audit",
    "dns": "AF_PACKET: Operation not permitted (needs CAP_NET_RAW)",
}


def test_a_heartbeat_with_no_active_sensor_is_recorded_as_an_explicit_empty_list(
    aws: Aws, ingest: Any
) -> None:
    hb = wire.Heartbeat(
        time=s.T0,
        seq=1,
        host=wire.Host(instance_id=INSTANCE, account_id="123456789012", region="us-east-1"),
        agent_version="0.1.0",
        sensors_active=[],
        sensors_unavailable=WHY,
    )
    line = wire.encode_event(hb)
    assert b"sensors_active" not in line  # what the agent sends: the field at its default is omitted
    response = ingest.handler(kinesis_event_for([(INSTANCE, line + b"\n")]), context("IngestFunction"))
    assert response == {"batchItemFailures": []}
    (row,) = [
        plain(i)
        for i in aws.client("dynamodb").scan(TableName=aws.coverage_table)["Items"]
        if "usageOf" not in i
    ]
    assert row["instanceId"] == INSTANCE
    assert row["sensorsActive"] == []
    assert row["sensorsUnavailable"] == WHY
