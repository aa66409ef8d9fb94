"""The agent on this machine's real kernel: real actions in, the events and their fields out.

GIVEN a running ``vigil-agent --stdout`` WHEN this test does something real (exec, connect, DNS,
file write, ptrace, memfd exec, a shell on a socket) THEN the matching event arrives with the
fields detections rely on.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import dnslib
import pytest
from agent_harness import RunningAgent, marker, start_agent

from vigil_agent import fastpath

pytestmark = pytest.mark.agent


def _proc(ev: dict) -> dict:
    return ev.get("process") or {}


def test_first_heartbeat_reports_sensors_and_host(agent: RunningAgent) -> None:
    hb = agent.wait_for(lambda e: e["kind"] == "heartbeat")
    if agent.mode == "ebpf":
        assert set(hb["sensors_active"]) >= {"ebpf", "audit", "dns"}
        assert ("ebpf_native" in hb["sensors_active"]) == agent.native
        assert ("dns_native" in hb["sensors_active"]) == agent.native
        assert "proc_connector" not in hb["sensors_active"]  # exits come from eBPF
        assert hb.get("sensors_unavailable", {}) == (
            {}
            if agent.native
            else {
                "ebpf_native": "disabled in config; eBPF records are handled in Python",
                "dns_native": "disabled in config; DNS packets are read in Python",
            }
        )
        assert hb["counters"].get("ebpf_lost", 0) == 0
    else:  # DNS is read natively when libvigilfast.so is built (a bare machine has no compiler)
        native_dns = Path(fastpath.LIBRARY).exists()
        assert native_dns or os.environ.get("VIGIL_REQUIRE_BPF") != "1", "libvigilfast.so not built"
        assert set(hb["sensors_active"]) >= {"audit", "proc_connector", "dns"}
        assert ("dns_native" in hb["sensors_active"]) == native_dns
        assert hb["sensors_unavailable"] == {"ebpf": "disabled in config"} | (
            {}
            if native_dns
            else {
                "dns_native": f"{fastpath.LIBRARY} is missing (build it with `make agent-native`); "
                "DNS packets are read in Python"
            }
        )
    assert hb["kernel"] == platform.release()
    assert hb["vcpus"] == os.cpu_count()
    assert hb["rss_bytes"] > 0
    assert hb["host"]["instance_id"].startswith("i-0a9e0000000")
    assert hb["host"]["account_id"] == "123456789012"
    assert hb["seq"] >= 1


def test_exec_with_marker_argument(agent: RunningAgent, tmp_path: Path) -> None:
    m = marker()
    subprocess.run(["/bin/echo", m], cwd=tmp_path, stdout=subprocess.DEVNULL, check=True)
    ev = agent.wait_for(lambda e: e["kind"] == "process_exec" and m in _proc(e).get("args", []), what="exec")
    p = ev["process"]
    assert p["args"] == ["/bin/echo", m]
    assert p["cmd_line"] == f"/bin/echo {m}"
    assert p["file"]["path"] == os.path.realpath("/bin/echo")
    assert p["file"]["sha256"] == hashlib.sha256(Path("/bin/echo").read_bytes()).hexdigest()
    assert p["working_directory"] == str(tmp_path)
    assert p["user"]["uid"] == 0 and p["euid"] == 0
    assert p["ppid"] == os.getpid()
    assert p["lineage"][0]["pid"] == os.getpid()
    assert p["parent_uid"] == p["lineage"][0]["uid"]
    assert len(p["uid"]) == 36
    assert 1 <= len(p["lineage"]) <= 5
    assert ev["time"] > 0 and ev["seq"] > 0


def test_exec_sees_ld_preload_and_lineage_depth(agent: RunningAgent) -> None:
    m = marker()
    env = dict(os.environ, LD_PRELOAD="/nonexistent/vigil-test.so")
    # sh stays alive while sleep runs: sleep's lineage is sh <- this test
    subprocess.run(["/bin/sh", "-c", f"sleep 1; : {m}"], env=env, stderr=subprocess.DEVNULL)
    sh = agent.wait_for(
        lambda e: e["kind"] == "process_exec" and any(m in a for a in _proc(e).get("args", [])),
        what="sh exec",
    )
    ev = agent.wait_for(
        lambda e: e["kind"] == "process_exec" and _proc(e).get("ppid") == sh["process"]["pid"],
        what="sleep exec",
    )
    p = ev["process"]
    assert p["name"] == "sleep" and p["args"] == ["sleep", "1"]
    assert p["ld_preload"] == "/nonexistent/vigil-test.so"
    assert p["lineage"][0]["name"] == "sh"
    assert p["lineage"][0]["uid"] == sh["process"]["uid"]
    assert p["lineage"][1]["pid"] == os.getpid()


def test_connect_and_accept_on_loopback(agent: RunningAgent) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    cli = socket.create_connection(("127.0.0.1", port))
    conn, peer = srv.accept()
    try:
        ev = agent.wait_for(
            lambda e: (
                e["kind"] == "net_connect"
                and e.get("remote_port") == port
                and e.get("local_port") == cli.getsockname()[1]  # this connection's, not a reused port's
                and _proc(e).get("pid") == os.getpid()
            ),
            what="net_connect",
        )
        assert ev["remote_ip"] == "127.0.0.1"
        # omit_defaults: protocol "tcp", family "inet" and success true are the wire defaults
        assert ev.get("protocol", "tcp") == "tcp" and ev.get("family", "inet") == "inet"
        assert ev["local_port"] == cli.getsockname()[1]
        assert ev.get("success", True) is True
        acc = agent.wait_for(
            lambda e: e["kind"] == "net_accept" and e.get("remote_port") == peer[1], what="net_accept"
        )
        assert acc["local_port"] == port
        assert acc["process"]["pid"] == os.getpid()
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_connect_ipv6_loopback(agent: RunningAgent) -> None:
    srv = socket.socket(socket.AF_INET6)
    srv.bind(("::1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    cli = socket.create_connection(("::1", port))
    try:
        # this connection's own event: the agent's events since it started are searched, and an
        # earlier test's connect may have had this port as its remote port (ports are reused)
        local = cli.getsockname()[1]
        ev = agent.wait_for(
            lambda e: (
                e["kind"] == "net_connect"
                and e.get("remote_port") == port
                and e.get("local_port") == local
                and _proc(e).get("pid") == os.getpid()
            ),
            what="v6 connect",
        )
        assert ev["family"] == "inet6" and ev["remote_ip"] == "::1"
    finally:
        cli.close()
        srv.close()


def test_unix_connect_to_watched_socket(agent: RunningAgent) -> None:
    path = str(agent.workdir / "docker.sock")
    srv = socket.socket(socket.AF_UNIX)
    if os.path.exists(path):
        os.unlink(path)
    srv.bind(path)
    srv.listen()
    cli = socket.socket(socket.AF_UNIX)
    cli.connect(path)
    try:
        ev = agent.wait_for(
            lambda e: e["kind"] == "unix_connect" and e.get("path") == path, what="unix_connect"
        )
        assert ev["process"]["pid"] == os.getpid()
    finally:
        cli.close()
        srv.close()
        os.unlink(path)


def _recv_exactly(c: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = c.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


class _Resolver:
    """A DNS responder on a loopback address, port 53, UDP and TCP (dnslib)."""

    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((ip, 53))
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((ip, 53))
        self.tcp.listen()
        self.stop = False
        threading.Thread(target=self._serve_udp, daemon=True).start()
        threading.Thread(target=self._serve_tcp, daemon=True).start()

    @staticmethod
    def answer(data: bytes) -> bytes:
        q = dnslib.DNSRecord.parse(data)
        r = q.reply()
        if str(q.q.qname).startswith("nx-"):
            r.header.rcode = dnslib.RCODE.NXDOMAIN
        else:
            r.add_answer(dnslib.RR(q.q.qname, dnslib.QTYPE.A, rdata=dnslib.A("10.20.30.40"), ttl=42))
        return r.pack()

    def _serve_udp(self) -> None:
        while not self.stop:
            try:
                data, addr = self.udp.recvfrom(4096)
            except OSError:
                return
            self.udp.sendto(self.answer(data), addr)

    def _serve_tcp(self) -> None:
        while not self.stop:
            try:
                c, _ = self.tcp.accept()
            except OSError:
                return
            with c:
                n = int.from_bytes(_recv_exactly(c, 2), "big")
                data = _recv_exactly(c, n)
                out = self.answer(data)
                framed = len(out).to_bytes(2, "big") + out
                if not str(dnslib.DNSRecord.parse(data).q.qname).startswith("split-"):
                    c.sendall(framed)
                    continue
                # the length alone, then the message in two pieces: three segments (TCP_NODELAY)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for piece in (framed[:2], framed[2:20], framed[20:]):
                    c.sendall(piece)
                    time.sleep(0.02)

    def close(self) -> None:
        self.stop = True
        self.udp.close()
        self.tcp.close()


@pytest.fixture()
def resolver() -> _Resolver:
    ip = f"127.0.{uuid.uuid4().int % 200 + 20}.{uuid.uuid4().int % 200 + 20}"
    r = _Resolver(ip)
    yield r
    r.close()


def test_dns_query_udp_with_answer_and_process(agent: RunningAgent, resolver: _Resolver) -> None:
    name = f"{marker()}.example.test"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((resolver.ip, 53))  # like glibc's resolver: connect, then send
    s.send(dnslib.DNSRecord.question(name, "A").pack())
    reply = dnslib.DNSRecord.parse(s.recv(4096))
    assert str(reply.rr[0].rdata) == "10.20.30.40"
    ev = agent.wait_for(lambda e: e["kind"] == "dns_query" and e.get("hostname") == name, what="dns_query")
    s.close()
    assert ev.get("type", "A") == "A"
    assert ev.get("protocol", "udp") == "udp"
    assert ev["resolver_ip"] == resolver.ip and ev.get("resolver_port", 53) == 53
    assert ev["rcode"] == "NOERROR"
    assert ev["answers"] == [{"type": "A", "rdata": "10.20.30.40", "ttl": 42}]
    assert ev["process"]["pid"] == os.getpid()


def test_dns_query_tcp_nxdomain(agent: RunningAgent, resolver: _Resolver) -> None:
    name = f"nx-{marker()}.example.test"
    q = dnslib.DNSRecord.question(name, "A").pack()
    with socket.create_connection((resolver.ip, 53)) as c:
        c.sendall(len(q).to_bytes(2, "big") + q)
        n = int.from_bytes(c.recv(2), "big")
        c.recv(n)
    ev = agent.wait_for(
        lambda e: e["kind"] == "dns_query" and e.get("hostname") == name, what="tcp dns_query"
    )
    assert ev["protocol"] == "tcp"
    assert ev["rcode"] == "NXDOMAIN"
    assert ev.get("answers", []) == []


def test_dns_over_tcp_split_across_segments(agent: RunningAgent, resolver: _Resolver) -> None:
    """The client writes the length prefix and the query separately; the resolver answers in
    three segments: the stream is reassembled and the answer reported."""
    name = f"split-{marker()}.example.test"
    q = dnslib.DNSRecord.question(name, "A").pack()
    with socket.create_connection((resolver.ip, 53)) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sendall(len(q).to_bytes(2, "big"))
        time.sleep(0.02)
        c.sendall(q)
        n = int.from_bytes(_recv_exactly(c, 2), "big")
        reply = dnslib.DNSRecord.parse(_recv_exactly(c, n))
    assert str(reply.rr[0].rdata) == "10.20.30.40"
    ev = agent.wait_for(
        lambda e: e["kind"] == "dns_query" and e.get("hostname") == name, what="split tcp dns_query"
    )
    assert ev["protocol"] == "tcp" and ev["rcode"] == "NOERROR"
    assert ev["answers"] == [{"type": "A", "rdata": "10.20.30.40", "ttl": 42}]
    assert ev["process"]["pid"] == os.getpid()


def test_watched_file_write_rename_link_unlink(agent: RunningAgent) -> None:
    d = agent.workdir / "watched"
    f = d / f"{marker()}.conf"
    f.write_text("x")
    ev = agent.wait_for(lambda e: e["kind"] == "file_write" and e.get("path") == str(f), what="file_write")
    assert ev["process"]["pid"] == os.getpid()
    g = d / f"{f.stem}-renamed"
    os.rename(f, g)
    ev = agent.wait_for(lambda e: e["kind"] == "file_rename" and e.get("path") == str(f), what="file_rename")
    assert ev["new_path"] == str(g)
    link = d / f"{f.stem}-link"
    os.symlink("/etc/passwd", link)
    ev = agent.wait_for(lambda e: e["kind"] == "file_link" and e.get("path") == str(link), what="file_link")
    assert ev["symbolic"] is True and ev["target"] == "/etc/passwd"
    os.unlink(g)
    os.unlink(link)
    ev = agent.wait_for(lambda e: e["kind"] == "file_unlink" and e.get("path") == str(g), what="file_unlink")
    assert ev.get("success", True) is True


def test_unwatched_file_write_is_not_reported(agent: RunningAgent, tmp_path: Path) -> None:
    m = marker()
    (tmp_path / m).write_text("x")
    # a later, watched write proves the agent processed everything before it
    w = agent.workdir / "watched" / f"{m}-sentinel"
    w.write_text("y")
    agent.wait_for(lambda e: e["kind"] == "file_write" and e.get("path") == str(w), what="sentinel")
    assert not agent.all(
        lambda e: e["kind"].startswith("file_") and m in e.get("path", "") and "sentinel" not in e["path"]
    )
    os.unlink(w)


def test_ptrace_attach_of_a_child(agent: RunningAgent) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    child = subprocess.Popen(["/bin/sleep", "30"])
    try:
        assert libc.ptrace(16, child.pid, None, None) == 0, os.strerror(ctypes.get_errno())  # PTRACE_ATTACH
        os.waitpid(child.pid, 0)
        libc.ptrace(17, child.pid, None, None)  # PTRACE_DETACH
        ev = agent.wait_for(
            lambda e: e["kind"] == "ptrace" and (e.get("target") or {}).get("pid") == child.pid, what="ptrace"
        )
        assert ev["request"] == "PTRACE_ATTACH"
        assert ev["process"]["pid"] == os.getpid()
        assert ev["target"]["file"]["path"].endswith("sleep")
    finally:
        child.kill()
        child.wait()


def test_exec_from_memfd(agent: RunningAgent) -> None:
    m = marker()
    code = (
        "import os\n"
        "fd = os.memfd_create('vigil-memfd-test', 0)\n"
        "os.write(fd, open('/bin/echo', 'rb').read())\n"
        f"os.execve(fd, ['echo', '{m}'], {{}})\n"
    )
    subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, check=True)
    ev = agent.wait_for(
        lambda e: e["kind"] == "memfd_exec" and m in _proc(e).get("args", []), what="memfd_exec"
    )
    assert ev["memfd_name"] == "vigil-memfd-test"
    assert ev["process"]["exe_deleted"] is True
    assert ev["process"]["file"]["path"].startswith("/memfd:vigil-memfd-test")
    ex = agent.wait_for(lambda e: e["kind"] == "process_exec" and m in _proc(e).get("args", []), what="exec")
    assert ex["process"]["exe_deleted"] is True


def test_shell_with_stdin_on_a_loopback_socket(agent: RunningAgent) -> None:
    """The mark of a reverse shell: a shell whose fd 0/1 is an inet socket."""
    m = marker()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    cli = socket.create_connection(("127.0.0.1", port))
    conn, _ = srv.accept()
    sh = subprocess.Popen(
        ["/bin/sh", "-c", f'read line; echo "$line" # {m}'], stdin=cli.fileno(), stdout=cli.fileno()
    )
    try:
        ev = agent.wait_for(
            lambda e: e["kind"] == "process_exec" and any(m in a for a in _proc(e).get("args", [])),
            what="shell exec",
        )
        p = ev["process"]
        assert p["name"] == "sh"
        assert p["stdin"]["type"] == "socket"
        assert p["stdin"]["family"] == "inet" and p["stdin"]["protocol"] == "tcp"
        assert p["stdin"]["remote"] == {"ip": "127.0.0.1", "port": port}
        assert p["stdout"]["type"] == "socket"
        assert p["stderr"]["type"] != "socket"
    finally:
        conn.sendall(b"bye\n")
        sh.wait(timeout=10)
        for s in (cli, conn, srv):
            s.close()


def test_setuid_to_root(agent: RunningAgent) -> None:
    m = marker()
    subprocess.run([sys.executable, "-c", f"import os; os.setuid(0)  # {m}"], check=True)
    ev = agent.wait_for(
        lambda e: e["kind"] == "setuid" and any(m in a for a in _proc(e).get("args", [])), what="setuid"
    )
    assert ev.get("syscall", "setuid") == "setuid" and ev["new_uid"] == 0


def test_mount_reports_its_filesystem_type(agent: RunningAgent, tmp_path: Path) -> None:
    """mount(8) has exited when the agent reads the audit record: the type comes from its
    parent's mountinfo (this test's process)."""
    if shutil.which("mount") is None:
        pytest.skip("mount (util-linux) is needed")
    target = tmp_path / f"mnt-{marker()}"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "vigiltest", str(target)], check=True)
    try:
        ev = agent.wait_for(lambda e: e["kind"] == "mount" and e.get("target") == str(target), what="mount")
    finally:
        subprocess.run(["umount", str(target)], check=False)
    assert ev["fs_type"] == "tmpfs"
    assert _proc(ev).get("file", {}).get("name") == "mount"


def test_unprivileged_agent_runs_degraded_and_says_why(tmp_path: Path) -> None:
    """No root: audit and AF_PACKET are unavailable; the agent still runs and reports it."""
    drop = [
        "setpriv",
        "--inh-caps=-all",
        "--bounding-set=-audit_control,-audit_read,-net_raw,-net_admin,-bpf,-perfmon,-sys_admin",
        "--",
    ]
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop capabilities")
    a = start_agent(tmp_path, f"vigiltest{uuid.uuid4().hex[:8]}", wrapper=drop)
    try:
        hb = a.wait_for(lambda e: e["kind"] == "heartbeat")
        for sensor in ("ebpf", "audit", "dns"):
            assert sensor in hb["sensors_unavailable"] and sensor not in hb["sensors_active"]
        assert any("unavailable" in line for line in a.stderr)
        # and it keeps reporting it, heartbeat after heartbeat
        a.wait_for(
            lambda e: (
                e["kind"] == "heartbeat" and e["seq"] > hb["seq"] and "audit" in e["sensors_unavailable"]
            )
        )
    finally:
        assert a.stop() == 0


def test_rules_removed_and_audit_restored_on_exit(tmp_path: Path) -> None:
    from vigil_agent import auditnl

    ctl = auditnl.AuditControl()
    try:
        before = ctl.status()
        key = f"vigiltest{uuid.uuid4().hex[:8]}"
        a = start_agent(tmp_path, key)
        during = [b for b in ctl.list_rules() if auditnl.rule_key(b) == key]
        assert len(during) > 20
        assert ctl.status().enabled >= 1
        assert a.stop() == 0
        assert [b for b in ctl.list_rules() if auditnl.rule_key(b) == key] == []
        after = ctl.status()
        assert after.enabled == before.enabled
        assert after.backlog_limit == before.backlog_limit
        final = a.all(lambda e: e["kind"] == "heartbeat")[-1]
        assert final["counters"]["captured"] >= 1
    finally:
        ctl.close()


def test_exec_reported_once_when_a_foreign_audit_rule_also_records_it(agent: RunningAgent) -> None:
    """auditd (or another agent) may audit execve too: the kernel then multicasts its records to
    us as well. With the eBPF sensor reporting exec, those records must not make a second event."""
    if agent.mode != "ebpf":
        pytest.skip("only the eBPF sensor's exec can be doubled by audit records")
    from vigil_agent import auditnl, rules

    key = f"vigitforeign{uuid.uuid4().hex[:6]}"
    [arch] = rules.native_arches()[:1]
    foreign = auditnl.Rule(
        ((auditnl.AUDIT_ARCH, "=", arch), (auditnl.AUDIT_FILTERKEY, "=", key)),
        (rules.SYSCALLS[arch]["execve"],),
        "foreign-exec",
    ).encode()
    ctl = auditnl.AuditControl()
    try:
        ctl.add_rule(foreign)
        m = marker()
        subprocess.run(["/bin/echo", m], stdout=subprocess.DEVNULL, check=True)
        agent.wait_for(lambda e: e["kind"] == "process_exec" and m in _proc(e).get("args", []), what="exec")
        m2 = marker()  # a later event, so everything about the first has been read
        subprocess.run(["/bin/echo", m2], stdout=subprocess.DEVNULL, check=True)
        agent.wait_for(lambda e: e["kind"] == "process_exec" and m2 in _proc(e).get("args", []), what="exec")
        assert len(agent.all(lambda e: e["kind"] == "process_exec" and m in _proc(e).get("args", []))) == 1
    finally:
        ctl.del_rule(foreign)
        ctl.close()


def test_without_its_ebpf_object_the_agent_says_why_and_uses_audit(tmp_path: Path) -> None:
    a = start_agent(
        tmp_path,
        f"vigiltest{uuid.uuid4().hex[:8]}",
        extra=f'[sensors]\nebpf_object = "{tmp_path / "missing.bpf.o"}"\n',
    )
    try:
        hb = a.wait_for(lambda e: e["kind"] == "heartbeat")
        why = hb["sensors_unavailable"]["ebpf"]
        assert "missing.bpf.o is missing" in why and "exec/connect/accept come from audit" in why
        assert {"audit", "proc_connector"} <= set(hb["sensors_active"])
        m = marker()
        subprocess.run(["/bin/echo", m], stdout=subprocess.DEVNULL, check=True)
        a.wait_for(
            lambda e: e["kind"] == "process_exec" and m in _proc(e).get("args", []), what="exec via audit"
        )
    finally:
        assert a.stop() == 0


def test_listen_on_loopback(agent: RunningAgent) -> None:
    """From the eBPF sensor, or from audit's listen rule and the socket itself."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        ev = agent.wait_for(
            lambda e: e["kind"] == "net_listen" and e.get("local_port") == port, what="listen"
        )
    assert (
        ev["local_ip"] == "127.0.0.1"
        and ev.get("protocol", "tcp") == "tcp"
        and ev.get("family", "inet") == "inet"
    )  # defaults are omitted
    assert "remote_ip" not in ev
    assert ev["process"]["pid"] == os.getpid()


def test_proc_mem_opened_for_writing(agent: RunningAgent) -> None:
    """Injection through procfs: open another process's /proc/<pid>/mem for writing."""
    if agent.mode != "ebpf":
        pytest.skip("proc_mem_write comes from the eBPF sensor (audit cannot watch procfs)")
    child = subprocess.Popen(["/bin/sleep", "30"])
    try:
        path = f"/proc/{child.pid}/mem"
        fd = os.open(path, os.O_RDWR)
        os.close(fd)
        with open(f"/proc/{child.pid}/status", "rb"):  # a read-only open is not reported
            pass
        ev = agent.wait_for(
            lambda e: e["kind"] == "proc_mem_write" and e.get("path") == path, what="proc_mem_write"
        )
    finally:
        child.kill()
        child.wait()
    assert ev["process"]["pid"] == os.getpid()
    assert ev["target"]["pid"] == child.pid and ev["target"]["name"] == "sleep"


def test_a_full_ebpf_ring_is_counted_and_reported(tmp_path: Path) -> None:
    """Never silently lossy: with a 4 KiB ring, a burst of connects overflows it between two
    reads; the kernel counts what it could not queue and every heartbeat reports it."""
    a = start_agent(tmp_path, f"vigiltest{uuid.uuid4().hex[:8]}", extra="[sensors]\nebpf_ring_kb = 4\n")
    try:
        hb = a.wait_for(lambda e: e["kind"] == "heartbeat")
        if "ebpf" not in hb["sensors_active"]:
            why = hb["sensors_unavailable"].get("ebpf", "?")
            if os.environ.get("VIGIL_REQUIRE_BPF") == "1":
                pytest.fail(f"eBPF sensor unavailable: {why}")
            pytest.skip(f"eBPF sensor unavailable: {why}")
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(512)
            port = srv.getsockname()[1]
            for _ in range(300):  # ~600 records (connect + accept) in well under the 250 ms read interval
                with socket.create_connection(("127.0.0.1", port)):
                    c, _ = srv.accept()
                    c.close()
        lost = a.wait_for(
            lambda e: e["kind"] == "heartbeat" and e["counters"].get("ebpf_lost", 0) > 0,
            what="a heartbeat reporting ebpf_lost",
        )
        seen = len(
            a.all(
                lambda e: (
                    e["kind"] in ("net_connect", "net_accept")
                    and port in (e.get("remote_port"), e.get("local_port"))
                )
            )
        )
        assert 0 < seen < 600  # what fitted was delivered; the rest is counted, not hidden
        assert lost["counters"]["ebpf_lost"] >= 600 - seen - 5  # (other host activity shares the ring)
    finally:
        assert a.stop() == 0


def _loaded_library() -> str:
    """A system shared library this process has mapped (libm, libz, ...; not libc or the loader).
    Only from the system's library directories: a copy of a wheel's library (pyarrow's, say)
    would not find its siblings (libarrow.so) from the temporary directory."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split()[-1]
        name = path.rsplit("/", 1)[-1]
        system = path.startswith(("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"))
        if system and ".so" in name and not name.startswith(("libc.", "ld-", "libpython")):
            return path
    pytest.skip("no shared library to copy in /proc/self/maps")
    return ""


def test_library_loaded_once_per_cgroup(agent: RunningAgent, tmp_path: Path) -> None:
    """dlopen of a freshly written library: a module_load (mmap) with its path, hash and mtime,
    reported on its first load in this cgroup only (two processes load it, one event)."""
    if agent.mode != "ebpf":
        pytest.skip("library loads come from the eBPF sensor (audit has no mmap rule)")
    lib = tmp_path / f"libvigil{uuid.uuid4().hex[:8]}.so"
    shutil.copyfile(_loaded_library(), lib)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(lib)!r})"], check=True)
    ev = agent.wait_for(
        lambda e: e["kind"] == "module_load" and e.get("path") == str(lib), what="library load"
    )
    assert ev["syscall"] == "mmap" and ev["name"] == lib.name
    assert ev["sha256"] == hashlib.sha256(lib.read_bytes()).hexdigest()
    assert ev["modified_time"] == lib.stat().st_mtime_ns
    m = marker()  # a later event: everything about the two loads has been read by now
    subprocess.run(["/bin/echo", m], stdout=subprocess.DEVNULL, check=True)
    agent.wait_for(lambda e: e["kind"] == "process_exec" and m in _proc(e).get("args", []), what="exec")
    assert len(agent.all(lambda e: e["kind"] == "module_load" and e.get("path") == str(lib))) == 1


def test_the_units_capabilities_are_enough_for_every_sensor(tmp_path: Path) -> None:
    """The systemd unit bounds the agent to a list of capabilities: with exactly those (parsed
    from the unit file), every sensor starts, eBPF included, and an exec is reported."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to bound capabilities")
    unit = Path(__file__).resolve().parents[2] / "agent/packaging/vigil-agent.service"
    [line] = [x for x in unit.read_text().splitlines() if x.startswith("CapabilityBoundingSet=")]
    caps = [c.removeprefix("CAP_").lower() for c in line.split("=", 1)[1].split()]
    bound = [
        "setpriv",
        "--inh-caps=-all",
        "--bounding-set=" + ",".join(["-all"] + [f"+{c}" for c in caps]),
        "--",
    ]
    # under systemd, tracefs is mounted at boot (sys-kernel-tracing.mount) before the unit starts;
    # a bounded agent cannot mount it itself (no CAP_SYS_ADMIN), so mount it here as systemd would
    mounted = not os.path.isdir("/sys/kernel/tracing/events")
    if mounted:
        subprocess.run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"], check=True)
    a = start_agent(tmp_path, f"vigiltest{uuid.uuid4().hex[:8]}", wrapper=bound)
    try:
        hb = a.wait_for(lambda e: e["kind"] == "heartbeat")
        if "ebpf" in hb.get("sensors_unavailable", {}) and os.environ.get("VIGIL_REQUIRE_BPF") != "1":
            pytest.skip(f"eBPF sensor unavailable: {hb['sensors_unavailable']['ebpf']}")
        assert {"ebpf", "audit", "dns"} <= set(hb["sensors_active"]), hb
        assert hb.get("sensors_unavailable", {}) == {}
        m = marker()
        subprocess.run(["/bin/echo", m], stdout=subprocess.DEVNULL, check=True)
        a.wait_for(lambda e: e["kind"] == "process_exec" and m in _proc(e).get("args", []), what="exec")
    finally:
        assert a.stop() == 0
        if mounted:
            subprocess.run(["umount", "/sys/kernel/tracing"], check=False)
