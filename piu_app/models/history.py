"""The change history of every record: who changed what, when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import db, utcnow


class ChangeLog(db.Model):
    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_record", "record_uid", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(String(40))
    record_uid: Mapped[str] = mapped_column(String(36))
    record_title: Mapped[str] = mapped_column(String(300), default="")
    action: Mapped[str] = mapped_column(String(20))  # create, update, delete, restore, attach, detach
    username: Mapped[str] = mapped_column(String(80), default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # {field: [before, after]} as display strings
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
