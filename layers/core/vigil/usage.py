"""Usage, as GuardDuty shows it: monitored vCPU-hours, what Vigil costs for them, what GuardDuty
Runtime Monitoring would charge for the same hours.

Pure: the adapter (``vigil_aws.usage``) reads the per-instance per-day usage items that
``CoverageStore`` accumulates from heartbeats, and the CLI passes in the stack's measured unit
costs (written by ``make bench-cost``). Nothing here reads a clock or the environment.

Counting: every heartbeat an agent sends (``agent.heartbeat_s`` = 60 s) credits its instance
``vcpus x HEARTBEAT_CREDIT_S`` vCPU-seconds, once (replays are filtered by the adapter's seq
watermark). An agent configured with another heartbeat cadence is over- or under-counted in
proportion; an agent's start and stop heartbeats add at most a minute each.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

HOURS_PER_MONTH: Final = 730.0  # AWS's pricing month
DAYS_PER_MONTH: Final = 30  # `vigil usage`'s "30-day month"
HEARTBEAT_CREDIT_S: Final = 60  # the agent's default heartbeat_s: time one heartbeat reports
MAX_VCPUS: Final = 4096  # a heartbeat claiming more is bounded here (the agent's value is hostile)

# GuardDuty Runtime Monitoring (EC2), us-east-1: $ per vCPU-month by monthly tier, 730 h a month.
GUARDDUTY_TIERS: Final[tuple[tuple[float, float], ...]] = (
    (500.0, 1.50),  # the first 500 vCPUs
    (5000.0, 0.75),  # the next 4,500 (up to 5,000)
    (math.inf, 0.25),  # above 5,000
)


def heartbeat_credit_s(vcpus: int) -> int:
    """vCPU-seconds one heartbeat reports (its vCPUs, bounded to [0, MAX_VCPUS], x 60 s)."""
    return max(0, min(int(vcpus), MAX_VCPUS)) * HEARTBEAT_CREDIT_S


def guardduty_monthly_usd(vcpus: float) -> float:
    """GuardDuty's charge for a month of ``vcpus`` monitored vCPUs (average over the month), tiered."""
    left, usd, floor = max(0.0, vcpus), 0.0, 0.0
    for ceiling, price in GUARDDUTY_TIERS:
        band = min(left, ceiling - floor)
        usd += band * price
        left -= band
        floor = ceiling
        if left <= 0:
            break
    return usd


def guardduty_usd(vcpu_hours: float) -> float:
    """GuardDuty's charge for ``vcpu_hours`` consumed within one month (tiers on the average vCPUs)."""
    return guardduty_monthly_usd(vcpu_hours / HOURS_PER_MONTH)


@dataclass(frozen=True, slots=True)
class StackRates:
    """The stack's own cost per monitored vCPU-hour, measured by ``make bench-cost``, at the quiet
    and the busy rates, plus its fixed monthly floor (one Kinesis shard, schedules) per stack."""

    usd_per_vcpu_hour_quiet: float
    usd_per_vcpu_hour_busy: float
    fixed_usd_per_month: float = 0.0


@dataclass(frozen=True, slots=True)
class InstanceUsage:
    instance_id: str
    vcpu_seconds: int
    heartbeats: int
    vcpus: int

    @property
    def vcpu_hours(self) -> float:
        return self.vcpu_seconds / 3600.0


@dataclass(frozen=True, slots=True)
class UsageEstimate:
    days: int
    instances: tuple[InstanceUsage, ...]
    vcpu_hours: float
    avg_vcpus: float  # vCPUs monitored on average over the period
    vigil_usd_quiet: float  # the period
    vigil_usd_busy: float
    vigil_month_usd_quiet: float  # a 30-day month at the period's average
    vigil_month_usd_busy: float
    fixed_month_usd: float
    guardduty_usd: float  # the period
    guardduty_month_usd: float
    rates: StackRates

    # $ per vCPU-month: AWS's 730-hour month, the unit GuardDuty's price is quoted in.
    @property
    def usd_per_vcpu_month_quiet(self) -> float:
        return self._per_vcpu_month(self.rates.usd_per_vcpu_hour_quiet)

    @property
    def usd_per_vcpu_month_busy(self) -> float:
        return self._per_vcpu_month(self.rates.usd_per_vcpu_hour_busy)

    @property
    def guardduty_usd_per_vcpu_month(self) -> float:
        return guardduty_monthly_usd(self.avg_vcpus) / self.avg_vcpus if self.avg_vcpus else 0.0

    def _per_vcpu_month(self, usd_per_vcpu_hour: float) -> float:
        if not self.avg_vcpus:
            return 0.0
        return usd_per_vcpu_hour * HOURS_PER_MONTH + self.rates.fixed_usd_per_month / self.avg_vcpus


def per_instance(items: Iterable[Mapping[str, object]]) -> tuple[InstanceUsage, ...]:
    """Sum per-day usage items (``instanceId``, ``vcpuSeconds``, ``heartbeats``, ``vcpus``) per instance."""
    secs: dict[str, int] = {}
    beats: dict[str, int] = {}
    vcpus: dict[str, int] = {}
    for it in items:
        inst = str(it.get("instanceId", ""))
        secs[inst] = secs.get(inst, 0) + _int(it.get("vcpuSeconds"))
        beats[inst] = beats.get(inst, 0) + _int(it.get("heartbeats"))
        vcpus[inst] = max(vcpus.get(inst, 0), _int(it.get("vcpus")))
    return tuple(
        InstanceUsage(i, secs[i], beats[i], vcpus[i]) for i in sorted(secs, key=lambda k: (-secs[k], k))
    )


def estimate(instances: Iterable[InstanceUsage], days: int, rates: StackRates) -> UsageEstimate:
    """The period's vCPU-hours priced by Vigil's measured rates and by GuardDuty's tiers; the
    30-day month extrapolates the period's average monitored vCPUs."""
    if days <= 0:
        raise ValueError("days must be positive")
    inst = tuple(instances)
    vcpu_hours = sum(i.vcpu_hours for i in inst)
    period_h = days * 24.0
    avg_vcpus = vcpu_hours / period_h
    month_h = DAYS_PER_MONTH * 24.0
    fixed_period = rates.fixed_usd_per_month * period_h / HOURS_PER_MONTH
    fixed_month = rates.fixed_usd_per_month * month_h / HOURS_PER_MONTH
    gd_month_730 = guardduty_monthly_usd(avg_vcpus)  # GuardDuty's price is per 730-h month
    return UsageEstimate(
        days=days,
        instances=inst,
        vcpu_hours=vcpu_hours,
        avg_vcpus=avg_vcpus,
        vigil_usd_quiet=vcpu_hours * rates.usd_per_vcpu_hour_quiet + fixed_period,
        vigil_usd_busy=vcpu_hours * rates.usd_per_vcpu_hour_busy + fixed_period,
        vigil_month_usd_quiet=avg_vcpus * month_h * rates.usd_per_vcpu_hour_quiet + fixed_month,
        vigil_month_usd_busy=avg_vcpus * month_h * rates.usd_per_vcpu_hour_busy + fixed_month,
        fixed_month_usd=fixed_month,
        guardduty_usd=gd_month_730 * period_h / HOURS_PER_MONTH,
        guardduty_month_usd=gd_month_730 * month_h / HOURS_PER_MONTH,
        rates=rates,
    )


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float | str):
        try:
            return int(float(value))
        except ValueError:
            return 0
    return 0
