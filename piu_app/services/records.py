"""The life of every record of the register: list, read, create, update, tombstone, restore, link.

Rules that hold for every record type live here once: required fields, vocabulary codes, links
that must point to a live record, the version that every change bumps, the change history, the
full-text index, and the rule that a record belongs to the instance that made it (records that
came from another city are read-only here).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import Select, exists, func

from ..database import fold
from ..models import VISIBILITIES, ChangeLog, Experiment, Lesson, Review, ReviewScore, Theme, db, utcnow
from ..registry import (
    RECORD_TYPES,
    BackRef,
    Citation,
    Field,
    Link,
    RecordType,
    backrefs_to,
    reverse_citations_to,
    reverse_links_to,
)
from . import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError, vocabularies
from . import instance as instance_service
from . import search as search_service

MAX_NUMBER = 2**31 - 1  # fits every engine's INTEGER; larger amounts are typos
MAX_PAGE = 100_000
# C0 control characters and DEL: invisible, never typed on purpose (they come from a copy-paste or a
# forged request), and a NUL made every peer refuse the city's whole bundle. Refused, not stripped: a
# record is never saved different from what its author sees. Multi-line fields keep tab and line breaks.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_CONTROLS_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """Return the first forbidden control character of `value` as U+XXXX, or None if there is none."""
    found = (_CONTROLS_MULTILINE if multiline else _CONTROLS).search(value)
    return f"U+{ord(found.group()):04X}" if found else None


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


# --------------------------------------------------------------------------- reading

def get(rt: RecordType, uid: str, *, include_deleted: bool = True) -> Any:
    """Return the record of type `rt` with this uid, or raise NotFoundError."""
    record = db.session.scalars(db.select(rt.model).filter_by(uid=uid)).first()
    if record is None or (record.deleted and not include_deleted):
        raise NotFoundError(_("Cette fiche n'existe pas ou a été supprimée."))
    return record


def _filtered(rt: RecordType, filters: Mapping[str, str], *, deleted: bool, drafts_only: bool) -> Select:
    model = rt.model
    query = db.select(model).where(model.deleted.is_(deleted))
    if drafts_only:
        query = query.where(model.draft.is_(True))
    visibility = filters.get("visibility")
    if visibility in VISIBILITIES:
        query = query.where(model.visibility == visibility)
    for f in rt.filter_fields:
        value = filters.get(f.name)
        if not value:
            continue
        if f.kind == "themes":
            link = model.themes.property.secondary
            owner_col = next(c for c in link.c if c.name != "theme_id")
            theme_id = db.select(Theme.id).where(Theme.code == value).scalar_subquery()
            query = query.where(model.id.in_(db.select(owner_col).where(link.c.theme_id == theme_id)))
        elif f.kind == "ref":
            target = _live_by_uid(RECORD_TYPES[f.ref], value)
            query = query.where(getattr(model, f.column) == (target.id if target else -1))
        elif f.kind == "bool":
            query = query.where(getattr(model, f.column).is_(value == "1"))
        else:
            query = query.where(getattr(model, f.column) == value)
    if "territory" in rt.extra_filters and filters.get("territory"):
        # An innovation is "in" a territory when it was experimented there.
        territory = _live_by_uid(RECORD_TYPES["territories"], filters["territory"])
        query = query.where(exists().where(Experiment.innovation_id == model.id, Experiment.deleted.is_(False),
                                           Experiment.territory_id == (territory.id if territory else -1)))
    return query


def list_records(rt: RecordType, filters: Mapping[str, str] | None = None, *, page: int = 1, page_size: int = 25,
                 deleted: bool = False, drafts_only: bool = False, sort: str = "name") -> Page:
    """Return one page of records matching the filters, by title or by last change."""
    query = _filtered(rt, filters or {}, deleted=deleted, drafts_only=drafts_only)
    total = db.session.scalar(query.with_only_columns(func.count()).order_by(None)) or 0
    model = rt.model
    order = [model.updated_at.desc()] if sort == "updated" else [model.sort_key]
    page = min(max(1, page), MAX_PAGE)
    items = list(db.session.scalars(query.order_by(*order, model.id).limit(page_size).offset((page - 1) * page_size)))
    return Page(items, total, page, page_size)


def choices(rt: RecordType, *, limit: int = 2000) -> list[tuple[str, str]]:
    """Return (uid, title) of live records, for a select box."""
    model = rt.model
    live = (model.deleted.is_(False),)
    if rt.title_attr in model.__table__.c:  # two columns, not `limit` whole records (2 000 on every detail page)
        title = model.__table__.c[rt.title_attr]
        rows = db.session.execute(db.select(model.uid, title).where(*live).order_by(model.sort_key).limit(limit))
        return [(uid, str(text or "")) for uid, text in rows]
    records = db.session.scalars(db.select(model).where(*live).order_by(model.sort_key).limit(limit))
    return [(r.uid, rt.title_of(r)) for r in records]


def _live_by_uid(rt: RecordType, uid: str) -> Any:
    return db.session.scalars(db.select(rt.model).filter_by(uid=uid, deleted=False)).first()


def backrefs(rt: RecordType, record: Any, *, limit: int = 50) -> list[tuple[BackRef, list[Any]]]:
    """Return, per type that points to `record`, the live records that do (non-empty groups only)."""
    groups = []
    for backref in backrefs_to(rt):
        model = backref.source.model
        rows = list(db.session.scalars(
            db.select(model).where(getattr(model, backref.field.column) == record.id, model.deleted.is_(False))
            .order_by(model.sort_key).limit(limit)))
        groups.append((backref, rows))
    return groups


def reverse_links(rt: RecordType, record: Any) -> list[tuple[RecordType, Link, list[tuple[Any, str]]]]:
    """Return, per link that can point to `record`, the (owner, role) pairs that do."""
    found = []
    for rev in reverse_links_to(rt):
        link_model = rev.link.model
        owner_rel = getattr(link_model, _owner_relationship(rev.link))
        rows = db.session.execute(
            db.select(link_model).where(getattr(link_model, rev.link.target_fk) == record.id)).scalars()
        pairs = [(getattr(row, owner_rel.key), row.role) for row in rows]
        pairs = [(owner, role) for owner, role in pairs if not owner.deleted]
        found.append((rev.owner, rev.link, pairs))
    return found


def reverse_citations(rt: RecordType, record: Any, *, limit: int = 200) -> list[tuple[RecordType, Citation, list[Any]]]:
    """Return, per citation that can point to `record` (lessons citing a barrier), the live owners that do."""
    found = []
    for rev in reverse_citations_to(rt):
        table, model = rev.citation.table, rev.owner.model
        owners = list(db.session.scalars(
            db.select(model).join(table, table.c[rev.citation.owner_fk] == model.id)
            .where(table.c[rev.citation.target_fk] == record.id, model.deleted.is_(False))
            .order_by(model.sort_key, model.id).limit(limit)))
        found.append((rev.owner, rev.citation, owners))
    return found


def _owner_relationship(link: Link) -> str:
    return link.owner_fk.removesuffix("_id")


def history(record: Any) -> list[ChangeLog]:
    return list(db.session.scalars(db.select(ChangeLog).filter_by(record_uid=record.uid).order_by(ChangeLog.id.desc())))


# --------------------------------------------------------------------------- history in words

_UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LINK_ITEM = re.compile(r"(?s)(.*) \(([^()]*)\)")  # « Title (role) », as `add_link` and imports write them


@dataclass
class HistoryRow:
    label: str
    before: str
    after: str


@dataclass
class HistoryEntry:
    log: ChangeLog
    rows: list[HistoryRow]
    origin: str = ""   # the city an import came from

    @property
    def action(self) -> str:
        return {"create": _("création"), "update": _("modification"), "delete": _("suppression"),
                "restore": _("restauration"), "attach": _("document joint"), "detach": _("document retiré"),
                "import": _("import"), "import-undo": _("import annulé")}.get(self.log.action, self.log.action)


def history_in_words(rt: RecordType, record: Any, labels: Mapping[tuple[str, str], str]) -> list[HistoryEntry]:
    """Return the history of a record as its reader reads it: field labels, vocabulary labels in the
    page's language (`labels`, with themes under ("theme", code)), numbers, yes/no, sharing levels in
    words and linked records by their title.

    The history keeps what was stored (codes, raw numbers, linked uids for imports): it is put into
    words when shown, so that an entry written years ago reads in today's labels and language."""
    logs = history(record)
    uids: set[str] = set()
    for log in logs:
        for pair in (log.changes or {}).values():
            for value in pair if isinstance(pair, list) else ():
                if isinstance(value, str):
                    uids.update(_UID.findall(value))
    titles = _titles_of_uids(rt, uids)
    names = _change_labels(rt)
    entries = []
    for log in logs:
        changes = dict(log.changes or {})
        origin = ""
        if "origin" in changes and log.action in ("import", "import-undo"):
            pair = changes.pop("origin")
            origin = str(pair[1] if isinstance(pair, list) and len(pair) > 1 else pair)
        rows = []
        for name, pair in changes.items():
            before, after = (pair + ["", ""])[:2] if isinstance(pair, list) else ("", pair)
            rows.append(HistoryRow(names.get(name, name), _in_words(rt, name, before, labels, titles),
                                   _in_words(rt, name, after, labels, titles)))
        entries.append(HistoryEntry(log, rows, origin))
    return entries


def _change_labels(rt: RecordType) -> dict[str, str]:
    names = {f.name: str(f.label) for f in rt.fields}
    names.update({link.name: str(link.label) for link in rt.links})
    names.update({c.name: str(c.label) for c in rt.citations})
    names.update({"visibility": _("Niveau de partage"), "draft": _("Brouillon"), "deleted": _("Supprimée"),
                  "document": _("Document"), "origin": _("Origine")})
    return names


def _titles_of_uids(rt: RecordType, uids: set[str]) -> dict[str, str]:
    """Titles of the records that these uids name, among the types `rt` links to (a few per page)."""
    if not uids:
        return {}
    targets = ({f.ref for f in rt.fields if f.kind == "ref"} | {link.target for link in rt.links}
               | {c.target for c in rt.citations})
    found: dict[str, str] = {}
    wanted = sorted(uids)[:500]
    for key in sorted(t for t in targets if t):
        target = RECORD_TYPES[key]
        for row in db.session.scalars(db.select(target.model).where(target.model.uid.in_(wanted))):
            found[row.uid] = target.title_of(row)
    return found


def _in_words(rt: RecordType, name: str, raw: Any, labels: Mapping[tuple[str, str], str],
              titles: Mapping[str, str]) -> str:
    """One stored history value (a display string of `_snapshot`, or a bundle cell) in words."""
    if raw is None:
        return ""
    value = str(raw)
    if value == "":
        return ""
    if name == "visibility":
        return visibility_label(value)
    if name in ("draft", "deleted"):
        return _yes_no(value)
    link = next((lk for lk in rt.links if lk.name == name), None)
    if link is not None:
        items = value.split("; ") if all(_LINK_ITEM.fullmatch(v) for v in value.split("; ")) else [value]
        words = []
        for item in items:
            found = _LINK_ITEM.fullmatch(item)
            if found is None:
                words.append(titles.get(item, item))
                continue
            title, role = found.groups()
            words.append(f"{titles.get(title, title)} ({labels.get((link.role_vocab, role), role)})")
        return "; ".join(words)
    if any(c.name == name for c in rt.citations):  # titles (an edit) or uids (an import), "; "-joined
        return "; ".join(titles.get(item, item) for item in value.split("; "))
    f = next((fl for fl in rt.fields if fl.name == name), None)
    if f is None:
        return value
    if f.personal:
        return value  # already masked when it was written
    if f.kind == "vocab":
        return labels.get((f.vocab, value), value)
    if f.kind in ("vocab_list", "themes"):  # in alphabetical order: the stored order is the engine's
        vocabulary = "theme" if f.kind == "themes" else f.vocab
        return ", ".join(sorted((labels.get((vocabulary, code), code) for code in value.split(";") if code), key=fold))
    if f.kind == "scores":
        parts = []
        for item in value.split(";"):
            criterion, _eq, score = item.partition("=")
            parts.append(f"{labels.get((f.vocab, criterion), criterion)} {score}/5" if score else item)
        return ", ".join(parts)
    if f.kind == "bool":
        return _yes_no(value)
    if f.kind in ("int", "float"):
        try:
            number = float(value)
        except ValueError:
            return value
        return format_decimal(int(number) if number.is_integer() else number) if math.isfinite(number) else value
    if f.kind == "ref":
        return titles.get(value, value)
    return value


def _yes_no(value: str) -> str:
    return {"true": _("Oui"), "false": _("Non"), "1": _("Oui"), "0": _("Non")}.get(value.lower(), value)


def visibility_label(code: str) -> str:
    """A sharing level in words."""
    return {"private": _("Privé (local)"), "network": _("Réseau"), "public": _("Public")}.get(code, code)


def recent_changes(limit: int = 15) -> list[ChangeLog]:
    return list(db.session.scalars(db.select(ChangeLog).order_by(ChangeLog.id.desc()).limit(limit)))


def counts() -> dict[str, int]:
    return {key: db.session.scalar(db.select(func.count()).select_from(rt.model).where(rt.model.deleted.is_(False))) or 0
            for key, rt in RECORD_TYPES.items()}


def drafts(limit: int = 20) -> list[tuple[RecordType, Any]]:
    found = []
    for rt in RECORD_TYPES.values():
        for record in db.session.scalars(db.select(rt.model).where(rt.model.draft.is_(True), rt.model.deleted.is_(False))
                                         .order_by(rt.model.updated_at.desc()).limit(limit)):
            found.append((rt, record))
    return sorted(found, key=lambda pair: pair[1].updated_at, reverse=True)[:limit]


FINISHED_STATUSES = ("completed", "abandoned")


def experiments_without_lessons(limit: int = 20) -> list[Experiment]:
    """Live experiments that no live lesson learned points to, finished ones first."""
    has_lesson = exists().where(Lesson.experiment_id == Experiment.id, Lesson.deleted.is_(False))
    finished = Experiment.status.in_(FINISHED_STATUSES)
    found: list[Experiment] = []
    # One query per group, each walking (deleted, updated_at) newest first and stopping at `limit`:
    # one ORDER BY on "finished first" would sort every live experiment on each dashboard view.
    for group in (finished, ~finished):
        found += db.session.scalars(db.select(Experiment).where(Experiment.deleted.is_(False), group, ~has_lesson)
                                    .order_by(Experiment.updated_at.desc(), Experiment.id.desc())
                                    .limit(limit - len(found)))
        if len(found) >= limit:
            break
    return found


# --------------------------------------------------------------------------- display values

def display_value(rt: RecordType, f: Field, record: Any, labels: Mapping[tuple[str, str], str]) -> str:
    """Return a field's value as the user reads it (labels for codes, titles for links)."""
    if f.kind == "ref":
        target = getattr(record, f.name)
        return RECORD_TYPES[f.ref].title_of(target) if target is not None else ""
    if f.kind == "themes":
        return ", ".join(labels.get(("theme", t.code), t.label_fr) for t in getattr(record, f.name))
    if f.kind == "scores":
        return ", ".join(f"{labels.get((f.vocab, s.criterion), s.criterion)} {s.score}/5" for s in record.scores)
    value = getattr(record, f.column)
    if value is None or value == "":
        return ""
    if f.kind == "vocab":
        return labels.get((f.vocab, value), value)
    if f.kind == "vocab_list":
        return ", ".join(labels.get((f.vocab, v), v) for v in value.split(";") if v)
    if f.kind == "bool":
        return _("oui") if value else _("non")
    if f.kind == "float":
        return f"{value:,.2f}".replace(",", "\u202f").replace(".", ",").removesuffix(",00")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _snapshot(rt: RecordType, record: Any) -> dict[str, str]:
    """Return every field (and the sharing columns) as raw display strings, to diff changes."""
    values: dict[str, str] = {}
    for f in rt.fields:
        if f.kind == "ref":
            target = getattr(record, f.name)
            values[f.name] = RECORD_TYPES[f.ref].title_of(target) if target is not None else ""
        elif f.kind == "themes":
            values[f.name] = ";".join(t.code for t in getattr(record, f.name))
        elif f.kind == "scores":
            values[f.name] = ";".join(f"{s.criterion}={s.score}" for s in record.scores)
        else:
            value = getattr(record, f.column)
            values[f.name] = "" if value is None else (value.isoformat() if isinstance(value, dt.date) else str(value))
            if f.personal and values[f.name]:
                # The history says that a contact detail changed, never what it is (erasure must be possible).
                values[f.name] = "•" * 6 + hashlib.sha256(values[f.name].encode()).hexdigest()[:4]
    values["visibility"] = record.visibility
    values["draft"] = str(record.draft)
    return values


def _log(rt: RecordType, record: Any, action: str, username: str, changes: dict[str, list[str]] | None = None) -> None:
    db.session.add(ChangeLog(record_type=rt.key, record_uid=record.uid, record_title=rt.title_of(record)[:300],
                             action=action, username=username, changes=changes or {}))


# --------------------------------------------------------------------------- writing

def is_foreign(record: Any, own_code: str | None = None) -> bool:
    """Tell whether the record belongs to another city (read-only here); pass `own_code` when known."""
    own = instance_service.instance_code() if own_code is None else own_code
    return bool(record.origin_instance and own and record.origin_instance != own)


def check_editable(record: Any) -> None:
    """Refuse changes to a record of another city, or to one in the trash."""
    _check_owned(record)
    if record.deleted:
        raise ConflictError(_("Cette fiche est supprimée : restaurez-la avant de la modifier."))


def _check_owned(record: Any) -> None:
    if is_foreign(record):
        raise PermissionDeniedError(_("Cette fiche vient de « %(origin)s » : elle ne peut être modifiée que là-bas. "
                                      "Vous pouvez y ajouter vos propres avis, expérimentations ou retours.",
                                      origin=record.origin_instance))


def _assign(rt: RecordType, record: Any, values: Mapping[str, Any]) -> None:
    """Check `values` against the record type's rules and copy them onto the record."""
    errors: dict[str, str] = {}
    for f in rt.fields:
        if f.name not in values:
            continue
        value = values[f.name]
        if isinstance(value, str):
            value = value.strip()
        bad = next(filter(None, (control_character(v, multiline=f.kind == "textarea")
                                 for v in _strings(value))), None)
        if bad:
            errors[f.name] = _("Caractère de contrôle invisible interdit (%(code)s) : retirez-le "
                               "(il vient souvent d'un copier-coller).", code=bad)
            continue
        empty = value is None or value == "" or value == [] or value == {}
        if empty and f.required:
            errors[f.name] = _("Ce champ est obligatoire.")
            continue
        if f.kind in ("text", "textarea", "url", "email"):
            value = value or ""
            if f.max_length and len(value) > f.max_length:
                errors[f.name] = _("%(n)d caractères au plus.", n=f.max_length)
                continue
        elif f.kind in ("int", "float"):
            if not empty:
                try:
                    number = float(value)
                except (TypeError, ValueError, OverflowError):
                    errors[f.name] = _("Nombre attendu.")
                    continue
                if not math.isfinite(number):  # nan passed every comparison and was stored as NULL
                    errors[f.name] = _("Nombre attendu (ni « nan » ni « inf »).")
                    continue
                if (f.min_value is not None and number < f.min_value) or (f.max_value is not None and number > f.max_value):
                    errors[f.name] = _("Valeur attendue entre %(a)s et %(b)s.",
                                       a=_fmt(f.min_value), b=_fmt(f.max_value))
                    continue
                if abs(number) > MAX_NUMBER:
                    errors[f.name] = _("Nombre trop grand.")
                    continue
                try:
                    value = int(value) if f.kind == "int" else number
                except (TypeError, ValueError):
                    errors[f.name] = _("Nombre entier attendu.")
                    continue
            else:
                value = None
        elif f.kind == "bool":
            value = bool(value)
        elif f.kind == "date":
            value = value or None
        elif f.kind == "vocab":
            value = value or ""
            if value and value != getattr(record, f.column) and not vocabularies.is_valid(f.vocab, value):
                errors[f.name] = _("Valeur inconnue dans la liste « %(v)s ».", v=str(f.label))
                continue
        elif f.kind == "vocab_list":
            codes = [c for c in (value or []) if c]
            bad = [c for c in codes if not vocabularies.is_valid(f.vocab, c)]
            if bad:
                errors[f.name] = _("Valeur inconnue : %(v)s.", v=", ".join(bad))
                continue
            value = ";".join(codes)
        elif f.kind == "ref":
            if empty:
                setattr(record, f.name, None)
                continue
            current = getattr(record, f.name)
            if current is not None and current.uid == value:
                continue  # unchanged, even if the linked record was deleted since
            target = _live_by_uid(RECORD_TYPES[f.ref], value)
            if target is None:
                errors[f.name] = _("La fiche liée n'existe pas ou a été supprimée.")
                continue
            setattr(record, f.name, target)
            continue
        elif f.kind == "themes":
            codes = [c for c in (value or []) if c]
            themes = list(db.session.scalars(db.select(Theme).where(Theme.code.in_(codes)))) if codes else []
            if len(themes) != len(set(codes)):
                errors[f.name] = _("Thématique inconnue.")
                continue
            setattr(record, f.name, themes)
            continue
        elif f.kind == "scores":
            _assign_scores(record, value or {}, f, errors)
            continue
        setattr(record, f.column, value)
    if "visibility" in values:
        if values["visibility"] not in VISIBILITIES:
            errors["visibility"] = _("Niveau de partage inconnu.")
        else:
            record.visibility = values["visibility"]
    if "draft" in values:
        record.draft = bool(values["draft"])
    if errors:
        raise InvalidInputError(_("Le formulaire contient des erreurs."), field_errors=errors)


def _strings(value: Any) -> list[str]:
    """The strings a field's value holds (a text, the codes of a list, the keys of scores)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [v for v in (*value.keys(), *value.values()) if isinstance(v, str)]
    if isinstance(value, (list, tuple, set)):
        return [v for v in value if isinstance(v, str)]
    return []


def _fmt(number: float | None) -> str:
    return "…" if number is None else f"{number:g}"


def _assign_scores(record: Any, scores: Mapping[str, Any], f: Field, errors: dict[str, str]) -> None:
    wanted: dict[str, int] = {}
    for criterion, score in scores.items():
        if score in (None, ""):
            continue
        try:
            number = int(score)
        except (TypeError, ValueError):
            number = 0
        if not vocabularies.is_valid(f.vocab, criterion) or not 1 <= number <= 5:
            errors[f.name] = _("Chaque critère se note de 1 à 5.")
            return
        wanted[criterion] = number
    current = {s.criterion: s for s in record.scores}
    for criterion, row in current.items():
        if criterion not in wanted:
            record.scores.remove(row)
    for criterion, score in wanted.items():
        if criterion in current:
            current[criterion].score = score
        else:
            record.scores.append(ReviewScore(criterion=criterion, score=score))


def _before_save(rt: RecordType, record: Any) -> None:
    """Derived values that no form sets."""
    record.sort_key = fold(" ".join(str(getattr(record, attr) or "") for attr in rt.order_by))[:200]
    if isinstance(record, Review):
        # A review is "verified" when its organisation took part in the experiment it cites.
        exp = record.experiment
        record.verified = bool(exp and record.reviewer_org and record.innovation
                               and exp.innovation_id == record.innovation.id
                               and (exp.buyer_id == record.reviewer_org.id
                                    or any(link.organisation_id == record.reviewer_org.id
                                           for link in record.innovation.carrier_links)))


def create(rt: RecordType, values: Mapping[str, Any], *, username: str, origin: str | None = None,
           uid: str | None = None) -> Any:
    """Create a record of type `rt` owned by this instance (or by `origin`)."""
    record = rt.model(uid=uid) if uid else rt.model()
    record.visibility = rt.default_visibility
    record.origin_instance = origin if origin is not None else instance_service.instance_code()
    missing = {f.name: None for f in rt.fields if f.required and f.name not in values}
    with db.session.no_autoflush:  # the checks query the database; the record is not whole yet
        _assign(rt, record, {**missing, **values})
    _before_save(rt, record)
    db.session.add(record)
    db.session.flush()
    _log(rt, record, "create", username, {k: ["", v] for k, v in _snapshot(rt, record).items() if v not in ("", "False")})
    search_service.index(rt, record)
    return record


def update(rt: RecordType, record: Any, values: Mapping[str, Any], *, username: str,
           expected_version: int | None = None) -> Any:
    """Change a record; refused if someone else changed it since `expected_version` was read."""
    check_editable(record)
    if expected_version is not None and record.version != expected_version:
        raise ConflictError(_("Quelqu'un a modifié cette fiche pendant que vous la lisiez. "
                              "Rechargez la page pour voir sa version actuelle."))
    before = _snapshot(rt, record)
    with db.session.no_autoflush:
        _assign(rt, record, values)
    _before_save(rt, record)
    after = _snapshot(rt, record)
    changes = {k: [before.get(k, ""), v] for k, v in after.items() if before.get(k, "") != v}
    if changes:
        record.version += 1
        record.updated_at = utcnow()
        db.session.flush()
        _log(rt, record, "update", username, changes)
        search_service.index(rt, record)
    return record


def delete(rt: RecordType, record: Any, *, username: str) -> Any:
    """Tombstone a record (kept so that the deletion can be undone and can travel to peers)."""
    _check_owned(record)
    if not record.deleted:
        record.deleted = True
        record.version += 1
        record.updated_at = utcnow()
        _log(rt, record, "delete", username)
        search_service.remove(record)
    return record


def restore(rt: RecordType, record: Any, *, username: str) -> Any:
    """Undo a deletion (of this city's records only: another city's deletion is undone there)."""
    if is_foreign(record):
        raise PermissionDeniedError(_("Cette fiche vient de « %(origin)s » et y a été supprimée : seule cette ville "
                                      "peut la restaurer.", origin=record.origin_instance))
    if record.deleted:
        record.deleted = False
        record.version += 1
        record.updated_at = utcnow()
        _log(rt, record, "restore", username)
        search_service.index(rt, record)
    return record


def add_link(rt: RecordType, record: Any, link_name: str, *, target_uid: str, role: str, username: str) -> Any:
    """Link a record to another (e.g. an organisation that carries an innovation) with a role."""
    _check_owned(record)
    link = _link(rt, link_name)
    target = _live_by_uid(RECORD_TYPES[link.target], target_uid)
    if target is None:
        raise InvalidInputError(_("La fiche liée n'existe pas ou a été supprimée."))
    if not vocabularies.is_valid(link.role_vocab, role):
        raise InvalidInputError(_("Rôle inconnu."))
    rows = getattr(record, link.owner_attr)
    if any(getattr(row, link.target_fk) == target.id and row.role == role for row in rows):
        return record  # already linked with this role: nothing to do
    rows.append(link.model(**{link.target_attr: target, "role": role}))
    _touch(rt, record, username, {link.name: ["", f"{RECORD_TYPES[link.target].title_of(target)} ({role})"]})
    return record


def remove_link(rt: RecordType, record: Any, link_name: str, link_id: int, *, username: str) -> Any:
    _check_owned(record)
    link = _link(rt, link_name)
    rows = getattr(record, link.owner_attr)
    row = next((r for r in rows if r.id == link_id), None)
    if row is None:
        raise NotFoundError(_("Ce lien n'existe plus."))
    title = RECORD_TYPES[link.target].title_of(getattr(row, link.target_attr))
    rows.remove(row)
    _touch(rt, record, username, {link.name: [f"{title} ({row.role})", ""]})
    return record


def citation(rt: RecordType, name: str) -> Citation:
    for c in rt.citations:
        if c.name == name:
            return c
    raise NotFoundError(_("Lien inconnu."))


def add_citation(rt: RecordType, record: Any, name: str, *, target_uid: str, username: str) -> Any:
    """Cite a record from another (a lesson cites a barrier it met): once, whatever the number of calls."""
    _check_owned(record)
    c = citation(rt, name)
    target_rt = RECORD_TYPES[c.target]
    target = _live_by_uid(target_rt, target_uid)
    if target is None:
        raise InvalidInputError(_("La fiche liée n'existe pas ou a été supprimée."))
    cited = getattr(record, c.name)
    if any(t.id == target.id for t in cited):
        return record
    cited.append(target)
    _touch(rt, record, username, {c.name: ["", target_rt.title_of(target)]})
    return record


def remove_citation(rt: RecordType, record: Any, name: str, *, target_uid: str, username: str) -> Any:
    _check_owned(record)
    c = citation(rt, name)
    cited = getattr(record, c.name)
    target = next((t for t in cited if t.uid == target_uid), None)
    if target is None:
        raise NotFoundError(_("Ce lien n'existe plus."))
    cited.remove(target)
    _touch(rt, record, username, {c.name: [RECORD_TYPES[c.target].title_of(target), ""]})
    return record


def _link(rt: RecordType, link_name: str) -> Link:
    for link in rt.links:
        if link.name == link_name:
            return link
    raise NotFoundError(_("Lien inconnu."))


def _touch(rt: RecordType, record: Any, username: str, changes: dict[str, list[str]]) -> None:
    record.version += 1
    record.updated_at = utcnow()
    db.session.flush()
    _log(rt, record, "update", username, changes)
    search_service.index(rt, record)


# --------------------------------------------------------------------------- picking a record by its name

LOOKUP_LIMIT = 8          # matches offered for a typed name: a choice, never a list to scroll
LOOKUP_MAX_LENGTH = 200   # a name, not a text


@dataclass
class Match:
    """A live record offered for a typed name, with a few words that tell homonyms apart."""

    uid: str
    title: str
    detail: str
    exact: bool


def lookup(rt: RecordType, text: str, *, lang: str = "fr", limit: int = LOOKUP_LIMIT) -> list[Match]:
    """Return up to `limit` live records of type `rt` matching a typed name: those whose name starts with
    it first (alphabetical), then full-text matches (ranked). The cost does not grow with the register."""
    text = (text or "").strip()
    if len(text) > LOOKUP_MAX_LENGTH:
        raise InvalidInputError(_("Nom trop long : %(n)d caractères au plus.", n=LOOKUP_MAX_LENGTH))
    key = fold(text)
    if not key or control_character(text):
        return []
    model = rt.model
    # A range on the folded sort key (indexed), rather than LIKE, which SQLite cannot serve from an index.
    upper = key[:-1] + chr(ord(key[-1]) + 1)
    found = list(db.session.scalars(db.select(model).where(model.deleted.is_(False), model.sort_key >= key,
                                                           model.sort_key < upper)
                                    .order_by(model.sort_key).limit(limit)))
    if len(found) < limit:
        seen = {r.uid for r in found}
        results, _total = search_service.search(text, record_types=[rt.key], page_size=limit * 2)
        found += [r.record for r in results if r.record.uid not in seen and not r.record.deleted][:limit - len(found)]
    labels = vocabularies.label_map(lang)
    shown = [f for f in rt.list_fields if f.name != rt.title_attr and f.kind in ("vocab", "ref", "text")][:2]
    return [Match(r.uid, rt.title_of(r), " · ".join(v for f in shown if (v := display_value(rt, f, r, labels))),
                  fold(rt.title_of(r)) == key) for r in found]


def quick_values(rt: RecordType, title: str) -> dict[str, Any]:
    """Return the values of a new record known only by its name (a person's name is split in two)."""
    title = " ".join((title or "").split())
    if rt.key == "persons":
        given, _sep, family = title.rpartition(" ")
        return {"given_name": given, "family_name": family}
    return {rt.title_attr: title}


def create_named(rt: RecordType, title: str, values: Mapping[str, Any], *, username: str) -> Any:
    """Create a record known only by its name (and the required choices in `values`), as a draft to complete."""
    if not title.strip():
        raise InvalidInputError(_("Indiquez le nom de la fiche à créer."))
    return create(rt, {**values, **quick_values(rt, title), "draft": True}, username=username)


def is_live(rt: RecordType, uid: str) -> bool:
    """Tell whether a live record of type `rt` has this uid."""
    return _live_by_uid(rt, uid) is not None
