"""Sample findings: one finding of each type, marked as a sample, as GuardDuty's
``CreateSampleFindings`` makes them (``service.additionalInfo`` carries ``"sample": true`` and the
title starts with ``[SAMPLE]``), so a new user sees every page filled and can test their routing.

Each sample is what the detection's own first firing example produces (its process, lineage and
context are real), run alone on a fresh state, then:

- re-identified: its id is ``finding_id(account, region, type, instance, "sample")`` so a sample
  never aggregates into a real finding of the same instance, and generating again updates the
  same sample (one per type);
- moved to ``now_ns`` (the examples carry a fixed 2025 time; a sample is "seen" when made);
- marked ``sample: true`` in ``additionalInfo`` and ``[SAMPLE] `` in the title; its identity is
  never "verified", so triage only ever notifies about it.

Pure: the caller passes the time and the detections; nothing is stored here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from vigil.detection import Context, Detection
from vigil.engine import Engine
from vigil.findings import Occurrence, finding_id, iso, occurrences
from vigil.intel.builtin import builtin_intel
from vigil.state import InMemoryState

SAMPLE_KEY: Final = "sample"
TITLE_PREFIX: Final = "[SAMPLE] "


def is_sample(finding: dict[str, object]) -> bool:
    """Whether ``finding`` says it is a sample (a JSON ``true`` in additionalInfo, nothing else)."""
    service = finding.get("service")
    info = service.get("additionalInfo") if isinstance(service, dict) else None
    raw = info.get("value") if isinstance(info, dict) else None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return False
    return isinstance(value, dict) and value.get(SAMPLE_KEY) is True


def _one(det: Detection, account_id: str, region: str) -> Occurrence | None:
    for ex in det.fires:
        engine = Engine([det], intel=ex.intel if ex.intel is not None else builtin_intel())
        state = InMemoryState()
        run = engine.run(ex.events, state)
        found = occurrences(
            run.matches, Context(state=state, intel=engine.intel), account_id=account_id, region=region
        )
        found = [o for o in found if o.finding["type"] == det.meta.type]
        if found:
            return found[-1]
    return None


def mark(occ: Occurrence, account_id: str, region: str, now_ns: int, seq: int) -> Occurrence:
    """``occ`` as a sample seen once at ``now_ns`` (``seq``: its identity for the store)."""
    doc = json.loads(json.dumps(occ.finding))  # a deep copy: the example's document stays as built
    instance = str(doc["resource"]["instanceDetails"]["instanceId"])
    fid = finding_id(account_id, region, str(doc["type"]), instance, SAMPLE_KEY)
    doc["arn"] = str(doc["arn"]).rsplit("/", 1)[0] + "/" + fid
    doc["id"] = fid
    if not str(doc["title"]).startswith(TITLE_PREFIX):
        doc["title"] = TITLE_PREFIX + str(doc["title"])
    service = doc["service"]
    info = json.loads(service["additionalInfo"]["value"])
    info[SAMPLE_KEY] = True
    service["additionalInfo"]["value"] = json.dumps(info, separators=(",", ":"))
    service["count"] = 1
    service["eventFirstSeen"] = service["eventLastSeen"] = iso(now_ns)
    doc["createdAt"] = doc["updatedAt"] = iso(now_ns)
    return Occurrence(doc, 1, now_ns, now_ns, seq, seq, False, ((seq, now_ns),))


def sample_findings(
    detections: Sequence[Detection], *, account_id: str, region: str, now_ns: int
) -> list[Occurrence]:
    """One sample occurrence per detection type (types whose examples fire nothing are skipped).
    ``now_ns`` also seeds each sample's sequence number, so a new generation counts once more."""
    out: list[Occurrence] = []
    for det in sorted(detections, key=lambda d: d.meta.type):
        occ = _one(det, account_id, region)
        if occ is not None:
            out.append(mark(occ, account_id, region, now_ns, now_ns // 1_000_000 + len(out)))
    return out
