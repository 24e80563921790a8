"""The facilitator's pages through the test client: readers read, editors prepare and facilitate."""

from __future__ import annotations

import html
import io
import re
import time

import pytest

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.models import Board, NoteTheme, StickyNote, Workshop, WorkshopParticipant
from piu_app.services import PermissionDeniedError
from piu_app.services import workshops as ws
from tests.conftest import csrf_token


def _post(client, path, data=None, **kw):
    data = {"csrf_token": csrf_token(client, "/account"), **(data or {})}
    return client.post(path, data=data, **kw)


def _one(model, **filters):
    return db.session.scalars(db.select(model).filter_by(**filters)).one()


@pytest.fixture
def workshop(app, editor):
    response = _post(editor, "/workshops/new", {"title": "Atelier des freins", "date": "2026-12-07",
                                                "format": "in_person", "visibility": "network",
                                                "programme": "piu", "organisers": ""})
    assert response.status_code == 302, re.findall(r'class="error">[^<]*', response.get_data(as_text=True))
    uid = response.headers["Location"].rsplit("/", 1)[-1]
    return uid


def _board(editor, workshop, template="barriers") -> str:
    response = _post(editor, f"/workshops/{workshop}/boards", {"template": template})
    assert response.status_code == 302
    return re.search(r"/boards/([0-9a-f-]{36})/settings", response.headers["Location"]).group(1)


def test_an_editor_prepares_a_workshop_and_a_reader_reads_it(app, editor, reader, workshop):
    page = editor.get(f"/workshops/{workshop}").get_data(as_text=True)
    assert "Atelier des freins" in page and "Créer le tableau" in page
    response = _post(editor, f"/workshops/{workshop}/sessions", {"kind": "testimonies", "title": "Témoignages",
                                                                  "start_time": "09:30", "speakers": "Awa Diop"})
    assert response.status_code == 302
    board = _board(editor, workshop)
    page = reader.get(f"/workshops/{workshop}").get_data(as_text=True)
    assert "Témoignages" in page and "Awa Diop" in page and "Freins à l&#39;innovation urbaine" in page
    assert "Créer le tableau" not in page and "Ajouter une séquence" not in page  # a reader reads only
    assert reader.get("/workshops/").status_code == 200
    assert reader.get(f"/workshops/{workshop}/boards/{board}").status_code == 200
    assert _post(reader, f"/workshops/{workshop}/boards", {"template": "needs"}).status_code == 403
    assert _post(reader, f"/workshops/{workshop}/boards/{board}/state", {"action": "open"}).status_code == 403
    assert reader.get(f"/workshops/{workshop}/boards/{board}/settings").status_code == 403


def test_the_workshop_form_refuses_hostile_values(app, editor):
    for bad in ({"title": "x" * 201}, {"title": "Bell \x07"}, {"title": "ok", "format": "on_mars"},
                {"title": "ok", "organisers": "Société inconnue"}):
        response = _post(editor, "/workshops/new", {"format": "in_person", "visibility": "network", **bad})
        assert response.status_code == 400, bad
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Workshop)) == 0


def test_the_board_rules_are_set_and_shown(app, editor, workshop):
    board = _board(editor, workshop)
    with app.app_context():
        categories = _one(Board, uid=board).categories
        data = {"title": "Freins", "prompt": "Quels freins ?", "anonymous": "y", "private_until_reveal": "y",
                "votes_per_participant": "3", "votes_per_note": "1", "note_max_length": "200",
                "timer_minutes": "7", "new_label": "Autres"}
        data.update({f"label-{c.uid}": c.label for c in categories})
    response = _post(editor, f"/workshops/{workshop}/boards/{board}/settings", data)
    assert response.status_code == 302
    page = editor.get(f"/workshops/{workshop}/boards/{board}").get_data(as_text=True)
    assert "écriture privée puis révélation" in page and "3 votes par participant" in page and "Autres" in page
    bad = _post(editor, f"/workshops/{workshop}/boards/{board}/settings", {**data, "votes_per_note": "9"})
    assert bad.status_code == 400 and "pas plus que les votes par participant" in bad.get_data(as_text=True)


def test_the_facilitator_runs_a_board_without_javascript(app, editor, workshop):
    board = _board(editor, workshop)
    base = f"/workshops/{workshop}/boards/{board}"
    assert _post(editor, base + "/state", {"action": "open"}).status_code == 302
    with app.app_context():
        column = _one(Board, uid=board).categories[0].uid
    for text in ("Les délais de la commande publique sont trop longs", "La commande publique est trop lente",
                 "Les élus ont peur du risque", "Culture du risque absente chez les élus"):
        assert _post(editor, base + "/notes", {"text": text, "category": column}).status_code == 302
    with app.app_context():
        notes = {n.text: n.uid for n in db.session.scalars(db.select(StickyNote))}
    long_slow = notes["La commande publique est trop lente"]
    # a vote typed for someone without a phone, a hidden note
    _post(editor, base + "/notes/action", {"vote_add": long_slow})
    _post(editor, base + "/notes/action", {"vote_add": long_slow})
    _post(editor, base + "/notes/action", {"hide": notes["Les élus ont peur du risque"]})
    page = editor.get(base).get_data(as_text=True)
    assert "Regroupements suggérés" in page and "Accepter ce groupe (2 post-it)" in page
    # accept the suggestion (the two notes about public procurement)
    keys = re.search(r'name="action" value="accept">\s*((?:<input type="hidden" name="notes" value="[^"]+">)+)', page)
    accepted = re.findall(r'value="([^"]+)"', keys.group(1))
    assert set(accepted) == {notes["Les délais de la commande publique sont trop longs"], long_slow}
    assert _post(editor, base + "/themes", {"action": "accept", "notes": accepted,
                                            "label": "Commande publique"}).status_code == 302
    # check a note and gather it in a new theme, then move it back out with the select
    risk = notes["Culture du risque absente chez les élus"]
    assert _post(editor, base + "/group", {"action": "new", "notes": [risk], "label": "Culture du risque"}
                 ).status_code == 302
    with app.app_context():
        themes = {t.label: t.uid for t in db.session.scalars(db.select(NoteTheme))}
        assert _one(StickyNote, uid=risk).theme_id is not None
    assert _post(editor, base + "/group", {"action": "move", "notes": [risk], "theme": themes["Commande publique"]}
                 ).status_code == 302
    assert _post(editor, base + "/themes", {"action": "rename", "theme": themes["Culture du risque"],
                                            "label": "Risque"}).status_code == 302
    assert _post(editor, base + "/themes", {"action": "merge", "theme": themes["Commande publique"],
                                            "themes": [themes["Culture du risque"]]}).status_code == 302
    _post(editor, base + "/themes", {"action": "synthesis", "theme": themes["Commande publique"],
                                     "synthesis": "Des délais trop longs."})
    _post(editor, base + "/themes", {"action": "board_synthesis", "synthesis": "Synthèse du tableau."})
    page = editor.get(base).get_data(as_text=True)
    section = page[page.index(f'id="t-{themes["Commande publique"]}"'):page.index('id="sans-theme"')]
    assert section.count('<li class="note') == 3 and "(3 post-it, 2 votes)" in section
    assert "Des délais trop longs." in section and "Synthèse du tableau." in page
    assert "Les élus ont peur du risque" in page[page.index('id="masques"'):]  # hidden: shown to the facilitator
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(NoteTheme)) == 1


def test_refusals_are_said_and_change_nothing(app, editor, workshop):
    board = _board(editor, workshop)
    base = f"/workshops/{workshop}/boards/{board}"
    response = _post(editor, base + "/notes", {"text": "Escape \x1b"}, follow_redirects=True)
    assert "Caractère de contrôle invisible interdit" in response.get_data(as_text=True)
    response = _post(editor, base + "/group", {"action": "new", "notes": ["not-a-note"], "label": "X"},
                     follow_redirects=True)
    assert "rechargez la page" in response.get_data(as_text=True)
    response = _post(editor, base + "/state", {"action": "timer", "minutes": "100000"}, follow_redirects=True)
    assert "entre 1 et 240" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(StickyNote)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(NoteTheme)) == 0
    assert editor.get(f"/workshops/{workshop}/boards/00000000-0000-4000-8000-000000000000").status_code == 404


def test_participants_imported_typed_and_consent_changed(app, editor, workshop):
    csv_ok = "nom;organisation;groupe d'acteurs;consentement\nAwa Diop;Lumisol;porteurs;oui\nJean;Ville;buyers;non\n"
    response = _post(editor, f"/workshops/{workshop}/participants/import",
                     {"file": (io.BytesIO(csv_ok.encode()), "liste.csv")}, content_type="multipart/form-data",
                     follow_redirects=True)
    assert "2 participants ajoutés" in response.get_data(as_text=True)
    bad = csv_ok + "Zoé;;martiens;oui\n"
    response = _post(editor, f"/workshops/{workshop}/participants/import",
                     {"file": (io.BytesIO(bad.encode()), "liste.csv")}, content_type="multipart/form-data",
                     follow_redirects=True)
    assert "Rien n&#39;a été importé" in response.get_data(as_text=True) and "ligne 4" in response.get_data(
        as_text=True)
    _post(editor, f"/workshops/{workshop}/participants", {"name": "Ana Lopez", "actor_group": "territory",
                                                          "consent": "y"})
    with app.app_context():
        jean = _one(WorkshopParticipant, name="Jean").uid
        assert db.session.scalar(db.select(db.func.count()).select_from(WorkshopParticipant)) == 3
    _post(editor, f"/workshops/{workshop}/participants/update", {"consent": jean})
    page = editor.get(f"/workshops/{workshop}").get_data(as_text=True)
    assert "Participants <small>(3)</small>" in page
    with app.app_context():
        assert _one(WorkshopParticipant, name="Jean").consent_named


def test_a_theme_is_promoted_to_a_barrier_and_the_workshop_lists_it(app, editor, workshop):
    board = _board(editor, workshop)
    base = f"/workshops/{workshop}/boards/{board}"
    _post(editor, base + "/notes", {"text": "Délais des marchés publics"})
    with app.app_context():
        note = db.session.scalars(db.select(StickyNote)).one().uid
    _post(editor, base + "/group", {"action": "new", "notes": [note], "label": "Commande publique lente"})
    with app.app_context():
        theme = db.session.scalars(db.select(NoteTheme)).one().uid
    page = editor.get(f"{base}/promote?theme={theme}").get_data(as_text=True)
    assert 'value="Commande publique lente"' in page and "Délais des marchés publics" in page
    response = _post(editor, f"{base}/promote", {"theme": theme, "kind": "barrier", "title": "Commande publique lente",
                                                 "description": "Délais"})
    assert response.status_code == 302
    page = editor.get(f"/workshops/{workshop}").get_data(as_text=True)
    assert "Versé au registre" in page and "Frein : " in page and "Commande publique lente" in page
    with app.app_context():
        barrier = db.session.scalars(db.select(NoteTheme)).one().promoted_uid
    assert f'href="/barriers/{barrier}"' in page  # the workshop page links to what it produced
    board_page = editor.get(base).get_data(as_text=True)
    assert f'href="/barriers/{barrier}"' in board_page  # and so does the theme


def test_the_board_page_stays_light_and_fast_with_500_notes(app, editor, workshop):
    board = _board(editor, workshop)
    with app.test_request_context(), writing():
        record = _one(Board, uid=board)
        ws.change_state(record, "open")
        db.session.add_all(StickyNote(board=record, text=f"Frein numéro {i} : délais, financement, élus",
                                      client_key=f"k{i}", category=record.categories[i % 5], position=i)
                           for i in range(500))
        db.session.commit()
    editor.get(f"/workshops/{workshop}/boards/{board}")  # warm up
    start = time.perf_counter()
    response = editor.get(f"/workshops/{workshop}/boards/{board}")
    elapsed = time.perf_counter() - start
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.count('<li class="note') == 500
    assert len(html.encode()) < 450_000, len(html.encode())  # under 800 bytes a note, with its five actions
    assert elapsed < 2.0, elapsed
    assert "<script>" not in html and " style=" not in html  # the CSP allows no inline script or style


def test_a_workshop_of_another_city_is_read_only_and_its_room_never_opens(app, editor, reader, workshop):
    """A peer's workshop (imported from its bundle) can be read, never run or changed here."""
    from piu_app.room.listener import listener_for
    from piu_app.services import board_import
    from piu_app.services import room as room_service

    board_uid = _board(editor, workshop)
    with app.app_context():
        category = _one(Board, uid=board_uid).categories[0].uid
    _post(editor, f"/workshops/{workshop}/boards/{board_uid}/state", {"action": "open"})
    _post(editor, f"/workshops/{workshop}/boards/{board_uid}/notes", {"text": "Délais de paiement", "category": category})

    def count(model):
        return db.session.scalar(db.select(db.func.count()).select_from(model))

    with app.app_context():
        with writing():
            _one(Workshop, uid=workshop).origin_instance = "lyon-peer"  # as an import leaves it
        db.session.commit()
        notes_before = count(StickyNote)
        note = _one(StickyNote, text="Délais de paiement").uid
        workshop_id = _one(Workshop, uid=workshop).id

    response = _post(editor, f"/workshops/{workshop}/room/open", follow_redirects=True)
    assert "ne peut être modifiée que là-bas" in response.get_data(as_text=True)
    assert not listener_for(app).is_open(workshop_id)
    refused = [
        (f"/workshops/{workshop}/boards/{board_uid}/notes", {"text": "Intrus", "category": category}),
        (f"/workshops/{workshop}/boards/{board_uid}/group", {"action": "new", "label": "Thème", "notes": note}),
        (f"/workshops/{workshop}/boards/{board_uid}/notes/action", {"vote_add": note}),
        (f"/workshops/{workshop}/boards/{board_uid}/themes", {"action": "create", "label": "Autre"}),
        (f"/workshops/{workshop}/boards/{board_uid}/state", {"action": "close"}),
        (f"/workshops/{workshop}/boards", {"template": "barriers"}),
        (f"/workshops/{workshop}/sessions", {"title": "Séquence", "kind": "plenary"}),
        (f"/workshops/{workshop}/synthesis", {"synthesis": "Réécrite"}),
        (f"/workshops/{workshop}/participants", {"name": "Camille"}),
    ]
    for path, data in refused:
        page = _post(editor, path, data, follow_redirects=True).get_data(as_text=True)
        assert "ne peut être modifiée que là-bas" in page, path
    detail = editor.get(f"/workshops/{workshop}")  # still readable, with no way to run or change it
    assert detail.status_code == 200 and "Ouvrir ou fermer la salle" not in detail.get_data(as_text=True)
    room = editor.get(f"/workshops/{workshop}/room").get_data(as_text=True)
    assert "sa salle ne s'ouvre pas ici" in html.unescape(room) and "/room/open" not in room
    assert reader.get(f"/workshops/{workshop}/boards/{board_uid}").status_code == 200
    with app.test_request_context():
        assert count(StickyNote) == notes_before
        assert count(NoteTheme) == 0 and count(Board) == 1
        assert _one(StickyNote, uid=note).vote_count == 0
        assert _one(Workshop, uid=workshop).synthesis == "" and _one(Workshop, uid=workshop).join_code == ""
        with pytest.raises(PermissionDeniedError):
            room_service.ensure_join_code(_one(Workshop, uid=workshop))
        with pytest.raises(PermissionDeniedError):
            board_import.preview(_one(Board, uid=board_uid), board_import.parse(b"texte\nUn post-it\n"))
