"""Every import (bundles and spreadsheets) as the Imports page and `piu imports` show it: what it
brought, its backup, and whether it can be undone — or what blocks the undo.

An import can be undone while nothing came after it on its records: no edit of one of them since
(a row of the change log after the import's `log_mark`), no later import that replaced one of them
(still applied), and no other record that points to a record it created. Later imports and edits
of *other* records never block it. Each question is asked from the smaller side (the import's own
records, or what was written after it), so the page stays fast whatever the size of the register.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, select

from ..models import ChangeLog, Document, ImportBatch, ImportChange, db
from ..registry import RECORD_TYPES
from . import ConflictError, NotFoundError
from .records import Page  # the same page of results as the lists'

# Change-log actions written by imports and undos themselves: a later import is asked about through
# its own record of changes (and only while it is applied), an undo put back what came before.
IMPORT_ACTIONS = ("import", "import-undo")
BLOCKERS_SHOWN = 20
_IN_CHUNK = 500  # uids per IN list: far below every engine's limit on parameters


class ImportBlockedError(ConflictError):
    """The undo would throw away later work; `blockers` says which."""

    def __init__(self, message: Any, blockers: list[Blocker]) -> None:
        super().__init__(message)
        self.blockers = blockers


@dataclass
class Blocker:
    """One reason an import cannot be undone, about one record."""

    kind: str                # edit (changed since), import (replaced by a later import), link (relies on it)
    record_type: str
    record_uid: str
    record_title: str = ""
    username: str = ""
    at: datetime | None = None
    action: str = ""         # the change-log action of an edit (update, delete, attach…)
    batch_uid: str = ""      # the later import
    batch_label: str = ""    # its file name and date
    target_title: str = ""   # link: the record of this import it points to

    @property
    def action_label(self) -> str:
        return action_label(self.action)

    @property
    def exists(self) -> bool:
        return self.record_type in RECORD_TYPES

    def describe(self) -> str:
        """Say in one sentence what blocks, in the user's language (for the CLI and messages)."""
        what = self.record_title or self.record_uid
        if self.kind == "import":
            return _("« %(record)s » a été remplacée depuis par l'import %(batch)s.", record=what,
                     batch=self.batch_label)
        if self.kind == "link":
            return _("« %(record)s » s'appuie sur « %(target)s », apportée par cet import.", record=what,
                     target=self.target_title or "…")
        return _("« %(record)s » a été modifiée depuis (%(action)s, par %(user)s le %(when)s).", record=what,
                 action=action_label(self.action), user=self.username or "?",
                 when=self.at.strftime("%Y-%m-%d %H:%M") if self.at else "?")


def action_label(action: str) -> str:
    return {"create": _("création"), "update": _("modification"), "delete": _("suppression"),
            "restore": _("restauration"), "attach": _("pièce jointe ajoutée"),
            "detach": _("pièce jointe retirée")}.get(action, action)


@dataclass
class ImportedRecord:
    record_type: str
    uid: str
    action: str              # created, updated
    title: str = ""
    present: bool = False    # still in the register (an undo removes what the import created)
    deleted: bool = False    # a tombstone
    link_type: str = ""      # where to link it: its own page, or for an attachment its record's
    link_uid: str = ""
    reason: str = ""         # in a bundle's preview: why it is skipped or in conflict


@dataclass
class Summary:
    """What the Imports page says of one import, from its report (no record is read)."""

    batch: ImportBatch
    counts: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading

def list_imports(page: int = 1, page_size: int = 25) -> Page:
    """Return one page of every import, bundles and spreadsheets, newest first."""
    page = max(1, page)
    total = db.session.scalar(select(func.count()).select_from(ImportBatch)) or 0
    batches = db.session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc())
                                 .offset((page - 1) * page_size).limit(page_size))
    return Page([Summary(b, counts_of(b)) for b in batches], total, page, page_size)


def recent(limit: int = 20) -> list[ImportBatch]:
    return list(db.session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)))


def get(uid: str) -> ImportBatch:
    batch = db.session.scalars(select(ImportBatch).filter_by(uid=uid[:36])).first()
    if batch is None:
        raise NotFoundError(_("Cet import n'existe pas."))
    return batch


def counts_of(batch: ImportBatch) -> dict[str, int]:
    """created / updated / unchanged / skipped / conflict of an import, from its report."""
    report = batch.report or {}
    counts = dict.fromkeys(("created", "updated", "unchanged", "skipped", "conflict"), 0)
    if batch.kind == "bundle":
        for key, value in (report.get("totals") or {}).items():
            if key in counts and isinstance(value, int):
                counts[key] = value
    else:
        for row in (report.get("tables") or {}).values():
            for key, value in row.items():
                key = "conflict" if key == "conflicts" else key
                if key in counts and isinstance(value, int):
                    counts[key] += value
    return counts


def records(batch: ImportBatch, page: int = 1, page_size: int = 50) -> Page:
    """Return one page of the records an import created or replaced, with their titles today."""
    page = max(1, page)
    total = _size(batch)
    rows = db.session.execute(select(ImportChange.record_type, ImportChange.record_uid, ImportChange.action)
                              .where(ImportChange.batch_id == batch.id).order_by(ImportChange.id)
                              .offset((page - 1) * page_size).limit(page_size)).all()
    items = [ImportedRecord(t, u, a) for t, u, a in rows]
    describe(items)
    return Page(items, total, page, page_size)


def describe(items: Sequence[ImportedRecord]) -> None:
    """Fill in the titles of records today (one query per record type), and whether they are still here."""
    by_type: dict[str, list[ImportedRecord]] = {}
    for item in items:
        by_type.setdefault(item.record_type, []).append(item)
    for key, group in by_type.items():
        uids = [i.uid for i in group]
        if key == "documents":
            found = {r.uid: r for r in db.session.execute(
                select(Document.uid, Document.title, Document.deleted, Document.linked_type, Document.linked_uid)
                .where(Document.uid.in_(uids)))}
            for i in group:
                row = found.get(i.uid)
                if row is not None:
                    i.title, i.present, i.deleted = row.title, True, row.deleted
                    if row.linked_type in RECORD_TYPES:
                        i.link_type, i.link_uid = row.linked_type, row.linked_uid
            continue
        rt = RECORD_TYPES.get(key)
        if rt is None:
            continue
        title = getattr(rt.model, rt.title_attr)
        if isinstance(title, property):  # a title made of several columns (a person's name): whole records
            found = {r.uid: (r.uid, rt.title_of(r), r.deleted) for r in db.session.scalars(
                select(rt.model).where(rt.model.uid.in_(uids)))}
        else:
            found = {r[0]: r for r in db.session.execute(
                select(rt.model.uid, title, rt.model.deleted).where(rt.model.uid.in_(uids)))}
        for i in group:
            row = found.get(i.uid)
            if row is not None:
                i.title, i.present, i.deleted = str(row[1] or ""), True, bool(row[2])
                i.link_type, i.link_uid = key, i.uid


# --------------------------------------------------------------------------- what blocks an undo

def blockers(batch: ImportBatch, limit: int = BLOCKERS_SHOWN, *, exhaustive: bool = False) -> list[Blocker]:
    """Return what prevents undoing `batch` (at most `limit` reasons; empty: it can be undone)."""
    if batch.status != "applied":
        return []
    found = _later_edits(batch, limit)
    if len(found) < limit:
        found += _later_imports(batch, limit - len(found))
    if len(found) < limit:
        found += _dependants(batch, limit - len(found), exhaustive=exhaustive)
    return found


def can_undo(batch: ImportBatch) -> bool:
    return batch.status == "applied" and not blockers(batch, limit=1)


def _created_by_type(batch: ImportBatch) -> dict[str, int]:
    """How many records of each type the import created: from a bundle's report (counting 100 000
    rows of its changes costs a page's time), else from its changes."""
    report = batch.report or {}
    # a bundle's report counts what it wrote, per table; a spreadsheet (20 000 rows at most) is counted
    tables = report.get("counts") if batch.kind == "bundle" else None
    if isinstance(tables, dict) and tables and all(isinstance(row, dict) and isinstance(row.get("created"), int)
                                                   for row in tables.values()):
        return {key: row["created"] for key, row in tables.items() if row["created"]}
    return dict(db.session.execute(select(ImportChange.record_type, func.count()).where(  # type: ignore[arg-type]
        ImportChange.batch_id == batch.id, ImportChange.action == "created").group_by(ImportChange.record_type)).all())


def _size(batch: ImportBatch) -> int:
    """How many records the import created or replaced (from a bundle's report, else counted)."""
    counts = counts_of(batch)
    if batch.kind == "bundle" and (counts["created"] or counts["updated"]):
        return counts["created"] + counts["updated"]
    return db.session.scalar(select(func.count()).select_from(ImportChange)
                             .where(ImportChange.batch_id == batch.id)) or 0


def _later_edits(batch: ImportBatch, limit: int) -> list[Blocker]:
    """Rows of the change log about the import's records written after it (not by imports or undos)."""
    last = db.session.scalar(select(func.max(ChangeLog.id))) or 0
    if last <= batch.log_mark:
        return []  # nothing at all was written since
    log, ch = ChangeLog.__table__, ImportChange.__table__
    later = and_(log.c.id > batch.log_mark, log.c.action.not_in(IMPORT_ACTIONS))
    if last - batch.log_mark < _size(batch):
        # fewer rows written since than records imported: read what was written since
        query = (select(log).where(later, exists(select(ch.c.id).where(ch.c.record_uid == log.c.record_uid,
                                                                        ch.c.batch_id == batch.id)))
                 .order_by(log.c.id).limit(limit))
        rows = list(db.session.execute(query).mappings())
    else:
        # a small import long ago: ask about each of its records
        uids = list(db.session.execute(
            select(ch.c.record_uid).where(ch.c.batch_id == batch.id, exists(select(log.c.id).where(
                log.c.record_uid == ch.c.record_uid, later))).order_by(ch.c.id).limit(limit)).scalars())
        rows = []
        for chunk in _chunks(uids):
            rows += db.session.execute(select(log).where(later, log.c.record_uid.in_(chunk))).mappings()
        rows.sort(key=lambda r: r["id"])
    seen: set[str] = set()
    found = []
    for row in rows:
        if row["record_uid"] in seen:
            continue  # the first change since is enough to name
        seen.add(row["record_uid"])
        found.append(Blocker("edit", row["record_type"], row["record_uid"], row["record_title"], row["username"],
                             row["at"], row["action"]))
    return found[:limit]


def _later_imports(batch: ImportBatch, limit: int) -> list[Blocker]:
    """Records of the import that a later import, still applied, replaced."""
    ch, batches = ImportChange.__table__, ImportBatch.__table__
    mine = ch.alias("mine")
    applied_later = and_(batches.c.id == ch.c.batch_id, batches.c.id > batch.id, batches.c.status == "applied")
    # Changes are numbered in the order imports wrote them: what came after ours is a difference of ids.
    last_mine = db.session.scalar(select(func.max(ch.c.id)).where(ch.c.batch_id == batch.id)) or 0
    written_after = (db.session.scalar(select(func.max(ch.c.id))) or 0) - last_mine
    if written_after <= 0:
        return []
    if written_after < _size(batch):
        query = (select(ch.c.record_type, ch.c.record_uid, ch.c.batch_id).select_from(ch.join(batches, applied_later))
                 .where(ch.c.batch_id > batch.id, exists(select(mine.c.id).where(
                     mine.c.record_uid == ch.c.record_uid, mine.c.batch_id == batch.id)))
                 .order_by(ch.c.id).limit(limit))
    else:
        later = ch.alias("later")
        query = (select(mine.c.record_type, mine.c.record_uid, later.c.batch_id)
                 .select_from(mine.join(later, and_(later.c.record_uid == mine.c.record_uid,
                                                    later.c.batch_id > batch.id))
                              .join(batches, and_(batches.c.id == later.c.batch_id, batches.c.status == "applied")))
                 .where(mine.c.batch_id == batch.id).order_by(mine.c.id).limit(limit))
    rows = db.session.execute(query).all()
    others = {b.id: b for b in db.session.scalars(select(ImportBatch).where(
        ImportBatch.id.in_(sorted({row[2] for row in rows}))))} if rows else {}
    found = []
    for record_type, uid, batch_id in rows:
        other = others[batch_id]
        found.append(Blocker("import", record_type, uid, username=other.username, at=other.created_at,
                             batch_uid=other.uid, batch_label=label(other)))
    items = [ImportedRecord(b.record_type, b.record_uid, "") for b in found]
    describe(items)
    for b, item in zip(found, items, strict=True):
        b.record_title = item.title
    return found


def label(batch: ImportBatch) -> str:
    """The name an import goes by: its file and its date."""
    return f"« {batch.filename or '?'} » ({batch.created_at:%Y-%m-%d %H:%M})"


def _dependants(batch: ImportBatch, limit: int, *, exhaustive: bool = False) -> list[Blocker]:
    """Records the import did not bring that point to a record it created (an undo would leave them
    pointing to nothing): a link field, or a link row (a carrier, a lesson's author…).

    Such a record was written after the import (what it points to did not exist before), so it has
    a row in the change log after the import's mark: when fewer rows were written since than the
    import created, only the records of those rows are examined. `exhaustive` examines every link
    to what the import created (the undo itself does, in case a record was written without a trace)."""
    from ..exchange import bundle_format as bf

    ch, log = ImportChange.__table__, ChangeLog.__table__
    mine = ch.alias("mine")
    created = _created_by_type(batch)
    if not created:
        return []
    candidates: dict[str, list[str]] | None = None
    if not exhaustive:
        last = db.session.scalar(select(func.max(ChangeLog.id))) or 0
        if last <= batch.log_mark:
            return []  # nothing was written since: nothing can point to what it created
        if last - batch.log_mark < sum(created.values()):
            candidates = {}
            for key, uid in db.session.execute(
                    select(log.c.record_type, log.c.record_uid).where(
                        log.c.id > batch.log_mark, ~exists(select(ch.c.id).where(
                            ch.c.record_uid == log.c.record_uid, ch.c.batch_id == batch.id))).distinct()):
                candidates.setdefault(key, []).append(uid)
    found: list[Blocker] = []

    def title_of(key: str, table: Any) -> Any:
        attr = bf.TABLES[key].rt.title_attr
        return table.c[attr] if attr in table.c else table.c.uid

    for key, table, joined, target_key, target in _links():
        if target_key not in created:
            continue
        if len(found) >= limit:
            break
        if candidates is not None and not candidates.get(key):
            continue
        query = (select(table.c.uid, title_of(key, table), title_of(target_key, target))
                 .select_from(joined.join(ch, and_(ch.c.record_uid == target.c.uid, ch.c.batch_id == batch.id,
                                                   ch.c.action == "created")))
                 .where(~exists(select(mine.c.id).where(mine.c.record_uid == table.c.uid,
                                                        mine.c.batch_id == batch.id).correlate(table)))
                 .limit(limit - len(found)))
        if candidates is None:
            found += [Blocker("link", key, uid, str(t or ""), target_title=str(tt or ""))
                      for uid, t, tt in db.session.execute(query)]
            continue
        for chunk in _chunks(candidates[key]):
            found += [Blocker("link", key, uid, str(t or ""), target_title=str(tt or ""))
                      for uid, t, tt in db.session.execute(query.where(table.c.uid.in_(chunk)))]
            if len(found) >= limit:
                break
    return found[:limit]


@cache
def _links() -> list[tuple[str, Any, Any, str, Any]]:
    """Every link between record types: (record type, its table, the FROM clause that reaches the
    linked record, the linked record's type, its aliased table). Built once: aliases are costly."""
    from ..exchange import bundle_format as bf

    found = []
    for key, rtable in bf.TABLES.items():
        table = rtable.table
        for col in rtable.columns:
            if col.kind == "ref":
                target = bf.TABLES[col.ref or ""].table.alias("target")
                found.append((key, table, table.join(target, target.c.id == table.c[col.attr]), col.ref or "", target))
        for child in rtable.children:
            if bf.is_column_child(child):
                continue
            ctable, owner_col, mapping = bf.child_db_table(child)
            for col in child.columns[1:]:
                if col.kind == "ref":
                    target = bf.TABLES[col.ref or ""].table.alias("target")
                    found.append((key, table, table.join(ctable, ctable.c[owner_col] == table.c.id)
                                  .join(target, target.c.id == ctable.c[mapping[col.name]]), col.ref or "", target))
    return found


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i:i + _IN_CHUNK]


# --------------------------------------------------------------------------- writing

def finish(batch: ImportBatch, *, backup: Path | str | None = None) -> ImportBatch:
    """Record, once an import has written, its backup and where its history ends (call before commit)."""
    db.session.flush()
    batch.log_mark = db.session.scalar(select(func.max(ChangeLog.id))) or 0
    if backup:
        batch.backup_name = Path(backup).name[:255]
    return batch


def backup_taker(engine: Any, backups: Path, keep: int | None) -> Callable[[], Path | None]:
    """Return the function that backs the database up before an import (the name is kept with the import)."""
    from . import backups as backup_service

    def take() -> Path | None:
        return backup_service.take(engine, backups, reason=backup_service.IMPORT, keep=keep)
    return take


def undo(uid: str, *, username: str, uploads: Path | None = None) -> ImportBatch:
    """Undo an import (bundle or spreadsheet) in the current transaction, unless something blocks it:
    then raise ImportBlockedError naming what."""
    from ..exchange import bundle_import

    return bundle_import.undo_import(get(uid).uid, username=username, uploads=uploads)


def refuse_if_blocked(batch: ImportBatch) -> None:
    """Raise ImportBlockedError if something blocks the undo (every link examined, not only the traced ones)."""
    found = blockers(batch, exhaustive=True)
    if found:
        raise ImportBlockedError(
            _("Cet import ne peut pas être annulé : %(n)s fiche(s) ont changé depuis ou s'appuient sur ce qu'il a "
              "apporté. %(first)s", n=f"{len(found)}+" if len(found) >= BLOCKERS_SHOWN else len(found),
              first=found[0].describe()), found)
