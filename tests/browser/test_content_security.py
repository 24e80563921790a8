"""The main pages in a real browser under PIU's Content-Security-Policy: no violation (no inline script,
handler or style attribute left), the sheet's Print button works from its static script, and its
score bars are proportional to the scores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import serve

pytestmark = pytest.mark.browser
PASSWORD = "un-mot-de-passe-solide"


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[str]:
    from piu_app import create_app, upgrade_database
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.services import demo
    from piu_app.services import users as user_service

    home = tmp_path / "data"
    app = create_app({"SECRET_KEY": "browser-tests"}, instance_path=home)
    upgrade_database(app, backup=False)
    with app.test_request_context(), writing():
        demo.load()
        user_service.create(username="fatou", password=PASSWORD, role="admin")
        db.session.commit()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    with serve(home) as url:
        yield url


def test_main_pages_raise_no_content_security_violation(browser, demo_server):
    base = demo_server
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{page.url}: {e}"))
    page.goto(base + "/login")
    page.fill("#username", "fatou")
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    assert page.url.rstrip("/") == base

    page.goto(base + "/innovations/")
    detail = page.locator("table a[href*='/innovations/']").first.get_attribute("href")
    visited = ["/", "/innovations/", detail, f"{detail}/edit", f"{detail}/history", "/search?q=solaire",
               "/experiments/", "/experiments/new", "/reviews/", "/peers/", "/exchange/", "/spreadsheets/",
               "/admin/users", "/admin/vocabularies", "/admin/instance", "/backups", "/account", "/no-such-page"]
    for path in visited:
        response = page.goto(base + path)
        assert response is not None and response.status < 500, path
        assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), path

    # the printable sheet of an innovation with reviews: its script runs, its bars follow the scores
    sheets = []
    for href in page.goto(base + "/innovations/") and page.locator("table a[href*='/innovations/']").all()[:30]:
        sheets.append(href.get_attribute("href"))
    scored = None
    for href in sheets:
        page.goto(base + f"{href}/sheet")
        if page.locator(".scores .bar").count():
            scored = href
            break
    assert scored, "no innovation of the demo register has reviews"
    assert page.locator("button[data-print]").is_visible()  # made visible by js/sheet.js
    bars = page.locator(".scores td").all()
    widths = {}
    for cell in bars:
        average = float(cell.inner_text().split("/")[0].strip().replace(",", "."))
        widths[average] = cell.locator(".bar").bounding_box()["width"]
    ordered = [widths[a] for a in sorted(widths)]
    assert ordered == sorted(ordered) and all(w > 0 for w in ordered), widths
    if len(widths) > 1:
        assert len(set(round(w) for w in ordered)) > 1, widths
    context.close()
    csp = [p for p in problems if "Content Security Policy" in p or "Refused to" in p]
    assert not csp, "\n".join(csp)
    assert not [p for p in problems if "404" not in p], problems


def test_sheet_bars_differ_for_three_four_and_five(tmp_path):
    """3/5, 4/5 and 5/5 give three different bar widths (they were all capped at 60 %)."""
    import re

    css = (Path(__file__).resolve().parents[2] / "piu_app" / "static" / "css" / "sheet.css").read_text()
    width = {int(n): float(w) for n, w in re.findall(r"\.bar-(\d+) \{ width:([\d.]+)%; \}", css)}
    assert width[6] < width[8] < width[10]
    assert all(width[n] == pytest.approx(width[10] * n / 10) for n in range(1, 11))
