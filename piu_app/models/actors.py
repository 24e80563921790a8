"""Actors and places: territories, organisations, persons, places (tiers-lieux, fablabs…)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Boolean, Connection, Date, Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import SharedRecord, db


class Territory(SharedRecord, db.Model):
    __tablename__ = "territories"
    name: Mapped[str] = mapped_column(String(200), index=True)
    level: Mapped[str] = mapped_column(String(40), default="commune")
    country_code: Mapped[str] = mapped_column(String(2), default="")
    subdivision_code: Mapped[str] = mapped_column(String(10), default="")
    cog_code: Mapped[str] = mapped_column(String(10), default="")
    population: Mapped[int | None] = mapped_column(Integer)
    population_year: Mapped[int | None] = mapped_column(Integer)
    density_fr: Mapped[int | None] = mapped_column(Integer)
    degurba_l1: Mapped[int | None] = mapped_column(Integer)
    features: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"))
    parent: Mapped[Territory | None] = relationship(remote_side="Territory.id")


class Organisation(SharedRecord, db.Model):
    __tablename__ = "organisations"
    name: Mapped[str] = mapped_column(String(200), index=True)
    acronym: Mapped[str] = mapped_column(String(40), default="")
    org_type: Mapped[str] = mapped_column(String(40), default="other", index=True)
    actor_family: Mapped[str] = mapped_column(String(40), default="", index=True)
    id_type: Mapped[str] = mapped_column(String(20), default="")
    id_value: Mapped[str] = mapped_column(String(40), default="")
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"))
    territory: Mapped[Territory | None] = relationship()
    website: Mapped[str] = mapped_column(String(300), default="")
    description_short: Mapped[str] = mapped_column(String(280), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_year: Mapped[int | None] = mapped_column(Integer)
    size_band: Mapped[str] = mapped_column(String(10), default="")
    is_startup: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class Person(SharedRecord, db.Model):
    """A contact. Private by default: personal data leaves the laptop only with recorded consent."""

    __tablename__ = "persons"
    given_name: Mapped[str] = mapped_column(String(100), default="")
    family_name: Mapped[str] = mapped_column(String(100), index=True)
    job_title: Mapped[str] = mapped_column(String(200), default="")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    organisation: Mapped[Organisation | None] = relationship()
    role_kind: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_date: Mapped[dt.date | None] = mapped_column(Date)
    consent_scope: Mapped[str] = mapped_column(String(300), default="")
    public_bio: Mapped[str] = mapped_column(Text, default="")

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()

    @classmethod
    def names_by_id(cls, conn: Connection, ids: Sequence[int]) -> dict[int, str]:
        """`name` of many persons at once without loading them (the search index reads thousands)."""
        return {id_: f"{given} {family}".strip() for id_, given, family in conn.execute(
            select(cls.id, cls.given_name, cls.family_name).where(cls.id.in_(ids)))}


class Place(SharedRecord, db.Model):
    __tablename__ = "places"
    name: Mapped[str] = mapped_column(String(200), index=True)
    place_type: Mapped[str] = mapped_column(String(40), default="other", index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    operator: Mapped[Organisation | None] = relationship()
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"))
    territory: Mapped[Territory | None] = relationship()
    address: Mapped[str] = mapped_column(String(300), default="")
    postcode: Mapped[str] = mapped_column(String(20), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    opening_hours: Mapped[str] = mapped_column(String(200), default="")
    equipment: Mapped[str] = mapped_column(Text, default="")
    description_short: Mapped[str] = mapped_column(String(280), default="")
    website: Mapped[str] = mapped_column(String(300), default="")
