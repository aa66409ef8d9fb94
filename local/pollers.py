"""Event-source-mapping pollers: Lambda's stream pollers, for the offline stack.

For each Kinesis or DynamoDB-stream event-source mapping that CloudFormation created in moto, a
thread reads the stream through the public GetRecords API (like Lambda's pollers) and invokes
the function in-process with whole batches. It honours what the template asks for:

- ``BatchSize``, ``StartingPosition`` (TRIM_HORIZON | LATEST), ``FilterCriteria``;
- ``FunctionResponseTypes: [ReportBatchItemFailures]``: on a partial failure the batch is retried
  from the lowest failed sequence number (checkpointing);
- ``BisectBatchOnFunctionError``: a batch whose invocation raised is split in two and each half
  retried on its own, isolating a poison record;
- ``MaximumRetryAttempts``: when exhausted, Lambda's on-failure record (shard and sequence range,
  not the data) goes to ``DestinationConfig.OnFailure`` (an SQS queue) and the poller moves on.

Not emulated: ``MaximumBatchingWindowInSeconds`` (records are picked up within a poll interval),
``ParallelizationFactor``, ``MaximumRecordAgeInSeconds``, tumbling windows; shards are read one
after another by one thread per mapping.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from local.runtime import LocalRuntime

POLL_INTERVAL_S = 0.05


@dataclass
class MappingStats:
    invocations: int = 0
    records: int = 0
    retries: int = 0
    bisections: int = 0
    sent_to_on_failure: int = 0
    filtered: int = 0


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None


@dataclass
class Poller:
    """One event-source mapping (see the module docstring)."""

    esm: dict[str, Any]
    runtime: LocalRuntime
    clients: dict[str, Any]
    account_id: str
    region: str
    stats: MappingStats = field(default_factory=MappingStats)
    rounds: int = 0
    last_busy_round: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def __post_init__(self) -> None:
        self.source_arn: str = self.esm["EventSourceArn"]
        self.kind = "kinesis" if ":kinesis:" in self.source_arn else "dynamodb"
        self.batch_size = int(self.esm.get("BatchSize") or 100)
        self.max_retries = int(
            self.esm.get("MaximumRetryAttempts", -1)
            if self.esm.get("MaximumRetryAttempts") is not None
            else -1
        )
        self.bisect = bool(self.esm.get("BisectBatchOnFunctionError"))
        self.report_failures = "ReportBatchItemFailures" in (self.esm.get("FunctionResponseTypes") or [])
        on_failure = ((self.esm.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        self.on_failure_arn: str | None = on_failure
        self.filters = [
            _load_pattern(f["Pattern"]) for f in (self.esm.get("FilterCriteria") or {}).get("Filters", [])
        ]
        self.shards: list[_Shard] = []
        self.thread = threading.Thread(target=self._run, name=f"esm-{self.function_name}", daemon=True)

    @property
    def function_name(self) -> str:
        return str(self.esm["FunctionArn"]).rsplit(":", 1)[-1]

    # -- reading --------------------------------------------------------------------------
    def _open_shards(self) -> None:
        position = self.esm.get("StartingPosition") or "TRIM_HORIZON"
        if self.kind == "kinesis":
            kinesis = self.clients["kinesis"]
            # By name: moto's iterators from StreamARN name the stream "None" in GetRecords.
            name = self.source_arn.split(":stream/", 1)[1]
            desc = kinesis.describe_stream(StreamName=name)["StreamDescription"]
            for shard in desc["Shards"]:
                it = kinesis.get_shard_iterator(
                    StreamName=name, ShardId=shard["ShardId"], ShardIteratorType=position
                )["ShardIterator"]
                self.shards.append(_Shard(shard["ShardId"], it))
        else:
            streams = self.clients["dynamodbstreams"]
            desc = streams.describe_stream(StreamArn=self.source_arn)["StreamDescription"]
            for shard in desc["Shards"]:
                it = streams.get_shard_iterator(
                    StreamArn=self.source_arn, ShardId=shard["ShardId"], ShardIteratorType=position
                )["ShardIterator"]
                self.shards.append(_Shard(shard["ShardId"], it))

    def _read(self, shard: _Shard) -> list[dict[str, Any]]:
        if shard.iterator is None:
            return []
        if self.kind == "kinesis":
            out = self.clients["kinesis"].get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
            shard.iterator = out.get("NextShardIterator")
            return [self._kinesis_record(shard.shard_id, r) for r in out["Records"]]
        used = shard.iterator
        out = self.clients["dynamodbstreams"].get_records(ShardIterator=used, Limit=self.batch_size)
        shard.iterator = out.get("NextShardIterator")
        _forget_iterator(self.account_id, self.region, used)
        return [self._ddb_record(r) for r in out["Records"]]

    def _kinesis_record(self, shard_id: str, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": r["PartitionKey"],
                "sequenceNumber": r["SequenceNumber"],
                "data": base64.b64encode(r["Data"]).decode(),
                "approximateArrivalTimestamp": _epoch(r.get("ApproximateArrivalTimestamp")),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{r['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": f"arn:aws:iam::{self.account_id}:role/lambda-role",
            "awsRegion": self.region,
            "eventSourceARN": self.source_arn,
        }

    def _ddb_record(self, r: dict[str, Any]) -> dict[str, Any]:
        rec = json.loads(json.dumps(r, default=_json_default))
        rec["eventSourceARN"] = self.source_arn
        rec["awsRegion"] = self.region
        return rec

    @staticmethod
    def _seq(record: dict[str, Any]) -> str:
        body = record.get("kinesis") or record.get("dynamodb") or {}
        return str(body.get("sequenceNumber") or body.get("SequenceNumber"))

    # -- delivering -----------------------------------------------------------------------
    def _deliver(self, shard_id: str, records: list[dict[str, Any]], attempts: int = 0) -> None:
        """Invoke until the batch succeeds, bisecting on errors; give up after max retries."""
        fn = self._function()
        pending = records
        while pending and not self.stop.is_set():
            inv = self.runtime.invoke(fn, {"Records": pending})
            self.stats.invocations += 1
            self.stats.records += len(pending)
            if inv.errored:
                if self.bisect and len(pending) > 1:
                    self.stats.bisections += 1
                    half = len(pending) // 2
                    self._deliver(shard_id, pending[:half], attempts + 1)
                    self._deliver(shard_id, pending[half:], attempts + 1)
                    return
                failed_from = 0
            else:
                failed_from = self._first_failure(pending, inv.result)
                if failed_from is None:
                    return
            attempts += 1
            if 0 <= self.max_retries < attempts:
                self._send_on_failure(shard_id, pending[failed_from:], attempts, inv.errored)
                return
            self.stats.retries += 1
            pending = pending[failed_from:]
            time.sleep(min(1.0, 0.05 * 2**attempts))

    def _function(self) -> Any:
        from moto.awslambda.models import lambda_backends

        return lambda_backends[self.account_id][self.region].get_function(self.esm["FunctionArn"])

    def _first_failure(self, records: list[dict[str, Any]], result: Any) -> int | None:
        if not self.report_failures or not isinstance(result, dict):
            return None
        failures = result.get("batchItemFailures") or []
        if not failures:
            return None
        seqs = [self._seq(r) for r in records]
        positions = []
        for failure in failures:
            ident = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if ident not in seqs:  # an unknown or empty identifier fails the whole batch
                return 0
            positions.append(seqs.index(ident))
        return min(positions)

    def _send_on_failure(
        self, shard_id: str, records: list[dict[str, Any]], attempts: int, errored: bool
    ) -> None:
        self.stats.sent_to_on_failure += len(records)
        if not self.on_failure_arn:
            return
        info_key = "KinesisBatchInfo" if self.kind == "kinesis" else "DDBStreamBatchInfo"
        arrivals = [
            (r.get("kinesis") or {}).get("approximateArrivalTimestamp")
            or (r.get("dynamodb") or {}).get("ApproximateCreationDateTime")
            for r in records
        ]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.esm["FunctionArn"],
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled" if errored else "",
            },
            "version": "1.0",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            info_key: {
                "shardId": shard_id,
                "startSequenceNumber": self._seq(records[0]),
                "endSequenceNumber": self._seq(records[-1]),
                "approximateArrivalOfFirstRecord": _iso(arrivals[0]),
                "approximateArrivalOfLastRecord": _iso(arrivals[-1]),
                "batchSize": len(records),
                "streamArn": self.source_arn,
            },
        }
        queue_name = self.on_failure_arn.rsplit(":", 1)[-1]
        sqs = self.clients["sqs"]
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))

    def _keep(self, record: dict[str, Any]) -> bool:
        if not self.filters:
            return True
        if self.kind == "kinesis":  # Lambda matches filters on the decoded JSON data
            try:
                doc = dict(record, data=json.loads(base64.b64decode(record["kinesis"]["data"])))
            except ValueError:
                doc = record
        else:
            doc = record
        return any(p.matches_event(doc) for p in self.filters)

    # -- loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._open_shards()
            while not self.stop.is_set():
                self.rounds += 1
                busy = False
                for shard in self.shards:
                    records = self._read(shard)
                    if not records:
                        continue
                    busy = True
                    self.last_busy_round = self.rounds
                    kept = [r for r in records if self._keep(r)]
                    self.stats.filtered += len(records) - len(kept)
                    if kept:
                        self._deliver(shard.shard_id, kept)
                if not busy:
                    self.stop.wait(POLL_INTERVAL_S)
        except Exception as exc:  # surfaced by Pollers.check(); a dead poller must not be silent
            if not self.stop.is_set():
                self.error = f"{type(exc).__name__}: {exc}"


class Pollers:
    """All stream pollers of a deployed stack."""

    def __init__(
        self, runtime: LocalRuntime, session: Any, endpoint_url: str, account_id: str, region: str
    ) -> None:
        self.runtime = runtime
        self.account_id = account_id
        self.region = region
        self.clients = {
            name: session.client(name, endpoint_url=endpoint_url, region_name=region)
            for name in ("lambda", "kinesis", "dynamodbstreams", "sqs")
        }
        self.pollers: list[Poller] = []

    def start(self) -> None:
        mappings = self.clients["lambda"].list_event_source_mappings()["EventSourceMappings"]
        for esm in mappings:
            if ":kinesis:" in esm["EventSourceArn"] or ":dynamodb:" in esm["EventSourceArn"]:
                poller = Poller(esm, self.runtime, self.clients, self.account_id, self.region)
                self.pollers.append(poller)
                poller.thread.start()

    def stop(self) -> None:
        for p in self.pollers:
            p.stop.set()
        for p in self.pollers:
            p.thread.join(timeout=5)

    def check(self) -> None:
        for p in self.pollers:
            if p.error:
                raise RuntimeError(f"poller for {p.function_name} died: {p.error}")

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every poller has read its streams twice in a row and found nothing new.

        A round that found records at or after the mark counts as busy, so a chain
        (Kinesis -> IngestFunction -> findings stream -> PublishFunction) settles completely.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            marks = [p.rounds for p in self.pollers]
            while time.monotonic() < deadline and any(
                p.rounds < m + 2 for p, m in zip(self.pollers, marks, strict=True)
            ):
                time.sleep(POLL_INTERVAL_S / 2)
            if all(p.last_busy_round < m for p, m in zip(self.pollers, marks, strict=True)):
                return True
        return False


def _forget_iterator(account_id: str, region: str, iterator: str) -> None:
    """moto keeps every DynamoDB-stream iterator it ever issued; a poller issues ~20 a second."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    dynamodbstreams_backends[account_id][region].shard_iterators.pop(iterator, None)


def _load_pattern(raw: str) -> Any:
    from moto.events.models import EventPattern

    return EventPattern.load(raw)


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return round(value.timestamp(), 3)
    return float(value or time.time())


def _iso(value: Any) -> str:
    if value is None:
        return ""
    return dt.datetime.fromtimestamp(float(value), dt.UTC).isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
