"""The declarative base, the shared `db` object and the identity columns every record carries."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Boolean, DateTime, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so that Alembic can alter constraints on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

VISIBILITIES = ("private", "network", "public")


def utcnow() -> datetime:
    """Return the current UTC time, naive (SQLite keeps no time zone; every stored time is UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_uid() -> str:
    """Return a UUID v7 (time-ordered, made offline), so records from many cities never collide."""
    millis = time.time_ns() // 1_000_000
    raw = bytearray(millis.to_bytes(6, "big") + os.urandom(10))
    raw[6] = (raw[6] & 0x0F) | 0x70  # version 7
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(raw)))


class SharedRecord:
    """Identity and sharing columns of every record that may one day travel in a bundle."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uid)
    origin_instance: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    visibility: Mapped[str] = mapped_column(String(16), default="network", index=True)
    lang: Mapped[str] = mapped_column(String(16), default="fr")
    licence: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(Text, default="")
    draft: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # The title folded (lower case, no accents), so that « Éclairage » sorts with the E on every engine.
    sort_key: Mapped[str] = mapped_column(String(200), default="", index=True)


__all__ = ["Base", "db", "SharedRecord", "utcnow", "new_uid", "VISIBILITIES", "date", "datetime"]
