"""Issue 12's acceptance journey, in a real browser: a workshop in the room, from the board to the report.

The facilitator (officer app, logged in) prepares a board from the « Freins » template, opens the room;
three phones in separate browser contexts join through the room listener (a second waitress server on
127.0.0.1 and a free port) by typing the join code the projector shows, one of them with JavaScript off.
They post notes in private; the facilitator reveals, accepts the suggested group and makes a second theme
with the keyboard only; the phones vote; the timer freezes input; a theme becomes a barrier (the similar
barrier already in the catalogue is proposed first); the DOCX report is downloaded and read with
python-docx: every note under its theme with its votes, and the participant list names only the one
participant who consented.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_journey import _fill_form, _set_up, expect

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 667}
FROZEN = "Ce tableau ne reçoit plus de notes."

# The notes, their column, who posts them; the first three share « délais de paiement » (one suggested
# group), the next two share no word (the theme made by keyboard), the last one stays without a theme.
DELAYS = ("Délais de paiement trop longs pour les start-up", "Délais de paiement des marchés publics trop longs",
          "Délais de paiement : la trésorerie des start-up souffre")
RISK = ("Élus frileux face au risque", "Peur de l'échec chez les décideurs")
LOOSE = "Aucune donnée ouverte sur le territoire"
# Votes per phone (5 each, at most 3 per note): every note ends with a different count, one with none.
VOTES = {
    "awa": {DELAYS[0]: 3, RISK[0]: 2},
    "jean": {DELAYS[0]: 2, DELAYS[1]: 3},
    "anon": {DELAYS[1]: 1, RISK[1]: 3, LOOSE: 1},
}
EXPECTED = {DELAYS[0]: 5, DELAYS[1]: 4, DELAYS[2]: 0, RISK[0]: 2, RISK[1]: 3, LOOSE: 1}
DELAYS_THEME, RISK_THEME = "Délais de paiement", "Culture du risque"


@pytest.fixture
def officer(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """The officer app on a free loopback port, its room listener bound to 127.0.0.1 (free port too)."""
    from waitress.server import create_server

    from piu_app import create_app, upgrade_database
    from piu_app.room.listener import listener_for
    from piu_app.services import board_versions
    from piu_app.services import room as room_service

    # What the room holds in memory is keyed by board id, which repeats across the tests' databases.
    board_versions.forget()
    room_service.forget_shared()
    app = create_app({"SECRET_KEY": "browser-workshop", "ROOM_ADDRESSES": "127.0.0.1", "ROOM_PORT": 0},
                     instance_path=tmp_path / "data")
    upgrade_database(app, backup=False)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", app
    finally:
        listener_for(app).close_all()
        server.close()
        thread.join(timeout=5)
        board_versions.forget()
        room_service.forget_shared()


def _context(browser, base: str, *, viewport: dict, javascript: bool = True):
    context = browser.new_context(viewport=viewport, locale="fr-FR", java_script_enabled=javascript,
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:", "about:")) else None)
    if viewport == PHONE and javascript:  # its script logs no error and raises no alert (a refusal)
        page.on("console", lambda m: outside.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda d: (outside.append(d.message), d.dismiss()))
    return context, page, outside


def _join(page, room: str, code: str, *, name: str = "", organisation: str = "", group: str = "",
          consent: bool = False) -> None:
    """Type the join code on the room's home page, then say who one is (or nothing) and join."""
    page.goto(room + "/")
    page.fill("#code", code.lower())
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Journée innovation urbaine")
    if name:
        page.fill("#name", name)
    if organisation:
        page.fill("#organisation", organisation)
    if group:
        page.select_option("#actor_group", group)
    if consent:
        page.check("input[name=consent]")
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("#note-form")  # the only open board, straight away


def _post(page, column: str, text: str, *, javascript: bool) -> None:
    page.get_by_label(column, exact=True).check()
    page.fill("#text", text)
    page.click("#send")
    if javascript:
        page.wait_for_selector(f"#own .note:not(.unsent) >> text={text}")
    else:
        page.wait_for_selector(f"#own .note >> text={text}")


def _vote(page, text: str, times: int, *, javascript: bool) -> None:
    note = page.locator("li.note", has=page.get_by_text(text, exact=True))
    for done in range(1, times + 1):
        note.get_by_role("button", name="Voter").click()
        # without JavaScript the page comes back; with JavaScript the script posts, then redraws the list from the next state
        expect(note.locator(".my")).to_have_text("●" * done)


def _theme_notes(page, label: str) -> dict[str, int]:
    section = page.locator("section.theme", has=page.locator("h3", has_text=label))
    found = {}
    for item in section.locator("li.note").all():
        found[item.locator("label").inner_text().strip()] = int(item.locator(".votes").inner_text().split()[0])
    return found


def _docx_sections(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """Return the DOCX's bullet paragraphs under each heading, and every paragraph's text."""
    import docx

    document = docx.Document(str(path))
    sections: dict[str, list[str]] = {}
    current = ""
    texts = []
    for paragraph in document.paragraphs:
        texts.append(paragraph.text)
        style = paragraph.style.name if paragraph.style is not None else ""
        if style.startswith(("Heading", "Title")):
            current = paragraph.text
            sections.setdefault(current, [])
        elif style == "List Bullet":
            sections.setdefault(current, []).append(paragraph.text)
    return sections, texts


def _votes_text(n: int) -> str:
    return "aucun vote" if n == 0 else f"{n} vote" if n == 1 else f"{n} votes"


def test_workshop_in_the_room_from_board_to_report(browser, officer, tmp_path: Path) -> None:
    base, app = officer
    context, page, outside = _context(browser, base, viewport=DESKTOP)
    page.goto(base + "/")
    _set_up(page, city="Ville de Port-Sable", country="SN", code="port-sable", admin="fatou")

    # A barrier already in the catalogue, worded close to what the room will say.
    page.goto(base + "/barriers/new")
    _fill_form(page, {"label": "Délais de paiement des collectivités"})
    expect(page.locator("h1")).to_have_text("Délais de paiement des collectivités")

    # Prepare: the workshop, a board from the « Freins » template, its rules.
    page.click("nav.menu a:has-text('Préparer un atelier')")
    page.fill("#title", "Journée innovation urbaine")
    page.click("button.primary")
    page.wait_for_url(re.compile(r".*/workshops/[0-9a-f-]{36}$"))
    workshop_url = page.url
    page.select_option("#template", "barriers")
    page.click("button:has-text('Créer le tableau')")
    expect(page.locator("h1")).to_have_text("Question, colonnes et règles")
    assert page.locator("#title").input_value() == "Freins à l'innovation urbaine"
    columns = [field.input_value() for field in page.locator("input[id^='label-']").all()]
    assert columns == ["Côté acheteurs", "Côté porteurs", "Côté facilitateurs", "Relation acheteur-porteur",
                       "Territoire"]
    page.check("input[name=private_until_reveal]")
    page.fill("#vpp", "5")
    page.fill("#vpn", "3")
    page.fill("#timer", "1")
    page.click("button:has-text('Enregistrer')")
    page.wait_for_url(re.compile(r".*/boards/[0-9a-f-]{36}$"))
    board_url = page.url
    page.click("button:has-text('Ouvrir le tableau')")
    expect(page.locator("#etat")).to_contain_text("ouvert")

    # Open the room; the projector shows the join code and the address.
    page.goto(workshop_url)
    page.click("a:has-text('Ouvrir ou fermer la salle')")
    page.click("button:has-text('Ouvrir la salle')")
    expect(page.locator("main")).to_contain_text("La salle est ouverte")
    page.click("a:has-text('Page du projecteur')")
    code = page.locator(".proj-code strong").inner_text().strip()
    join_url = page.locator(".proj-urls code").first.inner_text().strip()
    assert re.fullmatch(r"[2-9A-Z]{6}", code) and join_url.endswith("/r/" + code)
    room = join_url.removesuffix("/r/" + code)
    assert room.startswith("http://127.0.0.1:") and room != base

    # Three phones join by the code: one consents to be named, one does not, one gives no name (no JS).
    phones = {}
    for key, javascript, who in (
            ("awa", True, {"name": "Awa Diop", "organisation": "Lumisol", "group": "carriers", "consent": True}),
            ("jean", True, {"name": "Jean Martin", "organisation": "Mairie de Port-Sable", "group": "buyers"}),
            ("anon", False, {"group": "facilitators"})):
        ctx, phone, phone_outside = _context(browser, room, viewport=PHONE, javascript=javascript)
        _join(phone, room, code, **who)
        phones[key] = (ctx, phone, phone_outside, javascript)

    # They write in private.
    for key, column, text in (("awa", "Côté acheteurs", DELAYS[0]), ("jean", "Côté acheteurs", DELAYS[1]),
                              ("anon", "Relation acheteur-porteur", DELAYS[2]), ("awa", "Côté acheteurs", RISK[0]),
                              ("anon", "Côté facilitateurs", RISK[1]), ("jean", "Territoire", LOOSE)):
        _ctx, phone, _o, javascript = phones[key]
        _post(phone, column, text, javascript=javascript)
    jean = phones["jean"][1]
    expect(jean.locator("#own li.note")).to_have_count(2)
    expect(jean.locator("#notes li.note")).to_have_count(0)  # before the reveal, only one's own notes

    # The facilitator reveals; the projector-side board offers the « délais de paiement » group.
    page.goto(board_url)
    page.click("button:has-text('Révéler les post-it')")
    expect(page.locator("#etat")).to_contain_text("révélé")
    expect(page.locator("form.suggestion")).to_have_count(1)
    suggestion = page.locator("form.suggestion")
    expect(suggestion.locator("li")).to_have_count(3)
    assert sorted(suggestion.locator("li").all_inner_texts()) == sorted(DELAYS)
    suggestion.locator("input[name=label]").fill(DELAYS_THEME)
    suggestion.locator("button[type=submit]").click()
    expect(page.locator("section.theme h3", has_text=DELAYS_THEME)).to_contain_text("3 post-it")
    assert sorted(_theme_notes(page, DELAYS_THEME)) == sorted(DELAYS)

    # The second theme by keyboard only: focus each note's box and tick it with Space, type the theme's
    # name, Tab to « Regrouper dans un nouveau thème », press Enter.
    for text in RISK:
        box = page.locator("#sans-theme li.note", has_text=text).locator("input[type=checkbox]")
        box.focus()
        page.keyboard.press("Space")
        assert box.is_checked()
    page.focus("#group-label")
    page.keyboard.type(RISK_THEME)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Regrouper dans un nouveau thème"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert sorted(_theme_notes(page, RISK_THEME)) == sorted(RISK)
    assert [t.strip() for t in page.locator("#sans-theme li.note label").all_inner_texts()] == [LOOSE]

    # Voting opens; each phone spends its five dots.
    page.click("button:has-text('Ouvrir le vote')")
    expect(page.locator("#etat")).to_contain_text("vote ouvert")
    for key, choices in VOTES.items():
        _ctx, phone, _o, javascript = phones[key]
        phone.reload()
        expect(phone.locator("li.note")).to_have_count(6)  # revealed: every note on every phone
        for text, times in choices.items():
            _vote(phone, text, times, javascript=javascript)
        expect(phone.locator("#left")).to_contain_text("Votes restants : 0")
    page.reload()
    assert _theme_notes(page, DELAYS_THEME) == {t: EXPECTED[t] for t in DELAYS}
    assert _theme_notes(page, RISK_THEME) == {t: EXPECTED[t] for t in RISK}

    # The timer: started from the board page at its smallest (1 minute), then moved into the past through
    # the app's own service (a test cannot wait a minute); the phones' input freezes.
    page.fill("#minutes", "1")
    page.click("button:has-text('Lancer le minuteur')")
    expect(page.locator("#etat")).to_contain_text("minuteur : fin dans 1 min")
    _end_timer(app)
    page.reload()
    expect(page.locator("#etat")).to_contain_text("temps écoulé : saisie arrêtée")
    awa = phones["awa"][1]
    expect(awa.locator("#send")).to_be_disabled()  # the next poll sees it
    expect(awa.locator("#closed")).to_be_visible()
    assert awa.locator("#closed").inner_text() == FROZEN
    anon = phones["anon"][1]  # its page was drawn before the timer ended: the form is still there
    anon.get_by_label("Territoire", exact=True).check()
    anon.fill("#text", "Une note arrivée trop tard")
    anon.click("#send")
    expect(anon.locator("p.error")).to_have_text(FROZEN)
    expect(anon.locator("li.note", has_text="trop tard")).to_have_count(0)

    # A theme becomes a barrier; the catalogue's close barrier is proposed before a new one.
    page.locator("section.theme", has=page.locator("h3", has_text=DELAYS_THEME)).locator("summary").click()
    page.click(f"section.theme:has(h3:has-text('{DELAYS_THEME}')) a:has-text('Verser ce thème au registre')")
    expect(page.locator("h1")).to_have_text("Verser au registre")
    proposed = page.locator("section.links", has=page.locator("h2", has_text="Freins déjà au catalogue"))
    assert "Délais de paiement des collectivités" in proposed.inner_text()
    assert page.get_by_role("radio", name="Frein").is_checked()
    assert page.locator("#p-title").input_value() == DELAYS_THEME
    page.click("button:has-text('Créer la fiche')")
    theme_heading = page.locator("section.theme h3", has_text=DELAYS_THEME)
    expect(theme_heading).to_contain_text("versé")
    expect(theme_heading).to_contain_text("Frein")
    page.goto(base + "/barriers/")
    listing = page.locator("main").inner_text()
    assert DELAYS_THEME in listing and "Délais de paiement des collectivités" in listing

    # The report: download the DOCX and read it.
    page.goto(workshop_url)
    page.click("a:has-text('Voir et imprimer le compte-rendu')")
    with page.expect_download() as info:
        page.click(".downloads a:has-text('DOCX')")
    path = tmp_path / "compte-rendu.docx"
    info.value.save_as(path)
    sections, texts = _docx_sections(path)

    def notes_under(heading: str) -> dict[str, str]:
        return dict(line.split(" — ", 1) for line in sections[heading])

    delays = notes_under(f"Thème : {DELAYS_THEME} (9 votes)")
    risk = notes_under(f"Thème : {RISK_THEME} (5 votes)")
    loose = notes_under("Sans thème — Territoire")
    assert sorted(delays) == sorted(DELAYS) and sorted(risk) == sorted(RISK) and list(loose) == [LOOSE]
    for text, meta in {**delays, **risk, **loose}.items():
        assert meta.endswith(_votes_text(EXPECTED[text])), (text, meta)
    assert list(delays) == [DELAYS[0], DELAYS[1], DELAYS[2]]  # most voted first
    assert delays[DELAYS[0]] == "Côté acheteurs · Porteurs (start-ups, entreprises, laboratoires) · 5 votes"

    # The participant list obeys consent: only Awa is named (with her organisation); the others counted.
    assert sorted(sections["Participants"]) == sorted([
        "Awa Diop (Lumisol)", "Acheteurs (collectivités, aménageurs, promoteurs) : 1",
        "Facilitateurs (BET, AMO, clusters, incubateurs, agences de développement) : 1"])
    assert "3 participants en tout." in texts
    everything = "\n".join(texts)
    assert "Jean Martin" not in everything and "Mairie de Port-Sable" not in everything
    assert "trop tard" not in everything

    for ctx, _phone, phone_outside, _js in phones.values():
        ctx.close()
        assert phone_outside == []
    context.close()
    assert outside == []


def _end_timer(app) -> None:
    """Move the running timer's end into the past with the facilitator's own action, as if a minute ran."""
    from sqlalchemy import select

    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.models import Board, utcnow
    from piu_app.services import workshops as service

    with app.app_context(), writing():
        board = db.session.scalar(select(Board).where(Board.deleted.is_(False)))
        service.change_state(board, "timer", minutes=1, now=utcnow() - dt.timedelta(seconds=61))
        db.session.commit()
        assert service.timer_ended(board)
