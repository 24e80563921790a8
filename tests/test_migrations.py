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


def test_upgrade_on_an_existing_register_keeps_its_data_and_backs_it_up(tmp_path):
    app = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.app_context(), writing():
        demo.load()
        db.session.commit()
        names = sorted(i.name for i in db.session.scalars(db.select(Innovation)))
    # Simulate a register made by an older release: mark it as one revision behind, then upgrade.
    database = tmp_path / "piu.sqlite3"
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    upgrade_database(create_app({"TESTING": True}, instance_path=tmp_path))
    with app.app_context():
        assert sorted(i.name for i in db.session.scalars(db.select(Innovation))) == names


def test_downgrade_then_upgrade_round_trips(tmp_path):
    import flask_migrate

    from piu_app import MIGRATIONS_DIR

    app = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="base")
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        assert db.session.execute(db.text("SELECT count(*) FROM search_index")).scalar_one() == 0
