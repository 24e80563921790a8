"""A live PIU server and a headless Chromium (Debian's) driven by Playwright.

Without Chromium the browser tests are skipped with the command to install it; in CI (CI=true)
they fail instead, so a green CI always means the journeys ran in a real browser.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str | None:
    for candidate in (os.environ.get("PIU_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    executable = _chromium()
    message = ("Chromium not found: install it with `sudo apt-get install chromium` "
               "(or set PIU_CHROMIUM to its path) to run the browser tests.")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed: pip install -e '.[test]'")
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def serve(instance_path: Path, secret_key: str = "browser-tests") -> Iterator[str]:
    """Serve a fresh, not yet set up PIU from `instance_path` on a free loopback port."""
    from waitress.server import create_server

    from piu_app import create_app, upgrade_database

    app = create_app({"SECRET_KEY": secret_key}, instance_path=instance_path)
    upgrade_database(app, backup=False)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    with serve(tmp_path / "data") as url:
        yield url


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15_000)
    external: list[str] = []
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith((live_server, "data:", "about:")) else None)
    page.base = live_server  # type: ignore[attr-defined]
    yield page
    context.close()
    assert external == [], f"the page tried to reach outside the app: {external}"
