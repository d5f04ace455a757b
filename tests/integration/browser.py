"""Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright, for the web
page's tests: one browser per module, a fresh context per test; what the page logs as
errors and every response it receives are recorded; screenshots are kept under a
temporary folder and compared with the baselines in ``baselines/``.

Refresh the baselines after a deliberate change of the page's look with
``PACSKIT_REFRESH_BASELINES=1`` on the test run (then look at the PNGs before committing).
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Page, Response, sync_playwright

CHROMIUM = "/usr/bin/chromium"
BASELINES = Path(__file__).parent / "baselines"
ARTEFACTS = Path(tempfile.gettempdir()) / "pacskit-web-screenshots"
VIEWPORT = {"width": 1200, "height": 720}
BASELINE_SCALE = 2
TEXT_TYPES = ("json", "text/", "javascript", "html")


@contextmanager
def chromium() -> Iterator[Browser]:
    """One headless Chromium."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Session:
    """A page with its console errors and the responses it has received."""

    page: Page
    errors: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    def text_payloads(self) -> list[tuple[str, bytes]]:
        """(URL, body) of every response whose body is text or JSON (each must still be
        readable: a body that could not be checked fails the test)."""
        return [(response.url, response.body()) for response in self.responses
                if any(t in response.headers.get("content-type", "") for t in TEXT_TYPES)]

    def canvas(self) -> np.ndarray:
        """The viewer's canvas as an RGBA array."""
        url = self.page.evaluate("() => document.querySelector('.viewport canvas').toDataURL('image/png')")
        return np.asarray(Image.open(BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))

    def wait_shown(self, previous: str | None = None) -> str:
        """The URL of the image the viewer shows, once it shows one (other than ``previous``)."""
        self.page.wait_for_function("p => { const c = document.querySelector('.viewport canvas');"
                                    " return c && c.dataset.src && c.dataset.src !== p; }", arg=previous or "")
        return self.page.locator(".viewport canvas").get_attribute("data-src") or ""


@contextmanager
def session(browser: Browser, **context: Any) -> Iterator[Session]:
    """A fresh context and page (``context``: Playwright's options, e.g. ``http_credentials``).
    CSP is bypassed only so that Playwright's own waiting functions may run in the page."""
    ctx = browser.new_context(viewport=VIEWPORT, bypass_csp=True, **context)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    s = Session(page)
    page.on("console", lambda m: s.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: s.errors.append(str(e)))
    page.on("response", lambda r: s.responses.append(r))
    try:
        yield s
    finally:
        ctx.close()


def compare_screenshot(page: Page, name: str, tolerance: float = 0.03) -> Path:
    """Save a screenshot as ``ARTEFACTS/name.png`` and compare it, reduced, with
    ``baselines/name.png``: at most ``tolerance`` of its pixels may differ by more than
    24 levels. Returns the screenshot's path (printed, to find it)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    image = Image.open(shot).convert("RGB")
    small = image.resize((image.width // BASELINE_SCALE, image.height // BASELINE_SCALE), Image.Resampling.BOX)
    baseline = BASELINES / f"{name}.png"
    if os.environ.get("PACSKIT_REFRESH_BASELINES") == "1" or not baseline.exists():
        BASELINES.mkdir(exist_ok=True)
        small.quantize(64).save(baseline, optimize=True)
        assert os.environ.get("PACSKIT_REFRESH_BASELINES") == "1", f"no baseline {baseline}: written, look at it"
        return shot
    expected = np.asarray(Image.open(baseline).convert("RGB"), dtype=np.int16)
    got = np.asarray(small.quantize(64).convert("RGB"), dtype=np.int16)
    assert got.shape == expected.shape, f"{name}: {got.shape} vs baseline {expected.shape}"
    differing = float((np.abs(got - expected).max(axis=2) > 24).mean())
    assert differing <= tolerance, f"{name}: {differing:.1%} of pixels differ from {baseline} (see {shot})"
    return shot
