"""EC2 instance details for findings, cached per instance (the ``Pipeline``'s ``instance_details``).

``InstanceDetailsCache`` is built once per container and called by the pipeline with the distinct
instances of a batch's findings (never per event). For each it answers, in order, from:

1. the container's memo (until the entry's own expiry);
2. the State table, item ``pk = ec2instance#<instance id>`` (``ec2Details``: the bounded
   instanceDetails as JSON, or ``ec2Found = false``; ``expiresAt``: TTL, and reads treat a passed
   one as absent because DynamoDB deletes late). One BatchGetItem for all the misses;
3. EC2: one ``DescribeInstances`` (filter ``instance-id``, 200 values a call) for everything still
   unknown, plus the instances the invocation's other records name (``expect``), so a burst of
   findings from many instances costs one call, not one per instance; then one ``DescribeImages``
   for their images' descriptions. Each answer is written to the State table (one PutItem per
   instance per period) and memoized.

So the ingest makes at most one EC2 call per instance per ``ttl_s`` per container, and across
containers at most one while the table item lives. The State table, not the Coverage table: this is
derived, disposable data with a TTL, like the detections' windows, read by BatchGetItem that the
ingest is already allowed; the Coverage table is the instance inventory that ``vigil coverage``
lists row by row, and must not grow rows that are not instances.

When EC2 cannot answer (throttling, AccessDenied, an endpoint error) the lookup returns nothing for
those instances: their findings are stored with what the agent's verified identity said. The
failure is logged once, counted (``counters``: ``instance_details_ec2_errors``), and remembered in
the memo for ``retry_s`` so an outage costs one call per ``retry_s``, not one per record. An
instance EC2 does not know (terminated long ago, another account or Region) is cached as absent
for ``retry_s`` in the table too. The lookup never raises.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vigil.instance_details import from_ec2
from vigil_aws.clients import client
from vigil_aws.state_store import batch_get

log = logging.getLogger(__name__)

KEY_PREFIX: Final = "ec2instance#"
FILTER_VALUES_MAX: Final = 200  # EC2: filter values per Describe* call
EXPECTED_MAX: Final = 1000  # instances one invocation may prefetch (a Kinesis batch is at most 10,000)
MEMO_MAX: Final = 10_000  # instances a container remembers
_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# Enrichment must not eat the ingest's time budget: fewer retries and shorter timeouts than the
# shared clients (vigil_aws.clients), since a miss only costs detail, never a finding.
EC2_CONFIG: Final = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=5)
_ATTRS: Final = "pk, ec2Details, ec2Found, expiresAt"


def cache_key(instance_id: str) -> str:
    return f"{KEY_PREFIX}{instance_id}"


@dataclass(frozen=True, slots=True)
class _Entry:
    details: dict[str, Any] | None  # None: EC2 could not describe it
    until: float


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


class InstanceDetailsCache:
    def __init__(
        self,
        table: str,
        *,
        ttl_s: float = 900,
        retry_s: float = 60,
        clock: Callable[[], float] = time.time,
        ec2: Any = None,
    ) -> None:
        self.table = table
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self.clock = clock
        self._ec2 = ec2  # built on first use (never at import), unless given
        self._memo: dict[str, _Entry] = {}
        self._expected: list[str] = []
        self.counters: Counter[str] = Counter()

    # -- the pipeline's port --------------------------------------------------------------
    def expect(self, instance_ids: Iterable[str]) -> None:
        """The instances this invocation's records name (their partition keys, unverified): when
        one of them must be described, the others not known yet ride along in the same call."""
        seen: dict[str, None] = {}
        for i in instance_ids:
            if isinstance(i, str) and _INSTANCE_ID.fullmatch(i):
                seen[i] = None
                if len(seen) >= EXPECTED_MAX:
                    break
        self._expected = list(seen)

    def __call__(self, instance_ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        now = self.clock()
        wanted = [i for i in dict.fromkeys(instance_ids) if _INSTANCE_ID.fullmatch(i)]
        misses = [i for i in wanted if not self._alive(i, now)]
        self.counters["instance_details_memo_hits"] += len(wanted) - len(misses)
        if misses:
            try:
                self._fill(misses, now)
            except Exception:  # never lose a finding to enrichment: it is stored as known
                log.exception("instance details lookup failed; findings keep what the agent knew")
                self.counters["instance_details_errors"] += 1
        out: dict[str, Mapping[str, Any]] = {}
        for i in wanted:
            entry = self._memo.get(i)
            if entry is not None and entry.details is not None:
                out[i] = entry.details
        return out

    def take_counters(self) -> Counter[str]:
        out, self.counters = self.counters, Counter()
        return out

    # -- the three levels -----------------------------------------------------------------
    def _alive(self, instance_id: str, now: float) -> bool:
        entry = self._memo.get(instance_id)
        return entry is not None and entry.until > now

    def _remember(self, instance_id: str, details: dict[str, Any] | None, until: float) -> None:
        if len(self._memo) >= MEMO_MAX and instance_id not in self._memo:
            now = self.clock()
            for k in [k for k, e in self._memo.items() if e.until <= now] or list(self._memo)[
                : MEMO_MAX // 10
            ]:
                del self._memo[k]
        self._memo[instance_id] = _Entry(details, until)

    def _fill(self, misses: list[str], now: float) -> None:
        riders = [i for i in self._expected if i not in misses and not self._alive(i, now)]
        unknown = self._read_table(misses + riders, now)
        if any(i in unknown for i in misses):  # riders alone never cost an EC2 call
            self._describe(unknown, now)

    def _read_table(self, ids: list[str], now: float) -> list[str]:
        """Memoize what the table holds; returns the ids it does not hold (alive)."""
        try:
            items = batch_get(self.table, [cache_key(i) for i in ids], _ATTRS)
        except (ClientError, BotoCoreError, RuntimeError) as exc:
            log.warning("instance details cache unreadable: %s", _error_code(exc))
            self.counters["instance_details_cache_errors"] += 1
            return ids
        self.counters["instance_details_cache_reads"] += 1
        held: set[str] = set()
        for item in items:
            instance = item["pk"]["S"][len(KEY_PREFIX) :]
            until = float(item.get("expiresAt", {}).get("N", "0"))
            if until <= now:
                continue
            details: dict[str, Any] | None = None
            if "ec2Details" in item:
                try:
                    loaded = json.loads(item["ec2Details"]["S"])
                except (ValueError, KeyError):
                    continue  # not ours to trust: ask EC2 again
                if not isinstance(loaded, dict):
                    continue
                details = loaded
            self._remember(instance, details, until)
            held.add(instance)
            self.counters["instance_details_cache_hits"] += 1
        return [i for i in ids if i not in held]

    def _client(self) -> Any:
        if self._ec2 is None:
            self._ec2 = boto3.session.Session().client("ec2", config=EC2_CONFIG)
        return self._ec2

    def _describe(self, ids: list[str], now: float) -> None:
        ec2 = self._client()
        for n in range(0, len(ids), FILTER_VALUES_MAX):
            chunk = ids[n : n + FILTER_VALUES_MAX]
            found: dict[str, dict[str, Any]] = {}
            try:
                pages = ec2.get_paginator("describe_instances").paginate(
                    Filters=[{"Name": "instance-id", "Values": chunk}]
                )
                for page in pages:
                    self.counters["instance_details_ec2_calls"] += 1
                    for reservation in page.get("Reservations", []):
                        for inst in reservation.get("Instances", []):
                            if inst.get("InstanceId") in chunk:
                                found[inst["InstanceId"]] = inst
            except (ClientError, BotoCoreError) as exc:
                # an outage, throttling or a missing permission: this chunk and the rest wait
                rest = ids[n:]
                log.warning(
                    "EC2 DescribeInstances failed (%s): %d instance(s) keep what the agent knew for %ds",
                    _error_code(exc),
                    len(rest),
                    int(self.retry_s),
                )
                self.counters["instance_details_ec2_errors"] += 1
                for i in rest:
                    self._remember(i, None, now + self.retry_s)
                return
            images = self._image_descriptions({str(i.get("ImageId", "")) for i in found.values()})
            for i in chunk:
                inst = found.get(i)
                if inst is None:
                    self.counters["instance_details_not_found"] += 1
                    self._store(i, None, now + self.retry_s)
                else:
                    details = from_ec2(inst, image_description=images.get(str(inst.get("ImageId", ""))))
                    self._store(i, details, now + self.ttl_s)
            if len(found) < len(chunk):
                log.info(
                    "EC2 does not describe %d instance(s): terminated, or in another account or Region",
                    len(chunk) - len(found),
                )

    def _image_descriptions(self, image_ids: set[str]) -> dict[str, str]:
        ids = sorted(i for i in image_ids if re.fullmatch(r"ami-[0-9a-f]{8,17}", i))
        if not ids:
            return {}
        out: dict[str, str] = {}
        try:
            for n in range(0, len(ids), FILTER_VALUES_MAX):
                page = self._client().describe_images(
                    Filters=[{"Name": "image-id", "Values": ids[n : n + FILTER_VALUES_MAX]}]
                )
                self.counters["instance_details_image_calls"] += 1
                for image in page.get("Images", []):
                    if isinstance(image.get("Description"), str):
                        out[str(image.get("ImageId"))] = image["Description"]
        except (ClientError, BotoCoreError) as exc:  # the description is optional
            log.warning(
                "EC2 DescribeImages failed (%s): findings go without imageDescription", _error_code(exc)
            )
            self.counters["instance_details_ec2_errors"] += 1
        return out

    def _store(self, instance_id: str, details: dict[str, Any] | None, until: float) -> None:
        self._remember(instance_id, details, until)
        item: dict[str, Any] = {
            "pk": {"S": cache_key(instance_id)},
            "ec2Found": {"BOOL": details is not None},
            "expiresAt": {"N": str(int(until))},
        }
        if details is not None:
            item["ec2Details"] = {"S": json.dumps(details, separators=(",", ":"))}
        try:
            client("dynamodb").put_item(TableName=self.table, Item=item)
        except (ClientError, BotoCoreError) as exc:  # the memo still holds it for this container
            log.warning("instance details cache write failed: %s", _error_code(exc))
            self.counters["instance_details_cache_errors"] += 1
        else:
            self.counters["instance_details_cache_writes"] += 1
