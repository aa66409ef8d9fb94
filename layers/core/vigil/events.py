"""Normalized events: what detections see (DESIGN §3.2).

Frozen msgspec structs whose names follow OCSF 1.x: Process Activity (1007), File System
Activity (1001), Module Activity (1005), Network Activity (4001), DNS Activity (4003), API
Activity (6003). Field names are OCSF's (``process.cmd_line``, ``process.file.path``,
``process.parent_process``, ``dst_endpoint.ip``, ``query.hostname``, ``device.instance_uid``).

Two documented deviations, both for detection speed and GuardDuty parity:
- every event carries ``process``: the process that *acted* (GuardDuty's runtimeDetails.process);
  for injection the victim is ``target_process`` (OCSF puts the actor in ``actor.process``).
- ``kind`` names the source event kind (``process_exec`` ...) so the engine can index rules by it.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from vigil.bounds import (
    ARGS_MAX,
    LINEAGE_MAX,
    Arg,
    CmdLine,
    Domain,
    Id,
    Ip,
    Name,
    OptionalTime,
    Path,
    Pid,
    Port,
    Token,
    Word,
)


class Device(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    instance_uid: str
    hostname: str = ""
    region: str = ""
    account_uid: str = ""
    boot_uid: str = ""
    agent_version: str = ""
    type: str = ""  # instance type
    image_uid: str = ""
    zone: str = ""
    vcpu_count: int = 0


# User, File, Endpoint, Stdio and Process are also the agent's wire shapes (decoded, not copied):
# their annotations carry the ingest's value bounds (vigil.bounds), checked only when decoding.


class User(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    uid: Id = -1
    name: Name = ""


class File(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    path: Path = ""
    name: Name = ""
    sha256: Token = ""  # OCSF: hashes[algorithm_id=3 SHA-256].value
    modified_time: OptionalTime = 0  # epoch ns


class Endpoint(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    ip: Ip = ""
    port: Port = 0
    path: Path = ""  # unix socket path
    hostname: Domain = ""


class Stdio(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """Target of fd 0/1/2: ``type`` is file|pipe|socket|tty|other."""

    type: Word
    path: Path = ""
    family: Word = ""  # inet|inet6|unix for sockets
    protocol: Word = ""  # tcp|udp
    local: Endpoint | None = None
    remote: Endpoint | None = None


class Process(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """OCSF Process. This is also the agent's wire shape for a process: decoded, never copied.

    ``lineage`` holds the ancestors, nearest first (their own ``lineage`` is empty);
    ``parent_process`` is ``lineage[0]``.
    """

    pid: Pid
    uid: Token = ""  # OCSF process.uid: stable process uuid (sha of boot id + pid + start time)
    name: Name = ""
    cmd_line: CmdLine = ""
    args: Annotated[list[Arg], msgspec.Meta(max_length=ARGS_MAX)] = []  # argv, argv[0] included
    file: File = File()  # the executable
    user: User = User()
    euid: Id = -1
    gid: Id = -1
    egid: Id = -1
    working_directory: Path = ""
    created_time: OptionalTime = 0  # epoch ns
    namespace_pid: Pid = 0
    container_uid: Token = ""
    ld_preload: Path = ""
    ld_library_path: Path = ""
    tty: Path = ""
    stdin: Stdio | None = None
    stdout: Stdio | None = None
    stderr: Stdio | None = None
    exe_deleted: bool = False  # exe is memfd: or "(deleted)"
    ppid: Pid = 0
    parent_uid: Token = ""
    # ancestors; an entry with its own lineage is rejected by vigil.normalize.agent
    lineage: Annotated[list[Process], msgspec.Meta(max_length=LINEAGE_MAX)] = []

    @property
    def parent_process(self) -> Process | None:
        return self.lineage[0] if self.lineage else None


class _Event(msgspec.Struct, frozen=True, gc=False, omit_defaults=True, kw_only=True):
    kind: str
    time: int  # epoch ns
    device: Device
    seq: int = 0
    activity_id: int = 0


class ProcessActivity(_Event, frozen=True, kw_only=True):
    """1007. Launch (exec, memfd_exec), Terminate, Inject (ptrace, process_vm_write, proc_mem_write),
    Set User ID (setuid), Other (userfaultfd)."""

    class_uid: int = 1007
    process: Process
    target_process: Process | None = None
    exit_code: int = 0
    injection_type: str = ""  # ptrace|process_vm_writev|proc_mem
    ptrace_request: str = ""
    target_path: str = ""  # /proc/<pid>/mem
    new_uid: int = -1
    new_euid: int = -1
    syscall: str = ""
    memfd_name: str = ""


class NetworkActivity(_Event, frozen=True, kw_only=True):
    """4001. Open (connect), Accept/Listen; unix-socket connects carry ``dst_endpoint.path``."""

    class_uid: int = 4001
    process: Process
    src_endpoint: Endpoint = Endpoint()
    dst_endpoint: Endpoint = Endpoint()
    protocol_name: str = "tcp"
    direction: str = "Outbound"  # OCSF connection_info.direction
    family: str = "inet"
    success: bool = True
    # OCSF count / end_time: the agent folded this many equal events into this one (wire repeats),
    # the last at end_time (0: it stands alone)
    count: int = 1
    end_time: int = 0


class DnsQuery(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    hostname: str
    type: str = "A"


class DnsAnswer(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    type: str
    rdata: str
    ttl: int = 0


class DnsActivity(_Event, frozen=True, kw_only=True):
    """4003. Query (1) or Response (2) when answers were seen."""

    class_uid: int = 4003
    query: DnsQuery
    process: Process | None = None
    answers: tuple[DnsAnswer, ...] = ()
    rcode: str = ""
    src_endpoint: Endpoint = Endpoint()
    dst_endpoint: Endpoint = Endpoint()
    protocol_name: str = "udp"
    count: int = 1  # as on NetworkActivity
    end_time: int = 0


class FileSystemActivity(_Event, frozen=True, kw_only=True):
    """1001. Update (write), Delete (unlink), Rename, Create (link/symlink), Open, Mount."""

    class_uid: int = 1001
    process: Process
    file: File
    file_result: File | None = None  # rename destination / link name
    symbolic: bool = False
    open_flags: str = ""
    mount_source: str = ""
    fs_type: str = ""
    mount_flags: str = ""
    success: bool = True


class Module(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    file: File
    name: str = ""
    load_type: str = "finit_module"


class ModuleActivity(_Event, frozen=True, kw_only=True):
    """1005. Load (1): a kernel module loaded by ``process``."""

    class_uid: int = 1005
    process: Process
    module: Module


class NetworkFlow(_Event, frozen=True, kw_only=True):
    """4001 (Traffic, activity 6) from one VPC Flow Log record: what the network saw at an
    interface, with no process. ``src_endpoint``/``dst_endpoint`` are the record's srcaddr/srcport
    and dstaddr/dstport; ``direction`` is the traffic's, relative to the interface: Inbound
    (ingress), Outbound (egress) or Unknown. ``kind`` is ``vpc_flow``."""

    class_uid: int = 4001
    src_endpoint: Endpoint
    dst_endpoint: Endpoint
    protocol_num: int = -1  # IANA protocol number, -1 when the record has none
    protocol_name: str = ""  # tcp|udp|icmp|... ('' for an unnamed number)
    direction: str = "Unknown"
    packets: int = 0
    bytes: int = 0
    start_time: int = 0  # epoch ns
    end_time: int = 0  # epoch ns
    action: str = ""  # ACCEPT|REJECT (OCSF disposition Allowed/Blocked)
    interface_uid: str = ""
    vpc_uid: str = ""
    subnet_uid: str = ""
    tcp_flags: int = -1  # OR of the flags seen (v3+), -1 when the format has no tcp-flags
    local_ip: str = ""  # the interface's own address in this record ('' when it cannot be told)


class ApiActivity(_Event, frozen=True, kw_only=True):
    """6003 (CloudTrail management event). ``kind`` is ``api_call``; the fields after
    ``user_agent`` were added for the CloudTrail normalizer (vigil.normalize.cloudtrail)."""

    class_uid: int = 6003
    api_operation: str
    api_service: str = ""
    actor_uid: str = ""
    src_ip: str = ""
    user_agent: str = ""
    actor_type: str = ""  # userIdentity.type: AssumedRole|IAMUser|Root|AWSService|...
    actor_account_uid: str = ""  # userIdentity.accountId
    session_issuer_arn: str = ""  # sessionContext.sessionIssuer.arn (the role)
    session_name: str = ""  # the part of principalId after ':' (an instance id for instance roles)
    access_key_uid: str = ""
    instance_credentials: bool = False  # the session is an EC2 instance role's (ec2RoleDelivery)
    error_code: str = ""
    event_uid: str = ""  # CloudTrail eventID
    vpc_endpoint_uid: str = ""
    recipient_account_uid: str = ""


class AgentHealth(_Event, frozen=True, kw_only=True):
    """The agent's heartbeat (no OCSF class is a good fit; closest is Device Inventory 5001)."""

    class_uid: int = 5001
    agent_version: str = ""
    sensors_active: tuple[str, ...] = ()
    sensors_unavailable: dict[str, str] = {}
    captured: int = 0
    sent: int = 0
    dropped: int = 0
    spooled: int = 0
    audit_lost: int = 0
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    vcpus: int = 0
    kernel: str = ""


Event = (
    ProcessActivity
    | NetworkActivity
    | DnsActivity
    | FileSystemActivity
    | ModuleActivity
    | ApiActivity
    | AgentHealth
    | NetworkFlow
)
EVENT_TYPES: Final = (
    ProcessActivity,
    NetworkActivity,
    DnsActivity,
    FileSystemActivity,
    ModuleActivity,
    ApiActivity,
    AgentHealth,
    NetworkFlow,
)


def acting_process(event: Event) -> Process | None:
    return getattr(event, "process", None)
