"""Pure parts of the agent (no root, no kernel): audit parsing, rules, DNS, config, limiter."""

from __future__ import annotations

import struct

import dnslib
import msgspec
import pytest
from dns_packets import dns_samples, tcp6, udp4
from hypothesis import given
from hypothesis import strategies as st

from vigil import wire
from vigil_agent import auditnl, config, dnscap, rules
from vigil_agent.auditparse import Assembler, parse_execve, parse_sockaddr, value
from vigil_agent.collector import Collector
from vigil_agent.limiter import ORDER, Limiter
from vigil_agent.proctable import ProcessTable, container_id, env_vars, parse_stat


def nl(mtype: int, text: str) -> bytes:
    body = text.encode()
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


EXEC_RECORDS = [
    (
        1300,
        "audit(1795818147.269:159): arch=c000003e syscall=59 success=yes exit=0 a0=7fe9 a1=7fe9 a2=7fff a3=8 "
        "items=2 ppid=4627 pid=999999 auid=4294967295 uid=1000 gid=1000 euid=0 suid=0 fsuid=0 egid=0 sgid=0 "
        'fsgid=0 tty=pts1 ses=4294967295 comm="echo" exe="/usr/bin/echo" key="vigil"',
    ),
    (1321, "audit(1795818147.269:159): fver=0 fp=0"),
    (1309, 'audit(1795818147.269:159): argc=3 a0="/bin/echo" a1=6D61726B6572206F6E65 a2=780A79'),
    (1307, 'audit(1795818147.269:159): cwd="/work/main"'),
    (
        1302,
        'audit(1795818147.269:159): item=0 name="/bin/echo" inode=260249 dev=fe:00 mode=0100755 nametype=NORMAL',
    ),
    (1327, "audit(1795818147.269:159): proctitle=2F62696E"),
    (1320, "audit(1795818147.269:159): "),
]


def test_assembler_groups_records_until_eoe() -> None:
    asm = Assembler()
    out = [asm.feed(nl(t, s)) for t, s in EXEC_RECORDS]
    assert out[:-1] == [None] * (len(EXEC_RECORDS) - 1)
    g = out[-1]
    assert g is not None
    assert g.serial == 159
    assert g.time_ns == 1795818147_269_000_000
    assert g.syscall["syscall"] == "59" and g.syscall["pid"] == "999999"
    assert g.argv() == ["/bin/echo", "marker one", "x\ny"]
    assert g.cwd == "/work/main"
    assert g.path_names() == [("/bin/echo", "NORMAL")]
    assert asm.pending == {}


def test_assembler_interleaved_serials_and_expiry() -> None:
    asm = Assembler(max_age_ns=1)
    asm.feed(nl(1300, EXEC_RECORDS[0][1]))
    other = EXEC_RECORDS[0][1].replace(":159)", ":160)")
    asm.feed(nl(1300, other))
    assert asm.feed(nl(1320, "audit(1795818147.269:160): ")) is not None
    expired = asm.expire(1795818147_269_000_000 + 10)
    assert [g.serial for g in expired] == [159]
    assert asm.incomplete == 1


def test_execve_long_argument_chunks_and_truncation() -> None:
    body = 'argc=2 a0="cat" a1_len=10 a1[0]=3031323334 a1[1]=3536373839'
    assert parse_execve(body) == ["cat", "0123456789"]
    many = "argc=3 " + " ".join(f'a{i}="{"x" * 5000}"' for i in range(3))
    argv = parse_execve(many)
    assert sum(len(a) for a in argv) <= 8192 + 1 and argv[-1].endswith("…")


def test_value_decoding() -> None:
    assert value('"abc"') == "abc"
    assert value("616263") == "abc"
    assert value("(null)") is None
    assert value(None) is None


def test_sockaddr_families() -> None:
    v4 = parse_sockaddr("02001F90" + "7F000001" + "00" * 8)
    assert (v4.family, v4.ip, v4.port) == ("inet", "127.0.0.1", 8080)
    v6 = parse_sockaddr("0A000035" + "00000000" + "00" * 15 + "01" + "00000000")
    assert (v6.family, v6.ip, v6.port) == ("inet6", "::1", 53)
    mapped = parse_sockaddr("0A000050" + "00000000" + "00" * 10 + "FFFF" + "0A000001" + "00000000")
    assert mapped.ip == "10.0.0.1"
    ux = parse_sockaddr("0100" + b"/var/run/docker.sock".hex() + "00")
    assert (ux.family, ux.path) == ("unix", "/var/run/docker.sock")
    abstract = parse_sockaddr("0100" + "00" + b"hidden".hex())
    assert abstract.path == "@hidden"


@given(st.binary(max_size=64))
def test_sockaddr_never_raises(raw: bytes) -> None:
    parse_sockaddr(raw.hex())


@given(st.binary(max_size=300))
def test_assembler_never_raises_on_garbage(raw: bytes) -> None:
    Assembler().feed(raw)


def test_rule_encoding_roundtrip_and_self_exclusion() -> None:
    rs = rules.build_rules(key="k1", agent_pid=4242, arches=[auditnl.ARCH_X86_64], watched=["/etc/passwd"])
    assert all(auditnl.rule_key(r.encode()) == "k1" for r in rs)
    assert all((auditnl.AUDIT_PID, "!=", 4242) in r.fields for r in rs)
    execr = next(r for r in rs if r.label == "exec")
    assert set(execr.syscalls) == {59, 322}
    assert (auditnl.AUDIT_SUCCESS, "=", 1) in execr.fields
    watch = next(r for r in rs if r.label == "watch:/etc/passwd")
    assert watch.syscalls == () and watch.fields[0] == (auditnl.AUDIT_WATCH, "=", "/etc/passwd")
    blob = execr.encode()
    assert len(blob) == 1040 + len("k1")
    # the syscall bitmap has exactly execve (59) and execveat (322)
    mask = struct.unpack_from("=64I", blob, 12)
    assert mask[59 // 32] == 1 << (59 % 32) and mask[322 // 32] == 1 << (322 % 32)


def test_exclude_rules_are_on_the_exclude_list_under_our_key() -> None:
    ex = rules.build_exclude_rules(key="vigil-x")
    assert [r.label for r in ex] == ["exclude:PROCTITLE", "exclude:BPRM_FCAPS"]
    for r in ex:
        blob = r.encode()
        assert struct.unpack_from("=I", blob)[0] == auditnl.AUDIT_FILTER_EXCLUDE
        assert r.fields[0][:2] == (auditnl.AUDIT_MSGTYPE, "=")
        assert auditnl.rule_key(blob) == "vigil-x"  # leftovers of a killed agent are found by key


def test_watch_paths_include_sensitive_defaults_and_extras() -> None:
    paths = rules.watch_paths(["/srv/app/secrets"], defaults=True)
    for p in (
        "/etc/shadow",
        "/etc/sudoers",
        "/etc/cron.d",
        "/etc/systemd/system",
        "/var/log",
        "/root/.ssh",
        "/etc/ld.so.preload",
        "/etc/pam.d",
        "/root/.bash_history",
        "/srv/app/secrets",
    ):
        assert p in paths
    assert rules.watch_paths(["/x"], defaults=False) == ["/x"]


def test_bpf_program_jumps_stay_inside() -> None:
    prog = dnscap.bpf_program([53, 5353], 1)
    for i, (_code, jt, jf, _k) in enumerate(prog):
        assert 0 <= jt < 256 and 0 <= jf < 256
        assert i + 1 + jt < len(prog) + 1 and i + 1 + jf < len(prog) + 1
    assert prog[-1] == (dnscap.RET_K, 0, 0, 0xFFFF)


def test_dns_tracker_pairs_query_answer_and_process_by_port() -> None:
    q = dnslib.DNSRecord.question("pool.example.com", "A")
    r = q.reply()
    r.add_answer(dnslib.RR("pool.example.com", dnslib.QTYPE.A, rdata=dnslib.A("192.0.2.7"), ttl=30))
    tr = dnscap.DnsTracker()
    proc = wire.Process(pid=77, name="curl")
    tr.note_connect(proc, "10.0.0.2", "udp", 40000, 1_000)
    tr.on_packet(udp4("10.0.0.5", "10.0.0.2", 40000, 53, q.pack()), 2_000)
    assert tr.ready(2_000) == []  # no answer yet, not timed out
    tr.on_packet(udp4("10.0.0.2", "10.0.0.5", 53, 40000, r.pack()), 3_000)
    [p] = tr.ready(3_000)
    assert (p.hostname, p.qtype, p.rcode, p.resolver_ip, p.process) == (
        "pool.example.com",
        "A",
        "NOERROR",
        "10.0.0.2",
        proc,
    )
    assert p.answers == [wire.DnsAnswer(type="A", rdata="192.0.2.7", ttl=30)]


def test_dns_tracker_fifo_attribution_when_port_unknown_and_timeout() -> None:
    tr = dnscap.DnsTracker(timeout_ns=1_000_000_000)
    q = dnslib.DNSRecord.question("a.example", "AAAA").pack()
    tr.on_packet(udp4("10.0.0.5", "10.0.0.2", 40001, 53, q), 10)
    proc = wire.Process(pid=5)
    tr.note_connect(proc, "10.0.0.2", "udp", 0, 5)  # audit arrives after the packet
    [p] = tr.ready(10 + 1_000_000_000)
    assert p.process == proc and p.qtype == "AAAA" and not p.answered


def test_dns_over_tcp_ipv6_and_garbage() -> None:
    q = dnslib.DNSRecord.question("t.example", "TXT").pack()
    framed = len(q).to_bytes(2, "big") + q
    pkt = dnscap.parse_packet(tcp6("fd00::1", "fd00::53", 5555, 53, framed, seq=42))
    assert pkt is not None and (pkt.protocol, pkt.dst, pkt.dport, pkt.seq) == ("tcp", "fd00::53", 53, 42)
    assert pkt.payload == framed  # the stream's bytes; TcpStreams cuts the messages
    tr = dnscap.DnsTracker()
    tr.on_packet(udp4("1.1.1.1", "2.2.2.2", 1, 53, b"\x00garbage"), 1)
    assert tr.malformed == 1


def _tcp_answers(tr: dnscap.DnsTracker, segments: list[tuple[int, bytes, int]]) -> None:
    """Feed the resolver->client direction of one connection as (seq, data, flags) segments."""
    for seq, data, flags in segments:
        tr.on_packet(tcp6("fd00::53", "fd00::1", 53, 5555, data, seq=seq, flags=flags), 2_000)


def test_dns_over_tcp_messages_are_reassembled_across_segments() -> None:
    """A large answer arrives in pieces, the length prefix alone first (as some servers write
    it), with a retransmitted piece; then two messages in one segment. All are read."""
    names = ["big.example", "b.example", "c.example"]
    tr = dnscap.DnsTracker()
    msgs = []
    cseq = 500  # the client's stream: the three queries back to back
    for i, name in enumerate(names):
        q = dnslib.DNSRecord.question(name, "A")
        q.header.id = 100 + i
        framed = len(q.pack()).to_bytes(2, "big") + q.pack()
        tr.on_packet(tcp6("fd00::1", "fd00::53", 5555, 53, framed, seq=cseq), 1_000)
        cseq += len(framed)
        r = q.reply()
        for k in range(60 if i == 0 else 1):  # 60 answers: ~1 KiB, more than one segment here
            r.add_answer(dnslib.RR(name, dnslib.QTYPE.A, rdata=dnslib.A(f"192.0.2.{k}"), ttl=5))
        msgs.append(len(r.pack()).to_bytes(2, "big") + r.pack())
    big, rest = msgs[0], msgs[1] + msgs[2]
    isn = 7_000
    _tcp_answers(
        tr,
        [
            (isn, b"", dnscap.TCP_SYN | 0x10),
            (isn + 1, big[:2], 0x18),  # the length prefix alone
            (isn + 3, big[2:400], 0x18),
            (isn + 3, big[2:400], 0x18),  # retransmitted
            (isn + 200, big[199:], 0x18),  # overlaps what came before
            (isn + 1 + len(big), rest, 0x18),  # two messages in one segment
            (isn + 1 + len(big) + len(rest), b"", dnscap.TCP_FIN | 0x10),
        ],
    )
    got = {p.hostname: p for p in tr.ready(10**12)}
    assert set(got) == set(names) and tr.lost == 0
    big_answers = got["big.example"].answers  # the first 32 are kept (the parser's bound)
    assert len(big_answers) == 32 and big_answers[31].rdata == "192.0.2.31" and len(big) > 900
    assert not tr.tcp.streams  # FIN closed the stream


def test_dns_over_tcp_holes_and_cut_streams_are_counted_not_silent() -> None:
    q = dnslib.DNSRecord.question("gap.example", "A").pack()
    framed = len(q).to_bytes(2, "big") + q
    tr = dnscap.DnsTracker()
    isn = 1_000
    _tcp_answers(
        tr,
        [
            (isn, b"", dnscap.TCP_SYN),
            (isn + 1, framed[:10], 0x18),
            (isn + 1 + 10 + 5, framed[15:], 0x18),  # 5 bytes the capture never saw
        ],
    )
    assert tr.tcp.lost == 1 and tr.lost == 1
    _tcp_answers(tr, [(isn + 1 + len(framed), framed[:8], 0x18), (0, b"", dnscap.TCP_RST)])  # cut mid-message
    assert tr.tcp.lost == 2 and not tr.tcp.streams
    tr.tcp.max_streams = 4
    for port in range(10):  # more streams than the bound, each holding half a message
        tr.on_packet(tcp6("fd00::53", "fd00::1", 53, 6000 + port, framed[:8], seq=1), 5)
    assert len(tr.tcp.streams) == 4 and tr.tcp.lost == 2 + 6


@given(st.binary(max_size=200))
def test_dns_never_raises(raw: bytes) -> None:
    dnscap.DnsTracker().on_packet(raw, 1)


def test_quick_dns_parser_agrees_with_dnslib_or_defers() -> None:
    """The fast path reads the common messages itself and must say exactly what dnslib says; what
    it does not know (TXT answers, escaped names) it leaves to dnslib."""
    quick = 0
    for m in dns_samples():
        a, b = dnscap.quick_parse(m), dnscap.dnslib_parse(m)
        assert b is not None
        if a is not None:
            quick += 1
            assert a == b
        assert dnscap.parse_message(m) == b
    assert quick == 5


@given(st.binary(max_size=120))
def test_quick_dns_parser_agrees_on_garbage(raw: bytes) -> None:
    try:
        a = dnscap.quick_parse(raw)
    except (IndexError, struct.error, ValueError):
        return
    if a is not None:
        assert a == dnscap.dnslib_parse(raw)


def test_config_defaults_and_errors(tmp_path) -> None:
    cfg = config.parse("")
    assert cfg.agent.flush_s == 1.0 and cfg.sensors.dns_ports == [53]
    assert cfg.spool_dir == "/var/lib/vigil/spool"
    with pytest.raises(config.ConfigError, match="unknown field `strem`"):
        config.parse('[kinesis]\nstrem = "x"\n', "agent.toml")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.parse("[kinesis\n")
    with pytest.raises(config.ConfigError, match=r"Expected `float`.*limits.cpu_percent|limits"):
        config.parse('[limits]\ncpu_percent = "lots"\n')
    with pytest.raises(config.ConfigError, match="flush_s"):
        config.parse("[agent]\nflush_s = 5\n")
    assert cfg.agent.stretch_s == 2.0
    for bad in ("stretch_s = 0.5", "stretch_s = 6", "flush_s = 0.5\nstretch_s = 0.4"):
        with pytest.raises(config.ConfigError, match="stretch_s must be in"):
            config.parse(f"[agent]\n{bad}\n")
    assert config.parse("[agent]\nflush_s = 0.5\nstretch_s = 0.5\n").agent.stretch_s == 0.5  # off
    assert cfg.sensors.ebpf and cfg.sensors.ebpf_ring_kb == 2048
    with pytest.raises(config.ConfigError, match="ebpf_ring_kb must be a power of two"):
        config.parse("[sensors]\nebpf_ring_kb = 3000\n")
    with pytest.raises(config.ConfigError, match="no such file"):
        config.load(str(tmp_path / "missing.toml"), required=True)
    assert config.load(str(tmp_path / "missing.toml"), required=False) == config.Config()


def test_cli_reports_bad_config_clearly(tmp_path, capsys) -> None:
    from vigil_agent.main import main

    bad = tmp_path / "agent.toml"
    bad.write_text("[kinesis]\nstream = 3\n")
    assert main(["--config", str(bad), "--check-config"]) == 2
    err = capsys.readouterr().err
    assert "bad configuration" in err and "kinesis.stream" in err
    good = tmp_path / "ok.toml"
    good.write_text('[kinesis]\nstream = "s"\nregion = "us-east-1"\n')
    assert main(["--config", str(good), "--check-config"]) == 0
    nostream = tmp_path / "ns.toml"
    nostream.write_text("")
    assert main(["--config", str(nostream)]) == 2


def test_limiter_sheds_in_order_and_recovers() -> None:
    lim = Limiter(cpu_percent=2.0, rss_mb=64)
    assert not lim.sheds("file")
    levels = []
    for _ in range(len(ORDER) + 1):
        lim.update(cpu=5.0, rss_mb=30)
        levels.append(lim.degraded)
    assert levels[0] == ["file"] and levels[1] == ["file", "dns"] and levels[-1] == list(ORDER)
    assert not lim.sheds("core")
    for _ in range(3):
        lim.update(cpu=0.1, rss_mb=30)
    assert lim.degraded == list(ORDER[:-1])
    lim2 = Limiter(cpu_percent=50, rss_mb=64)
    lim2.update(cpu=1, rss_mb=100)  # memory alone also sheds
    assert lim2.degraded == ["file"]


def test_process_that_exited_before_its_exec_was_read_is_still_evicted(tmp_path) -> None:
    """The proc connector reports the exit of a short-lived process before kauditd delivers its
    exec: the entry made from the late exec must still go after the grace period (it leaked)."""
    t = ProcessTable(proc=str(tmp_path), grace_ns=10)
    t.on_exit(4242, now_ns=2_000)  # no entry yet
    t.on_exec(
        pid=4242,
        ppid=0,
        exe="/bin/true",
        name="true",
        argv=["/bin/true"],
        cwd="/",
        uid=0,
        euid=0,
        gid=0,
        egid=0,
        tty="(none)",
        time_ns=1_000,
    )
    assert 4242 in t.entries
    assert t.evict(2_010) == 1 and 4242 not in t.entries
    # an exit noted before the exec happened belongs to an older process with that pid
    t.on_exit(4343, now_ns=500)
    t.on_exec(
        pid=4343,
        ppid=0,
        exe="/bin/true",
        name="true",
        argv=[],
        cwd="/",
        uid=0,
        euid=0,
        gid=0,
        egid=0,
        tty="",
        time_ns=1_000,
    )
    assert t.evict(10**9) == 0 and 4343 in t.entries


def test_proc_helpers() -> None:
    assert parse_stat("123 (my (odd) name) S 1 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 4242 0") == (
        "my (odd) name",
        1,
        4242,
    )
    assert container_id("0::/system.slice/docker-" + "a" * 64 + ".scope") == "a" * 64
    assert container_id("0::/user.slice") == ""
    assert env_vars(b"A=1\0LD_PRELOAD=/tmp/x.so\0LD_LIBRARY_PATH=/opt\0") == ("/tmp/x.so", "/opt")
    assert env_vars(b"A=1\0") == ("", "")


def _collector(table: ProcessTable, **kw) -> Collector:
    base = dict(
        key="vigil",
        watched=["/etc/cron.d"],
        unix_sockets=["/var/run/docker.sock"],
        unix_all=False,
        exclude_comm=["noisy"],
        exclude_paths=["/etc/cron.d/skip"],
        dns_ports=[53],
        on_dns_connect=None,
        self_pid=1,
    )
    base.update(kw)
    return Collector(table, **base)


def _group(records: list[tuple[int, str]]):
    asm = Assembler()
    g = None
    for t, s in records:
        g = asm.feed(nl(t, s)) or g
    return g


SYSCALL = (
    "audit(1.000:{serial}): arch=c000003e syscall={nr} success=yes exit={exit} a0={a0} a1={a1} a2=0 a3=0 "
    "items=2 ppid=1 pid=3999999 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 "
    'comm="{comm}" exe="/usr/bin/x" key={key}'
)


def _sys(
    nr: int,
    serial: int = 7,
    comm: str = "x",
    a0: str = "3",
    a1: str = "0",
    exit: int = 0,
    key: str = '"vigil"',
):
    return (1300, SYSCALL.format(serial=serial, nr=nr, comm=comm, a0=a0, a1=a1, exit=exit, key=key))


def test_collector_maps_audit_groups_to_wire_events() -> None:
    table = ProcessTable()
    c = _collector(table)
    seq = iter(range(1, 100)).__next__
    # connect to docker.sock (unix) is an event; another unix socket is not
    g = _group(
        [
            _sys(42),
            (1306, "audit(1.000:7): saddr=0100" + b"/var/run/docker.sock".hex() + "00"),
            (1320, "audit(1.000:7): "),
        ]
    )
    [ev] = c.build(g, c.syscall_name(g), seq)
    assert isinstance(ev, wire.UnixConnect) and ev.path == "/var/run/docker.sock"
    g = _group(
        [
            _sys(42),
            (1306, "audit(1.000:7): saddr=0100" + b"/run/other.sock".hex() + "00"),
            (1320, "audit(1.000:7): "),
        ]
    )
    assert c.build(g, c.syscall_name(g), seq) == []
    # rename into a watched directory
    g = _group(
        [
            _sys(82),
            (1307, 'audit(1.000:7): cwd="/tmp"'),
            (1302, 'audit(1.000:7): item=0 name="/tmp/" nametype=PARENT'),
            (1302, 'audit(1.000:7): item=1 name="/etc/cron.d/" nametype=PARENT'),
            (1302, 'audit(1.000:7): item=2 name="evil" nametype=DELETE'),
            (1302, 'audit(1.000:7): item=3 name="/etc/cron.d/evil" nametype=CREATE'),
            (1320, "audit(1.000:7): "),
        ]
    )
    [ev] = c.build(g, c.syscall_name(g), seq)
    assert isinstance(ev, wire.FileRename) and (ev.path, ev.new_path) == ("/tmp/evil", "/etc/cron.d/evil")
    # excluded path prefix and excluded process name
    g = _group(
        [
            _sys(2, a1="241", key="(null)"),
            (1302, 'audit(1.000:7): item=0 name="/etc/cron.d/skip1" nametype=CREATE'),
            (1320, "audit(1.000:7): "),
        ]
    )
    assert c.build(g, c.syscall_name(g), seq) == []
    g = _group([_sys(105, comm="noisy", a0="0"), (1320, "audit(1.000:7): ")])
    assert c.build(g, c.syscall_name(g), seq) == []
    # setresuid to root, ptrace poke, module load
    g = _group([_sys(117, a0="3e8", a1="0"), (1320, "audit(1.000:7): ")])
    [ev] = c.build(g, c.syscall_name(g), seq)
    assert isinstance(ev, wire.Setuid) and (ev.syscall, ev.new_uid, ev.new_euid) == ("setresuid", 1000, 0)
    g = _group([_sys(101, a0="4", a1="1"), (1320, "audit(1.000:7): ")])
    [ev] = c.build(g, c.syscall_name(g), seq)
    assert isinstance(ev, wire.Ptrace) and ev.request == "PTRACE_POKETEXT" and ev.target is not None
    g = _group([_sys(175), (1330, 'audit(1.000:7): name="rootkit"'), (1320, "audit(1.000:7): ")])
    [ev] = c.build(g, c.syscall_name(g), seq)
    assert isinstance(ev, wire.ModuleLoad) and ev.name == "rootkit" and ev.syscall == "init_module"
    # a 32-bit execve is named too
    assert rules.SYSCALL_NAMES[auditnl.ARCH_I386][11] == "execve"


def test_seq_survives_a_lost_state_dir_by_starting_at_the_clock(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Findings count an occurrence only if its seq is newer than what was applied: a reinstalled
    agent (state dir gone) must still continue above every seq it sent before."""
    import time as _time

    from vigil_agent.agent import Agent

    before_us = _time.time_ns() // 1000
    state = tmp_path / "state"
    state.mkdir()
    agent = Agent.__new__(Agent)
    agent.cfg = type("C", (), {"agent": type("A", (), {"state_dir": str(state)})()})()
    fresh = agent._load_seq()
    assert fresh >= before_us
    (state / "seq").write_text(str(fresh + 10**12))  # a saved seq ahead of the clock wins
    assert agent._load_seq() == fresh + 10**12


def test_heartbeat_counters_carry_dns_losses() -> None:
    """A DNS message the agent read but could not report shows in every heartbeat."""
    from vigil_agent import agent as agent_mod

    a = agent_mod.Agent.__new__(agent_mod.Agent)
    a.stats = agent_mod.Stats()
    a.dns = dnscap.DnsTracker()
    a.bpf = None
    a.dns_reader = None
    assert a._counters().dns_lost == 0
    a.dns.on_packet(udp4("1.1.1.1", "2.2.2.2", 1, 53, b"\x00garbage"), 1)
    a.dns.tcp.lost += 2
    assert a._counters().dns_lost == 3
    assert b'"dns_lost":3' in msgspec.json.encode(a._counters())


def test_mount_fs_type_from_mountinfo(tmp_path) -> None:
    """The topmost mount at the target wins; escaped spaces in mount points are read back."""
    from vigil_agent.collector import mount_fs_type

    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "40 22 0:50 / /mnt/data rw shared:20 - xfs /dev/sdb rw\n"
        "41 40 0:51 / /mnt/data rw - tmpfs evil rw,size=64k\n"
        "42 22 0:52 / /mnt/with\\040space rw - overlay overlay rw,lowerdir=/a\n"
    )
    assert mount_fs_type(str(info), "/mnt/data") == "tmpfs"
    assert mount_fs_type(str(info), "/mnt/with space") == "overlay"
    assert mount_fs_type(str(info), "/") == "ext4"
    assert mount_fs_type(str(info), "/nope") == ""
    assert mount_fs_type(str(tmp_path / "gone"), "/") == ""


def test_an_argv_read_from_proc_is_bounded_like_one_from_audit() -> None:
    # GIVEN an argv far past what the ingest takes (a process can pad its command line to MBs)
    from vigil_agent.auditparse import MAX_ARGS, MAX_ARGV_CHARS, bounded_argv

    many = bounded_argv(["x"] * 1000)
    long = bounded_argv(["a" * 5000, "b" * 5000, "c"])
    # THEN at most MAX_ARGS arguments and MAX_ARGV_CHARS characters, the cut marked
    assert len(many) == MAX_ARGS
    assert sum(len(a) for a in long) == MAX_ARGV_CHARS + 1 and long[-1].endswith("…") and len(long) == 2


def _cn(what: int, payload: bytes) -> bytes:
    from vigil_agent import procconn

    ev = struct.pack("=IIQ", what, 0, 0) + payload
    cn = struct.pack("=IIIIHH", procconn.CN_IDX_PROC, procconn.CN_VAL_PROC, 0, 0, len(ev), 0) + ev
    return struct.pack("=IHHII", 16 + len(cn), procconn.NLMSG_DONE, 0, 0, 0) + cn


def test_proc_connector_exec_and_exit_messages_are_told_apart() -> None:
    from vigil_agent import procconn

    exec_msg = _cn(procconn.PROC_EVENT_EXEC, struct.pack("=ii", 4243, 4242))
    exit_msg = _cn(procconn.PROC_EVENT_EXIT, struct.pack("=iiIIii", 4242, 4242, 256, 17, 1, 1))
    assert procconn.parse_exec(exec_msg) == 4242 and procconn.parse_exit(exec_msg) is None
    assert procconn.parse_exit(exit_msg) == (4242, 256) and procconn.parse_exec(exit_msg) is None
    assert procconn.parse_exec(exec_msg[:-4]) is None  # cut short


def test_fds_read_at_an_exec_notification_go_to_that_execs_record_in_order() -> None:
    """GIVEN the exec watcher read a process's fds at two exec notifications, WHEN the audit records
    of those execs are built (the process may be gone by then), THEN each takes its own read, oldest
    first; a read older than the record (its exec's record never came) is skipped."""
    import os
    import subprocess
    import time

    table = ProcessTable()
    child = subprocess.Popen(["/bin/sleep", "5"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        t0 = time.time_ns()
        table.note_exec(child.pid)
        first = table._early[child.pid][-1][1]
        assert first["stdout"].type == "pipe" and first["stdin"].path == "/dev/null"
        table.note_exec(child.pid)
        assert table._early_fds(child.pid, t0 - 60 * 10**9) == {}  # far earlier: no read of its
        assert table._early_fds(child.pid, t0) == first
        assert table._early_fds(child.pid, t0) != {}  # the second read, for the second exec
        assert table._early_fds(child.pid, t0) == {} and child.pid not in table._early
        table.note_exec(child.pid)
        assert table._early_fds(child.pid, time.time_ns() + 10**9) == {}  # stale: skipped, dropped
        table.note_exec(os.getpid())  # the agent itself: never
        assert os.getpid() not in table._early
    finally:
        child.kill()
        child.wait()
