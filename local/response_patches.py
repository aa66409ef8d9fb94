"""moto 5.2.5 gaps that the response workflows hit (Step Functions interpreter, CloudFormation).

Seven small fixes, applied by ``apply()`` (idempotent) and undone by ``undo()``; each has a test
in tests/response/test_response_moto_gaps.py that fails once moto fixes the gap (then delete the patch):

1. ``arn:aws:states:::states:startExecution(.sync:2)`` is unusable: moto's optimised Step
   Functions integration passes the ASL's PascalCase parameters (``StateMachineArn``) straight
   to boto3, which wants camelCase (``KeyError: 'StateMachineArn'``, States.Runtime), and hands
   the camelCase answer to a resolver that reads ``ExecutionArn``. LocalStack, where the
   interpreter comes from, normalises both ways; moto dropped that step. The fix renames the
   top-level keys both ways (and turns datetimes into ISO strings, as the real service returns).
2. aws-sdk errors from EC2 and Auto Scaling are named ``ec2.ec2Exception`` /
   ``autoscaling.autoscalingException``; Step Functions names them ``Ec2.Ec2Exception`` and
   ``AutoScaling.AutoScalingException`` (the real names are what the ASL retries and catches).
3. A CloudFormation ``AWS::Events::Rule`` whose ``EventPattern`` is a JSON *string* (valid in
   CloudFormation, and the only way to put a numeric parameter into a numeric filter, see
   TriageRule in template.yaml) is JSON-encoded a second time by moto and fails the stack with
   ``AttributeError: 'str' object has no attribute 'items'``. The fix parses the string first.
4. EC2 tags: moto counts them (50 per resource) but takes keys and values of any length, where
   EC2 rejects a key over 128 or a value over 256 characters with ``InvalidParameterValue``. A
   record kept in a tag that grows with the instance (13 security-group ids) fails on AWS and
   passed on moto; the fix checks the lengths in moto's one tag store
   (``TagBackend.create_tags``, which CreateTags and every TagSpecifications go through).
5. A CloudFormation ``AWS::IAM::ManagedPolicy`` whose ``PolicyDocument`` is a JSON *string*
   (valid: the property is of type Json; the only way to put a parameter into a condition *key*,
   see IsolationProtectedTagGuard in template.yaml) is JSON-encoded a second time by moto and
   fails the stack with ``MalformedPolicyDocument: Syntax errors in policy``. The fix parses the
   string first, as patch 3 does for an EventPattern.
6. A CloudFormation ``AWS::Logs::LogGroup``'s ``KmsKeyId`` is dropped (moto passes the
   PascalCase properties to a model that reads ``kmsKeyId``): the group is created unencrypted.
   The fix passes the key on (the log groups of the whole stack, response's included).
7. A CloudFormation ``AWS::KMS::Key``'s ``KeyPolicy`` (a JSON object in a template) is stored as
   a dict where the KMS API stores a JSON string, so every later call that checks the key policy
   (DescribeKey, Encrypt ...) fails with a 500 (``json.loads`` of a dict). The fix stores it as
   the API would.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from typing import Any

_saved: dict[str, Any] = {}
SERVICE_ERROR_NAMES = {"ec2": "Ec2", "autoscaling": "AutoScaling"}


def _sfn_module() -> Any:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sfn

    return state_task_service_sfn


def _sdk_module() -> Any:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk,
    )

    return state_task_service_aws_sdk


TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256


def _tag_lengths_checked(orig: Any) -> Any:
    def create_tags(self: Any, resource_ids: list[str], tags: dict[str, str]) -> bool:
        from moto.ec2.exceptions import EC2ClientError

        for key, value in tags.items():
            if len(key) > TAG_KEY_MAX:
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"Tag key exceeds the maximum length of {TAG_KEY_MAX} characters: {key[:40]}...",
                )
            if value is not None and len(value) > TAG_VALUE_MAX:
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"Tag value exceeds the maximum length of {TAG_VALUE_MAX} characters (tag {key})",
                )
        return bool(orig(self, resource_ids, tags))

    return create_tags


def _fix_cfn_properties(saved: str, cls: Any, fix: Callable[[dict[str, Any]], None]) -> None:
    """Wrap ``cls.create_from_cloudformation_json`` so ``fix`` mends the resource's Properties
    before moto reads them (undone by ``restore`` from ``_saved[saved]``)."""
    _saved[saved] = cls.__dict__["create_from_cloudformation_json"]
    orig = cls.create_from_cloudformation_json  # bound classmethod

    def create(klass: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        fix(cloudformation_json.get("Properties") or {})
        return orig(resource_name, cloudformation_json, *args, **kwargs)

    cls.create_from_cloudformation_json = classmethod(create)


def apply() -> None:
    if _saved:
        return
    # moto logs every Choice ``IsPresent: true`` on a missing path (the expected "no" branch) as an
    # ERROR with the whole state tree; failures still show in the execution status and history.
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
    cls = _sfn_module().StateTaskServiceSfn
    _saved["params"] = orig_params = cls._normalise_parameters
    _saved["response"] = orig_response = cls._normalise_response

    def _normalise_parameters(
        self: Any, parameters: dict[str, Any], boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        orig_params(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None:  # the ASL's own parameters, not moto's internal calls
            for key in [k for k in parameters if k[:1].isupper()]:
                parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    def _normalise_response(
        self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        orig_response(self, response, boto_service_name, service_action_name)
        if isinstance(response, dict):
            for key in list(response):
                value = response.pop(key)
                if isinstance(value, datetime.datetime):
                    value = value.isoformat()
                response[key[:1].upper() + key[1:]] = value

    cls._normalise_parameters = _normalise_parameters
    cls._normalise_response = _normalise_response
    names = _sdk_module()._SERVICE_ERROR_NAMES
    _saved["names"] = dict(names)
    names.update(SERVICE_ERROR_NAMES)

    from moto.events.models import Rule
    from moto.iam.models import ManagedPolicy
    from moto.kms.models import Key
    from moto.logs.models import LogGroup

    def parsed(key: str) -> Callable[[dict[str, Any]], None]:
        def fix(props: dict[str, Any]) -> None:
            if isinstance(props.get(key), str):
                props[key] = json.loads(props[key])

        return fix

    def key_policy_as_text(props: dict[str, Any]) -> None:
        if isinstance(props.get("KeyPolicy"), dict):
            props["KeyPolicy"] = json.dumps(props["KeyPolicy"])

    def kms_key_id_renamed(props: dict[str, Any]) -> None:
        if "KmsKeyId" in props:
            props["kmsKeyId"] = props.pop("KmsKeyId")

    _fix_cfn_properties("rule_cfn", Rule, parsed("EventPattern"))  # a JSON string pattern
    _fix_cfn_properties("policy_cfn", ManagedPolicy, parsed("PolicyDocument"))  # a !Sub JSON string
    _fix_cfn_properties("kms_key_cfn", Key, key_policy_as_text)  # a dict policy made DescribeKey fail
    _fix_cfn_properties("log_group_cfn", LogGroup, kms_key_id_renamed)  # KmsKeyId was dropped

    from moto.ec2.models.tags import TagBackend

    _saved["create_tags"] = TagBackend.create_tags
    TagBackend.create_tags = _tag_lengths_checked(TagBackend.create_tags)  # type: ignore[method-assign]


def undo() -> None:
    if not _saved:
        return
    cls = _sfn_module().StateTaskServiceSfn
    cls._normalise_parameters = _saved.pop("params")
    cls._normalise_response = _saved.pop("response")
    names = _sdk_module()._SERVICE_ERROR_NAMES
    names.clear()
    names.update(_saved.pop("names"))
    from moto.events.models import Rule

    Rule.create_from_cloudformation_json = _saved.pop("rule_cfn")  # type: ignore[method-assign]
    from moto.iam.models import ManagedPolicy

    ManagedPolicy.create_from_cloudformation_json = _saved.pop("policy_cfn")  # type: ignore[method-assign]
    from moto.kms.models import Key

    Key.create_from_cloudformation_json = _saved.pop("kms_key_cfn")  # type: ignore[method-assign]
    from moto.logs.models import LogGroup

    LogGroup.create_from_cloudformation_json = _saved.pop("log_group_cfn")  # type: ignore[method-assign]
    from moto.ec2.models.tags import TagBackend

    TagBackend.create_tags = _saved.pop("create_tags")  # type: ignore[method-assign]
