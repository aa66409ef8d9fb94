"""`vigil usage`'s pure part (vigil/usage.py): vCPU-hours from usage items, Vigil's estimate and
GuardDuty's price for the same hours."""

from __future__ import annotations

import pytest

from vigil import usage


def test_a_heartbeat_credits_its_vcpus_for_one_heartbeat_interval_bounded() -> None:
    assert usage.heartbeat_credit_s(2) == 120
    assert usage.heartbeat_credit_s(-3) == 0  # hostile values are bounded
    assert usage.heartbeat_credit_s(10**9) == usage.MAX_VCPUS * 60


def test_per_instance_sums_the_days_of_each_instance() -> None:
    # GIVEN two days of i-a and one of i-b (values as the adapter reads them)
    items = [
        {"instanceId": "i-a", "vcpuSeconds": 7200, "heartbeats": 60, "vcpus": 2},
        {"instanceId": "i-a", "vcpuSeconds": "3600", "heartbeats": 30, "vcpus": 2},
        {"instanceId": "i-b", "vcpuSeconds": 3600, "heartbeats": 15, "vcpus": 4},
    ]
    # WHEN summed THEN per instance, the largest first
    got = usage.per_instance(items)
    assert [(i.instance_id, i.vcpu_hours, i.heartbeats, i.vcpus) for i in got] == [
        ("i-a", 3.0, 90, 2),
        ("i-b", 1.0, 15, 4),
    ]


def test_estimate_prices_the_period_and_a_30_day_month() -> None:
    # GIVEN 100 vCPUs monitored for a whole 10-day period, $0.001 per vCPU-hour quiet, $0.002 busy
    inst = [usage.InstanceUsage("i-a", 100 * 240 * 3600, 14400, 100)]
    rates = usage.StackRates(0.001, 0.002, fixed_usd_per_month=73.0)
    # WHEN estimated
    e = usage.estimate(inst, 10, rates)
    # THEN the period costs the hours x the rate plus the fixed share; the month is 720 h
    assert e.vcpu_hours == pytest.approx(24_000)
    assert e.avg_vcpus == pytest.approx(100)
    assert e.vigil_usd_quiet == pytest.approx(24.0 + 73.0 * 240 / 730)
    assert e.vigil_month_usd_busy == pytest.approx(100 * 720 * 0.002 + 73.0 * 720 / 730)
    # AND GuardDuty charges its first tier for 100 vCPUs: $150 per 730-h month
    assert e.guardduty_month_usd == pytest.approx(150.0 * 720 / 730)
    assert e.guardduty_usd_per_vcpu_month == pytest.approx(1.50)
    assert e.usd_per_vcpu_month_quiet == pytest.approx(0.73 + 0.73)


def test_estimate_of_nothing_monitored_is_zero_not_an_error() -> None:
    e = usage.estimate([], 30, usage.StackRates(0.001, 0.002))
    assert (e.vcpu_hours, e.usd_per_vcpu_month_quiet, e.guardduty_usd) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="days"):
        usage.estimate([], 0, usage.StackRates(0.001, 0.002))
