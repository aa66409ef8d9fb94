"""`vigil usage`: monitored vCPU-hours (from heartbeats), what Vigil costs for them, what
GuardDuty Runtime Monitoring would charge for the same hours.

Vigil's own consumption is estimated from the rates `make bench-cost` measured on the offline
stack (usage_model.json beside this file: $ per vCPU-hour on quiet and busy hosts, and the fixed
cost per stack), not read from CloudWatch or billing: see docs/cost.md.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vigil import usage as core
from vigil_aws.usage import first_day, usage_items
from vigil_cli import safe
from vigil_cli.stack import AccountOpt, resolve, stack_account

MODEL = Path(__file__).resolve().parent / "usage_model.json"
out = safe.console()


def load_rates(path: Path = MODEL) -> core.StackRates:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
        return core.StackRates(
            float(doc["usd_per_vcpu_hour_quiet"]),
            float(doc["usd_per_vcpu_hour_busy"]),
            float(doc.get("fixed_usd_per_month", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"cannot read the cost model {path} (run `make bench-cost`): {exc}") from None


def usage(
    days: Annotated[int, typer.Option("--days", min=1, max=100, help="the period: this many days")] = 30,
    stack: Annotated[
        str | None,
        typer.Option("--stack", help="CloudFormation stack name (default: the running offline stack)"),
    ] = None,
    region: Annotated[str | None, typer.Option("--region")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", help="AWS endpoint override, e.g. http://127.0.0.1:5000")
    ] = None,
    account: AccountOpt = None,
) -> None:
    """Monitored vCPU-hours per instance, Vigil's estimated cost, and GuardDuty's price for the same hours."""
    target = resolve(stack, region, endpoint_url)
    show(
        target.client("dynamodb"),
        target.output("CoverageTableName"),
        days,
        out,
        account=account,
        stack_account=stack_account(target),
    )


def show(
    ddb: Any,
    coverage_table: str,
    days: int,
    console: Console,
    *,
    account: str | None = None,
    stack_account: str = "",
) -> core.UsageEstimate:
    """Read the usage items of the period, print the usage and the estimates; returns the estimate.
    ``account``: only the instances of this account (items without one are ``stack_account``'s)."""
    rates = load_rates()
    items = [
        i
        for i in usage_items(ddb, coverage_table, "0000-00-00")
        if not account or (i["accountId"] or stack_account) == account
    ]
    # The period ends today, or at the newest usage if that is older (recorded traffic, the demo).
    today = dt.datetime.now(dt.UTC).date()
    newest = max((dt.date.fromisoformat(i["day"]) for i in items if _is_day(i["day"])), default=today)
    end = min(today, newest)
    since = first_day(days, end)
    period = [i for i in items if since <= i["day"] <= end.isoformat()]
    est = core.estimate(core.per_instance(period), days, rates)

    t = Table(title=f"Monitored usage, {days} days ({since} .. {end.isoformat()})")
    for col in ("instance", "vCPUs", "heartbeats", "vCPU-hours"):
        t.add_column(col, justify="left" if col == "instance" else "right")
    for i in est.instances:
        t.add_row(safe.text(i.instance_id), str(i.vcpus), str(i.heartbeats), f"{i.vcpu_hours:,.2f}")
    console.print(t)
    per_q = rates.usd_per_vcpu_hour_quiet * core.HOURS_PER_MONTH
    per_b = rates.usd_per_vcpu_hour_busy * core.HOURS_PER_MONTH
    console.print(
        f"vCPU-hours {est.vcpu_hours:,.2f} ({est.avg_vcpus:,.3f} vCPUs on average) on {len(est.instances)} instances"
    )
    console.print(
        f"Vigil (estimate, rates from make bench-cost): period ${est.vigil_usd_quiet:,.2f} quiet .. "
        f"${est.vigil_usd_busy:,.2f} busy; 30-day month ${est.vigil_month_usd_quiet:,.2f} .. "
        f"${est.vigil_month_usd_busy:,.2f} (both incl. ${rates.fixed_usd_per_month:,.2f}/month fixed per stack)"
    )
    console.print(f"Vigil per vCPU-month: ${per_q:,.4f} quiet .. ${per_b:,.4f} busy, plus the fixed cost")
    console.print(
        f"GuardDuty Runtime Monitoring for the same vCPU-hours: period ${est.guardduty_usd:,.2f}; 30-day month "
        f"${est.guardduty_month_usd:,.2f}; ${est.guardduty_usd_per_vcpu_month or 1.50:,.2f} per vCPU-month (tiered)"
    )
    return est


def _is_day(s: str) -> bool:
    try:
        dt.date.fromisoformat(s)
    except ValueError:
        return False
    return True
