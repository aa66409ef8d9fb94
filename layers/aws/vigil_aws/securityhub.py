"""Security Hub: published findings imported as ASFF (``BatchImportFindings``), and the analyst's
archive / unarchive / feedback reflected on them (``BatchUpdateFindings``).

The document is pure (vigil/asff.py). Imports go in batches of 100 (the API's limit) and every
rejected finding is reported with its own error code, never only the first. A finding is imported
under the account's ``default`` product (a custom integration); re-importing the same ``Id``
updates it, so a retried batch does not duplicate.
"""

from __future__ import annotations

from typing import Any, Final

from vigil.asff import finding_identifier, to_asff
from vigil_aws.clients import client

IMPORT_BATCH: Final = 100
UPDATE_BATCH: Final = 100
NOTE_MAX: Final = 512  # BatchUpdateFindings Note.Text


def import_findings(findings: list[dict[str, Any]]) -> dict[str, str]:
    """BatchImportFindings for the findings; returns {finding id: error} for the rejected ones."""
    failed: dict[str, str] = {}
    id_of = {str(f["arn"]): str(f["id"]) for f in findings}
    docs = [to_asff(f) for f in findings]
    for start in range(0, len(docs), IMPORT_BATCH):
        batch = docs[start : start + IMPORT_BATCH]
        try:
            out = client("securityhub").batch_import_findings(Findings=batch)
        except Exception as exc:
            failed |= {id_of[d["Id"]]: f"{type(exc).__name__}: {exc}" for d in batch}
            continue
        for f in out.get("FailedFindings") or []:
            fid = id_of.get(str(f.get("Id")), str(f.get("Id")))
            failed[fid] = f"{f.get('ErrorCode')}: {f.get('ErrorMessage')}"
    return failed


def workflow_update(
    finding_arn: str, *, archived: bool, feedback: str | None = None, comment: str | None = None
) -> dict[str, Any]:
    """The BatchUpdateFindings request reflecting Vigil's archive state and feedback.

    archived -> Workflow RESOLVED (GuardDuty's archive hides a finding it judged done with);
    unarchived -> NEW. Feedback USEFUL -> VerificationState TRUE_POSITIVE, NOT_USEFUL ->
    FALSE_POSITIVE; the comment (analyst text) goes into Note, cut to its 512-character limit.
    """
    parts = finding_arn.split(":")
    if len(parts) < 6 or parts[2] != "guardduty":
        raise ValueError(f"not a Vigil finding ARN: {finding_arn[:200]!r}")
    partition, region, account = parts[1], parts[3], parts[4]
    request: dict[str, Any] = {
        "FindingIdentifiers": [finding_identifier(finding_arn, partition, region, account)],
        "Workflow": {"Status": "RESOLVED" if archived else "NEW"},
    }
    if feedback is not None:
        states = {"USEFUL": "TRUE_POSITIVE", "NOT_USEFUL": "FALSE_POSITIVE"}
        if feedback not in states:
            raise ValueError(f"feedback must be USEFUL or NOT_USEFUL, not {feedback[:40]!r}")
        request["VerificationState"] = states[feedback]
    if comment:
        text = "".join(c if c.isprintable() else " " for c in comment).strip()[:NOTE_MAX]
        if text:
            request["Note"] = {"Text": text, "UpdatedBy": "vigil"}
    return request


def reflect_workflow(
    finding_arn: str, archived: bool, feedback: str | None = None, comment: str | None = None
) -> None:
    """Call after Vigil archives / unarchives a finding or records feedback on it (the finding's
    ``arn``). Raises if Security Hub refused it (e.g. the finding was never imported)."""
    out = client("securityhub").batch_update_findings(
        **workflow_update(finding_arn, archived=archived, feedback=feedback, comment=comment)
    )
    if out.get("UnprocessedFindings"):
        u = out["UnprocessedFindings"][0]
        raise RuntimeError(
            f"Security Hub did not update {finding_arn}: {u.get('ErrorCode')} {u.get('ErrorMessage')}"
        )
