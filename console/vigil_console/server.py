"""The console's server: the standard library's threading HTTP server on loopback, moving bytes
between sockets and ``App.handle``. Requests are logged without their query string (it may carry
the token) and without headers (the cookie is the token)."""

from __future__ import annotations

import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from vigil_console.app import MAX_BODY, App

log = logging.getLogger("vigil.console")


def _handler() -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "vigil-console"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = self.headers.get("Content-Length", "0")
            try:
                n = int(length)
            except ValueError:
                n = -1
            if n < 0 or n > MAX_BODY:
                self.send_error(413 if n > MAX_BODY else 400)
                return
            body = self.rfile.read(n) if n else b""
            app: App = self.server.app  # type: ignore[attr-defined]
            resp = app.handle(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(resp.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the browser left (navigated away): nothing to answer

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            path = self.path.split("?", 1)[0]
            sys.stderr.write(
                f"{self.log_date_time_string()} {self.command} {path!r} {args[1] if len(args) > 1 else ''}\n"
            )

    return Handler


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True

    app: App | None = None  # set once the port is known (the token's cookie names it)

    def __init__(self, host: str, port: int) -> None:
        if ":" in host:
            import socket

            self.address_family = socket.AF_INET6
        super().__init__((host, port), _handler())

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def start_in_thread(server: ConsoleServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="vigil-console", daemon=True)
    t.start()
    return t
