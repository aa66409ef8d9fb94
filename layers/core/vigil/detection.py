"""What a detection is (DESIGN §3.3).

A detection is one module under ``vigil/detections/<threat_purpose>/`` defining one subclass of
``Detection``: typed metadata (``meta``), the normalized event kinds it consumes (``kinds``), a
``match`` predicate, optional hooks (``title``, ``dedup_key``, ``context``, ``severity``,
``state_keys`` + ``observe`` for stateful rules) and ``examples``: events that must fire and near
misses that must not. The registry discovers modules; the engine indexes detections by kind and,
for detections that declare a program prefilter (``programs`` / ``program_prefixes``), by the
acting program's name, so a rule never even runs for programs it could not fire on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

from vigil import severity as sev
from vigil.events import ApiActivity, DnsActivity, Event, NetworkActivity, NetworkFlow, Process
from vigil.intel import EMPTY, Intel
from vigil.state import State

Maturity = Literal["experimental", "stable"]
ResourceRole = Literal["ACTOR", "TARGET"]

VERSION_CHARS: Final = "0123456789."  # stripped from the end of a program name: python3.11 -> python


def program_name(event: Any) -> str:
    """The acting program's name the prefilter looks at: ``vocab.base_name(event.process)``, '' without a process."""
    p: Process | None = getattr(event, "process", None)
    return (p.file.name or p.name) if p is not None else ""


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

    @property
    def ec2(self) -> bool:
        """A GuardDuty EC2 type (flow logs, DNS logs, CloudTrail), not a runtime one."""
        return not self.type.split(":", 1)[-1].startswith("Runtime/")


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
    # Optional program prefilter (None / () = every event of ``kinds`` is offered). See ``offered``.
    programs: ClassVar[frozenset[str] | None] = None
    program_prefixes: ClassVar[tuple[str, ...]] = ()
    # Optional shared gate: a cheap necessary condition of ``match`` that several detections
    # declare (the same function, e.g. "the destination IP is on some threat list" for the five
    # ThreatListIp types). The engine calls it once per event for all of them and offers them the
    # event only when it returns True (or raises). ``match`` must return False whenever it is False.
    gate: ClassVar[Callable[[Any, Context], bool] | None] = None

    def match(self, event: Any, ctx: Context) -> bool:
        raise NotImplementedError

    # --- program prefilter ---------------------------------------------------------------
    @classmethod
    def prefiltered(cls) -> bool:
        return cls.programs is not None or bool(cls.program_prefixes)

    @classmethod
    def offered(cls, program: str) -> bool:
        """Whether the engine offers this detection events whose acting program is ``program``.

        ``program`` is ``program_name(event)``: ``vocab.base_name(event.process)`` (the exe's file
        name, else comm), or '' for an event without a process. The rule, with ``n = program.lower()``:

        - no prefilter declared (``programs is None`` and no ``program_prefixes``): always offered;
        - ``n`` is in ``programs`` (compared lower-case), or
        - ``n`` with trailing version characters (digits and dots) stripped is in ``programs``
          (``python3.11`` -> ``python``, ``php8.2`` -> ``php``, ``bash5`` -> ``bash``), or
        - ``n`` starts with one of ``program_prefixes`` (lower-case).

        The rule only ever widens the declared names (case, versions, prefixes); a detection must
        declare a prefilter only when its ``match`` provably returns False for every program the
        rule rejects (tests/unit/test_engine_prefilter.py checks the equivalence on a workload and
        on every example). Never declare one for a rule that also inspects arguments, paths or
        hashes of arbitrary programs (a renamed miner, LD_PRELOAD, a deleted exe).
        """
        if not cls.prefiltered():
            return True
        n = program.lower()
        names = frozenset(x.lower() for x in cls.programs or ())
        if n in names or n.rstrip(VERSION_CHARS) in names:
            return True
        return any(n.startswith(x.lower()) for x in cls.program_prefixes)

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

    def additional_info(self, event: Any) -> dict[str, Any]:
        """Extra keys for ``service.additionalInfo.value`` (e.g. an imported rule's id and author)."""
        return {}

    def threat_intel(self, event: Any, ctx: Context) -> list[dict[str, Any]]:
        """``service.evidence.threatIntelligenceDetails`` entries, for threat-list matches."""
        return []

    def resource_role(self, event: Any) -> ResourceRole:
        """``service.resourceRole``: the instance acted (ACTOR) or was acted on (TARGET); GuardDuty's
        brute-force types depend on it (their severity too)."""
        return self.meta.resource_role

    def detection_details(self, event: Any, ctx: Context) -> dict[str, Any] | None:
        """``service.detection`` (GuardDuty's Detection: an anomaly or an attack sequence), None: absent."""
        return None

    def action(self, event: Any, ctx: Context) -> dict[str, Any] | None:
        """``service.action`` when the default for the event (networkConnectionAction,
        dnsRequestAction ...) is not the right shape, e.g. a portProbeAction; None = the default."""
        return None

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
    if isinstance(event, NetworkFlow):
        return "NETWORK_CONNECTION"
    if isinstance(event, ApiActivity):
        return "AWS_API_CALL"
    return ""
