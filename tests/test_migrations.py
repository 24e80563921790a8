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
    assert list((tmp_path / "backups").glob("piu-migration-*.zip")), "a backup is taken before migrating"
    with upgraded.test_request_context(), writing():
        assert sorted(i.name for i in db.session.scalars(db.select(Innovation))) == names
        results, _ = search.search("eclairage solaire")
        hit = next(r.record for r in results if r.record_type is INNOVATIONS
                   and r.record.name == "Éclairage public solaire intelligent")
        records.delete(INNOVATIONS, hit, username="t")  # the index still follows changes after the upgrade
        assert all(r.record.uid != hit.uid for r in search.search("eclairage solaire")[0])
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0015"
        assert conn.execute("SELECT count(*) FROM import_batches").fetchone()[0] == 0  # exchange tables exist
        assert conn.execute("SELECT home_territory_uid FROM instance_settings").fetchone()[0] == ""


def test_a_0013_register_with_a_workshop_upgrades_to_0015_with_its_data(tmp_path):
    """0015 adds the table of participant counts brought by bundles; the workshops, boards, notes and
    participants of a register made by the previous release stay as they were."""
    import flask_migrate

    from piu_app import MIGRATIONS_DIR

    app = create_app({"TESTING": True, "BACKUP_KEEP": 5}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="0013")  # the schema of the previous release
    with app.app_context(), writing():
        demo.load()  # its workshop: sequences, a board, notes, participants
        db.session.commit()
        db.session.remove()
    database = tmp_path / "piu.sqlite3"
    tables = ("workshops", "workshop_sessions", "boards", "note_categories", "note_themes", "sticky_notes",
              "note_votes", "workshop_participants")

    def contents():
        with sqlite3.connect(database) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in tables}  # noqa: S608

    before = contents()
    assert before["workshops"] and before["sticky_notes"] and before["workshop_participants"]
    upgraded = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(upgraded)
    assert contents() == before
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0015"
        assert conn.execute("SELECT count(*) FROM workshop_participant_counts").fetchone()[0] == 0


def test_downgrade_then_upgrade_round_trips(tmp_path):
    import flask_migrate

    from piu_app import MIGRATIONS_DIR

    app = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="base")
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        assert db.session.execute(db.text("SELECT count(*) FROM search_index")).scalar_one() == 0


def test_a_0005_register_with_imports_upgrades_and_each_import_keeps_its_undo(tmp_path):
    """0006: each import recorded before it gets the end of its history back from the change log,
    so that an edit made after it still blocks its undo, and the imports after it do not."""
    import flask_migrate

    from piu_app import MIGRATIONS_DIR
    from piu_app.exchange import spreadsheets as ss
    from piu_app.models import ImportBatch, Organisation
    from piu_app.registry import RECORD_TYPES
    from piu_app.services import imports, records

    orgs = RECORD_TYPES["organisations"]

    def sheet(*names: str) -> tuple[str, int]:
        table = ss.read_table(("Nom;Type\n" + "".join(f"{n};association\n" for n in names)).encode())
        batch = ss.import_rows(orgs, table, {"columns": {"Nom": "name", "Type": "org_type"}}, username="awa",
                               filename="orgs.csv", sha256="x")
        imports.finish(batch)
        db.session.commit()
        return batch.uid, batch.log_mark

    app = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.test_request_context(), writing():
        first, first_mark = sheet("Alpha", "Beta")
        alpha = db.session.scalars(db.select(Organisation).filter_by(name="Alpha")).one()
        records.update(orgs, alpha, {"name": "Alpha modifiée"}, username="awa")  # same user, just after
        db.session.commit()
        second, second_mark = sheet("Gamma")
        db.session.remove()
    with app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="0005")
    database = tmp_path / "piu.sqlite3"
    with sqlite3.connect(database) as conn:
        assert "log_mark" not in {row[1] for row in conn.execute("PRAGMA table_info(import_batches)")}

    upgraded = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(upgraded)
    with upgraded.test_request_context(), writing():
        batches = {b.uid: b for b in db.session.scalars(db.select(ImportBatch))}
        assert (batches[first].log_mark, batches[second].log_mark) == (first_mark, second_mark)
        assert batches[first].backup_name == "" and batches[first].report["tables"]["organisations"]["created"] == 2
        assert sorted(db.session.scalars(db.select(Organisation.name))) == ["Alpha modifiée", "Beta", "Gamma"]
        assert [b.record_title for b in imports.blockers(batches[first])] == ["Alpha modifiée"]
        assert imports.blockers(batches[second]) == []


def test_a_bundle_imported_before_0006_gets_the_end_of_its_history_back(register_template, tmp_path):
    import flask_migrate

    from piu_app import MIGRATIONS_DIR
    from piu_app.models import ImportBatch
    from piu_app.services import imports
    from tests.exchange.cities import export, import_, inside, make_city
    from tests.factories import make_innovation

    a, b = make_city(register_template, tmp_path, "ville-a"), make_city(register_template, tmp_path, "ville-b")
    with inside(a):
        make_innovation(name="Éclairage", visibility="network")
        make_innovation(name="Compost", visibility="network")
    _totals, uid = import_(b, export(a, tmp_path / "a.zip"))
    with inside(b):
        mark = imports.get(uid).log_mark
        make_innovation(name="Saisie après l'import")
    with b.app_context():
        db.session.remove()
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="0005")
    upgraded = create_app({"TESTING": True, "SECRET_KEY": "test"}, instance_path=tmp_path / "ville-b")
    upgrade_database(upgraded)
    with upgraded.test_request_context(), writing():
        batch = db.session.scalars(db.select(ImportBatch)).one()
        assert batch.log_mark == mark and imports.blockers(batch) == []


def test_a_register_of_release_0006_upgrades_to_the_page_speed_indexes_with_its_data(tmp_path):
    """Migration 0007: the link, draft and attachment indexes replace the single-column ones; data intact."""
    import flask_migrate

    from piu_app import MIGRATIONS_DIR
    from piu_app.services import records

    app = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.app_context(), writing():
        demo.load()
        db.session.commit()
        without = sorted(e.uid for e in records.experiments_without_lessons(100))
        db.session.remove()
    with app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="0006")
    database = tmp_path / "piu.sqlite3"

    def indexes(table: str) -> set[str]:
        with sqlite3.connect(database) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                               (table,))}

    assert {"ix_lessons_experiment_id", "ix_lessons_draft"} <= indexes("lessons")
    assert "ix_lessons_experiment_id_live" not in indexes("lessons")
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
    assert {"ix_lessons_experiment_id_live", "ix_lessons_draft_live"} <= indexes("lessons")
    assert "ix_lessons_experiment_id" not in indexes("lessons")
    assert "ix_documents_linked_uid_live" in indexes("documents")
    with app.app_context():
        assert sorted(e.uid for e in records.experiments_without_lessons(100)) == without
        assert db.session.scalar(db.select(db.func.count()).select_from(Innovation)) == 30 + 3  # the peer city


def test_a_register_of_release_0007_upgrades_to_the_workshop_schema_with_its_data(tmp_path):
    """Migration 0008 adds the barrier and workshop tables only: a 0007 register keeps every record,
    and a lesson of it can then cite a barrier."""
    import flask_migrate

    from piu_app import MIGRATIONS_DIR
    from piu_app.models import Barrier, Lesson

    app = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.app_context(), writing():
        demo.load()
        db.session.commit()
        before = sorted(i.uid for i in db.session.scalars(db.select(Innovation)))
        db.session.remove()
    with app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="0007")
    with sqlite3.connect(tmp_path / "piu.sqlite3") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "workshops" not in tables and "barriers" not in tables
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        assert sorted(i.uid for i in db.session.scalars(db.select(Innovation))) == before
        with writing():
            lesson = db.session.scalars(db.select(Lesson)).first()
            lesson.barriers.append(Barrier(label="Délais de paiement trop longs", actor_group="buyers"))
            db.session.commit()
        assert [b.label for b in db.session.get(Lesson, lesson.id).barriers] == ["Délais de paiement trop longs"]


def test_a_register_of_release_0013_upgrades_to_the_promoted_note_indexes_with_its_data(tmp_path):
    """Migration 0014 adds the promoted notes' and themes' indexes and puts the lesson in the lesson
    citations' barrier index: a 0013 register keeps its notes, themes and citations, and a barrier's
    page then reads its notes from the index."""
    import flask_migrate

    from piu_app import MIGRATIONS_DIR
    from piu_app.models import Barrier, Board, Lesson, NoteTheme, StickyNote, Workshop
    from piu_app.services import barriers

    app = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(app, backup=False)
    with app.test_request_context(), writing():
        barrier = barriers.create("Délais de paiement trop longs", username="t")
        lesson = Lesson(title="Retour sur le pilote")
        lesson.barriers.append(barrier)
        db.session.add(lesson)
        board = Board(workshop=Workshop(title="Atelier freins"), title="Freins")
        db.session.add_all([
            StickyNote(board=board, text="On attend six mois", client_key="k1", promoted_kind="barrier",
                       promoted_uid=barrier.uid),
            StickyNote(board=board, text="Masquée", client_key="k2", hidden=True, promoted_kind="barrier",
                       promoted_uid=barrier.uid),
            StickyNote(board=board, text="Pas promue", client_key="k3"),
            NoteTheme(board=board, label="Trésorerie", promoted_kind="barrier", promoted_uid=barrier.uid),
        ])
        db.session.commit()
        uid, notes = barrier.uid, sorted(db.session.scalars(db.select(StickyNote.text)))
        db.session.remove()
    with app.app_context():
        flask_migrate.downgrade(directory=MIGRATIONS_DIR, revision="0013")
    database = tmp_path / "piu.sqlite3"

    def indexes(table: str) -> set[str]:
        with sqlite3.connect(database) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                               (table,))}

    def columns(index: str) -> list[str]:
        with sqlite3.connect(database) as conn:
            return [r[2] for r in conn.execute(f"PRAGMA index_info({index})")]

    assert "ix_sticky_notes_promoted" not in indexes("sticky_notes")
    assert "ix_note_themes_promoted" not in indexes("note_themes")
    assert columns("ix_lesson_barriers_barrier_id") == ["barrier_id"]
    upgraded = create_app({"TESTING": True}, instance_path=tmp_path)
    upgrade_database(upgraded)  # what `piu` does at start
    assert "ix_sticky_notes_promoted" in indexes("sticky_notes")
    assert "ix_note_themes_promoted" in indexes("note_themes")
    assert columns("ix_lesson_barriers_barrier_id") == ["barrier_id", "lesson_id"]
    with upgraded.test_request_context():
        assert sorted(db.session.scalars(db.select(StickyNote.text))) == notes
        cited = barriers.citations_of(db.session.scalars(db.select(Barrier).filter_by(uid=uid)).one())
        assert (cited.citations.lessons, cited.citations.notes, cited.citations.themes) == (1, 1, 1)
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0015"  # the head
        plan = " ".join(row[-1] for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT board_id, count(*) FROM sticky_notes WHERE promoted_kind = 'barrier' "
            "AND promoted_uid = ? AND hidden IS 0 AND pending IS 0 GROUP BY board_id", (uid,)))
        assert "COVERING INDEX ix_sticky_notes_promoted" in plan, plan
