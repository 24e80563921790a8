"""Every page of the demonstration register at 375 px (a phone) and at 1280 px (a desktop or projector).

At 375 px, with JavaScript off: no page scrolls sideways, the page's heading is in the first screen
(the menu is folded behind its "Menu" button), and links, buttons and fields are at least 44 px tall.
At 1280 px the menu is one bar of groups, without a button. One browser, one login per size, one tab.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from piu_app.registry import RECORD_TYPES
from tests.browser.conftest import serve

pytestmark = pytest.mark.browser
PASSWORD = "un-mot-de-passe-solide"
PHONE = {"width": 375, "height": 667}
DESKTOP = {"width": 1280, "height": 800}
TOUCH = 44
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "spreadsheets"

# What a page measures of itself: sideways scroll, where its heading is, and the interactive elements
# shorter than a finger. A link inside a sentence (a <p>, a table cell or definition with other text) is
# exempt, as in WCAG 2.5.8; every other visible link, button, field and summary is measured.
MEASURE = """(touch) => {
  const main = document.querySelector('main') || document.body;
  const heading = main.querySelector('h1') || main;
  const short = [];
  const inSentence = (el) => {
    const parent = el.parentElement;
    if (!parent || !['P', 'SPAN', 'SMALL', 'EM', 'STRONG'].includes(parent.tagName)) return false;
    return [...parent.childNodes].some(n => n !== el && n.nodeType === 3 && n.textContent.trim().replace(/[·()|,:;]/g, '').trim());
  };
  for (const el of document.querySelectorAll('a[href], button, input, select, textarea, summary')) {
    if (el.type === 'hidden' || el.type === 'checkbox' || el.type === 'radio') continue;
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(el).visibility === 'hidden') continue;
    if (el.closest('.skip, footer')) continue;
    if (el.tagName === 'A' && inSentence(el)) continue;
    if (box.height < touch - 0.5) short.push(`${el.tagName.toLowerCase()} "${(el.innerText || el.name || el.id || '').trim().slice(0, 40)}" ${Math.round(box.height)}px`);
  }
  return {scrollWidth: document.scrollingElement.scrollWidth, innerWidth: innerWidth, innerHeight: innerHeight,
          headingBottom: heading.getBoundingClientRect().bottom, short: short};
}"""


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory) -> Iterator[str]:
    from piu_app import create_app, upgrade_database
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.services import demo
    from piu_app.services import users as user_service

    home: Path = tmp_path_factory.mktemp("phone") / "data"
    app = create_app({"SECRET_KEY": "browser-tests"}, instance_path=home)
    upgrade_database(app, backup=False)
    with app.test_request_context(), writing():
        demo.load()
        _a_workshop()
        user_service.create(username="fatou", password=PASSWORD, role="admin")
        db.session.commit()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    with serve(home) as url:
        yield url


def _a_workshop() -> None:
    """A workshop with its agenda, a participant, and a board with notes, a theme and a pending note."""
    from piu_app.services import workshops as ws

    workshop = ws.create_workshop({"title": "Freins et leviers de l'innovation urbaine", "visibility": "network",
                                   "objective": "Comprendre ce qui freine l'innovation urbaine sur le territoire."})
    ws.add_session(workshop, {"kind": "testimonies", "title": "Témoignage d'une start-up", "start_time": "09:30",
                              "speakers": "Awa Diop"}, username="demo")
    ws.add_participant(workshop, name="Awa Diop", organisation="Lumisol", actor_group="carriers", consent=True)
    board = ws.create_board(workshop, "barriers")
    ws.update_board(board, {"title": board.title, "prompt": board.prompt, "anonymous": True, "moderated": True,
                            "votes_per_participant": 5, "votes_per_note": 1, "note_max_length": 280})
    ws.change_state(board, "open")
    notes = [ws.add_note(board, text=text, category_uid=board.categories[i % 5].uid) for i, text in enumerate((
        "Les délais de la commande publique sont trop longs", "La commande publique est trop lente",
        "Les élus ont peur du risque", "Culture du risque absente chez les élus", "Pas de foncier disponible"))]
    ws.create_theme(board, "Commande publique", [notes[0].uid])
    notes[4].pending = True


def _measure(page, path: str, problems: list[str]) -> None:
    m = page.evaluate(MEASURE, TOUCH)
    if m["scrollWidth"] > m["innerWidth"]:
        problems.append(f"{path}: scrolls sideways ({m['scrollWidth']} px wide at {m['innerWidth']})")
    if m["headingBottom"] > m["innerHeight"]:
        problems.append(f"{path}: the heading ends at {m['headingBottom']:.0f} px, below the first screen")
    if m["short"]:
        problems.append(f"{path}: shorter than {TOUCH} px: {', '.join(m['short'][:6])}")


def _logged_in(browser, base: str, viewport: dict, *, javascript: bool = True, measure: list[str] | None = None):
    context = browser.new_context(viewport=viewport, locale="fr-FR", java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(base + "/login")
    if measure is not None:
        _measure(page, "/login", measure)
    page.fill("#username", "fatou")
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    assert page.url.rstrip("/") == base
    return context, page


def _paths(page, base: str) -> list[str]:
    """Every page reachable from the menu, and for each list: a record, its form, its history; the new-record
    form; an innovation's sheet and peers; a search; the exchange keys; an administrator's vocabulary.
    (The lists are read with the page's session but not rendered: quicker.)"""
    page.goto(base + "/")
    menu = [urlsplit(a.get_attribute("href")).path for a in page.locator("nav.menu a").all()]
    paths = list(dict.fromkeys(menu))
    lists = [f"/{key.replace('_', '-')}/" for key in RECORD_TYPES]
    assert set(lists) <= set(menu), set(lists) - set(menu)  # every list is in the menu
    for listing in lists:
        html = page.request.get(base + listing).text()
        record = re.search(rf'<td><a href="({re.escape(listing)}[0-9a-f-]{{36}})"', html)
        if record:
            paths += [record[1], record[1] + "/history"]
            if f'href="{record[1]}/edit"' in page.request.get(base + record[1]).text():  # not a peer city's record
                paths.append(record[1] + "/edit")
        if f'href="{listing}new"' in html:
            paths.append(listing + "new")
    innovation = next(p for p in paths if re.fullmatch(r"/innovations/[0-9a-f-]{36}", p))
    html = page.request.get(base + innovation).text()
    paths += re.findall(r'href="(/peers/innovations/[0-9a-f-]{36})"', html)[:1]
    # a backup, so that the backups page lists one and its restore page can be seen (nothing is restored)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    page.request.post(base + "/backups/now", form={"csrf_token": token})
    paths += re.findall(r'href="(/backups/[^"/]+/restore)"', page.request.get(base + "/backups").text())[:1]
    # an import's page (the demonstration imports its peer city's bundle)
    paths += re.findall(r'href="(/imports/[0-9a-f-]{36})"', page.request.get(base + "/imports/").text())[:1]
    # the report of an exchange import, when the demonstration brings one
    paths += re.findall(r'href="(/exchange/imports/[0-9a-f-]{36})"', page.request.get(base + "/exchange/").text())[:1]
    # a workshop, its form, a board, its rules and the promotion of a note
    workshop = re.search(r'href="(/workshops/[0-9a-f-]{36})"', page.request.get(base + "/workshops/").text())[1]
    board = re.search(r'href="(/workshops/[0-9a-f-]{36}/boards/[0-9a-f-]{36})"', page.request.get(base + workshop).text())[1]
    note = re.search(r'name="note" value="([0-9a-f-]{36})"', page.request.get(base + board).text())[1]
    paths += [workshop, workshop + "/edit", board, board + "/settings", f"{board}/promote?note={note}"]
    paths += [innovation + "/sheet", "/search?q=solaire", "/search?q=eau&type=experiments", "/peers/themes/water_sanitation",
              "/exchange/keys", "/exchange/conflicts", "/admin/vocabularies/themes", "/admin/vocabularies/currency",
              "/account", "/innovations/?trash=1", "/innovations/?sort=updated&visibility=public",
              "/barriers/most-cited"]
    return list(dict.fromkeys(paths))


def test_every_page_fits_a_phone_and_the_menu_is_a_bar_on_a_desktop(browser, demo_server):
    base = demo_server
    context, page = _logged_in(browser, base, DESKTOP)
    paths = _paths(page, base)
    assert len(paths) >= 60, paths

    # a desktop / projector: the menu is one bar, its groups visible, no "Menu" button
    page.goto(base + "/innovations/")
    assert not page.locator("nav.menu summary").is_visible()
    groups = page.locator("nav.menu .menu-label:visible")
    assert groups.all_inner_texts() == ["REGISTRE", "ATELIERS", "RÉSEAU", "ADMINISTRATION"]  # capitals by CSS
    assert page.locator("nav.menu a:visible").count() == len(RECORD_TYPES) + 11  # the account is in the header here
    bar = page.locator("nav.menu").bounding_box()
    assert bar["width"] >= 1200 and bar["height"] <= 110, bar  # at most three lines, across the page
    assert page.locator("nav.menu a[aria-current=page]").inner_text() == "Innovations"
    assert page.locator("main table.list th").count() >= 3  # the list is a table here, not cards
    context.close()

    # a phone, without JavaScript: every page, the log-in and error pages too
    context, page = _logged_in(browser, base, PHONE, javascript=False, measure=(problems := []))
    assert any("/backups/" in p and p.endswith("/restore") for p in paths), paths
    for path in [*paths, "/no-such-page"]:
        response = page.goto(base + path)
        assert response is not None and response.status == (404 if path == "/no-such-page" else 200), path
        _measure(page, path, problems)
    assert not problems, "\n".join(problems)

    # the folded menu: the button opens it (no JavaScript), its links are finger-sized
    page.goto(base + "/innovations/")
    assert page.locator("nav.menu summary").is_visible()
    assert not page.locator("nav.menu a").first.is_visible()
    page.click("nav.menu summary")
    links = page.locator("nav.menu a")
    assert links.first.is_visible() and links.last.is_visible()
    assert all(links.nth(i).bounding_box()["height"] >= TOUCH for i in range(links.count()))
    assert page.locator("nav.menu button:text-is('Se déconnecter')").is_visible()  # the header's is hidden here
    page.click("nav.menu a:text-is('Expérimentations')")
    page.wait_for_load_state()  # the click returns once the page is committed, before it is parsed
    assert urlsplit(page.url).path == "/experiments/"
    # a list is a pile of cards: the title and the sharing level of each record, no table header
    assert page.locator("main table.list thead").bounding_box()["height"] <= 1  # kept for screen readers only
    card = page.locator("main table.list tbody tr").first
    assert card.locator("td a").first.is_visible() and card.locator(".vis").is_visible()
    assert card.bounding_box()["width"] <= PHONE["width"]
    # the filters fold too, and open when a filter is in use
    assert not page.locator("form.filters").is_visible()
    page.click("main summary")
    assert page.locator("form.filters select").first.is_visible()
    page.goto(base + "/experiments/?visibility=public")
    assert page.locator("form.filters").is_visible()
    context.close()


def test_the_sheet_draws_each_score_as_a_share_of_the_whole_scale_on_screen_and_on_paper(browser, demo_server):
    """A 3/5 bar is three fifths of the scale, 5/5 the whole of it (they were all capped at 60 %); the bar is
    drawn with a border so that a print without background graphics keeps it."""
    base = demo_server
    context, page = _logged_in(browser, base, DESKTOP)
    html = page.request.get(base + "/innovations/").text()
    measured: dict[float, float] = {}
    for uid in re.findall(r'<td><a href="/innovations/([0-9a-f-]{36})"', html):
        page.goto(f"{base}/innovations/{uid}/sheet")
        for cell in page.locator(".scores td").all():
            average = float(cell.inner_text().split("/")[0].strip().replace(",", "."))
            track = cell.locator(".track").bounding_box()["width"]
            measured[average] = cell.locator(".bar").bounding_box()["width"] / track
        if len(measured) >= 3:
            break
    assert len(measured) >= 3, measured
    for average, share in measured.items():
        assert share == pytest.approx(round(average * 2) / 10, abs=0.02), (average, share)  # by half points
    assert max(measured.values()) > min(measured.values())

    page.emulate_media(media="print")
    bar = page.locator(".scores .bar").first
    assert bar.evaluate("e => parseFloat(getComputedStyle(e).borderTopWidth)") >= 5
    assert bar.bounding_box()["width"] > 0
    context.close()


def test_the_import_steps_fit_a_phone(browser, demo_server, tmp_path):
    """The pages behind a form: a spreadsheet's column mapping and preview (the sample register of projects),
    an exchange bundle's preview (the city's own bundle, exported then sent back)."""
    base = demo_server
    context, page = _logged_in(browser, base, PHONE, measure=(problems := []))
    page.goto(base + "/spreadsheets/")
    page.select_option("main select[name=record_type]", "innovations")
    page.set_input_files("main input[type=file]", str(SAMPLES / "registre-innovations-ville-exemple.csv"))
    page.click("main form button.primary")
    page.wait_for_load_state()  # the click returns once the next page is committed, before its style sheet
    assert "/spreadsheets/" in page.url and page.url.rstrip("/") != base + "/spreadsheets", page.url
    _measure(page, "spreadsheet: columns", problems)
    page.click("main form button.primary")
    page.wait_for_load_state()
    _measure(page, "spreadsheet: preview", problems)

    page.goto(base + "/exchange/")
    with page.expect_download() as download:
        page.click("main form[action$='/export'] button")
    bundle = tmp_path / "own.zip"
    download.value.save_as(bundle)
    page.set_input_files("main input[type=file]", str(bundle))
    page.click("main form[enctype='multipart/form-data'] button")
    page.wait_for_load_state()
    assert "/exchange/import" in page.url, page.url
    _measure(page, "exchange: preview", problems)
    context.close()
    assert not problems, "\n".join(problems)
