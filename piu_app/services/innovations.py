"""What is known about one innovation: where it was tried, what was learned, how it was bought,
funded and judged. Feeds its detail page and its one-page sheet for elected officials."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean
from typing import Any

from ..models import Experiment, ExperimentFunding, Innovation, Lesson, Procurement, Review, db


@dataclass
class ExperimentView:
    experiment: Experiment
    lessons: list[Lesson] = field(default_factory=list)
    procurements: list[Procurement] = field(default_factory=list)
    fundings: list[ExperimentFunding] = field(default_factory=list)


@dataclass
class Overview:
    innovation: Innovation
    experiments: list[ExperimentView]
    reviews: list[Review]
    criterion_averages: dict[str, float]
    recommend_share: float | None

    @property
    def carriers(self) -> list[Any]:
        return [link.organisation for link in self.innovation.carrier_links if not link.organisation.deleted]


def _live(model: Any, column: Any, ids: list[int]) -> list[Any]:
    if not ids:
        return []
    return list(db.session.scalars(db.select(model).where(column.in_(ids), model.deleted.is_(False))))


def overview(innovation: Innovation) -> Overview:
    """Gather the experiments (with their lessons, procurements, funding) and reviews of an innovation."""
    experiments = list(db.session.scalars(
        db.select(Experiment).where(Experiment.innovation_id == innovation.id, Experiment.deleted.is_(False))
        .order_by(Experiment.start_date.desc().nulls_last(), Experiment.title)))
    views = {e.id: ExperimentView(e) for e in experiments}
    ids = list(views)
    for lesson in _live(Lesson, Lesson.experiment_id, ids):
        views[lesson.experiment_id].lessons.append(lesson)
    for procurement in _live(Procurement, Procurement.experiment_id, ids):
        views[procurement.experiment_id].procurements.append(procurement)
    for funding in _live(ExperimentFunding, ExperimentFunding.experiment_id, ids):
        views[funding.experiment_id].fundings.append(funding)
    reviews = list(db.session.scalars(db.select(Review).where(Review.innovation_id == innovation.id,
                                                              Review.deleted.is_(False)).order_by(Review.date.desc())))
    by_criterion: dict[str, list[int]] = {}
    for review in reviews:
        for score in review.scores:
            by_criterion.setdefault(score.criterion, []).append(score.score)
    averages = {c: round(mean(v), 1) for c, v in by_criterion.items()}
    recommend = round(100 * sum(r.would_recommend for r in reviews) / len(reviews)) if reviews else None
    return Overview(innovation, list(views.values()), reviews, averages, recommend)
