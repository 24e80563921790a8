"""Importing an online board's CSV export (Klaxoon, Miro, Framemo): reading the usual layouts and
encodings, the preview, one transaction, refusals that change nothing, and a property test of the parser."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from piu_app.database import writing
from piu_app.models import Board, NoteCategory, NoteVote, StickyNote, Workshop, db
from piu_app.services import board_import, board_versions
from piu_app.services.board_import import BoardImportError
from tests.conftest import csrf_token, login
from tests.workshop_data import ensure_actor_groups

DATA = Path(__file__).parent.parent / "data" / "boards"


def _file(name: str) -> bytes:
    return (DATA / name).read_bytes()


def _board(*, anonymous: bool = True) -> Board:
    ensure_actor_groups()
    w = Workshop(title="Atelier en ligne")
    board = Board(workshop=w, title="Freins", anonymous=anonymous)
    db.session.add_all([w, board, NoteCategory(board=board, label="Côté acheteurs", position=0)])
    db.session.flush()
    return board


def test_klaxoon_export_utf8_bom_semicolons_title_line() -> None:
    parsed = board_import.parse(_file("klaxoon.csv"))
    assert parsed.columns == {"votes": "Votes", "column": "Catégorie", "author": "Auteur", "text": "Titre",
                              "detail": "Description"}
    assert [(n.text, n.column, n.votes) for n in parsed.notes] == [
        ("Marchés trop lourds", "Côté acheteurs", 4),
        ("Peur du risque\nles élus craignent le contentieux", "Côté acheteurs", 2),
        ("Trésorerie tendue", "Côté innovateurs", 0),
        ("Pas de lieu; pour tester", "Territoire", 1)]
    assert not parsed.errors
    assert any("1 lignes sans texte" in m for m in parsed.messages)


def test_miro_export_utf16_commas() -> None:
    parsed = board_import.parse(_file("miro.csv"))
    assert [(n.text, n.column, n.author, n.votes) for n in parsed.notes] == [
        ("Slow procurement, too many forms", "Buyers", "Alex", 3), ("No test sites", "Territory", "Sam", 0),
        ("=cmd|' /C calc'!A0", "Buyers", "Eve", 1)]


def test_miro_sticky_notes_one_column_without_header() -> None:
    parsed = board_import.parse(_file("miro_stickies.csv"))
    assert [n.text for n in parsed.notes] == ["Idée un", "Idée deux", "Idée trois"]


def test_framemo_export_tabs_windows_1252() -> None:
    parsed = board_import.parse(_file("framemo.csv"))
    assert [(n.text, n.column, n.votes) for n in parsed.notes] == [
        ("Un guichet unique", "Idées", 2), ("Bac à sable réglementaire", "Idées", 5)]


@pytest.mark.parametrize("data, words", [
    (b"", "vide"),
    (_file("no_text.csv"), "Aucune colonne de texte"),
    (b"\xd0\xcf\x11\xe0" + b"\0" * 100, ".xls"),
    (b"Texte;Votes\r\n;3\r\n", "aucune note"),
])
def test_unreadable_files_are_refused_with_a_clear_message(data: bytes, words: str) -> None:
    with pytest.raises(BoardImportError) as refused:
        board_import.parse(data)
    assert words in refused.value.message


def test_bad_lines_are_reported_and_nothing_is_written(ctx) -> None:
    board = _board()
    parsed = board_import.parse(_file("bad_votes.csv"))
    plan = board_import.preview(board, parsed)
    assert not plan.importable
    assert plan.errors == ["Ligne 3 : nombre de votes illisible « beaucoup » (un nombre entier est attendu).",
                           "Ligne 4 : caractère de contrôle invisible interdit (U+0007) dans le texte."]
    with pytest.raises(BoardImportError):
        board_import.apply(board, parsed)
    assert db.session.scalar(select(func.count()).select_from(StickyNote)) == 0
    assert db.session.scalar(select(func.count()).select_from(NoteCategory)) == 1


def test_too_long_note_is_refused_not_truncated(ctx) -> None:
    board = _board()
    parsed = board_import.parse(("Texte\r\n" + "a" * 2001 + "\r\ncourte\r\n").encode())
    assert parsed.errors == ["Ligne 2 : note de 2001 caractères : 2000 au plus."]
    with pytest.raises(BoardImportError):
        board_import.apply(board, parsed)


def test_apply_makes_categories_vote_counts_and_keeps_no_author_on_an_anonymous_board(ctx) -> None:
    board = _board(anonymous=True)
    revision = board.revision
    parsed = board_import.parse(_file("klaxoon.csv"))
    plan = board_import.preview(board, parsed)
    assert plan.importable and plan.new_columns == ["Côté innovateurs", "Territoire"]
    assert plan.existing_columns == ["Côté acheteurs"] and plan.vote_total == 7
    assert board_import.apply(board, parsed) == 4
    notes = db.session.scalars(select(StickyNote).where(StickyNote.board_id == board.id).order_by(StickyNote.position)).all()
    assert [(n.text.split("\n")[0], n.category.label, n.vote_count) for n in notes] == [
        ("Marchés trop lourds", "Côté acheteurs", 4), ("Peur du risque", "Côté acheteurs", 2),
        ("Trésorerie tendue", "Côté innovateurs", 0), ("Pas de lieu; pour tester", "Territoire", 1)]
    assert [c.label for c in db.session.scalars(select(NoteCategory).where(NoteCategory.board_id == board.id)
                                                .order_by(NoteCategory.position))] == [
        "Côté acheteurs", "Côté innovateurs", "Territoire"]
    assert all(n.author_actor_group == "" and n.author_participant_id is None and n.author_key == "" for n in notes)
    assert all(not n.pending and not n.hidden for n in notes)
    # vote_count stays the sum of the vote rows' weights; no vote names a participant
    votes = db.session.scalars(select(NoteVote)).all()
    assert sum(v.weight for v in votes) == 7 and all(v.participant_id is None for v in votes)
    assert board.revision == revision + 1  # phones and the projector see the change
    with pytest.raises(BoardImportError, match="déjà été importé"):
        board_import.apply(board, board_import.parse(_file("klaxoon.csv")))


def test_a_named_board_keeps_only_recognised_actor_groups_never_names(ctx) -> None:
    board = _board(anonymous=False)
    board_import.apply(board, board_import.parse(_file("klaxoon.csv")))
    notes = {n.text.split("\n")[0]: n for n in db.session.scalars(select(StickyNote))}
    assert notes["Marchés trop lourds"].author_actor_group == "buyers"        # "Acheteurs" is a group
    assert notes["Trésorerie tendue"].author_actor_group == "carriers"        # "Innovateurs": the carriers
    assert notes["Peur du risque"].author_actor_group == ""                    # a person's name: not kept
    assert notes["Pas de lieu; pour tester"].author_actor_group == ""
    assert all(n.author_participant_id is None for n in notes.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=600),
    st.text(max_size=300).map(lambda t: t.encode("utf-8")),
    st.text(alphabet=st.sampled_from(list(";,\t\r\n\"'=+-@ abcTexteVotsColn0123456789é\x00\x07")), max_size=200)
      .map(lambda t: b"Texte;Colonne;Votes\r\n" + t.encode("utf-8")),
    st.text(max_size=200).map(lambda t: ("Content,Votes\r\n" + t).encode("utf-16")),
    st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b),
))
def test_any_bytes_give_a_clear_refusal_or_a_valid_result(app: Flask, data: bytes) -> None:
    with app.test_request_context():
        try:
            parsed = board_import.parse(data)
        except BoardImportError as exc:
            assert exc.message.strip() and "Traceback" not in exc.message
            return
        assert parsed.notes
        for n in parsed.notes:
            assert n.text and isinstance(n.votes, int) and 0 <= n.votes <= board_import.MAX_VOTES
            if not n.errors:
                assert len(n.text) <= board_import.NOTE_MAX_LENGTH and len(n.column) <= board_import.LABEL_MAX_LENGTH


def test_import_pages_preview_then_apply(app: Flask) -> None:
    with app.test_request_context(), writing():
        board = _board()
        uid, workshop_uid = board.uid, board.workshop.uid
        db.session.commit()
    board_versions.forget()
    editor = login(app.test_client(), "editor")
    page = editor.get(f"/workshops/boards/{uid}/import")
    assert page.status_code == 200
    token = csrf_token(editor, f"/workshops/boards/{uid}/import")
    preview = editor.post(f"/workshops/boards/{uid}/import", data={
        "csrf_token": token, "export": (BytesIO(_file("klaxoon.csv")), "klaxoon.csv")}, content_type="multipart/form-data")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Marchés trop lourds" in html and "Importer ces 4 notes" in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StickyNote)) == 0  # nothing written yet
    action = html.split('action="/workshops/boards/')[1].split('"')[0]
    with app.test_request_context(), writing():
        other = _board().uid
        db.session.commit()
    token_part = action.rsplit("/", 1)[1]
    assert editor.post(f"/workshops/boards/{other}/import/{token_part}", data={"csrf_token": token}).status_code == 404
    done = editor.post(f"/workshops/boards/{action}", data={"csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/workshops/{workshop_uid}/report")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StickyNote)) == 4
    report = editor.get(f"/workshops/{workshop_uid}/report").get_data(as_text=True)
    assert "Marchés trop lourds" in report and "Côté innovateurs" in report
    assert "4 notes importées dans le tableau « Freins »" in report  # said on the page it lands on
    again = editor.post(f"/workshops/boards/{action}", data={"csrf_token": token})
    assert again.status_code == 404  # the kept file is gone once imported
    # a bad file: the page says why, nothing changes
    bad = editor.post(f"/workshops/boards/{uid}/import", data={
        "csrf_token": token, "export": (BytesIO(_file("no_text.csv")), "x.csv")}, content_type="multipart/form-data")
    assert bad.status_code == 400 and "Aucune colonne de texte" in bad.get_data(as_text=True)
    reader = login(app.test_client(), "reader")
    assert reader.get(f"/workshops/boards/{uid}/import").status_code == 403
