"""Themes, innovations with their carriers, and the needs a city expresses."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actors import Organisation, Territory
from .base import SharedRecord, db


class Theme(SharedRecord, db.Model):
    """A node of the two-level theme tree (seeded, editable by an administrator)."""

    __tablename__ = "themes"
    code: Mapped[str] = mapped_column(String(60), unique=True)
    label_fr: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str] = mapped_column(String(200), default="")
    parent_code: Mapped[str] = mapped_column(String(60), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)

    def label(self, lang: str) -> str:
        return (self.label_en if lang == "en" else "") or self.label_fr

    @property
    def name(self) -> str:
        return self.label_fr


def theme_table(owner: str) -> Table:
    """Return the join table between `<owner>s` and themes (one per record type that has themes)."""
    # "The records of a theme, the newest first" (peers' similar innovations, theme filters) is read
    # from the (theme_id, owner id) index alone, in order: no sort of a theme's 15 000 rows at 100 000
    # innovations (migration 0013).
    return Table(
        f"{owner}_themes", db.metadata,
        Column(f"{owner}_id", ForeignKey(f"{owner}s.id", ondelete="CASCADE"), primary_key=True),
        Column("theme_id", ForeignKey("themes.id", ondelete="CASCADE"), primary_key=True),
        Index(f"ix_{owner}_themes_theme_id", "theme_id", f"{owner}_id"),
    )


innovation_themes = theme_table("innovation")
need_themes = theme_table("need")


class Innovation(SharedRecord, db.Model):
    __tablename__ = "innovations"
    __filter_columns__ = ("innovation_kind", "deployment_stage")
    name: Mapped[str] = mapped_column(String(200), index=True)
    tagline: Mapped[str] = mapped_column(String(140), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    innovation_kind: Mapped[str] = mapped_column(String(40), default="")
    trl: Mapped[int | None] = mapped_column(Integer)
    deployment_stage: Mapped[str] = mapped_column(String(40), default="")
    price_model: Mapped[str] = mapped_column(Text, default="")
    price_indication: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3), default="")
    open_source: Mapped[bool] = mapped_column(Boolean, default=False)
    data_hosting: Mapped[str] = mapped_column(Text, default="")
    website: Mapped[str] = mapped_column(String(300), default="")
    themes: Mapped[list[Theme]] = relationship(secondary=innovation_themes, order_by=Theme.position)
    carrier_links: Mapped[list[InnovationOrganisation]] = relationship(
        back_populates="innovation", cascade="all, delete-orphan")


class InnovationOrganisation(db.Model):
    """An organisation that carries, co-develops or distributes an innovation."""

    __tablename__ = "innovation_organisations"
    __table_args__ = (UniqueConstraint("innovation_id", "organisation_id", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    innovation_id: Mapped[int] = mapped_column(ForeignKey("innovations.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(40), default="carrier")
    innovation: Mapped[Innovation] = relationship(back_populates="carrier_links")
    organisation: Mapped[Organisation] = relationship()


class Need(SharedRecord, db.Model):
    __tablename__ = "needs"
    title: Mapped[str] = mapped_column(String(200), index=True)
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    buyer: Mapped[Organisation | None] = relationship()
    problem_statement: Mapped[str] = mapped_column(Text, default="")
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"))
    territory: Mapped[Territory | None] = relationship()
    constraints: Mapped[str] = mapped_column(Text, default="")
    budget_band: Mapped[str] = mapped_column(String(100), default="")
    desired_start: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(40), default="expressed", index=True)
    themes: Mapped[list[Theme]] = relationship(secondary=need_themes, order_by=Theme.position)
    candidate_links: Mapped[list[NeedInnovation]] = relationship(
        back_populates="need", cascade="all, delete-orphan")


class NeedInnovation(db.Model):
    """A candidate solution to a need."""

    __tablename__ = "need_innovations"
    __table_args__ = (UniqueConstraint("need_id", "innovation_id", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), index=True)
    innovation_id: Mapped[int] = mapped_column(ForeignKey("innovations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(40), default="candidate")
    match_note: Mapped[str] = mapped_column(Text, default="")
    need: Mapped[Need] = relationship(back_populates="candidate_links")
    innovation: Mapped[Innovation] = relationship()
