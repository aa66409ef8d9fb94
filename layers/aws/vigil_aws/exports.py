"""S3 export of published findings: GuardDuty's publishing-destination layout (gzip JSON Lines,
KMS-encrypted with the export key) and Security Lake's custom-source layout (OCSF 2004 as Parquet;
a finding whose OCSF record cannot share its object's Parquet schema is written in an object of
its own).

The objects and their keys are pure (vigil/export.py); this module only writes them. Keys are
derived from the finding versions they hold, so a retried batch overwrites instead of duplicating.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vigil.export import ExportObject, guardduty_objects, security_lake_objects
from vigil_aws import parquet
from vigil_aws.clients import client
from vigil_aws.settings import SettingsError, env_str


@dataclass(frozen=True, slots=True)
class ExportSettings:
    bucket: str  # "" = no GuardDuty-layout export
    prefix: str
    kms_key_arn: str
    security_lake_bucket: str  # "" = no OCSF export
    security_lake_source: str
    dead_letter_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExportSettings:
        e = os.environ if env is None else env
        fn = "ExportFunction"
        out = cls(
            bucket=e.get("EXPORT_BUCKET_NAME", "").strip(),
            prefix=e.get("EXPORT_PREFIX", "").strip(),
            kms_key_arn=e.get("EXPORT_KMS_KEY_ARN", "").strip(),
            security_lake_bucket=e.get("SECURITY_LAKE_BUCKET_NAME", "").strip(),
            security_lake_source=env_str(e, "SECURITY_LAKE_SOURCE_NAME", fn, default="vigil"),
            dead_letter_url=env_str(e, "DEAD_LETTER_QUEUE_URL", fn),
        )
        if not out.bucket and not out.security_lake_bucket:
            raise SettingsError(f"{fn}: neither EXPORT_BUCKET_NAME nor SECURITY_LAKE_BUCKET_NAME is set")
        if out.bucket and not out.kms_key_arn:
            raise SettingsError(
                f"{fn}: EXPORT_KMS_KEY_ARN is missing (the export is KMS-encrypted, like GuardDuty's)"
            )
        return out


class S3Export:
    def __init__(self, settings: ExportSettings) -> None:
        self.settings = settings

    def objects(
        self, findings: list[dict[str, Any]], unwritable: dict[str, str] | None = None
    ) -> list[tuple[str, ExportObject]]:
        """The (bucket, object) pairs to write; findings that fit no object go in ``unwritable``."""
        s = self.settings
        out: list[tuple[str, ExportObject]] = []
        if s.bucket:
            out += [(s.bucket, o) for o in guardduty_objects(findings, s.prefix)]
        if s.security_lake_bucket:
            out += [
                (s.security_lake_bucket, o)
                for o in self._lake_objects(findings, {} if unwritable is None else unwritable)
            ]
        return out

    def _lake_objects(self, findings: list[dict[str, Any]], unwritable: dict[str, str]) -> list[ExportObject]:
        source = self.settings.security_lake_source
        try:
            return security_lake_objects(findings, source, parquet.ocsf_parquet, parquet.EXT)
        except parquet.ParquetError:  # one odd record: each finding in an object of its own
            out: list[ExportObject] = []
            for f in findings:
                try:
                    out += security_lake_objects([f], source, parquet.ocsf_parquet, parquet.EXT)
                except parquet.ParquetError as exc:
                    unwritable[str(f.get("id"))] = f"OCSF record not writable as Parquet: {exc}"
            return out

    def write(self, findings: list[dict[str, Any]]) -> dict[str, str]:
        """Write every object; returns {finding id: error} for the findings of objects that failed."""
        failed: dict[str, str] = {}  # an unwritable finding is retried, then redriven to the DLQ
        objects = self.objects(findings, failed)
        for bucket, obj in objects:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": obj.key, "Body": obj.body}
            if obj.key.endswith(".jsonl.gz"):
                kwargs |= {"ContentType": "application/x-ndjson", "ContentEncoding": "gzip"}
            else:
                kwargs["ContentType"] = parquet.CONTENT_TYPE
            if bucket == self.settings.bucket:
                kwargs |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.kms_key_arn}
            try:
                client("s3").put_object(**kwargs)
            except Exception as exc:  # reported per finding; the queue retries them
                for fid in obj.finding_ids:
                    failed[fid] = f"s3://{bucket}/{obj.key}: {type(exc).__name__}: {exc}"
        return failed
