"""What a detection is (DESIGN §3.3).

A detection is one module under ``vigil/detections/<threat_purpose>/`` defining one subclass of
``Detection``: typed metadata (``meta``), the normalized event kinds it consumes (``kinds``), a
``match`` predicate, optional hooks (``title``, ``dedup_key``, ``context``, ``severity``,
``state_keys`` + ``observe`` for stateful rules) and ``examples``: events that must fire and near
misses that must not. The registry discovers modules; the engine indexes detections by kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from vigil import severity as sev
from vigil.events import DnsActivity, Event, NetworkActivity, Process
from vigil.intel import EMPTY, Intel
from vigil.state import State

Maturity = Literal["experimental", "stable"]
ResourceRole = Literal["ACTOR", "TARGET"]


@dataclass(frozen=True, slots=True)
class Meta:
    """Checked metadata (Sigma-style): the registry refuses a detection that lacks any of it."""

    type: str  # the GuardDuty finding type it produces, e.g. Execution:Runtime/ReverseShell
    severity: float  # default severity (GuardDuty's: Low 2, Medium 5, High 8)
    title: str  # one line, names what happened; instance id is appended by the finding builder
    description: str
    mitre: tuple[str, ...]  # ATT&CK technique ids, e.g. ("T1059.004",)
    runbook: str  # what the analyst does first
    false_positives: tuple[str, ...]
    references: tuple[str, ...] = ()
    maturity: Maturity = "experimental"
    resource_role: ResourceRole = "ACTOR"

    @property
    def threat_purpose(self) -> str:
        return self.type.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class Example:
    """Events run in order through every registered detection on a fresh state.

    ``also_fires`` declares other finding types this example legitimately produces; the shared
    examples test checks the exact set (own type + also_fires for a positive, also_fires alone for
    a near miss).
    """

    name: str
    events: tuple[Event, ...]
    also_fires: frozenset[str] = frozenset()
    intel: Intel | None = None  # threat lists this example needs (default: the built-in set)


@dataclass(frozen=True, slots=True)
class Context:
    """What a detection may consult besides the event: state, threat intel, settings."""

    state: State
    intel: Intel = field(default_factory=lambda: EMPTY)
    settings: Mapping[str, Any] = field(default_factory=dict)


class Detection:
    meta: ClassVar[Meta]
    kinds: ClassVar[frozenset[str]]
    fires: ClassVar[Sequence[Example]] = ()
    near_misses: ClassVar[Sequence[Example]] = ()
    stateful: ClassVar[bool] = False

    def match(self, event: Any, ctx: Context) -> bool:
        raise NotImplementedError

    # --- hooks with defaults -------------------------------------------------------------
    def title(self, event: Any) -> str:
        return self.meta.title

    def severity(self, event: Any) -> float:
        return self.meta.severity

    def dedup_key(self, event: Any) -> str:
        """Occurrences with the same key on the same instance aggregate into one finding."""
        p: Process | None = getattr(event, "process", None)
        return p.file.path if p is not None else ""

    def context(self, event: Any, ctx: Context) -> dict[str, Any]:
        """GuardDuty ``runtimeDetails.context`` fields (camelCase names of RuntimeContext)."""
        return {}

    def threat_intel(self, event: Any, ctx: Context) -> list[dict[str, Any]]:
        """``service.evidence.threatIntelligenceDetails`` entries, for threat-list matches."""
        return []

    def state_keys(self, event: Any) -> tuple[str, ...]:
        """Keys ``match`` will read, so the engine can prefetch them for the whole batch."""
        return ()

    # --- helpers for detections ----------------------------------------------------------
    @staticmethod
    def process_of(event: Any) -> Process | None:
        p: Process | None = getattr(event, "process", None)
        return p


def severity_label(value: float) -> str:
    return sev.label(value)


def action_type(event: Event) -> str:
    if isinstance(event, DnsActivity):
        return "DNS_REQUEST"
    if isinstance(event, NetworkActivity) and event.family != "unix":
        return "NETWORK_CONNECTION"
    return ""
