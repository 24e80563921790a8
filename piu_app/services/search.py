"""Full-text search over the whole register (accent- and case-insensitive, ranked).

The index itself is engine-specific and lives in `database.py`; this module decides what text
each record contributes and turns hits back into records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import selectinload

from ..database import (
    IndexEntry,
    SearchHit,
    clear_search_index,
    index_records,
    remove_from_index,
    search_index,
)
from ..models import db
from ..registry import RECORD_TYPES, RecordType


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


def index_many(rt: RecordType, records: Sequence[Any]) -> None:
    """Index many live records at once (load them with `eager_options(rt)` first)."""
    if records:
        index_records(db.session.connection(), [_entry(rt, r) for r in records])


def remove_uids(uids: Sequence[str]) -> None:
    if uids:
        remove_from_index(db.session.connection(), list(uids))


def eager_options(rt: RecordType) -> list:
    """Load what `_entry` reads (themes, link targets, related records behind a computed title)
    in a few batched queries instead of several queries per record."""
    model = rt.model
    options = [selectinload(getattr(model, f.name)) for f in rt.fields if f.kind == "themes"]
    options += [selectinload(getattr(model, link.owner_attr)).selectinload(getattr(link.model, link.target_attr))
                for link in rt.links]
    if rt.title_attr not in model.__table__.c:  # e.g. Review.name: built from its innovation and reviewer
        options += [selectinload(getattr(model, f.name)) for f in rt.fields if f.kind == "ref"]
    return options


def rebuild(batch: int = 2000) -> int:
    """Rebuild the whole index from the tables; return the number of records indexed."""
    conn = db.session.connection()
    clear_search_index(conn)
    total = 0
    for rt in RECORD_TYPES.values():
        last_id = 0
        while True:
            rows = list(db.session.scalars(db.select(rt.model).where(rt.model.deleted.is_(False), rt.model.id > last_id)
                                           .options(*eager_options(rt)).order_by(rt.model.id).limit(batch)))
            if not rows:
                break
            index_records(conn, [_entry(rt, r) for r in rows])
            total += len(rows)
            last_id = rows[-1].id
            db.session.expunge_all()
    return total


@dataclass
class Result:
    record_type: RecordType
    record: Any
    snippet: str


def search(query: str, *, record_types: Sequence[str] = (), visibility: str = "", theme: str = "",
           page: int = 1, page_size: int = 20) -> tuple[list[Result], int]:
    """Return one page of ranked results for `query` and the total number of hits."""
    page = min(max(1, page), 100_000)
    types = [t for t in record_types if t in RECORD_TYPES]
    if theme:
        types = [t for t in (types or RECORD_TYPES) if RECORD_TYPES[t].has_themes]
    hits, total = search_index(db.session.connection(), query, record_types=types,
                               visibilities=[visibility] if visibility else [],
                               limit=page_size if not theme else 2000,
                               offset=(page - 1) * page_size if not theme else 0)
    results = _load(hits)
    if theme:
        results = [r for r in results if any(t.code == theme for t in r.record.themes)]
        total = len(results)
        results = results[(page - 1) * page_size: page * page_size]
    return results, total


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
    return [Result(RECORD_TYPES[h.record_type], records[h.uid], h.snippet) for h in hits if h.uid in records]

