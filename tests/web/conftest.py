"""The planner page in Debian's headless Chromium, against the real app (SQLite, the
in-process job runner) served on a free loopback port. Every request that is not to that
origin is blocked and recorded, and every console error is kept, so a test can assert the
page needs nothing from the internet and runs cleanly."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from api.app import create_app, release_job_runner

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/web/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason="needs /usr/bin/chromium (bin/setup)"))


@dataclass
class LiveApp:
    """The app served by werkzeug in a thread; `url` is its origin."""

    app: Any
    server: BaseWSGIServer
    thread: threading.Thread
    url: str = ""

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        release_job_runner(self.app)


def start_app(tmp: Path, **config: Any) -> LiveApp:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp / 'windmaker.db'}",
            "JOB_POLL_S": 0.1,
            "JOB_WORKERS": 2,
            **config,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return LiveApp(app, server, thread, f"http://127.0.0.1:{server.server_port}")


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    live = start_app(tmp_path_factory.mktemp("web"))
    yield live
    live.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright launches Debian's chromium, not a downloaded browser."""
    return {"executable_path": str(CHROMIUM), "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args() -> dict[str, Any]:
    return {"accept_downloads": True, "viewport": {"width": 1280, "height": 900}}


@dataclass
class Watch:
    """What a page did besides talking to its own origin."""

    origin: str
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.external == [], f"requests outside {self.origin}: {self.external}"
        assert self.errors == [], f"console errors: {self.errors}"


def watch_page(page: Any, origin: str) -> Watch:
    watch = Watch(origin)

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(origin + "/") or url == origin or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            watch.external.append(url)
            route.abort()

    page.context.route("**/*", route)
    page.on(
        "console",
        lambda msg: watch.errors.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda error: watch.errors.append(str(error)))
    return watch


@pytest.fixture
def watched(page: Any, live_app: LiveApp) -> Watch:
    return watch_page(page, live_app.url)


@pytest.fixture
def screenshot() -> Callable[..., None]:
    """Saves docs/screenshots/NAME.png when WINDMAKER_SCREENSHOTS=1 (so test runs leave
    the work tree alone otherwise)."""

    def take(page: Any, name: str, selector: str | None = None) -> None:
        if os.environ.get("WINDMAKER_SCREENSHOTS") != "1":
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = str(SCREENSHOTS / f"{name}.png")
        if selector == "viewport":
            page.screenshot(path=path)
        elif selector:
            page.locator(selector).screenshot(path=path)
        else:
            page.screenshot(path=path, full_page=True)

    return take


UNLABELLED_JS = """() => [...document.querySelectorAll(
    'input, select, button, a, textarea, summary')]
  .filter(el => el.offsetParent !== null && el.type !== 'hidden')
  .filter(el => {
    const text = el.matches('button, a, summary') ? el.textContent.trim()
      : [...(el.labels || [])].map(l => l.offsetParent ? l.textContent.trim() : '').join('');
    return !text;
  }).map(el => el.outerHTML.slice(0, 80))"""


def unlabelled_controls(page: Any) -> list[str]:
    """Visible controls without a visible label (the label text is their accessible name:
    `<label for>` for fields, the text for buttons, links and disclosure summaries)."""
    return list(page.evaluate(UNLABELLED_JS))
