"""The declarative base, the shared `db` object and the identity columns every record carries."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Boolean, DateTime, Index, Integer, MetaData, String, Text, event
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, declared_attr, mapped_column

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
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    visibility: Mapped[str] = mapped_column(String(16), default="network")
    lang: Mapped[str] = mapped_column(String(16), default="fr")
    licence: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(Text, default="")
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    # The title folded (lower case, no accents), so that « Éclairage » sorts with the E on every engine.
    sort_key: Mapped[str] = mapped_column(String(200), default="")
    # Fingerprint of the content (bundle form, join rows included) an import last wrote: a re-import
    # that brings the same version with the same fingerprint leaves the record alone without reading
    # it back. Empty for records made here or by an older release: compared in full.
    content_digest: Mapped[str] = mapped_column(String(40), default="", server_default="")

    # Every list query asks for live (or deleted) records, so `deleted` leads each index below and
    # none is kept on `deleted`, `sort_key` or `updated_at` alone (migration 0004): they served no
    # query, slowed every write, and SQLite picked the one on `deleted` for bad plans.
    # Columns a list page filters on with `=`: each gets an index (column, deleted, sort_key) that
    # serves the filter, the live-records test, the count (covering) and the page order at once.
    __filter_columns__: tuple[str, ...] = ()
    # Any other index a model's own queries need: (name, columns).
    __extra_indexes__: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Every link column (a foreign key: `experiment_id`, `buyer_id`…) gets the same kind of index,
    # (column, deleted, sort_key), instead of one on the column alone (migration 0006): a detail page
    # lists the live records that point to it in title order, and the dashboard asks which experiments
    # no live lesson points to. With an index on the column alone, SQLite (no statistics) walked the
    # whole (deleted, sort_key) index instead: one pass over the table per detail page, and one per
    # experiment on the dashboard (the square of the register).

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        t = cls.__tablename__
        links = [name for name, attr in vars(cls).items()
                 if isinstance(attr, MappedColumn) and attr.column.foreign_keys]
        return (
            Index(f"ix_{t}_live_sort_key", "deleted", "sort_key"),
            Index(f"ix_{t}_live_updated_at", "deleted", "updated_at"),
            Index(f"ix_{t}_visibility_live", "visibility", "deleted", "sort_key"),
            # drafts on the dashboard: the newest live drafts without walking every live record
            Index(f"ix_{t}_draft_live", "draft", "deleted", "updated_at"),
            *(Index(f"ix_{t}_{c}_live", c, "deleted", "sort_key") for c in (*cls.__filter_columns__, *links)),
            *(Index(name, *columns) for name, columns in cls.__extra_indexes__),
        )


@event.listens_for(SharedRecord, "before_update", propagate=True)
def _forget_content_digest(_mapper: object, _connection: object, record: SharedRecord) -> None:
    """A record changed through the application is no longer the content an import wrote: the next
    re-import compares it in full (imports write with SQL statements, which skip this event)."""
    record.content_digest = ""


__all__ = ["Base", "db", "SharedRecord", "utcnow", "new_uid", "VISIBILITIES", "date", "datetime"]
