"""/etc/vigil/agent.toml: typed, checked once at start; a bad file is a clear error, not a crash.

Every key has a default, so an empty file (or none, with --stdout) is a working configuration.
Unknown keys are errors: a typo must not silently disable a setting.
"""

from __future__ import annotations

import os
import tomllib

import msgspec

DEFAULT_PATH = "/etc/vigil/agent.toml"


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    pass


class KinesisConfig(_Section):
    stream: str = ""  # stream name (or ARN)
    region: str = ""
    endpoint_url: str = ""  # the offline stack, or a VPC endpoint DNS name
    max_attempts: int = 6  # per record, with exponential backoff and full jitter
    backoff_base_s: float = 0.1
    backoff_max_s: float = 5.0
    timeout_s: float = 5.0


class AgentConfig(_Section):
    instance_id: str = ""  # default: the EC2 instance id from DMI, else "host-<hostname>"
    account_id: str = ""
    region: str = ""
    state_dir: str = "/var/lib/vigil"
    heartbeat_s: float = 60.0
    flush_s: float = 1.0
    stretch_s: float = 2.0  # a batch under half a Kinesis PUT unit at flush_s waits up to this (ship.py)
    express: bool = True  # a batch holding an urgent event (a shell on a socket ...) leaves at once (ship.py)
    batch_max_bytes: int = 960 * 1024  # a batch's gzip'd size: a Kinesis record is at most 1 MiB
    batch_max_raw_mb: int = 8  # a batch's NDJSON (what the ingest function inflates per record)
    gzip_level: int = 1
    log_level: str = "info"
    audit_key: str = "vigil"


class SpoolConfig(_Section):
    dir: str = ""  # default: <state_dir>/spool
    max_bytes: int = 256 << 20
    memory_batches: int = 16  # batches held in memory before the disk spool takes over


class LimitsConfig(_Section):
    cpu_percent: float = 5.0  # of one core, averaged over window_s; above it the agent sheds
    rss_mb: int = 100
    window_s: float = 10.0


class SensorsConfig(_Section):
    ebpf: bool = True  # exec/exit/connect/accept from eBPF tracepoints; audit covers them if off/unavailable
    ebpf_object: str = ""  # the compiled programs; default: vigil.bpf.o next to the agent's modules
    ebpf_ring_kb: int = (
        2048  # the kernel->agent ring (power of two; mapped into the agent: counts in its RSS)
    )
    ebpf_native: bool = True  # the ring's common records (execs, connects) written in C (libvigilfast.so)
    audit: bool = True
    dns: bool = True
    dns_native: bool = True  # the capture's packets read and UDP DNS parsed in C (libvigilfast.so)
    proc_connector: bool = True
    dns_ports: list[int] = msgspec.field(default_factory=lambda: [53])
    connect_failures: bool = False  # also report refused/unreachable connects (more volume)
    process_exit: bool = False  # emit process_exit events (the table always tracks exits)
    unix_connect_all: bool = False  # default: only sockets listed in watch.unix_sockets
    hash_max_mb: int = 64


class WatchConfig(_Section):
    defaults: bool = True  # the built-in sensitive paths (docs/agent.md lists them)
    paths: list[str] = []  # more files/directories to watch for writes/renames/unlinks/links
    unix_sockets: list[str] = msgspec.field(
        default_factory=lambda: [
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/run/containerd/containerd.sock",
            "/var/run/crio/crio.sock",
            "/run/podman/podman.sock",
            "/var/run/dockershim.sock",
        ]
    )


class ExcludeConfig(_Section):
    exes: list[str] = []  # executables whose syscalls are not audited at all (kernel-side filter)
    processes: list[str] = []  # process names (comm) whose events are dropped
    paths: list[str] = []  # path prefixes for file events that are dropped (noisy logs, ...)


class IdentityConfig(_Section):
    """The signed instance identity every batch header carries (docs/identity.md)."""

    imds: bool = True  # fetch the document and its signature from IMDSv2
    imds_url: str = "http://169.254.169.254"  # tests point it at a loopback stand-in
    timeout_s: float = 1.0
    refresh_s: float = 3600.0  # fetch again this often (every 5 min at most while there is none)
    # tests and the offline stack only (never on EC2): a static document and its base64 signature
    document_file: str = ""
    signature_file: str = ""


class Config(_Section):
    agent: AgentConfig = AgentConfig()
    identity: IdentityConfig = IdentityConfig()
    kinesis: KinesisConfig = KinesisConfig()
    spool: SpoolConfig = SpoolConfig()
    limits: LimitsConfig = LimitsConfig()
    sensors: SensorsConfig = SensorsConfig()
    watch: WatchConfig = WatchConfig()
    exclude: ExcludeConfig = ExcludeConfig()

    @property
    def spool_dir(self) -> str:
        return self.spool.dir or os.path.join(self.agent.state_dir, "spool")


class ConfigError(ValueError):
    pass


def parse(text: str, source: str = "<config>") -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        cfg = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    problems = []
    if cfg.agent.flush_s <= 0 or cfg.agent.flush_s > 1.0:
        problems.append("agent.flush_s must be in (0, 1] (DESIGN: batches leave within a second)")
    elif not cfg.agent.flush_s <= cfg.agent.stretch_s <= 5.0:
        problems.append(
            "agent.stretch_s must be in [agent.flush_s, 5] (a small batch's deadline; = agent.flush_s: off)"
        )
    if not 1024 <= cfg.agent.batch_max_bytes <= 1000 * 1024:
        problems.append("agent.batch_max_bytes must be between 1 KiB and 1000 KiB")
    if not 1 <= cfg.agent.batch_max_raw_mb <= 8:  # the ingest refuses a record that inflates past 8 MiB
        problems.append(
            "agent.batch_max_raw_mb must be between 1 and 8 (the ingest's bound, docs/wire-format.md §4)"
        )
    if cfg.agent.heartbeat_s <= 0:
        problems.append("agent.heartbeat_s must be > 0")
    if not 0 <= cfg.agent.gzip_level <= 9:
        problems.append("agent.gzip_level must be 0..9")
    if cfg.limits.cpu_percent <= 0 or cfg.limits.rss_mb <= 0:
        problems.append("limits.cpu_percent and limits.rss_mb must be > 0")
    ring = cfg.sensors.ebpf_ring_kb
    if ring < 4 or ring & (ring - 1) or ring > 1 << 20:
        problems.append("sensors.ebpf_ring_kb must be a power of two from 4 to 1048576 (KiB)")
    if cfg.spool.max_bytes < 1 << 20:
        problems.append("spool.max_bytes must be at least 1 MiB")
    if cfg.agent.log_level not in ("debug", "info", "warning", "error"):
        problems.append("agent.log_level must be debug|info|warning|error")
    if any(not 0 < p < 65536 for p in cfg.sensors.dns_ports) or not cfg.sensors.dns_ports:
        problems.append("sensors.dns_ports must list ports 1..65535")
    if bool(cfg.identity.document_file) != bool(cfg.identity.signature_file):
        problems.append("identity.document_file and identity.signature_file go together")
    if cfg.identity.timeout_s <= 0 or cfg.identity.refresh_s < 60:
        problems.append("identity.timeout_s must be > 0 and identity.refresh_s >= 60")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return cfg


def load(path: str | None, *, required: bool) -> Config:
    """``required``: shipping to Kinesis needs a file; --stdout runs on defaults if there is none."""
    path = path or DEFAULT_PATH
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: no such file (write one, see agent/packaging/agent.toml)") from None
        return Config()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse(text, path)
