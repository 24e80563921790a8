"""Workshops and boards made as model rows (the facilitation services are built beside this part)."""

from __future__ import annotations

from typing import Any

from piu_app.extensions import db
from piu_app.models import Board, NoteCategory, Workshop
from piu_app.services import room as room_service


def make_workshop(**overrides: Any) -> Workshop:
    workshop = Workshop(**{"title": "Atelier PIU Aix", **overrides})
    db.session.add(workshop)
    db.session.flush()
    room_service.ensure_join_code(workshop)
    return workshop


def make_board(workshop: Workshop, categories: tuple[str, ...] = ("Acheteurs", "Innovateurs"),
               **overrides: Any) -> Board:
    board = Board(**{"workshop": workshop, "title": "Freins à l'innovation urbaine", "state": "open",
                     "prompt": "Qu'est-ce qui freine l'innovation urbaine ?", **overrides})
    db.session.add(board)
    for i, label in enumerate(categories):
        board.categories.append(NoteCategory(label=label, position=i))
    db.session.flush()
    return board
