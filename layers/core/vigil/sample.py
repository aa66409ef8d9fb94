"""Builders for small normalized events: the vocabulary of detection examples and tests.

Pure and deterministic (fixed times and ids), so an example reads like the activity it describes:
``exec_("/bin/bash", "-i", stdin=sock("198.51.100.7", 4444), parent=proc("/usr/sbin/sshd"))``.
Addresses are documentation ranges (RFC 5737) or loopback; nothing here is ever contacted.
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from vigil import events as ev

INSTANCE: Final = "i-0123456789abcdef0"
DEVICE: Final = ev.Device(
    instance_uid=INSTANCE,
    hostname="ip-10-0-0-12.ec2.internal",
    region="us-east-1",
    account_uid="123456789012",
    agent_version="0.1.0",
)
T0: Final = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z in ns

_seq = 0


def _next_seq() -> int:
    global _seq
    _seq += 1
    return _seq


def _uuid(exe: str, pid: int) -> str:
    return hashlib.sha256(f"{exe}|{pid}".encode()).hexdigest()[:32]


def sock(ip: str, port: int, *, protocol: str = "tcp", family: str = "inet") -> ev.Stdio:
    return ev.Stdio(type="socket", family=family, protocol=protocol, remote=ev.Endpoint(ip=ip, port=port))


def tty(path: str = "/dev/pts/0") -> ev.Stdio:
    return ev.Stdio(type="tty", path=path)


def pipe(inode: int = 0) -> ev.Stdio:
    """A pipe; with ``inode``, the agent's ``pipe:[INODE]`` path (both ends of one pipe share it)."""
    return ev.Stdio(type="pipe", path=f"pipe:[{inode}]" if inode else "")


def proc(
    exe: str,
    *args: str,
    pid: int = 4242,
    uid: int = 1000,
    euid: int | None = None,
    cwd: str = "/home/ec2-user",
    parent: ev.Process | None = None,
    stdin: ev.Stdio | None = None,
    stdout: ev.Stdio | None = None,
    stderr: ev.Stdio | None = None,
    container: str = "",
    ld_preload: str = "",
    sha256: str = "",
    exe_deleted: bool = False,
    modified_time: int = 0,
    user: str = "",
    created_time: int = T0 - 1_000_000_000,
) -> ev.Process:
    """A process; ``args`` excludes argv[0], which is the exe's basename."""
    name = exe.rsplit("/", 1)[-1]
    argv = [name, *args]
    lineage: list[ev.Process] = []
    if parent is not None:
        lineage = [msgspec.structs.replace(parent, lineage=[]), *parent.lineage]
    return ev.Process(
        pid=pid,
        uid=_uuid(exe, pid),
        name=name,
        cmd_line=" ".join(argv),
        args=argv,
        file=ev.File(path=exe, name=name, sha256=sha256, modified_time=modified_time),
        user=ev.User(uid=uid, name=user or ("root" if uid == 0 else "ec2-user")),
        euid=uid if euid is None else euid,
        working_directory=cwd,
        created_time=created_time,
        container_uid=container,
        ld_preload=ld_preload,
        stdin=stdin if stdin is not None else tty(),
        stdout=stdout if stdout is not None else tty(),
        stderr=stderr if stderr is not None else tty(),
        exe_deleted=exe_deleted,
        ppid=parent.pid if parent is not None else 0,
        parent_uid=parent.uid if parent is not None else "",
        lineage=lineage,
    )


SSHD: Final = proc("/usr/sbin/sshd", "-D", pid=812, uid=0, cwd="/")
LOGIN_SHELL: Final = proc("/bin/bash", pid=2001, parent=proc("/usr/sbin/sshd", pid=2000, uid=0, parent=SSHD))


def exec_(process: ev.Process, *, t: int = 0, device: ev.Device = DEVICE) -> ev.ProcessActivity:
    return ev.ProcessActivity(
        kind="process_exec", time=T0 + t, seq=_next_seq(), device=device, activity_id=1, process=process
    )


def memfd_exec(process: ev.Process, memfd_name: str = "", *, t: int = 0) -> ev.ProcessActivity:
    return ev.ProcessActivity(
        kind="memfd_exec",
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=1,
        process=process,
        memfd_name=memfd_name,
    )


def connect(
    process: ev.Process, ip: str, port: int, *, protocol: str = "tcp", t: int = 0, kind: str = "net_connect"
) -> ev.NetworkActivity:
    return ev.NetworkActivity(
        kind=kind,
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=1,
        process=process,
        src_endpoint=ev.Endpoint(ip="10.0.0.12", port=50000),
        dst_endpoint=ev.Endpoint(ip=ip, port=port),
        protocol_name=protocol,
        direction="Inbound" if kind == "net_accept" else "Outbound",
        family="inet6" if ":" in ip else "inet",
    )


def unix_connect(process: ev.Process, path: str, *, t: int = 0) -> ev.NetworkActivity:
    return ev.NetworkActivity(
        kind="unix_connect",
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=1,
        process=process,
        dst_endpoint=ev.Endpoint(path=path),
        protocol_name="unix",
        family="unix",
    )


def dns(
    hostname: str,
    *answers: str,
    process: ev.Process | None = None,
    qtype: str = "A",
    t: int = 0,
    rcode: str = "",
) -> ev.DnsActivity:
    ans = tuple(ev.DnsAnswer(type="AAAA" if ":" in a else "A", rdata=a, ttl=60) for a in answers)
    return ev.DnsActivity(
        kind="dns_query",
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=2 if ans else 1,
        query=ev.DnsQuery(hostname=hostname, type=qtype),
        process=process,
        answers=ans,
        rcode=rcode or ("NOERROR" if ans else ""),
        dst_endpoint=ev.Endpoint(ip="10.0.0.2", port=53),
    )


def file_op(
    process: ev.Process, kind: str, path: str, *, new_path: str = "", symbolic: bool = False, t: int = 0
) -> ev.FileSystemActivity:
    activity = {
        "file_write": 3,
        "file_unlink": 4,
        "file_rename": 5,
        "file_link": 1,
        "file_open_sensitive": 14,
    }[kind]
    result = ev.File(path=new_path, name=new_path.rsplit("/", 1)[-1]) if new_path else None
    return ev.FileSystemActivity(
        kind=kind,
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=activity,
        process=process,
        file=ev.File(path=path, name=path.rsplit("/", 1)[-1]),
        file_result=result,
        symbolic=symbolic,
    )


def inject(
    process: ev.Process,
    kind: str,
    target: ev.Process | None,
    *,
    request: str = "",
    path: str = "",
    t: int = 0,
) -> ev.ProcessActivity:
    itype = {"ptrace": "ptrace", "process_vm_write": "process_vm_writev", "proc_mem_write": "proc_mem"}[kind]
    return ev.ProcessActivity(
        kind=kind,
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=4,
        process=process,
        target_process=target,
        injection_type=itype,
        ptrace_request=request,
        target_path=path,
    )


def module_load(
    process: ev.Process,
    name: str,
    path: str = "",
    *,
    sha256: str = "",
    t: int = 0,
    load_type: str = "finit_module",
    modified_time: int = 0,
) -> ev.ModuleActivity:
    """A kernel module load (``load_type`` init_module/finit_module) or, with ``load_type="mmap"``,
    a shared library mapped into ``process`` (see ``library_load``)."""
    return ev.ModuleActivity(
        kind="module_load",
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=1,
        process=process,
        module=ev.Module(
            file=ev.File(path=path, name=path.rsplit("/", 1)[-1], sha256=sha256, modified_time=modified_time),
            name=name,
            load_type=load_type,
        ),
    )


def library_load(process: ev.Process, path: str, *, modified_time: int = 0, t: int = 0) -> ev.ModuleActivity:
    """A shared library mapped into ``process`` (OCSF Module Activity with load_type mmap)."""
    return module_load(
        process, path.rsplit("/", 1)[-1], path, t=t, load_type="mmap", modified_time=modified_time
    )


def listen(
    process: ev.Process, ip: str, port: int, *, protocol: str = "tcp", t: int = 0
) -> ev.NetworkActivity:
    """``process`` listens on ``ip:port`` (src_endpoint is the local side)."""
    return ev.NetworkActivity(
        kind="net_listen",
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=7,
        process=process,
        src_endpoint=ev.Endpoint(ip=ip, port=port),
        protocol_name=protocol,
        direction="Inbound",
        family="inet6" if ":" in ip else "inet",
    )


def accept(
    process: ev.Process,
    remote_ip: str,
    remote_port: int = 51000,
    *,
    local_ip: str = "10.0.0.12",
    local_port: int = 443,
    t: int = 0,
) -> ev.NetworkActivity:
    """``process`` accepted a connection from ``remote_ip`` on ``local_port``."""
    return ev.NetworkActivity(
        kind="net_accept",
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=1,
        process=process,
        src_endpoint=ev.Endpoint(ip=local_ip, port=local_port),
        dst_endpoint=ev.Endpoint(ip=remote_ip, port=remote_port),
        direction="Inbound",
        family="inet6" if ":" in remote_ip else "inet",
    )


def mount(
    process: ev.Process, source: str, target: str, fs_type: str = "", flags: str = "", *, t: int = 0
) -> ev.FileSystemActivity:
    return ev.FileSystemActivity(
        kind="mount",
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=12,
        process=process,
        file=ev.File(path=target, name=target.rsplit("/", 1)[-1]),
        mount_source=source,
        fs_type=fs_type,
        mount_flags=flags,
    )


def syscall(
    process: ev.Process, kind: str, *, new_uid: int = -1, new_euid: int = -1, syscall: str = "", t: int = 0
) -> ev.ProcessActivity:
    """userfaultfd / setuid events."""
    activity = {"userfaultfd": 99, "setuid": 5}[kind]
    return ev.ProcessActivity(
        kind=kind,
        time=T0 + t,
        seq=_next_seq(),
        device=DEVICE,
        activity_id=activity,
        process=process,
        new_uid=new_uid,
        new_euid=new_euid,
        syscall=syscall or kind,
    )


# --- AWS-delivered sources (EC2 finding types) ---------------------------------------------------
LOCAL_IP: Final = "10.0.0.12"  # the example instance's private address
ENI: Final = "eni-0a1b2c3d4e5f60718"


def flow(
    src: str,
    sport: int,
    dst: str,
    dport: int,
    *,
    proto: int = 6,
    packets: int = 1,
    nbytes: int = 60,
    action: str = "ACCEPT",
    t: int = 0,
    tcp_flags: int = -1,
) -> ev.NetworkFlow:
    """One VPC Flow Log record at the example instance's interface: Outbound when ``src`` is
    ``LOCAL_IP``, else Inbound (the same inference the normalizer makes for a v2 record)."""
    out = src == LOCAL_IP
    return ev.NetworkFlow(
        kind="vpc_flow",
        time=T0 + t,
        device=ev.Device(instance_uid=INSTANCE, region="us-east-1", account_uid="123456789012"),
        activity_id=6,
        src_endpoint=ev.Endpoint(ip=src, port=sport),
        dst_endpoint=ev.Endpoint(ip=dst, port=dport),
        protocol_num=proto,
        protocol_name={6: "tcp", 17: "udp", 1: "icmp"}.get(proto, ""),
        direction="Outbound" if out else "Inbound",
        packets=packets,
        bytes=nbytes,
        start_time=T0 + t,
        end_time=T0 + t + 60_000_000_000,
        action=action,
        interface_uid=ENI,
        tcp_flags=tcp_flags,
        local_ip=src if out else dst,
    )


def resolver_query(
    hostname: str, *answers: str, qtype: str = "A", t: int = 0, rcode: str = "NOERROR"
) -> ev.DnsActivity:
    """One Route 53 Resolver query-log record from the example instance (no process)."""
    ans = tuple(ev.DnsAnswer(type="AAAA" if ":" in a else "A", rdata=a) for a in answers)
    return ev.DnsActivity(
        kind="resolver_query",
        time=T0 + t,
        device=ev.Device(instance_uid=INSTANCE, region="us-east-1", account_uid="123456789012"),
        activity_id=2,
        query=ev.DnsQuery(hostname=hostname, type=qtype),
        answers=ans,
        rcode=rcode,
        src_endpoint=ev.Endpoint(ip=LOCAL_IP, port=53000),
    )


def api_call(
    src_ip: str,
    operation: str = "ListBuckets",
    *,
    service: str = "s3.amazonaws.com",
    instance: str = INSTANCE,
    vpc_endpoint: str = "",
    t: int = 0,
) -> ev.ApiActivity:
    """One CloudTrail management event made with the example instance's role credentials (the
    session name is the instance id, as EC2 names instance-profile sessions)."""
    return ev.ApiActivity(
        kind="api_call",
        time=T0 + t,
        device=ev.Device(instance_uid=instance, region="us-east-1", account_uid="123456789012"),
        activity_id=99,
        api_operation=operation,
        api_service=service,
        actor_uid=f"arn:aws:sts::123456789012:assumed-role/web/{instance}",
        src_ip=src_ip,
        user_agent="aws-cli/2.15",
        actor_type="AssumedRole",
        actor_account_uid="123456789012",
        session_issuer_arn="arn:aws:iam::123456789012:role/web",
        session_name=instance,
        access_key_uid="ASIAEXAMPLE",
        instance_credentials=True,
        vpc_endpoint_uid=vpc_endpoint,
        recipient_account_uid="123456789012",
    )
