"""GuardDuty-shaped findings (DESIGN §3.4).

Matches of one batch are grouped by finding id (deterministic: account|region|type|resource|dedup
key) so a batch yields one occurrence per finding with its count, first/last seen and seq range;
the document carries the details of the latest occurrence, as GuardDuty's aggregation does.
The shape is botocore's ``Finding`` (camelCase wire names); a test validates it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from vigil import severity as sev
from vigil.bounds import SEQ_MAX
from vigil.confidence import confidence
from vigil.detection import Context, Detection, action_type
from vigil.engine import Match
from vigil.events import ApiActivity, DnsActivity, Event, NetworkActivity, NetworkFlow, Process

SCHEMA_VERSION: Final = "2.0"
SERVICE_NAME: Final = "vigil"
FEATURE_NAME: Final = "RuntimeMonitoring"
DEFAULT_DETECTOR_ID: Final = "vigil"


def iso(ns: int) -> str:
    """Epoch ns -> GuardDuty's ISO-8601 UTC with milliseconds ('2026-11-27T22:13:21.123Z')."""
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def finding_id(account_id: str, region: str, finding_type: str, resource_id: str, dedup_key: str) -> str:
    raw = "|".join((account_id, region, finding_type, resource_id, dedup_key)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One finding as seen in one batch: what the store aggregates with an atomic UpdateItem."""

    finding: dict[str, Any]
    count: int
    first_seen_ns: int
    last_seen_ns: int
    min_seq: int
    max_seq: int
    suppressed: bool = False
    sightings: tuple[tuple[int, int], ...] = ()  # (seq, time ns) of each matched event: its identity
    # (seq, count, last time ns) of the sightings that stand for more than one event (wire repeats)
    folded: tuple[tuple[int, int, int], ...] = ()
    suppressed_by: str = ""  # the suppression rule (vigil.criteria) that archived it

    @property
    def instance_id(self) -> str:
        return str(self.finding["resource"]["instanceDetails"]["instanceId"])

    @property
    def id(self) -> str:
        return str(self.finding["id"])


def _process_details(p: Process) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": p.name,
        "executablePath": p.file.path,
        "pid": p.pid,
        "uuid": p.uid,
        "userId": p.user.uid,
        "euid": p.euid,
    }
    if p.file.sha256:
        d["executableSha256"] = p.file.sha256
    if p.working_directory:
        d["pwd"] = p.working_directory
    if p.created_time:
        d["startTime"] = iso(p.created_time)
    if p.parent_uid:
        d["parentUuid"] = p.parent_uid
    if p.user.name:
        d["user"] = p.user.name
    if p.namespace_pid:
        d["namespacePid"] = p.namespace_pid
    return d


def lineage_of(p: Process) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for a in p.lineage:
        item: dict[str, Any] = {
            "name": a.name,
            "executablePath": a.file.path,
            "pid": a.pid,
            "uuid": a.uid,
            "userId": a.user.uid,
            "euid": a.euid,
        }
        if a.created_time:
            item["startTime"] = iso(a.created_time)
        if a.parent_uid:
            item["parentUuid"] = a.parent_uid
        out.append(item)
    return out


def process_details(p: Process) -> dict[str, Any]:
    d = _process_details(p)
    if p.lineage:
        d["lineage"] = lineage_of(p)
    return d


def _action(event: Event) -> dict[str, Any] | None:
    kind = action_type(event)
    if kind == "DNS_REQUEST" and isinstance(event, DnsActivity):
        return {
            "actionType": kind,
            "dnsRequestAction": {
                "domain": event.query.hostname,
                "protocol": event.protocol_name.upper(),
                "blocked": False,
            },
        }
    if kind == "NETWORK_CONNECTION" and isinstance(event, NetworkActivity):
        remote, local = event.dst_endpoint, event.src_endpoint
        ip_key = "ipAddressV6" if ":" in remote.ip else "ipAddressV4"
        lip_key = "ipAddressV6" if ":" in local.ip else "ipAddressV4"
        return {
            "actionType": kind,
            "networkConnectionAction": {
                "connectionDirection": event.direction.upper(),
                "protocol": event.protocol_name.upper(),
                "blocked": False,
                "remoteIpDetails": {ip_key: remote.ip},
                "remotePortDetails": {"port": remote.port},
                "localIpDetails": {lip_key: local.ip} if local.ip else {},
                "localPortDetails": {"port": local.port},
            },
        }
    return None


# GuardDuty's DataSource names, said in additionalInfo for the EC2 types (they have no agent)
DATA_SOURCES: Final = {"vpc_flow": "FLOW_LOGS", "resolver_query": "DNS_LOGS", "api_call": "CLOUD_TRAIL"}


def _api_action(event: ApiActivity) -> dict[str, Any]:
    call: dict[str, Any] = {
        "api": event.api_operation,
        "serviceName": event.api_service,
        "callerType": "Remote IP",
    }
    if event.error_code:
        call["errorCode"] = event.error_code
    if event.user_agent:
        call["userAgent"] = event.user_agent
    if event.src_ip and (":" in event.src_ip or event.src_ip.replace(".", "").isdigit()):
        call["remoteIpDetails"] = {("ipAddressV6" if ":" in event.src_ip else "ipAddressV4"): event.src_ip}
    return {"actionType": "AWS_API_CALL", "awsApiCallAction": call}


def _resource(event: Event) -> dict[str, Any]:
    d = event.device
    details: dict[str, Any] = {"instanceId": d.instance_uid}
    if isinstance(event, NetworkFlow) and event.interface_uid:
        nic: dict[str, Any] = {"networkInterfaceId": event.interface_uid}
        if event.local_ip:
            nic["privateIpAddress"] = event.local_ip
        if event.vpc_uid:
            nic["vpcId"] = event.vpc_uid
        if event.subnet_uid:
            nic["subnetId"] = event.subnet_uid
        details["networkInterfaces"] = [nic]
    if d.type:
        details["instanceType"] = d.type
    if d.image_uid:
        details["imageId"] = d.image_uid
    if d.zone:
        details["availabilityZone"] = d.zone
    if d.hostname:
        details["networkInterfaces"] = [{"privateDnsName": d.hostname}]
    return {"resourceType": "Instance", "instanceDetails": details}


def build_finding(
    det: Detection,
    event: Event,
    ctx: Context,
    *,
    account_id: str,
    region: str,
    partition: str = "aws",
    detector_id: str = DEFAULT_DETECTOR_ID,
    count: int = 1,
    first_seen_ns: int | None = None,
    last_seen_ns: int | None = None,
    now_ns: int | None = None,
    identity_verified: bool = False,
) -> dict[str, Any]:
    """The GuardDuty-shaped document for ``event`` (the latest occurrence) matched by ``det``."""
    m = det.meta
    account = account_id or event.device.account_uid
    reg = region or event.device.region
    instance = event.device.instance_uid
    fid = finding_id(account, reg, m.type, instance, det.dedup_key(event))
    severity = float(det.severity(event))
    sev.label(severity)
    created = iso(now_ns if now_ns is not None else event.time)
    runtime: dict[str, Any] = {}
    p = getattr(event, "process", None)
    if isinstance(p, Process):
        runtime["process"] = process_details(p)
    context = det.context(event, ctx)
    if context:
        runtime["context"] = context
    service: dict[str, Any] = {
        "serviceName": SERVICE_NAME,
        "detectorId": detector_id,
        "featureName": FEATURE_NAME,
        "resourceRole": det.resource_role(event),
        "archived": False,
        "count": count,
        "eventFirstSeen": iso(first_seen_ns if first_seen_ns is not None else event.time),
        "eventLastSeen": iso(last_seen_ns if last_seen_ns is not None else event.time),
        "runtimeDetails": runtime,
        "additionalInfo": {
            "type": "default",
            "value": json.dumps(
                # a detection's extra keys first: they never override the ones below
                det.additional_info(event)
                | {
                    "maturity": m.maturity,
                    "mitre": list(m.mitre),
                    "agentDetails": {"agentVersion": event.device.agent_version},
                    "eventKind": event.kind,
                    # the instance was proven by its signed identity document (vigil.identity);
                    # triage acts only on findings that say true
                    "identityVerified": identity_verified,
                },
                separators=(",", ":"),
            ),
        },
    }
    if m.ec2:  # no agent, no process: GuardDuty's EC2 findings carry neither runtimeDetails nor featureName
        del service["featureName"], service["runtimeDetails"]
        info = json.loads(service["additionalInfo"]["value"])
        del info["agentDetails"]
        info["dataSource"] = DATA_SOURCES.get(event.kind, event.kind)
        service["additionalInfo"]["value"] = json.dumps(info, separators=(",", ":"))
    action = det.action(event, ctx)
    if action is None:
        if isinstance(event, NetworkFlow):
            from vigil.detections.ec2._common import connection_action

            action = connection_action(event)
        else:
            action = _api_action(event) if isinstance(event, ApiActivity) else _action(event)
    if action is not None:
        service["action"] = action
    detection = det.detection_details(event, ctx)
    if detection:
        service["detection"] = detection
    ti = det.threat_intel(event, ctx)
    if ti:
        service["evidence"] = {"threatIntelligenceDetails": ti}
    return {
        "schemaVersion": SCHEMA_VERSION,
        "accountId": account,
        "region": reg,
        "partition": partition,
        "id": fid,
        "arn": f"arn:{partition}:guardduty:{reg}:{account}:detector/{detector_id}/finding/{fid}",
        "type": m.type,
        "severity": severity,
        "confidence": confidence(
            m.type, event.kind, indicator=bool(ti), maturity=m.maturity, identity_verified=identity_verified
        ),
        "title": f"{det.title(event)} on EC2 instance {instance}.",
        "description": m.description,
        "resource": _resource(event),
        "service": service,
        "createdAt": created,
        "updatedAt": created,
    }


def _stands_for(m: Match) -> tuple[int, int]:
    """(events, last time ns) one match counts for. An event the agent folded repeats into (wire
    ``repeats``: equal but for time, seq and ephemeral port) counts as all of them for a rule
    without state, which would have matched each of them as it matched the first; a stateful rule
    (a first sighting, a threshold) might not have, so it counts the one event it saw, as does an
    attack sequence's signal (its seq above every event's, ``vigil.sequences``)."""
    e = m.event
    n = getattr(e, "count", 1)
    if n > 1 and not m.detection.stateful and e.seq <= SEQ_MAX:
        return n, max(e.time, getattr(e, "end_time", 0))
    return 1, e.time


def occurrences(
    matches: list[Match],
    ctx: Context,
    *,
    account_id: str,
    region: str,
    detector_id: str = DEFAULT_DETECTOR_ID,
    identity_verified: bool = False,
) -> list[Occurrence]:
    """Group one batch's matches by finding id; the latest event of each group shapes the document."""
    groups: dict[tuple[str, str, str], list[Match]] = {}
    for mt in matches:
        key = (mt.detection.meta.type, mt.event.device.instance_uid, mt.detection.dedup_key(mt.event))
        groups.setdefault(key, []).append(mt)
    out: list[Occurrence] = []
    for group in groups.values():
        latest = max(group, key=lambda x: (x.event.time, x.event.seq))
        first = min(x.event.time for x in group)
        weights = [_stands_for(x) for x in group]
        count = sum(n for n, _ in weights)
        last = max(t for _, t in weights)
        doc = build_finding(
            latest.detection,
            latest.event,
            ctx,
            account_id=account_id,
            region=region,
            detector_id=detector_id,
            count=count,
            first_seen_ns=first,
            last_seen_ns=last,
            identity_verified=identity_verified,
        )
        seqs = [x.event.seq for x in group]
        sightings = tuple((x.event.seq, x.event.time) for x in group)
        folded = tuple((x.event.seq, n, t) for x, (n, t) in zip(group, weights, strict=True) if n > 1)
        out.append(Occurrence(doc, count, first, last, min(seqs), max(seqs), False, sightings, folded=folded))
    return out
