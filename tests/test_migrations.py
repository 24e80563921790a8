"""The migrations and the models agree, and upgrading keeps the data."""

from __future__ import annotations

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from piu_app import create_app, upgrade_database
from piu_app.database import include_in_autogenerate, writing
from piu_app.extensions import db
from piu_app.models import Innovation
from piu_app.services import demo


def test_models_and_migrations_agree(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_in_autogenerate,
                                                         "compare_type": True, "render_as_batch": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], diff


def test_a_register_made_by_release_0001_upgrades_with_its_data(tmp_path):
    import flask_migrate

    from piu_app import MIGRATIONS_DIR
    from piu_app.registry import INNOVATIONS
    from piu_app.services import records, search

    app = create_app({"TESTING": True, "BACKUP_KEEP": 5}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.app_context(), writing():
        demo.load()
        db.session.commit()
        names = sorted(i.name for i in db.session.scalars(db.select(Innovation)))
        db.session.remove()  # release our write transaction before the migration opens its own
    with app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="0001")  # the schema of release 0001
    database = tmp_path / "piu.sqlite3"
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
        assert conn.execute("SELECT count(*) FROM innovations").fetchone()[0] == 30 + 3  # the peer city's three

    upgraded = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(upgraded)  # what `piu` does at start
    assert list((tmp_path / "backups").glob("piu-migration-*.sqlite3")), "a backup is taken before migrating"
    with upgraded.test_request_context(), writing():
        assert sorted(i.name for i in db.session.scalars(db.select(Innovation))) == names
        results, _ = search.search("eclairage solaire")
        hit = next(r.record for r in results if r.record_type is INNOVATIONS
                   and r.record.name == "Éclairage public solaire intelligent")
        records.delete(INNOVATIONS, hit, username="t")  # the index still follows changes after the upgrade
        assert all(r.record.uid != hit.uid for r in search.search("eclairage solaire")[0])
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0005"
        assert conn.execute("SELECT count(*) FROM import_batches").fetchone()[0] == 0  # exchange tables exist
        assert conn.execute("SELECT home_territory_uid FROM instance_settings").fetchone()[0] == ""


def test_downgrade_then_upgrade_round_trips(tmp_path):
    import flask_migrate

    from piu_app import MIGRATIONS_DIR

    app = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="base")
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        assert db.session.execute(db.text("SELECT count(*) FROM search_index")).scalar_one() == 0
