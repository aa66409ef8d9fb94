"""Storing sample findings (``vigil.sample_findings``) in FindingsTable.

A sample is written as a new finding item (``findings_store.new_item``: the same attributes, so
every reader, the stream and publishing treat it as any finding) plus ``sample = true``. The write
is conditional: it creates the item, or replaces an earlier *sample*; it never overwrites a real
finding (the ids differ by construction; the condition makes it certain). Published like any new
finding: that is the point, routing can be tested with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from vigil.findings import Occurrence
from vigil_aws.findings_store import is_conditional_failure, new_item, now_iso


@dataclass
class Stored:
    written: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # an item of that id exists and is not a sample


def store_samples(
    ddb: Any, table: str, samples: Sequence[Occurrence], *, now_s: float, retention_days: int = 90
) -> Stored:
    now = now_iso(lambda: now_s)
    expires = int(now_s) + retention_days * 86400
    out = Stored()
    for occ in samples:
        item = {**new_item(occ, now, expires), "sample": {"BOOL": True}}
        try:
            ddb.put_item(
                TableName=table,
                Item=item,
                ConditionExpression="attribute_not_exists(id) OR #sample = :yes",
                ExpressionAttributeNames={"#sample": "sample"},  # a DynamoDB reserved word
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            out.refused.append(occ.id)
            continue
        out.written.append(occ.id)
    return out
