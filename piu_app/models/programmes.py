"""Support programmes: how the city supports its innovators (levers)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actors import Organisation, Person, Place, Territory
from .base import SharedRecord, db
from .innovations import Theme, theme_table

support_programme_themes = theme_table("support_programme")


class SupportProgramme(SharedRecord, db.Model):
    __tablename__ = "support_programmes"
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    lever: Mapped[str] = mapped_column(String(40), default="", index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    operator: Mapped[Organisation | None] = relationship()
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"))
    territory: Mapped[Territory | None] = relationship()
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    place: Mapped[Place | None] = relationship()
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    results: Mapped[str] = mapped_column(Text, default="")
    contact_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    contact_person: Mapped[Person | None] = relationship()
    themes: Mapped[list[Theme]] = relationship(secondary=support_programme_themes, order_by=Theme.position)
