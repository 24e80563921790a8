"""Bulk reads write every cell exactly as `write_value` writes the typed value.

Exports and the comparison of a re-import read raw driver values (SQLite hands back the text
SQLAlchemy stored) and turn them into bundle text without building Python dates; these tests hold
that shortcut to the one definition of a cell's text.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime, func, select
from sqlalchemy.dialects import sqlite

from piu_app.database import stored_date_text, stored_datetime_text
from piu_app.exchange import bundle_format as bf

naive_datetimes = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))


def _as_sqlite_stores(value: dt.datetime) -> str:
    dialect = sqlite.dialect()
    return DateTime().dialect_impl(dialect).bind_processor(dialect)(value)


@given(naive_datetimes)
def test_a_timestamp_as_sqlite_stores_it_is_written_as_its_datetime(value):
    assert stored_datetime_text(_as_sqlite_stores(value)) == bf.write_value("datetime", value)
    assert stored_datetime_text(value) == bf.write_value("datetime", value)  # PostgreSQL hands a datetime


def test_a_timestamp_stored_in_another_text_form_is_still_read():
    assert stored_datetime_text("2026-03-01 10:00:00") == "2026-03-01T10:00:00Z"
    assert stored_datetime_text("2026-03-01 10:00:00.250000") == "2026-03-01T10:00:00.250000Z"
    assert stored_datetime_text("2026-03-01 10:00:00.000000") == "2026-03-01T10:00:00Z"


@given(st.dates())
def test_a_date_is_written_in_iso_form_from_text_or_date(value):
    assert stored_date_text(value.isoformat()) == stored_date_text(value) == bf.write_value("date", value)


@given(st.one_of(st.none(), st.text()))
def test_raw_text_cells_are_written_like_typed_ones(value):
    assert bf.CELL_TEXT["text"](value) == bf.write_value("text", value)


@pytest.mark.parametrize(("kind", "raw", "typed"), [
    ("bool", 1, True), ("bool", 0, False), ("bool", None, None),
    ("int", 7, 7), ("int", None, None), ("float", 0.1, 0.1), ("float", 3, 3.0), ("float", None, None),
])
def test_raw_numbers_and_booleans_are_written_like_typed_ones(kind, raw, typed):
    assert bf.CELL_TEXT[kind](raw) == bf.write_value(kind, typed)


def test_read_ahead_yields_every_page_in_order_and_passes_errors_on():
    assert list(bf.read_ahead(iter(range(100)))) == list(range(100))

    def broken():
        yield 1
        raise RuntimeError("disk")

    with pytest.raises(RuntimeError, match="disk"):
        list(bf.read_ahead(broken()))


def test_read_ahead_stops_reading_when_the_caller_stops():
    read = []

    def pages():
        for i in range(1000):
            read.append(i)
            yield i

    for page in bf.read_ahead(pages(), depth=2):
        if page == 3:
            break
    assert len(read) < 10  # the reader stopped a few pages ahead, not at the end
    assert all(t.name != "bundle-reader" for t in threading.enumerate())


def test_bulk_rows_match_typed_rows_for_the_demo_register(ctx):
    """Every record of the demo register: the bulk text equals write_value of the typed values."""
    from piu_app.models import db
    from piu_app.services import demo

    demo.load()
    db.session.flush()
    conn = db.session.connection()
    maps = bf.UidMaps(conn)
    checked = 0
    for key, rtable in bf.TABLES.items():
        typed = {r.id: r for r in conn.execute(select(rtable.table))}
        for id_, row, _children in bf.local_rows(conn, rtable, maps, ids=list(typed)):
            record = typed[id_]
            for col in rtable.columns:
                value = record._mapping[col.attr]
                expected = (maps.uid_of(col.ref or "").get(value, "") if value is not None else "") \
                    if col.kind == "ref" else bf.write_value(col.kind, value)
                assert row[col.name] == expected, (key, col.name)
            checked += 1
    assert checked > 50


def test_cells_the_database_writes_during_an_export_are_the_cells_python_writes(ctx):
    """An export has the engine write boolean, number, date and timestamp cells while it reads
    (`bf.text_select`); every row of every record table of the demonstration register, plus a
    timestamp stored in another text form, comes out exactly as the Python path writes it."""
    from sqlalchemy import update

    from piu_app.database import is_sqlite
    from piu_app.extensions import db
    from piu_app.services import demo

    demo.load()
    db.session.flush()
    conn = db.session.connection()
    rtable = bf.TABLES["innovations"]
    if is_sqlite(conn):  # written by hand or by an older release: not SQLAlchemy's 26-character form
        first = conn.execute(select(rtable.table.c.id).order_by(rtable.table.c.id)).scalar()
        conn.execute(update(rtable.table).where(rtable.table.c.id == first)
                     .values(updated_at=bf.type_coerce("2026-03-01 10:00:00", bf.NullType())))
    uid_maps = {key: dict(conn.execute(select(t.table.c.id, t.table.c.uid)).all()) for key, t in bf.TABLES.items()}
    checked = 0
    for key in bf.TABLE_ORDER:
        rt = bf.TABLES[key]
        position = {c.name: i for i, c in enumerate(rt.table.c)}
        python_text = bf.row_text_function(rt, position, uid_maps.__getitem__)
        expected = [python_text(r) for r in conn.execute(bf.raw_select(rt.table).order_by(rt.table.c.id))]
        got = [row for batch in bf.record_text_rows(conn, rt, uid_maps.__getitem__, where=rt.table.c.id > 0)
               for row in batch]
        assert got == expected, key
        checked += len(got)
    assert checked > 100


# --------------------------------------------------------------------------- rows the database writes

HOSTILE_TEXTS = ['a "quoted" word, then a comma', "two\nlines", "carriage\rreturn", "crlf\r\nend", "",
                 "=1+2", " leading and trailing ", "nul\x00inside", "separator\x01inside", "row\x02break",
                 "emoji 😀 and accents éàç", '"', ",", '""', "tab\there"]
FLOATS = [0.1, 1e-05, 1e16, 1.5e16, 123456789012345.6, 2.0, -3.5, 1e300, 0.30000000000000004, 100.25, 0.0]


def _bundle_members(path):
    import zipfile
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_the_rows_the_database_writes_are_the_rows_python_writes(ctx, tmp_path, monkeypatch):
    """On SQLite the export has the database write each record row (`bundle_export._line_batches`);
    the bundle's tables and manifest are byte for byte those of the Python path (PostgreSQL's), for
    the demonstration register plus texts that must be quoted, control characters the database
    leaves to Python, floats of every form, a timestamp in another form, redacted persons and a
    tombstone."""
    from sqlalchemy import update

    from piu_app.database import writes_rows_itself
    from piu_app.exchange import bundle_export, signing
    from piu_app.extensions import db
    from piu_app.services import demo
    from tests.factories import make, make_innovation

    conn = db.session.connection()
    if not writes_rows_itself(conn):
        pytest.skip("only SQLite writes rows itself")
    demo.load()
    table = bf.TABLES["innovations"].table
    for i, text in enumerate(HOSTILE_TEXTS):
        made = make_innovation(name=f"Hostile {i}", visibility="network")
        conn.execute(update(table).where(table.c.uid == made.uid).values(
            description=text, tagline=text[::-1], price_indication=FLOATS[i % len(FLOATS)]))
    odd = make_innovation(name="Horodatage d'une autre forme", visibility="public")
    conn.execute(update(table).where(table.c.uid == odd.uid)
                 .values(updated_at=bf.type_coerce("2026-03-01 10:00:00", bf.NullType())))
    make("persons", family_name="Sans consentement", email="a@b.sn", phone="+221 77", contact_consent=False,
         visibility="public", public_bio="Bio")
    make("persons", family_name="Consentante", email="c@d.sn", phone="+221 78", contact_consent=True,
         visibility="public", public_bio="Bio publique")
    make("persons", family_name="Réseau", email="e@f.sn", contact_consent=True, visibility="network",
         public_bio="Bio")
    # join rows: roles that sort by code point ("B" < "a" < "é"), that need quotes, that are
    # prefixes of each other; review evidence with a control character (Python writes that table)
    from piu_app.models import ReviewScore
    links = bf.child_db_table(next(c for c in bf.TABLES["innovations"].children
                                   if c.name == "innovation_organisations"))[0]
    organisation_ids = conn.execute(select(bf.TABLES["organisations"].table.c.id)).scalars().all()[:2]
    innovation_ids = conn.execute(select(table.c.id).where(table.c.name.like("Hostile%"))).scalars().all()
    roles = ["é", "a", "B", "a,b", 'q"uote', "ab", "a b", "Z", "two\nlines"]
    conn.execute(links.insert(), [{"innovation_id": innovation, "organisation_id": organisation, "role": role}
                                  for innovation in innovation_ids[:3] for organisation in organisation_ids
                                  for role in roles])
    review_ids = conn.execute(select(bf.TABLES["reviews"].table.c.id)).scalars().all()
    conn.execute(ReviewScore.__table__.insert(), [
        {"review_id": review, "criterion": f"c{i}", "score": i, "evidence": text}
        for review in review_ids for i, text in enumerate(HOSTILE_TEXTS)])
    # a consent left as an empty text by hand (raw SQL): false, as Python reads it; the e-mail stays
    odd_consent = make("persons", family_name="Consentement vide", email="vide@x.sn", contact_consent=True,
                       visibility="public")
    persons_table = bf.TABLES["persons"].table
    conn.execute(update(persons_table).where(persons_table.c.uid == odd_consent.uid)
                 .values(contact_consent=bf.type_coerce("", bf.NullType())))
    # a shared board's notes (the demonstration workshop's first board): texts that must be quoted or
    # that only Python writes, a hidden note; and a note's column and theme read through joins
    from piu_app.models import Board, NoteCategory, StickyNote
    board_id = conn.execute(select(Board.__table__.c.id).order_by(Board.__table__.c.id)).scalar()
    category_id = conn.execute(select(NoteCategory.__table__.c.id).where(NoteCategory.board_id == board_id)).scalar()
    conn.execute(StickyNote.__table__.insert(), [
        {"board_id": board_id, "text": text or "vide", "client_key": f"hostile-{i}", "position": i, "vote_count": i,
         "category_id": category_id if i % 2 else None, "hidden": i == 3}
        for i, text in enumerate(HOSTILE_TEXTS)])
    # a removed sequence: a tombstone that keeps its workshop (a link its row cannot be without)
    from piu_app.models import WorkshopSession
    sessions = WorkshopSession.__table__
    conn.execute(update(sessions).where(sessions.c.id == conn.execute(select(func.min(sessions.c.id))).scalar())
                 .values(deleted=True, notes="ne doit pas partir non plus"))
    gone = make_innovation(name="Supprimée", visibility="network", description="ne doit pas partir")
    conn.execute(update(table).where(table.c.uid == gone.uid).values(deleted=True))
    db.session.flush()
    key = signing.instance_key(tmp_path / "key")

    def export(name):
        summary = bundle_export.export_bundle(tmp_path / name, level="network", key=key)
        return summary, _bundle_members(tmp_path / name)

    by_database, database_members = export("database.zip")
    monkeypatch.setattr(bundle_export, "writes_rows_itself", lambda _conn: False)
    by_python, python_members = export("python.zip")
    assert by_database.rows == by_python.rows
    tables = [name for name in python_members if name.startswith("data/")]
    assert len(tables) > 10
    for name in tables:
        assert database_members[name] == python_members[name], name
    manifest = signing.MANIFEST
    def records(text):  # the record lines (table, uid, version, fingerprint), not the head (a time)
        return [line for line in text.split(b"\n") if line.count(b"\t") == 3]
    assert len(records(python_members[manifest])) > 50
    assert records(database_members[manifest]) == records(python_members[manifest])
    innovations = database_members["data/innovations.csv"].decode()
    assert '"a ""quoted"" word, then a comma"' in innovations
    assert "nul\x00inside" in innovations and "separator\x01inside" in innovations
    assert "ne doit pas partir" not in innovations
    assert '"a,b"' in database_members["data/innovation_organisations.csv"].decode()
    assert "row\x02break" in database_members["data/review_scores.csv"].decode()
    persons = database_members["data/persons.csv"].decode()
    assert "a@b.sn" not in persons and "e@f.sn" not in persons and "c@d.sn" in persons
    assert "vide@x.sn" not in persons
    tombstones = [line for line in database_members["data/workshop_sessions.csv"].decode().splitlines()
                  if ',"true",' in line]
    assert len(tombstones) == 1 and "ne doit pas partir" not in tombstones[0]
    assert tombstones[0].split('","')[10]  # workshop_uid, right after the identity columns
    notes = database_members["data/sticky_notes.csv"].decode()
    assert '"a ""quoted"" word, then a comma"' in notes and "separator\x01inside" in notes
    assert "crlf\r\nend" not in notes and "carriage\rreturn" in notes  # the hidden note stays here


_FLOAT_ENGINE = None


def _float_texts(values):
    """(text the database writes or None, text Python writes) of each value stored in a REAL column."""
    global _FLOAT_ENGINE
    from sqlalchemy import Column, Float, Integer, MetaData, Table, create_engine

    from piu_app.database import float_text_sql
    if _FLOAT_ENGINE is None:
        _FLOAT_ENGINE = create_engine("sqlite://")
    metadata = MetaData()
    table = Table("numbers", metadata, Column("id", Integer, primary_key=True), Column("x", Float))
    with _FLOAT_ENGINE.begin() as conn:
        metadata.drop_all(conn)
        metadata.create_all(conn)
        conn.execute(table.insert(), [{"id": i, "x": v} for i, v in enumerate(values)])
        rows = conn.execute(select(float_text_sql(table.c.x), bf.type_coerce(table.c.x, bf.NullType()))
                            .order_by(table.c.id)).all()
    return [(by_sql, bf.CELL_TEXT["float"](raw)) for by_sql, raw in rows]


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_a_float_the_database_writes_is_the_text_python_writes(values):
    for by_sql, by_python in _float_texts(values):
        assert by_sql is None or by_sql == by_python  # None: Python writes that row


@given(st.lists(st.one_of(st.integers(-10**12, 10**12), st.decimals(-10**9, 10**9, places=2).map(float)),
                min_size=1, max_size=50))
def test_amounts_and_coordinates_are_written_by_the_database(values):
    """The common values (amounts, two decimals; whole numbers) never fall back to Python."""
    for by_sql, by_python in _float_texts([float(v) for v in values]):
        assert by_sql == by_python


def test_the_map_shows_the_shared_experiments_where_their_shared_place_or_territory_is(ctx, tmp_path):
    """geo/experiments.geojson: an experiment that leaves is placed at its place when the place
    leaves with coordinates, else at its territory; a private experiment, or one whose place and
    territory stay here, is not on the map."""
    import json
    import zipfile

    from piu_app.exchange import bundle_export
    from piu_app.extensions import db
    from tests.factories import make, make_experiment, make_innovation

    territory = make("territories", name="Port-Sable", level="commune", country_code="SN", lat=14.5, lon=-17.0,
                     visibility="network")
    hidden = make("territories", name="Privée", level="commune", country_code="SN", lat=1.0, lon=1.0,
                  visibility="private")
    shared_place = make("places", name="Fablab", place_type="coworking", lat=14.6, lon=-17.1, visibility="network")
    private_place = make("places", name="Cave", place_type="coworking", lat=2.0, lon=2.0, visibility="private")
    innovation = make_innovation(visibility="network")
    at_place = make_experiment(innovation, title="Au fablab", place=shared_place.uid, territory=territory.uid,
                               visibility="network")
    at_territory = make_experiment(innovation, title="Dans la commune", place=private_place.uid,
                                   territory=territory.uid, visibility="network")
    make_experiment(innovation, title="Privée", place=shared_place.uid, visibility="private")
    make_experiment(innovation, title="Nulle part", place=private_place.uid, territory=hidden.uid,
                    visibility="network")
    db.session.flush()
    bundle_export.export_bundle(tmp_path / "b.zip", level="network", key=None)
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        features = json.loads(zf.read("geo/experiments.geojson"))["features"]
    where = {f["properties"]["uid"]: f["geometry"]["coordinates"] for f in features}
    assert where == {at_place.uid: [-17.1, 14.6], at_territory.uid: [-17.0, 14.5]}
