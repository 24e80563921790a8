"""Workshops in the room: the workshop and its agenda, its participants, its boards of sticky notes,
their categories (columns), themes (groups made by the facilitator) and votes.

A workshop, its sequences and its boards are register records (`SharedRecord`: they have a sharing
level and may travel in a bundle). Categories, themes, notes and votes are parts of a board: they
carry a `uid` so that a bundle can name them, and they follow their workshop's sharing level.
Participants are personal data: they never travel (bundles carry counts by actor group only).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .actors import Organisation, Person, Place, Territory
from .base import SharedRecord, db, new_uid, utcnow
from .innovations import Theme, theme_table

# The codes of a workshop's format, a sequence's kind and a board's kind: the services label them, the
# bundle accepts nothing else.
WORKSHOP_FORMATS = ("in_person", "online", "hybrid")
SESSION_KINDS = ("testimonies", "board", "plenary", "visit")
BOARD_KINDS = ("barriers", "needs", "ideas", "tools", "criteria", "free")

workshop_themes = theme_table("workshop")

workshop_organisers = Table(
    "workshop_organisers", db.metadata,
    Column("workshop_id", ForeignKey("workshops.id", ondelete="CASCADE"), primary_key=True),
    Column("organisation_id", ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True, index=True),
)

workshop_session_speakers = Table(
    "workshop_session_speakers", db.metadata,
    Column("session_id", ForeignKey("workshop_sessions.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Workshop(SharedRecord, db.Model):
    """An atelier: who organised it, where and when, why, and what it concluded."""

    __tablename__ = "workshops"
    title: Mapped[str] = mapped_column(String(200))
    programme: Mapped[str] = mapped_column(String(40), default="")          # piu, aimf, local…
    date: Mapped[dt.date | None] = mapped_column(Date)
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    place: Mapped[Place | None] = relationship()
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territories.id"))
    territory: Mapped[Territory | None] = relationship()
    format: Mapped[str] = mapped_column(String(20), default="in_person")  # in_person, online, hybrid
    objective: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[str] = mapped_column(Text, default="")
    # The workshop's own synthesis (Markdown), its recommendations and the commitments taken.
    synthesis: Mapped[str] = mapped_column(Text, default="")
    recommendations: Mapped[str] = mapped_column(Text, default="")
    commitments: Mapped[str] = mapped_column(Text, default="")
    report_version: Mapped[str] = mapped_column(String(20), default="draft")  # draft, def
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The short code participants type to join (letters and digits without look-alikes); "" = none yet.
    join_code: Mapped[str] = mapped_column(String(12), default="", index=True)
    themes: Mapped[list[Theme]] = relationship(secondary=workshop_themes, order_by=Theme.position)
    organisers: Mapped[list[Organisation]] = relationship(secondary=workshop_organisers)
    sessions: Mapped[list[WorkshopSession]] = relationship(
        back_populates="workshop", order_by="WorkshopSession.position")
    boards: Mapped[list[Board]] = relationship(back_populates="workshop", order_by="Board.position")


class WorkshopSession(SharedRecord, db.Model):
    """A sequence of the agenda: testimonies, a board, a plenary, a visit — with its speakers."""

    __tablename__ = "workshop_sessions"
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"))
    workshop: Mapped[Workshop] = relationship(back_populates="sessions")
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(20), default="board")  # testimonies, board, plenary, visit
    title: Mapped[str] = mapped_column(String(200))
    start_time: Mapped[str] = mapped_column(String(5), default="")  # "09:30", local time of the room
    notes: Mapped[str] = mapped_column(Text, default="")
    speakers: Mapped[list[Person]] = relationship(secondary=workshop_session_speakers)


class Board(SharedRecord, db.Model):
    """A question put to the room, with its columns and the rules shown to participants."""

    __tablename__ = "boards"
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"))
    workshop: Mapped[Workshop] = relationship(back_populates="boards")
    session_id: Mapped[int | None] = mapped_column(ForeignKey("workshop_sessions.id", ondelete="SET NULL"))
    session: Mapped[WorkshopSession | None] = relationship()
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text, default="")
    board_kind: Mapped[str] = mapped_column(String(20), default="free")  # barriers, needs, ideas, tools, criteria, free
    # Rules decided before the board opens, shown to participants.
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)        # else notes carry the author's name
    private_until_reveal: Mapped[bool] = mapped_column(Boolean, default=False)
    moderated: Mapped[bool] = mapped_column(Boolean, default=False)       # notes wait in an inbox
    votes_per_participant: Mapped[int] = mapped_column(Integer, default=5)  # 0 = no vote
    votes_per_note: Mapped[int] = mapped_column(Integer, default=1)
    note_max_length: Mapped[int] = mapped_column(Integer, default=280)
    timer_seconds: Mapped[int] = mapped_column(Integer, default=0)        # 0 = no timer
    # Live state: draft → open → (revealed) → closed. `frozen` stops input (the timer ended).
    state: Mapped[str] = mapped_column(String(12), default="draft")      # draft, open, closed
    revealed: Mapped[bool] = mapped_column(Boolean, default=False)
    voting_open: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    timer_ends_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Raised by every change participants can see; phones poll it as the ETag (kept in memory too).
    revision: Mapped[int] = mapped_column(Integer, default=0)
    synthesis: Mapped[str] = mapped_column(Text, default="")
    categories: Mapped[list[NoteCategory]] = relationship(
        back_populates="board", order_by="NoteCategory.position", cascade="all, delete-orphan")
    note_themes: Mapped[list[NoteTheme]] = relationship(
        back_populates="board", order_by="NoteTheme.position", cascade="all, delete-orphan")


class NoteCategory(db.Model):
    """A column of a board (e.g. « Freins côté acheteurs »), possibly mapped to a vocabulary code."""

    __tablename__ = "note_categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uid)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    board: Mapped[Board] = relationship(back_populates="categories")
    label: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(Integer, default=0)
    maps_to: Mapped[str] = mapped_column(String(40), default="")  # e.g. a barrier_actor_group code


class NoteTheme(db.Model):
    """A group of notes made by the facilitator, with its synthesis and what it became."""

    __tablename__ = "note_themes"
    # What a barrier's page reads: its own promoted themes by board (migration 0014).
    __table_args__ = (Index("ix_note_themes_promoted", "promoted_kind", "promoted_uid", "board_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uid)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"), index=True)
    board: Mapped[Board] = relationship(back_populates="note_themes")
    label: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    synthesis: Mapped[str] = mapped_column(Text, default="")
    # The register record this theme was turned into: kind (barrier, need, innovation) and uid.
    promoted_kind: Mapped[str] = mapped_column(String(20), default="")
    promoted_uid: Mapped[str] = mapped_column(String(36), default="")


class WorkshopParticipant(db.Model):
    """Someone in the room: imported, typed at the door, or self-registered from a phone.

    Personal data: never exported. The report names only those with `consent_named`; the others are
    counted by actor group. A phone is recognised by the SHA-256 of its device cookie, never the
    cookie itself."""

    __tablename__ = "workshop_participants"
    # (workshop, actor group): a bundle's participant counts are grouped from the index, never sorted
    __table_args__ = (UniqueConstraint("workshop_id", "device_hash"),
                      Index("ix_workshop_participants_workshop_group", "workshop_id", "actor_group"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uid)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    person: Mapped[Person | None] = relationship()
    name: Mapped[str] = mapped_column(String(200), default="")
    organisation_name: Mapped[str] = mapped_column(String(200), default="")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"))
    actor_group: Mapped[str] = mapped_column(String(40), default="")  # vocab barrier_actor_group
    consent_named: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(12), default="door")  # list (CSV), door, phone
    device_hash: Mapped[str | None] = mapped_column(String(64))      # NULL for people without a phone
    is_facilitator: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class WorkshopParticipantCount(db.Model):
    """How many people of an actor group took part in a workshop of another city, as its bundle said.

    Participants never travel: a bundle carries these counts only (computed from the participants
    at export). Kept for the workshops an import brought; a workshop made here counts its own
    participants instead."""

    __tablename__ = "workshop_participant_counts"
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshops.id", ondelete="CASCADE"), primary_key=True)
    actor_group: Mapped[str] = mapped_column(String(40), primary_key=True)  # vocab barrier_actor_group; "" = none
    participants: Mapped[int] = mapped_column(Integer, default=0)


class StickyNote(db.Model):
    """A post-it. `client_key` is made on the phone: a resent note with the same key is the same note.

    An anonymous note keeps no link to its participant: only `author_key`, an HMAC of the phone's
    device token (which the server never stores), lets that phone find its own notes again."""

    __tablename__ = "sticky_notes"
    __table_args__ = (
        UniqueConstraint("board_id", "client_key"),
        Index("ix_sticky_notes_board_author_key", "board_id", "author_key"),
        # The notes promoted to a record, by board, with what decides whether they count (migration 0014):
        # a barrier's page reads only its own notes from the index, and the ranking reads the promoted
        # notes already grouped, without touching the table.
        Index("ix_sticky_notes_promoted", "promoted_kind", "promoted_uid", "board_id", "hidden", "pending"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uid)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"))
    board: Mapped[Board] = relationship()
    category_id: Mapped[int | None] = mapped_column(ForeignKey("note_categories.id", ondelete="SET NULL"))
    category: Mapped[NoteCategory | None] = relationship()
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("note_themes.id", ondelete="SET NULL"), index=True)
    theme: Mapped[NoteTheme | None] = relationship()
    text: Mapped[str] = mapped_column(Text)
    client_key: Mapped[str] = mapped_column(String(64))
    author_key: Mapped[str] = mapped_column(String(64), default="")
    # Set only on named boards: the participant who wrote it.
    author_participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("workshop_participants.id", ondelete="SET NULL"))
    author_participant: Mapped[WorkshopParticipant | None] = relationship()
    author_actor_group: Mapped[str] = mapped_column(String(40), default="")
    typed_by_facilitator: Mapped[bool] = mapped_column(Boolean, default=False)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)   # waits in the moderation inbox
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)    # hidden by the facilitator
    position: Mapped[int] = mapped_column(Integer, default=0)
    vote_count: Mapped[int] = mapped_column(Integer, default=0)     # sum of the votes' weights
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    promoted_kind: Mapped[str] = mapped_column(String(20), default="")
    promoted_uid: Mapped[str] = mapped_column(String(36), default="")


class NoteVote(db.Model):
    """Dots a participant put on a note (`weight` ≤ the board's votes per note). Votes typed by the
    facilitator for people without a phone have no participant."""

    __tablename__ = "note_votes"
    __table_args__ = (Index("ix_note_votes_participant", "participant_id", "note_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("sticky_notes.id", ondelete="CASCADE"), index=True)
    note: Mapped[StickyNote] = relationship()
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("workshop_participants.id", ondelete="CASCADE"))
    weight: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
