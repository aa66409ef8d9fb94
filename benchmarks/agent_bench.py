"""make bench-agent: what the agent costs under load, and whether it loses anything.

    python benchmarks/agent_bench.py [--seconds 60] [--exec-rate 200] [--connect-rate 500] [--dns-rate 100]

Root only. Starts a Kinesis emulator (moto) on loopback, the real agent shipping to it (the
production path: audit, DNS capture, process table, gzip batches, PutRecords), and three load
generators in their own processes:
  exec     /bin/true <run id> <n>                      -> process_exec
  connect  TCP connect to a loopback listener          -> net_connect + net_accept (the listener)
  dns      connect()+send() of a UDP query to a dnslib responder on 127.0.x.y:53, like glibc
                                                        -> dns_query + net_connect (udp)
It samples the agent's CPU (utime+stime of its /proc/<pid>/stat) and RSS over the load, then
reads every record back from the stream and counts the events of this run by marker.
The last line is the contract: cpu % of one core, RSS MiB, captured/generated, dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers/core"), str(ROOT / "agent")]

TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def paced(rate: float, seconds: float, fn, stop) -> int:  # type: ignore[no-untyped-def]
    """Call fn() ``rate`` times a second for ``seconds`` (catching up if late); returns the count."""
    n = 0
    start = time.monotonic()
    total = int(rate * seconds)
    while n < total and not stop.is_set():
        due = start + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(min(due - now, 0.01))
            continue
        fn(n)
        n += 1
    return n


def gen_exec(run: str, rate: float, seconds: float, out, stop) -> None:  # type: ignore[no-untyped-def]
    def one(n: int) -> None:
        pid = os.posix_spawn("/bin/true", ["/bin/true", run, str(n)], {})
        os.waitpid(pid, 0)

    out.put(("exec", paced(rate, seconds, one, stop)))


def gen_connect(port: int, rate: float, seconds: float, out, stop) -> None:  # type: ignore[no-untyped-def]
    def one(n: int) -> None:
        with socket.create_connection(("127.0.0.1", port)):
            pass

    out.put(("connect", paced(rate, seconds, one, stop)))


def gen_dns(resolver: str, run: str, rate: float, seconds: float, out, stop) -> None:  # type: ignore[no-untyped-def]
    import dnslib

    def one(n: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.connect((resolver, 53))
        s.send(dnslib.DNSRecord.question(f"q{n}.{run}.bench.test", "A").pack())
        with contextlib.suppress(TimeoutError):
            s.recv(4096)
        s.close()

    out.put(("dns", paced(rate, seconds, one, stop)))


def serve_listener(sock: socket.socket, stop) -> None:  # type: ignore[no-untyped-def]
    """In its own process, so its accepts are told apart from the Kinesis emulator's."""
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = sock.accept()
            c.close()
        except (TimeoutError, OSError):
            continue


def serve_dns(sock: socket.socket, stop: threading.Event) -> None:
    import dnslib

    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, addr = sock.recvfrom(4096)
        except (TimeoutError, OSError):
            continue
        q = dnslib.DNSRecord.parse(data)
        r = q.reply()
        r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.A, rdata=dnslib.A("10.9.8.7"), ttl=5))
        sock.sendto(r.pack(), addr)


def proc_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def proc_cpu_split(pid: int) -> dict[str, list[int]]:
    """utime, stime ticks of the agent per thread ("main" / "thread <tid>" -> [utime, stime])."""
    out: dict[str, list[int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/stat") as f:
            text = f.read()
            name = "main" if tid == str(pid) else f"thread {tid}"
            rest = text.rsplit(")", 1)[1].split()
            u = out.setdefault(name, [0, 0])
            u[0] += int(rest[11])
            u[1] += int(rest[12])
    return out


def proc_rss(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, hwm


BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def bpf_prog_stats(pid: int) -> tuple[int, int]:
    """(run time ns, runs) of the eBPF programs ``pid`` holds, from their fd's fdinfo (counted
    while kernel.bpf_stats_enabled = 1). This time is spent in the kernel on behalf of the
    processes that exec/connect, not in the agent's own CPU time: reported next to it."""
    ns = runs = 0
    fd_dir = Path(f"/proc/{pid}/fdinfo")
    for f in fd_dir.iterdir() if fd_dir.exists() else ():
        try:
            text = f.read_text()
        except OSError:
            continue
        if "prog_type:" not in text:
            continue
        for line in text.splitlines():
            if line.startswith("run_time_ns:"):
                ns += int(line.split()[1])
            elif line.startswith("run_cnt:"):
                runs += int(line.split()[1])
    return ns, runs


def read_stream(client, stream: str) -> list[tuple[bytes, float]]:  # type: ignore[no-untyped-def]
    """Every record of the stream: (data, its arrival time, epoch seconds)."""
    out = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            resp = client.get_records(ShardIterator=it, Limit=10000)
            out += [(r["Data"], r["ApproximateArrivalTimestamp"].timestamp()) for r in resp["Records"]]
            if not resp["Records"]:
                break
            it = resp.get("NextShardIterator")
    return out


def host_speed_ns() -> float:
    """A pure-Python reference loop, ns per iteration (best of 5), measured before the load: VMs
    of one type differ by 2x in CPython speed, so a CPU % is read next to this."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter_ns()
        total = 0
        for i in range(1_000_000):
            total += i & 7
        best = min(best, (time.perf_counter_ns() - t) / 1_000_000)
    return round(best, 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--exec-rate", type=float, default=200.0)
    ap.add_argument("--connect-rate", type=float, default=500.0)
    ap.add_argument("--dns-rate", type=float, default=100.0)
    ap.add_argument("--cpu-limit", type=float, default=25.0, help="agent limits.cpu_percent (shedding threshold)")
    ap.add_argument("--json", default="", help="also write the results here")
    ap.add_argument("--agent", default="", help='extra [agent] settings, e.g. "gzip_level = 6"')
    ap.add_argument("--sensors", default="", help='extra [sensors] settings for the agent, e.g. "ebpf_native = false"')
    ap.add_argument("--agent-root", default=str(ROOT / "agent"),
                    help="directory holding the vigil_agent package to measure (A/B against another checkout)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench-agent: needs root (the agent reads audit and AF_PACKET)", file=sys.stderr)
        return 2

    import boto3
    from moto.server import ThreadedMotoServer

    from vigil import wire

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[k] = v
    run = f"bench{uuid.uuid4().hex[:10]}"
    kport = free_port()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=kport, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{kport}"
    kin = boto3.client("kinesis", region_name="us-east-1", endpoint_url=endpoint)
    kin.create_stream(StreamName="bench-telemetry", ShardCount=1)

    work = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    cfg = work / "agent.toml"
    # a signed identity from files (never the real IMDS): the batch header the agent ships on EC2
    sys.path.insert(0, str(ROOT))
    from local.identity import test_authority

    doc, sig = test_authority().agent_files(work / "identity", wire.Host(instance_id=f"i-0{run[-8:]}be0c0000"))
    cfg.write_text(f"""
[identity]
document_file = "{doc}"
signature_file = "{sig}"
[agent]
instance_id = "i-0{run[-8:]}be0c0000"
state_dir = "{work / 'state'}"
heartbeat_s = 10.0
audit_key = "{run}"
{a.agent}
[kinesis]
stream = "bench-telemetry"
region = "us-east-1"
endpoint_url = "{endpoint}"
[limits]
cpu_percent = {a.cpu_limit}
[sensors]
{a.sensors}
""")
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'layers/core'}:{a.agent_root}")
    agent = subprocess.Popen([sys.executable, "-m", "vigil_agent.main", "--config", str(cfg)], env=env,
                             stdout=subprocess.DEVNULL, stderr=open(work / "agent.log", "wb"))  # noqa: SIM115 (lives as long as the agent)
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    lport = listener.getsockname()[1]
    resolver = f"127.0.{int(run[-4:], 16) % 200 + 20}.53"
    dsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dsock.bind((resolver, 53))
    ctx = mp.get_context("fork")
    lstop = ctx.Event()
    lproc = ctx.Process(target=serve_listener, args=(listener, lstop), daemon=True)
    lproc.start()
    threads = [threading.Thread(target=serve_dns, args=(dsock, stop), daemon=True)]
    for t in threads:
        t.start()
    time.sleep(3.0)  # agent start-up: rules installed, first heartbeat out
    if agent.poll() is not None:
        print((work / "agent.log").read_text(), file=sys.stderr)
        return 1

    rss_idle = proc_rss(agent.pid)[0]
    speed = host_speed_ns()
    q = ctx.Queue()
    pstop = ctx.Event()
    gens = [
        ctx.Process(target=gen_exec, args=(run, a.exec_rate, a.seconds, q, pstop)),
        ctx.Process(target=gen_connect, args=(lport, a.connect_rate, a.seconds, q, pstop)),
        ctx.Process(target=gen_dns, args=(resolver, run, a.dns_rate, a.seconds, q, pstop)),
    ]
    stats_before = BPF_STATS.read_text().strip() if BPF_STATS.exists() else None
    if stats_before is not None:
        BPF_STATS.write_text("1")
    t0, k0 = time.monotonic(), proc_cpu_ticks(agent.pid)
    split0 = proc_cpu_split(agent.pid)
    bpf0 = bpf_prog_stats(agent.pid)
    for g in gens:
        g.start()
    rss_samples = []
    while any(g.is_alive() for g in gens):
        rss_samples.append(proc_rss(agent.pid)[0])
        time.sleep(1.0)
    t1, k1 = time.monotonic(), proc_cpu_ticks(agent.pid)
    split1 = proc_cpu_split(agent.pid)
    bpf1 = bpf_prog_stats(agent.pid)
    if stats_before is not None:
        BPF_STATS.write_text(stats_before)
    generated = dict(q.get() for _ in gens)
    for g in gens:
        g.join()
    time.sleep(4.0)  # last batches: flush interval + DNS hold
    _rss_now, hwm = proc_rss(agent.pid)
    agent.terminate()
    agent.wait(timeout=30)
    stop.set()
    lstop.set()
    lproc.join(timeout=5)

    counts = {"exec": 0, "connect": 0, "accept": 0, "dns": 0, "dns_attributed": 0, "dns_connect": 0}
    exec_seen: set[int] = set()
    final_hb = None
    total_events = 0
    records = read_stream(kin, "bench-telemetry")
    late: dict[str, int] = {}  # events over 1.1 s, by kind
    ages: list[float] = []  # event recorded -> its record in Kinesis, s (DNS queries: their answer is awaited)
    for rec, arrived in records:
        events, errors = wire.decode_batch(rec)
        assert not errors, errors[:1]
        for e in events:
            n = 1 + getattr(e, "repeats", 0)  # an event the agent folded repeats into stands for them
            total_events += n
            if not isinstance(e, wire.DnsQuery | wire.Heartbeat):
                ages.append(arrived - e.time / 1e9)
                if ages[-1] > 1.1:
                    who = f"{type(e).__name__} by {getattr(getattr(e, 'process', None), 'name', '?')}"
                    late[who] = late.get(who, 0) + 1
            if isinstance(e, wire.ProcessExec) and len(e.process.args) > 1 and e.process.args[1] == run:
                counts["exec"] += 1
                with contextlib.suppress(ValueError, IndexError):
                    exec_seen.add(int(e.process.args[2]))
            elif isinstance(e, wire.NetConnect) and e.remote_port == lport:
                counts["connect"] += n
            elif isinstance(e, wire.NetAccept) and e.process.pid == lproc.pid:
                counts["accept"] += n
            elif isinstance(e, wire.NetConnect) and e.remote_ip == resolver:
                counts["dns_connect"] += n
            elif isinstance(e, wire.DnsQuery) and e.hostname.endswith(f"{run}.bench.test"):
                counts["dns"] += n
                counts["dns_attributed"] += n if e.process is not None else 0
            elif isinstance(e, wire.Heartbeat):
                final_hb = e
    moto.stop()

    wall = t1 - t0
    cpu = 100.0 * (k1 - k0) / TCK / wall
    expected = {"exec": generated["exec"], "connect": generated["connect"], "accept": generated["connect"],
                "dns": generated["dns"], "dns_connect": generated["dns"]}
    captured = sum(counts[k] for k in expected)
    want = sum(expected.values())
    c = final_hb.counters if final_hb else wire.Counters()
    result = {
        "seconds": round(wall, 1),
        "host_python_loop_ns": speed,
        "rates_per_s": {k: round(v / wall, 1) for k, v in generated.items()},
        "agent_cpu_percent_of_one_core": round(cpu, 2),
        "agent_cpu_by_thread_user_sys": {
            n: [round(100.0 * (u - split0.get(n, [0, 0])[0]) / TCK / wall, 2),
                round(100.0 * (st - split0.get(n, [0, 0])[1]) / TCK / wall, 2)]
            for n, (u, st) in split1.items()},
        "ebpf_programs_kernel_cpu_percent_of_one_core": round(100.0 * (bpf1[0] - bpf0[0]) / 1e9 / wall, 3),
        "ebpf_program_runs": bpf1[1] - bpf0[1],
        "ebpf_ns_per_run": round((bpf1[0] - bpf0[0]) / max(1, bpf1[1] - bpf0[1])),
        "agent_rss_mib_idle_before_load": round(rss_idle / 2**20, 1),
        "agent_rss_mib_max_sampled": round(max(rss_samples) / 2**20, 1),
        "agent_rss_mib_hwm": round(hwm / 2**20, 1),
        "events_expected": expected,
        "events_captured": counts,
        "captured_total": captured,
        "expected_total": want,
        "events_in_stream_all_sources": total_events,
        "exec_missing_n": sorted(set(range(generated["exec"])) - exec_seen)[:50],
        "kinesis_records": len(records),
        # how long an event took from being recorded to its record arriving in the emulator (all
        # but DNS queries, which wait for their answer): the agent's flush_s (1 s) plus the call
        "event_to_stream_s": {
            "p50": round(ages[len(ages) // 2], 3) if (ages := sorted(ages)) else None,
            "p99": round(ages[int(len(ages) * 0.99)], 3) if ages else None,
            "max": round(ages[-1], 3) if ages else None,
            "over_1.1_s": late,
        },
        "agent_counters": {"captured": c.captured, "sent": c.sent, "dropped": c.dropped, "spooled": c.spooled,
                           "audit_lost": c.audit_lost, "audit_overruns": c.audit_overruns, "shed": c.shed},
        "agent_log_tail": (work / "agent.log").read_text().splitlines()[-3:],
    }
    print(json.dumps(result, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    if bpf1[1] - bpf0[1]:
        print(f"ebpf programs: {result['ebpf_programs_kernel_cpu_percent_of_one_core']}% of one core in the kernel "
              f"({result['ebpf_program_runs']} runs, {result['ebpf_ns_per_run']} ns each), charged to the traced processes")
    print(f"bench-agent: cpu {cpu:.2f}% of one core, rss {max(rss_samples) / 2**20:.1f} MiB (hwm {hwm / 2**20:.1f}), "
          f"captured {captured}/{want}, dropped {c.dropped}, audit lost {c.audit_lost}")
    return 0 if captured == want and c.dropped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
