"""Phones in the room, in a real browser at 375 px: with JavaScript (the outbox, the poll, the state shown)
and without it (plain forms). The room listener runs on loopback (ROOM_ADDRESSES=127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.test_journey import expect
from tests.browser.test_phone_layout import MEASURE, TOUCH

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 667}


@pytest.fixture
def room_url(tmp_path: Path) -> Iterator[tuple[str, str]]:
    from piu_app import create_app, upgrade_database
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.room.listener import listener_for
    from piu_app.services import board_versions
    from tests.room.factories import make_board, make_workshop

    board_versions.forget()
    app = create_app({"SECRET_KEY": "browser-room", "ROOM_ADDRESSES": "127.0.0.1", "ROOM_PORT": 0},
                     instance_path=tmp_path / "data")
    upgrade_database(app, backup=False)
    with app.app_context(), writing():
        workshop = make_workshop()
        make_board(workshop, voting_open=True)
        code, workshop_id = workshop.join_code, workshop.id
        db.session.commit()
    listener = listener_for(app)
    listener.open(workshop_id)
    try:
        yield listener.urls()[0], code
    finally:
        listener.close_all()
        board_versions.forget()


def _phone(browser, base: str, *, javascript: bool):
    context = browser.new_context(viewport=PHONE, locale="fr-FR", java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: problems.append(r.url) if not r.url.startswith((base, "data:")) else None)
    return context, page, problems


def _check_layout(page) -> None:
    figures = page.evaluate(MEASURE, TOUCH)
    assert figures["scrollWidth"] <= figures["innerWidth"], figures
    assert not figures["short"], figures["short"]


def test_a_phone_with_javascript_joins_posts_and_sees_its_note(browser, room_url) -> None:
    base, code = room_url
    context, page, problems = _phone(browser, base, javascript=True)
    page.goto(base + "/")
    _check_layout(page)
    page.fill("#code", code.lower())
    page.click("button[type=submit]")
    page.fill("#name", "Awa Diop")
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("#note-form")
    _check_layout(page)
    page.check("input[name=category] >> nth=1")
    page.fill("#text", "Les délais de paiement découragent les start-up")
    page.click("#send")
    page.wait_for_selector("#own .note:not(.unsent) >> text=délais de paiement")
    page.wait_for_function("document.getElementById('net').textContent === 'envoyé'")
    assert page.input_value("#text") == ""  # the form was emptied, the note kept in the list
    page.fill("#text", "un brouillon en cours")
    page.wait_for_timeout(3500)  # a poll or two: the form being typed in is never redrawn
    assert page.input_value("#text") == "un brouillon en cours"
    page.reload()  # the device cookie brings the same participant back, the draft comes back from the phone
    page.wait_for_selector("#own .note >> text=délais de paiement")
    assert page.input_value("#text") == "un brouillon en cours"
    assert problems == []
    context.close()


def test_a_phone_without_javascript_posts_with_plain_forms(browser, room_url) -> None:
    base, code = room_url
    context, page, problems = _phone(browser, base, javascript=False)
    page.goto(f"{base}/r/{code}")
    page.click("form.stack button[type=submit]")
    page.check("input[name=category] >> nth=0")
    page.fill("#text", "Manque de retours d'expérience entre villes")
    page.click("#send")
    expect(page.locator("#own .note", has_text="Manque de retours")).to_have_count(1)
    assert page.input_value("#text") == ""
    _check_layout(page)
    assert problems == []
    context.close()
