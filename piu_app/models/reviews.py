"""Reviews of an innovation against the criteria grid, by peers, users and experts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actors import Organisation, Person
from .base import SharedRecord, db
from .experiments import Experiment
from .innovations import Innovation


class Review(SharedRecord, db.Model):
    __tablename__ = "reviews"
    innovation_id: Mapped[int | None] = mapped_column(ForeignKey("innovations.id"), index=True)
    innovation: Mapped[Innovation | None] = relationship()
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"), index=True)
    experiment: Mapped[Experiment | None] = relationship()
    reviewer_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    reviewer_person: Mapped[Person | None] = relationship()
    reviewer_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    reviewer_org: Mapped[Organisation | None] = relationship()
    reviewer_type: Mapped[str] = mapped_column(String(40), default="peer_city")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    overall_comment: Mapped[str] = mapped_column(Text, default="")
    would_recommend: Mapped[bool] = mapped_column(Boolean, default=False)
    date: Mapped[dt.date | None] = mapped_column(Date)
    scores: Mapped[list[ReviewScore]] = relationship(
        back_populates="review", cascade="all, delete-orphan", order_by="ReviewScore.id")

    @property
    def name(self) -> str:
        who = self.reviewer_org.name if self.reviewer_org else (self.reviewer_person.name if self.reviewer_person else "")
        what = self.innovation.name if self.innovation else ""
        return f"{what} — {who}".strip(" —")


class ReviewScore(db.Model):
    """One criterion of the grid: a score from 1 to 5 (absent means "not assessed")."""

    __tablename__ = "review_scores"
    __table_args__ = (UniqueConstraint("review_id", "criterion"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    criterion: Mapped[str] = mapped_column(String(40))
    score: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[str] = mapped_column(Text, default="")
    review: Mapped[Review] = relationship(back_populates="scores")
