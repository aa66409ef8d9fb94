"""The ingest dead-letter queue: inputs that can never become events, with the reason why.

One message per rejected line (or per record when the whole payload is garbage): where it came
from (stream, shard, sequence number, partition key = instance id), the line number, the reason
and a prefix of the raw bytes, so an operator can see what the agent sent and why it was refused.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from vigil.normalize.common import Rejection
from vigil_aws.clients import client

SEND_BATCH_MAX: Final = 10
RAW_PREFIX_BYTES: Final = 2048


@dataclass(frozen=True, slots=True)
class Source:
    """Where a Kinesis record came from."""

    event_source_arn: str
    event_id: str  # shardId:sequenceNumber
    sequence_number: str
    partition_key: str


class DeadLetterQueue:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    @staticmethod
    def message(src: Source, rej: Rejection) -> dict[str, Any]:
        raw = rej.raw[:RAW_PREFIX_BYTES]
        try:
            raw_field: dict[str, str] = {"raw": raw.decode()}
        except UnicodeDecodeError:
            raw_field = {"rawBase64": base64.b64encode(raw).decode()}
        return {
            "reason": rej.reason,
            "source": rej.source,
            "line": rej.line,  # 1-based; 0 = the record as a whole
            "sequenceNumber": src.sequence_number,
            "eventID": src.event_id,
            "partitionKey": src.partition_key,
            "eventSourceARN": src.event_source_arn,
            **raw_field,
        }

    def send(self, src: Source, rejections: Sequence[Rejection]) -> int:
        """SendMessageBatch in tens; raises if SQS refuses any (the record is then retried)."""
        sqs = client("sqs")
        for i in range(0, len(rejections), SEND_BATCH_MAX):
            chunk = rejections[i : i + SEND_BATCH_MAX]
            entries = [
                {"Id": str(n), "MessageBody": json.dumps(self.message(src, r), separators=(",", ":"))}
                for n, r in enumerate(chunk)
            ]
            out = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if out.get("Failed"):
                raise RuntimeError(f"SQS refused {len(out['Failed'])} dead letters: {out['Failed'][0]}")
        return len(rejections)
