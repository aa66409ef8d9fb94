"""Domain heuristics where GuardDuty uses models: DGA-likeness, DNS-tunnelling signs, reputation hints.

All pure and offline. What each catches and misses is in docs/detections.md; in short:

- ``registered_domain``: the label under the public suffix, using a small built-in subset of the
  Public Suffix List (``MULTI_LABEL_SUFFIXES``: common ccTLD second levels and a few hosting
  suffixes). A suffix we don't know degrades to "last two labels", which over-groups names under
  an unknown multi-label suffix (e.g. ``foo.gov.xx``) but never splits one owner in two.
- ``dga_score`` (0..1) of the registered label: length, character entropy, vowel ratio, longest
  consonant run, digit mix and the share of bigrams that are rare in English/hostnames. Catches
  random-letter and alphanumeric DGAs (Conficker/Necurs/Ramnit-like); misses dictionary DGAs
  (Suppobox/Matsnu: concatenated words), short labels (< 8 chars are never scored) and punycode
  (``xn--``) labels, which are encodings rather than spellings.
- ``tunnel_label``: a subdomain label long and high-entropy enough to carry encoded data
  (iodine, dnscat2, DNSExfiltrator). One such query is only a hint; volume per registered
  domain (counted by the detection in the State table) confirms it.
- ``INFRA_SUFFIXES``: cloud/CDN/AV-lookup zones whose machine-made names look random by design;
  they are never scored.

Results are memoized per name (bounded), so a busy resolver pays for each distinct name once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

# A subset of the Public Suffix List (ICANN section + a few private hosting suffixes), enough to
# find the owner of names seen from servers. Single-label TLDs need no entry.
MULTI_LABEL_SUFFIXES: Final = frozenset(
    {
        # ccTLD second levels
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "net.uk", "ltd.uk", "plc.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au", "co.nz", "org.nz", "net.nz",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "co.kr", "or.kr", "ne.kr",
        "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "com.hk", "com.tw", "com.sg", "com.my",
        "co.in", "net.in", "org.in", "firm.in", "gen.in", "ind.in", "co.id", "or.id", "ac.id",
        "com.br", "net.br", "org.br", "gov.br", "com.ar", "com.mx", "com.co", "com.pe", "com.ve",
        "co.za", "org.za", "com.ng", "co.ke", "com.eg", "com.tr", "org.tr", "net.tr", "com.ua",
        "com.ru", "org.ru", "net.ru", "com.pl", "net.pl", "org.pl", "co.il", "org.il", "ac.il",
        "com.vn", "com.ph", "com.pk", "com.bd", "co.th", "in.th", "com.sa", "ac.ir", "co.ir",
        "eu.com", "uk.com", "us.com", "gb.net",
        # private hosting suffixes (owner = the label below them)
        "github.io", "gitlab.io", "herokuapp.com", "appspot.com", "azurewebsites.net",
        "cloudfront.net", "netlify.app", "vercel.app", "pages.dev", "workers.dev", "web.app",
        "firebaseapp.com", "s3.amazonaws.com", "blogspot.com", "wordpress.com",
        "duckdns.org", "no-ip.org", "ddns.net", "ngrok.io", "ngrok-free.app", "trycloudflare.com",
    }
)  # fmt: skip

# Zones whose names are machine-made (hashes, ids, encoded lookups) by design: never scored.
INFRA_SUFFIXES: Final = frozenset(
    {
        "arpa", "local", "internal", "localdomain", "lan", "home", "intranet", "corp", "localhost", "test",
        "invalid", "example", "amazonaws.com", "amazonaws.com.cn", "aws", "aws.dev", "awsdns.com", "cloudfront.net",
        "amazon.com", "a2z.com", "awsstatic.com", "aws.amazon.com", "elb.amazonaws.com",
        "akamai.net", "akamaiedge.net", "akamaihd.net", "akamaized.net", "edgekey.net", "edgesuite.net",
        "akadns.net", "fastly.net", "fastlylb.net", "cloudflare.com", "cloudflare.net", "googleapis.com",
        "gstatic.com", "googleusercontent.com", "google.com", "1e100.net", "gvt1.com", "windows.net",
        "azure.com", "azureedge.net", "trafficmanager.net", "msedge.net", "microsoft.com", "office.com",
        "apple.com", "icloud.com", "github.com", "githubusercontent.com", "docker.io", "docker.com",
        "pythonhosted.org", "pypi.org", "debian.org", "ubuntu.com", "canonical.com", "fedoraproject.org",
        "centos.org", "rockylinux.org", "npmjs.org", "npmjs.com", "rubygems.org", "golang.org",
        "letsencrypt.org", "digicert.com", "sectigo.com", "ocsp.pki.goog",
        # reputation/AV lookups that encode hashes in names
        "spamhaus.org", "spamcop.net", "sorbs.net", "cymru.com", "sophosxl.net", "surbl.org",
        "uribl.com", "mcafee.com", "trendmicro.com", "barracudacentral.org", "dnswl.org",
    }
)  # fmt: skip

_VOWELS: Final = frozenset("aeiouy")
# Common English/hostname bigrams (letters only); a random label has few of them.
_COMMON_BIGRAMS: Final = frozenset(
    """th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi
    ri ro ic ne ea ra ce li ch ll be ma si om ur ca el ta la ns di fo ho pe ec pr no ct us ac ot il tr ly nc et ut
    ss so rs un lo wa ge ie wh ee wi em ad ol rt po we na ul ni ts mo ow pa im mi ai sh ir su id os iv ia am fi ci
    vi pl ig tu ev ld ry mp fe bl ab gh ty op wo sa ay ex ke fr oo av ag if ap gr od bo sp rd do uc bu ei ov by rm
    ep tt oc fa ef cu rn sc gi da yo cr cl du ga qu ue ff ba ey ls va um pp ua up lu go ht ru ug ds lt pi rc rr eg
    au ck ew mu br bi pt ak pu ui rg ib tl ny ki rk ys ob mm fu ph og ms ye ud mb ip ub oi rl gu dr hr cc tw ft wn
    nu af hu nn eo vo rv nf xp gn sm fl iz ok nl my gl aw sy oa kn ks hy cy tc ym ok dy ky np ox ja jo ju ka kl kr
    sk sn sw tv ux vs wr xt yc zo ze za iq uz""".split()  # noqa: SIM905
)
_LABEL_CHARS: Final = re.compile(r"[^a-z0-9]")
_CACHE_MAX: Final = 65_536


def registered_domain(hostname: str) -> str:
    """'a.b.example.co.uk' -> 'example.co.uk'; 'x.y.example.org' -> 'example.org'."""
    h = hostname.rstrip(".").lower()
    labels = h.split(".")
    if len(labels) <= 2:
        return h
    for n in (3, 2):  # longest known multi-label suffix first ('s3.amazonaws.com' before 'amazonaws.com')
        if len(labels) > n and ".".join(labels[-n:]) in MULTI_LABEL_SUFFIXES:
            return ".".join(labels[-(n + 1) :])
    return ".".join(labels[-2:])


def suffix_of(registered: str) -> str:
    return registered.split(".", 1)[1] if "." in registered else ""


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    if not s:
        return 0.0
    counts: dict[str, int] = {}
    for c in s:
        counts[c] = counts.get(c, 0) + 1
    n = len(s)
    return -sum((k / n) * math.log2(k / n) for k in counts.values())


def is_infra(hostname: str) -> bool:
    h = hostname
    while True:
        if h in INFRA_SUFFIXES:
            return True
        dot = h.find(".")
        if dot < 0:
            return False
        h = h[dot + 1 :]


def _longest_consonant_run(s: str) -> int:
    best = run = 0
    for c in s:
        if c.isalpha() and c not in _VOWELS:
            run += 1
            best = max(best, run)
        else:
            run = 0
    return best


def dga_score(label: str) -> float:
    """0 (word-like) .. 1 (random) for one label (usually the registered domain's first label)."""
    s = _LABEL_CHARS.sub("", label.lower())
    n = len(s)
    if n < 8:
        return 0.0
    letters = [c for c in s if c.isalpha()]
    digits = n - len(letters)
    ent = entropy(s)
    vowel_ratio = sum(1 for c in letters if c in _VOWELS) / max(1, len(letters))
    bigrams = [s[i : i + 2] for i in range(n - 1) if s[i].isalpha() and s[i + 1].isalpha()]
    rare = sum(1 for b in bigrams if b not in _COMMON_BIGRAMS) / max(1, len(bigrams)) if bigrams else 1.0
    run = _longest_consonant_run(s)
    mixed = 0.0
    if digits and letters:
        # digits scattered among letters (a8f3k2) rather than a suffix (web01)
        switches = sum(1 for i in range(n - 1) if s[i].isdigit() != s[i + 1].isdigit())
        mixed = min(1.0, switches / 6)
    x = (
        -7.0
        + 2.2 * rare * 3
        + 0.9 * max(0.0, ent - 2.8)
        + 1.6 * max(0.0, 0.32 - vowel_ratio) * 5
        + 0.55 * max(0, run - 3)
        + 2.0 * mixed
        + 0.06 * min(n, 30)
    )
    return 1.0 / (1.0 + math.exp(-x))


def _encoded(label: str) -> bool:
    """Hex / base32 / base64-like rather than words: digits mixed in, or letters in random order."""
    if label.count("-") > 1 or entropy(label) < 3.3:
        return False
    digits = sum(1 for c in label if c.isdigit())
    return digits / len(label) >= 0.15 or dga_score(label) >= 0.9


def tunnel_label(hostname: str) -> str:
    """The first subdomain label that looks like encoded data, or ''. Cheap checks first."""
    if len(hostname) < 40:
        return ""
    reg = registered_domain(hostname)
    sub = hostname[: -len(reg) - 1] if len(hostname) > len(reg) else ""
    for label in sub.split("."):
        if len(label) >= 30 and _encoded(label):
            return label
    # many mid-sized random labels (dnscat2 splits data into 4-6 labels of ~16-30 chars)
    labels = [x for x in sub.split(".") if len(x) >= 16]
    if len(labels) >= 3 and entropy("".join(labels)) >= 4.2:
        return labels[0]
    return ""


@dataclass(frozen=True, slots=True)
class DomainProfile:
    hostname: str
    registered: str
    infra: bool
    dga: float  # dga_score of the registered label (0 for infra)
    tunnel: str  # tunnel_label(hostname) ('' for infra)


_profiles: dict[str, DomainProfile] = {}


def profile(hostname: str) -> DomainProfile:
    """Everything the reputation detections ask about a name, computed once per name."""
    p = _profiles.get(hostname)
    if p is not None:
        return p
    reg = registered_domain(hostname)
    infra = is_infra(hostname) or "." not in hostname or hostname.startswith("_")
    if infra:
        p = DomainProfile(hostname, reg, True, 0.0, "")
    else:
        label = reg.split(".", 1)[0]
        # punycode (xn--) is an encoding of a non-ASCII name: its letters are not a spelling
        score = 0.0 if label.startswith("xn--") else dga_score(label)
        p = DomainProfile(hostname, reg, False, score, tunnel_label(hostname))
    if len(_profiles) >= _CACHE_MAX:
        _profiles.clear()
    _profiles[hostname] = p
    return p


# Mining-related tokens in a registered label: a low-reputation domain carrying them is
# BitcoinDomainRequest.Reputation (lists catch the well-known pools first).
CRYPTO_TOKENS: Final = ("xmr", "monero", "stratum", "cryptonight", "randomx", "minexmr", "hashvault", "coinhive",
                        "cryptoloot", "nicehash", "minerpool", "miningpool", "poolmine", "xmrpool", "ethpool", "btcpool")  # fmt: skip
CRYPTO_REPUTABLE: Final = frozenset({"getmonero.org", "monerodocs.org", "nicehash.com"})


def crypto_token(registered: str) -> str:
    if registered in CRYPTO_REPUTABLE:
        return ""
    label = registered.split(".", 1)[0]
    for t in CRYPTO_TOKENS:
        if t in label:
            return t
    return ""
