"""Carriers and people picked while creating a record: a typed name, matched on the server (no JavaScript),
the matches or "create new" offered on the next screen, and the small JSON lookup that suggests names."""

from __future__ import annotations

import re

from flask import Flask

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.registry import RECORD_TYPES
from piu_app.services import records
from tests.conftest import csrf_token
from tests.factories import make_innovation, make_organisation

INNOVATION = {"name": "Éclairage public solaire", "deployment_stage": "pilot", "visibility": "network"}
CARRIER = "pick__carriers__0"


def _orgs(app: Flask) -> dict[str, str]:
    with app.test_request_context(), writing():
        found = {o.name: o.uid for o in (make_organisation(name="Lumisol"),
                                         make_organisation(name="Lumière d'Afrique"),
                                         make_organisation(name="Propre & Vert", org_type="sme", is_startup=False))}
        db.session.commit()
        return found


def _post(client, data: dict, path: str = "/innovations/new"):
    return client.post(path, data={"csrf_token": csrf_token(client, path), **data})


def _carriers(app: Flask, response) -> list[tuple[str, str, bool]]:
    uid = re.search(r"/innovations/([0-9a-f-]{36})$", response.headers["Location"]).group(1)
    with app.app_context():
        record = records.get(RECORD_TYPES["innovations"], uid)
        return [(link.organisation.name, link.role, link.organisation.draft) for link in record.carrier_links]


def _innovation_count(app: Flask) -> int:
    with app.app_context():
        return records.list_records(RECORD_TYPES["innovations"]).total


def test_the_new_form_offers_link_pickers_not_a_select_of_every_organisation(app, editor):
    _orgs(app)
    html = editor.get("/innovations/new").get_data(as_text=True)
    assert "Porteurs et partenaires" in html and f'name="{CARRIER}__q"' in html
    assert 'data-lookup="/organisations/lookup.json"' in html and "js/picker.js" in html
    assert "Lumisol" not in html  # no list of every organisation in the page
    assert "<script>" not in html  # the CSP forbids inline scripts: the enhancement is a static file


def test_an_exact_name_links_at_once_with_its_role(app, editor):
    _orgs(app)
    response = _post(editor, {**INNOVATION, f"{CARRIER}__q": "  lumisol ", f"{CARRIER}__role": "carrier",
                              "pick__carriers__1__q": "Propre & Vert", "pick__carriers__1__role": "distributor"})
    assert response.status_code == 302
    assert sorted(_carriers(app, response)) == [("Lumisol", "carrier", False), ("Propre & Vert", "distributor", False)]


def test_a_partial_name_offers_the_matches_on_the_next_screen_then_links_the_one_chosen(app, editor):
    uids = _orgs(app)
    page = _post(editor, {**INNOVATION, f"{CARRIER}__q": "Lum", f"{CARRIER}__role": "co_developer"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Quelle fiche pour « Lum » ?" in html and "Précisez quelle fiche lier" in html
    lumiere = uids["Lumière d'Afrique"]
    assert f'value="{uids["Lumisol"]}"' in html and f'value="{lumiere}"' in html
    assert "Créer une nouvelle fiche « Lum »" in html and 'value="Éclairage public solaire"' in html  # kept
    assert _innovation_count(app) == 0  # nothing saved until the user has chosen
    response = _post(editor, {**INNOVATION, f"{CARRIER}__q": "Lum", f"{CARRIER}__role": "co_developer",
                              f"{CARRIER}__choice": uids["Lumière d'Afrique"]})
    assert response.status_code == 302
    assert _carriers(app, response) == [("Lumière d'Afrique", "co_developer", False)]


def test_an_unknown_name_is_created_as_a_draft_once_its_type_is_chosen(app, editor):
    _orgs(app)
    page = _post(editor, {**INNOVATION, f"{CARRIER}__q": "Soleil des Dunes", f"{CARRIER}__role": "carrier"})
    html = page.get_data(as_text=True)
    assert "Aucune fiche ne porte ce nom." in html and "Type de structure" in html
    again = _post(editor, {**INNOVATION, f"{CARRIER}__q": "Soleil des Dunes", f"{CARRIER}__role": "carrier",
                           f"{CARRIER}__choice": "new"})  # the organisation's type is required
    assert again.status_code == 200 and "Choisissez une valeur pour créer la fiche." in again.get_data(as_text=True)
    response = _post(editor, {**INNOVATION, f"{CARRIER}__q": "Soleil des Dunes", f"{CARRIER}__role": "carrier",
                              f"{CARRIER}__choice": "new", f"{CARRIER}__new__org_type": "startup"})
    assert response.status_code == 302
    assert _carriers(app, response) == [("Soleil des Dunes", "carrier", True)]
    assert "créée en brouillon" in editor.get(response.headers["Location"]).get_data(as_text=True)


def test_skip_leaves_the_name_out_and_a_person_is_split_into_given_and_family_name(app, editor):
    _orgs(app)
    response = _post(editor, {**INNOVATION, f"{CARRIER}__q": "Lum", f"{CARRIER}__choice": "skip",
                              f"{CARRIER}__role": "carrier"})
    assert response.status_code == 302 and _carriers(app, response) == []
    with app.test_request_context(), writing():
        experiment = records.create(RECORD_TYPES["experiments"], {"title": "Pilote", "status": "ongoing",
                                                                  "innovation": make_innovation().uid}, username="t")
        db.session.commit()
        experiment_uid = experiment.uid
    response = _post(editor, {"title": "Retour du pilote", "experiment": experiment_uid, "visibility": "private",
                              "pick__people__0__q": "Awa Diop", "pick__people__0__role": "witness",
                              "pick__people__0__choice": "new"}, path="/lessons/new")
    assert response.status_code == 302
    with app.app_context():
        lesson = records.get(RECORD_TYPES["lessons"], response.headers["Location"].rsplit("/", 1)[1])
        assert [(p.person.given_name, p.person.family_name, p.role) for p in lesson.people_links] == [
            ("Awa", "Diop", "witness")]


def test_names_are_length_checked_and_a_forged_choice_is_asked_again(app, editor):
    _orgs(app)
    page = _post(editor, {**INNOVATION, f"{CARRIER}__q": "x" * 201, f"{CARRIER}__role": "carrier"})
    assert page.status_code == 400 and "200 caractères au plus" in page.get_data(as_text=True)
    page = _post(editor, {**INNOVATION, f"{CARRIER}__q": "Lumisol", f"{CARRIER}__role": "carrier",
                          f"{CARRIER}__choice": "00000000-0000-4000-8000-000000000000"})
    assert page.status_code == 302  # an unknown uid is dropped; the exact name then decides
    page = _post(editor, {**INNOVATION, f"{CARRIER}__q": "Lumisol", f"{CARRIER}__role": "not-a-role"})
    assert page.status_code == 400
    assert _innovation_count(app) == 1


def test_the_json_lookup_suggests_a_few_names_to_any_reader(app, reader, client):
    _orgs(app)
    with app.test_request_context(), writing():
        for n in range(12):
            make_organisation(name=f"Lumen {n:02d}")
        db.session.commit()
    data = reader.get("/organisations/lookup.json?q=lum").get_json()
    assert len(data["results"]) == 8 and data["results"][0]["title"] == "Lumen 00"
    assert {"uid", "title", "detail"} <= set(data["results"][0])
    assert reader.get("/organisations/lookup.json?q=vert").get_json()["results"][0]["title"] == "Propre & Vert"
    assert reader.get("/organisations/lookup.json?q=l").get_json() == {"results": []}
    assert reader.get("/organisations/lookup.json?q=" + "x" * 201).status_code == 400
    assert client.get("/organisations/lookup.json?q=lum").status_code in (302, 401)


def _detail_post(client, uid: str, data: dict):
    return client.post(f"/innovations/{uid}/links/carriers",
                       data={"csrf_token": csrf_token(client, f"/innovations/{uid}"), **data})


def test_on_a_records_page_a_typed_name_links_or_leads_to_the_screen_of_choices(app, editor):
    uids = _orgs(app)
    with app.test_request_context(), writing():
        innovation = make_innovation().uid
        db.session.commit()
    page = editor.get(f"/innovations/{innovation}").get_data(as_text=True)
    assert 'name="carriers-q"' in page and "Propre &amp; Vert" not in page  # no select of every organisation
    response = _detail_post(editor, innovation, {"carriers-q": "propre & vert", "carriers-role": "carrier"})
    assert response.status_code == 302
    choices = _detail_post(editor, innovation, {"carriers-q": "Lum", "carriers-role": "lab"})
    html = choices.get_data(as_text=True)
    assert choices.status_code == 200 and "Quelle fiche pour « Lum » ?" in html and uids["Lumisol"] in html
    response = _detail_post(editor, innovation, {"carriers-q": "Lum", "carriers-role": "lab",
                                                 "carriers-target": uids["Lumisol"]})
    assert response.status_code == 302
    missing = _detail_post(editor, innovation, {"carriers-q": "Hydrocarte", "carriers-role": "carrier",
                                                "carriers-target": "new"})
    assert "Choisissez une valeur pour créer la fiche." in missing.get_data(as_text=True)
    response = _detail_post(editor, innovation, {"carriers-q": "Hydrocarte", "carriers-role": "carrier",
                                                 "carriers-target": "new", "carriers-new__org_type": "startup"})
    assert response.status_code == 302
    with app.app_context():
        record = records.get(RECORD_TYPES["innovations"], innovation)
        assert sorted((x.organisation.name, x.role) for x in record.carrier_links) == [
            ("Hydrocarte", "carrier"), ("Lumisol", "lab"), ("Propre & Vert", "carrier")]
    assert _detail_post(editor, innovation, {"carriers-q": "x" * 201, "carriers-role": "carrier"}).status_code == 302
    with app.app_context():
        assert len(records.get(RECORD_TYPES["innovations"], innovation).carrier_links) == 3
