"""The generated row functions of a bundle import: the check never lets through a row that
`_check_row` refuses, and the conversion gives back the values the register itself stores.

Planning an import checks every cell of every row; a check generated per table does it in a
fraction of the time and hands the rare row it doubts to `_check_row`, which words the problem.
These tests hold the fast check to the full one: whatever it accepts, the full one accepts, and
whatever it refuses, the full one refuses (ranges, lengths, the shape of an origin included).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select

from piu_app.exchange import bundle_format as bf
from piu_app.exchange import bundle_import as bi
from piu_app.models import Innovation, db
from piu_app.registry import RECORD_TYPES
from piu_app.services import records

INNOVATIONS = RECORD_TYPES["innovations"]

UIDS = ["0f8fad5b-d9cb-469f-a165-70867728950e", "7c9e6679-7425-40de-944b-e07fc1f90ae7"]
CODES = ["a", "code-b"]
JUNK = ["", " ", "x", "=1", "'=1", "a\x00b", "1e999", "nan", "-5", "2147483648", "-2147483649", "1_000", " 12",
        "2024-02-30", "2024-01-01T00:00:00", "2024-01-01T10:00:00Z", "2024-01-01", "true", "TRUE", "false",
        "network", "public", "private", "1.5", "0", "100", *UIDS, UIDS[0].upper(), *CODES,
        # review scores off the 1..5 scale, origins that are no instance code, codes and texts too long
        "99", "-4", "6", "1", "5", "../../x <b>", "x" * 5000, "Ville-A", "ville-a", "ab", "-ville", "c" * 61]

# (table, columns checked, cells before them: a join row starts with its owner's uid)
TABLES = [(key, rtable.columns, 0) for key, rtable in bf.TABLES.items()] + \
         [(child.name, child.columns[1:], 1) for rtable in bf.TABLES.values() for child in rtable.children]


def _valid(col: bf.Column) -> st.SearchStrategy[str]:
    if col.vocab:
        return st.sampled_from(CODES)
    if col.kind == "ref":
        return st.sampled_from(UIDS)
    if col.kind == "int":
        return st.integers(int(col.minimum if col.minimum is not None else -2**31),
                           int(col.maximum if col.maximum is not None else 2**31 - 1)).map(str)
    if col.kind == "float":
        return st.floats(col.minimum, col.maximum, allow_nan=False, allow_infinity=False).map(repr)
    if col.kind == "date":
        return st.dates().map(dt.date.isoformat)
    if col.kind == "datetime":
        return st.datetimes().map(lambda d: d.isoformat() + "Z")
    if col.kind == "bool":
        return st.sampled_from(["true", "false", ""])
    if col.name == "uid":
        return st.uuids().map(str)
    if col.name == "visibility":
        return st.sampled_from(["network", "public"])
    if col.pattern:
        return st.from_regex(col.pattern, fullmatch=True)
    return st.text(max_size=(col.max_length or 60) + 2)


@st.composite
def rows(draw: st.DrawFn, columns: tuple[bf.Column, ...]) -> dict[str, str]:
    spoilt = draw(st.sets(st.sampled_from([col.name for col in columns]), max_size=2))  # mostly right rows
    return {col.name: draw(st.sampled_from(JUNK) if col.name in spoilt else _valid(col)) for col in columns}


@pytest.mark.parametrize(("table", "columns", "first"), TABLES, ids=[t for t, _c, _f in TABLES])
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_row_the_fast_check_accepts_is_one_the_full_check_accepts(ctx, table, columns, first, data):
    row = data.draw(rows(columns))
    in_bundle = {key: set(UIDS) for key in bf.TABLES}
    vocab = {col.vocab: set(CODES) for col in columns if col.vocab}
    conn = db.session.connection()
    plan = bi.Plan(None, "ville-b")  # type: ignore[arg-type]
    full = bi._check_row(plan, table, 2, columns, row, in_bundle, vocab, conn)
    fast = bi._row_check_function(table, columns, in_bundle, vocab, conn, first=first)([UIDS[0]] * first + list(row.values()))
    note(f"fast={fast} errors={plan.errors}")
    # The same verdict: the fast check neither lets a bad row through nor sends a good one to the slow path
    assert fast == (full is not None)
    if fast:
        assert plan.errors == []
    event("accepted" if full is not None else "refused")
    if full is not None and all(len(v) <= 60 for v in row.values()):
        assert fast  # rows that are right take the fast path (a long text may carry a formula escape)


def test_bundle_rows_become_the_database_rows_the_register_wrote(ctx):
    """Every demo record, read in the bundle's form and converted back, gives its own column values,
    sort key included (formula escapes taken off first)."""
    from piu_app.services import demo

    demo.load()
    record = db.session.scalars(select(Innovation)).first()
    # a formula trigger and accents, in the sort key's title
    records.update(INNOVATIONS, record, {"name": "=Ville + « Énergie »"}, username="t")
    db.session.flush()
    conn = db.session.connection()
    maps = bf.UidMaps(conn)
    checked = 0
    for key, rtable in bf.TABLES.items():
        stored = {r.id: r._mapping for r in conn.execute(select(rtable.table))}
        columns, db_row = bi._db_row_function(rtable, maps)
        for id_, row, _children in list(bf.local_rows(conn, rtable, maps, ids=list(stored))):
            converted = dict(zip(columns, db_row([row[c.name] for c in rtable.columns]), strict=True))
            converted.pop("features", None)  # written from the join rows
            converted.pop("draft")  # drafts never travel: what arrives is never one
            assert converted == {name: stored[id_][name] for name in converted}, key
            checked += 1
    assert checked > 50


def test_a_record_whose_link_finds_nothing_keeps_no_fingerprint(ctx):
    """The fingerprint vouches for what is stored: a link left empty because its record is not here
    (nor in the bundle) leaves none, so that the next re-import compares the record in full."""
    from piu_app.services import demo

    demo.load()
    db.session.flush()
    conn = db.session.connection()
    maps = bf.UidMaps(conn)
    rtable = bf.TABLES["experiments"]
    first = db.session.scalars(select(rtable.table.c.id)).first()
    [(_id, row, kids)] = list(bf.local_rows(conn, rtable, maps, ids=[first]))
    header = [c.name for c in rtable.columns]
    whole = [row[name] for name in header]
    whole[header.index("uid")] = UIDS[0]
    broken = list(whole)
    broken[header.index("uid")] = UIDS[1]
    link = next(c.name for c in rtable.columns if c.kind == "ref" and c.ref == "innovations")
    broken[header.index(link)] = "00000000-0000-4000-8000-000000000000"  # nowhere
    children = {name: {UIDS[0]: rows, UIDS[1]: rows} for name, rows in kids.items()}
    bi.write_records(conn, rtable, maps, {UIDS[0]: whole, UIDS[1]: broken}, children, batch_id=None,
                     origin_label="test", username="t")
    digests = dict(conn.execute(select(rtable.table.c.uid, rtable.table.c.content_digest)
                                .where(rtable.table.c.uid.in_(UIDS))).all())
    assert len(digests[UIDS[0]]) == 40 and digests[UIDS[1]] == ""
