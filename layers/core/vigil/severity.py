"""GuardDuty severity bands: Low 1-3.9, Medium 4-6.9, High 7-8.9, Critical 9-10."""

from __future__ import annotations

from typing import Final, Literal

Label = Literal["Low", "Medium", "High", "Critical"]

LOW: Final = 2.0
MEDIUM: Final = 5.0
HIGH: Final = 8.0
CRITICAL: Final = 9.0


def label(severity: float) -> Label:
    if not 1.0 <= severity <= 10.0:
        raise ValueError(f"severity {severity} outside GuardDuty's 1-10 range")
    if severity >= 9.0:
        return "Critical"
    if severity >= 7.0:
        return "High"
    if severity >= 4.0:
        return "Medium"
    return "Low"
