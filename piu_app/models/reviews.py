"""Reviews of an innovation against the criteria grid, by peers, users and experts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Boolean, Connection, Date, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actors import Organisation, Person
from .base import SharedRecord, db
from .experiments import Experiment
from .innovations import Innovation


class Review(SharedRecord, db.Model):
    __tablename__ = "reviews"
    innovation_id: Mapped[int | None] = mapped_column(ForeignKey("innovations.id"))
    innovation: Mapped[Innovation | None] = relationship()
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    experiment: Mapped[Experiment | None] = relationship()
    reviewer_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    reviewer_person: Mapped[Person | None] = relationship()
    reviewer_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
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

    @classmethod
    def names_by_id(cls, conn: Connection, ids: Sequence[int]) -> dict[int, str]:
        """`name` of many reviews at once without loading them (the search index reads thousands)."""
        query = (select(cls.id, Innovation.id, Innovation.name, Organisation.id, Organisation.name,
                        Person.id, Person.given_name, Person.family_name)
                 .outerjoin(Innovation, Innovation.id == cls.innovation_id)
                 .outerjoin(Organisation, Organisation.id == cls.reviewer_org_id)
                 .outerjoin(Person, Person.id == cls.reviewer_person_id).where(cls.id.in_(ids)))
        found = {}
        for id_, innovation, what, org, org_name, person, given, family in conn.execute(query):
            who = org_name if org is not None else (f"{given} {family}".strip() if person is not None else "")
            found[id_] = f"{what if innovation is not None else ''} — {who}".strip(" —")
        return found


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
