"""Workshops travel in bundles: the workshop, its sequences and boards at their sharing level, each board
with its columns, themes and notes (text and vote count only), participants as counts by actor group.

What never leaves: a private workshop or board, hidden notes and notes waiting for the moderator, who
wrote a note (participant, device key, client key, actor group), the votes themselves, participants.
"""

from __future__ import annotations

import csv
import html
import io
import zipfile
from pathlib import Path

import pytest
from frictionless import Package
from sqlalchemy import func, select

from piu_app.exchange.bundle_import import BundleError
from piu_app.extensions import db
from piu_app.models import (
    Board,
    NoteCategory,
    NoteTheme,
    NoteVote,
    StickyNote,
    Workshop,
    WorkshopParticipant,
    WorkshopParticipantCount,
    WorkshopSession,
)
from piu_app.services import PermissionDeniedError, exchange, workshop_report
from piu_app.services import room as room_service
from piu_app.services import workshops as ws

from .cities import all_bytes, export, import_, inside, make_city, unsigned_copy

CLIENT_KEY = "phone-client-key-0001"
AUTHOR_KEY = "a" * 64


@pytest.fixture
def cities(register_template: Path, tmp_path: Path):
    def make_(code: str, **kw):
        return make_city(register_template, tmp_path, code, **kw)
    return make_


def _editor_of(app):
    from piu_app.services import users as user_service
    from tests.conftest import PASSWORD, login

    with inside(app):
        user_service.create(username="editor", password=PASSWORD, role="editor")
    return login(app.test_client(), "editor")


def _table(bundle: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(bundle) as zf:
        return list(csv.DictReader(io.TextIOWrapper(zf.open(f"data/{name}.csv"), encoding="utf-8", newline="")))


def _open(board: Board) -> None:
    ws.change_state(board, "open")


def _fill(a) -> dict[str, str]:
    """City A: a private workshop, and a network workshop with an anonymous and a named board, a
    private board, hidden and pending notes, votes, a theme with its synthesis, participants."""
    with inside(a):
        secret = ws.create_workshop({"title": "Atelier interne", "visibility": "private"})
        secret_board = ws.create_board(secret, "barriers")
        _open(secret_board)
        ws.add_note(secret_board, text="Secret interne")

        shared = ws.create_workshop({"title": "Atelier des freins", "visibility": "network", "format": "hybrid",
                                     "objective": "Lever les freins", "programme": "piu"})
        ws.add_session(shared, {"title": "Atelier post-it", "kind": "board", "start_time": "09:30"}, username="t")
        anonymous = ws.create_board(shared, "barriers", title="Freins à l'innovation")
        named = ws.create_board(shared, "blank", title="Outils attendus")
        named.anonymous = False
        hidden_board = ws.create_board(shared, "blank", title="Tableau interne")
        hidden_board.visibility = "private"
        for board in (anonymous, named, hidden_board):
            _open(board)
        ws.add_note(hidden_board, text="Note du tableau interne")

        camille = ws.add_participant(shared, name="Camille Dupont", organisation="Mairie", actor_group="buyers",
                                     consent=True)
        alex = ws.add_participant(shared, name="Alex Martin", actor_group="carriers")
        ws.add_participant(shared, name="Sam Traoré", actor_group="carriers")
        ws.add_participant(shared, name="Dominique Sans-Groupe")

        buyers = anonymous.categories[0]
        phone_note = StickyNote(board=anonymous, category=buyers, text="Délais de paiement trop longs",
                                client_key=CLIENT_KEY, author_key=AUTHOR_KEY, author_actor_group="carriers",
                                position=1, vote_count=3)
        db.session.add(phone_note)
        db.session.flush()
        db.session.add_all([NoteVote(note=phone_note, participant_id=camille.id, weight=1),
                            NoteVote(note=phone_note, participant_id=alex.id, weight=2)])
        typed = ws.add_note(anonymous, text="Foncier rare", category_uid=anonymous.categories[-1].uid)
        hidden = ws.add_note(anonymous, text="Note masquée par l'animateur")
        ws.moderate(anonymous, hidden.uid, "hide")
        pending = ws.add_note(anonymous, text="Note en attente de modération")
        pending.pending = True
        theme = ws.create_theme(anonymous, "Paiement", [phone_note.uid, typed.uid])
        ws.save_theme_synthesis(anonymous, theme.uid, "Payer à 30 jours **au plus**.")
        ws.save_board_synthesis(anonymous, "Les acheteurs paient tard.")
        signed = StickyNote(board=named, text="Note nommée", client_key="phone-client-key-0002",
                            author_key="b" * 64, author_participant_id=camille.id, author_actor_group="buyers",
                            position=1)
        db.session.add(signed)
        db.session.flush()
        return {"workshop": shared.uid, "secret": secret.uid, "anonymous": anonymous.uid, "named": named.uid,
                "phone_note": phone_note.uid, "theme": theme.uid, "buyers": buyers.uid}


def test_a_network_bundle_carries_what_the_rules_allow_and_nothing_personal(cities, tmp_path):
    a = cities("ville-a")
    uids = _fill(a)
    bundle = export(a, tmp_path / "a.zip")

    assert [w["title"] for w in _table(bundle, "workshops")] == ["Atelier des freins"]
    workshop = _table(bundle, "workshops")[0]
    assert (workshop["format"], workshop["objective"], workshop["uid"]) == ("hybrid", "Lever les freins",
                                                                            uids["workshop"])
    assert [s["title"] for s in _table(bundle, "workshop_sessions")] == ["Atelier post-it"]
    boards = {b["title"]: b for b in _table(bundle, "boards")}
    assert set(boards) == {"Freins à l'innovation", "Outils attendus"}  # not the private board
    assert (boards["Freins à l'innovation"]["anonymous"], boards["Outils attendus"]["anonymous"]) == ("true", "false")
    assert boards["Freins à l'innovation"]["synthesis"] == "Les acheteurs paient tard."

    notes = {n["text"]: n for n in _table(bundle, "sticky_notes")}
    assert set(notes) == {"Délais de paiement trop longs", "Foncier rare", "Note nommée"}
    assert list(notes["Délais de paiement trop longs"]) == [
        "board_uid", "uid", "category_uid", "theme_uid", "text", "position", "vote_count", "promoted_kind",
        "promoted_uid"]
    phone = notes["Délais de paiement trop longs"]
    assert (phone["uid"], phone["category_uid"], phone["theme_uid"], phone["vote_count"]) == (
        uids["phone_note"], uids["buyers"], uids["theme"], "3")
    assert notes["Note nommée"]["vote_count"] == "0"
    themes = _table(bundle, "note_themes")
    assert [(t["label"], t["synthesis"]) for t in themes] == [("Paiement", "Payer à 30 jours **au plus**.")]
    assert {c["board_uid"] for c in _table(bundle, "note_categories")} == {uids["anonymous"], uids["named"]}
    counts = {(c["actor_group"], c["participants"]) for c in _table(bundle, "workshop_participant_counts")}
    assert counts == {("buyers", "1"), ("carriers", "2"), ("", "1")}

    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
    assert not any("participants.csv" in n or "votes" in n for n in names), names
    content = all_bytes(bundle)
    for never in ("Camille", "Dupont", "Alex Martin", "Sam Traoré", "Mairie", CLIENT_KEY, AUTHOR_KEY, "b" * 64,
                  "Secret interne", "Atelier interne", "Tableau interne", "Note du tableau interne",
                  "Note masquée", "Note en attente", "phone-client-key-0002", "facilitator-"):
        assert never.encode() not in content, never

    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path / "unzipped")
    report = Package(str(tmp_path / "unzipped" / "datapackage.json")).validate()
    assert report.valid, report.flatten(["resourcePath", "rowNumber", "fieldName", "type", "note"])[:10]

    opendata = export(a, tmp_path / "public.zip", level="public")
    assert _table(opendata, "workshops") == [] and _table(opendata, "sticky_notes") == []


def _counts(app) -> dict[str, int]:
    with inside(app):
        return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
                for model in (Workshop, WorkshopSession, Board, NoteCategory, NoteTheme, StickyNote, NoteVote,
                              WorkshopParticipant, WorkshopParticipantCount)}


def test_a_peer_imports_the_workshop_read_only_and_a_reimport_or_an_undo_leaves_it_as_before(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    uids = _fill(a)
    bundle = export(a, tmp_path / "a.zip")
    before = _counts(b)

    totals, batch = import_(b, bundle)
    assert batch and totals["created"] >= 4
    with inside(b):
        workshop = ws.get_workshop(uids["workshop"])
        assert workshop.origin_instance == "ville-a" and workshop.title == "Atelier des freins"
        assert [w.title for w in ws.list_workshops()] == ["Atelier des freins"]
        assert [s.title for s in workshop.sessions] == ["Atelier post-it"]
        assert sorted(bd.title for bd in workshop.boards) == ["Freins à l'innovation", "Outils attendus"]
        board = ws.get_board(workshop, uids["anonymous"])
        view = ws.board_view(board)
        assert board.synthesis == "Les acheteurs paient tard."
        notes = {n.text: n for n in db.session.scalars(select(StickyNote).where(StickyNote.board_id == board.id))}
        assert set(notes) == {"Délais de paiement trop longs", "Foncier rare"}
        phone = notes["Délais de paiement trop longs"]
        assert (phone.uid, phone.vote_count, phone.category.uid, phone.theme.label) == (
            uids["phone_note"], 3, uids["buyers"], "Paiement")
        assert phone.author_key == "" and phone.author_participant_id is None and phone.author_actor_group == ""
        assert phone.client_key != CLIENT_KEY and not phone.hidden and not phone.pending
        assert [(t.label, t.synthesis) for t in board.note_themes] == [("Paiement", "Payer à 30 jours **au plus**.")]
        assert view is not None
        assert {code: n for code, _label, n in ws.counts_by_actor_group(workshop)} == {
            "buyers": 1, "carriers": 2, "": 1}
        report = workshop_report.build(workshop)
        assert report.participant_total == 4 and report.named == []
        assert db.session.scalar(select(func.count()).select_from(WorkshopParticipant)) == 0
        assert db.session.scalar(select(func.count()).select_from(NoteVote)) == 0
        # read-only: a peer's workshop is never run or changed here
        for attempt in (lambda: ws.update_workshop(workshop, {"title": "Changé"}),
                        lambda: ws.add_note(board, text="Intrus"),
                        lambda: ws.create_theme(board, "Autre"),
                        lambda: ws.add_votes(board, phone.uid, 1),
                        lambda: ws.change_state(board, "close"),
                        lambda: room_service.ensure_join_code(workshop)):
            with pytest.raises(PermissionDeniedError):
                attempt()
    after = _counts(b)

    editor = _editor_of(b)  # what the peer's officer sees: the workshop and its notes, never a way to run it
    page = html.unescape(editor.get(f"/workshops/{uids['workshop']}").get_data(as_text=True))
    assert "Atelier des freins" in page and "Freins à l'innovation" in page and "ville-a" in page
    assert "Carriers" in page or "Porteurs" in page
    assert "Ouvrir ou fermer la salle" not in page and f"/workshops/{uids['workshop']}/edit" not in page
    board_page = html.unescape(editor.get(f"/workshops/{uids['workshop']}/boards/{uids['anonymous']}")
                               .get_data(as_text=True))
    assert "Délais de paiement trop longs" in board_page and "Payer à 30 jours" in board_page
    assert 'name="notes"' not in board_page and "/group" not in board_page
    room = html.unescape(editor.get(f"/workshops/{uids['workshop']}/room").get_data(as_text=True))
    assert "sa salle ne s'ouvre pas ici" in room and "/room/open" not in room
    report_page = html.unescape(editor.get(f"/workshops/{uids['workshop']}/report").get_data(as_text=True))
    markdown = editor.get(f"/workshops/{uids['workshop']}/report.md").get_data(as_text=True)
    for text in (report_page, markdown):
        assert "Délais de paiement trop longs" in text and "Payer à 30 jours" in text
        assert "Camille" not in text and "Note masquée" not in text
    assert "4 participants en tout." in markdown
    assert any(line.startswith("- Porteurs") and line.endswith(": 2") for line in markdown.splitlines())
    assert _counts(b) == after

    again, second = import_(b, bundle)  # the same bundle again: nothing to do
    assert second is None and again["created"] == again["updated"] == 0
    assert _counts(b) == after

    with inside(b):
        exchange.undo(batch, username="t")
    assert _counts(b) == before


def test_a_change_of_a_board_replaces_its_parts_at_the_peer(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    uids = _fill(a)
    import_(b, export(a, tmp_path / "a1.zip"))
    with inside(a):
        workshop = ws.get_workshop(uids["workshop"])
        board = ws.get_board(workshop, uids["anonymous"])
        ws.add_votes(board, uids["phone_note"], 2)
        ws.delete_theme(board, uids["theme"])
        ws.add_note(board, text="Nouvelle idée")
    totals, batch = import_(b, export(a, tmp_path / "a2.zip"))
    assert batch and totals["updated"] >= 1 and totals["created"] == 0
    with inside(b):
        board = ws.get_board(ws.get_workshop(uids["workshop"]), uids["anonymous"])
        notes = {n.text: n for n in db.session.scalars(select(StickyNote).where(StickyNote.board_id == board.id))}
        assert set(notes) == {"Délais de paiement trop longs", "Foncier rare", "Nouvelle idée"}
        assert notes["Délais de paiement trop longs"].vote_count == 5 and notes["Foncier rare"].theme is None
        assert board.note_themes == []
    with inside(b):
        exchange.undo(batch, username="t")  # the board's parts as the first import left them
    with inside(b):
        board = ws.get_board(ws.get_workshop(uids["workshop"]), uids["anonymous"])
        notes = {n.text: n for n in db.session.scalars(select(StickyNote).where(StickyNote.board_id == board.id))}
        assert set(notes) == {"Délais de paiement trop longs", "Foncier rare"}
        assert notes["Délais de paiement trop longs"].vote_count == 3
        assert notes["Foncier rare"].theme.label == "Paiement"


def _tampered(bundle: Path, out: Path, table: str, change) -> Path:
    """A copy of `bundle` whose data/<table>.csv went through `change(rows)` (rows: header first)."""
    with zipfile.ZipFile(bundle) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    rows = list(csv.reader(io.StringIO(members[f"data/{table}.csv"].decode())))
    change(rows)
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerows(rows)
    members[f"data/{table}.csv"] = text.getvalue().encode()
    raw = out.with_suffix(".raw.zip")
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return unsigned_copy(raw, out)


def _set(table_rows: list[list[str]], column: str, value: str, *, row: int = 1) -> None:
    table_rows[row][table_rows[0].index(column)] = value


HOSTILE = {
    "board-not-in-bundle": ("sticky_notes", lambda r: _set(r, "board_uid", "00000000-dead-4000-8000-000000000000"),
                            "n'est pas dans le paquet"),
    "note-too-long": ("sticky_notes", lambda r: _set(r, "text", "x" * 2001), "text : 2000 caractères au plus"),
    "bad-uid": ("sticky_notes", lambda r: _set(r, "uid", "not-a-uid"), "uid : « not-a-uid » n'a pas la forme attendue"),
    "unknown-actor-group": ("workshop_participant_counts", lambda r: _set(r, "actor_group", "martiens"),
                            "code « martiens » absent du vocabulaire barrier_actor_group"),
    "negative-votes": ("sticky_notes", lambda r: _set(r, "vote_count", "-4"), "vote_count : valeur hors limites (-4)"),
    "huge-votes": ("sticky_notes", lambda r: _set(r, "vote_count", "99999999999"),
                   "vote_count : valeur hors limites (99999999999)"),
    "column-of-another-board": ("sticky_notes", lambda r: _set(r, "category_uid", "11111111-2222-4333-8444-555555555555"),
                                "absent de son tableau dans le paquet"),
    "sequence-tombstone-without-workshop": ("workshop_sessions", lambda r: (_set(r, "deleted", "true"),
                                                                           _set(r, "workshop_uid", "")),
                                            "workshop_uid : valeur obligatoire manquante"),
    "board-of-a-workshop-nowhere": ("boards", lambda r: _set(r, "workshop_uid", "00000000-dead-4000-8000-000000000000"),
                                    "le lien vers 00000000-dead-4000-8000-000000000000 ne mène à aucune fiche"),
    "note-twice-in-a-board": ("sticky_notes", lambda r: r.append(list(r[1])), "a deux lignes pour"),
    "note-in-two-boards": ("sticky_notes", lambda r: _on_another_board(r), "apparaît deux fois"),
}


def _on_another_board(rows: list[list[str]]) -> None:
    """The first note again, on the other board of the bundle."""
    at = rows[0].index("board_uid")
    copy = list(rows[1])
    copy[at] = next(row[at] for row in rows[2:] if row[at] != rows[1][at])
    rows.append(copy)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_workshop_bundle_is_refused_with_a_french_message_and_changes_nothing(cities, tmp_path, case):
    a, b = cities("ville-a"), cities("ville-b")
    _fill(a)
    table, change, phrase = HOSTILE[case]
    bundle = _tampered(export(a, tmp_path / "a.zip"), tmp_path / f"{case}.zip", table, change)
    before = _counts(b)
    with pytest.raises(BundleError) as refused:
        import_(b, bundle)
    said = " ".join([str(refused.value.message), *refused.value.problems])
    assert "rien n'a été importé" in said and phrase in said, said
    assert _counts(b) == before


def test_a_note_uid_already_used_by_another_board_here_is_refused(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    uids = _fill(a)
    bundle = export(a, tmp_path / "a.zip")
    with inside(b):
        mine = ws.create_workshop({"title": "Atelier de B"})
        board = ws.create_board(mine, "blank")
        _open(board)
        ws.add_note(board, text="À nous").uid = uids["phone_note"]
    before = _counts(b)
    with pytest.raises(BundleError) as refused:
        import_(b, bundle)
    assert "déjà celui d'un élément d'un autre tableau" in " ".join(refused.value.problems)
    assert _counts(b) == before


def test_a_relayed_workshop_matches_its_origins_signed_rows(cities, tmp_path):
    """C relays A's workshop to D, which met A before: every row C writes of it (the board's notes,
    themes and columns, the counts C kept) is A's, so D verifies and takes them all."""
    a, c, d = cities("ville-a"), cities("ville-c"), cities("ville-d")
    with inside(a):
        ws.create_workshop({"title": "Atelier d'avant", "visibility": "network"})
    import_(d, export(a, tmp_path / "a0.zip"))  # D pins A's key
    uids = _fill(a)
    import_(c, export(a, tmp_path / "a1.zip"))
    with inside(d):
        plan, batch = exchange.import_bundle(export(c, tmp_path / "c.zip"), username="t",
                                             uploads=Path(d.config["PIU_UPLOADS_DIR"]))
        report = dict(batch.report)
    assert report["signature"]["relays"]["ville-a"]["status"] == "verified"
    assert [s for s in report["skipped"] if s["reason"].startswith("relay")] == []
    with inside(d):
        workshop = ws.get_workshop(uids["workshop"])
        assert workshop.origin_instance == "ville-a"
        assert {code: n for code, _label, n in ws.counts_by_actor_group(workshop)} == {"buyers": 1, "carriers": 2,
                                                                                       "": 1}
        board = ws.get_board(workshop, uids["anonymous"])
        assert {n.text: n.vote_count for n in db.session.scalars(
            select(StickyNote).where(StickyNote.board_id == board.id))} == {"Délais de paiement trop longs": 3,
                                                                            "Foncier rare": 0}


def test_a_sequence_removed_from_the_agenda_is_removed_at_the_peer(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    uids = _fill(a)
    import_(b, export(a, tmp_path / "a1.zip"))
    with inside(a):
        workshop = ws.get_workshop(uids["workshop"])
        session = ws.live_sessions(workshop)[0]
        board = ws.get_board(workshop, uids["anonymous"])
        ws.update_board(board, {"title": board.title, "prompt": board.prompt, "anonymous": "1",
                                "session": session.uid})
        ws.add_session(workshop, {"title": "Restitution", "kind": "plenary"}, username="t")
    import_(b, export(a, tmp_path / "a2.zip"))
    with inside(b):
        workshop = ws.get_workshop(uids["workshop"])
        assert [s.title for s in ws.live_sessions(workshop)] == ["Atelier post-it", "Restitution"]
        assert ws.get_board(workshop, uids["anonymous"]).session.title == "Atelier post-it"
    with inside(a):
        workshop = ws.get_workshop(uids["workshop"])
        ws.delete_session(workshop, ws.live_sessions(workshop)[0].uid)
        assert [(s.title, s.position) for s in ws.live_sessions(workshop)] == [("Restitution", 0)]
        assert ws.get_board(workshop, uids["anonymous"]).session is None
    bundle = export(a, tmp_path / "a3.zip")
    tombstone = next(s for s in _table(bundle, "workshop_sessions") if s["deleted"] == "true")
    assert tombstone["title"] == "Atelier post-it" and tombstone["notes"] == ""
    import_(b, bundle)
    with inside(b):
        workshop = ws.get_workshop(uids["workshop"])
        assert [s.title for s in ws.live_sessions(workshop)] == ["Restitution"]
        assert ws.get_board(workshop, uids["anonymous"]).session is None
    editor = _editor_of(b)
    page = html.unescape(editor.get(f"/workshops/{uids['workshop']}").get_data(as_text=True))
    assert "Restitution" in page and "Atelier post-it" not in page


def test_a_peer_cannot_add_a_board_or_a_sequence_to_one_of_our_workshops(cities, tmp_path):
    """A bundle whose board or sequence names a workshop of ours (even a private one) is refused whole:
    its board would become ours to edit, split from its city's, and its undo would take our notes."""
    a, b = cities("ville-a"), cities("ville-b")
    _fill(a)
    with inside(b):
        ours = ws.create_workshop({"title": "Atelier interne de B", "visibility": "private"}).uid
    bundle = export(a, tmp_path / "a.zip")
    for table in ("boards", "workshop_sessions"):
        hostile = _tampered(bundle, tmp_path / f"{table}.zip", table,
                            lambda rows: [_set(rows, "workshop_uid", ours, row=n) for n in range(1, len(rows))])
        before = _counts(b)
        with pytest.raises(BundleError) as refused:
            import_(b, hostile)
        assert "un paquet n'ajoute rien aux ateliers d'une autre ville" in " ".join(refused.value.problems)
        assert _counts(b) == before
    # nor by claiming, in its own workshops table, that our workshop is its city's
    claimed = _tampered(hostile, tmp_path / "claimed.zip", "workshops",
                        lambda rows: [_set(rows, "uid", ours, row=n) for n in range(1, len(rows))])
    with pytest.raises(BundleError) as refused:
        import_(b, claimed)
    assert "un paquet n'ajoute rien aux ateliers d'une autre ville" in " ".join(refused.value.problems)
    assert _counts(b) == before


def test_a_board_of_another_city_is_read_only_even_under_one_of_our_workshops(cities):
    """The guards check the board itself, not only its workshop."""
    b = cities("ville-b")
    with inside(b):
        ours = ws.create_workshop({"title": "Atelier de B"})
        board = ws.create_board(ours, "blank")
        _open(board)
        board.origin_instance = "ville-a"  # as a hostile bundle once could make it
        with pytest.raises(PermissionDeniedError):
            ws.add_note(board, text="Une note")
        with pytest.raises(PermissionDeniedError):
            room_service.post_note(board, None, author=AUTHOR_KEY, text="Une note", category_uid="",
                                   client_key=CLIENT_KEY)


def test_hiding_a_note_makes_a_new_version_of_its_board_for_peers(cities, tmp_path):
    """A note hidden here must disappear at peers, and at the cities they relay it to: every change of
    a board's notes raises the board's version, which is what a bundle's reader compares."""
    a, b = cities("ville-a"), cities("ville-b")
    uids = _fill(a)
    import_(b, export(a, tmp_path / "a1.zip"))
    with inside(a):
        board = ws.get_board(ws.get_workshop(uids["workshop"]), uids["anonymous"])
        before = board.version
        ws.moderate(board, uids["phone_note"], "hide")
        db.session.commit()
        assert board.version > before
    import_(b, export(a, tmp_path / "a2.zip"))
    with inside(b):
        board = ws.get_board(ws.get_workshop(uids["workshop"]), uids["anonymous"])
        assert uids["phone_note"] not in set(db.session.scalars(select(StickyNote.uid).where(
            StickyNote.board_id == board.id)))


def test_notes_of_a_board_not_revealed_yet_stay_home(cities, tmp_path):
    """A board whose notes stay private until the facilitator reveals them: before the reveal, the room
    itself has not shown them, so no bundle carries them; after it, they travel like the others."""
    a = cities("ville-a")
    with inside(a):
        workshop = ws.create_workshop({"title": "Atelier à huis clos", "visibility": "network"})
        board = ws.create_board(workshop, "barriers")
        board.private_until_reveal = True
        _open(board)
        ws.add_note(board, text="Pas encore révélée")
        db.session.commit()
        board_uid = board.uid
    assert "Pas encore révélée" not in {n["text"] for n in _table(export(a, tmp_path / "a1.zip"), "sticky_notes")}
    with inside(a):
        board = db.session.scalars(select(Board).filter_by(uid=board_uid)).one()
        board.revealed = True
        db.session.commit()
    assert "Pas encore révélée" in {n["text"] for n in _table(export(a, tmp_path / "a2.zip"), "sticky_notes")}
