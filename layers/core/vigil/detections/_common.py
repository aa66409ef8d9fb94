"""Building blocks shared by several detections (not a detection: the registry skips ``_`` modules).

- ``ThreatListDns`` / ``ThreatListIp``: a threat-list match of one category on a DNS query or an
  outbound connection; each intel finding type is a subclass naming its category.
- ``SensitiveFileModified``: the five file operations GuardDuty watches on a set of paths.
- small helpers for context fields (timestamps, target process, file operation names).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, TypeVar

from vigil import severity as sev
from vigil.detection import Context, Detection
from vigil.events import DnsActivity, FileSystemActivity, NetworkActivity, Process
from vigil.intel import Hit
from vigil.vocab import base_name, by_package_manager, session

ISO_FMT: Final = "%Y-%m-%dT%H:%M:%S."


def iso(ns: int) -> str:
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return dt.strftime(ISO_FMT) + f"{dt.microsecond // 1000:03d}Z"


def process_brief(p: Process) -> dict[str, Any]:
    """GuardDuty ProcessDetails for a context field (targetProcess, modifyingProcess)."""
    d: dict[str, Any] = {"name": p.name, "executablePath": p.file.path, "pid": p.pid, "euid": p.euid}
    if p.uid:
        d["uuid"] = p.uid
    if p.user.uid >= 0:
        d["userId"] = p.user.uid
    if p.user.name:
        d["user"] = p.user.name
    if p.file.sha256:
        d["executableSha256"] = p.file.sha256
    if p.working_directory:
        d["pwd"] = p.working_directory
    if p.created_time:
        d["startTime"] = iso(p.created_time)
    if p.namespace_pid:
        d["namespacePid"] = p.namespace_pid
    return d


def evidence(hit: Hit | None) -> list[dict[str, Any]]:
    if hit is None:
        return []
    ind = hit.indicator
    item: dict[str, Any] = {"threatListName": ind.list_name, "threatNames": [ind.threat_name or ind.category]}
    if ind.category == "Malware":
        item["threatFileSha256"] = ind.value
    return [item]


def domain_listed(event: DnsActivity, ctx: Context) -> bool:
    """Shared gate of the ThreatListDns types: the name is on some threat list."""
    return ctx.intel.match_domain(event.query.hostname) is not None


def ip_listed(event: NetworkActivity, ctx: Context) -> bool:
    """Shared gate of the ThreatListIp types: the destination IP is on some threat list."""
    ip = event.dst_endpoint.ip
    return bool(ip) and ctx.intel.match_ip(ip) is not None


def hash_listed(event: Any, ctx: Context) -> bool:
    """Shared gate of MaliciousFileExecuted(.Custom): the executable's SHA-256 is on some list."""
    sha: str = event.process.file.sha256
    return bool(sha) and ctx.intel.match_hash(sha) is not None


def traceme_for_parent(event: Any) -> bool:
    """A PTRACE_TRACEME by a fork of its parent (the same executable, before its exec): how a
    program starts another under its own control (gdb, strace, and the GuardDuty tester's injector:
    the parent then reads and writes the child). Malware's anti-debugging TRACEME is called by the
    program on itself, under a parent that never traces (a shell, systemd)."""
    if event.ptrace_request not in ("PTRACE_TRACEME", "0"):
        return False
    tracer = event.target_process  # the agent names the parent, TRACEME's tracer
    p = event.process
    return (
        tracer is not None and bool(p.file.path) and tracer.file.path == p.file.path and tracer.pid == p.ppid
    )


class FirstSeenOnInstance(Detection):
    """A baseline rule: fires the first time a ``candidate`` event's ``baseline_key`` is seen on an
    instance (remembered in the State table for ``baseline_ttl_s``), and stays quiet after that."""

    stateful = True
    baseline_ttl_s: ClassVar[int]

    def candidate(self, event: Any) -> bool:
        raise NotImplementedError

    def baseline_key(self, event: Any) -> str:
        raise NotImplementedError

    def state_keys(self, event: Any) -> tuple[str, ...]:
        return (self.baseline_key(event),) if self.candidate(event) else ()

    def match(self, event: Any, ctx: Context) -> bool:
        if not self.candidate(event):
            return False
        key = self.baseline_key(event)
        if ctx.state.seen(key):
            return False
        ctx.state.remember(key, self.baseline_ttl_s)
        return True


class ThreatListDns(Detection):
    """A DNS query for a domain on a threat list of ``category``."""

    category: ClassVar[str]
    kinds = frozenset({"dns_query"})
    gate = domain_listed

    def match(self, event: DnsActivity, ctx: Context) -> bool:
        hit = ctx.intel.match_domain(event.query.hostname)
        return hit is not None and hit.indicator.category == self.category

    def dedup_key(self, event: DnsActivity) -> str:
        return event.query.hostname

    def threat_intel(self, event: DnsActivity, ctx: Context) -> list[dict[str, Any]]:
        return evidence(ctx.intel.match_domain(event.query.hostname))


class ThreatListIp(Detection):
    """An outbound connection to an IP on a threat list of ``category``."""

    category: ClassVar[str]
    kinds = frozenset({"net_connect"})
    gate = ip_listed

    def match(self, event: NetworkActivity, ctx: Context) -> bool:
        ip = event.dst_endpoint.ip
        if not ip:
            return False
        hit = ctx.intel.match_ip(ip)
        return hit is not None and hit.indicator.category == self.category

    def dedup_key(self, event: NetworkActivity) -> str:
        return event.dst_endpoint.ip

    def threat_intel(self, event: NetworkActivity, ctx: Context) -> list[dict[str, Any]]:
        return evidence(ctx.intel.match_ip(event.dst_endpoint.ip))


FILE_OPERATIONS: Final = {
    "file_write": "Write",
    "file_unlink": "Delete",
    "file_rename": "Rename",
    "file_link": "Link",
}
FILE_KINDS: Final = frozenset(FILE_OPERATIONS)


def file_operation(event: FileSystemActivity) -> str:
    if event.kind == "file_link" and event.symbolic:
        return "Symlink"
    return FILE_OPERATIONS.get(event.kind, "Write")


def touched_paths(event: FileSystemActivity) -> tuple[str, str]:
    """(path, other): the file operated on, and the rename destination / link target ('' if none)."""
    other = event.file_result.path if event.file_result is not None else ""
    return event.file.path, other


EDITORS: Final = frozenset(
    {
        "vim",
        "vim.basic",
        "vim.tiny",
        "vi",
        "nvim",
        "nano",
        "emacs",
        "ed",
        "mcedit",
        "joe",
        "micro",
        "pico",
        "sudoedit",
    }
)


class SensitiveFileModified(Detection):
    """Write, rename, link, symlink or unlink of a path ``is_sensitive`` accepts.

    Work by package managers and configuration management (their maintainer scripts) is
    GuardDuty's "legitimate admin activity" and is excluded; subclasses add their own designated
    tools (``trusted_programs``: visudo for sudoers, crontab for cron spools ...).
    """

    kinds = FILE_KINDS
    trusted_programs: ClassVar[frozenset[str]] = frozenset()

    def is_sensitive(self, path: str, event: FileSystemActivity) -> bool:
        raise NotImplementedError

    def _hit(self, event: FileSystemActivity) -> str:
        path, other = touched_paths(event)
        if self.is_sensitive(path, event):
            return path
        if other and self.is_sensitive(other, event):
            return other
        return ""

    def match(self, event: FileSystemActivity, ctx: Context) -> bool:
        if not event.success or not self._hit(event):
            return False
        p = event.process
        return base_name(p) not in self.trusted_programs and not by_package_manager(p)

    def severity(self, event: FileSystemActivity) -> float:
        """Low for a text editor in an administrator's interactive session (editing by hand); else the default."""
        p = event.process
        if base_name(p) in EDITORS and session(p) == "interactive":
            return sev.LOW
        return self.meta.severity

    def dedup_key(self, event: FileSystemActivity) -> str:
        return f"{self._hit(event)}|{base_name(event.process)}"

    def context(self, event: FileSystemActivity, ctx: Context) -> dict[str, Any]:
        hit = self._hit(event)
        path, other = touched_paths(event)
        related = [x for x in (path, other) if x and x != hit][:25]
        out: dict[str, Any] = {"fileOperation": file_operation(event), "filePath": hit}
        if related:
            out["relatedFilePaths"] = related
        return out


def command_context(p: Process, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"commandLineExample": p.cmd_line[:1024]}
    out.update({k: v for k, v in extra.items() if v})
    return out


def example_intel(**lists: str) -> Any:
    """The built-in set plus customer-style TXT lists by category keyword (for examples).

    ``example_intel(c2="198.51.100.66\\nc2.example.net")``; pass ``custom_hashes=...`` for a
    customer hash list (MaliciousFileExecuted.Custom) and ``trusted=...`` for a trusted list.
    """
    from vigil.intel.builtin import builtin_intel
    from vigil.intel.formats import category_of, parse_txt

    intel = builtin_intel()
    for key, text in lists.items():
        if key == "trusted":
            for ind in parse_txt(text, name="ExampleTrusted").indicators:
                intel.trust(ind.value)
            continue
        cat = "Malware" if key == "custom_hashes" else category_of(key)
        intel.extend(parse_txt(text, name=f"Example{cat.replace('&', '')}List", category=cat).indicators)
    return intel


_MEMO_MAX: Final = 65_536  # distinct commands remembered (one memo shared by every memoized rule)
_MEMO_CHARS: Final = 16 << 20  # and the characters of their keys: hostile commands are long
T = TypeVar("T")


CommandKey = tuple[str, str, tuple[str, ...], str, str]
_Verdicts = dict[Callable[[Any], Any], Any]  # a command's verdicts, by rule function
_memo: dict[CommandKey, _Verdicts] = {}
_memo_chars: list[int] = [0]
# the last event's verdicts: the engine offers one event to every rule in turn
_slot: list[Any] = [None, None]


def _verdicts(event: Any) -> _Verdicts:
    """The verdicts of ``event``'s command, found once per event for all the memoized rules."""
    if event is _slot[0]:
        found: _Verdicts = _slot[1]
        return found
    p = event.process
    key = (p.file.path, p.file.name or p.name, tuple(p.args), p.cmd_line, p.ld_preload)
    found = _memo.get(key)  # type: ignore[assignment]
    if found is None:
        chars = len(key[0]) + len(key[1]) + sum(map(len, key[2])) + len(key[3]) + len(key[4])
        if len(_memo) >= _MEMO_MAX or _memo_chars[0] + chars > _MEMO_CHARS:
            _memo.clear()
            _memo_chars[0] = 0
        found = _memo[key] = {}
        _memo_chars[0] += chars
    _slot[0], _slot[1] = event, found
    return found


def memo_by_command(fn: Callable[[Any], T]) -> Callable[[Any], T]:
    """Memoize a verdict that depends only on the process's program, argv, command line and LD_PRELOAD.

    Servers run the same commands over and over (health checks, cron, workers), so the command-line
    detections parse each distinct command once. Keyed on the argv tuple, not only the joined
    command line, so differently split arguments can never share a verdict; and on the program
    name the rules read (``base_name``: the exe's name, else comm, which the exe path alone does
    not determine when it is empty), so the verdict is a function of the key and the engine's
    program prefilter can skip calls without changing any later verdict.

    One memo serves every memoized rule: a command is keyed once, holds each rule's verdict, and
    its strings are kept alive once. It is bounded by commands and by their characters (cleared
    when either is full), so a stream of long, unique commands costs a bounded amount of memory.
    """

    def wrapper(event: Any) -> T:
        verdicts = _verdicts(event)
        try:
            verdict: T = verdicts[fn]
            return verdict
        except KeyError:
            pass
        verdict = verdicts[fn] = fn(event)
        return verdict

    wrapper.__doc__ = fn.__doc__
    return wrapper
