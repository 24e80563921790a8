"""Full-text search over the whole register (accent- and case-insensitive, ranked).

The index itself is engine-specific and lives in `database.py`; this module decides what text
each record contributes and turns hits back into records.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, literal, select, union_all

from ..database import (
    IndexEntry,
    SearchHit,
    SearchQuery,
    clear_search_index,
    driver_rows,
    index_records,
    make_snippet,
    parse_query,
    remove_from_index,
    search_counts,
    search_index,
    search_uids,
)
from ..models import Theme, db
from ..registry import RECORD_TYPES, RecordType
from . import InvalidInputError

MAX_QUERY_LENGTH = 200  # a search is a few words; a longer query is refused, never cut silently
# Counting hits per filter reads every hit (per type and level: a few µs each; per theme, a join to
# its themes: about 20 µs each): done up to these numbers of hits, never for a word found in most of
# a register of 100 000 (the page then shows no count rather than a slow one).
COUNT_LIMIT = 10_000
THEME_COUNT_LIMIT = 2_000


def _entry(rt: RecordType, record: Any) -> IndexEntry:
    parts = [str(getattr(record, f.column) or "") for f in rt.fields if f.indexed and f.name != rt.title_attr]
    if rt.has_themes:
        parts += [f"{t.label_fr} {t.label_en}" for t in record.themes]
    for link in rt.links:
        parts += [RECORD_TYPES[link.target].title_of(getattr(row, link.target_attr))
                  for row in getattr(record, link.owner_attr)]
    title = rt.title_of(record)
    if isinstance(getattr(rt.model, rt.title_attr, None), property):
        # A title made from other records (a review is « innovation — reviewer ») is not the record's own
        # words: index it with the body, so that the innovation itself ranks first.
        parts.insert(0, title)
        title = ""
    return IndexEntry(rt.key, record.uid, record.visibility, title, "\n".join(p for p in parts if p))


def index(rt: RecordType, record: Any) -> None:
    """Put a record's current text in the index (or take it out if it is a tombstone)."""
    conn = db.session.connection()
    if record.deleted:
        remove_from_index(conn, [record.uid])
    else:
        index_records(conn, [_entry(rt, record)])


def remove(record: Any) -> None:
    remove_from_index(db.session.connection(), [record.uid])


def index_ids(rt: RecordType, ids: Sequence[int]) -> None:
    """Bring the index up to date for some records of one type, by id (tombstones leave it)."""
    live, gone = entries_of(rt, ids)
    conn = db.session.connection()
    index_records(conn, live)
    if gone:
        remove_from_index(conn, gone)


def entries_of(rt: RecordType, ids: Sequence[int]) -> tuple[list[IndexEntry], list[str]]:
    """Return the index entries of the live records among `ids` and the uids of the tombstones.

    The same text as `_entry`, read with plain SQL: building thousands of ORM objects (with their
    themes and links) costs several times more than the text they yield."""
    if not ids:
        return [], []
    conn = db.session.connection()
    table = rt.model.__table__
    own_title = rt.title_attr in table.c
    computed = {} if own_title else _titles(conn, rt, ids)
    related = _related_titles(conn, rt, ids)
    body = [table.c[f.column] for f in rt.fields if f.indexed and f.name != rt.title_attr]
    title = table.c[rt.title_attr] if own_title else table.c.uid
    live, gone = [], []
    wanted = set(ids)
    for row in driver_rows(conn, select(table.c.id, table.c.uid, table.c.visibility, table.c.deleted, title, *body)
                           .where(_among(table.c.id, ids))):
        if row[0] not in wanted:
            continue
        if row[3]:
            gone.append(row[1])
            continue
        parts = [str(v or "") for v in row[5:]] + related.get(row[0], [])
        if not own_title:  # see `_entry`: a computed title is indexed with the body
            parts.insert(0, computed.get(row[0], ""))
        live.append(IndexEntry(rt.key, row[1], row[2], str(row[4] or "") if own_title else "",
                               "\n".join(p for p in parts if p)))
    return live, gone


def _among(column: Any, ids: Sequence[int]) -> Any:
    """`column IN ids`, or a range covering them when they are dense (the records an import just
    wrote): an IN list of 2 000 ids costs more to build than the rows it selects. The caller keeps
    only the ids it asked for."""
    low, high = min(ids), max(ids)
    return column.between(low, high) if high - low < 2 * len(ids) else column.in_(ids)


def _titles(conn: Any, rt: RecordType, ids: Sequence[int]) -> dict[int, str]:
    """Titles of records by id: their title column, or the model's `names_by_id` for a computed one."""
    table = rt.model.__table__
    found: dict[int, str] = {}
    for start in range(0, len(ids), 2000):  # many links can point to many records: bounded IN lists
        chunk = ids[start:start + 2000]
        if rt.title_attr in table.c:
            found.update((id_, str(title or "")) for id_, title in driver_rows(
                conn, select(table.c.id, table.c[rt.title_attr]).where(table.c.id.in_(chunk))))
        else:
            found.update(rt.model.names_by_id(conn, chunk))
    return found


def _related_titles(conn: Any, rt: RecordType, ids: Sequence[int]) -> dict[int, list[str]]:
    """Theme labels, then the titles of linked records, per owner id: the words `_entry` adds."""
    found: dict[int, list[str]] = {}
    wanted = set(ids)
    if rt.has_themes:
        secondary = rt.model.themes.property.secondary
        owner = next(c for c in secondary.c if c.name != "theme_id")
        for owner_id, label_fr, label_en in driver_rows(conn,
                select(owner, Theme.label_fr, Theme.label_en).join(Theme, Theme.id == secondary.c.theme_id)
                .where(_among(owner, ids)).order_by(owner, Theme.position, Theme.id)):
            if owner_id in wanted:
                found.setdefault(owner_id, []).append(f"{label_fr} {label_en}")
    for link in rt.links:
        rows = link.model.__table__
        pairs = [(owner_id, target) for owner_id, target in driver_rows(conn,
                 select(rows.c[link.owner_fk], rows.c[link.target_fk]).where(_among(rows.c[link.owner_fk], ids))
                 .order_by(rows.c[link.owner_fk], rows.c.id)) if owner_id in wanted]
        titles = _titles(conn, RECORD_TYPES[link.target], sorted({target for _owner, target in pairs}))
        for owner_id, target in pairs:
            found.setdefault(owner_id, []).append(titles.get(target, ""))
    return found


def remove_uids(uids: Sequence[str]) -> None:
    if uids:
        remove_from_index(db.session.connection(), list(uids))


def rebuild(batch: int = 2000) -> int:
    """Rebuild the whole index from the tables; return the number of records indexed."""
    conn = db.session.connection()
    clear_search_index(conn)
    total = 0
    for rt in RECORD_TYPES.values():
        ids = list(conn.execute(select(rt.model.id).where(rt.model.deleted.is_(False)).order_by(rt.model.id))
                   .scalars())
        for start in range(0, len(ids), batch):
            live, _gone = entries_of(rt, ids[start:start + batch])
            index_records(conn, live)
            total += len(live)
    return total


@dataclass
class Result:
    record_type: RecordType
    record: Any
    hit: SearchHit
    text: str = ""   # the hit's text with the themes in the reader's language only

    @functools.cached_property
    def snippet(self) -> str:  # cut once: the page tests it, then shows it
        return make_snippet(self.text, self.hit.terms) if self.text else self.hit.snippet


@dataclass
class Counts:
    """The number of hits behind each choice of the search page's filters (each filter counted with
    the others applied, as the page would find them)."""

    types: dict[str, int]
    visibilities: dict[str, int]
    themes: dict[str, int] | None   # None: too many hits to count per theme (THEME_COUNT_LIMIT)
    counted: bool = True            # False: too many hits to count per filter (COUNT_LIMIT)


def _check(query: str) -> SearchQuery:
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidInputError(_("Recherche trop longue : %(n)d caractères au plus.", n=MAX_QUERY_LENGTH))
    return parse_query(query)


def search(query: str, *, record_types: Sequence[str] = (), visibility: str = "", theme: str = "",
           page: int = 1, page_size: int = 20, lang: str = "fr") -> tuple[list[Result], int]:
    """Return one page of ranked results for `query` and the total number of hits.

    `query` is words (all required), `a OR b`, `-word` (see `database.parse_query`)."""
    q = _check(query)
    page = min(max(1, page), 100_000)
    types = [t for t in record_types if t in RECORD_TYPES]
    if theme:
        types = [t for t in (types or RECORD_TYPES) if RECORD_TYPES[t].has_themes]
    hits, total = search_index(db.session.connection(), q, record_types=types,
                               visibilities=[visibility] if visibility else [],
                               limit=page_size if not theme else 2000,
                               offset=(page - 1) * page_size if not theme else 0)
    results = _load(hits)
    if theme:
        results = [r for r in results if any(t.code == theme for t in r.record.themes)]
        total = len(results)
        results = results[(page - 1) * page_size: page * page_size]
    _in_one_language(results, lang)
    return results, total


def asks_for_words(query: str) -> bool:
    """Tell whether a query names at least one word to find (« -pluie » alone names none)."""
    return bool(parse_query(query[:MAX_QUERY_LENGTH]))


def _in_one_language(results: list[Result], lang: str) -> None:
    """The index holds each theme's French and English labels side by side (a search finds either);
    a snippet shows the reader's only."""
    if not results:
        return
    pairs = [(f"{label_fr} {label_en}", (label_en if lang == "en" else "") or label_fr)
             for label_fr, label_en in db.session.execute(select(Theme.label_fr, Theme.label_en))]
    for result in results:
        text = result.hit.text
        for both, one in pairs:
            if both in text:
                text = text.replace(both, one)
        result.text = text


def counts(query: str, *, record_types: Sequence[str] = (), visibility: str = "", theme: str = "",
           total: int | None = None) -> Counts:
    """Count the hits of `query` per record type, sharing level and theme: one grouped query on the
    index, and one on the themes of the hits when they are few enough (THEME_COUNT_LIMIT).

    `total`: the number of hits of the same query without any filter, when the caller knows it (the
    search page has just counted them): above COUNT_LIMIT nothing more is read."""
    q = _check(query)
    if not q:
        return Counts({}, {}, {})
    if total is not None and total > COUNT_LIMIT:
        return Counts({}, {}, None, counted=False)
    conn = db.session.connection()
    grouped = search_counts(conn, q, limit=COUNT_LIMIT)
    if grouped is None:
        return Counts({}, {}, None, counted=False)
    themed = [key for key, rt in RECORD_TYPES.items() if rt.has_themes]
    by_theme = None
    if sum(n for (key, _vis), n in grouped.items() if key in themed) <= THEME_COUNT_LIMIT:
        by_theme = _theme_counts(conn, q)
    elif theme:
        return Counts({}, {}, None, counted=False)  # the theme filter cannot be counted: none rather than wrong ones
    wanted = set(record_types) & set(RECORD_TYPES)
    if theme and by_theme is not None:
        rows: dict[tuple[str, str], int] = {}
        for (key, vis, code), n in by_theme.items():
            if code == theme:
                rows[(key, vis)] = rows.get((key, vis), 0) + n
    else:
        rows = grouped
    types: dict[str, int] = {}
    visibilities: dict[str, int] = {}
    for (key, vis), n in rows.items():
        if not visibility or vis == visibility:
            types[key] = types.get(key, 0) + n
        if not wanted or key in wanted:
            visibilities[vis] = visibilities.get(vis, 0) + n
    themes = None
    if by_theme is not None:
        themes = {}
        for (key, vis, code), n in by_theme.items():
            if (not wanted or key in wanted) and (not visibility or vis == visibility):
                themes[code] = themes.get(code, 0) + n
    return Counts(types, visibilities, themes)


def _theme_counts(conn: Any, q: SearchQuery) -> dict[tuple[str, str, str], int]:
    """Hits per (record type, sharing level, theme code), in one grouped query over the record types
    that have themes."""
    themed = [rt for rt in RECORD_TYPES.values() if rt.has_themes]
    hits = search_uids(conn, q, record_types=[rt.key for rt in themed]).cte("hits")
    parts = []
    for rt in themed:
        model = rt.model
        secondary = model.themes.property.secondary
        owner = next(c for c in secondary.c if c.name != "theme_id")
        parts.append(select(literal(rt.key).label("record_type"), model.visibility.label("visibility"),
                            Theme.code.label("code"))
                     .select_from(hits)
                     .join(model, model.uid == hits.c.uid)
                     .join(secondary, owner == model.id)
                     .join(Theme, Theme.id == secondary.c.theme_id))
    found = union_all(*parts).subquery()
    return {(r[0], r[1], r[2]): int(r[3]) for r in conn.execute(
        select(found.c.record_type, found.c.visibility, found.c.code, func.count())
        .group_by(found.c.record_type, found.c.visibility, found.c.code))}


def _load(hits: Iterable[SearchHit]) -> list[Result]:
    hits = list(hits)
    by_type: dict[str, list[str]] = {}
    for hit in hits:
        by_type.setdefault(hit.record_type, []).append(hit.uid)
    records: dict[str, Any] = {}
    for key, uids in by_type.items():
        model = RECORD_TYPES[key].model
        # by uid only: with `deleted` in the WHERE clause SQLite may scan ix_*_deleted instead
        for record in db.session.scalars(db.select(model).where(model.uid.in_(uids))):
            if not record.deleted:
                records[record.uid] = record
    return [Result(RECORD_TYPES[h.record_type], records[h.uid], h) for h in hits if h.uid in records]
