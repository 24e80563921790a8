"""A city's sheet of projects in one pass: columns guessed from headers and values, linked records
created by the same import (and removed by its undo), all or nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piu_app.exchange import spreadsheets as ss
from piu_app.extensions import db
from piu_app.models import ImportBatch, ImportChange, Innovation, Organisation, Place
from piu_app.registry import RECORD_TYPES
from piu_app.services import InvalidInputError
from piu_app.services import exchange as exchange_service
from piu_app.services import records as record_service
from tests.factories import make, make_innovation, make_organisation

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "spreadsheets"
REGISTER_CSV = "registre-innovations-ville-exemple.csv"
EXPERIMENTS = RECORD_TYPES["experiments"]
# What an officer answers for the statuses the list does not spell the same way.
STATUS_ANSWERS = {"status": {"pilote": "ongoing", "deploye": "completed", "idee": "planned", "arrete": "abandoned"}}


def _sample(name: str) -> ss.Table:
    return ss.read_table((SAMPLES / name).read_bytes())


def _guess(key: str, table: ss.Table) -> dict[str, str]:
    mapping = ss.suggest_mapping(RECORD_TYPES[key], table.headers, table.rows)
    return {h: t for h, t in mapping["columns"].items() if t}


def _count(model: type) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model).where(model.deleted.is_(False))) or 0


def _register_mapping(table: ss.Table) -> dict:
    mapping = ss.suggest_mapping(EXPERIMENTS, table.headers, table.rows)
    mapping["values"] = dict(STATUS_ANSWERS)
    return mapping


# --------------------------------------------------------------------------- guessing the columns

def test_the_register_sample_maps_every_project_column_for_experiments(ctx):
    table = _sample(REGISTER_CSV)
    assert _guess("experiments", table) == {
        "Nom du projet": "title",  # and the innovation tested, by the same name
        "Porteur": "innovation.link:carriers", "Type de structure": "innovation.link:carriers.org_type",
        "Thématique(s)": "innovation.themes", "Quartier / lieu": "place", "Date de début": "start_date",
        "Date de fin": "end_date", "Budget": "budget_total", "Devise": "currency", "Statut": "status",
        "Mode d'achat": "legal_framework", "Commentaires": "innovation.description"}


def test_a_project_name_is_not_an_organisation_name(ctx):
    guessed = _guess("organisations", _sample(REGISTER_CSV))
    assert "Nom du projet" not in guessed
    assert guessed["Porteur"] == "name" and guessed["Type de structure"] == "org_type"


def test_job_titles_go_to_the_job_title_not_to_the_role_list(ctx):
    guessed = _guess("persons", _sample("participants-atelier.csv"))
    assert guessed["Rôle"] == "job_title"
    assert guessed["Groupe d'acteurs"] == "role_kind" and guessed["NOM"] == "family_name"


def test_the_funding_aids_sample_keeps_its_guesses_with_values(ctx):
    assert _guess("funding_aids", _sample("aides-financements.xlsx")) == {
        "Intitulé de l'aide": "name", "Financeur": "financer", "Type d'aide": "aid_type",
        "Bénéficiaires": "eligibility", "Thématiques": "themes", "Date limite de dépôt": "submission_deadline",
        "Taux max (%)": "rate_max", "Montant max": "max_amount", "Lien / contact": "origin_url"}


def test_a_column_of_dates_is_not_a_name(ctx):
    table = ss.read_table(b"Nom;Projet\n12/03/2024;Compostage\n01/04/2024;Tricycles\n15/09/2023;Cartes\n")
    assert _guess("innovations", table) == {"Projet": "name"}


def test_values_place_a_column_whose_header_says_nothing(ctx):
    table = ss.read_table(b"Raison sociale;Genre;Joindre\nLumisol;Start-up;a@lumisol.example\n"
                          b"Carto;Association;b@carto.example\nVille;Commune;c@ville.example\n")
    assert _guess("organisations", table) == {"Raison sociale": "name", "Genre": "org_type"}
    persons = ss.read_table(b"Nom;Joindre\nDiallo;a@lumisol.example\nNdiaye;b@carto.example\n")
    assert _guess("persons", persons) == {"Nom": "family_name", "Joindre": "email"}
    phones = ss.read_table("Nom;Téléphone;Portable\nDiallo;+221 77 000 00 00;12\nNdiaye;01 23 45 67 89;13\n".encode())
    assert _guess("persons", phones) == {"Nom": "family_name", "Téléphone": "phone"}  # not "Portable": numbers


def test_a_remembered_mapping_wins_over_guesses(ctx):
    table = _sample(REGISTER_CSV)
    mapping = {"columns": {"Nom du projet": "title", "Statut": "stage"}, "values": {}}
    ss.remember_mapping(EXPERIMENTS, table.headers, mapping)
    assert _guess("experiments", table) == {"Nom du projet": "title", "Statut": "stage"}


# --------------------------------------------------------------------------- preview and linked records

def test_the_preview_proposes_each_missing_linked_record_once(ctx):
    make_organisation(name="Lumisol")
    table = _sample(REGISTER_CSV)
    report = ss.preview(EXPERIMENTS, table, _register_mapping(table))
    assert report.counts["error"] == 0 and report.importable == 15
    new = report.new_by_type()
    assert len(new["innovations"]) == 15
    carriers = {n.title for n in new["organisations"]}
    assert "Lumisol" not in carriers and {"Propre & Vert SARL", "Ville", "Chambre de commerce"} <= carriers
    places = {n.title: n for n in new["places"]}
    assert "Tout le territoire" not in places and places["Marché central"].values["place_type"] == "demonstrator_site"
    propre = next(n for n in new["organisations"] if n.title == "Propre & Vert SARL")
    assert propre.values["org_type"] == "startup"
    tricycles = next(n for n in new["innovations"] if n.title.startswith("Collecte"))
    assert tricycles.values["themes"] == ["waste_circular", "mobility"]
    assert tricycles.links["carriers"] == [propre.ref]
    details = ss.new_details(report)
    assert "Thématiques : Déchets, propreté, économie circulaire, Mobilité et logistique urbaine" in details[tricycles.ref]
    assert "Porteurs et partenaires : Propre & Vert SARL (à créer)" in details[tricycles.ref]
    assert any("reprend « Intitulé »" in n for n in report.notes)
    # Every linked record comes after the records it links to: the import creates them in this order.
    order = list(report.new)
    assert order.index(propre.ref) < order.index(tricycles.ref)


def test_a_linked_record_field_without_its_record_column_is_said_ignored(ctx):
    table = ss.read_table("Intitulé;Statut;Genre\nA;En cours;Start-up\n".encode())
    mapping = {"columns": {"Intitulé": "title", "Statut": "status", "Genre": "buyer.org_type"}}
    report = ss.preview(EXPERIMENTS, table, mapping)
    assert any("Acheteur / commanditaire" in n and "ignorée" in n for n in report.notes)
    assert report.counts["ok"] == 1


def test_statuses_written_in_the_masculine_are_recognised(ctx):
    table = ss.read_table("Intitulé;Statut\nA;Terminé\nB;terminées\nC;En cours\n".encode())
    mapping = {"columns": {"Intitulé": "title", "Statut": "status"}}
    rows = ss.preview(EXPERIMENTS, table, mapping).rows
    assert [r.values["status"] for r in rows] == ["completed", "completed", "ongoing"]


def test_the_user_may_pick_an_existing_record_or_leave_the_link_empty(ctx):
    existing = make("places", name="Grand marché", place_type="public_space")
    table = _sample(REGISTER_CSV)
    mapping = _register_mapping(table)
    mapping["values"]["place"] = {"marche central": existing.uid, "chu": ""}
    report = ss.preview(EXPERIMENTS, table, mapping)
    rows = {r.title: r for r in report.rows}
    assert rows["Collecte des déchets par tricycles électriques"].values["place"] == existing.uid
    assert "place" not in rows["Respirateurs low-cost (consortium santé)"].values
    assert {n.title for n in report.new_by_type()["places"]}.isdisjoint({"Marché central", "CHU"})


def test_a_linked_name_too_long_for_a_record_is_a_row_error(ctx):
    table = ss.read_table(f"Intitulé;Statut;Lieu\nA;En cours;{'x' * 201}\n".encode())
    report = ss.preview(EXPERIMENTS, table, {"columns": {"Intitulé": "title", "Statut": "status", "Lieu": "place"}})
    assert report.counts["error"] == 1 and "200 caractères" in report.rows[0].errors[0]
    assert report.new == {}  # only the rows to import bring linked records


def test_records_of_rows_not_imported_are_not_created(ctx):
    make("experiments", title="Déjà là", innovation=make_innovation(name="Autre").uid, status="ongoing")
    table = ss.read_table("Intitulé;Statut;Lieu\nDéjà là;En cours;Port\n".encode())
    report = ss.preview(EXPERIMENTS, table, {"columns": {"Intitulé": "title", "Statut": "status", "Lieu": "place"}})
    assert report.rows[0].duplicate and report.new == {}


# --------------------------------------------------------------------------- import, all or nothing, undo

def test_the_register_sample_imports_as_experiments_in_one_pass_and_undoes_whole(ctx):
    table = _sample(REGISTER_CSV)
    batch = ss.import_rows(EXPERIMENTS, table, _register_mapping(table), username="editor", filename=REGISTER_CSV,
                           sha256="abc")
    db.session.commit()
    tables = batch.report["tables"]
    assert tables["experiments"]["created"] == 15 and tables["innovations"]["created"] == 15
    assert tables["organisations"]["created"] == 16 and tables["places"]["created"] == 12
    changes = db.session.scalars(db.select(ImportChange).filter_by(batch_id=batch.id)).all()
    assert len(changes) == 15 + 15 + 16 + 12 == batch.report["linked_created"] + 15
    assert {c.record_type for c in changes} == {"experiments", "innovations", "organisations", "places"}

    exp = db.session.scalars(db.select(EXPERIMENTS.model).filter_by(
        title="Collecte des déchets par tricycles électriques")).one()
    assert exp.start_date == dt.date(2024, 3, 1) and exp.end_date is None
    assert exp.budget_total == 12_500_000 and exp.currency == "XOF" and exp.status == "ongoing"
    assert exp.place.name == "Marché central" and exp.legal_framework == "Convention d'expérimentation"
    assert exp.innovation.name == exp.title and exp.innovation.description == "Tournées 3 fois/semaine, 1 200 foyers"
    assert [c.organisation.name for c in exp.innovation.carrier_links] == ["Propre & Vert SARL"]
    assert exp.innovation.carrier_links[0].role == "carrier"
    assert exp.innovation.carrier_links[0].organisation.org_type == "startup"
    assert exp.innovation.carrier_links[0].organisation.actor_family == "carrier"
    ended = db.session.scalars(db.select(EXPERIMENTS.model).filter_by(title="Paiement mobile des taxes de marché")).one()
    assert ended.status == "abandoned" and ended.end_date == dt.date(2024, 2, 5)
    both = db.session.scalars(db.select(Innovation).filter_by(name='Tiers-lieu "La Fabrique du Port"')).one()
    assert sorted(c.organisation.name for c in both.carrier_links) == ["Chambre de commerce", "Ville"]

    exchange_service.undo(batch.uid, username="editor")
    db.session.commit()
    assert (_count(EXPERIMENTS.model), _count(Innovation), _count(Organisation), _count(Place)) == (0, 0, 0, 0)


def test_the_funding_aids_sample_creates_its_funders(ctx):
    table = _sample("aides-financements.xlsx")
    rt = RECORD_TYPES["funding_aids"]
    batch = ss.import_rows(rt, table, ss.suggest_mapping(rt, table.headers, table.rows), username="editor",
                           filename="aides-financements.xlsx", sha256="x")
    assert batch.report["tables"]["funding_aids"]["created"] == 6
    assert batch.report["tables"]["organisations"]["created"] == 6
    aid = db.session.scalars(db.select(rt.model).filter_by(name="Programme européen de coopération urbaine")).one()
    assert aid.financer.name == "Union européenne" and aid.financer.actor_family == "funder"
    assert aid.max_amount == 1_500_000 and aid.currency == "EUR"


def test_funding_and_contract_columns_become_records_of_each_experiment(ctx):
    table = ss.read_table("Projet;Statut;Aide obtenue;Financeur;Montant obtenu;Procédure;Titulaire\n"
                          "Tricycles;En cours;Fonds vert;Région Ouest;5 000 000 FCFA;Partenariat d'innovation;Propre & Vert\n"
                          "Cartes;Terminé;;;;;\n".encode("cp1252"))
    guessed = _guess("experiments", table)
    assert guessed["Aide obtenue"] == "+experiment_fundings.funding_aid"
    assert guessed["Financeur"] == "+experiment_fundings.funding_aid.financer"
    assert guessed["Montant obtenu"] == "+experiment_fundings.amount_obtained"
    mapping = {"columns": {**guessed, "Procédure": "+procurements.route", "Titulaire": "+procurements.supplier"}}
    report = ss.preview(EXPERIMENTS, table, mapping)
    assert report.counts["error"] == 0 and report.dependent_count == 2
    assert [len(r.dependents) for r in report.rows] == [2, 0]
    batch = ss.import_rows(EXPERIMENTS, table, mapping, username="editor", filename="p.csv", sha256="x")
    counts = {k: v["created"] for k, v in batch.report["tables"].items()}
    assert counts == {"experiments": 2, "innovations": 2, "funding_aids": 1, "organisations": 2,
                      "experiment_fundings": 1, "procurements": 1}
    exp = db.session.scalars(db.select(EXPERIMENTS.model).filter_by(title="Tricycles")).one()
    funding = db.session.scalars(db.select(RECORD_TYPES["experiment_fundings"].model)).one()
    assert funding.experiment_id == exp.id and funding.amount_obtained == 5_000_000 and funding.status == "obtained"
    assert funding.currency == "XOF" and funding.funding_aid.name == "Fonds vert"
    assert funding.funding_aid.financer.name == "Région Ouest" and funding.funding_aid.financer.actor_family == "funder"
    contract = db.session.scalars(db.select(RECORD_TYPES["procurements"].model)).one()
    assert contract.experiment_id == exp.id and contract.title == "Tricycles"
    assert contract.route == "innovation_partnership" and contract.supplier.name == "Propre & Vert"
    assert len(db.session.scalars(db.select(ImportChange).filter_by(batch_id=batch.id)).all()) == 9
    exchange_service.undo(batch.uid, username="editor")
    assert db.session.scalar(db.select(db.func.count()).select_from(RECORD_TYPES["experiment_fundings"].model)) == 0


def test_an_existing_carrier_is_linked_not_created_again(ctx):
    lumisol = make_organisation(name="Lumisol")
    table = _sample(REGISTER_CSV)
    batch = ss.import_rows(EXPERIMENTS, table, _register_mapping(table), username="editor", filename=REGISTER_CSV,
                           sha256="abc")
    assert batch.report["tables"]["organisations"]["created"] == 15
    innovation = db.session.scalars(db.select(Innovation).filter_by(name="Éclairage public solaire intelligent")).one()
    assert [c.organisation_id for c in innovation.carrier_links] == [lumisol.id]
    assert lumisol.org_type == "startup" and lumisol.version == 1  # an existing record is never changed


def test_a_bad_file_changes_nothing(ctx):
    table = _sample(REGISTER_CSV)
    mapping = ss.suggest_mapping(EXPERIMENTS, table.headers, table.rows)  # statuses not answered: rows in error
    with pytest.raises(InvalidInputError, match="ligne"):
        ss.import_rows(EXPERIMENTS, table, mapping, username="editor", filename=REGISTER_CSV, sha256="x")
    db.session.rollback()
    assert (_count(EXPERIMENTS.model), _count(Innovation), _count(Organisation), _count(Place)) == (0, 0, 0, 0)
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportBatch)) == 0


def test_a_failure_half_way_through_leaves_nothing_behind(ctx, monkeypatch):
    table = _sample(REGISTER_CSV)
    real_create = record_service.create
    calls = {"n": 0}

    def failing_create(rt, values, **kw):
        calls["n"] += 1
        if calls["n"] == 50:  # after the 43 linked records and some experiments were written
            raise InvalidInputError("disque plein", field_errors={"title": "refusé"})
        return real_create(rt, values, **kw)

    monkeypatch.setattr(record_service, "create", failing_create)
    with pytest.raises(InvalidInputError):
        ss.import_rows(EXPERIMENTS, table, _register_mapping(table), username="editor", filename=REGISTER_CSV, sha256="x")
    db.session.rollback()
    assert calls["n"] == 50
    assert (_count(EXPERIMENTS.model), _count(Innovation), _count(Organisation), _count(Place)) == (0, 0, 0, 0)
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportChange)) == 0


def test_every_record_type_a_city_keeps_in_a_table_is_importable(ctx):
    assert set(ss.IMPORTABLE) == set(RECORD_TYPES)
    for key in ss.IMPORTABLE:
        names = [t.name for t in ss.targets(RECORD_TYPES[key])]
        assert len(names) == len(set(names))


# --------------------------------------------------------------------------- properties of the new parsers

_WORD = st.text(alphabet="bcdfghjklmnpqrtvwxz", min_size=3, max_size=10).map(lambda w: "a" + w)


@given(_WORD)
def test_feminine_and_plural_forms_fold_to_one_stem(word):
    assert len({ss._stem(word + end) for end in ("e", "ee", "es", "ees", "s")} | {ss._stem(word)}) == 1


_DATES = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31))


@settings(max_examples=50)
@given(st.lists(_DATES, min_size=2, max_size=30), st.sampled_from(["%d/%m/%Y", "%Y-%m-%d", "date"]))
def test_a_column_of_dates_profiles_as_dates_whatever_their_writing(dates, fmt):
    cells = [d if fmt == "date" else d.strftime(fmt) for d in dates]
    profile = ss._profile(cells)
    assert profile.dates == 1.0 and profile.numbers == 0.0
    name = next(t for t in ss.targets(RECORD_TYPES["innovations"]) if t.name == "name")
    start = next(t for t in ss.targets(EXPERIMENTS) if t.name == "start_date")
    assert ss._fits(start, profile, None) > 1 > ss._fits(name, profile, None)  # type: ignore[arg-type]


@settings(max_examples=50)
@given(st.lists(st.text(alphabet="abcdefghij éèàç'-", min_size=1, max_size=40).filter(lambda t: t.strip()),
                min_size=1, max_size=30))
def test_a_column_of_names_never_profiles_as_dates_or_numbers(names):
    profile = ss._profile(names)
    assert profile.dates == 0.0 and profile.numbers == 0.0 and profile.emails == 0.0


_EMAILS = st.from_regex(r"[a-z][a-z0-9.]{0,15}@[a-z]{2,10}\.(fr|sn|example)", fullmatch=True)


@settings(max_examples=50)
@given(st.lists(_EMAILS, min_size=1, max_size=3))
def test_contact_details_are_recognised_as_personal(emails):
    assert ss.looks_personal(emails)
    assert ss.looks_personal(["+221 77 000 00 00", *emails])


@settings(max_examples=50)
@given(st.lists(st.text(alphabet="abcdefghij éèàç'", min_size=1, max_size=40).filter(lambda t: t.strip()),
                min_size=1, max_size=3))
def test_names_are_not_personal_contact_details(names):
    assert not ss.looks_personal(names)
