"""Threat and trusted lists from S3, cached in the Lambda container with version checks.

The stack registers lists as comma-separated S3 URIs (template parameters ``ThreatListUris`` /
``TrustedListUris`` -> env ``VIGIL_THREAT_LISTS`` / ``VIGIL_TRUSTED_LISTS``). A URI may carry
options after ``#``, separated by ``;``::

    s3://bucket/lists/c2.txt                          format from the suffix (.txt -> TXT)
    s3://bucket/feeds/otx.csv#category=crypto         OTX CSV, matches route to BitcoinTool.B
    s3://bucket/feeds/bundle.json#format=STIX;owner=111122223333

``format`` is TXT | STIX | OTX_CSV (default: from the key's suffix), ``category`` routes matches
to a finding family (c2 (default), crypto, tor, blackhole, droppoint, dga, driveby, phishing,
abused; file hashes always go to MaliciousFileExecuted.Custom), ``owner`` is the expected bucket
owner. Trusted lists take no category: trusted wins over any threat entry.

``IntelLoader.intel()`` returns the built-in set plus every list. At most every
``check_interval_s`` it asks S3 for each object's ETag (HeadObject); only a changed object is
downloaded and parsed again, and the Intel is rebuilt only when something changed, so the common
invocation costs nothing. A list that fails (malformed, missing, access denied) keeps its last good
version; the reason (naming the list and the line) is in ``errors`` for the handler to log and
count. Nothing here raises during ingestion.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from vigil import intel as ti
from vigil.intel import Intel
from vigil.intel.builtin import builtin_intel
from vigil.intel.formats import ListFormatError, ParsedList, category_of, format_from_key, parse_list

DEFAULT_CHECK_INTERVAL_S: Final = 300


class ListSpecError(ValueError):
    """A registered list URI that cannot be used (fails the cold start: it is configuration)."""


@dataclass(frozen=True, slots=True)
class ListSpec:
    uri: str
    bucket: str
    key: str
    format: str
    category: str = ti.C2
    trusted: bool = False
    expected_owner: str = ""

    @property
    def name(self) -> str:
        """The list name findings carry in threatIntelligenceDetails.threatListName."""
        return self.key.rsplit("/", 1)[-1] or self.uri


def parse_spec(raw: str, *, trusted: bool = False) -> ListSpec:
    uri, _, frag = raw.strip().partition("#")
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise ListSpecError(f"{raw!r}: expected s3://bucket/key[#format=..;category=..]")
    key = parts.path.lstrip("/")
    opts: dict[str, str] = {}
    for item in filter(None, (x.strip() for x in frag.split(";"))):
        k, sep, v = item.partition("=")
        if not sep or k.strip().lower() not in ("format", "category", "owner"):
            raise ListSpecError(f"{raw!r}: unknown option {item!r} (format, category, owner)")
        opts[k.strip().lower()] = v.strip()
    fmt = opts.get("format", format_from_key(key)).upper()
    if fmt not in ("TXT", "STIX", "OTX_CSV"):
        raise ListSpecError(f"{raw!r}: format {fmt!r} is not TXT, STIX or OTX_CSV")
    try:
        category = category_of(opts["category"]) if "category" in opts else ti.C2
    except ValueError as exc:
        raise ListSpecError(f"{raw!r}: {exc}") from None
    return ListSpec(uri, parts.netloc, key, fmt, category, trusted, opts.get("owner", ""))


def parse_specs(value: str, *, trusted: bool = False) -> list[ListSpec]:
    return [parse_spec(x, trusted=trusted) for x in value.split(",") if x.strip()]


@dataclass(slots=True)
class _Cached:
    etag: str
    parsed: ParsedList


@dataclass
class IntelLoader:
    threat: Sequence[ListSpec] = ()
    trusted: Sequence[ListSpec] = ()
    check_interval_s: float = DEFAULT_CHECK_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    s3: Any = None  # a boto3 S3 client; the shared lazy one when None
    errors: list[str] = field(default_factory=list)
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _intel: Intel | None = None
    _checked_at: float = float("-inf")
    loads: int = 0  # GetObject calls made (tests and metrics)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IntelLoader:
        e = os.environ if env is None else env
        interval = e.get("VIGIL_INTEL_CHECK_SECONDS", "").strip()
        try:
            seconds = float(interval) if interval else DEFAULT_CHECK_INTERVAL_S
        except ValueError:
            raise ListSpecError(f"VIGIL_INTEL_CHECK_SECONDS={interval!r} is not a number") from None
        return cls(
            threat=parse_specs(e.get("VIGIL_THREAT_LISTS", "")),
            trusted=parse_specs(e.get("VIGIL_TRUSTED_LISTS", ""), trusted=True),
            check_interval_s=seconds,
        )

    def _client(self) -> Any:
        if self.s3 is None:
            from vigil_aws.clients import client

            self.s3 = client("s3")
        return self.s3

    def intel(self) -> Intel:
        """The current Intel; the same object until a list changes (cheap to call per invocation)."""
        now = self.clock()
        if self._intel is not None and now - self._checked_at < self.check_interval_s:
            return self._intel
        self._checked_at = now
        changed = self._refresh()
        if changed or self._intel is None:
            self._intel = self._build()
        return self._intel

    def _refresh(self) -> bool:
        self.errors = []
        changed = False
        for spec in (*self.threat, *self.trusted):
            try:
                changed |= self._refresh_one(spec)
            except ListFormatError as exc:
                self.errors.append(f"{spec.uri}: {exc} (keeping the last good version)")
            except (ClientError, BotoCoreError) as exc:
                self.errors.append(f"{spec.uri}: cannot read the list: {exc} (keeping the last good version)")
        return changed

    def _refresh_one(self, spec: ListSpec) -> bool:
        s3 = self._client()
        extra: dict[str, str] = {"ExpectedBucketOwner": spec.expected_owner} if spec.expected_owner else {}
        head = s3.head_object(Bucket=spec.bucket, Key=spec.key, **extra)
        etag = str(head.get("ETag", "")) + str(head.get("VersionId", ""))
        cached = self._cache.get(spec.uri)
        if cached is not None and cached.etag == etag:
            return False
        body = s3.get_object(Bucket=spec.bucket, Key=spec.key, **extra)["Body"].read()
        self.loads += 1
        parsed = parse_list(body, spec.format, name=spec.name, category=spec.category, custom=True)
        self._cache[spec.uri] = _Cached(etag, parsed)
        return True

    def _build(self) -> Intel:
        intel = builtin_intel()
        for spec in self.threat:
            cached = self._cache.get(spec.uri)
            if cached is not None:
                intel.extend(cached.parsed.indicators)
        for spec in self.trusted:
            cached = self._cache.get(spec.uri)
            if cached is not None:
                for ind in cached.parsed.indicators:
                    if ind.category != ti.MALWARE:
                        intel.trust(ind.value)
        tags = "|".join(f"{u}={c.etag}" for u, c in sorted(self._cache.items()))
        intel.version = hashlib.sha256(tags.encode()).hexdigest()[:16] if tags else "builtin"
        return intel
