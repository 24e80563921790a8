"""The set-up page for a real register: not the demonstration's city, the country by name or code,
the password rule before the first submit, required fields marked (on every form)."""

from __future__ import annotations

import pytest

from piu_app import create_app, upgrade_database
from piu_app.database import writing
from piu_app.extensions import db
from piu_app.services import InvalidInputError
from piu_app.services import instance as instance_service
from tests.conftest import csrf_token


@pytest.fixture
def fresh(tmp_path):
    app = create_app({"TESTING": True}, instance_path=tmp_path / "fresh")
    upgrade_database(app, backup=False)
    return app


def _post(client, **values):
    data = {"csrf_token": csrf_token(client, "/setup"), "city_name": "Ville de Ziguinchor", "country_code": "SN",
            "instance_code": "ziguinchor", "admin_username": "awa", "admin_password": "un-mot-de-passe",
            "admin_password_confirm": "un-mot-de-passe"} | values
    return client.post("/setup", data=data)


def test_the_page_shows_the_password_rule_and_marks_required_fields_before_any_submit(fresh):
    page = fresh.test_client().get("/setup").get_data(as_text=True)
    assert "10 caractères au moins." in page
    assert page.count("(obligatoire)") >= 5  # city, country, code, administrator, password
    assert 'maxlength="2"' not in page  # « Senegal » is never cut to « Se » while typed


@pytest.mark.parametrize("typed", ["Sénégal", "senegal", "Senegal", "sn", " SN "])
def test_the_country_is_a_name_or_a_code_kept_as_its_iso_code(fresh, typed):
    response = _post(fresh.test_client(), country_code=typed)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with fresh.app_context():
        assert instance_service.current().country_code == "SN"


def test_an_unknown_country_is_refused_clearly(fresh):
    response = _post(fresh.test_client(), country_code="Senegall")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "Pays inconnu : « Senegall »" in page
    with fresh.app_context():
        assert instance_service.current() is None


def test_english_names_and_the_ivory_coast(fresh):
    with fresh.app_context():
        assert instance_service.country_code_of("Côte d'Ivoire") == "CI"
        assert instance_service.country_code_of("cote d’ivoire") == "CI"
        assert instance_service.country_code_of("France") == "FR"
        assert instance_service.country_code_of("European Union") is None
        assert instance_service.country_code_of("") is None


def test_after_the_demonstration_the_page_does_not_offer_the_fictional_city(fresh):
    from piu_app.services import demo

    with fresh.test_request_context(), writing():
        demo.load()
        db.session.commit()
    page = fresh.test_client().get("/setup").get_data(as_text=True)
    assert "démonstration" in page and "dossier de données vide" in page
    assert 'value="Ville de Port-Sable"' not in page


def test_the_configure_service_refuses_what_names_no_country(fresh):
    with fresh.test_request_context(), writing(), pytest.raises(InvalidInputError) as refused:
        instance_service.configure(city_name="V", country_code="Sen", instance_code="ma-ville")
    assert "country_code" in refused.value.field_errors


def test_record_forms_mark_the_fields_the_register_requires(editor):
    page = editor.get("/innovations/new").get_data(as_text=True)
    name_label = page[page.index('for="name"'):page.index('for="name"') + 200]
    assert "(obligatoire)" in name_label
    tagline_label = page[page.index('for="tagline"'):page.index('for="tagline"') + 200]
    assert "(obligatoire)" not in tagline_label.split("</label>")[0]
