"""Value ranges the ingest path accepts from an agent (issue 13, "total normalization").

An agent is attacker-controlled once its instance is: every field it sends is bounded here, as
msgspec ``Meta`` constraints on the wire structs (``vigil.wire``) and on the process block
(``vigil.events.Process``, which the wire decodes into directly). A value out of range makes its
*line* fail to decode, with a reason naming the field (``Expected `int` <= 9223372036854775807 -
at `$.seq```); the rest of the record is processed. What no constraint can express (a lineage
entry with its own lineage) is checked in ``vigil.normalize.agent``.

Every bound is above what the agent itself sends (its caps are cited) and below what the
findings store (DynamoDB: numbers of at most 38 digits, items under 400 KB, non-empty key
strings) and the publishers (GuardDuty's ``Finding`` shape; ISO timestamps) can take.
docs/wire-format.md ("Bounds") lists them.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

# --- numbers -------------------------------------------------------------------------------------
TIME_MIN_NS: Final = 946_684_800 * 10**9  # 2000-01-01T00:00:00Z: an event's kernel time, epoch ns
TIME_MAX_NS: Final = 4_102_444_800 * 10**9  # 2100-01-01T00:00:00Z (below 2**63: int64 on every store)
SEQ_MAX: Final = 2**63 - 1  # the agent's seq is a u64 seeded from the clock in µs (~2**51 today)
INT32_MAX: Final = 2**31 - 1
UINT32_MAX: Final = 2**32 - 1
INT64_MAX: Final = 2**63 - 1

Time = Annotated[int, msgspec.Meta(ge=TIME_MIN_NS, le=TIME_MAX_NS)]
# A file's mtime or a process start: 0 = unknown; files may legitimately predate 2000 (mtime 1 in
# reproducible builds), so only the upper end is held to the window.
OptionalTime = Annotated[int, msgspec.Meta(ge=0, le=TIME_MAX_NS)]
Seq = Annotated[int, msgspec.Meta(ge=1, le=SEQ_MAX)]
Version = Annotated[int, msgspec.Meta(ge=1, le=INT32_MAX)]
Ref = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]  # wire v2: a process's ref in its record's table
Pid = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]  # Linux PID_MAX_LIMIT is 2**22
Id = Annotated[int, msgspec.Meta(ge=-1, le=UINT32_MAX)]  # uid/gid: -1 = unknown, else a u32
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=INT32_MAX)]  # exit codes
UInt32 = Annotated[int, msgspec.Meta(ge=0, le=UINT32_MAX)]  # DNS TTLs
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]  # counters, byte sizes
Vcpus = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Percent = Annotated[float, msgspec.Meta(ge=0.0, le=1e7)]  # cpu_percent: 100 per vCPU at most
# wire v2 ``repeats``: further events one connect, accept or DNS query stands for in its record. An
# agent folds at most a batch's events (a few hundred thousand in its raw bound); a claim beyond
# this is not a repeat count but a lie that would inflate a finding's count
REPEATS_MAX: Final = 10_000_000
Repeats = Annotated[int, msgspec.Meta(ge=0, le=REPEATS_MAX)]
RepeatCount = Annotated[int, msgspec.Meta(ge=1, le=REPEATS_MAX)]

# --- strings (lengths in characters) -------------------------------------------------------------
PATH_CHARS: Final = 4096  # PATH_MAX; the agent's eBPF paths are at most 1 KiB
NAME_CHARS: Final = 256  # NAME_MAX (255): process, file, user, module, memfd and fs names
CMD_LINE_CHARS: Final = 32768  # the agent keeps 8,192 argv characters (audit), 4 KiB (eBPF)
ARGS_MAX: Final = 256  # argv entries; the agent keeps 128
TOKEN_CHARS: Final = 128  # process uuids, container and boot ids, sha256, versions
WORD_CHARS: Final = 64  # enum-like words: protocol, family, rcode, DNS type, syscall, request
FLAGS_CHARS: Final = 1024  # flag lists (O_RDONLY|..., MS_NOSUID|...)
DOMAIN_CHARS: Final = 1024  # a DNS name is at most 253 characters, more once escaped
IP_CHARS: Final = 64  # the longest IPv6 text (45) with a zone id
TEXT_CHARS: Final = 1024  # free text: a sensor's unavailability reason
LINEAGE_MAX: Final = 16  # ancestors per process; the agent keeps 5
ANSWERS_MAX: Final = 64  # DNS answers per response; the agent keeps 32
SENSORS_MAX: Final = 32  # sensors, degraded classes, shed classes in a heartbeat
FOLDS_MAX: Final = 65536  # wire v2: entries of a record's ``repeats`` lines (the agent writes <= 4,096)
# wire v2: a record's process table (``proc`` lines, referred to by ``ref``); an agent defines each
# process and ancestor once per record: a few thousand in the busiest second measured
PROC_TABLE_MAX: Final = 65536
# wire v2: a ref costs a few bytes and stands for a whole process block, so a small record could
# make every one of its events carry a huge command line (work for the detections that a v1 record
# of the same size could not ask for). A record's events may name at most this much process
# (``wire.process_weight`` per ref: its strings and PROC_WEIGHT_BASE per process and ancestor);
# a busy second of the bench mix names at most 0.68 MB (measured). The agent seals a batch at half.
EXPANDED_MAX: Final = 32 << 20
PROC_WEIGHT_BASE: Final = 64

Path = Annotated[str, msgspec.Meta(max_length=PATH_CHARS)]
Name = Annotated[str, msgspec.Meta(max_length=NAME_CHARS)]
CmdLine = Annotated[str, msgspec.Meta(max_length=CMD_LINE_CHARS)]
Arg = Annotated[str, msgspec.Meta(max_length=CMD_LINE_CHARS)]
Token = Annotated[str, msgspec.Meta(max_length=TOKEN_CHARS)]
Word = Annotated[str, msgspec.Meta(max_length=WORD_CHARS)]
Flags = Annotated[str, msgspec.Meta(max_length=FLAGS_CHARS)]
Domain = Annotated[str, msgspec.Meta(max_length=DOMAIN_CHARS)]
Ip = Annotated[str, msgspec.Meta(max_length=IP_CHARS)]
Text = Annotated[str, msgspec.Meta(max_length=TEXT_CHARS)]

# The host block: identifiers with AWS's own formats (they become the finding's resource, its
# title, its ARN and a DynamoDB index key, so an empty or odd one is rejected, never stored).
InstanceId = Annotated[str, msgspec.Meta(pattern=r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")]
AccountId = Annotated[str, msgspec.Meta(pattern=r"^(?:[0-9]{12})?$")]  # empty: the ingest's own
Region = Annotated[str, msgspec.Meta(max_length=32, pattern=r"^(?:[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})?$")]
Zone = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[a-z0-9-]*$")]  # us-east-1a, local zones
InstanceType = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[a-z0-9.-]*$")]
ImageId = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9-]*$")]
# hostname, boot id, agent version: printable ASCII without spaces (they reach the finding and the
# operator's terminal); a hostname is at most 255 characters (HOST_NAME_MAX is 64)
HostName = Annotated[str, msgspec.Meta(max_length=255, pattern=r"^[!-~]*$")]
HostToken = Annotated[str, msgspec.Meta(max_length=TOKEN_CHARS, pattern=r"^[!-~]*$")]

# --- records -------------------------------------------------------------------------------------
RAW_BATCH_BYTES: Final = 8 * 1024 * 1024  # agent.batch_max_raw_mb's default: what one record inflates to
# The shortest line that decodes within these bounds, {"kind":"heartbeat","time":946684800000000000,
# "seq":1}, is 54 bytes, 55 with its newline, so an 8 MiB batch holds at most 152,521 events (the
# agent's lines are ~1 KB, ~8,000 a batch): a record with more lines cannot come from an agent.
MIN_LINE_BYTES: Final = 55
MAX_LINES: Final = -(-RAW_BATCH_BYTES // MIN_LINE_BYTES)  # 152,521
MAX_GZIP_MEMBERS: Final = 64  # the agent writes one gzip member per record
LINE_ERRORS_LISTED: Final = 100  # per record, with a raw prefix each; beyond, one summary
RAW_PREFIX_BYTES: Final = 1024  # of a bad line kept for its dead letter
SUMMARY_SAMPLES: Final = 3  # unlisted bad lines whose prefix the summary keeps
SAMPLE_BYTES: Final = 256
