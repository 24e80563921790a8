"""The register through HTTP: create, edit, link, attach, delete and undo, history, sheet, search."""

from __future__ import annotations

import io
import re

from tests.conftest import csrf_token


def _post_form(client, path, data):
    return client.post(path, data={"csrf_token": csrf_token(client, path), **data})


def _uid_from(response) -> str:
    match = re.search(r"/([0-9a-f-]{36})$", response.headers["Location"])
    assert match, response.headers.get("Location")
    return match.group(1)


def test_create_edit_delete_undo_an_innovation(editor):
    response = _post_form(editor, "/innovations/new", {
        "name": "Éclairage public solaire", "tagline": "Lampadaires autonomes", "themes": ["energy_climate"],
        "deployment_stage": "pilot", "trl": "7", "price_indication": "685 000", "visibility": "network"})
    assert response.status_code == 302
    uid = _uid_from(response)
    page = editor.get(f"/innovations/{uid}").get_data(as_text=True)
    assert "Éclairage public solaire" in page and "Énergie, climat" in page and "685" in page

    edit = editor.get(f"/innovations/{uid}/edit").get_data(as_text=True)
    version = re.search(r'name="version"[^>]*value="(\d+)"', edit) or re.search(r'value="(\d+)"[^>]*name="version"', edit)
    response = _post_form(editor, f"/innovations/{uid}/edit", {
        "name": "Éclairage public solaire", "tagline": "Lampadaires autonomes et connectés",
        "deployment_stage": "early_deployment", "themes": ["energy_climate"], "visibility": "public",
        "version": version.group(1)})
    assert response.status_code == 302
    history = editor.get(f"/innovations/{uid}/history").get_data(as_text=True)
    assert "Lampadaires autonomes et connectés" in history and "editor" in history

    response = _post_form(editor, f"/innovations/{uid}/delete", {})
    assert response.status_code == 302
    listing = editor.get("/innovations/").get_data(as_text=True)
    assert "Annuler la suppression" in listing and "Éclairage public solaire" in listing  # flash only
    assert "0 fiche" in listing
    _post_form(editor, f"/innovations/{uid}/restore", {})
    assert "1 fiche" in editor.get("/innovations/").get_data(as_text=True)


def test_form_errors_are_shown_in_french_and_nothing_is_saved(editor):
    response = _post_form(editor, "/innovations/new", {"name": "", "trl": "12", "visibility": "network"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Ce champ est obligatoire." in page and "Valeur attendue entre 1 et 9." in page
    assert "0 fiche" in editor.get("/innovations/").get_data(as_text=True)


def test_stale_edit_is_refused_with_a_clear_message(editor):
    uid = _uid_from(_post_form(editor, "/innovations/new", {"name": "Abri", "visibility": "network"}))
    _post_form(editor, f"/innovations/{uid}/edit", {"name": "Abri 2", "visibility": "network", "version": "1"})
    response = _post_form(editor, f"/innovations/{uid}/edit", {"name": "Abri 3", "visibility": "network", "version": "1"})
    assert response.status_code == 409 and "a modifié cette fiche pendant que vous la lisiez" in response.get_data(as_text=True)


def test_journey_links_experiment_lesson_and_sheet(editor):
    org = _uid_from(_post_form(editor, "/organisations/new", {"name": "Lumisol", "org_type": "startup",
                                                              "is_startup": "y", "visibility": "network"}))
    inno = _uid_from(_post_form(editor, "/innovations/new", {"name": "Lampadaires solaires", "visibility": "network"}))
    _post_form(editor, f"/innovations/{inno}", {})  # GET-only page: a stray POST is refused
    response = editor.post(f"/innovations/{inno}/links/carriers", data={
        "csrf_token": csrf_token(editor, f"/innovations/{inno}"), "carriers-target": org, "carriers-role": "carrier"})
    assert response.status_code == 302
    new_exp = editor.get(f"/experiments/new?innovation={inno}").get_data(as_text=True)
    assert re.search(rf'<option selected value="{inno}"|<option value="{inno}" selected', new_exp)
    exp = _uid_from(_post_form(editor, "/experiments/new", {"title": "Pilote du port", "innovation": inno,
                                                            "status": "completed", "budget_total": "52 400 000",
                                                            "currency": "XOF", "visibility": "network"}))
    _post_form(editor, "/lessons/new", {"title": "Les batteries volées", "experiment": exp,
                                        "what_did_not": "Trois batteries volées", "visibility": "network"})
    detail = editor.get(f"/innovations/{inno}").get_data(as_text=True)
    assert "Pilote du port" in detail and "Les batteries volées" in detail and "Lumisol" in detail
    sheet = editor.get(f"/innovations/{inno}/sheet").get_data(as_text=True)
    assert "Lampadaires solaires" in sheet and "Trois batteries volées" in sheet and "sheet.css" in sheet
    assert "Lumisol" in editor.get(f"/organisations/{org}").get_data(as_text=True)


def test_attachments_upload_download_and_limits(app, editor):
    uid = _uid_from(_post_form(editor, "/procurements/new", {"title": "Marché éclairage",
                                                             "route": "innovative_direct_award", "visibility": "network"}))
    pdf = b"%PDF-1.4\n% cahier des charges\n"
    response = editor.post(f"/procurements/{uid}/documents", data={
        "csrf_token": csrf_token(editor, f"/procurements/{uid}"), "title": "CCTP", "doc_type": "functional_spec",
        "file": (io.BytesIO(pdf), "cctp.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 302
    page = editor.get(f"/procurements/{uid}").get_data(as_text=True)
    doc_uid = re.search(r'href="/documents/([0-9a-f-]{36})"', page).group(1)
    download = editor.get(f"/documents/{doc_uid}")
    assert download.data == pdf and "cctp.pdf" in download.headers["Content-Disposition"]
    stored = list((app.config["PIU_DATA_DIR"] / "uploads").rglob("*"))
    assert any(p.is_file() and p.read_bytes() == pdf for p in stored)

    response = editor.post(f"/procurements/{uid}/documents", data={
        "csrf_token": csrf_token(editor, f"/procurements/{uid}"), "doc_type": "other",
        "file": (io.BytesIO(b"MZ"), "virus.exe")}, content_type="multipart/form-data")
    assert response.status_code == 400 and "Type de fichier non accepté" in response.get_data(as_text=True)

    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = editor.post(f"/procurements/{uid}/documents", data={
        "csrf_token": "x", "doc_type": "other", "file": (io.BytesIO(b"x" * 5000), "big.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 413 and "trop volumineux" in response.get_data(as_text=True)


def test_search_page_finds_without_accents(editor):
    _post_form(editor, "/innovations/new", {"name": "Énergie solaire pour les écoles", "visibility": "network"})
    page = editor.get("/search?q=energie+solaire").get_data(as_text=True)
    assert "1 résultat" in page and "<mark>" in page and "Énergie solaire pour les écoles" in page


def test_search_page_writes_big_counts_as_readers_do_and_numbers_on_from_the_page(app, editor):
    app.config["PAGE_SIZE"] = 2
    for n in range(3):
        _post_form(editor, "/innovations/new", {"name": f"Fontaine n°{n}", "visibility": "network"})
    page = editor.get("/search?q=fontaine&page=2").get_data(as_text=True)
    assert "3 résultats" in page and '<ol class="results" start="3">' in page
    with app.test_request_context():
        number = app.jinja_env.filters["number"]
        assert number(113494) == "113\u202f494"  # French: a narrow no-break space between thousands
        from flask_babel import force_locale

        with force_locale("en"):
            assert number(113494) == "113,494"


def test_language_switch_to_english(editor):
    token = csrf_token(editor, "/")
    editor.post("/lang/en", data={"csrf_token": token, "next": "/"})
    page = editor.get("/").get_data(as_text=True)
    assert 'lang="en"' in page and "Dashboard" in page and "Tableau de bord" not in page


def test_undo_is_offered_once_and_for_the_record_deleted(editor):
    uid = _uid_from(_post_form(editor, "/innovations/new", {"name": "Abri", "visibility": "network"}))
    _post_form(editor, f"/innovations/{uid}/delete", {})
    page = editor.get("/innovations/").get_data(as_text=True)
    assert f'action="/innovations/{uid}/restore"' in page
    assert "Annuler la suppression" not in editor.get("/innovations/").get_data(as_text=True)


def test_editing_keeps_a_link_to_a_record_deleted_since(editor):
    inno = _uid_from(_post_form(editor, "/innovations/new", {"name": "Kiosques", "visibility": "network"}))
    exp = _uid_from(_post_form(editor, "/experiments/new", {"title": "Essai", "innovation": inno,
                                                            "status": "ongoing", "visibility": "network"}))
    _post_form(editor, f"/innovations/{inno}/delete", {})
    form = editor.get(f"/experiments/{exp}/edit").get_data(as_text=True)
    assert f'value="{inno}"' in form
    version = re.search(r'name="version"[^>]*value="(\d+)"', form) or re.search(r'value="(\d+)"[^>]*name="version"', form)
    response = _post_form(editor, f"/experiments/{exp}/edit", {"title": "Essai prolongé", "innovation": inno,
                                                               "status": "ongoing", "visibility": "network",
                                                               "version": version.group(1)})
    assert response.status_code == 302
    assert "Kiosques" in editor.get(f"/experiments/{exp}").get_data(as_text=True)


def test_absurd_numbers_and_pages_get_a_message_not_a_crash(editor):
    assert editor.get("/innovations/?page=99999999999999999999").status_code == 200
    assert editor.get("/search?q=a&page=0").status_code == 200
    response = _post_form(editor, "/territories/new", {"name": "T", "level": "commune",
                                                       "population": "100000000000000000000000", "visibility": "network"})
    assert response.status_code == 400 and "Nombre trop grand." in response.get_data(as_text=True)


def test_history_never_shows_contact_details(editor):
    uid = _uid_from(_post_form(editor, "/persons/new", {"given_name": "Fatou", "family_name": "Ndiaye",
                                                        "email": "fatou@port-sable.example", "phone": "+221 77 000 00 00",
                                                        "visibility": "private"}))
    history = editor.get(f"/persons/{uid}/history").get_data(as_text=True)
    assert "Ndiaye" in history and "fatou@port-sable.example" not in history and "+221" not in history


def test_another_citys_record_shows_its_origin_and_is_read_only(app, editor):
    from piu_app.database import writing
    from piu_app.extensions import db
    from tests.factories import make_innovation

    with app.test_request_context(), writing():
        foreign = make_innovation(name="Kiosques de Lagune-Bleue")
        foreign.origin_instance = "lagune-bleue"
        db.session.commit()
        uid = foreign.uid
    page = editor.get(f"/innovations/{uid}").get_data(as_text=True)
    assert "lagune-bleue" in page and f"/innovations/{uid}/edit" not in page
    assert "lagune-bleue" in editor.get("/innovations/").get_data(as_text=True)
    response = editor.get(f"/innovations/{uid}/edit")
    assert response.status_code == 403 and "ne peut être modifiée que là-bas" in response.get_data(as_text=True)
    assert "+ Nouvelle expérimentation" in page  # the city may still add its own records on top
