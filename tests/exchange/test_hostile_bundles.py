"""Hostile and broken bundles (tests/data/bundles/) are refused with a clear message, and change nothing.

The files are committed fixtures made by tests/data/bundles/make_bundles.py from one valid bundle of
the peer city "ville-pair"; each is broken in one way only. Every refusal must come before any
write: the database file is compared byte for byte, and uploads/ and backups/ must stay as they were.
"""

from __future__ import annotations

import html
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask, session
from flask_babel import force_locale, gettext
from jinja2 import TemplateNotFound
from sqlalchemy import select

from piu_app.database import is_sqlite, wait_for_checkpoints, writing
from piu_app.exchange.bundle_format import FORMAT_VERSION
from piu_app.exchange.bundle_import import BundleError
from piu_app.extensions import db
from piu_app.models import Innovation
from piu_app.services import backups
from piu_app.services import exchange as exchange_service
from tests import factories
from tests.conftest import csrf_token, login

BUNDLES = Path(__file__).parents[1] / "data" / "bundles"
VALID = BUNDLES / "valid-peer.registre.zip"

# Each committed file → a key phrase of its French refusal (in the message or its detail lines).
HOSTILE = {
    "traversal.zip": "chemin qui sort du dossier (data/../../evil.csv)",
    "absolute.zip": "chemin absolu (/etc/evil)",
    "symlink.zip": "lien symbolique (data/link.csv)",
    "zipbomb.zip": "se décompresse en une taille démesurée (bombe zip ?)",
    "future-format.zip": "version plus récente de PIU (format 99.0",
    "wrong-checksum.zip": "data/organisations.csv ne correspond pas à son empreinte SHA-256",
    "broken-fk.zip": "innovation_uid : le lien vers 00000000-dead-4000-8000-000000000000 ne mène à aucune fiche "
                     "(clé étrangère rompue)",
    "truncated.zip": "n'est pas une archive zip lisible (fichier tronqué ou abîmé ?)",
    "damaged.zip": "L'archive est abîmée (fichier data/innovations.csv illisible)",
    "malformed-csv.zip": "La table lessons n'est pas un CSV valide (ligne 3 : guillemet jamais refermé)",
    "wrong-cell-count.zip": "lessons, ligne 3 : 3 cellules au lieu de 21",
    "wrong-encoding.zip": "La table innovations n'est pas encodée en UTF-8",
    "huge-integer.zip": "version : valeur hors limites (99999999999999999999)",
    "bad-descriptor.zip": "datapackage.json est mal formé",
    "missing-datapackage.zip": "datapackage.json est absent",
    "not-a-zip.zip": "n'est pas une archive zip lisible",
}
OURS = ".".join(map(str, FORMAT_VERSION))  # the format this release reads up to
FUTURE_MSGID = ("Ce paquet a été fait par une version plus récente de PIU (format %(theirs)s ; celle-ci lit "
                "jusqu'au format %(ours)s). Mettez PIU à jour pour l'importer.")


def refusal(exc: BundleError) -> str:
    return "\n".join([str(exc.message), *map(str, exc.problems)])


def db_snapshot() -> bytes:
    """SQLite: the database file's bytes once the WAL is folded in; PostgreSQL: every table's rows."""
    db.session.rollback()
    if is_sqlite(db.engine):
        # An import folds its log in on a thread of its own afterwards: two checkpoints at once, and one
        # of them answers "busy".
        wait_for_checkpoints()
        # Outside any transaction (a session's BEGIN would lock the checkpoint out): a raw autocommit connection.
        raw = db.engine.raw_connection()
        try:
            busy, _log, _done = raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.close()
        assert busy == 0, "the checkpoint could not run"
        return Path(db.engine.url.database or "").read_bytes()
    dump = [repr(db.session.execute(select(table).order_by(*table.primary_key.columns)).all())
            for table in db.metadata.sorted_tables]
    db.session.rollback()
    return "\n".join(dump).encode()


def files_in(app: Flask) -> dict[str, int]:
    found = {}
    for key in ("PIU_UPLOADS_DIR", "PIU_BACKUPS_DIR"):
        root = Path(app.config[key])
        found.update({f"{key}/{p.relative_to(root)}": p.stat().st_size for p in root.rglob("*")})
    return found


def import_file(app: Flask, path: Path) -> tuple:
    config = app.config
    return exchange_service.import_bundle(
        path, filename=path.name, username="editor", uploads=config["PIU_UPLOADS_DIR"],
        backup=lambda: backups.take(db.engine, config["PIU_BACKUPS_DIR"], reason="import", keep=10))


@pytest.fixture
def register(app: Flask, ctx: None) -> Iterator[None]:
    """A register with some records of its own and one from another peer."""
    territory = factories.make_territory()
    innovation = factories.make_innovation()
    factories.make_organisation()
    factories.make_experiment(innovation, territory=territory.uid)
    factories.make_foreign("organisations", origin="autre-ville", name="Coopérative du Fleuve", org_type="sme")
    db.session.commit()
    yield


def test_every_committed_bundle_is_covered() -> None:
    assert {p.name for p in BUNDLES.glob("*.zip")} == {*HOSTILE, VALID.name}
    assert all(p.stat().st_size < 1024 * 1024 for p in BUNDLES.glob("*.zip"))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bundle_is_refused_and_nothing_changes(app: Flask, register: None, name: str) -> None:
    path = BUNDLES / name
    before, files = db_snapshot(), files_in(app)

    with pytest.raises(BundleError) as previewed:
        exchange_service.preview(path, filename=name)
    with pytest.raises(BundleError) as imported:
        import_file(app, path)

    assert HOSTILE[name] in refusal(imported.value)
    assert refusal(previewed.value) == refusal(imported.value)
    db.session.rollback()  # what the view does on a refusal
    assert db_snapshot() == before
    assert files_in(app) == files


def test_valid_peer_bundle_imports_then_changes_nothing(app: Flask, register: None) -> None:
    empty = db_snapshot()
    plan, batch = import_file(app, VALID)
    db.session.commit()
    assert db_snapshot() != empty  # the snapshot does see a write
    assert batch is not None and batch.origin_instance == "ville-pair"
    assert plan.totals()["created"] == 5
    innovation = db.session.scalars(select(Innovation).filter_by(uid="5e0c7a10-0000-4000-8000-000000000003")).one()
    assert innovation.origin_instance == "ville-pair" and [t.code for t in innovation.themes] == ["energy_climate"]
    assert [link.organisation.uid for link in innovation.carrier_links] == ["5e0c7a10-0000-4000-8000-000000000002"]

    before = db_snapshot()
    plan, batch = import_file(app, VALID)
    assert batch is None
    assert plan.totals()["created"] == plan.totals()["updated"] == 0
    assert plan.totals()["unchanged"] == 5
    assert db_snapshot() == before


def test_refusal_in_english(app: Flask) -> None:
    with app.test_request_context(), writing():
        session["lang"] = "en"
        with pytest.raises(BundleError) as exc:
            exchange_service.preview(BUNDLES / "future-format.zip")
        with force_locale("en"):
            expected = gettext(FUTURE_MSGID, theirs="99.0", ours=OURS)
    message = str(exc.value.message)
    assert "99.0" in message and OURS in message
    # The message is the English catalogue's. Until the translation pass adds this string, gettext
    # falls back to the French text, so this checks the locale is followed, not the English wording.
    assert message == expected


def test_refusal_page_in_english(app: Flask) -> None:
    try:
        app.jinja_env.get_template("exchange/refused.html")
    except TemplateNotFound:
        pytest.skip("the refusal page is not there yet")
    editor = login(app.test_client(), "editor")
    with editor.session_transaction() as s:
        s["lang"] = "en"
    with (BUNDLES / "future-format.zip").open("rb") as fh:
        response = editor.post("/exchange/import", data={"bundle": (fh, "future-format.zip"),
                                                         "csrf_token": csrf_token(editor, "/exchange/")})
    assert response.status_code == 302
    page = editor.get(response.headers["Location"])
    assert page.status_code == 400
    body = html.unescape(page.get_data(as_text=True))
    with app.test_request_context(), force_locale("en"):
        expected = gettext(FUTURE_MSGID, theirs="99.0", ours=OURS)
    assert expected in body  # French until the English catalogue has the string (see above)
    assert not list((Path(app.config["PIU_UPLOADS_DIR"]) / "pending-imports").glob("*.zip"))


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_bundles", BUNDLES / "make_bundles.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_still_makes_the_same_kinds_of_bundle(app: Flask, tmp_path: Path) -> None:
    made = _script().build(tmp_path / "bundles")
    assert {p.name for p in made} == {*HOSTILE, VALID.name}
    with app.test_request_context(), writing():
        for path in made:
            if path.name == VALID.name:
                exchange_service.preview(path).bundle.close()
                continue
            with pytest.raises(BundleError) as exc:
                exchange_service.preview(path)
            assert HOSTILE[path.name] in refusal(exc.value), path.name
        db.session.rollback()
