"""The history of a record reads in words: labels, amounts, sharing levels, yes/no, linked titles."""

from __future__ import annotations

from piu_app.registry import RECORD_TYPES
from piu_app.services import records

from ..conftest import csrf_token
from ..factories import make_experiment, make_innovation, make_organisation

INNOVATIONS = RECORD_TYPES["innovations"]
EXPERIMENTS = RECORD_TYPES["experiments"]


def _rows(entry) -> dict[str, tuple[str, str]]:
    return {row.label: (row.before, row.after) for row in entry.rows}


def test_an_update_reads_in_words_not_codes(ctx):
    innovation = make_innovation(innovation_kind="product_service", visibility="private")
    records.update(INNOVATIONS, innovation, {"price_indication": "2500000", "visibility": "network",
                                             "open_source": True, "themes": ["energy_climate", "mobility"]},
                   username="awa")
    labels = {("innovation_kind", "product_service"): "Produit ou service", ("theme", "energy_climate"): "Énergie",
              ("theme", "mobility"): "Mobilité"}
    entries = records.history_in_words(INNOVATIONS, innovation, labels)
    update, create = entries
    assert update.action == "modification" and create.action == "création"
    rows = _rows(update)
    assert rows["Indication de prix"] == ("", "2\u202f500\u202f000")
    assert rows["Niveau de partage"] == ("Privé (local)", "Réseau")
    assert rows["Logiciel libre / open source"] == ("Non", "Oui")
    assert rows["Thématiques"] == ("Énergie", "Énergie, Mobilité")
    assert _rows(create)["Type d'innovation"] == ("", "Produit ou service")
    shown = repr([(r.before, r.after) for e in entries for r in e.rows])
    for code in ("product_service", "energy_climate", "2500000.0", "network", "True"):
        assert code not in shown


def test_links_read_by_the_title_of_the_linked_record_and_the_role_in_words(ctx):
    org = make_organisation(name="Lumisol")
    innovation = make_innovation()
    records.add_link(INNOVATIONS, innovation, "carriers", target_uid=org.uid, role="carrier", username="t")
    experiment = make_experiment(innovation, budget_total=1234.5)
    entry = records.history_in_words(INNOVATIONS, innovation, {("carrier_role", "carrier"): "Porteur"})[0]
    assert _rows(entry)["Porteurs et partenaires"][1] == "Lumisol (Porteur)"
    created = _rows(records.history_in_words(EXPERIMENTS, experiment, {})[0])
    assert created["Innovation testée"][1] == innovation.name
    assert created["Budget total"][1] == "1\u202f234,5"


def test_the_history_page_speaks_the_readers_language(app, editor):
    with app.test_request_context():
        from piu_app.database import writing
        from piu_app.extensions import db

        with writing():
            innovation = make_innovation(visibility="private")
            records.update(INNOVATIONS, innovation, {"visibility": "network", "price_indication": "2500000"},
                           username="editor")
            db.session.commit()
            uid = innovation.uid
    page = editor.get(f"/innovations/{uid}/history").get_data(as_text=True)
    assert "Réseau" in page and "2\u202f500\u202f000" in page and "Énergie, climat, bâtiments, éclairage" in page
    assert ">network<" not in page and "energy_climate" not in page and "2500000.0" not in page
    editor.post("/lang/en", data={"csrf_token": csrf_token(editor, "/"), "next": "/"})
    page = editor.get(f"/innovations/{uid}/history").get_data(as_text=True)
    assert "Network" in page and "2,500,000" in page and "Energy, climate, buildings, lighting" in page and "Sharing level" in page
