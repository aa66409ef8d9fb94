"""A finding's ``confidence``: how likely it is that the finding names what really happened.

GuardDuty's ``Finding.confidence`` is a double it does not document the scale of; Vigil uses the
scale of the formats its findings are exported to (ASFF ``Confidence`` and OCSF
``confidence_score``: 0-100, a ratio, 0 = certainly a false positive), so an export copies it
unchanged.

The rule is a product of three independent doubts, each read from what the finding already says
(no detection declares anything, so a new detection module is scored like its peers):

- **mechanism**, how the detection knows:
  ``indicator`` 0.9: an exact match against a threat list (``evidence.threatIntelligenceDetails``);
  the doubt left is the list's quality;
  ``kernel`` 0.8: the system call the finding type names was observed by the kernel (ptrace,
  process_vm_writev, a write to /proc/<pid>/mem, a module load, a mount, a setuid, a watched file
  operation ...); the doubt left is whether it was malicious;
  ``pattern`` 0.6: a heuristic over a process (its name, command line, lineage) or traffic;
  ``reputation`` 0.5: a score from a model (GuardDuty's ``.Reputation`` types, DGA).
- **maturity** of the detection: ``stable`` 1.0, ``experimental`` 0.85 (its false-positive rate
  is not measured yet).
- **attribution**: the instance was proven by its signed identity document (``identityVerified``)
  1.0; else 0.7 (the host block was taken as written: ``vigil replay``, an unsigned source).

``confidence = round(100 * mechanism * maturity * attribution)``: from 90 (a threat-list hit of a
stable detection on a verified instance) down to 30.
"""

from __future__ import annotations

from typing import Final, Literal

Mechanism = Literal["indicator", "kernel", "pattern", "reputation"]

MECHANISM: Final[dict[Mechanism, float]] = {
    "indicator": 0.9,
    "kernel": 0.8,
    "pattern": 0.6,
    "reputation": 0.5,
}
MATURITY: Final[dict[str, float]] = {"stable": 1.0, "experimental": 0.85}
UNVERIFIED: Final = 0.7

# event kinds that are the observed system call itself (vigil.events kinds of the agent)
KERNEL_KINDS: Final = frozenset(
    {
        "ptrace",
        "process_vm_write",
        "proc_mem_write",
        "module_load",
        "memfd_exec",
        "mount",
        "userfaultfd",
        "setuid",
        "unix_connect",
        "file_write",
        "file_rename",
        "file_unlink",
        "file_link",
        "file_open_sensitive",
    }
)


def mechanism(finding_type: str, event_kind: str, *, indicator: bool) -> Mechanism:
    if ".Reputation" in finding_type or "DGADomainRequest" in finding_type:
        return "reputation"
    if indicator:
        return "indicator"
    if event_kind in KERNEL_KINDS:
        return "kernel"
    return "pattern"


def confidence(
    finding_type: str, event_kind: str, *, indicator: bool, maturity: str, identity_verified: bool
) -> float:
    """The finding's confidence, 0-100 (see the module docstring for the rule)."""
    score = MECHANISM[mechanism(finding_type, event_kind, indicator=indicator)]
    score *= MATURITY.get(maturity, MATURITY["experimental"])
    score *= 1.0 if identity_verified else UNVERIFIED
    return float(round(100 * score))
