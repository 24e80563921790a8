"""Controlled vocabularies: seeded rows a city (an administrator) can extend and relabel."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import db


class VocabularyTerm(db.Model):
    __tablename__ = "vocabulary_terms"
    __table_args__ = (UniqueConstraint("vocabulary", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    vocabulary: Mapped[str] = mapped_column(String(60), index=True)
    code: Mapped[str] = mapped_column(String(60))
    label_fr: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str] = mapped_column(String(200), default="")
    definition_fr: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    seeded: Mapped[bool] = mapped_column(Boolean, default=False)

    def label(self, lang: str) -> str:
        return (self.label_en if lang == "en" else "") or self.label_fr
