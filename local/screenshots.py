"""The pictures of docs/console.md: the real pages, with the demo's data, in headless Chromium.

    make console-screenshots        # python -m local.console_demo --screenshots docs/console

``take(url, data, out)`` opens the console's printed URL and saves one PNG per page of ``PAGES``:
the findings page shows the recorded reverse shell's details (process tree, runbook), the rules
page a rule made from it with "Suppress findings like this", the response page the isolation
awaiting approval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local.browser import Browser, Page

PAGES = ("summary", "findings", "details", "timeline", "coverage", "usage", "rules", "response")


def _shoot(page: Page, out: Path, name: str) -> Path:
    page.evaluate("window.scrollTo(0, 0)")
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return page.screenshot(out / f"{name}.png")


def take(url: str, data: Any, out: Path) -> list[Path]:
    base = url.split("/?", 1)[0]
    shell = data.findings["Execution:Runtime/ReverseShell"]
    written: list[Path] = []
    with Browser(width=1600, height=1000, timeout=30) as browser:
        page = browser.new_page()
        page.goto(url)
        page.wait("the token to leave the address bar", lambda: "token=" not in page.url)

        page.wait_role("image", "findings by severity per day")
        page.wait_text("Most affected instances")
        written.append(_shoot(page, out, "summary"))

        page.goto(f"{base}/findings")
        page.wait_role("table", "findings")
        page.wait_text("page 1 of")
        written.append(_shoot(page, out, "findings"))

        page.goto(f"{base}/findings?id={shell}&filter=severity%20%3E%3D%205")
        page.wait_role("list", "process lineage")
        page.wait_role("heading", "Runbook")
        tall = {"width": browser.width, "height": 1250, "deviceScaleFactor": 1, "mobile": False}
        page.send("Emulation.setDeviceMetricsOverride", tall)
        written.append(_shoot(page, out, "details"))
        page.send("Emulation.setDeviceMetricsOverride", {**tall, "height": browser.height})
        # "Suppress findings like this", edited, saved: the rules page shows it
        page.click(page.wait_role("button", "Suppress findings like this"))
        box = page.wait_role("textbox", "suppression rule")
        rule = json.loads(page.node_text(box))
        rule["Name"], rule["Description"] = (
            "web-1-reverse-shell-drill",
            "Red-team drill on demo-web-1 (until Friday)",
        )
        page.fill(box, json.dumps(rule, indent=2))
        page.click(page.wait_role("button", "Save rule"))
        page.wait_text("Rule web-1-reverse-shell-drill saved")

        page.goto(f"{base}/timeline?instance={data.victim}")
        page.wait_text("Attack sequence")
        written.append(_shoot(page, out, "timeline"))

        for name, path, ready in (
            ("coverage", "/coverage", "HEALTHY"),
            ("usage", "/usage", "GuardDuty, period"),
            ("rules", "/rules", "web-1-reverse-shell-drill"),
            ("response", "/response", "awaiting approval"),
        ):
            page.goto(f"{base}{path}")
            page.wait_text(ready)
            written.append(_shoot(page, out, name))
    return written
