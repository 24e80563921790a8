"""The barrier catalogue ("freins"): find a barrier close to a note, create one, and count where each is cited.

A barrier is a register record like the others (list, form, history, bundles: `services.records`);
what only barriers have lives here:
- `similar`: the live barriers that share words with a sticky note's text, so that the facilitator
  promotes a note to an existing barrier rather than making a duplicate;
- `create`: a new barrier, through `records.create` (history, search index, version);
- the citations: lessons learned that cite a barrier (`lesson_barriers`), and workshop notes and
  themes promoted to it (`promoted_kind == "barrier"`, `promoted_uid` = its uid), this city's and
  the peers' records alike (a peer's lessons and workshops arrive in its bundles). A hidden or
  pending note, a deleted record and a deleted barrier count nowhere.

Every function here reads a bounded number of queries, whatever the size of the register: one
aggregate per kind of citation, then the page's barriers in one query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ..database import fold
from ..models import (
    Barrier,
    Board,
    Experiment,
    ImportBatch,
    InstanceSettings,
    Lesson,
    NoteTheme,
    StickyNote,
    Territory,
    Workshop,
    db,
    lesson_barriers,
)
from ..registry import BARRIERS, TEXT_KINDS
from . import InvalidInputError, records
from . import instance as instance_service
from .peers import significant_words

PROMOTED_KIND = "barrier"       # StickyNote / NoteTheme.promoted_kind of a note turned into a barrier
SIMILAR_SCAN = 5000             # live barriers compared with a note, the most recently changed first
MAX_TEXT_LENGTH = 2000          # a note's text, not a document
MOST_CITED_LIMIT = 50


# --------------------------------------------------------------------------- similar barriers

def similar(text: str, *, actor_group: str = "", limit: int = 5) -> list[Barrier]:
    """Return up to `limit` live barriers close to a note's text: those sharing significant words with it
    (accents, case and plural folded), the same actor group first, then the most words in common.

    The facilitator is offered these before creating a new barrier from a note. Nothing is returned for
    a text without significant words (« Oui ! »)."""
    if not isinstance(text, str) or not isinstance(actor_group, str):
        raise InvalidInputError(_("Texte attendu."))
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidInputError(_("%(n)d caractères au plus.", n=MAX_TEXT_LENGTH))
    limit = max(0, min(int(limit), 50))
    wanted = set(significant_words(text))
    if not wanted or not limit:
        return []
    rows = db.session.execute(
        select(Barrier.id, Barrier.label, Barrier.description, Barrier.actor_group, Barrier.sort_key)
        .where(Barrier.deleted.is_(False)).order_by(Barrier.updated_at.desc(), Barrier.id.desc())
        .limit(SIMILAR_SCAN))
    scored = []
    for id_, label, description, group, sort_key in rows:
        in_label = wanted & set(significant_words(label))
        in_text = wanted & set(significant_words(description or ""))
        common = len(in_label | in_text)
        if not common:
            continue
        # label words weigh twice: the label is what the barrier is; the description, how it is told
        score = common + len(in_label)
        same_group = bool(actor_group) and group == actor_group
        scored.append((not same_group, -score, sort_key, id_))
    best = [row[-1] for row in sorted(scored)[:limit]]
    if not best:
        return []
    found = {b.id: b for b in db.session.scalars(select(Barrier).where(Barrier.id.in_(best)))}
    return [found[i] for i in best if i in found]


# --------------------------------------------------------------------------- creating

def create(label: str, *, description: str = "", actor_group: str = "", nature: str = "", levers: str = "",
           themes: Sequence[str] = (), visibility: str | None = None, username: str) -> Barrier:
    """Create a barrier owned by this city (checked like a form: required label, lengths, vocabulary codes,
    no control character), with its history, its search entry and its first version. The caller commits."""
    values: dict[str, Any] = {"label": label, "description": description, "actor_group": actor_group,
                              "nature": nature, "levers": levers, "themes": list(themes)}
    for name, value in values.items():
        kind = BARRIERS.field(name).kind
        if kind in TEXT_KINDS or kind == "vocab":
            if not isinstance(value, str):
                raise InvalidInputError(_("Texte attendu."), field_errors={name: _("Texte attendu.")})
        elif isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise InvalidInputError(_("Thématique inconnue."), field_errors={name: _("Thématique inconnue.")})
    if visibility is not None:
        values["visibility"] = visibility
    return records.create(BARRIERS, values, username=username)


# --------------------------------------------------------------------------- citations

@dataclass
class Citations:
    """Where one barrier is cited: by how many lessons, workshop notes and themes, in which cities
    (instance codes) and territories."""

    barrier_id: int
    lessons: int = 0
    notes: int = 0
    themes: int = 0
    cities: set[str] = field(default_factory=set)
    territories: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.lessons + self.notes + self.themes


@dataclass
class CitedBarrier:
    """A barrier of the ranking, with its citations and the names of the cities that cite it."""

    barrier: Barrier
    citations: Citations
    city_names: list[str]
    territory_names: list[str]
    workshops: list[WorkshopCitation] = field(default_factory=list)   # filled by `citations_of`

    @property
    def total(self) -> int:
        return self.citations.total


def _lesson_rows(barrier_ids: Sequence[int] | None) -> Any:
    """(barrier id, city code, territory name, lessons) of live lessons citing barriers (deleted ones
    included: joining each citation to its barrier cost a third of the query; see `citation_counts`)."""
    lb = lesson_barriers
    query = (select(lb.c.barrier_id, Lesson.origin_instance, Territory.name, func.count())
             .select_from(lb)
             .join(Lesson, Lesson.id == lb.c.lesson_id)
             .outerjoin(Experiment, (Experiment.id == Lesson.experiment_id) & Experiment.deleted.is_(False))
             .outerjoin(Territory, (Territory.id == Experiment.territory_id) & Territory.deleted.is_(False))
             .where(Lesson.deleted.is_(False))
             .group_by(lb.c.barrier_id, Lesson.origin_instance, Territory.name))
    if barrier_ids is not None:
        query = query.where(lb.c.barrier_id.in_(barrier_ids))
    return db.session.execute(query)


@dataclass(frozen=True)
class _BoardPlace:
    workshop_id: int
    workshop_uid: str
    title: str
    city: str           # the workshop's instance code
    territory: str
    date: Any


def _promoted(model: Any, barrier_uids: Sequence[str] | None) -> list[tuple[str, int, int]]:
    """(barrier uid, board id, count) of the notes or themes promoted to a barrier (hidden and pending
    notes left out). Read from `ix_sticky_notes_promoted` / `ix_note_themes_promoted` alone, already in
    (uid, board) order: the promoted range for the ranking, one barrier's entries for its page (which
    walked every note of the register before migration 0014). Joining each note to its barrier, board
    and workshop cost SQLite 0.7 s at 100 000 notes; the few boards and barriers are looked up after."""
    query = (select(model.promoted_uid, model.board_id, func.count())
             .where(model.promoted_kind == PROMOTED_KIND).group_by(model.promoted_uid, model.board_id))
    if model is StickyNote:
        query = query.where(StickyNote.hidden.is_(False), StickyNote.pending.is_(False))
    if barrier_uids is not None:
        query = query.where(model.promoted_uid.in_(barrier_uids))
    return [tuple(row) for row in db.session.execute(query)]


# The two lookups below read the `deleted` flags and leave the tombstones out here, not in SQL: given
# "deleted = false" beside a short list of ids, SQLite (without statistics) walked every live board or
# barrier through a (deleted, …) index instead of looking up the few it was given by key.

def _board_places(board_ids: Iterable[int]) -> dict[int, _BoardPlace]:
    """The live boards of live workshops among `board_ids`, with their workshop's city and territory."""
    ids = sorted(set(board_ids))
    found: dict[int, _BoardPlace] = {}
    for i in range(0, len(ids), _IN_CHUNK):
        query = (select(Board.id, Board.deleted, Workshop.deleted, Workshop.id, Workshop.uid, Workshop.title,
                        Workshop.origin_instance, Territory.name, Workshop.date)
                 .join(Workshop, Workshop.id == Board.workshop_id)
                 .outerjoin(Territory, (Territory.id == Workshop.territory_id) & Territory.deleted.is_(False))
                 .where(Board.id.in_(ids[i:i + _IN_CHUNK])))
        for board_id, board_deleted, workshop_deleted, *place in db.session.execute(query):
            if not board_deleted and not workshop_deleted:
                found[board_id] = _BoardPlace(*place[:4], place[4] or "", place[5])
    return found


def _live_barrier_ids(uids: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(uids))
    found: dict[str, int] = {}
    for i in range(0, len(wanted), _IN_CHUNK):
        rows = db.session.execute(select(Barrier.uid, Barrier.id, Barrier.deleted)
                                  .where(Barrier.uid.in_(wanted[i:i + _IN_CHUNK])))
        found.update((uid, id_) for uid, id_, deleted in rows if not deleted)
    return found


_IN_CHUNK = 5000  # values of one IN list (PostgreSQL takes 65 535 parameters, SQLite 32 766)


class _Private(dict):
    """{id: city} of the private barriers (a city's own, never shared): only their city's lessons and
    workshops may cite them; a peer's bundle that names one (it cannot know it honestly) counts for nothing."""

    own: str = ""

    def allows(self, barrier_id: int, city: str) -> bool:
        return barrier_id not in self or self[barrier_id] == (city or self.own)


def _tombstones_and_private(ids: Sequence[int] | None) -> tuple[set[int], _Private]:
    """The deleted barriers (of `ids` if given), and the private ones: one statement (few rows: a city's
    own unshared barriers and its tombstones), this city's code read with them."""
    own_code = select(InstanceSettings.instance_code).limit(1).scalar_subquery()
    query = select(Barrier.id, Barrier.deleted, Barrier.origin_instance, own_code).where(
        or_(Barrier.deleted.is_(True), Barrier.visibility == "private"))
    if ids is not None:
        query = query.where(Barrier.id.in_(ids))
    deleted, private = set(), _Private()
    for id_, is_deleted, origin, own in db.session.execute(query):
        private.own = own or ""
        if is_deleted:
            deleted.add(id_)
        else:
            private[id_] = origin
    for id_, origin in private.items():
        private[id_] = origin or private.own
    return deleted, private


def _workshop_citations(barrier_uids: Sequence[str] | None, private: _Private | None = None
                        ) -> tuple[dict[int, Citations], dict[int, _BoardPlace], list[tuple[int, int, int, int]]]:
    """Citations by workshop notes and themes: per barrier id, the boards' places, and the rows
    (barrier id, board id, notes, themes)."""
    if private is None:
        _deleted, private = _tombstones_and_private(None)
    notes, themes = _promoted(StickyNote, barrier_uids), _promoted(NoteTheme, barrier_uids)
    places = _board_places(board for _uid, board, _n in (*notes, *themes))
    barrier_ids = _live_barrier_ids(uid for uid, board, _n in (*notes, *themes) if board in places)
    per_board: dict[tuple[int, int], list[int]] = {}
    for n, rows in enumerate((notes, themes)):
        for uid, board, count in rows:
            if board in places and uid in barrier_ids and private.allows(barrier_ids[uid], places[board].city):
                per_board.setdefault((barrier_ids[uid], board), [0, 0])[n] += count
    found: dict[int, Citations] = {}
    for (barrier_id, board), (n_notes, n_themes) in per_board.items():
        c = found.get(barrier_id)
        if c is None:  # not setdefault: it would build a Citations for each of 25 000 (barrier, board) pairs
            c = found[barrier_id] = Citations(barrier_id)
        c.notes += n_notes
        c.themes += n_themes
        place = places[board]
        if place.city:
            c.cities.add(place.city)
        if place.territory:
            c.territories.add(place.territory)
    return found, places, [(b, board, n, t) for (b, board), (n, t) in per_board.items()]


def citation_counts(barrier_ids: Iterable[int] | None = None) -> dict[int, Citations]:
    """Return {barrier id: its citations} for the live barriers cited at least once (of `barrier_ids` if
    given): a fixed number of aggregate queries, whatever the number of barriers and citations."""
    ids = None if barrier_ids is None else sorted(set(barrier_ids))
    if ids is not None and not ids:
        return {}
    uids = None if ids is None else list(db.session.scalars(select(Barrier.uid).where(Barrier.id.in_(ids))))
    deleted, private = _tombstones_and_private(ids)
    found, _places, _rows = _workshop_citations(uids, private)
    for barrier_id, city, territory, count in _lesson_rows(ids):
        if not private.allows(barrier_id, city):
            continue
        c = found.setdefault(barrier_id, Citations(barrier_id))
        c.lessons += count
        if city:
            c.cities.add(city)
        if territory:
            c.territories.add(territory)
    for barrier_id in deleted:
        found.pop(barrier_id, None)
    return found


def city_names(codes: Iterable[str]) -> dict[str, str]:
    """{instance code: city name}: this city's own name, and each peer's as its latest bundle gave it."""
    codes = {c for c in codes if c}
    names: dict[str, str] = {}
    if not codes:
        return names
    rows = db.session.execute(select(ImportBatch.origin_instance, ImportBatch.origin_name)
                              .where(ImportBatch.origin_instance.in_(codes), ImportBatch.origin_name != "")
                              .order_by(ImportBatch.created_at, ImportBatch.id))
    names.update({code: name for code, name in rows})
    settings = instance_service.current()
    if settings is not None and settings.instance_code in codes:
        names[settings.instance_code] = settings.city_name
    return names


def most_cited(*, actor_group: str = "", nature: str = "", limit: int = MOST_CITED_LIMIT) -> list[CitedBarrier]:
    """Return the live barriers cited at least once, the most cited first (then those cited in the most
    cities, then by label), with where they were cited: the network's view of what holds innovation back."""
    counts = citation_counts()
    if not counts:
        return []
    query = select(Barrier.id, Barrier.sort_key).where(Barrier.id.in_(list(counts)), Barrier.deleted.is_(False))
    if actor_group:
        query = query.where(Barrier.actor_group == actor_group)
    if nature:
        query = query.where(Barrier.nature == nature)
    keys = dict(db.session.execute(query).all()) if len(counts) <= 20_000 else _keys_in_chunks(query, counts)
    ranked = sorted(keys, key=lambda i: (-counts[i].total, -len(counts[i].cities), keys[i], i))[:max(0, limit)]
    return _cited(ranked, counts)


def _keys_in_chunks(query: Any, counts: dict[int, Citations]) -> dict[int, str]:
    """The same as the query, without an IN list too long for an engine (PostgreSQL takes 65 535 values)."""
    ids = list(counts)
    found: dict[int, str] = {}
    for i in range(0, len(ids), 10_000):
        chunk = ids[i:i + 10_000]
        found.update(db.session.execute(query.where(Barrier.id.in_(chunk))).all())
    return found


def _cited(ids: list[int], counts: dict[int, Citations]) -> list[CitedBarrier]:
    barriers = {b.id: b for b in db.session.scalars(select(Barrier).where(Barrier.id.in_(ids)))} if ids else {}
    names = city_names(set().union(*(counts[i].cities for i in ids)) if ids else set())
    result = []
    for i in ids:
        c = counts[i]
        cities = sorted((names.get(code, code) for code in c.cities), key=fold)
        result.append(CitedBarrier(barriers[i], c, cities, sorted(c.territories, key=fold)))
    return result


def citations_of(barrier: Barrier) -> CitedBarrier:
    """Where one barrier is cited (its detail page), with the workshops that cite it."""
    _deleted, private = _tombstones_and_private([barrier.id])
    found, places, rows = _workshop_citations([barrier.uid], private)
    c = found.get(barrier.id, Citations(barrier.id))
    for _id, city, territory, count in _lesson_rows([barrier.id]):
        if not private.allows(barrier.id, city):
            continue
        c.lessons += count
        if city:
            c.cities.add(city)
        if territory:
            c.territories.add(territory)
    per_workshop: dict[int, list[int]] = {}
    for _barrier_id, board, n_notes, n_themes in rows:
        counts = per_workshop.setdefault(places[board].workshop_id, [0, 0])
        counts[0] += n_notes
        counts[1] += n_themes
    workshops = {places[board].workshop_id: places[board] for _b, board, _n, _t in rows}
    names = city_names(c.cities | {w.city for w in workshops.values()})
    ordered = sorted(workshops.values(), key=lambda w: (w.date is not None, w.date or dt.date.min, w.workshop_id),
                     reverse=True)  # the latest first, undated last
    cited = CitedBarrier(barrier, c, sorted((names.get(code, code) for code in c.cities), key=fold),
                         sorted(c.territories, key=fold))
    cited.workshops = [WorkshopCitation(w.workshop_uid, w.title, names.get(w.city, w.city),
                                        *per_workshop[w.workshop_id]) for w in ordered[:WORKSHOPS_SHOWN]]
    return cited


WORKSHOPS_SHOWN = 50


@dataclass
class WorkshopCitation:
    uid: str
    title: str
    city: str
    notes: int
    themes: int
