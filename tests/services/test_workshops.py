"""Preparing and facilitating a workshop: the rules the facilitator's pages rely on."""

from __future__ import annotations

import datetime as dt

import pytest

from piu_app.extensions import db
from piu_app.models import Barrier, Need, NoteVote, StickyNote, WorkshopParticipant
from piu_app.services import ConflictError, InvalidInputError, board_versions
from piu_app.services import workshops as ws
from tests.factories import make_organisation


def make_workshop(**values):
    return ws.create_workshop({"title": "Freins et leviers de l'innovation urbaine", "date": dt.date(2026, 12, 7),
                               "format": "in_person", "visibility": "network", **values})


def make_board(workshop=None, template="barriers"):
    return ws.create_board(workshop or make_workshop(), template)


def open_board(board):
    ws.change_state(board, "open")
    return board


def test_a_workshop_names_its_organisers_from_the_register(ctx):
    make_organisation(name="Cerema", org_type="public_agency", is_startup=False)
    make_organisation(name="The Camp", acronym="TC", org_type="incubator", is_startup=False)
    workshop = make_workshop(organisers="cerema\nTC", themes=["energy_climate"], objective="Comprendre les freins")
    assert [o.name for o in workshop.organisers] == ["Cerema", "The Camp"]
    assert [t.code for t in workshop.themes] == ["energy_climate"]
    assert workshop.origin_instance == "test-city"
    with pytest.raises(InvalidInputError, match="Inconnue SA"):
        ws.update_workshop(workshop, {"title": "X", "organisers": "Inconnue SA"})


def test_workshop_input_is_checked_and_refused_never_cut(ctx):
    with pytest.raises(InvalidInputError):
        make_workshop(title="x" * 201)
    with pytest.raises(InvalidInputError):
        make_workshop(title="")
    with pytest.raises(InvalidInputError):
        make_workshop(format="on_mars")
    with pytest.raises(InvalidInputError, match="U\\+0007"):
        make_workshop(objective="bell \x07")
    with pytest.raises(InvalidInputError):
        make_workshop(visibility="everyone")


def test_the_agenda_keeps_its_order_and_names_speakers(ctx):
    workshop = make_workshop()
    first = ws.add_session(workshop, {"kind": "testimonies", "title": "Témoignage d'une start-up",
                                      "start_time": "09:30", "speakers": "Awa Diop\nJean Martin"}, username="t")
    second = ws.add_session(workshop, {"kind": "board", "title": "Tableau des freins"}, username="t")
    assert [p.family_name for p in first.speakers] == ["Diop", "Martin"]
    assert all(p.draft for p in first.speakers)  # unknown names become draft persons to complete
    ws.move_session(workshop, second.uid, "up")
    db.session.flush()
    assert [s.title for s in sorted(workshop.sessions, key=lambda s: s.position)] == [
        "Tableau des freins", "Témoignage d'une start-up"]
    again = ws.add_session(workshop, {"kind": "plenary", "title": "Restitution", "speakers": "awa diop"},
                           username="t")
    assert again.speakers == [first.speakers[0]]  # the same person, found by name
    with pytest.raises(InvalidInputError):
        ws.add_session(workshop, {"kind": "board", "title": "X", "start_time": "25:00"}, username="t")
    with pytest.raises(InvalidInputError):
        ws.add_session(workshop, {"kind": "karaoke", "title": "X"}, username="t")


def test_the_barriers_template_has_the_five_actor_groups(ctx):
    board = make_board()
    assert board.prompt == "Quels freins à l'innovation urbaine rencontrez-vous ?"
    assert [c.maps_to for c in board.categories] == ["buyers", "carriers", "facilitators",
                                                     "buyer_carrier_relation", "territory"]
    assert board.state == "draft" and board.board_kind == "barriers"
    for key in ("needs", "ideas", "tools", "blank"):
        assert make_board(board.workshop, key).categories
    with pytest.raises(InvalidInputError):
        make_board(board.workshop, "nope")


def test_rules_are_checked_and_anonymity_is_fixed_once_notes_exist(ctx):
    board = make_board()
    rules = {"title": "Freins", "prompt": "?", "anonymous": False, "private_until_reveal": True, "moderated": True,
             "votes_per_participant": 3, "votes_per_note": 2, "note_max_length": 140, "timer_minutes": 10}
    before = board.revision
    ws.update_board(board, rules)
    assert (board.anonymous, board.private_until_reveal, board.moderated) == (False, True, True)
    assert (board.votes_per_participant, board.votes_per_note, board.note_max_length, board.timer_seconds) == (
        3, 2, 140, 600)
    assert board.revision == before + 1  # the phones see the new rules
    for bad in ({"votes_per_note": 5}, {"note_max_length": 5}, {"votes_per_participant": "beaucoup"},
                {"timer_minutes": 999}):
        with pytest.raises(InvalidInputError):
            ws.update_board(board, {**rules, **bad})
    ws.add_note(board, text="Un post-it")
    with pytest.raises(ConflictError):
        ws.update_board(board, {**rules, "anonymous": True})


def test_columns_can_be_renamed_added_and_removed_when_empty(ctx):
    board = make_board()
    first, second = board.categories[0], board.categories[1]
    ws.add_note(board, text="Trop de délais", category_uid=first.uid)
    rows = [(c.uid, c.label, c.maps_to) for c in board.categories]
    rows[0] = (first.uid, "Acheteurs publics", "buyers")
    rows[1] = (second.uid, "", "")
    ws.update_categories(board, rows, new_label="Autres", new_maps_to="")
    assert [c.label for c in board.categories][:1] == ["Acheteurs publics"]
    assert second not in board.categories and board.categories[-1].label == "Autres"
    with pytest.raises(ConflictError):
        ws.update_categories(board, [(first.uid, "", "")])


def test_live_actions_follow_the_shared_rules(ctx):
    board = make_board()
    now = dt.datetime(2026, 12, 7, 10, 0)
    assert not ws.accepts_input(board, now)
    ws.change_state(board, "open", now=now)
    assert ws.accepts_input(board, now) and not ws.accepts_votes(board, now)
    ws.change_state(board, "voting_open", now=now)
    assert ws.accepts_votes(board, now)
    ws.change_state(board, "timer", minutes="5", now=now)
    assert board.timer_ends_at == now + dt.timedelta(minutes=5)
    assert ws.accepts_input(board, now + dt.timedelta(minutes=4))
    assert not ws.accepts_input(board, now + dt.timedelta(minutes=5))  # the timer ended: input refused
    ws.change_state(board, "freeze", now=now)
    assert board.frozen and not ws.accepts_input(board, now)
    ws.change_state(board, "unfreeze", now=now + dt.timedelta(minutes=6))
    assert board.timer_ends_at is None and ws.accepts_input(board, now + dt.timedelta(minutes=6))
    ws.change_state(board, "reveal", now=now)
    assert board.revealed
    with pytest.raises(InvalidInputError):
        ws.change_state(board, "timer", minutes="0", now=now)
    ws.change_state(board, "close", now=now)
    assert board.state == "closed" and not board.voting_open
    with pytest.raises(ConflictError):
        ws.change_state(board, "freeze", now=now)
    with pytest.raises(InvalidInputError):
        ws.change_state(board, "explode", now=now)


def test_every_visible_change_raises_the_version_phones_poll_after_commit(ctx):
    board = open_board(make_board())
    db.session.commit()
    board_versions.forget()  # memory is per process: another test's board may have had this id
    published = board_versions.current(board.id)
    note = ws.add_note(board, text="Les marchés publics sont trop longs")
    db.session.flush()
    assert board_versions.current(board.id) == published  # not before the commit
    db.session.commit()
    assert board_versions.current(board.id) == published + 1
    for change in (lambda: ws.moderate(board, note.uid, "hide"), lambda: ws.moderate(board, note.uid, "unhide"),
                   lambda: ws.add_votes(board, note.uid, 2), lambda: ws.create_theme(board, "Délais", [note.uid]),
                   lambda: ws.change_state(board, "freeze")):
        before = board_versions.current(board.id)
        change()
        db.session.commit()
        assert board_versions.current(board.id) == before + 1


def test_notes_typed_by_the_facilitator_are_checked(ctx):
    board = make_board()
    ws.update_board(board, {"title": "F", "note_max_length": 20, "votes_per_participant": 5, "votes_per_note": 1,
                            "anonymous": True})
    note = ws.add_note(board, text="Court", category_uid=board.categories[0].uid, actor_group="buyers")
    assert note.typed_by_facilitator and not note.pending and note.author_participant_id is None
    with pytest.raises(InvalidInputError):
        ws.add_note(board, text="x" * 21)
    with pytest.raises(InvalidInputError):
        ws.add_note(board, text="   ")
    with pytest.raises(InvalidInputError):
        ws.add_note(board, text="ok", category_uid="no-such-column")
    with pytest.raises(InvalidInputError, match="U\\+001B"):
        ws.add_note(board, text="esc \x1b")


def test_votes_typed_for_people_without_a_phone_keep_the_count(ctx):
    board = open_board(make_board())
    note = ws.add_note(board, text="Délais")
    ws.add_votes(board, note.uid, 3)
    ws.add_votes(board, note.uid, -1)
    db.session.flush()
    assert note.vote_count == 2
    assert db.session.scalar(db.select(db.func.sum(NoteVote.weight)).filter_by(note_id=note.id)) == 2
    with pytest.raises(ConflictError):
        ws.add_votes(board, note.uid, -3)  # only the facilitator's own dots can be taken back
    with pytest.raises(InvalidInputError):
        ws.add_votes(board, note.uid, "deux")


def test_moderation_approves_hides_and_unhides(ctx):
    board = open_board(make_board())
    note = ws.add_note(board, text="À vérifier")
    note.pending = True
    ws.moderate(board, note.uid, "approve")
    assert not note.pending
    ws.moderate(board, note.uid, "hide")
    view = ws.board_view(board)
    assert [n.uid for n in view.hidden] == [note.uid] and view.total == 0
    ws.moderate(board, note.uid, "unhide")
    assert ws.board_view(board).total == 1


def test_themes_create_rename_merge_split_move_and_delete(ctx):
    board = open_board(make_board())
    a, b, c, d = (ws.add_note(board, text=t) for t in ("Délais", "Procédures", "Financement", "Risque"))
    db.session.flush()
    procurement = ws.create_theme(board, "Commande publique", [a.uid, b.uid])
    money = ws.create_theme(board, "Argent", [c.uid])
    ws.rename_theme(board, money.uid, "Financement")
    assert money.label == "Financement"
    ws.move_notes(board, [d.uid], money.uid)
    assert d.theme_id == money.id
    ws.save_theme_synthesis(board, money.uid, "Les financements manquent.")
    ws.merge_themes(board, procurement.uid, [money.uid])
    db.session.flush()
    assert {n.theme_id for n in (a, b, c, d)} == {procurement.id}
    assert money not in board.note_themes and "financements manquent" in procurement.synthesis
    split = ws.split_theme(board, procurement.uid, [c.uid, d.uid], "Argent et risque")
    assert (c.theme_id, d.theme_id, a.theme_id) == (split.id, split.id, procurement.id)
    with pytest.raises(InvalidInputError):
        ws.split_theme(board, procurement.uid, [c.uid], "Pas de ce thème")
    ws.move_notes(board, [a.uid], "")
    assert a.theme_id is None
    ws.delete_theme(board, split.uid)
    db.session.flush()
    assert c.theme_id is None and d.theme_id is None
    with pytest.raises(InvalidInputError):
        ws.create_theme(board, "")
    with pytest.raises(InvalidInputError):
        ws.move_notes(board, [], procurement.uid)


def test_the_board_view_reads_500_notes_in_a_few_queries(ctx, app):
    from sqlalchemy import event
    board = open_board(make_board())
    db.session.add_all(StickyNote(board=board, text=f"Frein numéro {i}", client_key=f"k{i}", vote_count=i % 7,
                                  category=board.categories[i % 5], position=i) for i in range(500))
    db.session.flush()
    ws.create_theme(board, "Premier", [])
    db.session.flush()
    queries = []

    def count(*args):
        queries.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        view = ws.board_view(board)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert view.total == 500 and sum(c.count for c in view.categories) == 500
    assert view.votes == sum(i % 7 for i in range(500))
    assert len(queries) <= 4, queries


def test_suggestions_are_accepted_as_a_theme(ctx):
    board = open_board(make_board())
    for text in ("Les délais de la commande publique sont trop longs", "La commande publique est trop lente",
                 "Les élus ont peur du risque", "Culture du risque absente chez les élus", "Pas de foncier"):
        ws.add_note(board, text=text)
    db.session.flush()
    found = ws.suggestions(ws.board_view(board))
    assert len(found) == 2 and all(len(s.keys) == 2 for s in found)
    theme = ws.accept_suggestion(board, found[0].keys, found[0].label)
    db.session.flush()
    assert len(ws.board_view(board).themes[0].notes) == 2 and theme.label
    with pytest.raises(ConflictError):
        ws.accept_suggestion(board, found[0].keys, "again")  # its notes are in a theme already


CSV_OK = (b"nom;organisation;groupe d'acteurs;consentement\n"
          b"Awa Diop;Ville de Port-Sable;acheteurs;oui\n"
          b"Jean Martin;Lumisol;carriers;non\n"
          b"Ana Lopez;;;\n")


def test_a_participant_list_is_imported_from_csv(ctx):
    workshop = make_workshop()
    result = ws.import_participants(workshop, CSV_OK)
    assert (result.added, result.already) == (3, 0)
    people = {p.name: p for p in ws.participants(workshop)}
    assert people["Awa Diop"].actor_group == "buyers" and people["Awa Diop"].consent_named
    assert people["Jean Martin"].actor_group == "carriers" and not people["Jean Martin"].consent_named
    assert all(p.source == "list" and p.device_hash is None for p in people.values())
    assert ws.import_participants(workshop, CSV_OK).already == 3  # importing twice adds no one
    counts = {code: n for code, _label, n in ws.counts_by_actor_group(workshop)}
    assert counts == {"buyers": 1, "carriers": 1, "": 1}


@pytest.mark.parametrize("data, message", [
    (b"", "vide"),
    (b"organisation\nLumisol\n", "nom"),
    (b"nom;groupe d'acteurs\nAwa;les martiens\n", "ligne 2"),
    ("nom;consentement\nAwa;peut-être\n".encode(), "ligne 2"),
    (("nom\n" + "x" * 201 + "\n").encode(), "ligne 2"),
    (b"nom\nAwa\x07\n", "ligne 2"),
    (b"nom\n\x00\n", "CSV"),
])
def test_a_bad_participant_file_changes_nothing_and_says_why(ctx, data, message):
    workshop = make_workshop()
    with pytest.raises(InvalidInputError, match=message):
        ws.import_participants(workshop, data)
    assert ws.participants(workshop) == []


def test_a_bad_line_after_good_ones_imports_none(ctx):
    workshop = make_workshop()
    with pytest.raises(InvalidInputError, match="ligne 5"):
        ws.import_participants(workshop, CSV_OK + "Zoé;;martiens;oui\n".encode())
    assert db.session.scalar(db.select(db.func.count()).select_from(WorkshopParticipant)) == 0


def test_participants_at_the_door_and_consent(ctx):
    workshop = make_workshop()
    person = ws.add_participant(workshop, name="Awa Diop", organisation="Lumisol", actor_group="carriers")
    db.session.flush()
    assert not person.consent_named and person.source == "door"
    ws.set_consent(workshop, person.uid, True)
    assert person.consent_named
    with pytest.raises(InvalidInputError):
        ws.add_participant(workshop, name="")
    with pytest.raises(InvalidInputError):
        ws.add_participant(workshop, name="X", actor_group="aliens")


def test_a_theme_becomes_a_barrier_named_after_the_workshop(ctx):
    board = open_board(make_board())
    notes = [ws.add_note(board, text=t, category_uid=board.categories[0].uid)
             for t in ("Délais des marchés", "Procédures lourdes")]
    db.session.flush()
    theme = ws.create_theme(board, "Commande publique trop lente", [n.uid for n in notes])
    kind, uid = ws.promote(board, kind="barrier", theme_uid=theme.uid, title=theme.label,
                           description="Les délais", username="t")
    barrier = db.session.scalars(db.select(Barrier).filter_by(uid=uid)).one()
    assert (kind, theme.promoted_kind, theme.promoted_uid) == ("barrier", "barrier", uid)
    assert barrier.actor_group == "buyers"  # the column's actor group
    assert board.workshop.title in barrier.source and board.workshop.uid in barrier.source
    with pytest.raises(ConflictError):
        ws.promote(board, kind="barrier", theme_uid=theme.uid, title="again", username="t")
    # A second, similar note is offered the existing barrier first, and can be linked to it.
    other = ws.add_note(board, text="Commande publique lente")
    db.session.flush()
    assert ws.similar_barriers("commande publique lente")[0].uid == uid
    ws.promote(board, kind="barrier", note_uid=other.uid, existing_uid=uid, username="t")
    assert other.promoted_uid == uid
    assert {(p.kind, p.uid) for p in ws.produced(board.workshop)} == {("barrier", uid)}


def test_a_note_becomes_a_need_or_an_innovation_to_follow(ctx):
    board = open_board(make_board(template="needs"))
    note = ws.add_note(board, text="Un guichet unique pour les expérimentations")
    idea = ws.add_note(board, text="Capteurs de qualité de l'air low-cost")
    db.session.flush()
    _kind, uid = ws.promote(board, kind="need", note_uid=note.uid, title=note.text, username="t")
    need = db.session.scalars(db.select(Need).filter_by(uid=uid)).one()
    assert need.draft and need.title == note.text and board.workshop.title in need.source
    ws.promote(board, kind="innovation", note_uid=idea.uid, title=idea.text, username="t")
    produced = {(p.kind, p.title) for p in ws.produced(board.workshop)}
    assert produced == {("need", note.text), ("innovation", idea.text)}
    with pytest.raises(InvalidInputError):
        ws.promote(board, kind="need", note_uid=note.uid, theme_uid="x", title="t", username="t")
    with pytest.raises(InvalidInputError):
        ws.promote(board, kind="dragon", note_uid=idea.uid, title="t", username="t")


def test_speakers_and_organisers_are_found_however_their_names_are_typed(ctx):
    """Accents, case and a family name alone find the record already in the register (through its
    indexed sort key: the cost does not grow with the register)."""
    make_organisation(name="Énergie Solaire Pair", acronym="ESP")
    workshop = make_workshop(organisers="energie solaire pair")
    assert [o.name for o in workshop.organisers] == ["Énergie Solaire Pair"]
    first = ws.add_session(workshop, {"kind": "plenary", "title": "A", "speakers": "Aïssatou Ndiaye"}, username="t")
    person = first.speakers[0]
    for typed in ("AISSATOU NDIAYE", "ndiaye", "Aissatou  Ndiayé"[:-1] + "e"):
        again = ws.add_session(workshop, {"kind": "plenary", "title": typed, "speakers": typed}, username="t")
        assert again.speakers == [person], typed
    from tests.factories import make
    compound = make("persons", given_name="Awa", family_name="Ba Diop")  # a family name of two words
    for typed in ("Awa Ba Diop", "ba diop", "AWA BA DIOP"):
        again = ws.add_session(workshop, {"kind": "plenary", "title": typed, "speakers": typed}, username="t")
        assert again.speakers == [compound], typed
