"""Threat / trusted list parsers for the open formats GuardDuty accepts: TXT, STIX 2.x, OTX CSV.

Pure functions from list text to indicators. A malformed list raises ``ListFormatError`` naming
the list and the line (1-based) so the operator can fix the object in S3; nothing is half-loaded.

- TXT: one entry per line: IPv4/IPv6 address, CIDR, domain (``*.example.org`` wildcards) or a
  SHA-256 file hash. Blank lines and ``#`` comments are ignored (GuardDuty ignores neither, but
  accepting them costs nothing and helps hand-kept lists).
- STIX 2.x: a bundle (or a single object) parsed with the OASIS ``stix2`` library; every
  ``indicator`` with ``pattern_type`` stix contributes the ``ipv4-addr``/``ipv6-addr``/
  ``domain-name``/``url`` (its host)/``file:hashes.'SHA-256'`` values of its pattern's ``=``,
  ``IN`` and ``ISSUBSET`` comparisons. The category comes from ``indicator_types``/``labels``/
  ``name``/``description`` keywords, else the list's category.
- OTX CSV (AlienVault OTX pulse export): header ``Indicator type,Indicator,Description``;
  types IPv4, IPv6, CIDR, domain, hostname, URL, URI, FileHash-SHA256. Other OTX types (MD5,
  SHA1, email, CVE, mutex ...) are counted as skipped: they have nothing to match at runtime.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from vigil.intel import (
    ABUSED,
    BLACKHOLE,
    C2,
    CRYPTO,
    DGA,
    DRIVE_BY,
    DROP_POINT,
    MALWARE,
    PHISHING,
    TOR,
    Indicator,
    Intel,
    is_sha256,
    normalize_domain,
)

Format = Literal["TXT", "STIX", "OTX_CSV"]
FORMATS: Final[tuple[str, ...]] = ("TXT", "STIX", "OTX_CSV")
MAX_LIST_BYTES: Final = 35 * 1024 * 1024  # GuardDuty's limit per list file

_DOMAIN_RE: Final = re.compile(
    r"^(\*\.)?(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9-]{2,63}$"
)

# keyword (lowercase substring) -> category; first match wins, most specific first
_CATEGORY_HINTS: Final[tuple[tuple[str, str], ...]] = (
    ("sinkhole", BLACKHOLE),
    ("blackhole", BLACKHOLE),
    ("black hole", BLACKHOLE),
    ("phish", PHISHING),
    ("drive-by", DRIVE_BY),
    ("driveby", DRIVE_BY),
    ("exploit kit", DRIVE_BY),
    ("exploit-kit", DRIVE_BY),
    ("dga", DGA),
    ("drop point", DROP_POINT),
    ("droppoint", DROP_POINT),
    ("drop-point", DROP_POINT),
    ("exfil", DROP_POINT),
    ("tor exit", TOR),
    ("tor node", TOR),
    ("tor relay", TOR),
    ("anonymization", TOR),
    ("mining", CRYPTO),
    ("miner", CRYPTO),
    ("monero", CRYPTO),
    ("cryptocurrency", CRYPTO),
    ("coinminer", CRYPTO),
    ("command and control", C2),
    ("command-and-control", C2),
    ("c&c", C2),
    ("c2", C2),
    ("cnc", C2),
    ("botnet", C2),
    ("dynamic dns", ABUSED),
    ("ddns", ABUSED),
)
CATEGORY_ALIASES: Final[dict[str, str]] = {
    "crypto": CRYPTO, "cryptocurrency": CRYPTO, "bitcoin": CRYPTO, "mining": CRYPTO,
    "c&c": C2, "c2": C2, "cc": C2, "cnc": C2, "backdoor": C2,
    "tor": TOR, "blackhole": BLACKHOLE, "sinkhole": BLACKHOLE, "droppoint": DROP_POINT, "drop": DROP_POINT,
    "dga": DGA, "driveby": DRIVE_BY, "phishing": PHISHING, "malware": MALWARE, "abused": ABUSED,
}  # fmt: skip


class ListFormatError(ValueError):
    """A list that cannot be loaded, with where: ``list_name:line: reason``."""

    def __init__(self, list_name: str, line: int, reason: str, text: str = "") -> None:
        self.list_name = list_name
        self.line = line
        self.reason = reason
        self.text = text[:200]
        where = f"{list_name}:{line}" if line else list_name
        super().__init__(f"{where}: {reason}" + (f" ({self.text!r})" if self.text else ""))


@dataclass(slots=True)
class ParsedList:
    name: str
    format: str
    indicators: list[Indicator] = field(default_factory=list)
    skipped: int = 0  # entries of a type nothing at runtime can match (e.g. MD5 hashes)

    def values(self) -> list[str]:
        return [i.value for i in self.indicators]


def category_of(alias: str) -> str:
    """'c2' / 'C&C' / 'CryptoCurrency' -> the canonical category; raises on an unknown name."""
    key = alias.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key in CATEGORY_ALIASES:
        return CATEGORY_ALIASES[key]
    for canon in CATEGORY_ALIASES.values():
        if canon.lower() == alias.strip().lower():
            return canon
    raise ValueError(f"unknown threat category {alias!r}; one of {sorted(set(CATEGORY_ALIASES.values()))}")


def category_from_text(*texts: str) -> str:
    """A category from free text (STIX labels, OTX descriptions), or '' when nothing matches."""
    blob = " ".join(t for t in texts if t).lower()
    if not blob:
        return ""
    for word, cat in _CATEGORY_HINTS:
        if len(word) <= 3:  # short tokens ('c2', 'dga', 'cnc') must stand alone
            if re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", blob):
                return cat
        elif word in blob:
            return cat
    return ""


def classify(value: str) -> str:
    """'ip' | 'cidr' | 'domain' | 'sha256'; raises ValueError for anything else."""
    v = value.strip()
    if not v:
        raise ValueError("empty entry")
    low = v.lower()
    if is_sha256(low):
        return "sha256"
    if "/" in v:
        ipaddress.ip_network(v, strict=False)  # raises
        return "cidr"
    try:
        ipaddress.ip_address(v)
        return "ip"
    except ValueError:
        pass
    if any(c.isdigit() for c in low) and all(c.isdigit() or c == "." for c in low):
        raise ValueError(f"not a valid IP address: {v}")
    if not _DOMAIN_RE.match(low.rstrip(".")):
        raise ValueError(f"not an IP, CIDR, domain or SHA-256: {v}")
    return "domain"


def _normalize(value: str, kind: str) -> str:
    v = value.strip()
    if kind == "domain":
        return normalize_domain(v)
    if kind == "cidr":
        return str(ipaddress.ip_network(v, strict=False))
    if kind == "ip":
        return str(ipaddress.ip_address(v))
    return v.lower()


def _lines(text: str) -> Iterable[tuple[int, str]]:
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield n, line


def parse_txt(text: str, *, name: str, category: str = C2, custom: bool = True) -> ParsedList:
    out = ParsedList(name, "TXT")
    for n, line in _lines(text):
        entry = line.split("#", 1)[0].strip()
        try:
            kind = classify(entry)
        except ValueError as exc:
            raise ListFormatError(name, n, str(exc), line) from None
        cat = MALWARE if kind == "sha256" else category
        out.indicators.append(Indicator(_normalize(entry, kind), cat, name, "", custom))
    return out


def _line_of(text: str, needle: str) -> int:
    pos = text.find(needle)
    return text.count("\n", 0, pos) + 1 if pos >= 0 else 0


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] == "'":
        v = v[1:-1]
    return v.replace("\\'", "'").replace("\\\\", "\\")


def _pattern_values(pattern: str) -> list[tuple[str, str]]:
    """(kind, value) pairs from a STIX pattern's comparisons we can match at runtime."""
    from stix2patterns.v21.pattern import Pattern  # type: ignore[import-untyped]

    data = Pattern(pattern).inspect()
    out: list[tuple[str, str]] = []
    for obj_type, comparisons in data.comparisons.items():
        for path, op, rhs in comparisons:
            op_u = op.upper().strip() if isinstance(op, str) else ""
            if op_u.startswith("NOT"):
                continue  # a negated comparison names what is NOT the indicator
            values: list[str] = []
            if op_u == "IN" and isinstance(rhs, str):
                values = [_unquote(v) for v in rhs.strip("()").split(",")]
            elif op_u in ("=", "ISSUBSET") and isinstance(rhs, str):
                values = [_unquote(rhs)]
            else:
                continue
            prop = ".".join(str(p) for p in path)
            for v in values:
                if obj_type in ("ipv4-addr", "ipv6-addr") and prop == "value":
                    out.append(("cidr" if "/" in v else "ip", v))
                elif obj_type == "domain-name" and prop == "value":
                    out.append(("domain", v))
                elif obj_type == "url" and prop == "value":
                    host = urlsplit(v if "//" in v else f"http://{v}").hostname or ""
                    if host:
                        out.append(("ip" if _is_ip(host) else "domain", host))
                elif obj_type == "file" and prop.replace("'", "").lower() in (
                    "hashes.sha-256",
                    "hashes.sha256",
                ):
                    out.append(("sha256", v.lower()))
    return out


def _is_ip(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        return False


def parse_stix(text: str, *, name: str, category: str = C2, custom: bool = True) -> ParsedList:
    import stix2  # maintained OASIS library; imported here so the core loads without it
    from stix2.exceptions import STIXError

    out = ParsedList(name, "STIX")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        bad = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        raise ListFormatError(name, exc.lineno, f"not JSON: {exc.msg}", bad) from None
    objects: list[Any] = (
        raw.get("objects", []) if isinstance(raw, dict) and raw.get("type") == "bundle" else [raw]
    )
    if not isinstance(objects, list):
        raise ListFormatError(name, _line_of(text, '"objects"'), "bundle 'objects' is not a list")
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict) or obj.get("type") != "indicator":
            continue
        oid = str(obj.get("id", f"#{i}"))
        line = _line_of(text, oid) if oid else 0
        if obj.get("pattern_type", "stix") != "stix":
            out.skipped += 1
            continue
        try:
            ind = stix2.parse(obj, allow_custom=True, version=obj.get("spec_version", "2.1"))
            pairs = _pattern_values(str(ind["pattern"]))
        except (STIXError, ValueError, TypeError, KeyError) as exc:
            raise ListFormatError(name, line, f"indicator {oid}: {exc}") from None
        labels = [*(obj.get("indicator_types") or []), *(obj.get("labels") or [])]
        hinted = category_from_text(
            *[str(x) for x in labels], str(obj.get("name", "")), str(obj.get("description", ""))
        )
        threat_name = str(obj.get("name", ""))[:120]
        if not pairs:
            out.skipped += 1
        for _kind, value in pairs:
            try:
                kind2 = classify(value)
            except ValueError as exc:
                raise ListFormatError(name, line, f"indicator {oid}: {exc}") from None
            cat = MALWARE if kind2 == "sha256" else (hinted if hinted and hinted != MALWARE else category)
            out.indicators.append(Indicator(_normalize(value, kind2), cat, name, threat_name, custom))
    return out


_OTX_TYPES: Final[dict[str, str]] = {
    "ipv4": "ip", "ipv6": "ip", "cidr": "cidr", "domain": "domain", "hostname": "domain",
    "url": "url", "uri": "url", "filehash-sha256": "sha256",
}  # fmt: skip


def parse_otx_csv(text: str, *, name: str, category: str = C2, custom: bool = True) -> ParsedList:
    out = ParsedList(name, "OTX_CSV")
    reader = csv.reader(io.StringIO(text, newline=""))
    header_seen = False
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ListFormatError(name, reader.line_num, f"not CSV: {exc}") from None
        n = reader.line_num
        if not row or not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            if row[0].strip().lower() in ("indicator type", "type", "indicator_type"):
                continue
        if len(row) < 2:
            raise ListFormatError(name, n, "expected 'Indicator type,Indicator[,Description]'", ",".join(row))
        otype, value = row[0].strip().lower(), row[1].strip()
        desc = row[2].strip() if len(row) > 2 else ""
        kind = _OTX_TYPES.get(otype)
        if kind is None:
            if otype.startswith(
                ("filehash", "email", "cve", "mutex", "yara", "ja3", "bitcoinaddress", "filepath")
            ):
                out.skipped += 1
                continue
            raise ListFormatError(name, n, f"unknown OTX indicator type {row[0].strip()!r}", ",".join(row))
        if kind == "url":
            host = urlsplit(value if "//" in value else f"http://{value}").hostname or ""
            if not host:
                raise ListFormatError(name, n, "URL without a host", value)
            value = host
        try:
            got = classify(value)
        except ValueError as exc:
            raise ListFormatError(name, n, str(exc), ",".join(row)) from None
        if (
            kind in ("ip", "cidr", "sha256", "domain")
            and got != kind
            and not (kind == "domain" and got == "ip")
        ):
            what = "IP" if kind == "ip" else kind
            raise ListFormatError(
                name, n, f"{row[0].strip()} value is not a valid {what} (it is a {got})", value
            )
        cat = MALWARE if got == "sha256" else (category_from_text(desc) or category)
        out.indicators.append(Indicator(_normalize(value, got), cat, name, desc[:120], custom))
    return out


_PARSERS: Final = {"TXT": parse_txt, "STIX": parse_stix, "OTX_CSV": parse_otx_csv}


def format_from_key(key: str) -> str:
    """Guess the format from an object key: .txt/.lst -> TXT, .json/.stix -> STIX, .csv -> OTX_CSV."""
    k = key.lower()
    if k.endswith((".json", ".stix", ".stix2")):
        return "STIX"
    if k.endswith(".csv"):
        return "OTX_CSV"
    return "TXT"


def parse_list(
    data: bytes | str, fmt: str, *, name: str, category: str = C2, custom: bool = True
) -> ParsedList:
    fmt_u = fmt.upper().replace("-", "_")
    if fmt_u in ("STIX2", "STIX_2"):
        fmt_u = "STIX"
    if fmt_u == "ALIEN_VAULT":
        fmt_u = "OTX_CSV"
    parser = _PARSERS.get(fmt_u)
    if parser is None:
        raise ListFormatError(name, 0, f"unsupported format {fmt!r} (supported: {', '.join(FORMATS)})")
    if len(data) > MAX_LIST_BYTES:
        raise ListFormatError(name, 0, f"list is {len(data)} bytes; the limit is {MAX_LIST_BYTES} (35 MB)")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ListFormatError(name, line, "not UTF-8 text") from None
    else:
        text = data
    return parser(text, name=name, category=category, custom=custom)


def threat_intel(parsed: Iterable[ParsedList]) -> Intel:
    intel = Intel()
    for p in parsed:
        intel.extend(p.indicators)
    return intel


def add_trusted(intel: Intel, parsed: Iterable[ParsedList]) -> Intel:
    for p in parsed:
        for ind in p.indicators:
            if ind.category != MALWARE:  # hashes are never "trusted" (GuardDuty: IPs and domains)
                intel.trust(ind.value)
    return intel
