"""Names Vigil writes on EC2 resources. The tags are the source of truth for release."""

from __future__ import annotations

from typing import Final

FINDING_ID: Final = "vigil:finding-id"
ISOLATION_STATE: Final = "vigil:isolation-state"  # isolating | isolated | released
ISOLATED_AT: Final = "vigil:isolated-at"
RELEASED_AT: Final = "vigil:released-at"
# On each network interface: its security groups before isolation, "sg-a,sg-b".
ORIGINAL_GROUPS: Final = "vigil:original-sgs"
# On the instance: DisableApiTermination before isolation, "true" | "false".
ORIGINAL_TERMINATION_PROTECTION: Final = "vigil:original-termination-protection"
# On the instance, set by its owners: "approve" (always ask) or "notify" (never isolate).
RESPONSE_MODE: Final = "vigil:response-mode"
# On Vigil's own security groups: "untrack" | "isolation".
ROLE: Final = "vigil:role"

UNTRACK_GROUP_NAME: Final = "vigil-untrack"
ISOLATION_GROUP_NAME: Final = "vigil-isolation"
VIGIL_GROUP_NAMES: Final = frozenset({UNTRACK_GROUP_NAME, ISOLATION_GROUP_NAME})
