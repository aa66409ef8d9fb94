"""Headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol on a pipe.

``--remote-debugging-pipe`` makes Chromium read protocol messages from fd 3 and write to fd 4
(JSON, each ended by a NUL byte): no WebDriver, no Node, no websocket, no new package. What the
console's browser tests and ``make console-screenshots`` need, and no more:

    with Browser() as b:
        page = b.new_page()                      # its own browser context (no shared cookies)
        page.goto(url)
        page.wait_text("Findings")
        page.click(page.wait_role("button", "Apply filter"))
        page.screenshot(Path("x.png"))

Elements are found the way a person (or a screen reader) finds them: by their role and accessible
name in Chromium's accessibility tree (``Accessibility.queryAXTree``), and clicked with real mouse
events at their position; every lookup waits. ``alert``/``confirm``/``prompt`` dialogs are recorded
in ``Browser.dialogs`` and answered (``Browser.prompt_answer``). Chromium may only reach loopback:
every host name but ``localhost`` resolves to nothing.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
NAMES = ("chromium", "chromium-browser")
_TRAMPOLINE = "import os,sys; os.dup2(int(sys.argv[1]),3); os.dup2(int(sys.argv[2]),4); os.execv(sys.argv[3], sys.argv[3:])"


def chromium_path() -> str | None:
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(
        self, binary: str | None = None, *, width: int = 1400, height: int = 1000, timeout: float = 20
    ) -> None:
        binary = binary or chromium_path()
        if binary is None:
            raise BrowserError("chromium is not installed (apt-get install -y chromium)")
        self.width, self.height, self.timeout = width, height, timeout
        self.profile = tempfile.mkdtemp(prefix="vigil-chromium-")
        self.log_path = Path(self.profile) / "chromium.log"
        self.dialogs: list[dict[str, Any]] = []  # every alert/confirm/prompt any page opened
        self.console: list[tuple[str, str]] = []  # (session, text): console errors, exceptions, CSP reports
        self.prompt_answer = "ok"
        self._id = 0
        self._lock = threading.Lock()
        self._waiting: dict[int, threading.Event] = {}
        self._answers: dict[int, dict[str, Any]] = {}
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            binary,
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--metrics-recording-only",
            "--hide-scrollbars",
            # loopback only: no name resolves, but localhost and 127.0.0.1
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            *(["--no-sandbox"] if os.geteuid() == 0 else []),
            "about:blank",
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _TRAMPOLINE, str(to_browser_r), str(from_browser_w), *args],
                pass_fds=(to_browser_r, from_browser_w),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._reader = threading.Thread(target=self._read, name="chromium-cdp", daemon=True)
        self._reader.start()
        self.send("Target.setDiscoverTargets", {"discover": False})

    # -- protocol --------------------------------------------------------------------------------
    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                for ev in list(self._waiting.values()):
                    ev.set()  # the browser is gone: wake every waiter (they see no answer)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                if raw:
                    self._dispatch(json.loads(raw))

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if "id" in msg:
            self._answers[msg["id"]] = msg
            ev = self._waiting.pop(msg["id"], None)
            if ev is not None:
                ev.set()
            return
        method, params, session = msg.get("method"), msg.get("params", {}), msg.get("sessionId")
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(params)
            answer = {"accept": True, "promptText": self.prompt_answer}
            self.send("Page.handleJavaScriptDialog", answer, session=session, wait=False)
        elif method == "Runtime.exceptionThrown":
            self.console.append(
                (str(session), str(params.get("exceptionDetails", {}).get("text", "exception")))
            )
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.console.append((str(session), f"{entry.get('text', '')} {entry.get('url', '')}".strip()))

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        with self._lock:
            self._id += 1
            mid = self._id
            ev = threading.Event()
            if wait:
                self._waiting[mid] = ev
            msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        if not wait:
            return {}
        if not ev.wait(self.timeout) or mid not in self._answers:
            raise BrowserError(
                f"{method}: no answer from chromium within {self.timeout:.0f} s (log: {self.log_path})"
            )
        answer = self._answers.pop(mid)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return dict(answer.get("result", {}))

    # -- pages -----------------------------------------------------------------------------------
    def new_page(self) -> Page:
        """A tab in a fresh browser context: no cookies from other pages."""
        ctx = self.send("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank", "browserContextId": ctx})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        for domain in ("Page", "Runtime", "Log", "DOM", "Accessibility"):
            page.send(f"{domain}.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close", wait=False)
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            for fd in (self._to_browser, self._from_browser):
                with contextlib.suppress(OSError):
                    os.close(fd)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    def __init__(self, browser: Browser, session: str, target: str) -> None:
        self.browser, self.session, self.target = browser, session, target

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session)

    @property
    def errors(self) -> list[str]:
        """This tab's console errors, uncaught exceptions and CSP violations."""
        return [text for session, text in self.browser.console if session == self.session]

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float | None = None) -> T:
        end = time.monotonic() + (timeout or self.browser.timeout)
        while True:
            got = probe()
            if got:
                return got
            if time.monotonic() > end:
                raise BrowserError(
                    f"waited {timeout or self.browser.timeout:.0f} s for {what}; the page says:\n{self.text()[:3000]}"
                )
            time.sleep(0.1)

    def evaluate(self, expression: str) -> Any:
        r = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression[:80]}: {r['exceptionDetails'].get('text')}")
        return r.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        nav = self.send("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise BrowserError(f"{url}: {nav['errorText']}")
        self.wait("the page to load", lambda: self.evaluate("document.readyState") == "complete")

    @property
    def url(self) -> str:
        return str(self.evaluate("location.href"))

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def wait_text(self, text: str, timeout: float | None = None) -> str:
        return self.wait(f"the text {text!r}", lambda: self.text() if text in self.text() else None, timeout)

    # -- the accessibility tree ------------------------------------------------------------------
    def query(
        self, role: str, name: str | None = None, *, within: int | None = None, contains: bool = False
    ) -> list[int]:
        """backendNodeIds of the elements with this role whose accessible name is ``name`` (or
        contains it), in document order."""
        root = (
            within
            if within is not None
            else self.send("DOM.getDocument", {"depth": 0})["root"]["backendNodeId"]
        )
        params: dict[str, Any] = {"backendNodeId": root, "role": role}
        if name is not None and not contains:
            params["accessibleName"] = name
        nodes = self.send("Accessibility.queryAXTree", params).get("nodes", [])
        out = []
        for n in nodes:
            label = str((n.get("name") or {}).get("value", ""))
            if n.get("ignored") or "backendDOMNodeId" not in n:
                continue
            if name is None or not contains or name in label:
                out.append(int(n["backendDOMNodeId"]))
        return out

    def wait_role(
        self,
        role: str,
        name: str | None = None,
        *,
        within: int | None = None,
        contains: bool = False,
        timeout: float | None = None,
    ) -> int:
        """The first element with this role and name, once there is one."""
        found = self.wait(
            f"a {role} named {name!r}",
            lambda: self.query(role, name, within=within, contains=contains),
            timeout,
        )
        return found[0]

    def name_of(self, node: int) -> str:
        nodes = self.send("Accessibility.getPartialAXTree", {"backendNodeId": node, "fetchRelatives": False})[
            "nodes"
        ]
        return str((nodes[0].get("name") or {}).get("value", "")) if nodes else ""

    def node_text(self, node: int) -> str:
        obj = self.send("DOM.resolveNode", {"backendNodeId": node})["object"]["objectId"]
        r = self.send(
            "Runtime.callFunctionOn",
            {
                "objectId": obj,
                "functionDeclaration": "function(){return ['TEXTAREA', 'INPUT'].includes(this.tagName) ? this.value : this.innerText}",
                "returnByValue": True,
            },
        )
        return str(r.get("result", {}).get("value", ""))

    def click(self, node: int) -> None:
        self.send("DOM.scrollIntoViewIfNeeded", {"backendNodeId": node})
        quads = self.send("DOM.getContentQuads", {"backendNodeId": node})["quads"]
        if not quads:
            raise BrowserError("the element is not visible (no box to click)")
        q = quads[0]
        x, y = sum(q[0::2]) / 4, sum(q[1::2]) / 4
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
            )

    def fill(self, node: int, text: str) -> None:
        """Replace a text field's content as typing would (focus, select all, insert)."""
        self.send("DOM.focus", {"backendNodeId": node})
        obj = self.send("DOM.resolveNode", {"backendNodeId": node})["object"]["objectId"]
        self.send(
            "Runtime.callFunctionOn", {"objectId": obj, "functionDeclaration": "function(){this.select()}"}
        )
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
