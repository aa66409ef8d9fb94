"""A realistic, deterministic agent event mix for benchmarks (no I/O, fixed seed).

Shape of a busy web/app instance: mostly process execs (with lineage and stdio) and outbound
connects, DNS lookups, some file events on watched paths, and a trickle of rarer kinds. About 1 in
2,000 events is malicious so the finding path is exercised too.
"""

from __future__ import annotations

import random

from vigil import wire

HOST = wire.Host(
    instance_id="i-0be0c000000000001", account_id="123456789012", region="us-east-1",
    hostname="ip-10-0-1-23.ec2.internal", boot_id="5f0c0d4e-bench", agent_version="0.1.0",
    instance_type="m7i.large", image_id="ami-0123456789abcdef0", vcpus=2,
)  # fmt: skip

_EXES = [
    ("/usr/bin/python3", ["python3", "-m", "app.worker", "--queue", "default"]),
    ("/usr/bin/git", ["git", "fetch", "--prune", "origin"]),
    ("/usr/bin/curl", ["curl", "-sS", "-o", "/tmp/health", "http://127.0.0.1:8080/health"]),
    ("/usr/bin/ls", ["ls", "-la", "/var/www/html"]),
    ("/usr/bin/grep", ["grep", "-r", "ERROR", "/var/log/app"]),
    ("/usr/sbin/logrotate", ["logrotate", "/etc/logrotate.conf"]),
    ("/usr/bin/node", ["node", "/srv/api/server.js"]),
    ("/usr/bin/sed", ["sed", "-i", "s/a/b/", "/tmp/x.conf"]),
    ("/bin/bash", ["bash", "-c", "cd /srv && ./deploy.sh"]),
    ("/usr/bin/systemctl", ["systemctl", "status", "nginx"]),
]
_DOMAINS = ["api.github.com", "sts.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com", "deb.debian.org", "pypi.org",
            "files.pythonhosted.org", "logs.us-east-1.amazonaws.com", "db.internal.example.com", "cache.internal.example.com"]  # fmt: skip
_FILES = [
    "/var/log/app/app.log",
    "/var/log/nginx/access.log",
    "/etc/cron.d/app",
    "/home/ec2-user/.bash_history",
    "/etc/passwd",
]


def _proc(
    rng: random.Random, pid: int, exe: str, argv: list[str], sock: wire.Stdio | None = None
) -> wire.Process:
    parent = wire.Process(
        pid=pid - 1,
        uid=f"p{pid - 1}",
        name="bash",
        cmd_line="bash",
        args=["bash"],
        file=wire.File(path="/usr/bin/bash", name="bash"),
        user=wire.User(uid=1000, name="app"),
        euid=1000,
    )
    grand = wire.Process(
        pid=1,
        uid="p1",
        name="systemd",
        cmd_line="/usr/lib/systemd/systemd",
        args=["/usr/lib/systemd/systemd"],
        file=wire.File(path="/usr/lib/systemd/systemd", name="systemd"),
        user=wire.User(uid=0, name="root"),
        euid=0,
    )
    name = exe.rsplit("/", 1)[-1]
    return wire.Process(
        pid=pid, uid=f"u{pid:08x}{rng.getrandbits(32):08x}", name=name, cmd_line=" ".join(argv), args=argv,
        file=wire.File(path=exe, name=name, sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        user=wire.User(uid=1000, name="app"), euid=1000, gid=1000, egid=1000, working_directory="/srv/app",
        created_time=1_764_000_000_000_000_000 + pid, ppid=pid - 1, parent_uid=f"p{pid - 1}", lineage=[parent, grand],
        stdin=sock or wire.Stdio(type="pipe"), stdout=sock or wire.Stdio(type="pipe"),
        stderr=wire.Stdio(type="file", path="/var/log/app/err.log"),
    )  # fmt: skip


def generate(n: int, seed: int = 7) -> list[wire.WireEvent]:
    rng = random.Random(seed)
    out: list[wire.WireEvent] = []
    t = 1_764_000_000_000_000_000
    for i in range(n):
        t += rng.randint(100_000, 2_000_000)
        seq = i + 1
        pid = 10_000 + i
        host = HOST if i % 500 == 0 else None  # batch header every 500 events
        r = rng.random()
        if i % 2000 == 1999:  # the rare malicious event
            sock = wire.Stdio(
                type="socket",
                family="inet",
                protocol="tcp",
                remote=wire.Endpoint(ip="198.51.100.7", port=4444),
            )
            p = _proc(rng, pid, "/bin/bash", ["bash", "-i"], sock)
            out.append(wire.ProcessExec(time=t, seq=seq, host=host, process=p))
        elif r < 0.40:
            exe, argv = _EXES[rng.randrange(len(_EXES))]
            out.append(wire.ProcessExec(time=t, seq=seq, host=host, process=_proc(rng, pid, exe, argv)))
        elif r < 0.68:
            p = _proc(rng, pid, "/usr/bin/python3", ["python3", "-m", "app.worker"])
            ip = f"10.0.{rng.randrange(4)}.{rng.randrange(1, 250)}"
            out.append(wire.NetConnect(time=t, seq=seq, host=host, process=p, remote_ip=ip, remote_port=rng.choice([443, 5432, 6379]),
                                       local_ip="10.0.1.23", local_port=rng.randrange(32768, 60999)))  # fmt: skip
        elif r < 0.83:
            p = _proc(rng, pid, "/usr/bin/python3", ["python3", "-m", "app.worker"])
            name = rng.choice(_DOMAINS)
            out.append(wire.DnsQuery(time=t, seq=seq, host=host, hostname=name, process=p, resolver_ip="10.0.0.2", rcode="NOERROR",
                                     answers=[wire.DnsAnswer(type="A", rdata=f"10.1.{rng.randrange(255)}.{rng.randrange(255)}", ttl=60)]))  # fmt: skip
        elif r < 0.93:
            p = _proc(rng, pid, "/usr/bin/python3", ["python3", "-m", "app.worker"])
            out.append(wire.FileWrite(time=t, seq=seq, host=host, process=p, path=rng.choice(_FILES)))
        elif r < 0.98:
            exe, argv = _EXES[rng.randrange(len(_EXES))]
            out.append(wire.ProcessExit(time=t, seq=seq, host=host, process=_proc(rng, pid, exe, argv)))
        else:
            p = _proc(rng, pid, "/usr/sbin/nginx", ["nginx"])
            out.append(
                wire.NetAccept(
                    time=t,
                    seq=seq,
                    host=host,
                    process=p,
                    remote_ip="10.0.9.9",
                    remote_port=51000,
                    local_ip="10.0.1.23",
                    local_port=443,
                )
            )
    return out


def batches(events: list[wire.WireEvent], size: int = 500) -> list[bytes]:
    """Plain NDJSON batches (gzip is measured separately: it is zlib, not our code)."""
    return [wire.encode_batch(events[i : i + size], compress=False) for i in range(0, len(events), size)]
