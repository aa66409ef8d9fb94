"""Export objects: which findings go in which S3 object, under which key, in which bytes.

Two layouts, both partitioned by the day of the finding version's ``updatedAt`` (so a retried
batch rewrites the same keys instead of adding copies):

- GuardDuty's publishing destination: ``<prefix>/AWSLogs/<account>/GuardDuty/<region>/<yyyy>/<mm>/<dd>/<name>.jsonl.gz``,
  gzip JSON Lines of the finding documents (one finding per line, GuardDuty's JSON);
- Amazon Security Lake custom source: ``ext/<source>/region=<region>/accountId=<account>/eventDay=<yyyymmdd>/<name>.<ext>``,
  OCSF Detection Findings (vigil/ocsf.py) in the bytes of the given encoder: Parquet in the
  Lambda (``vigil_aws.parquet``: Security Lake reads Parquet only), which this pure module does
  not import.

An object's name is a digest of the finding versions it holds: the same batch always lands on
the same key. Pure: no clock, no AWS.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from vigil.ocsf import to_ocsf

GUARDDUTY_LAYOUT: Final = "{prefix}AWSLogs/{account}/GuardDuty/{region}/{yyyy}/{mm}/{dd}/{name}.jsonl.gz"
SECURITY_LAKE_LAYOUT: Final = (
    "ext/{source}/region={region}/accountId={account}/eventDay={yyyy}{mm}{dd}/{name}.{ext}"
)


@dataclass(frozen=True, slots=True)
class ExportObject:
    key: str
    body: bytes  # gzip JSON Lines, or the Security Lake encoder's bytes
    finding_ids: tuple[str, ...]


def jsonl_gz(docs: Iterable[dict[str, Any]]) -> bytes:
    """gzip JSON Lines, byte-for-byte deterministic (no timestamp in the gzip header); ASCII-escaped,
    so no U+2028 / U+2029 in a value splits a line for a reader that splits on them."""
    text = "".join(json.dumps(d, separators=(",", ":")) + "\n" for d in docs)
    return gzip.compress(text.encode(), mtime=0)


def _name(findings: list[dict[str, Any]]) -> str:
    versions = sorted(f"{f.get('id')}@{f.get('updatedAt')}" for f in findings)
    return hashlib.sha256("\n".join(versions).encode()).hexdigest()[:32]


def _groups(findings: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for f in findings:
        day = str(f["updatedAt"])[:10]  # YYYY-MM-DD of ISO-8601
        groups[(str(f["accountId"]), str(f["region"]), day)].append(f)
    return groups


def _prefix(prefix: str) -> str:
    p = prefix.strip("/")
    return f"{p}/" if p else ""


def guardduty_objects(findings: Iterable[dict[str, Any]], prefix: str = "") -> list[ExportObject]:
    """One object per (account, region, day) of the given findings, in GuardDuty's layout."""
    out = []
    for (account, region, day), group in sorted(_groups(findings).items()):
        yyyy, mm, dd = day.split("-")
        key = GUARDDUTY_LAYOUT.format(
            prefix=_prefix(prefix), account=account, region=region, yyyy=yyyy, mm=mm, dd=dd, name=_name(group)
        )
        out.append(ExportObject(key, jsonl_gz(group), tuple(str(f["id"]) for f in group)))
    return out


def security_lake_objects(
    findings: Iterable[dict[str, Any]],
    source: str,
    encode: Callable[[list[dict[str, Any]]], bytes] = jsonl_gz,
    ext: str = "jsonl.gz",
) -> list[ExportObject]:
    """One object per (account, region, day), OCSF Detection Findings in Security Lake's layout,
    encoded by ``encode`` (the Lambda passes Parquet; ``ext`` names the format in the key)."""
    out = []
    for (account, region, day), group in sorted(_groups(findings).items()):
        yyyy, mm, dd = day.split("-")
        key = SECURITY_LAKE_LAYOUT.format(
            source=source, region=region, account=account, yyyy=yyyy, mm=mm, dd=dd, name=_name(group), ext=ext
        )
        out.append(ExportObject(key, encode([to_ocsf(f) for f in group]), tuple(str(f["id"]) for f in group)))
    return out
