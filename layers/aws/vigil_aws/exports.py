"""S3 export of published findings: GuardDuty's publishing-destination layout (gzip JSON Lines,
KMS-encrypted with the export key) and Security Lake's custom-source layout (OCSF 2004).

The objects and their keys are pure (vigil/export.py); this module only writes them. Keys are
derived from the finding versions they hold, so a retried batch overwrites instead of duplicating.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vigil.export import ExportObject, guardduty_objects, security_lake_objects
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

    def objects(self, findings: list[dict[str, Any]]) -> list[tuple[str, ExportObject]]:
        s = self.settings
        out: list[tuple[str, ExportObject]] = []
        if s.bucket:
            out += [(s.bucket, o) for o in guardduty_objects(findings, s.prefix)]
        if s.security_lake_bucket:
            out += [
                (s.security_lake_bucket, o) for o in security_lake_objects(findings, s.security_lake_source)
            ]
        return out

    def write(self, findings: list[dict[str, Any]]) -> dict[str, str]:
        """Write every object; returns {finding id: error} for the findings of objects that failed."""
        failed: dict[str, str] = {}
        for bucket, obj in self.objects(findings):
            kwargs: dict[str, Any] = {
                "Bucket": bucket,
                "Key": obj.key,
                "Body": obj.body,
                "ContentType": "application/x-ndjson",
                "ContentEncoding": "gzip",
            }
            if bucket == self.settings.bucket:
                kwargs |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.kms_key_arn}
            try:
                client("s3").put_object(**kwargs)
            except Exception as exc:  # reported per finding; the queue retries them
                for fid in obj.finding_ids:
                    failed[fid] = f"s3://{bucket}/{obj.key}: {type(exc).__name__}: {exc}"
        return failed
