"""A Vigil finding (GuardDuty's finding JSON) as an AWS Security Finding Format document.

The mapping follows GuardDuty's own Security Hub integration (reference/guardduty.md §9b):
``Types`` = ``<namespace>/<category>/<type with '/' -> '-'>``, ``Severity`` with GuardDuty's
bands as Label and ``Normalized`` = severity x 10, ``FirstObservedAt`` / ``LastObservedAt`` from
``eventFirstSeen`` / ``eventLastSeen``, ``CreatedAt`` / ``UpdatedAt`` from the finding (never the
export time), the instance as an ``AwsEc2Instance`` resource, ``service`` flattened into
``ProductFields``, ``Workflow.Status NEW`` and ``RecordState ACTIVE``.

Two deliberate differences from GuardDuty: Vigil is not an AWS product, so ``ProductArn`` is the
account's own ``default`` product (the only one a custom integration may import into) with
``CompanyName`` / ``ProductName`` naming Vigil, and ``ProductFields`` keys start ``vigil/``.
``Id`` is the finding ARN (GuardDuty's choice), which contains the finding id: frozen forever,
the same value as OCSF ``finding_info.uid`` (vigil/ocsf.py).

Attacker-controlled strings (command lines, domains, tags) stay data: they are cut to ASFF's
documented limits and control characters become spaces, nothing is interpreted.
Pure: no clock, no AWS; the adapter (vigil_aws/securityhub.py) does the calls.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from vigil import severity as sev

SCHEMA_VERSION: Final = "2018-10-08"
COMPANY_NAME: Final = "Vigil"
PRODUCT_NAME: Final = "Vigil Runtime Monitoring"
FIELD_PREFIX: Final = "vigil/"

# ASFF's documented limits (AWS Security Finding Format reference; botocore's model has none).
LIMITS: Final[dict[str, int]] = {
    "Id": 512,
    "GeneratorId": 512,
    "Title": 256,
    "Description": 1024,
    "SourceUrl": 512,
    "ProductFields.pairs": 50,
    "ProductFields.key": 128,
    "ProductFields.value": 2048,
    "Resources": 32,
    "Types": 50,
    "Tags.key": 128,
    "Tags.value": 256,
}

# GuardDuty's ASFF namespace/category per threat purpose (the part of the type before ':').
PURPOSE_TYPE_PREFIX: Final[dict[str, str]] = {
    "Backdoor": "TTPs/Command and Control",
    "Behavior": "Unusual Behaviors/VM",
    "CredentialAccess": "TTPs/Credential Access",
    "CryptoCurrency": "Effects/Resource Consumption",
    "DefenseEvasion": "TTPs/Defense Evasion",
    "Discovery": "TTPs/Discovery",
    "Execution": "TTPs/Execution",
    "Exfiltration": "Effects/Data Exfiltration",
    "Impact": "TTPs/Impact",
    "InitialAccess": "TTPs/Initial Access",
    "Persistence": "TTPs/Persistence",
    "Policy": "Software and Configuration Checks/Policy",
    "PrivilegeEscalation": "TTPs/Privilege Escalation",
    "Recon": "TTPs/Discovery",
    "Stealth": "TTPs/Defense Evasion",
    "Trojan": "TTPs/Command and Control",
    "UnauthorizedAccess": "TTPs/Initial Access",
}
# Types GuardDuty files elsewhere than their purpose says (reference/guardduty.md §9b).
TYPE_PREFIX_OVERRIDES: Final[dict[str, str]] = {
    "Trojan:Runtime/DropPoint": "Effects/Data Exfiltration",
    "Trojan:Runtime/DropPoint!DNS": "Effects/Data Exfiltration",
    "UnauthorizedAccess:Runtime/TorClient": "Effects/Resource Consumption",
    "Trojan:Runtime/DriveBySourceTraffic!DNS": "TTPs/Initial Access",
    "Impact:Runtime/CryptoMinerExecuted": "TTPs/Impact",
}
DEFAULT_TYPE_PREFIX: Final = "Unusual Behaviors/VM"
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")


def clean(value: Any, limit: int) -> str:
    """A string as data: control characters (newlines included) become spaces, cut to ``limit``
    characters with an ellipsis; never empty (ASFF strings must hold a non-space)."""
    text = _CONTROL.sub(" ", value if isinstance(value, str) else str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text if text.strip() else "-"


def product_arn(partition: str, region: str, account_id: str) -> str:
    """The account's own product: where a custom integration's findings go."""
    return f"arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default"


def asff_type(finding_type: str) -> str:
    purpose = finding_type.split(":", 1)[0]
    prefix = TYPE_PREFIX_OVERRIDES.get(finding_type) or PURPOSE_TYPE_PREFIX.get(purpose, DEFAULT_TYPE_PREFIX)
    return f"{prefix}/{finding_type.replace('/', '-')}"


def severity_label(value: float) -> str:
    """GuardDuty's bands as ASFF labels (Normalized 10-39 LOW, 40-69 MEDIUM, 70-89 HIGH, 90+ CRITICAL)."""
    return sev.label(value).upper()


def generator_id(finding: dict[str, Any]) -> str:
    """GuardDuty's GeneratorId is the detector ARN: the finding ARN without ``/finding/<id>``."""
    arn = str(finding["arn"])
    return clean(arn.rsplit("/finding/", 1)[0], LIMITS["GeneratorId"])


def _flatten(node: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(node, dict):
        for k in sorted(node):
            _flatten(node[k], f"{prefix}/{k}" if prefix else str(k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _flatten(v, f"{prefix}/{i}", out)
    elif node is not None:
        out[prefix] = node if isinstance(node, str) else json.dumps(node)


def product_fields(finding: dict[str, Any]) -> dict[str, str]:
    """``service`` flattened into ``vigil/service/...`` keys (GuardDuty: ``aws/guardduty/service/...``),
    the most useful first, at most 50 pairs; keys and values cut to ASFF's limits."""
    flat: dict[str, str] = {}
    svc = dict(finding.get("service") or {})
    svc.pop("additionalInfo", None)  # JSON text of detection metadata: in the finding, not here
    _flatten(svc, "service", flat)
    first = ("service/action/actionType", "service/archived", "service/count", "service/resourceRole")
    ordered = [k for k in first if k in flat] + [k for k in flat if k not in first]
    out: dict[str, str] = {}
    for key in ordered:
        k = clean(FIELD_PREFIX + key, LIMITS["ProductFields.key"])
        if k in out:
            continue
        if len(out) == LIMITS["ProductFields.pairs"]:
            break
        out[k] = clean(flat[key], LIMITS["ProductFields.value"])
    return out


def _instance_resource(finding: dict[str, Any]) -> dict[str, Any]:
    details = dict((finding.get("resource") or {}).get("instanceDetails") or {})
    partition = str(finding.get("partition") or "aws")
    region, account = str(finding["region"]), str(finding["accountId"])
    instance_id = clean(details.get("instanceId") or "unknown", 64)
    ec2: dict[str, Any] = {}
    for src, dst in (("instanceType", "Type"), ("imageId", "ImageId"), ("launchTime", "LaunchedAt")):
        if details.get(src):
            ec2[dst] = clean(details[src], 256)
    ifaces = [i for i in details.get("networkInterfaces") or [] if isinstance(i, dict)]
    v4 = [str(i["privateIpAddress"]) for i in ifaces if i.get("privateIpAddress")]
    v4 += [str(i["publicIp"]) for i in ifaces if i.get("publicIp")]
    v6 = [str(a) for i in ifaces for a in i.get("ipv6Addresses") or []]
    if v4:
        ec2["IpV4Addresses"] = [clean(a, 64) for a in v4]
    if v6:
        ec2["IpV6Addresses"] = [clean(a, 64) for a in v6]
    for src, dst in (("vpcId", "VpcId"), ("subnetId", "SubnetId")):
        found = next((i[src] for i in ifaces if i.get(src)), None)
        if found:
            ec2[dst] = clean(found, 256)
    profile = details.get("iamInstanceProfile") or {}
    if isinstance(profile, dict) and profile.get("arn"):
        ec2["IamInstanceProfileArn"] = clean(profile["arn"], 2048)
    resource: dict[str, Any] = {
        "Type": "AwsEc2Instance",
        "Id": f"arn:{partition}:ec2:{region}:{account}:instance/{instance_id}",
        "Partition": partition if partition in ("aws", "aws-cn", "aws-us-gov") else "aws",
        "Region": region,
    }
    if ec2:
        resource["Details"] = {"AwsEc2Instance": ec2}
    tags = {
        clean(t["key"], LIMITS["Tags.key"]): clean(t.get("value") or "", LIMITS["Tags.value"])
        for t in details.get("tags") or []
        if isinstance(t, dict) and t.get("key")
    }
    if tags:
        resource["Tags"] = tags
    return resource


def _process(finding: dict[str, Any]) -> dict[str, Any] | None:
    p = ((finding.get("service") or {}).get("runtimeDetails") or {}).get("process") or {}
    if not p:
        return None
    out: dict[str, Any] = {}
    if p.get("name"):
        out["Name"] = clean(p["name"], 128)
    if p.get("executablePath"):
        out["Path"] = clean(p["executablePath"], 512)
    if isinstance(p.get("pid"), int):
        out["Pid"] = p["pid"]
    lineage = p.get("lineage") or []
    if lineage and isinstance(lineage[0], dict) and isinstance(lineage[0].get("pid"), int):
        out["ParentPid"] = lineage[0]["pid"]
    if p.get("startTime"):
        out["LaunchedAt"] = clean(p["startTime"], 64)
    return out or None


def _action(finding: dict[str, Any]) -> dict[str, Any] | None:
    a = (finding.get("service") or {}).get("action") or {}
    if dns := a.get("dnsRequestAction"):
        return {
            "ActionType": "DNS_REQUEST",
            "DnsRequestAction": {
                "Domain": clean(dns.get("domain") or "-", 253),
                "Protocol": clean(dns.get("protocol") or "UDP", 16),
                "Blocked": bool(dns.get("blocked")),
            },
        }
    if net := a.get("networkConnectionAction"):
        remote_ip = net.get("remoteIpDetails") or {}
        ip = remote_ip.get("ipAddressV4") or remote_ip.get("ipAddressV6")
        action: dict[str, Any] = {
            "ConnectionDirection": clean(net.get("connectionDirection") or "UNKNOWN", 16),
            "Protocol": clean(net.get("protocol") or "UNKNOWN", 16),
            "Blocked": bool(net.get("blocked")),
        }
        if ip:
            action["RemoteIpDetails"] = {"IpAddressV4": clean(ip, 64)}
        port = (net.get("remotePortDetails") or {}).get("port")
        if isinstance(port, int):
            action["RemotePortDetails"] = {"Port": port}
        lport = (net.get("localPortDetails") or {}).get("port")
        if isinstance(lport, int):
            action["LocalPortDetails"] = {"Port": lport}
        return {"ActionType": "NETWORK_CONNECTION", "NetworkConnectionAction": action}
    return None


def to_asff(finding: dict[str, Any]) -> dict[str, Any]:
    """One Vigil finding -> one ``AwsSecurityFinding`` (BatchImportFindings' item)."""
    partition = str(finding.get("partition") or "aws")
    region, account = str(finding["region"]), str(finding["accountId"])
    severity = float(finding["severity"])
    label = severity_label(severity)
    svc = finding.get("service") or {}
    types = [asff_type(str(finding["type"]))]
    doc: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": clean(finding["arn"], LIMITS["Id"]),
        "ProductArn": product_arn(partition, region, account),
        "ProductName": PRODUCT_NAME,
        "CompanyName": COMPANY_NAME,
        "Region": region,
        "GeneratorId": generator_id(finding),
        "AwsAccountId": account,
        "Types": types,
        "CreatedAt": str(finding["createdAt"]),
        "UpdatedAt": str(finding["updatedAt"]),
        "Severity": {
            "Product": severity,
            "Label": label,
            "Normalized": round(severity * 10),
            "Original": f"{severity:g}",
        },
        "Title": clean(finding["title"], LIMITS["Title"]),
        "Description": clean(finding.get("description") or finding["title"], LIMITS["Description"]),
        "ProductFields": product_fields(finding),
        "Resources": [_instance_resource(finding)],
        "FindingProviderFields": {
            "Severity": {"Label": label, "Original": f"{severity:g}"},
            "Types": types,
        },
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    }
    if svc.get("eventFirstSeen"):
        doc["FirstObservedAt"] = str(svc["eventFirstSeen"])
    if svc.get("eventLastSeen"):
        doc["LastObservedAt"] = str(svc["eventLastSeen"])
    if process := _process(finding):
        doc["Process"] = process
    if action := _action(finding):
        doc["Action"] = action
    return doc


def finding_identifier(finding_arn: str, partition: str, region: str, account_id: str) -> dict[str, str]:
    """BatchUpdateFindings' ``FindingIdentifiers`` item for one imported finding."""
    return {"Id": finding_arn, "ProductArn": product_arn(partition, region, account_id)}
