"""The demo served on localhost over a copy of the bundled index, and Debian's Chromium."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import playwright.sync_api as playwright
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_INDEX = ROOT / "indexes" / "news"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-output" / "screenshots"
# Playwright's own browser download does not work here: Debian's Chromium, with the flags that
# keep it off the (closed) network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo on a free port, over a copy: uploads must never touch the checked-in index."""
    from semsearch.demo import build, launch

    index_dir = tmp_path_factory.mktemp("browser") / "news"
    shutil.copytree(BUNDLED_INDEX, index_dir)
    app = build(index_dir)
    url = launch(app, host="127.0.0.1", port=None)
    yield url
    app.close()


@pytest.fixture(scope="session")
def browser_context() -> Iterator[playwright.BrowserContext]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium; .ci/run does)")
    with playwright.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile,  # a fresh user-data-dir every run
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(60_000)  # answers wait on a 2-core machine shared with CI
        yield context
        context.close()


@pytest.fixture
def page(browser_context: playwright.BrowserContext, demo_url: str) -> Iterator[playwright.Page]:
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(demo_url)
    page.wait_for_selector("#question textarea")
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot() -> Callable[[playwright.Page, str], None]:
    """Saves a full-page screenshot under test-output/screenshots/ for people to look at."""

    def take(page: playwright.Page, name: str) -> None:
        # Gradio greys out components whose update is still running; wait for them to settle.
        playwright.expect(page.locator(".pending")).to_have_count(0)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take
