"""The barrier catalogue: recurring obstacles to urban innovation, cited by lessons and workshops."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import SharedRecord, db
from .experiments import Lesson
from .innovations import Theme, theme_table

barrier_themes = theme_table("barrier")

# Lessons learned cite the barriers they met (DOMAIN.md `lesson_barriers`). The barrier's index carries
# the lesson too (migration 0014): a barrier's page reads its citing lessons from the index alone.
lesson_barriers = Table(
    "lesson_barriers", db.metadata,
    Column("lesson_id", ForeignKey("lessons.id", ondelete="CASCADE"), primary_key=True),
    Column("barrier_id", ForeignKey("barriers.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_lesson_barriers_barrier_id", "barrier_id", "lesson_id"),
)


class Barrier(SharedRecord, db.Model):
    """A frein: what holds urban innovation back, seen by one actor group, of one nature."""

    __tablename__ = "barriers"
    __filter_columns__ = ("actor_group", "nature")
    label: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    actor_group: Mapped[str] = mapped_column(String(40), default="")   # vocab barrier_actor_group
    nature: Mapped[str] = mapped_column(String(40), default="")        # vocab barrier_nature
    levers: Mapped[str] = mapped_column(Text, default="")              # known workarounds or solutions
    themes: Mapped[list[Theme]] = relationship(secondary=barrier_themes, order_by=Theme.position)
    lessons: Mapped[list[Lesson]] = relationship(secondary=lesson_barriers, backref="barriers")
