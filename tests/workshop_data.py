"""A realistic workshop built directly from the models (the workshop pages are written in parallel):
two boards, categories, themes, notes with votes, hidden and pending notes, participants with and
without consent. Used by the report, import and bundle tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from piu_app.models import (
    Board,
    NoteCategory,
    NoteTheme,
    NoteVote,
    Organisation,
    Person,
    Place,
    StickyNote,
    VocabularyTerm,
    Workshop,
    WorkshopParticipant,
    WorkshopSession,
    db,
)


def ensure_actor_groups() -> None:
    """The barrier actor groups' vocabulary is seeded with every register (vocabulary_seed.py): nothing to add."""
    assert db.session.scalar(select(VocabularyTerm.code).where(VocabularyTerm.vocabulary == "barrier_actor_group"))


def note(board: Board, text: str, category: NoteCategory | None, theme: NoteTheme | None = None, *, votes: int = 0,
         **extra: Any) -> StickyNote:
    n = StickyNote(board=board, text=text, category=category, theme=theme, client_key=f"k-{text[:40]}-{board.title}",
                   vote_count=votes, **extra)
    db.session.add(n)
    if votes:
        db.session.add(NoteVote(note=n, participant_id=None, weight=votes))
    return n


def make_workshop(**overrides: Any) -> dict[str, Any]:
    """Create the workshop of the tests and return its rows by name."""
    ensure_actor_groups()
    place = Place(name="Maison de l'innovation")
    organiser = Organisation(name="Métropole de Test")
    speaker = Person(given_name="Awa", family_name="Diop")
    db.session.add_all([place, organiser, speaker])
    values = dict(title="Freins à l'innovation urbaine", date=dt.date(2026, 12, 7), place=place, format="in_person",
                  context="Le programme PIU réunit acheteurs et innovateurs.", objective="Identifier les freins.",
                  synthesis="Les freins viennent surtout des achats.", recommendations="Former les acheteurs.",
                  commitments="Les participants se sont engagés à se revoir.", visibility="network")
    values.update(overrides)
    w = Workshop(**values)
    w.organisers.append(organiser)
    db.session.add(w)
    s1 = WorkshopSession(workshop=w, position=0, kind="testimonies", title="Témoignages d'innovateurs", start_time="09:30")
    s1.speakers.append(speaker)
    s2 = WorkshopSession(workshop=w, position=1, kind="board", title="Atelier post-it", start_time="10:30")
    db.session.add_all([s1, s2])
    b1 = Board(workshop=w, session=s2, position=0, title="Freins", prompt="Quels freins rencontrez-vous ?",
               board_kind="barriers", anonymous=True, synthesis="Deux freins dominent.")
    buyers = NoteCategory(board=b1, label="Côté acheteurs", position=0, maps_to="buyers")
    innovators = NoteCategory(board=b1, label="Côté innovateurs", position=1, maps_to="carriers")
    territory = NoteCategory(board=b1, label="Territoire", position=2, maps_to="territory")
    rules = NoteTheme(board=b1, label="Règles d'achat", position=0, synthesis="Le code de la commande publique fait peur.")
    money = NoteTheme(board=b1, label="Financement", position=1)
    db.session.add_all([b1, buyers, innovators, territory, rules, money])
    db.session.flush()
    alice = WorkshopParticipant(workshop_id=w.id, name="Alice Martin", organisation_name="Ville de Test",
                                actor_group="buyers", consent_named=True, device_hash="a" * 64)
    bob = WorkshopParticipant(workshop_id=w.id, name="Bob Secret", organisation_name="StartUp Cachée",
                              actor_group="carriers", consent_named=False, device_hash="b" * 64)
    carla = WorkshopParticipant(workshop_id=w.id, name="Carla Discrète", organisation_name="", actor_group="carriers",
                                consent_named=False)
    facilitator = WorkshopParticipant(workshop_id=w.id, name="Fanny Anim", organisation_name="Métropole de Test",
                                      actor_group="facilitators", consent_named=True, is_facilitator=True)
    db.session.add_all([alice, bob, carla, facilitator])
    db.session.flush()
    notes = {
        "marches": note(b1, "Les marchés publics sont trop lourds", buyers, rules, votes=5, author_key="x" * 64,
                        author_actor_group="buyers"),
        "risque": note(b1, "Peur du risque juridique", buyers, rules, votes=3, author_actor_group="buyers"),
        "tresorerie": note(b1, "Trésorerie des jeunes entreprises", innovators, money, votes=2,
                           author_actor_group="carriers"),
        "unvoted": note(b1, "Pas de lieu pour tester", territory, None, votes=0),
        "formula": note(b1, "=HYPERLINK(\"http://evil\",\"clic\")", innovators, None, votes=1),
        "hidden": note(b1, "Insulte cachée par l'animation", buyers, rules, votes=4, hidden=True),
        "pending": note(b1, "Note en attente de modération", buyers, None, votes=0, pending=True),
    }
    b2 = Board(workshop=w, position=1, title="Idées", prompt="Quelles solutions ?", board_kind="ideas", anonymous=False)
    ideas = NoteCategory(board=b2, label="Idées", position=0)
    db.session.add_all([b2, ideas])
    notes["named_consent"] = note(b2, "Un bac à sable réglementaire", ideas, votes=1, author_participant=alice,
                                  author_actor_group="buyers")
    notes["named_refused"] = note(b2, "Un guichet unique", ideas, votes=0, author_participant=bob,
                                  author_actor_group="carriers")
    db.session.flush()
    return {"workshop": w, "boards": (b1, b2), "categories": (buyers, innovators, territory, ideas),
            "themes": (rules, money), "participants": (alice, bob, carla, facilitator), "notes": notes,
            "sessions": (s1, s2), "place": place, "organiser": organiser, "speaker": speaker}
