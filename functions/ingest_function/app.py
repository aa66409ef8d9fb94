"""IngestFunction: agent telemetry batches and AWS-delivered logs -> findings.

Trigger: Kinesis ``TelemetryStream`` (partial batch response, bisect on error, bounded retries,
on-failure record to ``IngestFailureQueue``). One record = one gzip NDJSON batch from one host.
Also, when a source is enabled, Kinesis ``SourcesStream`` (``SOURCES_STREAM_ARN``): CloudWatch Logs
subscription records of the flow-log / Resolver / trail log groups named in ``LOG_SOURCES`` and
EventBridge CloudTrail events. The record's ``eventSourceARN`` decides which reader applies, never
its content (docs/sources.md § Trust).
Reads: ``StateTable`` (detection state); threat/trusted lists in S3 (``VIGIL_THREAT_LISTS`` /
``VIGIL_TRUSTED_LISTS``, re-checked by ETag every ``VIGIL_INTEL_CHECK_SECONDS``); suppression rules
in ``FiltersTable`` (``FILTERS_TABLE_NAME``, a change in force within 5 s: a new finding matching an
ARCHIVE rule is stored archived with the rule's name, never published; docs/filters.md); the Sigma
rule bundle shipped in the core layer (``vigil/sigma_rules.json``, written by ``vigil sigma import``;
none shipped: docs/sigma.md).
Writes: once per invocation (``Ingestor.flush``), ``FindingsTable`` (one conditional write per
finding, exactly once per event by identity), ``StateTable``, ``CoverageTable`` (heartbeats; identity problems on existing rows),
``IngestDeadLetterQueue`` (FIFO: rejected lines and identity
rejections with the reason, deduplicated). No write per record.
Coverage rows of ``CoverageTable`` (BatchGetItem) for instances whose EC2 match a runtime finding
already carries (vigil.indicators: waived only for a HEALTHY instance).
EC2: ``DescribeInstances``/``DescribeImages`` for the instance details of findings, at most once
per instance per ``INSTANCE_DETAILS_CACHE_SECONDS`` (cached in ``StateTable``, vigil_aws.instances).
Identity: every batch header must carry an instance identity document signed by a certificate of
``INSTANCE_IDENTITY_CERTIFICATES`` and naming the record's partition key (docs/identity.md), for
this account or one of ``VIGIL_MEMBER_ACCOUNT_IDS`` (docs/multi-account.md); its findings belong to
the signed account.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from vigil.identity import IdentityVerifier
from vigil.pipeline import Pipeline
from vigil.registry import all_detections
from vigil_aws.dead_letters import Source
from vigil_aws.health import CoverageHealth
from vigil_aws.ingest import Ingestor
from vigil_aws.instances import InstanceDetailsCache
from vigil_aws.intel import IntelLoader
from vigil_aws.settings import IngestSettings
from vigil_aws.sigma_rules import bundled as sigma_bundle

settings = IngestSettings.from_env()
logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
intel_loader = IntelLoader.from_env()  # a malformed list spec fails the cold start with its reason
instances = (  # resource.instanceDetails from EC2, cached per instance (vigil_aws.instances)
    InstanceDetailsCache(
        settings.state_table,
        ttl_s=settings.instance_details_cache_s,
        retry_s=settings.instance_details_retry_s,
    )
    if settings.instance_details_cache_s > 0
    else None
)
ingestor = Ingestor(
    settings,
    Pipeline.default(
        account_id=settings.account_id,
        region=settings.region,
        intel=intel_loader.intel(),
        detections=all_detections() + sigma_bundle().detections,  # native + imported Sigma rules
        identity=IdentityVerifier.from_pem(settings.identity_certificates),  # checked by settings
        instance_details=instances,
        accounts=settings.accounts(),  # administrator + MemberAccountIds (vigil.accounts)
        # one finding per indicator: an EC2 type is waived for a HEALTHY instance's runtime finding
        healthy=CoverageHealth(settings.coverage_table),
    ),
    instances=instances,
)


def record_handler(record: KinesisStreamRecord) -> None:
    src = Source(
        record.event_source_arn, record.event_id, record.kinesis.sequence_number, record.kinesis.partition_key
    )
    # by the stream AWS says the record came on: an agent cannot write to SourcesStream
    from_sources = bool(settings.sources_stream_arn) and src.event_source_arn == settings.sources_stream_arn
    sources = settings.log_sources if from_sources else None
    try:
        outcome = ingestor.process(record.kinesis.data_as_bytes(), src, sources=sources)
    except Exception:
        logger.exception("record failed; the stream mapping retries it", extra={"eventID": src.event_id})
        raise
    if outcome.rejected:
        logger.warning("dead-lettered input", extra={"eventID": src.event_id, "rejected": outcome.rejected})
    if outcome.instance_details_missing:
        logger.warning(
            "findings stored without EC2 instance details",
            extra={"eventID": src.event_id, "findings": outcome.instance_details_missing},
        )


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ingestor.pipeline.engine.intel = intel_loader.intel()  # same object unless a list's ETag changed
    for problem in intel_loader.errors:
        logger.error("threat list problem", extra={"problem": problem})
    if intel_loader.errors:
        metrics.add_metric(name="intel_list_errors", unit=MetricUnit.Count, value=len(intel_loader.errors))
    ingestor.begin(r.get("kinesis", {}).get("partitionKey", "") for r in event.get("Records", []))
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    flushed = ingestor.flush()
    if flushed.failed:
        logger.error("writes failed; the mapping retries their records", extra={"errors": flushed.errors})
        failures = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])} | set(flushed.failed)
        response = {
            "batchItemFailures": [{"itemIdentifier": s} for s in sorted(failures, key=lambda s: (len(s), s))]
        }
    for name, value in ingestor.totals.items():
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return response
