"""A Vigil finding as an OCSF Detection Finding (class 2004, schema 1.1.0) for Amazon Security Lake.

OCSF 1.1.0 is the version Security Lake's own sources (version 2) write, and the one the tests
validate against (tests/data/ocsf/detection_finding-1.1.0.json, compiled from the published
ocsf-schema at its v1.1.0 tag). Profiles applied: ``cloud`` (required ``cloud``) and ``host``
(``device``).

Mapping (GuardDuty finding JSON -> OCSF):
- ``finding_info.uid`` = the finding ARN (= ASFF ``Id``), ``finding_info.types`` = [type],
  ``analytic`` = the detection (type_id 1 Rule), first/last seen from ``eventFirstSeen/LastSeen``;
- ``activity_id`` Create (1) for a finding's first version, Update (2) for later ones, Close (3)
  when it is archived; ``type_uid`` = 2004 x 100 + activity_id;
- ``severity_id`` from GuardDuty's bands (Low 2, Medium 3, High 4, Critical 5), ``severity`` its
  caption; ``status_id`` New (1), or Suppressed (3) when archived;
- ``evidences``: the process (with its parent), the DNS query or the remote endpoint;
- ``time`` / ``start_time`` / ``end_time``: epoch milliseconds of updatedAt / first / last seen;
- what OCSF has no home for goes to ``unmapped`` (the resource role, the runtime context).

Attacker-controlled strings stay data: a hostname or IP that does not satisfy OCSF's
``hostname_t`` / ``ip_t`` is not dropped into a typed field, it is kept in ``unmapped``.
Pure: no clock, no AWS.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any, Final

from vigil import severity as sev

OCSF_VERSION: Final = "1.1.0"
CLASS_UID: Final = 2004
CATEGORY_UID: Final = 2
ACTIVITY_CREATE, ACTIVITY_UPDATE, ACTIVITY_CLOSE = 1, 2, 3
ACTIVITY_NAMES: Final = {1: "Create", 2: "Update", 3: "Close"}
SEVERITY_IDS: Final = {"Low": 2, "Medium": 3, "High": 4, "Critical": 5}
PRODUCT: Final = {"name": "Vigil", "vendor_name": "Vigil", "feature": {"name": "RuntimeMonitoring"}}
# OCSF 1.1.0 hostname_t (dictionary.json types)
_HOSTNAME: Final = re.compile(
    r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$"
)


def epoch_ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _hostname(value: Any) -> str | None:
    text = str(value or "").rstrip(".")
    return text if text and len(text) <= 253 and _HOSTNAME.fullmatch(text) else None


def _ip(value: Any) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        return None


def activity(finding: dict[str, Any]) -> int:
    if (finding.get("service") or {}).get("archived"):
        return ACTIVITY_CLOSE
    return ACTIVITY_CREATE if finding.get("createdAt") == finding.get("updatedAt") else ACTIVITY_UPDATE


def _process(p: dict[str, Any], parent: dict[str, Any] | None = None) -> dict[str, Any]:
    path = str(p.get("executablePath") or "")
    name = str(p.get("name") or path.rsplit("/", 1)[-1] or "unknown")
    out: dict[str, Any] = {"name": name}
    if path:
        out["file"] = {"name": path.rsplit("/", 1)[-1] or name, "path": path, "type_id": 1}
    if isinstance(p.get("pid"), int):
        out["pid"] = p["pid"]
    if p.get("uuid"):
        out["uid"] = str(p["uuid"])
    if "pid" not in out and "uid" not in out:
        out["uid"] = name  # OCSF: at least one of pid / uid
    if isinstance(p.get("userId"), int):
        user: dict[str, Any] = {"uid": str(p["userId"])}
        if p.get("user"):
            user["name"] = str(p["user"])
        out["user"] = user
    if p.get("startTime"):
        out["created_time"] = epoch_ms(str(p["startTime"]))
    if parent:
        out["parent_process"] = _process(parent)
    return out


def _evidence(finding: dict[str, Any], unmapped: dict[str, Any]) -> dict[str, Any] | None:
    svc = finding.get("service") or {}
    runtime = svc.get("runtimeDetails") or {}
    ev: dict[str, Any] = {}
    p = runtime.get("process") or {}
    if p:
        lineage = [x for x in p.get("lineage") or [] if isinstance(x, dict)]
        ev["process"] = _process(p, lineage[0] if lineage else None)
        cmd = (runtime.get("context") or {}).get("commandLineExample")
        if cmd:
            ev["process"]["cmd_line"] = str(cmd)
    action = svc.get("action") or {}
    if dns := action.get("dnsRequestAction"):
        host = _hostname(dns.get("domain"))
        if host:
            ev["query"] = {"hostname": host}
        else:
            unmapped["dnsDomain"] = str(dns.get("domain"))
    if net := action.get("networkConnectionAction"):
        remote = net.get("remoteIpDetails") or {}
        raw_ip = remote.get("ipAddressV4") or remote.get("ipAddressV6")
        ip = _ip(raw_ip)
        endpoint: dict[str, Any] = {}
        if ip:
            endpoint["ip"] = ip
        elif raw_ip:
            unmapped["remoteIp"] = str(raw_ip)
        port = (net.get("remotePortDetails") or {}).get("port")
        if endpoint and isinstance(port, int) and 0 <= port <= 65535:
            endpoint["port"] = port
        if endpoint:
            inbound = str(net.get("connectionDirection", "")).upper() == "INBOUND"
            ev["src_endpoint" if inbound else "dst_endpoint"] = endpoint
    return ev or None


def _device(finding: dict[str, Any]) -> dict[str, Any]:
    details = (finding.get("resource") or {}).get("instanceDetails") or {}
    device: dict[str, Any] = {"type_id": 6, "type": "Virtual", "region": str(finding["region"])}
    if details.get("instanceId"):
        device["instance_uid"] = str(details["instanceId"])
        device["uid"] = str(details["instanceId"])
    ifaces = [i for i in details.get("networkInterfaces") or [] if isinstance(i, dict)]
    for i in ifaces:
        if (host := _hostname(i.get("privateDnsName"))) and "hostname" not in device:
            device["hostname"] = host
        if (ip := _ip(i.get("privateIpAddress"))) and "ip" not in device:
            device["ip"] = ip
        if i.get("vpcId") and "vpc_uid" not in device:
            device["vpc_uid"] = str(i["vpcId"])
        if i.get("subnetId") and "subnet_uid" not in device:
            device["subnet_uid"] = str(i["subnetId"])
    return device


def to_ocsf(finding: dict[str, Any]) -> dict[str, Any]:
    """One Vigil finding -> one OCSF 1.1.0 Detection Finding."""
    svc = finding.get("service") or {}
    partition, region, account = (
        str(finding.get("partition") or "aws"),
        str(finding["region"]),
        str(finding["accountId"]),
    )
    act = activity(finding)
    label = sev.label(float(finding["severity"]))
    archived = bool(svc.get("archived"))
    instance_id = str(((finding.get("resource") or {}).get("instanceDetails") or {}).get("instanceId") or "")
    info: dict[str, Any] = {
        "uid": str(finding["arn"]),
        "title": str(finding["title"]),
        "desc": str(finding.get("description") or ""),
        "types": [str(finding["type"])],
        "analytic": {"name": str(finding["type"]), "uid": str(finding["type"]), "type_id": 1, "type": "Rule"},
        "created_time": epoch_ms(str(finding["createdAt"])),
        "modified_time": epoch_ms(str(finding["updatedAt"])),
        "product_uid": str(finding.get("id") or ""),
    }
    if svc.get("eventFirstSeen"):
        info["first_seen_time"] = epoch_ms(str(svc["eventFirstSeen"]))
    if svc.get("eventLastSeen"):
        info["last_seen_time"] = epoch_ms(str(svc["eventLastSeen"]))
    unmapped: dict[str, Any] = {}
    for key in ("resourceRole", "detectorId", "featureName"):
        if svc.get(key) is not None:
            unmapped[key] = svc[key]
    context = (svc.get("runtimeDetails") or {}).get("context")
    if context:
        unmapped["runtimeContext"] = context
    event: dict[str, Any] = {
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": act,
        "activity_name": ACTIVITY_NAMES[act],
        "type_uid": CLASS_UID * 100 + act,
        "type_name": f"Detection Finding: {ACTIVITY_NAMES[act]}",
        "severity_id": SEVERITY_IDS[label],
        "severity": label,
        "status_id": 3 if archived else 1,
        "status": "Suppressed" if archived else "New",
        "time": epoch_ms(str(finding["updatedAt"])),
        "message": str(finding["title"]),
        "count": int(svc.get("count") or 1),
        "metadata": {
            "version": OCSF_VERSION,
            "product": PRODUCT,
            "profiles": ["cloud", "host"],
            "uid": str(finding.get("id") or finding["arn"]),
        },
        "cloud": {
            "provider": "AWS",
            "region": region,
            "account": {"uid": account, "type_id": 10, "type": "AWS Account"},
        },
        "finding_info": info,
        "device": _device(finding),
        "resources": [
            {
                "uid": f"arn:{partition}:ec2:{region}:{account}:instance/{instance_id}",
                "type": "AWS::EC2::Instance",
                "cloud_partition": partition,
                "region": region,
            }
        ],
    }
    if svc.get("eventFirstSeen"):
        event["start_time"] = info["first_seen_time"]
    if svc.get("eventLastSeen"):
        event["end_time"] = info["last_seen_time"]
    if evidence := _evidence(finding, unmapped):
        event["evidences"] = [evidence]
    if unmapped:
        event["unmapped"] = unmapped
    return event
