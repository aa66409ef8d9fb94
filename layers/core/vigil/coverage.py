"""Coverage, as GuardDuty reports it: per EC2 instance HEALTHY or UNHEALTHY, with an issue.

Pure: the adapter (``vigil_aws.coverage_eval``) reads the inventory (the account's running EC2
instances), the coverage rows ``CoverageStore`` writes from heartbeats, and the status stored by
the previous evaluation; it passes ``now`` in. Nothing here reads a clock or the environment.

The inventory decides who is listed: an instance that never reported is listed (UNHEALTHY, No
Agent Reporting); a row whose instance is not in the inventory (stopped, terminated, or an id
only the agent claims) is not listed and changes no status (EC2 already says why it is gone).

Status (docs/coverage.md has the table):

- not reporting (no heartbeat, or the last one older than ``disconnected_after_s``): UNHEALTHY,
  explained by the first that applies: the exclusion tag (Agent Not Provisioned), a Linux-only
  agent on Windows (Agent Not Provisioned), a failed SSM association (SSM Instance Association
  Execution Failed), records rejected by the identity check (Agent Not Provisioned), else No
  Agent Reporting ("Waiting for SSM notification" while the instance is younger than
  ``disconnected_after_s``, "Agent disconnected" if it ever reported, empty otherwise);
- reporting, but a kernel outside the supported range (Agent Not Provisioned) or no process
  sensor at all (Vigil Sensors Degraded: the agent runs blind): UNHEALTHY;
- reporting: HEALTHY, with warnings for what a Vigil user must know and GuardDuty does not say:
  events dropped, lost by audit or spooled since the previous evaluation, audit-only (no eBPF),
  no DNS sensor, an identity problem, a failed association, the exclusion tag while still
  reporting. A warning never flips the status (events still arrive), so it sends no event.

A status change makes a ``Vigil Runtime Protection Unhealthy`` / ``... Healthy`` event with
GuardDuty's detail shape. A first evaluation (no previous status) sends an event only when the
instance is UNHEALTHY (``previousStatus`` null): a new fleet does not flood the bus with Healthy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

Status = Literal["HEALTHY", "UNHEALTHY"]
STATUSES: Final[tuple[Status, ...]] = ("HEALTHY", "UNHEALTHY")
MANAGEMENT_TYPES: Final = ("AUTO_MANAGED", "MANUAL", "DISABLED")

SCHEMA_VERSION: Final = "1.0"
SOURCE: Final = "vigil"
DETAIL_TYPE: Final[dict[Status, str]] = {
    "UNHEALTHY": "Vigil Runtime Protection Unhealthy",
    "HEALTHY": "Vigil Runtime Protection Healthy",
}

# GuardDuty's issue categories (reference/guardduty.md §6) and Vigil's own.
NO_AGENT_REPORTING: Final = "No Agent Reporting"
AGENT_NOT_PROVISIONED: Final = "Agent Not Provisioned"
SSM_EXECUTION_FAILED: Final = "SSM Instance Association Execution Failed"
SENSORS_DEGRADED: Final = "Vigil Sensors Degraded"
WAITING_FOR_SSM: Final = "Waiting for SSM notification"
AGENT_DISCONNECTED: Final = "Agent disconnected"

PROCESS_SENSORS: Final = ("ebpf", "audit")  # either one sees exec/connect; without both it is blind
DNS_SENSORS: Final = (
    "dns",
    "af_packet_dns",
)  # af_packet_dns: the name in the recorded batches (events/agent)
MAX_TEXT: Final = 512  # agent-written strings carried into an issue or warning are cut here
_KERNEL = re.compile(r"^\s*(\d{1,4})\.(\d{1,4})")


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance of the inventory (EC2 DescribeInstances)."""

    instance_id: str
    instance_type: str = ""
    state: str = "running"
    tags: Mapping[str, str] = field(default_factory=dict)
    launch_time: float | None = None  # epoch s
    platform: str = ""  # EC2's Platform: "windows", or empty for Linux/UNIX


@dataclass(frozen=True, slots=True)
class Counters:
    """An agent's loss counters since it started (cumulative; a restart starts them at 0)."""

    dropped: int = 0
    spooled: int = 0
    audit_lost: int = 0

    def since(self, before: Counters | None) -> Counters:
        """What grew since ``before``; a counter that went down means the agent restarted, so
        all of its current value is new."""
        if before is None:
            return self
        return Counters(
            *(
                now if now < then else now - then
                for now, then in (
                    (self.dropped, before.dropped),
                    (self.spooled, before.spooled),
                    (self.audit_lost, before.audit_lost),
                )
            )
        )


@dataclass(frozen=True, slots=True)
class Report:
    """An instance's coverage row: its latest heartbeat (as CoverageStore keeps it) and what the
    previous evaluation stored. ``last_heartbeat_at`` is None for a row that no heartbeat wrote."""

    instance_id: str
    last_heartbeat_at: float | None = None  # epoch s
    agent_version: str = ""
    kernel: str = ""
    hostname: str = ""
    sensors_active: tuple[str, ...] = ()
    sensors_unavailable: Mapping[str, str] = field(default_factory=dict)
    counters: Counters = Counters()
    identity_problem: str = ""
    identity_problem_at: float | None = None
    previous_status: Status | None = None
    previous_counters: Counters | None = None


@dataclass(frozen=True, slots=True)
class Association:
    """SSM State Manager's status for the agent association on one instance."""

    instance_id: str
    status: str  # Success | Failed | Pending | ...
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CoverageConfig:
    disconnected_after_s: float = 900.0  # > CoverageStore's 5-min row cadence, + a missed heartbeat
    exclusion_tag: str = "VigilManaged"  # value "false" (any case) opts an instance out
    min_kernel: tuple[int, int] = (4, 14)
    max_kernel: tuple[int, int] | None = None
    management: str = "AUTO_MANAGED"  # how the agent is installed when not excluded: the association


@dataclass(frozen=True, slots=True)
class Coverage:
    """The evaluation of one inventory instance."""

    instance_id: str
    instance_type: str
    status: Status
    issue: str  # "" when HEALTHY; else "<category>" or "<category>: <message>"
    warnings: tuple[str, ...]
    management_type: str
    agent_version: str
    last_heartbeat_at: float | None
    hostname: str
    kernel: str
    counters: Counters
    previous_status: Status | None

    @property
    def changed(self) -> bool:
        """Whether this evaluation sends an event (see the module docstring)."""
        if self.previous_status is None:
            return self.status == "UNHEALTHY"
        return self.status != self.previous_status

    def resource_details(self) -> dict[str, Any]:
        ec2: dict[str, Any] = {"instanceId": self.instance_id, "managementType": self.management_type}
        if self.instance_type:
            ec2["instanceType"] = self.instance_type
        if self.agent_version:
            ec2["agentDetails"] = {"version": self.agent_version}
        return {"resourceType": "EC2", "ec2InstanceDetails": ec2}

    def resource(self, account_id: str, updated_at: float, detector_id: str = "") -> dict[str, Any]:
        """GuardDuty's ``CoverageResource`` (ListCoverage) for this instance."""
        out: dict[str, Any] = {
            "resourceId": self.instance_id,
            "accountId": account_id,
            "resourceDetails": self.resource_details(),
            "coverageStatus": self.status,
            "updatedAt": iso(updated_at),
        }
        if detector_id:
            out["detectorId"] = detector_id
        if self.issue:
            out["issue"] = self.issue
        return out


def iso(epoch_s: float) -> str:
    """Epoch seconds -> ISO-8601 UTC with milliseconds; a time out of range is the epoch."""
    try:
        t = datetime.fromtimestamp(epoch_s, tz=UTC)
    except (OverflowError, OSError, ValueError):
        t = datetime.fromtimestamp(0, tz=UTC)
    if t.year < 1970:  # strftime would print a year of fewer than four digits
        t = datetime.fromtimestamp(0, tz=UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def cut(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def kernel_version(kernel: str) -> tuple[int, int] | None:
    """``(major, minor)`` of a ``uname -r`` string ("6.1.0-18-amd64" -> (6, 1)); None if unparsable."""
    m = _KERNEL.match(kernel)
    return (int(m.group(1)), int(m.group(2))) if m else None


def excluded(instance: Instance, config: CoverageConfig) -> bool:
    return instance.tags.get(config.exclusion_tag, "").strip().lower() == "false"


def _issue(category: str, message: str = "") -> str:
    return f"{category}: {message}" if message else category


def _kernel_problem(kernel: str, config: CoverageConfig) -> str:
    version = kernel_version(kernel)
    if version is None:
        return ""  # unknown is not unsupported: the agent did not say
    lo = config.min_kernel
    if version < lo:
        return f"Kernel {version[0]}.{version[1]} is lower than the supported {lo[0]}.{lo[1]}"
    hi = config.max_kernel
    if hi is not None and version > hi:
        return f"Kernel {version[0]}.{version[1]} is higher than the supported {hi[0]}.{hi[1]}"
    return ""


def _sensor_warnings(report: Report) -> list[str]:
    active = set(report.sensors_active)
    why = report.sensors_unavailable
    out = []
    if "audit" in active and "ebpf" not in active:
        out.append(cut(f"audit-only: ebpf unavailable ({why.get('ebpf', 'not reported')})"))
    if not active.intersection(DNS_SENSORS):
        out.append(cut(f"no DNS sensor ({why.get('dns', 'not reported')})"))
    return out


def _loss_warnings(delta: Counters) -> list[str]:
    out = []
    if delta.dropped > 0:
        out.append(f"{delta.dropped} events dropped since the last evaluation")
    if delta.audit_lost > 0:
        out.append(f"{delta.audit_lost} audit records lost by the kernel since the last evaluation")
    if delta.spooled > 0:
        out.append(f"{delta.spooled} events spooled (delayed) since the last evaluation")
    return out


def evaluate_one(
    instance: Instance,
    report: Report | None,
    now: float,
    config: CoverageConfig = CoverageConfig(),
    association: Association | None = None,
) -> Coverage:
    """Status, issue and warnings of one inventory instance (see the module docstring)."""
    r = report or Report(instance.instance_id)
    is_excluded = excluded(instance, config)
    management = "DISABLED" if is_excluded else config.management
    seen = r.last_heartbeat_at
    reporting = seen is not None and now - seen <= config.disconnected_after_s
    failed_ssm = association is not None and association.status.lower() == "failed"
    identity_recent = bool(r.identity_problem) and (
        seen is None or r.identity_problem_at is None or r.identity_problem_at >= seen
    )
    warnings: list[str] = []
    issue = ""
    if not reporting:
        if is_excluded:
            issue = _issue(AGENT_NOT_PROVISIONED, f"Exclusion tag {config.exclusion_tag}=false")
        elif instance.platform.lower() == "windows":
            issue = _issue(AGENT_NOT_PROVISIONED, "Platform windows is not supported (Linux only)")
        elif failed_ssm:
            assert association is not None
            issue = _issue(SSM_EXECUTION_FAILED, cut(association.detail))
        elif identity_recent:
            issue = _issue(
                AGENT_NOT_PROVISIONED, cut(f"Instance identity not verified: {r.identity_problem}")
            )
        elif seen is not None:
            issue = _issue(NO_AGENT_REPORTING, AGENT_DISCONNECTED)
        elif instance.launch_time is not None and now - instance.launch_time <= config.disconnected_after_s:
            issue = _issue(NO_AGENT_REPORTING, WAITING_FOR_SSM)
        else:
            issue = NO_AGENT_REPORTING
    else:
        kernel = _kernel_problem(r.kernel, config)
        blind = not any(s in r.sensors_active for s in PROCESS_SENSORS)
        if kernel:
            issue = _issue(AGENT_NOT_PROVISIONED, kernel)
        elif blind:
            why = "; ".join(f"{s}: {r.sensors_unavailable.get(s, 'not reported')}" for s in PROCESS_SENSORS)
            issue = _issue(SENSORS_DEGRADED, cut(f"no process sensor ({why})"))
        if not blind:
            warnings += _sensor_warnings(r)
        warnings += _loss_warnings(r.counters.since(r.previous_counters))
        if identity_recent:
            warnings.append(cut(f"identity problem: {r.identity_problem}"))
        if failed_ssm:
            assert association is not None
            warnings.append(cut(f"SSM association failed: {association.detail}"))
        if is_excluded:
            warnings.append(f"exclusion tag {config.exclusion_tag}=false, but the agent still reports")
    return Coverage(
        instance_id=instance.instance_id,
        instance_type=instance.instance_type,
        status="UNHEALTHY" if issue else "HEALTHY",
        issue=issue,
        warnings=tuple(warnings),
        management_type=management,
        agent_version=r.agent_version,
        last_heartbeat_at=seen,
        hostname=r.hostname,
        kernel=r.kernel,
        counters=r.counters,
        previous_status=r.previous_status,
    )


def evaluate(
    inventory: Iterable[Instance],
    reports: Iterable[Report],
    now: float,
    config: CoverageConfig = CoverageConfig(),
    associations: Iterable[Association] = (),
) -> list[Coverage]:
    """One Coverage per distinct running inventory instance, sorted by instance id. Reports of
    instances outside the inventory are ignored (see the module docstring)."""
    by_id = {r.instance_id: r for r in reports}
    assoc = {a.instance_id: a for a in associations}
    running = {i.instance_id: i for i in inventory if i.state == "running" and i.instance_id}
    return [
        evaluate_one(running[iid], by_id.get(iid), now, config, assoc.get(iid)) for iid in sorted(running)
    ]


def statistics(coverages: Sequence[Coverage]) -> dict[str, dict[str, int]]:
    """GuardDuty's ``CoverageStatistics``: COUNT_BY_COVERAGE_STATUS and COUNT_BY_RESOURCE_TYPE."""
    by_status = {s: sum(1 for c in coverages if c.status == s) for s in STATUSES}
    return {
        "countByCoverageStatus": {s: n for s, n in by_status.items() if n},
        "countByResourceType": {"EC2": len(coverages)} if coverages else {},
    }


def healthy_percent(coverages: Sequence[Coverage]) -> float:
    """The console's statistic: healthy instances / all instances x 100 (100 for none)."""
    if not coverages:
        return 100.0
    return 100.0 * sum(1 for c in coverages if c.status == "HEALTHY") / len(coverages)


def change_event(coverage: Coverage, account_id: str, now: float) -> dict[str, Any] | None:
    """The bus event of a status change (``source``, ``detail-type``, ``detail``), or None."""
    if not coverage.changed:
        return None
    detail: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "resourceAccountId": account_id,
        "currentStatus": coverage.status,
        "previousStatus": coverage.previous_status,
        "resourceDetails": coverage.resource_details(),
        "issue": coverage.issue,
        "lastUpdatedAt": iso(now),
    }
    return {"source": SOURCE, "detail-type": DETAIL_TYPE[coverage.status], "detail": detail}
