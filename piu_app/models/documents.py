"""Attachments (PDF, images, office documents) linked to a record and stored in the data directory."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import SharedRecord, db


class Document(SharedRecord, db.Model):
    __tablename__ = "documents"
    # a record's attachments: (linked_uid, deleted, sort_key), not linked_uid alone (migration 0006)
    __filter_columns__ = ("linked_uid",)
    title: Mapped[str] = mapped_column(String(200))
    doc_type: Mapped[str] = mapped_column(String(40), default="other")
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    linked_type: Mapped[str] = mapped_column(String(40), index=True)
    linked_uid: Mapped[str] = mapped_column(String(36))

    @property
    def name(self) -> str:
        return self.title
