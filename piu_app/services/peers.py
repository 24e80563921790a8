"""Learn from peers: who tried an innovation (or a theme) in a territory like ours.

Peers are the experiments whose `origin_instance` is another city: they came in a bundle from the
network. Our own experiments are already on the innovation's page, so they are not listed here.

Peers are ranked by how alike their territory is to ours (the home territory), then by recency.
The likeness score adds up points; an unknown value on either side scores nothing (no penalty):

- same country ............................................ 3
- same population band .................................... 3 (adjacent band: 1.5)
  bands: < 20 000 · 20 000–100 000 · 100 000–500 000 · 500 000–2 000 000 · > 2 000 000
- same density class ...................................... 2 (adjacent class: 1)
  the INSEE 7-level grid (`density_fr`) when both have it, else the DEGURBA degree (`degurba_l1`)
- each shared feature (littoral, insulaire, montagne…) .... 1

On an innovation's page the peers' experiments of the innovation itself come first, then those of
similar innovations: sharing themes (2 points each) or words of their name and tagline (1 point
each, 3 at most), shown from 3 points (or when every theme of ours is shared). Those are ranked by
innovation likeness, then territory likeness: the points are coarse, so territories order each tier;
a peer's experiment without a territory is ranked by its innovation alone. The innovations peers tried
are kept in memory with their themes and words (`_PeerCatalogue`, read again after an import, an undo
or an edit of one of them), so finding the similar ones reads nothing from the database and its cost
grows with what peers shared, not with the register.

Contact details of the people behind a lesson or a review are shown only for a person whose record
is public with a recorded consent (the rule of the network bundle: others never carry them).
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, event, func, or_, union_all
from sqlalchemy.orm import Session, selectinload

from ..database import fold
from ..models import (
    ChangeLog,
    Experiment,
    ImportBatch,
    Innovation,
    Lesson,
    LessonPerson,
    Person,
    Review,
    Territory,
    Theme,
    db,
)
from ..models.innovations import innovation_themes
from . import NotFoundError, vocabularies
from . import instance as instance_service

# templates/peers/_ranking.html explains these weights to the user: change both together.
COUNTRY_POINTS = 3.0
POPULATION_POINTS = 3.0
DENSITY_POINTS = 2.0
FEATURE_POINTS = 1.0
MAX_CANDIDATES = 2000  # peers' experiments ranked per query; the most recent ones when there are more
THEME_LIKENESS = 2.0     # per theme an innovation shares with ours
WORD_LIKENESS = 1.0      # per significant word of name and tagline in common …
MAX_WORDS = 3            # … counted up to this many
MIN_LIKENESS = 3.0       # below this an innovation is not called similar (unless it has every theme of ours)
CANDIDATES_PER_SOURCE = 20_000  # innovations peers tried counted per theme and per word (the newest)
MAX_TRIED_IN_THEME = 20_000  # a theme's innovations peers tried, asked for by id (the newest: bound parameters)
MAX_THEMES = 6           # themes of the innovation looked at (an innovation has two or three)
_STOPWORDS = frozenset(fold(w) for w in (
    "avec dans pour sans plus leur leurs dont entre sont être avoir fait faire cette ces tout tous toute "
    "toutes quand comme mais très bien aussi autre autres chaque selon vers chez sous elle elles nous vous "
    "their with from that this which into each more than over also they them where when what "
    "ville villes commune communes city cities"
).split())

# Upper bounds (exclusive) of the population bands; the last band is open.
POPULATION_BOUNDS = (20_000, 100_000, 500_000, 2_000_000)
POPULATION_BANDS = (_l("moins de 20 000 habitants"), _l("20 000 à 100 000 habitants"),
                    _l("100 000 à 500 000 habitants"), _l("500 000 à 2 millions d'habitants"),
                    _l("plus de 2 millions d'habitants"))
DEGURBA = {1: _l("ville"), 2: _l("ville moyenne ou banlieue"), 3: _l("zone rurale")}


@dataclass(frozen=True)
class Contact:
    """A person behind a peer's lesson or review who agreed to be reached."""

    person: Person
    roles: tuple[str, ...]  # lesson_person_role codes, or "reviewer"
    email: str
    phone: str


@dataclass
class PeerExperiment:
    """A peer's experiment with why its territory resembles ours and what it taught."""

    experiment: Experiment
    score: float
    reasons: list[str]
    origin_name: str
    lessons: list[Lesson] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    match: str = "same"  # same: this very innovation · similar: a similar one · theme: of the chosen theme
    likeness: float = 0.0  # how alike the innovation is to the one asked about (similar only)
    why: list[str] = field(default_factory=list)  # why the innovation is shown, in short phrases

    @property
    def average_score(self) -> float | None:
        """Return the mean of every criterion score of the reviews (1–5), or None without scores."""
        scores = [s.score for r in self.reviews for s in r.scores]
        return round(mean(scores), 1) if scores else None

    @property
    def recommend(self) -> tuple[int, int]:
        """Return (reviews that would recommend, reviews)."""
        return sum(r.would_recommend for r in self.reviews), len(self.reviews)


# --------------------------------------------------------------------------- home and likeness

def home_territory() -> Territory | None:
    """Return the city's own territory: the configured one, else the one most used by our experiments."""
    settings = instance_service.current()
    if settings is None:
        return None
    if settings.home_territory_uid:
        chosen = db.session.scalars(db.select(Territory).filter_by(uid=settings.home_territory_uid,
                                                                   deleted=False)).first()
        if chosen is not None:
            return chosen
    # Among our own territories, the one most experiments took place in: counted on the
    # (territory_id, deleted, …) index alone, territory by territory. Counting our experiments
    # (their origin is in the table, not the index) read all of them: 110 ms a page at 100 000.
    uses = func.count()
    ours = db.select(Territory.id).where(Territory.origin_instance == settings.instance_code,
                                         Territory.deleted.is_(False))
    top = db.session.execute(
        db.select(Experiment.territory_id, uses)
        .where(Experiment.territory_id.in_(ours), Experiment.deleted.is_(False))
        .group_by(Experiment.territory_id).order_by(uses.desc(), Experiment.territory_id).limit(1)).first()
    return db.session.get(Territory, top[0]) if top else None


def population_band(population: int | None) -> int | None:
    """Return the index of the population band (0 = under 20 000 … 4 = over 2 million), or None."""
    if population is None:
        return None
    return next((i for i, bound in enumerate(POPULATION_BOUNDS) if population < bound), len(POPULATION_BOUNDS))


def _features(territory: Territory) -> set[str]:
    return {code for code in (territory.features or "").split(";") if code}


def similarity(home: Territory | None, other: Territory | None,
               feature_labels: Mapping[str, str] | None = None) -> tuple[float, list[str]]:
    """Score how alike `other` is to `home` (see the module's docstring) and say why, in short phrases."""
    if home is None or other is None:
        return 0.0, []
    score, reasons = 0.0, []
    if home.country_code and home.country_code == other.country_code:
        score += COUNTRY_POINTS
        reasons.append(_("Même pays (%(code)s)", code=other.country_code))
    ours, theirs = population_band(home.population), population_band(other.population)
    if ours is not None and theirs is not None and abs(ours - theirs) <= 1:
        same = ours == theirs
        score += POPULATION_POINTS if same else POPULATION_POINTS / 2
        band = str(POPULATION_BANDS[theirs])
        reasons.append(_("Même taille : %(band)s", band=band) if same else _("Taille voisine : %(band)s", band=band))
    if home.density_fr and other.density_fr:
        gap = abs(home.density_fr - other.density_fr)
        if gap <= 1:
            score += DENSITY_POINTS if gap == 0 else DENSITY_POINTS / 2
            reasons.append(_("Même densité (niveau %(n)d sur 7)", n=other.density_fr) if gap == 0
                           else _("Densité voisine (niveau %(n)d sur 7)", n=other.density_fr))
    elif home.degurba_l1 and other.degurba_l1:
        gap = abs(home.degurba_l1 - other.degurba_l1)
        if gap <= 1:
            score += DENSITY_POINTS if gap == 0 else DENSITY_POINTS / 2
            kind = str(DEGURBA.get(other.degurba_l1, other.degurba_l1))
            reasons.append(_("Même degré d'urbanisation : %(kind)s", kind=kind) if gap == 0
                           else _("Degré d'urbanisation voisin : %(kind)s", kind=kind))
    labels = feature_labels or {}
    for code in sorted(_features(home) & _features(other)):
        score += FEATURE_POINTS
        reasons.append(_("Point commun : %(feature)s", feature=labels.get(code, code)))
    return score, reasons


# --------------------------------------------------------------------------- who tried it

def theme(code: str) -> Theme:
    """Return the live theme with this code, or raise NotFoundError."""
    found = db.session.scalars(db.select(Theme).filter_by(code=code, deleted=False)).first()
    if found is None:
        raise NotFoundError(_("Cette thématique n'existe pas."))
    return found


def who_tried(innovation: Innovation | None = None, theme_code: str | None = None, limit: int = 50,
              *, lang: str = "fr", details: bool = True, home: Territory | None | bool = True) -> list[PeerExperiment]:
    """Return peers' live experiments of an innovation (or of a theme and its sub-themes), most alike first."""
    own = instance_service.instance_code()
    query = _peer_experiments(own)
    if innovation is not None:
        query = query.where(Experiment.innovation_id == innovation.id)
    if theme_code is not None:
        # the theme's innovations that peers tried, found in memory: asking SQL for the peers'
        # experiments of every innovation of a theme probed 15 000 innovations at 100 000
        codes = list(db.session.scalars(db.select(Theme.id).where((Theme.code == theme_code)
                                                                  | (Theme.parent_code == theme_code))))
        tried = _newest_of_themes(_peer_catalogue(), codes, MAX_TRIED_IN_THEME)
        if not tried:
            return []
        query = query.where(Experiment.innovation_id.in_(tried))
    results = _ranked(db.session.execute(query).all(), limit, lang=lang, home=home,
                      match="theme" if theme_code is not None and innovation is None else "same")
    if details:
        _attach_lessons_and_reviews(results)
    return list(results.values())


@dataclass
class InnovationPeers:
    """What peers tried: the innovation itself, and innovations like it."""

    same: list[PeerExperiment]
    similar: list[PeerExperiment]

    def __bool__(self) -> bool:
        return bool(self.same or self.similar)


def for_innovation(innovation: Innovation, *, limit: int = 50, lang: str = "fr",
                   details: bool = True) -> InnovationPeers:
    """Return peers' experiments of an innovation and of similar innovations, each list most alike first."""
    home = home_territory()  # read once: finding it counts our experiments per territory
    same = who_tried(innovation=innovation, limit=limit, lang=lang, details=details, home=home)
    # Only the closest innovations are worth loading experiments for: the list is ranked by likeness first.
    alike = similar_innovations(innovation, lang=lang, best=max(2 * limit, 10))
    similar: dict[int, PeerExperiment] = {}
    if alike:
        experiments = db.session.execute(_peer_experiments(instance_service.instance_code())
                                         .where(Experiment.innovation_id.in_(list(alike)))).all()
        similar = _ranked(experiments, limit, lang=lang, match="similar", alike=alike, home=home)
        if details:
            _attach_lessons_and_reviews(similar)
    return InnovationPeers(same, list(similar.values()))


def _from_peers(own: str) -> Any:
    """The condition "an experiment a peer shared" (not ours, not of unknown origin), written as two
    ranges so that the (origin_instance, innovation_id, deleted) index serves it: reading only peers'
    experiments, not every experiment of the register (migration 0013)."""
    return or_(and_(Experiment.origin_instance > "", Experiment.origin_instance < own),
               Experiment.origin_instance > own)


def _peer_experiments(own: str) -> Any:
    """The query of peers' live experiments of live innovations, the most recent first, bounded: only
    (id, innovation_id, territory_id), enough to rank them; `_ranked` loads the few it keeps."""
    return (db.select(Experiment.id, Experiment.innovation_id, Experiment.territory_id)
            .join(Innovation, Innovation.id == Experiment.innovation_id)
            .where(Experiment.deleted.is_not(True), Innovation.deleted.is_not(True),  # see similar_innovations
                   _from_peers(own))
            .order_by(Experiment.start_date.desc().nulls_last(), Experiment.updated_at.desc(), Experiment.id)
            .limit(MAX_CANDIDATES))


def _ranked(candidates: Sequence[Any], limit: int, *, lang: str, match: str, home: Territory | None | bool = True,
            alike: Mapping[int, tuple[float, list[str]]] | None = None) -> dict[int, PeerExperiment]:
    """Rank experiments (rows of `_peer_experiments`, most recent first): the closest innovation first
    (similar ones only; the others all score 0), then the territory most like ours, then the most recent.

    Up to MAX_CANDIDATES rows are ranked from three integers each and the territories they name (each
    scored once); only the `limit` kept are loaded as records: loading all of them cost 100 ms a page."""
    if home is True:  # not read by the caller
        home = home_territory()
    feature_labels = {t.code: t.label(lang) for t in vocabularies.terms("territory_feature", include_inactive=True)}
    territory_ids = sorted({row.territory_id for row in candidates if row.territory_id is not None})
    territories = {t.id: t for t in db.session.scalars(db.select(Territory).where(Territory.id.in_(territory_ids)))} \
        if territory_ids else {}
    likeness_of = {tid: similarity(home or None, t, feature_labels) for tid, t in territories.items()}
    ranked = []
    for position, row in enumerate(candidates):  # already by recency: the position breaks ties
        score, reasons = likeness_of.get(row.territory_id, (0.0, []))
        likeness, why = (alike or {}).get(row.innovation_id or 0, (0.0, []))
        ranked.append((-likeness, -score, position, row.id, score, reasons, likeness, why))
    ranked.sort(key=lambda r: r[:3])
    kept = ranked[:limit]
    experiments = {e.id: e for e in db.session.scalars(
        db.select(Experiment).where(Experiment.id.in_([r[3] for r in kept]))
        .options(selectinload(Experiment.territory),
                 # a theme's page says which of the innovation's themes matched: one query, not one each
                 selectinload(Experiment.innovation).selectinload(Innovation.themes)
                 if match == "theme" else selectinload(Experiment.innovation)))} if kept else {}
    names = _origin_names({e.origin_instance for e in experiments.values()})
    return {row[3]: PeerExperiment(experiments[row[3]], row[4], list(row[5]),
                                   names.get(experiments[row[3]].origin_instance, experiments[row[3]].origin_instance),
                                   match=match, likeness=row[6], why=row[7])
            for row in kept}


# --------------------------------------------------------------------------- similar innovations

def significant_words(text: str) -> dict[str, str]:
    """Return the words of a text that say what it is about (4 letters or more, no filler): {folded
    singular: the word as written first}, so that "Lampadaires" and "lampadaire" compare equal."""
    words: dict[str, str] = {}
    for written in re.findall(r"\w+", (text or "").lower()):
        word = fold(written)
        if len(word) < 4 or word in _STOPWORDS or word.isdigit():
            continue
        if len(word) > 4 and word[-1] in "sx":  # lampadaires ~ lampadaire, réseaux ~ réseau
            word = word[:-1]
        words.setdefault(word, written)
    return words


def _text_of(name: str, tagline: str) -> dict[str, str]:
    return significant_words(f"{name} {tagline}")


@dataclass(frozen=True)
class _Tried:
    """An innovation peers tried, as its likeness to another needs it."""

    themes: frozenset[int]
    words: frozenset[str]  # its significant words (folded singulars)


@dataclass
class _PeerCatalogue:
    """The innovations peers tried, kept in memory between pages: their themes and significant words,
    and the two indexes that find, for an innovation, those sharing a theme or a word with it.

    Peers' experiments (and the peers' innovations they are about) arrive and leave with an import or
    its undo: the catalogue is read again when the state of the imports changes (340 ms at 100 000
    innovations, 4 900 of them tried by peers). Our own innovations that peers tried can be edited
    here: every edit writes a history line, so the lines written lately name the innovations to read
    again; our own new experiments change nothing. See `_peer_catalogue` for what keeps it true."""

    state: tuple = ()
    log_mark: int = 0
    checked_at: float = 0.0  # time.monotonic() of the last look at the history
    peered: frozenset[int] = frozenset()  # innovations peers' live experiments are about, deleted ones too
    tried: dict[int, _Tried] = field(default_factory=dict)  # the live ones of them
    by_theme: dict[int, list[int]] = field(default_factory=dict)  # newest innovation first
    by_word: dict[str, list[int]] = field(default_factory=dict)  # newest innovation first

    def index(self) -> None:
        by_theme: dict[int, list[int]] = {}
        by_word: dict[str, list[int]] = {}
        for innovation_id in sorted(self.tried, reverse=True):
            entry = self.tried[innovation_id]
            for theme_id in entry.themes:
                by_theme.setdefault(theme_id, []).append(innovation_id)
            for word in entry.words:
                by_word.setdefault(word, []).append(innovation_id)
        self.by_theme, self.by_word = by_theme, by_word


_catalogue_lock = threading.Lock()
_catalogue = _PeerCatalogue()
CATALOGUE_REFRESH = 500  # history lines to read since the catalogue was read: beyond this, read it all again
REVISIT_LINES = 200      # history lines before the mark read again at each refresh (see _peer_catalogue)
REVISIT_SECONDS = 30     # the catalogue looks at the history again after this, even if nothing seems new
_WROTE = "piu_peers_wrote"  # Session.info key: this transaction has flushed a write


@event.listens_for(Session, "after_flush")
def _note_write(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_write(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)


def forget() -> None:
    """Drop the catalogue: the database was replaced (a restored backup: its history starts again)."""
    global _catalogue
    with _catalogue_lock:
        _catalogue = _PeerCatalogue()


def _read_tried(ids: Sequence[int]) -> dict[int, _Tried]:
    """Read the themes and significant words of these innovations (the live ones), in chunks of ids."""
    found: dict[int, _Tried] = {}
    for start in range(0, len(ids), 500):  # bound parameters: 500 at a time on every engine
        chunk = list(ids[start:start + 500])
        themes: dict[int, set[int]] = {i: set() for i in chunk}
        for innovation_id, theme_id in db.session.execute(
                db.select(innovation_themes.c.innovation_id, innovation_themes.c.theme_id)
                .where(innovation_themes.c.innovation_id.in_(chunk))):
            themes[innovation_id].add(theme_id)
        for innovation_id, name, tagline in db.session.execute(
                db.select(Innovation.id, Innovation.name, Innovation.tagline)
                .where(Innovation.id.in_(chunk), Innovation.deleted.is_not(True))):
            words = frozenset(sys.intern(w) for w in _text_of(name, tagline))
            found[innovation_id] = _Tried(frozenset(themes[innovation_id]), words)
    return found


def _peer_catalogue() -> _PeerCatalogue:
    """Return the catalogue of the innovations peers tried, read again only as far as needed.

    What keeps it true, and what it costs:
    - an import or an undo changes the state of the imports: the catalogue is read again whole;
    - an edit writes a history line: the lines since the mark are read, and REVISIT_LINES before it
      (on PostgreSQL an edit may commit after a later line was seen), and again every REVISIT_SECONDS
      even when the last line has not moved; only the innovations peers tried among them are read
      again, and the indexes are remade only if one of them changed;
    - a request that began before the last edit's commit sees an older history: it takes the newer
      catalogue as it is;
    - a transaction that has written (not committed yet) builds one for itself only: what it read may
      be rolled back;
    - a restored backup replaces the database: the restore calls `forget()`."""
    global _catalogue
    own = instance_service.instance_code()
    batches, undone, last_undone, last_log = db.session.execute(db.select(
        func.max(ImportBatch.id), func.count(ImportBatch.undone_at), func.max(ImportBatch.undone_at),
        db.select(func.max(ChangeLog.id)).scalar_subquery())).one()
    state = (str(db.engine.url), own, batches, undone, last_undone)
    last_log = last_log or 0
    now = time.monotonic()

    def current(catalogue: _PeerCatalogue) -> bool:
        return (catalogue.state == state and catalogue.log_mark >= last_log
                and now - catalogue.checked_at < REVISIT_SECONDS)

    known = _catalogue
    if current(known):
        return known
    private = bool(db.session.info.get(_WROTE))
    with contextlib.nullcontext() if private else _catalogue_lock:  # one thread reads it, the others wait
        known = _catalogue
        if current(known):
            return known
        fresh = _refreshed(known, own, last_log, now) if known.state == state else None
        if fresh is None:
            # Two ranges of the (origin_instance, innovation_id, deleted) index, each read alone (SQLite
            # does not use an index for an OR of ranges, nor for DISTINCT here): peers' experiments only.
            live = Experiment.deleted.is_not(True)
            below = db.select(Experiment.innovation_id).where(Experiment.origin_instance > "",
                                                              Experiment.origin_instance < own, live)
            above = db.select(Experiment.innovation_id).where(Experiment.origin_instance > own, live)
            ids = sorted({i for i in db.session.scalars(union_all(below, above)) if i is not None})
            fresh = _PeerCatalogue(state, last_log, now, frozenset(ids), _read_tried(ids))
            fresh.index()
        if not private:
            _catalogue = fresh
        return fresh


def _refreshed(known: _PeerCatalogue, own: str, last_log: int, now: float) -> _PeerCatalogue | None:
    """The catalogue with the innovations peers tried that the recent history names read again; None
    when it must be read whole (too many lines, or a peer's experiment written outside an import)."""
    lines = db.session.execute(db.select(ChangeLog.id, ChangeLog.record_type, ChangeLog.record_uid).where(
        ChangeLog.id > max(0, min(known.log_mark, last_log) - REVISIT_LINES), ChangeLog.id <= last_log,
        ChangeLog.record_type.in_(["innovations", "experiments"])).limit(CATALOGUE_REFRESH + 1)).all()
    if len(lines) > CATALOGUE_REFRESH:
        return None
    # Our own new experiments change nothing here; a peer's written outside an import (a test's factory)
    # does. Only new lines count: a bundle import writes its experiments' lines, and changes the state.
    experiments = {uid for line, kind, uid in lines if kind == "experiments" and line > known.log_mark}
    if experiments and db.session.scalar(db.select(Experiment.id).where(
            Experiment.uid.in_(experiments), _from_peers(own)).limit(1)) is not None:
        return None
    uids = {uid for _line, kind, uid in lines if kind == "innovations"}
    edited = [i for i in db.session.scalars(db.select(Innovation.id).where(Innovation.uid.in_(uids)))
              if i in known.peered] if uids else []
    mark = max(known.log_mark, last_log)
    read = _read_tried(edited) if edited else {}
    if all(read.get(i) == known.tried.get(i) for i in edited):  # nothing that matters changed
        return _PeerCatalogue(known.state, mark, now, known.peered, known.tried, known.by_theme, known.by_word)
    tried = {i: t for i, t in known.tried.items() if i not in edited}
    tried.update(read)  # a deleted one leaves, a restored one comes back
    fresh = _PeerCatalogue(known.state, mark, now, known.peered, tried)
    fresh.index()
    return fresh


def _newest_of_themes(catalogue: _PeerCatalogue, theme_ids: Sequence[int], newest: int) -> list[int]:
    """Return the ids of the innovations peers tried that have any of these themes, the newest first."""
    found: set[int] = set()
    for theme_id in theme_ids:
        found.update(catalogue.by_theme.get(theme_id, ())[:newest])
    return sorted(found, reverse=True)[:newest]


def similar_innovations(innovation: Innovation, *, lang: str = "fr",
                        best: int | None = None) -> dict[int, tuple[float, list[str]]]:
    """Return {innovation id: (likeness, why)} for the innovations like this one that peers experimented
    (the `best` most alike only, when given).

    Only an innovation sharing a theme or a word with this one can be alike: the catalogue's two
    indexes give, for each theme and each word, the innovations that have it (the newest
    CANDIDATES_PER_SOURCE), counted in memory; reasons are written for those kept."""
    catalogue = _peer_catalogue()
    words = _text_of(innovation.name, innovation.tagline)
    themes = {t.id: t for t in innovation.themes[:MAX_THEMES]}
    theme_hits: Counter[int] = Counter()
    word_hits: Counter[int] = Counter()
    for theme_id in themes:
        theme_hits.update(catalogue.by_theme.get(theme_id, ())[:CANDIDATES_PER_SOURCE])
    for word in words:
        word_hits.update(catalogue.by_word.get(word, ())[:CANDIDATES_PER_SOURCE])
    every_theme = len(themes)
    scored = []
    for innovation_id in theme_hits.keys() | word_hits.keys():
        shared_themes = theme_hits[innovation_id]
        likeness = THEME_LIKENESS * shared_themes + WORD_LIKENESS * min(word_hits[innovation_id], MAX_WORDS)
        if (likeness >= MIN_LIKENESS or (every_theme and shared_themes == every_theme)) \
                and innovation_id != innovation.id:
            scored.append((-likeness, -innovation_id))
    scored.sort()
    labels = {theme_id: theme.label(lang) for theme_id, theme in themes.items()}
    found: dict[int, tuple[float, list[str]]] = {}
    for minus_likeness, minus_id in scored[:best]:
        other = catalogue.tried[-minus_id]
        common_themes = themes.keys() & other.themes
        common_words = [words[w] for w in sorted(words.keys() & other.words)][:MAX_WORDS]
        why = []
        if common_themes:
            names = ", ".join(f"« {label} »" for label in sorted(labels[t] for t in common_themes))
            why.append(_("Même thématique : %(themes)s", themes=names) if len(common_themes) == 1
                       else _("Mêmes thématiques : %(themes)s", themes=names))
        if common_words:
            why.append(_("Mots en commun : %(words)s", words=", ".join(f"« {w} »" for w in common_words)))
        found[-minus_id] = (-minus_likeness, why)
    return found


def _origin_names(codes: set[str]) -> dict[str, str]:
    """Return {instance code: city name} as the latest bundle of each city named it."""
    if not codes:
        return {}
    rows = db.session.execute(db.select(ImportBatch.origin_instance, ImportBatch.origin_name)
                              .where(ImportBatch.origin_instance.in_(codes), ImportBatch.origin_name != "")
                              .order_by(ImportBatch.created_at, ImportBatch.id))
    return {code: name for code, name in rows}


def _attach_lessons_and_reviews(results: dict[int, PeerExperiment]) -> None:
    """Load the live lessons and reviews of the ranked experiments, and their shared contacts (batched)."""
    if not results:
        return
    ids = list(results)
    lessons = db.session.scalars(
        db.select(Lesson).where(Lesson.experiment_id.in_(ids), Lesson.deleted.is_(False))
        .options(selectinload(Lesson.author).selectinload(Person.organisation),
                 selectinload(Lesson.people_links).selectinload(LessonPerson.person).selectinload(Person.organisation))
        .order_by(Lesson.date.desc().nulls_last(), Lesson.id))
    reviews = db.session.scalars(
        db.select(Review).where(Review.experiment_id.in_(ids), Review.deleted.is_(False))
        .options(selectinload(Review.scores), selectinload(Review.reviewer_org),
                 selectinload(Review.reviewer_person).selectinload(Person.organisation))
        .order_by(Review.date.desc().nulls_last(), Review.id))
    people: dict[int, dict[int, tuple[Person, list[str]]]] = {i: {} for i in ids}
    for lesson in lessons:
        eid = lesson.experiment_id or 0  # never 0: the query asked for these experiments
        results[eid].lessons.append(lesson)
        for person, role in [(lesson.author, "author"), *((link.person, link.role) for link in lesson.people_links)]:
            _add_person(people[eid], person, role)
    for review in reviews:
        eid = review.experiment_id or 0
        results[eid].reviews.append(review)
        _add_person(people[eid], review.reviewer_person, "reviewer")
    for experiment_id, found_people in people.items():
        results[experiment_id].contacts = [c for person, roles in found_people.values()
                                           if (c := _contact(person, roles)) is not None]


def _add_person(found: dict[int, tuple[Person, list[str]]], person: Person | None, role: str) -> None:
    if person is None or person.deleted:
        return
    roles = found.setdefault(person.id, (person, []))[1]
    if role not in roles:
        roles.append(role)


def shares_contact(person: Any) -> bool:
    """Tell whether a person's e-mail and phone may be shown to peers: public record with consent."""
    return bool(person.contact_consent and person.visibility == "public" and not person.deleted)


def _contact(person: Person, roles: list[str]) -> Contact | None:
    if not shares_contact(person) or not (person.email or person.phone):
        return None
    return Contact(person, tuple(roles), person.email, person.phone)
