"""A link to one record (an experiment's innovation…) when the register holds many of them: a name
typed and matched on the server instead of a select (a select of 100 000 innovations weighs megabytes,
and the one cut at 2 000 hid every innovation after the 2 000th)."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.forms import records as record_forms
from piu_app.registry import RECORD_TYPES
from piu_app.services import records
from tests.conftest import csrf_token
from tests.factories import make_innovation

EXPERIMENTS = RECORD_TYPES["experiments"]


@pytest.fixture
def many(app: Flask, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Four innovations, and a select allowed up to two: as if the register held 100 000."""
    monkeypatch.setattr(record_forms, "REF_SELECT_MAX", 2)
    with app.test_request_context(), writing():
        made = [make_innovation(name=name) for name in
                ("Lampadaires solaires", "Compostage de quartier", "Bus à la demande", "Bus à la demande")]
        db.session.commit()
        return {f"{i.name}#{n}": i.uid for n, i in enumerate(made)}


def _post(client, data: dict, path: str = "/experiments/new"):
    return client.post(path, data={"csrf_token": csrf_token(client, path), "title": "Essai rue Carnot",
                                   "status": "planned", "visibility": "network", **data})


def _innovation_of(app: Flask, response) -> str | None:
    uid = re.search(r"/experiments/([0-9a-f-]{36})$", response.headers["Location"]).group(1)
    with app.app_context():
        innovation = records.get(EXPERIMENTS, uid).innovation
        return innovation.uid if innovation else None


def test_beyond_the_limit_the_form_asks_for_a_name_with_suggestions_not_a_select(app, editor, many):
    html = editor.get("/experiments/new").get_data(as_text=True)
    tag = re.search(r'<input[^>]+name="innovation"[^>]*>', html).group(0)
    assert 'data-lookup="/innovations/lookup.json"' in tag and 'list="innovation__list"' in tag
    assert '<select id="innovation"' not in html and "Compostage de quartier" not in html
    assert "js/picker.js" in html and "<script>" not in html


def test_an_exact_name_links_the_record(app, editor, many):
    response = _post(editor, {"innovation": "  compostage DE quartier "})
    assert response.status_code == 302
    assert _innovation_of(app, response) == many["Compostage de quartier#1"]


def test_a_name_two_records_share_asks_which_then_links_the_chosen_one(app, editor, many):
    response = _post(editor, {"innovation": "Bus à la demande"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Plusieurs fiches correspondent" in html
    offered = re.findall(r'name="innovation__uid" value="([0-9a-f-]{36})"', html)
    assert sorted(offered) == sorted([many["Bus à la demande#2"], many["Bus à la demande#3"]])
    response = _post(editor, {"innovation": "Bus à la demande", "innovation__uid": many["Bus à la demande#3"]})
    assert response.status_code == 302 and _innovation_of(app, response) == many["Bus à la demande#3"]


def test_an_unknown_name_is_refused_with_a_clear_message_and_nothing_is_created(app, editor, many):
    with app.app_context():
        before = records.list_records(EXPERIMENTS).total
    response = _post(editor, {"innovation": "Drones livreurs"})
    assert response.status_code == 400
    assert "Aucune fiche « Drones livreurs »" in response.get_data(as_text=True)
    with app.app_context():
        assert records.list_records(EXPERIMENTS).total == before


def test_a_forged_uid_does_not_link_another_record_than_the_name_says(app, editor, many):
    response = _post(editor, {"innovation": "Lampadaires solaires", "innovation__uid": many["Bus à la demande#2"]})
    assert response.status_code == 302 and _innovation_of(app, response) == many["Lampadaires solaires#0"]


def test_an_experiment_without_its_required_innovation_is_refused(app, editor, many):
    response = _post(editor, {"innovation": ""})
    assert response.status_code == 400
    assert re.search(r'Innovation testée.*?class="error"', response.get_data(as_text=True), re.S)


def test_the_edit_page_shows_the_linked_name_and_saving_it_unchanged_keeps_the_link(app, editor, many):
    chosen = many["Bus à la demande#3"]
    response = _post(editor, {"innovation": "Bus à la demande", "innovation__uid": chosen})
    uid = re.search(r"/experiments/([0-9a-f-]{36})$", response.headers["Location"]).group(1)
    html = editor.get(f"/experiments/{uid}/edit").get_data(as_text=True)
    assert re.search(r'name="innovation"[^>]*value="Bus à la demande"', html)
    assert f'name="innovation__uid" value="{chosen}"' in html
    version = re.search(r'name="version"[^>]*value="(\d+)"', html) or re.search(r'value="(\d+)"[^>]*name="version"', html)
    path = f"/experiments/{uid}/edit"
    response = editor.post(path, data={"csrf_token": csrf_token(editor, path), "title": "Essai rue Carnot",
                                       "status": "planned", "visibility": "network", "version": version.group(1),
                                       "innovation": "Bus à la demande", "innovation__uid": chosen})
    assert response.status_code == 302
    with app.app_context():
        assert records.get(EXPERIMENTS, uid).innovation.uid == chosen


def test_starting_from_an_innovation_page_fills_its_name(app, editor, many):
    uid = many["Lampadaires solaires#0"]
    html = editor.get(f"/experiments/new?innovation={uid}").get_data(as_text=True)
    assert re.search(r'name="innovation"[^>]*value="Lampadaires solaires"', html)
    assert f'name="innovation__uid" value="{uid}"' in html


def test_with_few_records_the_link_is_still_a_select(app, editor):
    with app.test_request_context(), writing():
        make_innovation(name="Lampadaires solaires")
        db.session.commit()
    html = editor.get("/experiments/new").get_data(as_text=True)
    assert '<select id="innovation"' in html and "Lampadaires solaires" in html
