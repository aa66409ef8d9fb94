"""Typed settings, parsed once at cold start from the environment the template sets.

A missing or malformed variable fails the cold start with a message that names the variable and
where it comes from, instead of a KeyError deep inside the first invocation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from vigil.accounts import AccountAllowList, parse_account_ids, parse_organization_id
from vigil.sources import SourceConfig

PUBLISHING_FREQUENCY_S: Final[dict[str, int]] = {
    "FIFTEEN_MINUTES": 15 * 60,
    "ONE_HOUR": 60 * 60,
    "SIX_HOURS": 6 * 60 * 60,
}


class SettingsError(RuntimeError):
    """The function's environment does not match what template.yaml sets."""


def env_str(env: Mapping[str, str], name: str, function: str, default: str | None = None) -> str:
    """``name`` from ``env``; missing or empty is a SettingsError naming the function, unless a
    ``default`` is given."""
    value = env.get(name, "").strip()
    if value:
        return value
    if default is not None:
        return default
    raise SettingsError(
        f"{function}: environment variable {name} is missing or empty; template.yaml sets it "
        f"(deploy the template, or set it when running the handler by hand)"
    )


def as_bool(raw: str, name: str, function: str) -> bool:
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise SettingsError(f"{function}: {name}={raw!r} is not true/false")


def as_number(raw: str, name: str, function: str, minimum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{function}: {name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{function}: {name}={value:g} must be >= {minimum:g}")
    return value


def _int(env: Mapping[str, str], name: str, function: str, *, minimum: int = 0) -> int:
    raw = env_str(env, name, function)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{function}: {name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{function}: {name}={value} must be >= {minimum}")
    return value


def _region(env: Mapping[str, str], function: str) -> str:
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    if not region:
        raise SettingsError(
            f"{function}: AWS_REGION is not set (Lambda sets it; set it when running by hand)"
        )
    return region


def member_account_ids(env: Mapping[str, str], function: str) -> tuple[str, ...]:
    """``VIGIL_MEMBER_ACCOUNT_IDS`` (template parameter MemberAccountIds): a comma list of account ids."""
    try:
        return parse_account_ids(env.get("VIGIL_MEMBER_ACCOUNT_IDS", ""))
    except ValueError as exc:
        raise SettingsError(f"{function}: VIGIL_MEMBER_ACCOUNT_IDS (parameter MemberAccountIds): {exc}") from None


def organization_id(env: Mapping[str, str], function: str) -> str:
    try:
        return parse_organization_id(env.get("VIGIL_ORGANIZATION_ID", ""))
    except ValueError as exc:
        raise SettingsError(f"{function}: VIGIL_ORGANIZATION_ID (parameter OrganizationId): {exc}") from None


IDENTITY_PARAMETER: Final = "InstanceIdentityCertificates"


def identity_certificates(env: Mapping[str, str], function: str) -> bytes:
    """The PEM bundle ingest trusts for instance identity signatures (template parameter
    ``InstanceIdentityCertificates`` -> ``INSTANCE_IDENTITY_CERTIFICATES``): the PEM text itself,
    or the path of a PEM file (in the layer: ``/opt/python/vigil_aws/certs/...``). Missing,
    unreadable or unparseable is a cold-start error naming the parameter."""
    from vigil.identity import load_certificates

    raw = env_str(env, "INSTANCE_IDENTITY_CERTIFICATES", function)
    where = f"{function}: INSTANCE_IDENTITY_CERTIFICATES (template parameter {IDENTITY_PARAMETER})"
    if "-----BEGIN" in raw:
        pem, source = raw.encode(), "the inline PEM"
    else:
        try:
            with open(raw, "rb") as f:
                pem, source = f.read(), raw
        except OSError as exc:
            raise SettingsError(
                f"{where}: cannot read {raw} ({exc.strerror}). Put AWS's regional RSA certificates for the "
                "instance identity signature (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/"
                "regions-certs.html, the 'RSA' ones) in that file before `sam build`, or pass the PEM "
                "text as the parameter (docs/identity.md)"
            ) from None
    try:
        load_certificates(pem)
    except ValueError as exc:
        raise SettingsError(f"{where}: {source}: {exc}") from None
    return pem


def _log_sources(env: Mapping[str, str], function: str) -> SourceConfig:
    """``LOG_SOURCES`` (vigil.sources.SourceConfig JSON) with the account as the required owner."""
    try:
        return SourceConfig.parse(env.get("LOG_SOURCES", ""), owner=env.get("VIGIL_ACCOUNT_ID", "").strip())
    except ValueError as exc:
        raise SettingsError(f"{function}: LOG_SOURCES: {exc}") from None


@dataclass(frozen=True, slots=True)
class IngestSettings:
    findings_table: str
    state_table: str
    coverage_table: str
    dead_letter_queue_url: str
    retention_days: int
    account_id: str
    region: str
    identity_certificates: bytes = b""  # PEM; every batch header must be signed by one of them
    filters_table: str = ""  # suppression rules (FiltersTable); empty: none apply
    # EC2 instance details (vigil_aws.instances): how long a description is reused (0: no EC2
    # enrichment), and how long an instance EC2 could not describe waits before it is asked again
    instance_details_cache_s: int = 900
    instance_details_retry_s: int = 60
    # multi-account (vigil.accounts, docs/multi-account.md): the member accounts whose signed
    # identities count besides account_id; the Organization only widens the stream's policy
    member_account_ids: tuple[str, ...] = ()
    organization_id: str = ""

    def accounts(self) -> AccountAllowList:
        try:
            return AccountAllowList(self.account_id, self.member_account_ids, self.organization_id)
        except ValueError as exc:
            raise SettingsError(f"IngestFunction: VIGIL_ACCOUNT_ID: {exc}") from None
    # AWS-delivered sources (docs/sources.md): records of this stream are read as CloudWatch Logs
    # subscription / EventBridge records with these log groups, never as agent batches
    sources_stream_arn: str = ""
    log_sources: SourceConfig = field(default_factory=SourceConfig)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestSettings:
        e = os.environ if env is None else env
        fn = "IngestFunction"
        return cls(
            findings_table=env_str(e, "FINDINGS_TABLE_NAME", fn),
            state_table=env_str(e, "STATE_TABLE_NAME", fn),
            coverage_table=env_str(e, "COVERAGE_TABLE_NAME", fn),
            dead_letter_queue_url=env_str(e, "DEAD_LETTER_QUEUE_URL", fn),
            retention_days=_int(e, "FINDING_RETENTION_DAYS", fn, minimum=1),
            account_id=env_str(e, "VIGIL_ACCOUNT_ID", fn),
            region=_region(e, fn),
            identity_certificates=identity_certificates(e, fn),
            member_account_ids=member_account_ids(e, fn),
            organization_id=organization_id(e, fn),
            filters_table=e.get("FILTERS_TABLE_NAME", "").strip(),
            instance_details_cache_s=int(
                as_number(
                    env_str(e, "INSTANCE_DETAILS_CACHE_SECONDS", fn, "900"),
                    "INSTANCE_DETAILS_CACHE_SECONDS",
                    fn,
                    0,
                )
            ),
            instance_details_retry_s=int(
                as_number(
                    env_str(e, "INSTANCE_DETAILS_RETRY_SECONDS", fn, "60"),
                    "INSTANCE_DETAILS_RETRY_SECONDS",
                    fn,
                    1,
                )
            ),
            sources_stream_arn=e.get("SOURCES_STREAM_ARN", "").strip(),
            log_sources=_log_sources(e, fn),
        )


@dataclass(frozen=True, slots=True)
class PublishSettings:
    findings_table: str
    bus_name: str
    frequency: str
    region: str

    @property
    def frequency_s(self) -> int:
        return PUBLISHING_FREQUENCY_S[self.frequency]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PublishSettings:
        e = os.environ if env is None else env
        fn = e.get("POWERTOOLS_SERVICE_NAME") or "PublishFunction"  # also PublishSweepFunction
        frequency = env_str(e, "FINDING_PUBLISHING_FREQUENCY", fn)
        if frequency not in PUBLISHING_FREQUENCY_S:
            raise SettingsError(
                f"{fn}: FINDING_PUBLISHING_FREQUENCY={frequency!r} must be one of {sorted(PUBLISHING_FREQUENCY_S)}"
            )
        return cls(
            findings_table=env_str(e, "FINDINGS_TABLE_NAME", fn),
            bus_name=env_str(e, "FINDINGS_BUS_NAME", fn),
            frequency=frequency,
            region=_region(e, fn),
        )


@dataclass(frozen=True, slots=True)
class CoverageSettings:
    coverage_table: str
    bus_name: str
    account_id: str
    region: str
    disconnected_after_s: float  # > the coverage row's 5-min cadence (vigil_aws.coverage)
    management: str  # AUTO_MANAGED (the SSM association installs the agent) or MANUAL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CoverageSettings:
        e = os.environ if env is None else env
        fn = "CoverageFunction"
        name = "COVERAGE_DISCONNECTED_AFTER_SECONDS"
        # the row is rewritten at most every 300 s while nothing changes: a smaller age would call
        # every quiet, healthy agent disconnected
        age = as_number(env_str(e, name, fn, "900"), name, fn, minimum=360)
        auto = as_bool(env_str(e, "AGENT_AUTO_INSTALL", fn, "true"), "AGENT_AUTO_INSTALL", fn)
        return cls(
            coverage_table=env_str(e, "COVERAGE_TABLE_NAME", fn),
            bus_name=env_str(e, "FINDINGS_BUS_NAME", fn),
            account_id=env_str(e, "VIGIL_ACCOUNT_ID", fn),
            region=_region(e, fn),
            disconnected_after_s=age,
            management="AUTO_MANAGED" if auto else "MANUAL",
        )
