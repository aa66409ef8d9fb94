"""Small, documented fixes for moto 5.2.5 gaps that the offline stack needs.

Each patch closes one gap, is applied by its own function, and has a test in
tests/integration/test_moto_gaps.py that fails if moto changes the behaviour it works around
(then the patch can go). ``apply_all`` applies them once per process; ``restore_all`` puts
moto back as it was (tests of moto's own behaviour run in the same process).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import Any

from local import response_patches
from local.runtime import LocalRuntime, result_json

_MISSING = object()
_originals: dict[tuple[Any, str], Any] = {}  # (class, attribute) -> what moto had (its __dict__ entry)
_applied: dict[str, Any] = {}


def _set(owner: Any, name: str, value: Any) -> None:
    """Replace ``owner.name``, remembering moto's original once (for restore_all)."""
    _originals.setdefault((owner, name), owner.__dict__.get(name, _MISSING))
    setattr(owner, name, value)


def _original(owner: Any, name: str) -> Any:
    """moto's own implementation (bound through the class), even after a patch."""
    saved = _originals.get((owner, name), _MISSING)
    return getattr(owner, name) if saved is _MISSING else saved


def in_process_lambda(runtime: LocalRuntime) -> None:
    """Gap: moto runs Lambda code only in Docker (``error running docker`` otherwise).

    ``LambdaFunction._invoke_lambda`` is what ``lambda.invoke``, Step Functions Lambda tasks and
    moto's own event-source mappings call; here it runs the handler in this process.
    """
    from moto.awslambda.models import LambdaFunction

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        inv = runtime.invoke(self, event if event is not None else {})
        return result_json(inv), inv.errored, inv.logs

    _set(LambdaFunction, "_invoke_lambda", _invoke_lambda)


def stream_mappings_by_pollers() -> None:
    """Gap: moto delivers Kinesis and DynamoDB-stream records to Lambda *synchronously inside the
    write that produced them*, one Kinesis record per invocation, ignoring BatchSize,
    batchItemFailures, bisection, retries and on-failure destinations.

    Synchronous delivery also nests invocations (IngestFunction's UpdateItem would run
    PublishFunction inside it). Both send paths become no-ops; ``local.pollers`` reads the streams
    through the public GetRecords API and invokes functions the way Lambda's pollers do. The
    DynamoDB path must return a falsy value so moto keeps the stream records for GetRecords.
    """
    from moto.awslambda.models import LambdaBackend

    def send_kinesis_message(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def send_dynamodb_items(self: Any, *args: Any, **kwargs: Any) -> str:
        return ""

    _set(LambdaBackend, "send_kinesis_message", send_kinesis_message)
    _set(LambdaBackend, "send_dynamodb_items", send_dynamodb_items)


def eventbridge_lambda_and_sfn_targets(runtime: LocalRuntime) -> None:
    """Gap: an EventBridge rule whose target is a Lambda function, a state machine or a Kinesis
    stream makes ``put_events`` raise ``NotImplementedError`` (HTTP 500), failing the whole call.

    Lambda targets are invoked asynchronously (as EventBridge does) in a thread; state machine
    targets start an execution in the executing Step Functions backend; Kinesis targets put the
    event on the stream (the CloudTrail rule onto SourcesStream). Every other target type
    still goes through moto's own ``send_to_targets``. Honours ``Input`` and ``InputPath`` for our
    targets (InputTransformer is handled by moto for its own targets only).
    """
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original: Callable[..., None] = _original(Rule, "send_to_targets")

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in ("lambda", "states", "kinesis")]
        others = [t for t in self.targets if t not in ours]
        if ours and self.event_pattern.matches_event(original_event):
            event = _event_for_target(original_event)
            for target in ours:
                payload = _target_input(target, event)
                arn = parse_arn(target["Arn"])
                if arn.service == "lambda":
                    _invoke_async(runtime, self.account_id, arn.region, target["Arn"], payload)
                elif arn.service == "kinesis":
                    _put_on_stream(self.account_id, arn.region, target, payload)
                else:
                    _start_execution(self.account_id, arn.region, target["Arn"], payload)
        if others:
            rest = copy.copy(self)
            rest.targets = others
            original(rest, original_event, transform_input)

    _set(Rule, "send_to_targets", send_to_targets)


def _event_for_target(event: dict[str, Any]) -> dict[str, Any]:
    from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp

    out = dict(event)
    if isinstance(out.get("time"), int | float):
        out["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(float(out["time"])))
    return out


def _target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    path = target.get("InputPath")
    if path and path != "$":
        node: Any = event
        for part in path.removeprefix("$.").split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node
    return event


def _invoke_async(runtime: LocalRuntime, account: str, region: str, arn: str, payload: Any) -> None:
    from moto.awslambda.models import lambda_backends

    fn = lambda_backends[account][region].get_function(arn)
    threading.Thread(
        target=runtime.invoke, args=(fn, payload), name=f"eb->{fn.function_name}", daemon=True
    ).start()


def _put_on_stream(account: str, region: str, target: dict[str, Any], payload: Any) -> None:
    """A Kinesis target: the event JSON is the record's data; the partition key is
    ``KinesisParameters.PartitionKeyPath`` of the event (else the event id), as EventBridge does."""
    import base64

    from moto.kinesis import kinesis_backends

    key: Any = payload.get("id", "event") if isinstance(payload, dict) else "event"
    path = (target.get("KinesisParameters") or {}).get("PartitionKeyPath", "")
    if path.startswith("$.") and isinstance(payload, dict):
        node: Any = payload
        for part in path[2:].split("."):
            node = node.get(part) if isinstance(node, dict) else None
        key = node if isinstance(node, str) and node else key
    stream = kinesis_backends[account][region].describe_stream(stream_arn=target["Arn"], stream_name=None)
    data = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    stream.put_record(partition_key=str(key)[:256], explicit_hash_key="", data=data)


def _start_execution(account: str, region: str, arn: str, payload: Any) -> None:
    import uuid

    from moto.stepfunctions.responses import get_backend

    # Always pass a name: without one moto's execution ARN ends in ":None" (toolchain.md §3a).
    get_backend(account, region).start_execution(
        arn, name=str(uuid.uuid4()), execution_input=json.dumps(payload)
    )


def _api_logging(cfn: Any) -> dict[str, Any] | None:
    """CloudFormation's LoggingConfiguration (PascalCase) as the Step Functions API spells it."""
    if not isinstance(cfn, dict):
        return None
    return {
        "level": cfn.get("Level", "OFF"),
        "includeExecutionData": bool(cfn.get("IncludeExecutionData", False)),
        "destinations": [
            {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
            for d in cfn.get("Destinations", [])
            if isinstance(d, dict) and "CloudWatchLogsLogGroup" in d
        ],
    }


def cfn_state_machines_executable() -> None:
    """Gap: state machines created by CloudFormation ignore ``DefinitionSubstitutions`` (the stored
    definition still holds ``${Name}``) and land in the non-executing Step Functions backend, so
    with execution switched on ``list_state_machines`` does not even show them.

    The CloudFormation hook applies the substitutions and creates the machine in whichever
    backend the API serves (the executing one when ``execute_state_machine`` is on). Also
    ``!GetAtt Machine.Arn`` (valid CloudFormation) is refused by moto ("does not support
    attribute type Arn"); it resolves to the ARN here. moto's own hook also drops
    ``LoggingConfiguration`` (the machine reports level OFF); this one passes it on.
    """
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend
    from moto.stepfunctions.utils import cfn_to_api_tags

    def create_from_cloudformation_json(
        cls: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        props = cloudformation_json["Properties"]
        definition = props.get("DefinitionString", "")
        if not isinstance(definition, str):
            definition = json.dumps(definition)
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        tags = cfn_to_api_tags(props.get("Tags", []))
        return get_backend(account_id, region_name).create_state_machine(
            props.get("StateMachineName", resource_name),
            definition,
            props.get("RoleArn", ""),
            tags=tags,
            loggingConfiguration=_api_logging(props.get("LoggingConfiguration")),
        )

    def delete_from_cloudformation_json(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        get_backend(account_id, region_name).delete_state_machine(resource_name)

    original_get_att: Callable[..., Any] = _original(StateMachine, "get_cfn_attribute")
    original_has_att: Callable[..., bool] = StateMachine.has_cfn_attr

    def has_cfn_attr(cls: Any, attr: str) -> bool:
        return attr == "Arn" or bool(original_has_att(attr))

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        return self.arn if attribute_name == "Arn" else original_get_att(self, attribute_name)

    _set(StateMachine, "has_cfn_attr", classmethod(has_cfn_attr))
    _set(StateMachine, "get_cfn_attribute", get_cfn_attribute)
    _set(StateMachine, "create_from_cloudformation_json", classmethod(create_from_cloudformation_json))
    _set(StateMachine, "delete_from_cloudformation_json", classmethod(delete_from_cloudformation_json))


def dynamodb_update_item_one_stream_record() -> None:
    """Gap: an UpdateItem that creates its item emits *two* stream records: an INSERT whose new
    image holds only the key (moto first puts the bare key) and then an INSERT with the full
    image. DynamoDB emits one INSERT with the full image; consumers of the findings stream would
    otherwise see an item with no finding in it.

    While moto's ``update_item`` runs, the first stream record for a not-yet-existing item (the
    bare-key put) is dropped.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import StreamShard

    local = threading.local()
    original_update: Callable[..., Any] = _original(DynamoDBBackend, "update_item")
    original_add: Callable[..., None] = _original(StreamShard, "add")

    def update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        local.skip_bare_insert = True
        try:
            return original_update(self, *args, **kwargs)
        finally:
            local.skip_bare_insert = False

    def add(self: Any, old: Item | None, new: Item | None) -> None:
        if getattr(local, "skip_bare_insert", False) and old is None:
            local.skip_bare_insert = False
            return
        original_add(self, old, new)

    _set(DynamoDBBackend, "update_item", update_item)
    _set(StreamShard, "add", add)


def cfn_novalue_in_lists() -> None:
    """Gap: ``!Ref AWS::NoValue`` (usually the false branch of an ``!If``) inside a *list* must
    remove the element; moto leaves ``None`` in the list, and e.g. an IAM role whose
    ``Policies`` has ``!If [Cond, {policy}, !Ref AWS::NoValue]`` fails with
    ``TypeError: 'NoneType' object is not subscriptable``.

    Lists resolved by moto's ``clean_json`` drop the elements that resolved to NoValue.
    """
    from moto.cloudformation import parsing

    original: Callable[..., Any] = _original(parsing, "clean_json")

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, list):
            cleaned = [clean_json(v, resources_map) for v in resource_json]
            return [
                c
                for c, v in zip(cleaned, resource_json, strict=True)
                if not (c is None and isinstance(v, dict))
            ]
        return original(resource_json, resources_map)

    _set(parsing, "clean_json", clean_json)


def logs_subscription_event_ids_as_strings() -> None:
    """Gap: moto's CloudWatch Logs subscription delivery writes each log event's ``id`` as a JSON
    number (its internal counter); CloudWatch Logs writes a string of 56 digits. The ingest's
    envelope decoder (vigil.sources) wants the documented string, so the ids are written as AWS
    spells them before moto sends the envelope."""
    from moto.logs.models import LogStream

    original: Callable[..., None] = _original(LogStream, "_send_log_events")

    def _send_log_events(self: Any, service: str, destination_arn: str, filter_name: str, log_events: Any) -> None:
        events = [{**e, "id": f"{int(e['id']):056d}"} if isinstance(e.get("id"), int) else e for e in log_events]
        original(self, service, destination_arn, filter_name, events)

    _set(LogStream, "_send_log_events", _send_log_events)


def apply_all(runtime: LocalRuntime) -> None:
    """Apply every patch once per process (the runtime of the first call wins)."""
    if _applied.get("all"):
        return
    in_process_lambda(runtime)
    stream_mappings_by_pollers()
    eventbridge_lambda_and_sfn_targets(runtime)
    cfn_state_machines_executable()
    dynamodb_update_item_one_stream_record()
    cfn_novalue_in_lists()
    logs_subscription_event_ids_as_strings()
    # The response workflows' own gaps (Step Functions interpreter, string EventPattern in CFN).
    response_patches.apply()
    _applied["all"] = runtime


def restore_all() -> None:
    """Undo every patch: moto behaves as shipped again."""
    response_patches.undo()
    for (owner, name), original in _originals.items():
        if original is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, original)
    _originals.clear()
    _applied.clear()
