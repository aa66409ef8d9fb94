"""The ingest dead-letter queue: inputs that can never become events, with the reason why.

One message per rejected line (or per record when the whole payload is garbage): where it came
from (stream, shard, sequence number, partition key = instance id), the line number, the reason
and a prefix of the raw bytes, so an operator can see what the agent sent and why it was refused.

Bounded: at most ``MAX_LETTERS_PER_RECORD`` messages per record; beyond that one summary message
counts the rest by reason and carries a few samples, so a record of a million bad lines costs a
hundred messages, not a million.

Idempotent: the queue is FIFO, and each message's deduplication id is derived from what it
reports (the record's identity: the agent seqs it carries, else its bytes; the line; the reason), so a record retried after a partial send,
redelivered by Kinesis or re-sent by the agent, within SQS's five-minute deduplication window,
leaves each dead letter once. The message group is the (hashed) partition key: one instance's
letters stay in order, and different instances' never wait on each other.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from vigil.normalize.common import Rejection
from vigil_aws.clients import client

SEND_BATCH_MAX: Final = 10
RAW_PREFIX_BYTES: Final = 2048
MAX_LETTERS_PER_RECORD: Final = 100  # the last one is the summary when there are more
SUMMARY_SAMPLES: Final = 5
REASON_KEY_CHARS: Final = 60  # reasons are grouped in the summary by their first characters


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

    @staticmethod
    def bounded(rejections: Sequence[Rejection]) -> list[Rejection]:
        """At most ``MAX_LETTERS_PER_RECORD`` rejections: the first ones, then one summary of the rest
        (counts by reason, a few samples, the lines they were on)."""
        if len(rejections) <= MAX_LETTERS_PER_RECORD:
            return list(rejections)
        keep = list(rejections[: MAX_LETTERS_PER_RECORD - 1])
        rest = rejections[MAX_LETTERS_PER_RECORD - 1 :]
        by_reason = Counter(r.reason[:REASON_KEY_CHARS] for r in rest)
        summary = {
            "more": len(rest),
            "firstLine": rest[0].line,
            "lastLine": rest[-1].line,
            "byReason": dict(by_reason.most_common(20)),
            "samples": [
                {"line": r.line, "reason": r.reason[:300], "raw": r.raw[:200].decode("utf-8", "replace")}
                for r in rest[:SUMMARY_SAMPLES]
            ],
        }
        reason = f"{len(rest)} more rejected inputs in this record, not listed one by one: " + json.dumps(
            summary, separators=(",", ":")
        )
        keep.append(Rejection(rest[0].source, 0, reason))
        return keep

    @staticmethod
    def dedup_id(record_digest: str, rej: Rejection) -> str:
        return hashlib.sha256(f"{record_digest}|{rej.line}|{rej.reason}".encode()).hexdigest()

    def send(self, src: Source, rejections: Sequence[Rejection], record_digest: str = "") -> int:
        """SendMessageBatch in tens, bounded and deduplicated (see the module docstring); raises if
        SQS refuses any (the record is then retried, and what was sent is not sent twice)."""
        sqs = client("sqs")
        letters = self.bounded(rejections)
        digest = record_digest or hashlib.sha256(src.event_id.encode()).hexdigest()
        group = "i-" + hashlib.sha256(src.partition_key.encode()).hexdigest()[:40]
        for i in range(0, len(letters), SEND_BATCH_MAX):
            chunk = letters[i : i + SEND_BATCH_MAX]
            entries = [
                {
                    "Id": str(n),
                    "MessageBody": json.dumps(self.message(src, r), separators=(",", ":")),
                    "MessageGroupId": group,
                    "MessageDeduplicationId": self.dedup_id(digest, r),
                }
                for n, r in enumerate(chunk)
            ]
            out = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if out.get("Failed"):
                raise RuntimeError(f"SQS refused {len(out['Failed'])} dead letters: {out['Failed'][0]}")
        return len(letters)
