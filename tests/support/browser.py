"""A real headless Chromium (Debian's package, installed by .ci/setup) driven by Playwright, for the
pages a person looks at: open an HTML file from disk with the network off, and tell what happened.

Playwright's own browser download is never used: the machine's ``chromium`` is launched by path.
Every request the page makes is recorded; anything but ``file:``, ``data:``, ``blob:`` and
``about:`` is aborted (and counted), and the browser context is offline besides.

``python -m tests.support.browser PAGE.html OUT.png`` takes a screenshot (used for the README's).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Request, Route, sync_playwright

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")

# Every canvas under the document, through the shadow roots Bokeh renders into, with how many of a
# sample of its pixels are painted (alpha > 0).
_CANVASES_JS = """
() => {
  const found = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "CANVAS") { found.push(el); }
      if (el.shadowRoot) { walk(el.shadowRoot); }
    }
  };
  walk(document);
  return found.map((c) => {
    const ctx = c.getContext("2d");
    if (!ctx || !c.width || !c.height) { return [c.width, c.height, 0]; }
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < data.length; i += 4 * 7) { if (data[i] !== 0) { painted += 1; } }
    return [c.width, c.height, painted];
  });
}
"""


def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "no Chromium on PATH: .ci/setup installs Debian's package (apt-get install chromium)"
    )


@dataclass
class PageVisit:
    """What happened when a page was opened."""

    errors: list[str] = field(default_factory=list)
    """Uncaught exceptions and console errors."""
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    """Requests for anything not on this machine (aborted)."""
    canvases: list[tuple[int, int, int]] = field(default_factory=list)
    """(width, height, painted sample pixels) of every canvas."""
    models: dict[str, int] = field(default_factory=dict)
    """Rows of each named Bokeh data source (``-1``: not found)."""


def visit(
    page_path: Path,
    *,
    screenshot: Path | None = None,
    sources: tuple[str, ...] = (),
    painted: int = 1,
    timeout_s: float = 60.0,
) -> PageVisit:
    """Open ``page_path`` offline, wait until Bokeh has rendered and at least ``painted`` canvases
    have pixels on them, and report."""
    result = PageVisit()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)

            def route(route: Route, request: Request) -> None:
                if request.url.startswith(LOCAL_SCHEMES):
                    route.continue_()
                else:
                    result.blocked.append(request.url)
                    route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("pageerror", lambda exc: result.errors.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: (
                    result.errors.append(f"console: {msg.text}") if msg.type == "error" else None
                ),
            )
            page.on("request", lambda request: result.requests.append(request.url))
            timeout_ms = timeout_s * 1000
            page.goto(page_path.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
            # Rendered: a Bokeh document exists and enough canvases have been painted.
            page.wait_for_function(
                "() => window.Bokeh !== undefined && Bokeh.documents.length > 0",
                timeout=timeout_ms,
            )
            page.wait_for_function(
                f"() => {{ const c = ({_CANVASES_JS})(); "
                f"return c.filter((x) => x[2] > 0).length >= {painted}; }}",
                timeout=timeout_ms,
            )
            result.canvases = [tuple(c) for c in page.evaluate(_CANVASES_JS)]
            for name in sources:
                rows: Any = page.evaluate(
                    "(name) => { const m = Bokeh.documents[0].get_model_by_name(name);"
                    " if (!m) { return -1; } const d = m.data;"
                    " const key = d instanceof Map ? d.keys().next().value : Object.keys(d)[0];"
                    " const col = d instanceof Map ? d.get(key) : d[key];"
                    " return col.length; }",
                    name,
                )
                result.models[name] = int(rows)
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=False)
        finally:
            browser.close()
    return result


if __name__ == "__main__":  # pragma: no cover - a tool for the README's screenshot
    visit(Path(sys.argv[1]), screenshot=Path(sys.argv[2]))
