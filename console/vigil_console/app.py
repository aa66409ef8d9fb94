"""The console's HTTP surface as one pure-ish function: ``App.handle(method, target, headers,
body) -> Response``. The server (``vigil_console.server``) only moves bytes; tests call ``handle``
in-process.

Pages are one static shell (``static/index.html``) whose script (``static/console.js``) draws
each page from the JSON API, inserting every value as text (``textContent``), never as HTML. The
API's errors have one shape: ``{"ok": false, "error": "...", "status": N}``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from vigil_console.backend import Backend, NotFound, UserError
from vigil_console.security import HEADERS, Guard

log = logging.getLogger("vigil.console")

PAGES: Final = ("/", "/findings", "/summary", "/timeline", "/coverage", "/usage", "/rules", "/response")
STATIC_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
MAX_BODY: Final = 256 * 1024
_STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_ID = re.compile(r"[A-Za-z0-9-]{1,300}")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


def _json(status: int, value: Any) -> Response:
    # "<" escaped: a JSON body is never mistaken for markup, whatever sniffs it
    text = json.dumps(value, separators=(",", ":"), default=str).replace("<", "\\u003c")
    return Response(status, text.encode())


def error(status: int, message: str) -> Response:
    return _json(status, {"ok": False, "error": message, "status": status})


def _static(name: str) -> bytes | None:
    if not _STATIC_NAME.fullmatch(name) or ".." in name:
        return None
    f = resources.files("vigil_console").joinpath("static", name)
    return f.read_bytes() if f.is_file() else None


class App:
    def __init__(self, backend: Backend, guard: Guard, *, stack_label: str = "") -> None:
        self.backend = backend
        self.guard = guard
        self.stack_label = stack_label
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("GET", re.compile(r"/api/session"), self.session),
            ("GET", re.compile(r"/api/findings"), self.findings),
            ("GET", re.compile(r"/api/findings/([A-Za-z0-9-]{1,300})"), self.finding),
            ("POST", re.compile(r"/api/findings/archive"), self.archive),
            ("POST", re.compile(r"/api/findings/unarchive"), self.unarchive),
            ("POST", re.compile(r"/api/findings/feedback"), self.feedback),
            ("POST", re.compile(r"/api/findings/samples"), self.samples),
            ("POST", re.compile(r"/api/findings/([A-Za-z0-9-]{1,300})/isolate"), self.isolate),
            ("GET", re.compile(r"/api/summary"), self.summary),
            ("GET", re.compile(r"/api/timeline/([A-Za-z0-9-]{1,64})"), self.timeline),
            ("GET", re.compile(r"/api/coverage"), self.coverage),
            ("GET", re.compile(r"/api/usage"), self.usage),
            ("GET", re.compile(r"/api/rules"), self.rules),
            ("POST", re.compile(r"/api/rules"), self.create_rule),
            ("PUT", re.compile(r"/api/rules/([A-Za-z0-9._-]{1,64})"), self.update_rule),
            ("DELETE", re.compile(r"/api/rules/([A-Za-z0-9._-]{1,64})"), self.delete_rule),
            ("GET", re.compile(r"/api/response"), self.response),
            ("POST", re.compile(r"/api/response/approve"), self.approve),
            ("POST", re.compile(r"/api/response/deny"), self.deny),
        ]

    # -- the gate ----------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> Response:
        h = {k.lower(): v for k, v in headers.items()}
        resp = self._handle(method.upper(), target, h, body)
        resp.headers.extend(HEADERS)
        return resp

    def _handle(self, method: str, target: str, h: dict[str, str], body: bytes) -> Response:
        if not self.guard.host_ok(h.get("host")):
            return error(403, "this console answers only on the address it was started on (Host refused)")
        url = urlsplit(target)
        query = parse_qs(url.query, keep_blank_values=True)
        path = url.path
        authed = self.guard.cookie_ok(h.get("cookie")) or self.guard.bearer_ok(h.get("authorization"))
        if not authed:
            given = query.get("token", [None])[-1]
            if method == "GET" and self.guard.query_token_ok(given):
                rest = urlencode([(k, v) for k, vs in query.items() if k != "token" for v in vs])
                location = (path if path in PAGES else "/") + (f"?{rest}" if rest else "")
                return Response(
                    303,
                    b"",
                    "text/plain",
                    [("Location", location), ("Set-Cookie", self.guard.set_cookie())],
                )
            return error(403, "token missing or wrong: open the URL `vigil console` printed")
        problem = self.guard.csrf_problem(method, h)
        if problem is not None:
            return error(403, problem)
        if method in ("GET", "HEAD") and path in PAGES:
            page = _static("index.html")
            assert page is not None
            return Response(200, page, STATIC_TYPES[".html"])
        if method in ("GET", "HEAD") and path.startswith("/static/"):
            name = path[len("/static/") :]
            data = _static(name)
            if data is None:
                return error(404, "no such file")
            ext = "." + name.rsplit(".", 1)[-1] if "." in name else ""
            return Response(200, data, STATIC_TYPES.get(ext, "application/octet-stream"))
        payload: Any = None
        if method not in ("GET", "HEAD", "DELETE"):
            if len(body) > MAX_BODY:
                return error(413, f"request body larger than {MAX_BODY} bytes")
            try:
                payload = json.loads(body or b"null")
            except ValueError as exc:
                return error(400, f"body is not JSON: {exc}")
        for want, pattern, fn in self.routes:
            m = pattern.fullmatch(path)
            if m is None:
                continue
            if want != method and not (want == "GET" and method == "HEAD"):
                continue
            try:
                return fn(*m.groups(), query=query, payload=payload)
            except UserError as exc:
                return error(400, str(exc))
            except NotFound as exc:
                return error(404, str(exc))
            except (ClientError, BotoCoreError) as exc:
                return error(502, f"AWS: {exc}")
            except SystemExit as exc:  # vigil_cli.stack: a stack output is missing
                return error(502, str(exc))
        if any(p.fullmatch(path) for _, p, _ in self.routes):
            return error(405, f"{method} not allowed here")
        return error(404, "no such page")

    # -- API ---------------------------------------------------------------------------------
    def session(self, *, query: Any, payload: Any) -> Response:
        t = self.backend.target
        return _json(
            200,
            {
                "ok": True,
                "csrf": self.guard.csrf_token,
                "stack": self.stack_label,
                "offline": t.offline,
                "region": t.region,
            },
        )

    def findings(self, *, query: dict[str, list[str]], payload: Any) -> Response:
        def one(name: str, default: str) -> str:
            return query.get(name, [default])[-1]

        try:
            page, size = int(one("page", "1")), int(one("size", "25"))
        except ValueError:
            raise UserError("page and size are integers") from None
        filters = [f for f in query.get("filter", []) if f.strip()]
        return _json(
            200,
            self.backend.list_findings(
                filters,
                sort=one("sort", "updatedAt"),
                descending=one("order", "desc") != "asc",
                page=page,
                size=size,
                archived=one("archived", "") in ("1", "true"),
            ),
        )

    def finding(self, fid: str, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.finding(fid))

    @staticmethod
    def _ids(payload: Any) -> list[str]:
        ids = payload.get("ids") if isinstance(payload, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and _ID.fullmatch(i) for i in ids):
            raise UserError('expected {"ids": ["<finding id>", ...]}')
        return ids

    def archive(self, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.archive(self._ids(payload)))

    def unarchive(self, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.archive(self._ids(payload), unarchive=True))

    def feedback(self, *, query: Any, payload: Any) -> Response:
        ids = self._ids(payload)
        value, comment = payload.get("value"), payload.get("comment", "")
        if value not in ("USEFUL", "NOT_USEFUL") or not isinstance(comment, str):
            raise UserError('expected {"ids": [...], "value": "USEFUL"|"NOT_USEFUL", "comment": "..."}')
        return _json(200, self.backend.feedback(ids, value, comment))

    def samples(self, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.generate_samples())

    def isolate(self, fid: str, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.isolate(fid))

    def summary(self, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.summary())

    def timeline(self, instance: str, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.timeline(instance))

    def coverage(self, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.coverage())

    def usage(self, *, query: dict[str, list[str]], payload: Any) -> Response:
        try:
            days = int(query.get("days", ["30"])[-1])
        except ValueError:
            raise UserError("days is an integer") from None
        return _json(200, self.backend.usage(days))

    def rules(self, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.rules())

    def create_rule(self, *, query: Any, payload: Any) -> Response:
        return _json(201, self.backend.create_rule(payload))

    def update_rule(self, name: str, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.update_rule(name, payload))

    def delete_rule(self, name: str, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.delete_rule(name))

    def response(self, *, query: Any, payload: Any) -> Response:
        return _json(200, self.backend.executions())

    def _answer(self, payload: Any, approve: bool) -> Response:
        arn = payload.get("execution") if isinstance(payload, dict) else None
        reason = payload.get("reason", "") if isinstance(payload, dict) else ""
        if not isinstance(arn, str) or not isinstance(reason, str) or len(reason) > 1024:
            raise UserError('expected {"execution": "<execution ARN>", "reason": "..."}')
        return _json(200, self.backend.answer(arn, approve, reason))

    def approve(self, *, query: Any, payload: Any) -> Response:
        return self._answer(payload, True)

    def deny(self, *, query: Any, payload: Any) -> Response:
        return self._answer(payload, False)
