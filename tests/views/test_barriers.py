"""The barrier catalogue through HTTP: list with filters, form, detail, lessons citing barriers by name,
« Cité par », and the ranking of the most cited barriers."""

from __future__ import annotations

import re

from flask import Flask

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.models import Board, StickyNote, Workshop
from piu_app.registry import BARRIERS, LESSONS
from piu_app.services import barriers as barrier_service
from piu_app.services import records
from tests.conftest import csrf_token
from tests.factories import make, make_foreign


def _post(client, path: str, data: dict):
    return client.post(path, data={"csrf_token": csrf_token(client, "/barriers/"), **data})


def _setup(app: Flask) -> dict[str, str]:
    """Three barriers and one lesson; returns their uids by name."""
    with app.test_request_context(), writing():
        found = {
            "paiement": barrier_service.create("Délais de paiement trop longs", actor_group="buyer_carrier_relation",
                                               nature="funding_business_model", themes=["economy_jobs"],
                                               username="editor").uid,
            "paiement2": barrier_service.create("Délais de paiement des subventions", actor_group="buyers",
                                                nature="funding_business_model", username="editor").uid,
            "foncier": barrier_service.create("Foncier introuvable", actor_group="territory", nature="land_space",
                                              username="editor").uid,
            "lesson": make("lessons", title="Éclairage solaire : la maintenance d'abord").uid,
        }
        db.session.commit()
        return found


def _cited(app: Flask, lesson_uid: str) -> list[tuple[str, bool]]:
    with app.app_context():
        lesson = records.get(LESSONS, lesson_uid)
        return sorted((b.label, b.draft) for b in lesson.barriers)


def test_the_register_menu_lists_barriers_and_the_list_filters_them(app, reader):
    uids = _setup(app)
    page = reader.get("/barriers/").get_data(as_text=True)
    assert ">Freins</a>" in page and "Freins les plus cités" in page
    assert "Délais de paiement trop longs" in page and "Relation acheteur-porteur" in page and "3 fiches" in page
    page = reader.get("/barriers/?actor_group=territory").get_data(as_text=True)
    assert "Foncier introuvable" in page and "Délais de paiement" not in page
    page = reader.get("/barriers/?nature=funding_business_model").get_data(as_text=True)
    assert "2 fiches" in page and "Foncier introuvable" not in page
    page = reader.get("/barriers/?themes=economy_jobs").get_data(as_text=True)
    assert "1 fiche" in page and "Délais de paiement trop longs" in page
    detail = reader.get(f"/barriers/{uids['paiement']}").get_data(as_text=True)
    assert "Économie, commerce, emploi" in detail and "Financement / modèle économique" in detail
    assert "Aucun retour d'expérience ni atelier ne cite ce frein" in detail


def test_an_editor_creates_a_barrier_with_the_form_and_reads_its_history(app, editor):
    response = _post(editor, "/barriers/new", {
        "label": "Cycles de décision trop lents", "actor_group": "carriers", "nature": "timing",
        "levers": "Annoncer le calendrier réel", "visibility": "public"})
    assert response.status_code == 302
    uid = response.headers["Location"].rsplit("/", 1)[1]
    page = editor.get(f"/barriers/{uid}").get_data(as_text=True)
    assert "Temporalités (cycles de décision vs start-up)" in page and "Annoncer le calendrier réel" in page
    history = editor.get(f"/barriers/{uid}/history").get_data(as_text=True)
    assert "Porteurs (start-ups, entreprises, laboratoires)" in history and "Leviers connus" in history
    refused = _post(editor, "/barriers/new", {"label": "", "visibility": "public"})
    assert refused.status_code == 400 and "Ce champ est obligatoire." in refused.get_data(as_text=True)
    refused = _post(editor, "/barriers/new", {"label": "Météo", "nature": "weather", "visibility": "public"})
    assert refused.status_code == 400 and "pas un choix valide" in refused.get_data(as_text=True)
    assert "1 fiche" in editor.get("/barriers/").get_data(as_text=True)


def test_a_lesson_cites_barriers_by_name_and_the_barrier_says_who_cites_it(app, editor):
    uids = _setup(app)
    path = f"/lessons/{uids['lesson']}"
    page = editor.get(path).get_data(as_text=True)
    assert "Freins rencontrés" in page and 'name="barriers-q"' in page
    assert 'data-lookup="/barriers/lookup.json"' in page and "js/picker.js" in page

    # an exact name (whatever the case and spaces) links at once
    response = _post(editor, f"{path}/citations/barriers", {"barriers-q": "  foncier INTROUVABLE "})
    assert response.status_code == 302
    assert _cited(app, uids["lesson"]) == [("Foncier introuvable", False)]

    # two barriers match: the next screen asks which one, or to create it
    response = _post(editor, f"{path}/citations/barriers", {"barriers-q": "Délais de paiement"})
    choice = response.get_data(as_text=True)
    assert response.status_code == 200 and "Quelle fiche pour « Délais de paiement » ?" in choice
    assert uids["paiement"] in choice and uids["paiement2"] in choice and 'value="new"' in choice
    _post(editor, f"{path}/citations/barriers", {"barriers-q": "Délais de paiement", "barriers-target": uids["paiement"]})
    # a new name becomes a draft barrier to complete
    _post(editor, f"{path}/citations/barriers", {"barriers-q": "Pas de mécanicien local", "barriers-target": "new"})
    assert _cited(app, uids["lesson"]) == [("Délais de paiement trop longs", False), ("Foncier introuvable", False),
                                           ("Pas de mécanicien local", True)]

    lesson_page = editor.get(path).get_data(as_text=True)
    assert f'href="/barriers/{uids["paiement"]}"' in lesson_page
    barrier_page = editor.get(f"/barriers/{uids['paiement']}").get_data(as_text=True)
    assert "Cité par" in barrier_page and "Éclairage solaire : la maintenance d&#39;abord" in barrier_page
    assert "Cité 1 fois" in barrier_page
    history = editor.get(f"{path}/history").get_data(as_text=True)
    assert "Freins rencontrés" in history and "Délais de paiement trop longs" in history

    response = _post(editor, f"{path}/citations/barriers/{uids['paiement']}/remove", {})
    assert response.status_code == 302
    assert ("Délais de paiement trop longs", False) not in _cited(app, uids["lesson"])
    assert "Cité par" not in editor.get(f"/barriers/{uids['paiement']}").get_data(as_text=True)


def test_citing_is_refused_to_readers_without_csrf_and_on_another_citys_lesson(app, editor, reader):
    uids = _setup(app)
    path = f"/lessons/{uids['lesson']}/citations/barriers"
    assert reader.post(path, data={"csrf_token": csrf_token(reader, "/barriers/"),
                                   "barriers-q": "Foncier introuvable"}).status_code == 403
    assert editor.post(path, data={"barriers-q": "Foncier introuvable"}).status_code in (302, 400)
    assert _cited(app, uids["lesson"]) == []
    assert _post(editor, path, {"barriers-q": "Foncier\x00"}).status_code == 400
    assert _post(editor, path, {"barriers-q": "Foncier\x1b introuvable"}).status_code == 302  # refused in a flash
    assert _cited(app, uids["lesson"]) == []
    assert _post(editor, path, {"barriers-q": "x" * 201}).status_code == 302  # refused, said in a flash
    assert _cited(app, uids["lesson"]) == []
    assert _post(editor, f"/lessons/{uids['lesson']}/citations/nope", {"nope-q": "Foncier"}).status_code == 404
    with app.test_request_context(), writing():
        foreign = make_foreign("lessons", title="Leçon d'un pair").uid
        db.session.commit()
    response = _post(editor, f"/lessons/{foreign}/citations/barriers", {"barriers-q": "Foncier introuvable"})
    assert response.status_code == 403


def test_the_most_cited_page_ranks_barriers_with_where_they_were_cited(app, reader):
    uids = _setup(app)
    with app.test_request_context(), writing():
        territory = make("territories", name="Dune-Blanche", level="commune")
        lesson = records.get(LESSONS, uids["lesson"])
        foncier, paiement = records.get(BARRIERS, uids["foncier"]), records.get(BARRIERS, uids["paiement"])
        records.add_citation(LESSONS, lesson, "barriers", target_uid=foncier.uid, username="editor")
        records.add_citation(LESSONS, lesson, "barriers", target_uid=paiement.uid, username="editor")
        workshop = Workshop(title="Atelier de Dune-Blanche", origin_instance="dune-blanche", territory=territory)
        board = Board(workshop=workshop, title="Freins")
        db.session.add_all([workshop, board])
        db.session.flush()
        db.session.add_all([StickyNote(board=board, text=f"foncier {i}", client_key=f"k{i}", promoted_kind="barrier",
                                       promoted_uid=foncier.uid) for i in range(2)])
        db.session.commit()
    page = reader.get("/barriers/most-cited").get_data(as_text=True)
    assert page.index("Foncier introuvable") < page.index("Délais de paiement trop longs")
    assert "Délais de paiement des subventions" not in page  # never cited
    assert "dune-blanche" in page and "Ville de Test" in page and "Dune-Blanche" in page
    assert "(1 retour d'expérience, 2 post-it)" in page
    filtered = reader.get("/barriers/most-cited?actor_group=buyer_carrier_relation").get_data(as_text=True)
    assert "Délais de paiement trop longs" in filtered and "Foncier introuvable" not in filtered
    assert reader.get("/barriers/most-cited?actor_group=%00").status_code == 400  # a NUL: refused app-wide
    unknown = reader.get("/barriers/most-cited?actor_group=%1b&nature=" + "x" * 5000)
    assert unknown.status_code == 200 and "Foncier introuvable" in unknown.get_data(as_text=True)  # filters nothing
    detail = reader.get(f"/barriers/{uids['foncier']}").get_data(as_text=True)
    assert "Atelier de Dune-Blanche" in detail and "Cité 3 fois" in detail


def test_the_barrier_pages_read_in_english(app, reader):
    uids = _setup(app)
    reader.post("/lang/en", data={"csrf_token": csrf_token(reader, "/barriers/")})
    page = reader.get("/barriers/").get_data(as_text=True)
    assert "Barriers" in page and "Most cited barriers" in page and "Buyer–innovator relation" in page
    assert "Actor group" in reader.get(f"/barriers/{uids['paiement']}").get_data(as_text=True)
    assert "Most cited barriers" in reader.get("/barriers/most-cited").get_data(as_text=True)
    assert re.search(r"Barriers met", reader.get(f"/lessons/{uids['lesson']}").get_data(as_text=True))
