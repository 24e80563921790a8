"""The identity of this PIU instance: the city that owns the records made here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import db, utcnow


class InstanceSettings(db.Model):
    __tablename__ = "instance_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    city_name: Mapped[str] = mapped_column(String(200))
    country_code: Mapped[str] = mapped_column(String(2))
    instance_code: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The city's own territory: peers' experiments are ranked by how alike their territory is.
    home_territory_uid: Mapped[str] = mapped_column(String(36), default="", server_default="")
