"""`vigil console` in a real browser: headless Chromium (Debian's package) loads the findings page
with the token URL `vigil console` prints, against the real server on a free loopback port.

GIVEN the console serving the moto-backed stack with a finding whose command line, title and tag
are markup, WHEN Chromium opens the printed URL and the page draws the table and the finding's
details, THEN the markup is shown as text (no <img>/<script> element exists, the text does), and
the same page without the token is refused. Skipped with the reason when Chromium is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_console import XSS, Console, console  # noqa: F401  (the fixture)

from vigil_console.app import App
from vigil_console.security import Guard
from vigil_console.server import ConsoleServer, start_in_thread

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def served(console: Console) -> Iterator[tuple[str, Console]]:  # noqa: F811
    server = ConsoleServer("127.0.0.1", 0)
    # the same stack and token; its own Host allow-list (the real port)
    server.app = App(console.app.backend, Guard(server.port, token=console.guard.token))
    start_in_thread(server)
    try:
        yield f"http://127.0.0.1:{server.port}", console
    finally:
        server.shutdown()
        server.server_close()


def chromium(args: list[str], profile: Path) -> str:
    cmd = [
        CHROMIUM or "chromium",
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=8000",
        *(["--no-sandbox"] if os.geteuid() == 0 else []),
        *args,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_findings_page_shows_markup_as_text(served: tuple[str, Console], tmp_path: Path) -> None:
    base, c = served
    url = f"{base}/findings?token={c.guard.token}&id={c.xss_id}"
    dom = chromium(["--dump-dom", url], tmp_path / "profile")
    assert 'aria-label="findings"' in dom, dom[-3000:]  # the table was drawn from the API
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom  # the command line and title, as text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in dom  # the tag, as text
    assert "<img" not in dom and "<script>alert" not in dom
    assert "Runbook" in dom and "process lineage" in dom  # the details panel opened


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_page_without_token_is_refused_in_the_browser(served: tuple[str, Console], tmp_path: Path) -> None:
    base, _ = served
    dom = chromium(["--dump-dom", f"{base}/findings"], tmp_path / "profile")
    assert "token missing or wrong" in dom and 'aria-label="findings"' not in dom


@pytest.mark.skipif(
    CHROMIUM is None or not os.environ.get("VIGIL_CONSOLE_SCREENSHOTS"),
    reason="screenshots for docs/console.md: VIGIL_CONSOLE_SCREENSHOTS=DIR pytest -k screenshots",
)
def test_screenshots(served: tuple[str, Console], tmp_path: Path) -> None:
    base, c = served
    assert c.call("POST", "/api/findings/samples", {}).status == 200
    rule = c.call("GET", f"/api/findings/{c.xss_id}").json()["suppression"]
    assert c.call("POST", "/api/rules", rule).status == 201
    assert c.call("POST", f"/api/findings/{c.xss_id}/isolate", {}).status == 200
    out = Path(os.environ["VIGIL_CONSOLE_SCREENSHOTS"]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    token = c.guard.token
    pages = {
        "summary": "/summary",
        "findings": f"/findings?id={c.xss_id}&sort=severity",
        "timeline": "/timeline?instance=i-0123456789abcdef0",
        "rules": "/rules",
        "response": "/response",
    }
    for name, path in pages.items():
        sep = "&" if "?" in path else "?"
        chromium(
            [
                "--window-size=1400,1000",
                f"--screenshot={out / (name + '.png')}",
                f"{base}{path}{sep}token={token}",
            ],
            tmp_path / name,
        )
        assert (out / f"{name}.png").stat().st_size > 10_000
