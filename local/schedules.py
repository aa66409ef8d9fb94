"""EventBridge schedules for the offline stack.

Gap: moto stores a rule with a ``ScheduleExpression`` (what SAM makes of a function's ``Schedule``
event) but never fires it, so scheduled functions (PublishSweepFunction, CoverageFunction) would
never run offline. ``Schedules`` reads the stack's schedule rules through the public API and
invokes each rule's Lambda targets at its rate (``rate(N minute|minutes|hour|hours|day|days)``;
``cron(...)`` is reported and skipped), the first time one period after start, as EventBridge
does. ``run_now(name)`` invokes one scheduled function at once and returns its result (the
demo uses it rather than wait five minutes).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from local.runtime import Invocation, LocalRuntime

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_S = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def period_s(expression: str) -> float | None:
    """Seconds between firings of ``rate(...)``; None for anything else (cron)."""
    m = _RATE.match(expression.strip())
    return float(int(m.group(1)) * _UNIT_S[m.group(2)]) if m else None


@dataclass
class Schedule:
    rule: str
    rule_arn: str
    expression: str
    period_s: float
    function_arns: list[str]
    next_at: float


class Schedules:
    def __init__(self, runtime: LocalRuntime, events: Any, account_id: str, region: str) -> None:
        self.runtime = runtime
        self.events = events
        self.account_id = account_id
        self.region = region
        self.schedules: list[Schedule] = []
        self.skipped: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="schedules", daemon=True)
        self.fired: list[tuple[str, bool]] = []  # (function name, errored)

    def load(self) -> None:
        now = time.monotonic()
        for rule in self.events.list_rules().get("Rules", []):
            expr = rule.get("ScheduleExpression")
            if not expr or rule.get("State") == "DISABLED":
                continue
            period = period_s(expr)
            if period is None:
                self.skipped.append(f"{rule['Name']}: {expr} (only rate() is emulated)")
                continue
            targets = self.events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", [])
            arns = [t["Arn"] for t in targets if ":lambda:" in t["Arn"]]
            self.schedules.append(Schedule(rule["Name"], rule["Arn"], expr, period, arns, now + period))

    def start(self) -> None:
        self.load()
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    def _function(self, arn: str) -> Any:
        from moto.awslambda.models import lambda_backends

        return lambda_backends[self.account_id][self.region].get_function(arn)

    def _event(self, s: Schedule) -> dict[str, Any]:
        """The event EventBridge sends a scheduled target."""
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account_id,
            "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [s.rule_arn],
            "detail": {},
        }

    def run_now(self, function_name: str) -> Invocation:
        """Invoke the scheduled function whose name contains ``function_name`` (e.g.
        "CoverageFunction": CloudFormation names it ``<stack>-CoverageFunction-<suffix>``)."""
        for s in self.schedules:
            for arn in s.function_arns:
                fn = self._function(arn)
                if function_name in fn.function_name:
                    return self.runtime.invoke(fn, self._event(s))
        have = sorted(self._function(a).function_name for s in self.schedules for a in s.function_arns)
        raise KeyError(f"no scheduled function matching {function_name!r} (have: {have})")

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            now = time.monotonic()
            for s in self.schedules:
                if now < s.next_at:
                    continue
                s.next_at = now + s.period_s
                for arn in s.function_arns:
                    fn = self._function(arn)
                    inv = self.runtime.invoke(fn, self._event(s))  # never raises; logs go to lambda.log
                    self.fired.append((fn.function_name, inv.errored))
