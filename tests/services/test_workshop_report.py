"""The workshop's compte-rendu: its content (grouping, votes, consent, anonymity, hidden and pending
notes left out) and each format: the printable page, DOCX, Markdown, CSV (formula-safe) and JSON."""

from __future__ import annotations

import csv
import io
import json

import docx
from flask import Flask

from piu_app.models import Workshop, db
from piu_app.services import workshop_report as report
from tests.conftest import login
from tests.workshop_data import make_workshop


def _texts(r: report.Report) -> list[str]:
    return [n.text for b in r.boards for g in b.themes + b.unthemed for n in g.notes]


def test_notes_are_grouped_by_theme_then_category_with_votes(ctx) -> None:
    rows = make_workshop()
    r = report.build(rows["workshop"])
    freins, idees = r.boards
    assert [g.label for g in freins.themes] == ["Règles d'achat", "Financement"]
    rules, money = freins.themes
    assert [(n.text, n.votes, n.category) for n in rules.notes] == [
        ("Les marchés publics sont trop lourds", 5, "Côté acheteurs"), ("Peur du risque juridique", 3, "Côté acheteurs")]
    assert rules.votes == 8 and rules.synthesis.startswith("Le code")
    assert [(n.text, n.votes) for n in money.notes] == [("Trésorerie des jeunes entreprises", 2)]
    # Notes in no theme are kept (unvoted too), under their category.
    assert {g.label: [(n.text, n.votes) for n in g.notes] for g in freins.unthemed} == {
        "Côté innovateurs": [("=HYPERLINK(\"http://evil\",\"clic\")", 1)], "Territoire": [("Pas de lieu pour tester", 0)]}
    assert [(c.label, c.notes, c.votes) for c in freins.categories] == [
        ("Côté acheteurs", 2, 8), ("Côté innovateurs", 2, 3), ("Territoire", 1, 0)]
    assert (freins.note_count, freins.vote_count) == (5, 11)
    assert idees.note_count == 2 and r.note_count == 7
    assert [s.title for s in r.agenda] == ["Témoignages d'innovateurs", "Atelier post-it"]
    assert r.agenda[0].speakers == ["Awa Diop"] and r.organisers == ["Métropole de Test"]
    assert r.place == "Maison de l'innovation"


def test_hidden_and_pending_notes_are_left_out(ctx) -> None:
    make_workshop()
    r = report.build(db.session.scalars(db.select(Workshop)).one())
    assert "Insulte cachée par l'animation" not in _texts(r)
    assert "Note en attente de modération" not in _texts(r)


def test_participants_are_named_only_with_consent_and_counted_otherwise(ctx) -> None:
    rows = make_workshop()
    r = report.build(rows["workshop"])
    assert [(p.name, p.organisation, p.facilitator) for p in r.named] == [
        ("Fanny Anim", "Métropole de Test", True), ("Alice Martin", "Ville de Test", False)]
    assert r.counted == [("Porteurs (start-ups, entreprises, laboratoires)", 2)]
    assert r.participant_total == 4


def test_a_note_names_its_author_only_on_a_named_board_with_consent(ctx) -> None:
    rows = make_workshop()
    r = report.build(rows["workshop"])
    freins, idees = r.boards
    assert all(n.author == "" for g in freins.themes + freins.unthemed for n in g.notes)  # anonymous board
    by_text = {n.text: n for g in idees.unthemed for n in g.notes}
    assert by_text["Un bac à sable réglementaire"].author == "Alice Martin"
    assert by_text["Un guichet unique"].author == ""  # Bob did not consent: his actor group only
    assert by_text["Un guichet unique"].actor_group == "Porteurs (start-ups, entreprises, laboratoires)"


def test_an_anonymous_board_never_names_even_a_consenting_author(ctx) -> None:
    rows = make_workshop()
    rows["notes"]["marches"].author_participant = rows["participants"][0]  # should not happen; still not named
    db.session.flush()
    r = report.build(rows["workshop"])
    assert r.boards[0].themes[0].notes[0].author == ""
    assert "Alice Martin" not in report.markdown(r).split("## Idées")[0]


def test_the_report_is_available_with_no_board_and_no_note(ctx) -> None:
    w = Workshop(title="Atelier vide")
    db.session.add(w)
    db.session.flush()
    r = report.build(w)
    assert r.boards == [] and r.named == [] and r.participant_total == 0
    assert "# Atelier vide" in report.markdown(r)
    assert docx.Document(io.BytesIO(report.docx_bytes(r))).paragraphs[0].text == "Atelier vide"
    assert json.loads(report.notes_json(r))["boards"] == []
    assert report.notes_csv(r).decode("utf-8-sig").count("\r\n") == 1  # the header only


def _docx_lines(data: bytes) -> list[tuple[str, str]]:
    return [(p.style.name, p.text) for p in docx.Document(io.BytesIO(data)).paragraphs]


def test_docx_has_notes_under_their_theme_headings_with_vote_counts(ctx) -> None:
    rows = make_workshop()
    lines = _docx_lines(report.docx_bytes(report.build(rows["workshop"])))
    texts = [t for _s, t in lines]
    rules = texts.index("Thème : Règles d'achat (8 votes)")
    money = texts.index("Thème : Financement (2 votes)")
    assert lines[rules][0] == lines[money][0] == "Heading 2"
    assert texts[rules + 1] == "Le code de la commande publique fait peur."
    assert texts[rules + 2] == "Les marchés publics sont trop lourds — Côté acheteurs · 5 votes"
    assert texts[rules + 3] == "Peur du risque juridique — Côté acheteurs · 3 votes"
    assert texts[money + 1] == "Trésorerie des jeunes entreprises — Côté innovateurs · 2 votes"
    assert "Pas de lieu pour tester — aucun vote" in texts  # unvoted notes too
    assert not any("Insulte" in t or "en attente" in t or "Bob Secret" in t or "Carla" in t for t in texts)
    participants = texts.index("Participants")
    assert texts[participants + 1:participants + 5] == [
        "Fanny Anim (Métropole de Test) — animation", "Alice Martin (Ville de Test)", "Porteurs (start-ups, entreprises, laboratoires) : 2",
        "4 participants en tout."]


def test_markdown_escapes_what_participants_wrote(ctx) -> None:
    rows = make_workshop()
    rows["notes"]["unvoted"].text = "[clic](http://evil) <script>alert(1)</script> # titre"
    db.session.flush()
    md = report.markdown(report.build(rows["workshop"]))
    assert "[clic](http" not in md and "<script>" not in md
    assert r"\[clic\]\(http://evil\) \<script\>alert\(1\)\</script\> \# titre" in md
    assert "### Thème : Règles d'achat (8 votes)" in md  # headings are ours


def test_csv_is_formula_safe_and_lists_every_visible_note(ctx) -> None:
    rows = make_workshop()
    data = report.notes_csv(report.build(rows["workshop"]))
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    header, body = table[0], table[1:]
    assert header[:5] == ["Tableau", "Catégorie", "Thème", "Note", "Votes"]
    notes = {r[3]: r for r in body}
    assert len(body) == 7 and "Insulte cachée par l'animation" not in notes
    assert "'=HYPERLINK(\"http://evil\",\"clic\")" in notes  # a leading apostrophe: shown, never run
    assert not any(cell and cell[0] in "=+-@\t\r" for r in body for cell in r)
    assert notes["Les marchés publics sont trop lourds"][4] == "5"
    assert notes["Un bac à sable réglementaire"][6] == "Alice Martin" and notes["Un guichet unique"][6] == ""


def test_json_carries_notes_and_counts_but_no_one_who_did_not_consent(ctx) -> None:
    rows = make_workshop()
    data = report.notes_json(report.build(rows["workshop"]))
    text = data.decode("utf-8")
    parsed = json.loads(text)
    assert parsed["title"] == "Freins à l'innovation urbaine" and parsed["date"] == "2026-12-07"
    assert parsed["boards"][0]["themes"][0]["notes"][0]["votes"] == 5
    assert parsed["boards"][0]["vote_count"] == 11
    assert parsed["counted"] == [{"actor_group": "Porteurs (start-ups, entreprises, laboratoires)", "count": 2}]
    for secret in ("Bob Secret", "Carla", "StartUp Cachée", "x" * 64, "Insulte", "device", "author_key"):
        assert secret not in text


def test_report_pages_and_downloads(app: Flask) -> None:
    with app.test_request_context():
        from piu_app.database import writing
        with writing():
            uid = make_workshop()["workshop"].uid
            db.session.commit()
    reader = login(app.test_client(), "reader")
    page = reader.get(f"/workshops/{uid}/report")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Les marchés publics sont trop lourds" in html and "Bob Secret" not in html and "Insulte" not in html
    assert "<script>" not in html.split("</head>")[1]  # no inline script (CSP)
    assert "Règles d&#39;achat" in html
    for fmt, kind in (("docx", "wordprocessingml"), ("md", "text/markdown"), ("csv", "text/csv"), ("json", "json")):
        response = reader.get(f"/workshops/{uid}/report.{fmt}")
        assert response.status_code == 200 and kind in response.content_type
        assert "attachment" in response.headers["Content-Disposition"]
    docx.Document(io.BytesIO(reader.get(f"/workshops/{uid}/report.docx").data))
    assert reader.get(f"/workshops/{uid}/report.exe").status_code == 404
    assert reader.get("/workshops/00000000-0000-4000-8000-000000000000/report").status_code == 404
    assert app.test_client().get(f"/workshops/{uid}/report").status_code == 302  # login first
