"""vigil-agent command line.

vigil-agent                      ship to Kinesis per /etc/vigil/agent.toml
vigil-agent --stdout             write the event stream as NDJSON to stdout (no AWS at all)
vigil-agent --check-config       validate the configuration and exit
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from vigil import wire
from vigil_agent import __version__
from vigil_agent.config import DEFAULT_PATH, Config, ConfigError, load
from vigil_agent.ship import KinesisShipper, Stats, StdoutSink, kinesis_client
from vigil_agent.spool import Spool


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vigil-agent", description="Vigil host agent (audit, proc connector, DNS)."
    )
    p.add_argument("--config", "-c", default=None, help=f"configuration file (default {DEFAULT_PATH})")
    p.add_argument(
        "--stdout", action="store_true", help="write events as NDJSON to stdout instead of Kinesis"
    )
    p.add_argument("--check-config", action="store_true", help="validate the configuration and exit")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (tests, bench)")
    p.add_argument("--log-level", default=None, help="debug|info|warning|error (overrides the file)")
    p.add_argument("--version", action="version", version=f"vigil-agent {__version__}")
    return p


def _kinesis_sink(cfg: Config) -> Callable[[Stats, wire.Host], KinesisShipper]:
    def make(stats: Stats, host: wire.Host) -> KinesisShipper:
        spool = Spool(cfg.spool_dir, cfg.spool.max_bytes)
        if len(spool):
            logging.getLogger("vigil_agent").info(
                "spool holds %d batches (%d events) from before; replaying",
                len(spool),
                spool.pending_events(),
            )
        shipper = KinesisShipper(
            stream=cfg.kinesis.stream,
            partition_key=host.instance_id,
            spool=spool,
            stats=stats,
            client_factory=lambda: kinesis_client(
                cfg.kinesis.region or cfg.agent.region, cfg.kinesis.endpoint_url, cfg.kinesis.timeout_s
            ),
            memory_batches=cfg.spool.memory_batches,
            max_attempts=cfg.kinesis.max_attempts,
            backoff_base_s=cfg.kinesis.backoff_base_s,
            backoff_max_s=cfg.kinesis.backoff_max_s,
        )
        shipper.start()
        return shipper

    return make


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = load(args.config, required=not args.stdout)
    except ConfigError as exc:
        print(f"vigil-agent: bad configuration: {exc}", file=sys.stderr)
        return 2
    if not args.stdout and not cfg.kinesis.stream:
        print("vigil-agent: bad configuration: kinesis.stream is required unless --stdout", file=sys.stderr)
        return 2
    level = (args.log_level or cfg.agent.log_level).upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s vigil-agent %(levelname)s %(message)s",
    )
    if args.check_config:
        print(f"{args.config or DEFAULT_PATH}: ok")
        return 0
    if os.geteuid() != 0:
        logging.getLogger("vigil_agent").warning("not root: audit and DNS capture will be unavailable")

    from vigil_agent.agent import Agent

    if args.stdout:
        # nothing verifies a local stream: IMDS is not asked (static identity files still apply)
        import msgspec

        cfg = msgspec.structs.replace(cfg, identity=msgspec.structs.replace(cfg.identity, imds=False))
        agent = Agent(cfg, lambda stats, host: StdoutSink(stats), stop_after=args.duration)
    else:
        agent = Agent(cfg, _kinesis_sink(cfg), stop_after=args.duration)
    sample = os.environ.get("VIGIL_AGENT_SAMPLE")  # benchmarks: a low-overhead sampling profile
    if sample:
        return _sampled(agent.run, sample)
    profile = os.environ.get("VIGIL_AGENT_PROFILE")  # benchmarks: where does the CPU go (cProfile)
    if profile:
        import cProfile

        prof = cProfile.Profile()
        try:
            return prof.runcall(agent.run)
        finally:
            prof.dump_stats(profile)
    return agent.run()


def _sampled(run: Callable[[], int], path: str, interval: float = 0.002) -> int:
    """Sample the main thread's Python stack every ``interval`` s of process CPU time (ITIMER_PROF)
    and write collapsed stacks (``a;b;c count``, flamegraph input) to ``path``. Unlike cProfile it
    does not slow down small functions, so the shares are the real ones."""
    import collections
    import signal

    counts: collections.Counter[str] = collections.Counter()

    def on_prof(_sig: int, frame: object) -> None:
        stack = []
        f = frame
        while f is not None:
            code = f.f_code  # type: ignore[attr-defined]
            stack.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_name}")
            f = f.f_back  # type: ignore[attr-defined]
        counts[";".join(reversed(stack))] += 1

    signal.signal(signal.SIGPROF, on_prof)
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    try:
        return run()
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        with open(path, "w") as out:
            for stack, n in counts.most_common():
                out.write(f"{stack} {n}\n")


if __name__ == "__main__":
    sys.exit(main())
