"""GuardDuty's ``resource.instanceDetails`` from an EC2 instance description (issue 15, item 3).

``from_ec2`` turns one instance of EC2 ``DescribeInstances`` (boto3's dict shape: ``InstanceId``,
``Tags``, ``NetworkInterfaces`` ...) into the ``InstanceDetails`` shape of botocore's GuardDuty
model, with its JSON wire names (``tags: [{key, value}]``, ``networkInterfaces``, ``productCodes:
[{productCodeId, productCodeType}]`` ...), as GuardDuty's findings in EventBridge carry it.
``merge`` fills a finding's instanceDetails with it, keeping what the agent's verified identity
said when EC2 has nothing (an outage, a terminated instance).

Total and bounded: EC2's answer is read field by field, a value of the wrong type or format is
left out (never raised on), and every string and list is cut to EC2's own limits (tags: 50, key
128, value 256 characters), so a description whose tags an instance owner wrote cannot grow a
finding past what the findings store takes. What is kept is data: markup and control characters
stay as they are (the CLI escapes them for the terminal, ``vigil_cli.safe``). The whole block is
held under ``DETAILS_BUDGET_BYTES`` of JSON by dropping, in order, secondary addresses, secondary
interfaces and finally the last tags (``fit``).

Pure: no clock, no I/O; the adapter (``vigil_aws.instances``) calls EC2 and caches.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

# EC2's limits (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions)
TAGS_MAX: Final = 50
TAG_KEY_CHARS: Final = 128
TAG_VALUE_CHARS: Final = 256
# What a finding keeps of an instance's networking: EC2 allows more on the largest types (up to
# 50 addresses per interface); a finding names the instance, it is not an inventory.
INTERFACES_MAX: Final = 8
ADDRESSES_MAX: Final = 8  # private IPv4 and IPv6 addresses per interface
GROUPS_MAX: Final = 16  # security groups per interface (EC2's maximum is 16)
PRODUCT_CODES_MAX: Final = 8
NAME_CHARS: Final = 255  # group names, DNS names, image descriptions (EC2: 255)
ARN_CHARS: Final = 1024
DETAILS_BUDGET_BYTES: Final = 64 * 1024  # json.dumps (ASCII-escaped, as the store writes it)

_ID = re.compile(r"^[a-z]{1,12}-[0-9a-f]{8,32}$")  # i-, ami-, subnet-, vpc-, sg-, eni-
_PROFILE_ID = re.compile(r"[A-Za-z0-9-]{1,128}")  # AIPA... (moto: iip-assoc-...)
_ARN = re.compile(r"^arn:[a-z-]{1,32}:[!-~]{1,1000}$")  # within ARN_CHARS
_DNS = re.compile(r"^[A-Za-z0-9.-]{1,255}$")
_WORD = re.compile(r"^[A-Za-z0-9 ._/()-]{1,64}$")  # state names, platforms, product code types
_ZONE = re.compile(r"^[a-z0-9-]{1,64}$")
_CODE = re.compile(r"^[A-Za-z0-9]{1,64}$")
_INSTANCE_TYPE = re.compile(r"^[a-z0-9.-]{1,64}$")


def _str(value: Any, limit: int) -> str | None:
    """A free-text string (a tag, a description, a group name) cut to ``limit``; kept as data."""
    if not isinstance(value, str) or not value:
        return None
    return value[:limit]


def _match(value: Any, pattern: re.Pattern[str]) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


def _ip(value: Any, version: int) -> str | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    return str(addr) if addr.version == version else None


def _list(value: Any, limit: int) -> list[Any]:
    return list(value[:limit]) if isinstance(value, list) else []


def _iso(value: Any) -> str | None:
    """EC2's LaunchTime (a datetime from boto3, or its ISO text from a cache) as GuardDuty writes
    times: '2026-11-27T22:13:21.000Z'."""
    if isinstance(value, str) and len(value) <= 64:
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    dt = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != [] and value != {}:
        out[key] = value


def tags(raw: Any) -> list[dict[str, str]]:
    """EC2 ``Tags`` -> GuardDuty ``tags`` ([{key, value}]), at most 50, each cut to EC2's lengths."""
    out: list[dict[str, str]] = []
    for t in _list(raw, TAGS_MAX):
        if not isinstance(t, Mapping):
            continue
        key = _str(t.get("Key"), TAG_KEY_CHARS)
        value = t.get("Value", "")
        if key is None or not isinstance(value, str):
            continue
        out.append({"key": key, "value": value[:TAG_VALUE_CHARS]})
    return out


def _groups(raw: Any) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for g in _list(raw, GROUPS_MAX):
        if not isinstance(g, Mapping):
            continue
        item: dict[str, str] = {}
        _put(item, "groupId", _match(g.get("GroupId"), _ID))
        _put(item, "groupName", _str(g.get("GroupName"), NAME_CHARS))
        if item:
            out.append(item)
    return out


def _interface(eni: Mapping[str, Any], instance: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    primary = _device_index(eni) == 0  # the instance-level names and addresses are this one's
    _put(out, "networkInterfaceId", _match(eni.get("NetworkInterfaceId"), _ID))
    _put(
        out,
        "privateDnsName",
        _match(eni.get("PrivateDnsName") or (primary and instance.get("PrivateDnsName")), _DNS),
    )
    _put(out, "privateIpAddress", _ip(eni.get("PrivateIpAddress"), 4))
    private: list[dict[str, str]] = []
    for a in _list(eni.get("PrivateIpAddresses"), ADDRESSES_MAX):
        if not isinstance(a, Mapping):
            continue
        item: dict[str, str] = {}
        _put(item, "privateDnsName", _match(a.get("PrivateDnsName"), _DNS))
        _put(item, "privateIpAddress", _ip(a.get("PrivateIpAddress"), 4))
        if item:
            private.append(item)
    _put(out, "privateIpAddresses", private)
    association = eni.get("Association")
    association = association if isinstance(association, Mapping) else {}
    _put(
        out,
        "publicDnsName",
        _match(association.get("PublicDnsName") or (primary and instance.get("PublicDnsName")), _DNS),
    )
    _put(
        out, "publicIp", _ip(association.get("PublicIp") or (primary and instance.get("PublicIpAddress")), 4)
    )
    ipv6 = [
        ip
        for a in _list(eni.get("Ipv6Addresses"), ADDRESSES_MAX)
        if isinstance(a, Mapping) and (ip := _ip(a.get("Ipv6Address"), 6)) is not None
    ]
    _put(out, "ipv6Addresses", ipv6)
    _put(out, "securityGroups", _groups(eni.get("Groups")))
    _put(out, "subnetId", _match(eni.get("SubnetId"), _ID))
    _put(out, "vpcId", _match(eni.get("VpcId"), _ID))
    return out


def _device_index(eni: Any) -> int:
    attachment = eni.get("Attachment") if isinstance(eni, Mapping) else None
    index = attachment.get("DeviceIndex") if isinstance(attachment, Mapping) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else 1 << 30


def network_interfaces(instance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """EC2 ``NetworkInterfaces`` (primary first) -> GuardDuty ``networkInterfaces``. An instance
    description without interfaces (EC2-Classic, some emulators) gives one from the
    instance-level addresses, groups, subnet and VPC."""
    raw = instance.get("NetworkInterfaces")
    enis = [e for e in _list(raw, 64) if isinstance(e, Mapping)]
    if enis:
        enis.sort(key=_device_index)
        out = [_interface(e, instance) for e in enis[:INTERFACES_MAX]]
        return [e for e in out if e]
    flat: dict[str, Any] = {}
    _put(flat, "privateDnsName", _match(instance.get("PrivateDnsName"), _DNS))
    _put(flat, "privateIpAddress", _ip(instance.get("PrivateIpAddress"), 4))
    _put(flat, "publicDnsName", _match(instance.get("PublicDnsName"), _DNS))
    _put(flat, "publicIp", _ip(instance.get("PublicIpAddress"), 4))
    _put(flat, "securityGroups", _groups(instance.get("SecurityGroups")))
    _put(flat, "subnetId", _match(instance.get("SubnetId"), _ID))
    _put(flat, "vpcId", _match(instance.get("VpcId"), _ID))
    return [flat] if flat else []


def _product_codes(raw: Any) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for p in _list(raw, PRODUCT_CODES_MAX):
        if not isinstance(p, Mapping):
            continue
        item: dict[str, str] = {}
        _put(item, "productCodeId", _match(p.get("ProductCodeId"), _CODE))
        _put(item, "productCodeType", _match(p.get("ProductCodeType"), _WORD))
        if item:
            out.append(item)
    return out


def from_ec2(instance: Mapping[str, Any], *, image_description: str | None = None) -> dict[str, Any]:
    """One ``DescribeInstances`` instance -> GuardDuty ``instanceDetails`` (camelCase wire names).

    Never raises on a malformed description: what cannot be read is left out. ``image_description``
    comes from ``DescribeImages`` (the instance description does not carry it)."""
    if not isinstance(instance, Mapping):
        return {}
    out: dict[str, Any] = {}
    _put(out, "instanceId", _match(instance.get("InstanceId"), _ID))
    _put(out, "instanceType", _match(instance.get("InstanceType"), _INSTANCE_TYPE))
    _put(out, "imageId", _match(instance.get("ImageId"), _ID))
    _put(out, "imageDescription", _str(image_description, NAME_CHARS))
    state = instance.get("State")
    if isinstance(state, Mapping):
        _put(out, "instanceState", _match(state.get("Name"), _WORD))
    _put(out, "launchTime", _iso(instance.get("LaunchTime")))
    _put(out, "platform", _match(instance.get("Platform"), _WORD))  # EC2 sets it for Windows only
    placement = instance.get("Placement")
    if isinstance(placement, Mapping):
        _put(out, "availabilityZone", _match(placement.get("AvailabilityZone"), _ZONE))
    profile = instance.get("IamInstanceProfile")
    if isinstance(profile, Mapping):
        iam: dict[str, str] = {}
        _put(iam, "arn", _match(profile.get("Arn"), _ARN))
        _put(iam, "id", _match(profile.get("Id"), _PROFILE_ID))
        _put(out, "iamInstanceProfile", iam)
    _put(out, "networkInterfaces", network_interfaces(instance))
    _put(out, "productCodes", _product_codes(instance.get("ProductCodes")))
    _put(out, "outpostArn", _match(instance.get("OutpostArn"), _ARN))
    _put(out, "tags", tags(instance.get("Tags")))
    return fit(out)


def size(details: Mapping[str, Any]) -> int:
    return len(json.dumps(details, separators=(",", ":")))


def fit(details: dict[str, Any], budget: int = DETAILS_BUDGET_BYTES) -> dict[str, Any]:
    """``details`` held under ``budget`` bytes of JSON: past it, secondary addresses go first, then
    secondary interfaces, then tags from the end (a suppression rule on a tag still matches
    every tag that fits)."""
    if size(details) <= budget:
        return details
    enis = details.get("networkInterfaces", [])
    for eni in enis:
        for key in ("privateIpAddresses", "ipv6Addresses"):
            if key in eni:
                eni[key] = eni[key][:1]
    if enis and size(details) > budget:
        details["networkInterfaces"] = enis[:1]
    tag_list = details.get("tags", [])
    while tag_list and size(details) > budget:
        tag_list.pop()
    if not tag_list:
        details.pop("tags", None)
    return details


def merge(known: Mapping[str, Any], ec2: Mapping[str, Any] | None) -> dict[str, Any]:
    """A finding's instanceDetails: EC2's description where it has one (EC2 is current: an instance
    type changes on stop/start), what the agent's verified identity said for the rest. The
    instance id is always the finding's own (it is part of the finding id)."""
    if not ec2:
        return dict(known)
    out = {**known, **ec2}
    if "instanceId" in known:
        out["instanceId"] = known["instanceId"]
    if "networkInterfaces" not in ec2 and "networkInterfaces" in known:
        out["networkInterfaces"] = known["networkInterfaces"]
    return out
