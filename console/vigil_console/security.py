"""The console's own security: who may talk to it, from where, and what the browser may do.

Finding text is attacker-controlled (whoever owns an instance owns its agent), and the console
acts on the AWS account with the operator's credentials, so:

- **Host allow-list** (DNS rebinding): a request whose ``Host`` is not the address the console
  was started on (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT``, or the explicit
  ``--host``) is refused before anything else, so a hostile page that re-points its own name at
  127.0.0.1 cannot read the console.
- **Token** (as Jupyter): a random token per start, required on every request: as the ``token``
  query parameter once (exchanged for an HttpOnly, SameSite=Strict cookie and a redirect that drops
  it from the address bar and history), then the cookie; API clients may send
  ``Authorization: Bearer TOKEN``. Compared with ``hmac.compare_digest``, never logged.
- **CSRF** on every state-changing request (any method but GET/HEAD): refused when
  ``Sec-Fetch-Site`` says another site, when ``Origin`` is not this console, and unless the
  ``X-Vigil-CSRF`` header carries the per-start CSRF token (derived from the token; the page reads
  it from ``/api/session``, which another origin cannot read). A custom header also means a plain
  HTML form can never send the request. Bodies must be ``application/json``.
- **Content-Security-Policy**: scripts, styles, images and connections from this origin only, no
  inline script or style, no framing, no plugins. Nothing loads from the network.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Final

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS: Final = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)
CSRF_HEADER: Final = "x-vigil-csrf"
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Guard:
    port: int
    bind_host: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def cookie_name(self) -> str:
        return f"vigil_console_{self.port}"

    @property
    def csrf_token(self) -> str:
        return hmac.new(self.token.encode(), b"vigil-console-csrf", hashlib.sha256).hexdigest()

    @property
    def allowed_hosts(self) -> frozenset[str]:
        names = {"127.0.0.1", "localhost", "[::1]"}
        bind = self.bind_host
        if bind not in ("0.0.0.0", "::", ""):
            names.add(f"[{bind}]" if ":" in bind else bind)
        return frozenset(f"{n}:{self.port}" for n in names)

    def host_ok(self, host: str | None) -> bool:
        return host is not None and host.lower() in self.allowed_hosts

    def _equal(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def cookie_ok(self, cookie_header: str | None) -> bool:
        if not cookie_header:
            return False
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie_header)
        except CookieError:
            return False
        morsel = jar.get(self.cookie_name)
        return morsel is not None and self._equal(morsel.value)

    def bearer_ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        return self._equal(authorization[len("Bearer ") :].strip())

    def query_token_ok(self, value: str | None) -> bool:
        return self._equal(value)

    def set_cookie(self) -> str:
        return f"{self.cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict"

    def csrf_problem(self, method: str, headers: Mapping[str, str]) -> str | None:
        """Why a request may not change anything (None: it may). ``headers`` keys lower-case."""
        if method in SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request refused (Sec-Fetch-Site: {site[:40]})"
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in {f"http://{h}" for h in self.allowed_hosts}:
            return "cross-origin request refused (Origin is not this console)"
        given = headers.get(CSRF_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), self.csrf_token.encode()):
            return "missing or wrong CSRF token (X-Vigil-CSRF)"
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            return "a change must be sent as application/json"
        return None
