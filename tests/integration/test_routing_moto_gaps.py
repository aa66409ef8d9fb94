"""The moto 5.2.5 gaps behind local/routing.py (the offline stand-in for API destinations),
asserted on moto as shipped: each test fails the day moto closes its gap.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from local.routing import LoopbackReceiver  # noqa: E402

pytestmark = pytest.mark.integration
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def test_moto_cloudformation_does_not_model_connections_or_api_destinations() -> None:
    from moto.cloudformation.parsing import get_model_map

    modelled = set(get_model_map())
    assert "AWS::Events::Connection" not in modelled and "AWS::Events::ApiDestination" not in modelled


def test_moto_invokes_an_api_destination_without_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN moto's opt-in HTTP delivery to API destinations, pointed at a loopback receiver
    monkeypatch.setenv("MOTO_EVENTS_INVOKE_HTTP", "true")
    receiver = LoopbackReceiver()
    try:
        events = boto3.client("events", region_name=REGION)
        conn = events.create_connection(
            Name="c",
            AuthorizationType="API_KEY",
            AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "X-Key", "ApiKeyValue": "v"}},
        )["ConnectionArn"]
        dest = events.create_api_destination(
            Name="d", ConnectionArn=conn, InvocationEndpoint=receiver.url("/hook"), HttpMethod="POST"
        )["ApiDestinationArn"]
        events.put_rule(Name="r", EventPattern=json.dumps({"source": ["vigil"]}))
        events.put_targets(
            Rule="r",
            Targets=[
                {
                    "Id": "t",
                    "Arn": dest,
                    "RoleArn": "arn:aws:iam::123456789012:role/r",
                    "InputTransformer": {"InputPathsMap": {"b": "$.detail.slack"}, "InputTemplate": "<b>"},
                }
            ],
        )
        # WHEN a matching event is put
        events.put_events(
            Entries=[{"Source": "vigil", "DetailType": "x", "Detail": json.dumps({"slack": {"text": "hi"}})}]
        )
        # THEN the destination is called, but with no body and no connection header (the gap)
        [got] = receiver.received
        assert got.path == "/hook" and got.body == b"" and "X-Key" not in got.headers
    finally:
        receiver.close()
