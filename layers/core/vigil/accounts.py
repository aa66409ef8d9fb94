"""Which AWS accounts an administrator stack accepts telemetry from (multi-account, docs/multi-account.md).

An administrator stack owns the telemetry stream; the member accounts of its Organization put
their agents' batches on it cross-account. Who may *write* is decided by IAM (the stream's
resource policy: the listed member accounts, or every principal of the Organization). Whose
telemetry *counts* is decided here, from the one account id nobody can forge: the one in the
instance identity document AWS signed (``vigil.identity``), never a field the agent writes.

The rule is an explicit allow-list: the administrator's own account plus ``MemberAccountIds``.
An Organization id alone admits no member at ingest: membership cannot be read from a signed
document (it carries no organization), and asking AWS Organizations from ingest would make every
batch depend on a management-account API. A batch whose signed account is not listed is
dead-lettered whole with its reason, so adding an account is one stack update and forgetting one
fails closed and visibly.

Pure: the list is parsed from a string here; the caller reads it from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

ACCOUNT_ID: Final = re.compile(r"[0-9]{12}")
ORGANIZATION_ID: Final = re.compile(r"o-[a-z0-9]{10,32}")


def parse_account_ids(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Account ids from a comma list (or an iterable), blanks dropped, order kept, duplicates
    removed. Raises ValueError naming the first value that is not a 12-digit account id."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for item in items:
        value = item.strip()
        if not value:
            continue
        if not ACCOUNT_ID.fullmatch(value):
            raise ValueError(f"{value[:40]!r} is not an AWS account id (12 digits)")
        if value not in out:
            out.append(value)
    return tuple(out)


def parse_organization_id(raw: str) -> str:
    """An Organization id (``o-`` and 10 to 32 lowercase letters or digits), or "" for none."""
    value = raw.strip()
    if value and not ORGANIZATION_ID.fullmatch(value):
        raise ValueError(f"{value[:40]!r} is not an AWS Organizations id (o-xxxxxxxxxx)")
    return value


@dataclass(frozen=True, slots=True)
class AccountAllowList:
    """The administrator account and its member accounts: the accounts whose signed instance
    identities ingest accepts."""

    administrator: str
    members: tuple[str, ...] = ()
    organization_id: str = ""  # informational here: IAM enforces it on the stream (aws:PrincipalOrgID)

    def __post_init__(self) -> None:
        parse_account_ids([self.administrator, *self.members])  # raises on a malformed id
        parse_organization_id(self.organization_id)

    @classmethod
    def parse(cls, administrator: str, members: str, organization_id: str = "") -> AccountAllowList:
        return cls(
            administrator,
            tuple(m for m in parse_account_ids(members) if m != administrator),
            parse_organization_id(organization_id),
        )

    @property
    def accounts(self) -> frozenset[str]:
        return frozenset((self.administrator, *self.members))

    def allows(self, account_id: str) -> bool:
        return account_id in self.accounts

    def refusal(self, account_id: str) -> str | None:
        """None when ``account_id`` is accepted, else the reason (for the dead letter)."""
        if self.allows(account_id):
            return None
        where = f" (Organization {self.organization_id} is not enough)" if self.organization_id else ""
        return (
            f"account {account_id[:64]!r} of the signed instance identity is neither the administrator "
            f"account {self.administrator} nor one of the {len(self.members)} MemberAccountIds{where}"
        )


__all__ = ["AccountAllowList", "parse_account_ids", "parse_organization_id"]
