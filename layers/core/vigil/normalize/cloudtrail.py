"""CloudTrail management events -> ``ApiActivity`` (OCSF 6003).

Two deliveries of one record: a trail record (the objects of a trail file's ``Records``, or one
message of a trail's CloudWatch Logs group), and the EventBridge event ``AWS API Call via
CloudTrail`` whose ``detail`` is that record. Its kind is ``api_call``.

The instance: an EC2 instance role's session (``userIdentity.type`` AssumedRole whose session
name, after the ':' of ``principalId``, is an instance id; CloudTrail marks the credentials with
``sessionContext.ec2RoleDelivery``) names its instance; any other caller has no instance
(``Device.instance_uid`` is empty) and no EC2 finding type reads it yet.

Total: never raises; a record that does not decode within the bounds is a ``Rejection``; an
EventBridge event of another detail-type is skipped with the reason ``not a CloudTrail API call``.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

import msgspec

from vigil import bounds as b
from vigil import events as ev
from vigil.normalize.common import Rejection
from vigil.normalize.timeparse import iso_to_ns

SOURCE: Final = "cloudtrail"
KIND: Final = "api_call"
RECORD_MAX: Final = 256 * 1024  # CloudTrail caps an event at 256 KB (EventBridge too)
DETAIL_TYPE: Final = "AWS API Call via CloudTrail"
_INSTANCE: Final = re.compile(r"^i-[0-9a-z]{1,32}$")

Str = Annotated[str, msgspec.Meta(max_length=2048)]


class _Issuer(msgspec.Struct, frozen=True, gc=False):
    arn: Str = ""
    type: b.Word = ""


class _Session(msgspec.Struct, frozen=True, gc=False):
    sessionIssuer: _Issuer = _Issuer()
    ec2RoleDelivery: b.Word = ""


class _Identity(msgspec.Struct, frozen=True, gc=False):
    type: b.Word = ""
    principalId: Str = ""
    arn: Str = ""
    accountId: b.AccountId = ""
    accessKeyId: b.Token = ""
    sessionContext: _Session = _Session()


class _Record(msgspec.Struct, frozen=True, gc=False):
    eventTime: Annotated[str, msgspec.Meta(max_length=40)]
    eventSource: Str
    eventName: b.Name
    eventVersion: b.Word = ""
    awsRegion: b.Region = ""
    sourceIPAddress: Str = ""  # an IP, or a service name (ec2.amazonaws.com) for AWS callers
    userAgent: Str = ""
    errorCode: b.Name = ""
    eventID: b.Token = ""
    eventType: b.Word = ""
    recipientAccountId: b.AccountId = ""
    vpcEndpointId: b.Token = ""
    userIdentity: _Identity = _Identity()


class _Bridge(msgspec.Struct, frozen=True, gc=False, rename={"detail_type": "detail-type"}):
    detail_type: b.Text
    detail: msgspec.Raw = msgspec.Raw(b"null")
    account: b.AccountId = ""


class _Shape(msgspec.Struct, frozen=True, gc=False, rename={"detail_type": "detail-type"}):
    detail_type: b.Text = ""


_record: Final = msgspec.json.Decoder(_Record)
_bridge: Final = msgspec.json.Decoder(_Bridge)
_shape: Final = msgspec.json.Decoder(_Shape)


def _activity(r: _Record) -> ev.ApiActivity:
    uid = r.userIdentity
    session = uid.principalId.split(":", 1)[1] if ":" in uid.principalId else ""
    instance_creds = uid.type == "AssumedRole" and bool(_INSTANCE.match(session))
    device = ev.Device(
        instance_uid=session if instance_creds else "",
        account_uid=r.recipientAccountId or uid.accountId,
        region=r.awsRegion,
    )
    return ev.ApiActivity(
        kind=KIND,
        time=iso_to_ns(r.eventTime),
        device=device,
        activity_id=99,
        api_operation=r.eventName,
        api_service=r.eventSource,
        actor_uid=uid.arn,
        src_ip=r.sourceIPAddress,
        user_agent=r.userAgent,
        actor_type=uid.type,
        actor_account_uid=uid.accountId,
        session_issuer_arn=uid.sessionContext.sessionIssuer.arn,
        session_name=session,
        access_key_uid=uid.accessKeyId,
        instance_credentials=instance_creds and bool(uid.sessionContext.ec2RoleDelivery or session),
        error_code=r.errorCode,
        event_uid=r.eventID,
        vpc_endpoint_uid=r.vpcEndpointId,
        recipient_account_uid=r.recipientAccountId,
    )


def normalize_cloudtrail_record(data: bytes | str, *, number: int = 1) -> ev.ApiActivity | Rejection | str:
    """A trail record or an EventBridge CloudTrail event -> its ApiActivity, a Rejection, or a
    skip reason."""
    raw = data.encode(errors="replace") if isinstance(data, str) else data
    try:
        if len(raw) > RECORD_MAX:
            return Rejection(SOURCE, number, f"record of {len(raw)} bytes exceeds {RECORD_MAX}", raw[:1024])
        if not raw.strip():
            return "blank"
        if _shape.decode(raw).detail_type:
            bridge = _bridge.decode(raw)
            if bridge.detail_type != DETAIL_TYPE:
                return "not a CloudTrail API call"
            return _activity(_record.decode(bridge.detail))
        return _activity(_record.decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError) as exc:
        return Rejection(SOURCE, number, str(exc)[:512], raw[: b.RAW_PREFIX_BYTES])
    except Exception as exc:  # totality
        return Rejection(SOURCE, number, f"unexpected: {exc!r}"[:512], raw[: b.RAW_PREFIX_BYTES])
