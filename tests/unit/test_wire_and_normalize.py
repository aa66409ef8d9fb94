"""Wire format decode/encode and the agent normalizer (total: never raises, on any input)."""

from __future__ import annotations

import gzip

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil import wire
from vigil.events import AgentHealth, DnsActivity, NetworkActivity, ProcessActivity
from vigil.normalize.agent import normalize_batch

T0 = 1_764_000_000 * 10**9  # an event's time must be within 2000..2100
HOST = wire.Host(
    instance_id="i-0abc123456789def0",
    account_id="123456789012",
    region="us-east-1",
    hostname="ip-10-0-0-1",
    boot_id="b",
    agent_version="0.1.0",
)
BASH = wire.Process(
    pid=10, uid="u10", name="bash", cmd_line="bash -i", args=["bash", "-i"], file=wire.File(path="/bin/bash", name="bash"),
    user=wire.User(uid=33, name="www-data"), euid=33, ppid=9, parent_uid="u9",
    stdin=wire.Stdio(type="socket", family="inet", protocol="tcp", remote=wire.Endpoint(ip="198.51.100.7", port=4444)),
    lineage=[wire.Process(pid=9, uid="u9", name="nginx", file=wire.File(path="/usr/sbin/nginx", name="nginx"))],
)  # fmt: skip


def _batch() -> list[wire.WireEvent]:
    return [
        wire.ProcessExec(time=T0 + 1, seq=1, host=HOST, process=BASH),
        wire.NetConnect(
            time=T0 + 2,
            seq=2,
            process=BASH,
            remote_ip="198.51.100.7",
            remote_port=4444,
            local_ip="10.0.0.1",
            local_port=5000,
        ),
        wire.DnsQuery(
            time=T0 + 3,
            seq=3,
            hostname="Pool.SupportXMR.com.",
            answers=[wire.DnsAnswer(type="A", rdata="198.51.100.50")],
        ),
        wire.Heartbeat(
            time=T0 + 4, seq=4, agent_version="0.1.0", counters=wire.Counters(captured=10, sent=9, dropped=1)
        ),
    ]


def test_gzip_batch_round_trips_and_host_header_is_carried_forward() -> None:
    data = wire.encode_batch(_batch())
    assert data[:2] == wire.GZIP_MAGIC
    decoded, errors = wire.decode_batch(data)
    assert errors == [] and decoded == _batch()
    events, rejected = normalize_batch(decoded)
    assert rejected == []
    assert {e.device.instance_uid for e in events} == {"i-0abc123456789def0"}
    exec_, conn, dns, hb = events
    assert isinstance(exec_, ProcessActivity) and exec_.process.cmd_line == "bash -i"
    assert (
        exec_.process.parent_process is not None
        and exec_.process.parent_process.file.path == "/usr/sbin/nginx"
    )
    assert (
        exec_.process.stdin is not None
        and exec_.process.stdin.remote is not None
        and exec_.process.stdin.remote.ip == "198.51.100.7"
    )
    assert (
        isinstance(conn, NetworkActivity) and conn.dst_endpoint.port == 4444 and conn.direction == "Outbound"
    )
    assert (
        isinstance(dns, DnsActivity) and dns.query.hostname == "pool.supportxmr.com" and dns.activity_id == 2
    )
    assert isinstance(hb, AgentHealth) and hb.dropped == 1


def test_bad_lines_are_reported_with_line_numbers_and_good_neighbours_survive() -> None:
    good = [wire.encode_event(e) for e in _batch()]
    payload = b"\n".join(
        [
            good[0],
            b"{not json",
            good[1],
            b'{"kind":"process_exec","time":"x","seq":1}',
            b'{"kind":"warp_drive","time":1,"seq":1}',
            good[2],
        ]
    )
    decoded, errors = wire.decode_batch(gzip.compress(payload))
    assert [e.line for e in errors] == [2, 4, 5]
    assert len(decoded) == 3
    assert "'warp_drive'" in errors[2].reason and "$.kind" in errors[2].reason


def test_a_non_gzip_garbage_record_is_one_error_not_an_exception() -> None:
    decoded, errors = wire.decode_batch(b"\x1f\x8b garbage")
    assert decoded == [] and len(errors) == 1 and "not a gzip batch" in errors[0].reason


def test_events_before_any_host_block_are_rejected_with_a_reason() -> None:
    events, rejected = normalize_batch([wire.ProcessExec(time=T0 + 1, seq=1, process=BASH)])
    assert events == [] and rejected[0].reason.startswith("no host block")


_json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=20)
)
_json = st.recursive(
    _json_scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=200), _json.map(lambda v: msgspec.json.encode(v))), max_size=8))
def test_decode_and_normalize_never_raise_on_arbitrary_input(lines: list[bytes]) -> None:
    payload = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    decoded, errors = wire.decode_batch(payload)
    events, rejected = normalize_batch(decoded)
    assert len(decoded) + len(errors) <= len(lines)
    assert len(events) + len(rejected) == len(decoded)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(wire.KINDS),
    fields=st.dictionaries(
        st.sampled_from(
            ["process", "hostname", "path", "request", "time", "seq", "host", "target", "counters", "answers"]
        ),
        _json,
        max_size=6,
    ),
)
def test_typed_but_wrong_events_never_raise(kind: str, fields: dict) -> None:  # type: ignore[type-arg]
    line = msgspec.json.encode({"kind": kind, "time": T0, "seq": 1, **fields})
    decoded, errors = wire.decode_batch(line)
    events, rejected = normalize_batch(decoded, default_host=HOST)
    assert len(decoded) + len(errors) == 1 and len(events) + len(rejected) == len(decoded)


def test_injection_events_keep_their_kind_mechanism_and_target() -> None:
    victim = wire.Process(
        pid=950, uid="u950", name="nginx", file=wire.File(path="/usr/sbin/nginx", name="nginx")
    )
    batch = [
        wire.Ptrace(time=T0 + 1, seq=1, host=HOST, process=BASH, request="PTRACE_POKETEXT", target=victim),
        wire.ProcessVmWrite(time=T0 + 2, seq=2, process=BASH, target=victim),
        wire.ProcMemWrite(time=T0 + 3, seq=3, process=BASH, path="/proc/950/mem", target=victim),
    ]
    events, rejected = normalize_batch(batch)
    assert rejected == []
    got = [
        (e.kind, e.activity_id, e.injection_type, e.ptrace_request, e.target_path, e.target_process.pid)
        for e in events
    ]  # type: ignore[union-attr]
    assert got == [
        ("ptrace", 4, "ptrace", "PTRACE_POKETEXT", "", 950),
        ("process_vm_write", 4, "process_vm_writev", "", "", 950),
        ("proc_mem_write", 4, "proc_mem", "", "/proc/950/mem", 950),
    ]
