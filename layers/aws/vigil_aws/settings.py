"""Typed settings, parsed once at cold start from the environment the template sets.

A missing or malformed variable fails the cold start with a message that names the variable and
where it comes from, instead of a KeyError deep inside the first invocation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

PUBLISHING_FREQUENCY_S: Final[dict[str, int]] = {
    "FIFTEEN_MINUTES": 15 * 60,
    "ONE_HOUR": 60 * 60,
    "SIX_HOURS": 6 * 60 * 60,
}


class SettingsError(RuntimeError):
    """The function's environment does not match what template.yaml sets."""


def _get(env: Mapping[str, str], name: str, function: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(
            f"{function}: environment variable {name} is missing or empty; template.yaml sets it "
            f"(deploy the template, or set it when running the handler by hand)"
        )
    return value


def _int(env: Mapping[str, str], name: str, function: str, *, minimum: int = 0) -> int:
    raw = _get(env, name, function)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{function}: {name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{function}: {name}={value} must be >= {minimum}")
    return value


def _region(env: Mapping[str, str], function: str) -> str:
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    if not region:
        raise SettingsError(
            f"{function}: AWS_REGION is not set (Lambda sets it; set it when running by hand)"
        )
    return region


@dataclass(frozen=True, slots=True)
class IngestSettings:
    findings_table: str
    state_table: str
    coverage_table: str
    dead_letter_queue_url: str
    retention_days: int
    account_id: str
    region: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestSettings:
        e = os.environ if env is None else env
        fn = "IngestFunction"
        return cls(
            findings_table=_get(e, "FINDINGS_TABLE_NAME", fn),
            state_table=_get(e, "STATE_TABLE_NAME", fn),
            coverage_table=_get(e, "COVERAGE_TABLE_NAME", fn),
            dead_letter_queue_url=_get(e, "DEAD_LETTER_QUEUE_URL", fn),
            retention_days=_int(e, "FINDING_RETENTION_DAYS", fn, minimum=1),
            account_id=_get(e, "VIGIL_ACCOUNT_ID", fn),
            region=_region(e, fn),
        )


@dataclass(frozen=True, slots=True)
class PublishSettings:
    findings_table: str
    bus_name: str
    frequency: str
    region: str

    @property
    def frequency_s(self) -> int:
        return PUBLISHING_FREQUENCY_S[self.frequency]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PublishSettings:
        e = os.environ if env is None else env
        fn = e.get("POWERTOOLS_SERVICE_NAME") or "PublishFunction"  # also PublishSweepFunction
        frequency = _get(e, "FINDING_PUBLISHING_FREQUENCY", fn)
        if frequency not in PUBLISHING_FREQUENCY_S:
            raise SettingsError(
                f"{fn}: FINDING_PUBLISHING_FREQUENCY={frequency!r} must be one of {sorted(PUBLISHING_FREQUENCY_S)}"
            )
        return cls(
            findings_table=_get(e, "FINDINGS_TABLE_NAME", fn),
            bus_name=_get(e, "FINDINGS_BUS_NAME", fn),
            frequency=frequency,
            region=_region(e, fn),
        )
