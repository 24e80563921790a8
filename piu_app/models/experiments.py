"""Experiments in a city, their lessons learned, procurement records, funding aids and funding."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actors import Organisation, Person, Place, Territory
from .base import SharedRecord, db
from .innovations import Innovation, Need, Theme, theme_table

funding_aid_themes = theme_table("funding_aid")


class Experiment(SharedRecord, db.Model):
    __tablename__ = "experiments"
    # Peers' experiments (origin neither ours nor empty) read as ranges of this index alone: which
    # innovations peers tried (services/peers.py), without reading our own experiments.
    __extra_indexes__ = (("ix_experiments_origin", ("origin_instance", "innovation_id", "deleted")),)
    title: Mapped[str] = mapped_column(String(200), index=True)
    innovation_id: Mapped[int | None] = mapped_column(ForeignKey("innovations.id"))
    innovation: Mapped[Innovation | None] = relationship()
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id"))
    need: Mapped[Need | None] = relationship()
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    buyer: Mapped[Organisation | None] = relationship()
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"))
    territory: Mapped[Territory | None] = relationship()
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    place: Mapped[Place | None] = relationship()
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    planned_end_date: Mapped[dt.date | None] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(40), default="", index=True)
    status: Mapped[str] = mapped_column(String(40), default="planned", index=True)
    outcome: Mapped[str] = mapped_column(String(40), default="pending")
    budget_total: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="")
    budget_public_share: Mapped[float | None] = mapped_column(Float)
    human_resources_fte: Mapped[float | None] = mapped_column(Float)
    legal_framework: Mapped[str] = mapped_column(Text, default="")
    derogation: Mapped[bool] = mapped_column(Boolean, default=False)
    kpis: Mapped[str] = mapped_column(Text, default="")


class Lesson(SharedRecord, db.Model):
    """A lesson learned (retour d'expérience), with the people behind it."""

    __tablename__ = "lessons"
    title: Mapped[str] = mapped_column(String(200), index=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    experiment: Mapped[Experiment | None] = relationship()
    author_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    author: Mapped[Person | None] = relationship()
    date: Mapped[dt.date | None] = mapped_column(Date)
    context: Mapped[str] = mapped_column(Text, default="")
    what_worked: Mapped[str] = mapped_column(Text, default="")
    what_did_not: Mapped[str] = mapped_column(Text, default="")
    conditions_for_replication: Mapped[str] = mapped_column(Text, default="")
    advice: Mapped[str] = mapped_column(Text, default="")
    results_impacts: Mapped[str] = mapped_column(Text, default="")
    costs_actual: Mapped[str] = mapped_column(Text, default="")
    people_links: Mapped[list[LessonPerson]] = relationship(back_populates="lesson", cascade="all, delete-orphan")


class LessonPerson(db.Model):
    """A person behind a lesson learned, with the part they played."""

    __tablename__ = "lesson_people"
    __table_args__ = (UniqueConstraint("lesson_id", "person_id", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(40), default="witness")
    lesson: Mapped[Lesson] = relationship(back_populates="people_links")
    person: Mapped[Person] = relationship()


class Procurement(SharedRecord, db.Model):
    """How the purchase was done: procedure, values, clauses (the documents are attachments)."""

    __tablename__ = "procurements"
    title: Mapped[str] = mapped_column(String(200), index=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    experiment: Mapped[Experiment | None] = relationship()
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    buyer: Mapped[Organisation | None] = relationship(foreign_keys=[buyer_id])
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    supplier: Mapped[Organisation | None] = relationship(foreign_keys=[supplier_id])
    route: Mapped[str] = mapped_column(String(60), default="", index=True)
    technique: Mapped[str] = mapped_column(String(40), default="")
    legal_framework: Mapped[str] = mapped_column(String(200), default="FR-CCP")
    local_procedure_label: Mapped[str] = mapped_column(String(200), default="")
    estimated_value: Mapped[float | None] = mapped_column(Float)
    awarded_value: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="")
    publication_date: Mapped[dt.date | None] = mapped_column(Date)
    notification_date: Mapped[dt.date | None] = mapped_column(Date)
    duration_months: Mapped[int | None] = mapped_column(Integer)
    is_innovative: Mapped[bool] = mapped_column(Boolean, default=False)
    cpv_code: Mapped[str] = mapped_column(String(10), default="")
    award_criteria: Mapped[str] = mapped_column(Text, default="")
    offers_received: Mapped[int | None] = mapped_column(Integer)
    sourcing_done: Mapped[bool] = mapped_column(Boolean, default=False)
    sourcing_description: Mapped[str] = mapped_column(Text, default="")
    ip_clauses: Mapped[str] = mapped_column(Text, default="")
    data_clauses: Mapped[str] = mapped_column(Text, default="")
    lessons_learned: Mapped[str] = mapped_column(Text, default="")


class FundingAid(SharedRecord, db.Model):
    __tablename__ = "funding_aids"
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    financer_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    financer: Mapped[Organisation | None] = relationship()
    perimeter: Mapped[str] = mapped_column(String(200), default="")
    aid_type: Mapped[str] = mapped_column(String(40), default="", index=True)
    aid_source: Mapped[str] = mapped_column(String(40), default="")
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    submission_deadline: Mapped[dt.date | None] = mapped_column(Date)
    is_call_for_project: Mapped[bool] = mapped_column(Boolean, default=False)
    rate_min: Mapped[float | None] = mapped_column(Float)
    rate_max: Mapped[float | None] = mapped_column(Float)
    max_amount: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="")
    eligibility: Mapped[str] = mapped_column(Text, default="")
    origin_url: Mapped[str] = mapped_column(String(300), default="")
    application_url: Mapped[str] = mapped_column(String(300), default="")
    themes: Mapped[list[Theme]] = relationship(secondary=funding_aid_themes, order_by=Theme.position)


class ExperimentFunding(SharedRecord, db.Model):
    """Funding an experiment requested or obtained from a funding aid."""

    __tablename__ = "experiment_fundings"
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    experiment: Mapped[Experiment | None] = relationship()
    funding_aid_id: Mapped[int | None] = mapped_column(ForeignKey("funding_aids.id"))
    funding_aid: Mapped[FundingAid | None] = relationship()
    amount_requested: Mapped[float | None] = mapped_column(Float)
    amount_obtained: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="")
    status: Mapped[str] = mapped_column(String(40), default="requested", index=True)
    date: Mapped[dt.date | None] = mapped_column(Date)

    @property
    def name(self) -> str:
        aid = self.funding_aid.name if self.funding_aid else "?"
        exp = self.experiment.title if self.experiment else "?"
        return f"{aid} → {exp}"

    @classmethod
    def names_by_id(cls, conn: Connection, ids: Sequence[int]) -> dict[int, str]:
        """`name` of many fundings at once without loading them (the search index reads thousands)."""
        query = (select(cls.id, FundingAid.id, FundingAid.name, Experiment.id, Experiment.title)
                 .outerjoin(FundingAid, FundingAid.id == cls.funding_aid_id)
                 .outerjoin(Experiment, Experiment.id == cls.experiment_id).where(cls.id.in_(ids)))
        return {id_: f"{name if aid is not None else '?'} → {title if exp is not None else '?'}"
                for id_, aid, name, exp, title in conn.execute(query)}
