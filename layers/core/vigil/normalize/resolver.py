"""Route 53 Resolver query-log records (JSON, format version 1.x) -> ``DnsActivity`` (OCSF 4003).

One record is one JSON object as Resolver writes it (``query_name``, ``query_type``, ``rcode``,
``answers[{Rdata, Type, Class}]``, ``srcaddr``, ``srcport``, ``transport``, ``srcids.instance``,
``query_timestamp`` ...). Its kind is ``resolver_query``, not the agent's ``dns_query``: the EC2
finding types consume it, the runtime ones (which name a process) do not.

Total: never raises. A record that does not decode within the bounds is a ``Rejection`` naming
the field; a valid query from no instance (``srcids`` has a Resolver endpoint or nothing: an
on-premises client) is skipped with the reason ``no instance``.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from vigil import bounds as b
from vigil import events as ev
from vigil.normalize.common import Rejection
from vigil.normalize.timeparse import iso_to_ns

SOURCE: Final = "resolver"
KIND: Final = "resolver_query"
RECORD_MAX: Final = 64 * 1024  # bytes; a record with 64 answers is a few KiB


class _Answer(msgspec.Struct, frozen=True, gc=False):
    Rdata: b.Domain = ""
    Type: b.Word = ""
    Class: b.Word = ""


class _SrcIds(msgspec.Struct, frozen=True, gc=False):
    # AWS documentation examples use ids like i-0d15cd0d3example
    instance: Annotated[str, msgspec.Meta(pattern=r"^(?:i-[0-9a-z]{1,32})?$")] = ""
    resolver_endpoint: b.Token = ""


class _Record(msgspec.Struct, frozen=True, gc=False):
    query_timestamp: Annotated[str, msgspec.Meta(max_length=40)]
    query_name: b.Domain
    version: b.Word = ""
    account_id: b.AccountId = ""
    region: b.Region = ""
    vpc_id: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^(?:vpc-[0-9a-z]{1,32})?$")] = ""
    query_type: b.Word = "A"
    query_class: b.Word = "IN"
    rcode: b.Word = ""
    answers: Annotated[list[_Answer], msgspec.Meta(max_length=b.ANSWERS_MAX)] = []
    srcaddr: b.Ip = ""
    srcport: Annotated[str, msgspec.Meta(max_length=5, pattern=r"^[0-9]*$")] = ""
    transport: b.Word = "UDP"
    srcids: _SrcIds = _SrcIds()
    firewall_rule_action: b.Word = ""


_decoder: Final = msgspec.json.Decoder(_Record)


def normalize_resolver_record(data: bytes | str, *, number: int = 1) -> ev.DnsActivity | Rejection | str:
    """One Resolver query-log record -> its DnsActivity, a Rejection, or ``"no instance"``."""
    raw = data.encode(errors="replace") if isinstance(data, str) else data
    try:
        if len(raw) > RECORD_MAX:
            return Rejection(SOURCE, number, f"record of {len(raw)} bytes exceeds {RECORD_MAX}", raw[:1024])
        if not raw.strip():
            return "blank"
        r = _decoder.decode(raw)
        time = iso_to_ns(r.query_timestamp)
        port = int(r.srcport) if r.srcport else 0
        if port > 65535:
            raise ValueError(f"srcport {port} is out of range")
        if not r.srcids.instance:
            return "no instance"
        name = r.query_name.rstrip(".").lower()
        if not name:
            raise ValueError("query_name is empty")
        device = ev.Device(instance_uid=r.srcids.instance, account_uid=r.account_id, region=r.region)
        return ev.DnsActivity(
            kind=KIND,
            time=time,
            device=device,
            activity_id=2 if (r.rcode or r.answers) else 1,
            query=ev.DnsQuery(hostname=name, type=r.query_type),
            answers=tuple(ev.DnsAnswer(type=a.Type, rdata=a.Rdata.rstrip(".")) for a in r.answers),
            rcode=r.rcode,
            src_endpoint=ev.Endpoint(ip=r.srcaddr, port=port),
            protocol_name=r.transport.lower(),
        )
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError) as exc:
        return Rejection(SOURCE, number, str(exc)[:512], raw[: b.RAW_PREFIX_BYTES])
    except Exception as exc:  # totality
        return Rejection(SOURCE, number, f"unexpected: {exc!r}"[:512], raw[: b.RAW_PREFIX_BYTES])
