"""A real `harness serve` and a real headless Chromium for the dashboard tests (and the README's screenshots).

The server is the CLI in a subprocess on a free loopback port; the browser is Debian's `chromium` driven by
Playwright (never a downloaded browser). Every page a test opens records its console errors, uncaught
exceptions and every request that would leave the server (those are also aborted)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_S = 60
CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium() -> str | None:
    """Debian's chromium (apt-get install chromium), or $HARNESS_CHROMIUM."""
    explicit = os.environ.get("HARNESS_CHROMIUM")
    if explicit:
        return explicit
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


@contextmanager
def serve(db, *extra: str):
    """`harness serve --db DB --port 0` in a subprocess; yields its base URL; stopped (killed if it must be)."""
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "serve", "--db", str(db), "--port", "0", *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline and "http://" not in line:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"harness serve exited {process.returncode}: {process.stderr.read()}")
        url = line[line.index("http://"):].split()[0]
        yield url.rstrip("/")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


@dataclass
class Visit:
    """What one page did while it loaded and ran."""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # requests to anywhere but the server
    failed: list[str] = field(default_factory=list)  # responses >= 400


class Browser:
    def __init__(self, base: str):
        from playwright.sync_api import sync_playwright

        self.base = base
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        except Exception:
            self._playwright.stop()
            raise
        self.context = self._browser.new_context(viewport={"width": 1400, "height": 900})

    def open(self, path: str, visit: Visit | None = None, base: str | None = None):
        """A new page at base + path (another server's with `base`), loaded and its charts drawn; `visit`
        collects what went wrong."""
        visit = visit if visit is not None else Visit()
        base = base or self.base
        page = self.context.new_page()
        page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
        page.on("response", lambda r: visit.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

        def route(request_route):
            if request_route.request.url.startswith(base + "/"):
                request_route.continue_()
            else:
                visit.outside.append(request_route.request.url)
                request_route.abort()

        page.route("**/*", route)
        page.goto(base + path, wait_until="networkidle")
        page.wait_for_function("[...document.querySelectorAll('.chart')].every(c => c.data !== undefined)",
                               timeout=15_000)
        page.visit = visit
        return page

    def close(self) -> None:
        self.context.close()
        self._browser.close()
        self._playwright.stop()


def screenshot(page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    return path
