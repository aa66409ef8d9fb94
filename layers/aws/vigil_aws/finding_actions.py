"""What a person does to findings: archive, unarchive, feedback (GuardDuty's ArchiveFindings,
UnarchiveFindings, UpdateFindingsFeedback).

- **archive**: ``status = ARCHIVED``, ``archiveSource = MANUAL``, ``archivedBy``, ``archivedAt``.
  The finding stays in the table (and queryable, ``--archived``) until its retention ends. Its
  recurrences keep it archived and are still published, as GuardDuty does for findings archived
  by hand (suppression rules are the way to silence a pattern).
- **unarchive**: ``status = ACTIVE``, the archive attributes removed. Not an event by itself
  (GuardDuty publishes findings, not status changes); the next occurrence is published as usual,
  at once if the finding was never published (it had been suppressed).
- **feedback**: ``USEFUL`` | ``NOT_USEFUL`` with an optional comment (at most 1,024 characters),
  who and when; shown as GuardDuty's ``service.userFeedback``. Not an update of the finding.

Archive and unarchive add one to ``rev``, the revision every ingest write is conditional on
(``findings_store``): an ingest write racing them fails its condition, reads the item again and
writes on top, so the archive and the occurrence both stand. Feedback touches attributes ingest
never writes. ``updatedAt`` is left alone by all three, so none of them is published.

With ``securityhub`` (a Security Hub client; the stack imports findings there, ``SecurityHubImport``),
each action is reflected on the imported finding with ``BatchUpdateFindings``
(``vigil_aws.securityhub.workflow_update``: archived -> RESOLVED, unarchived -> NEW, feedback ->
VerificationState, the comment as a Note). A failure there does not undo the action in Vigil: it
is listed in ``ActionResult.unreflected`` with its reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from vigil.findings import iso
from vigil_aws.findings_store import ACTIVE, ARCHIVED, MANUAL, is_conditional_failure, raw_document_text
from vigil_aws.securityhub import workflow_update

MAX_IDS: Final = 50  # GuardDuty: at most 50 finding ids per ArchiveFindings / UnarchiveFindings call
MAX_COMMENT: Final = 1024
Feedback = Literal["USEFUL", "NOT_USEFUL"]
FEEDBACK: Final = ("USEFUL", "NOT_USEFUL")


class FindingActionError(ValueError):
    """Bad input for an action (too many ids, a malformed id, a bad feedback value)."""


@dataclass
class ActionResult:
    done: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # no such finding
    unreflected: list[tuple[str, str]] = field(default_factory=list)  # (id, why) Security Hub refused


def _check_ids(ids: Iterable[str]) -> list[str]:
    out = list(dict.fromkeys(ids))
    if not out:
        raise FindingActionError("no finding id given")
    if len(out) > MAX_IDS:
        raise FindingActionError(f"{len(out)} finding ids; at most {MAX_IDS} at a time (as GuardDuty)")
    for fid in out:
        if not (0 < len(fid) <= 300) or not fid.isascii() or not fid.replace("-", "").isalnum():
            raise FindingActionError(f"{fid[:80]!r} is not a finding id")
    return out


class FindingActions:
    def __init__(
        self, ddb: Any, table: str, *, clock: Callable[[], float] = time.time, securityhub: Any = None
    ) -> None:
        self.ddb = ddb
        self.table = table
        self.clock = clock
        self.securityhub = securityhub

    def _now(self) -> str:
        return iso(int(self.clock() * 1e9))

    def _each(
        self, ids: Iterable[str], update: dict[str, Any], feedback: str | None = None, comment: str = ""
    ) -> ActionResult:
        result = ActionResult()
        for fid in _check_ids(ids):
            try:
                out = self.ddb.update_item(
                    TableName=self.table,
                    Key={"id": {"S": fid}},
                    ConditionExpression="attribute_exists(id)",
                    ReturnValues="ALL_NEW",
                    **update,
                )
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
                result.missing.append(fid)
                continue
            result.done.append(fid)
            if self.securityhub is not None:
                why = self._reflect(out.get("Attributes", {}), feedback, comment)
                if why:
                    result.unreflected.append((fid, why))
        return result

    def _reflect(self, item: dict[str, Any], feedback: str | None, comment: str) -> str:
        """Mirror the item's archive state (and the feedback) on its Security Hub finding; the
        reason it could not, or ''."""
        try:
            arn = str(json.loads(raw_document_text(item["finding"]))["arn"])
            request = workflow_update(
                arn,
                archived=item.get("status", {}).get("S") == ARCHIVED,
                feedback=feedback,
                comment=comment or None,
            )
            out = self.securityhub.batch_update_findings(**request)
        except (KeyError, ValueError, TypeError) as exc:
            return f"no finding ARN to reflect: {exc!r}"[:300]
        except ClientError as exc:
            return f"Security Hub: {exc}"[:300]
        unprocessed = out.get("UnprocessedFindings") or []
        if unprocessed:
            u = unprocessed[0]
            return f"Security Hub: {u.get('ErrorCode')} {u.get('ErrorMessage')}"[:300]
        return ""

    def archive(self, ids: Iterable[str], who: str) -> ActionResult:
        return self._each(
            ids,
            {
                "UpdateExpression": (
                    "SET #status = :archived, archiveSource = :manual, archivedBy = :who, "
                    "archivedAt = :now, rev = if_not_exists(rev, :zero) + :one"
                ),
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":archived": {"S": ARCHIVED},
                    ":manual": {"S": MANUAL},
                    ":who": {"S": who[:512]},
                    ":now": {"S": self._now()},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
            },
        )

    def unarchive(self, ids: Iterable[str], who: str) -> ActionResult:
        return self._each(
            ids,
            {
                "UpdateExpression": (
                    "SET #status = :active, unarchivedBy = :who, unarchivedAt = :now, "
                    "rev = if_not_exists(rev, :zero) + :one "
                    "REMOVE archiveSource, archivedBy, archivedAt, suppressedBy"
                ),
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":active": {"S": ACTIVE},
                    ":who": {"S": who[:512]},
                    ":now": {"S": self._now()},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
            },
        )

    def feedback(self, ids: Iterable[str], value: str, who: str, comment: str = "") -> ActionResult:
        if value not in FEEDBACK:
            raise FindingActionError(f"feedback {value[:40]!r} must be USEFUL or NOT_USEFUL")
        if len(comment) > MAX_COMMENT:
            raise FindingActionError(f"comment of {len(comment)} characters; at most {MAX_COMMENT}")
        values: dict[str, Any] = {":f": {"S": value}, ":who": {"S": who[:512]}, ":now": {"S": self._now()}}
        expr = "SET feedback = :f, feedbackBy = :who, feedbackAt = :now"
        if comment:
            expr += ", feedbackComment = :c"
            values[":c"] = {"S": comment}
        else:
            expr += " REMOVE feedbackComment"
        return self._each(
            ids, {"UpdateExpression": expr, "ExpressionAttributeValues": values}, value, comment
        )
