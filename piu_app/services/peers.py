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

Contact details of the people behind a lesson or a review are shown only for a person whose record
is public with a recorded consent (the rule of the network bundle: others never carry them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func
from sqlalchemy.orm import selectinload

from ..models import (
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
    uses = func.count(Experiment.id)
    top = db.session.execute(
        db.select(Experiment.territory_id, uses).join(Territory, Territory.id == Experiment.territory_id)
        .where(Experiment.origin_instance == settings.instance_code, Experiment.deleted.is_(False),
               Territory.deleted.is_(False))
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
              *, lang: str = "fr") -> list[PeerExperiment]:
    """Return peers' live experiments of an innovation (or of a theme and its sub-themes), most alike first."""
    own = instance_service.instance_code()
    query = (db.select(Experiment).join(Innovation, Innovation.id == Experiment.innovation_id)
             .where(Experiment.deleted.is_(False), Innovation.deleted.is_(False),
                    Experiment.origin_instance != "", Experiment.origin_instance != own)
             .options(selectinload(Experiment.territory), selectinload(Experiment.innovation))
             .order_by(Experiment.start_date.desc().nulls_last(), Experiment.updated_at.desc(), Experiment.id)
             .limit(MAX_CANDIDATES))
    if innovation is not None:
        query = query.where(Experiment.innovation_id == innovation.id)
    if theme_code is not None:
        codes = db.select(Theme.id).where((Theme.code == theme_code) | (Theme.parent_code == theme_code))
        query = query.where(Experiment.innovation_id.in_(
            db.select(innovation_themes.c.innovation_id).where(innovation_themes.c.theme_id.in_(codes))))
    experiments = list(db.session.scalars(query))
    home = home_territory()
    feature_labels = {t.code: t.label(lang) for t in vocabularies.terms("territory_feature", include_inactive=True)}
    ranked = []
    for position, experiment in enumerate(experiments):  # already by recency: the position breaks ties
        score, reasons = similarity(home, experiment.territory, feature_labels)
        ranked.append((-score, position, experiment, score, reasons))
    ranked.sort(key=lambda row: row[:2])
    names = _origin_names({e.origin_instance for e in experiments})
    results = {row[2].id: PeerExperiment(row[2], row[3], row[4], names.get(row[2].origin_instance,
                                                                          row[2].origin_instance))
               for row in ranked[:limit]}
    _attach_lessons_and_reviews(results)
    return list(results.values())


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
