"""The room: phones join a workshop by its code, post notes and vote, under the board's rules.

Every value comes from a phone and is hostile: it is checked for type, length and control characters
before any write (refused, never truncated). A phone is known by its device token, which the server
never stores: the participant row keeps its SHA-256, and a note keeps `author_key`, an HMAC of the token
under the install's secret, so that the phone finds its own notes even on an anonymous board.

Each function is one short write (or read); the caller commits. Every change phones or the projector
see raises the board's version (`board_versions.bump`) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..models import (
    Board,
    NoteCategory,
    NoteVote,
    StickyNote,
    Workshop,
    WorkshopParticipant,
    db,
    utcnow,
)
from . import ConflictError, InvalidInputError, NotFoundError, board_versions, room_memory, vocabularies
from .records import check_editable, control_character

# Join codes: digits and capitals without look-alikes (no 0/O, 1/I/L), six of them (31⁶ ≈ 887 million).
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
_CODE_RE = re.compile(rf"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
# A client key is made on the phone (crypto.getRandomValues) or in a hidden field when JS is off.
_CLIENT_KEY_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32,64}")
_UID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NAME_MAX = 200
# Notes one phone may post on one board: a participant writes a few, and a script posting without end
# would fill the projector and slow every phone's poll (the facilitator types without this limit).
NOTES_PER_PHONE = 50
ACTOR_GROUP_VOCABULARY = "barrier_actor_group"


# --- codes, tokens, keys ------------------------------------------------------------------------------

def new_device_token() -> str:
    """Return a fresh random device token (the phone's cookie)."""
    return secrets.token_urlsafe(32)


def valid_token(token: Any) -> bool:
    return isinstance(token, str) and bool(_TOKEN_RE.fullmatch(token))


def device_hash(token: str) -> str:
    """Return what the server stores of a device token: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def author_key(secret: str, token: str) -> str:
    """Return the key that marks a phone's notes (an HMAC of its token: no link to a participant row)."""
    return hmac.new(secret.encode(), b"note|" + token.encode(), hashlib.sha256).hexdigest()


def form_key(secret: str, token: str) -> str:
    """Return the per-device form check (the room's CSRF token: a cross-site page cannot compute it)."""
    return hmac.new(secret.encode(), b"form|" + token.encode(), hashlib.sha256).hexdigest()[:32]


def normalise_code(code: Any) -> str:
    """Return a typed join code in canonical form, or "" if it cannot be one."""
    if not isinstance(code, str) or len(code) > 40:
        return ""
    cleaned = re.sub(r"[\s-]", "", code).upper()
    return cleaned if _CODE_RE.fullmatch(cleaned) else ""


def ensure_join_code(workshop: Workshop) -> str:
    """Give the workshop a join code if it has none, unique among the workshops that hold one.

    A workshop of another city (imported from its bundle) is read-only here: its room never opens."""
    check_editable(workshop)
    if workshop.join_code:
        return workshop.join_code
    for _attempt in range(50):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if db.session.scalar(select(func.count()).select_from(Workshop).where(Workshop.join_code == code)) == 0:
            workshop.join_code = code
            return code
    raise ConflictError(_("Impossible de créer un code d'accès : réessayez."))  # pragma: no cover


def workshop_by_code(code: Any, open_ids: set[int] | frozenset[int]) -> Workshop:
    """Return the open workshop a join code names (NotFoundError otherwise: a closed room is no room)."""
    return db.session.get(Workshop, open_workshop_id(code, open_ids))


# --- checks ---------------------------------------------------------------------------------------------

def _text(value: Any, *, label: str, max_length: int, multiline: bool = False, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInputError(_("%(field)s : valeur invalide.", field=label))
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInputError(_("%(field)s : %(max)d caractères au plus (vous en avez %(n)d).",
                                  field=label, max=max_length, n=len(value)))
    bad = control_character(value, multiline=multiline)
    if bad:
        raise InvalidInputError(_("Caractère de contrôle invisible interdit (%(code)s) : retirez-le "
                                  "(il vient souvent d'un copier-coller).", code=bad))
    if required and not value:
        raise InvalidInputError(_("%(field)s : à remplir.", field=label))
    return value


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


def timer_ended(board: Board, now: dt.datetime | None = None) -> bool:
    return board.timer_ends_at is not None and _now(now) >= board.timer_ends_at


def accepts_notes(board: Board, now: dt.datetime | None = None) -> bool:
    """Tell whether a participant may post on the board now (open, not frozen, timer running)."""
    return board.state == "open" and not board.frozen and not timer_ended(board, now)


def accepts_votes(board: Board, now: dt.datetime | None = None) -> bool:
    """Tell whether a participant may vote on the board now."""
    return bool(board.voting_open) and accepts_notes(board, now) and board.votes_per_participant > 0


def notes_visible_to_all(board: Board) -> bool:
    return not board.private_until_reveal or bool(board.revealed)


# --- participants ---------------------------------------------------------------------------------------

def open_workshop_id(code: Any, open_ids: set[int] | frozenset[int]) -> int:
    """Return the id of the open workshop a join code names, as `workshop_by_code` does, reading only its
    id: a phone's poll needs no more, and polls are most of what the room answers."""
    code = normalise_code(code)
    workshop_id = room_memory.workshop_id(code, lambda: db.session.scalar(select(Workshop.id).where(
        Workshop.join_code == code, Workshop.deleted.is_(False)))) if code else None
    if workshop_id is None or workshop_id not in open_ids:
        raise NotFoundError(_("Aucun atelier ouvert avec ce code. Vérifiez-le auprès de l'animateur."))
    return workshop_id


def participant_id_for(workshop_id: int, token: str | None) -> int | None:
    """Return the id of the participant this phone's token belongs to, if it has joined (see participant_for)."""
    if not token or not valid_token(token):
        return None
    hashed = device_hash(token)
    return room_memory.participant_id(workshop_id, hashed, lambda: db.session.scalar(select(WorkshopParticipant.id).where(
        WorkshopParticipant.workshop_id == workshop_id, WorkshopParticipant.device_hash == hashed)))


def participant_for(workshop: Workshop, token: str | None) -> WorkshopParticipant | None:
    """Return the participant this phone's token belongs to, if it has joined."""
    participant_id = participant_id_for(workshop.id, token)
    return None if participant_id is None else db.session.get(WorkshopParticipant, participant_id)


def join(workshop: Workshop, *, token: str, name: Any = "", organisation: Any = "", actor_group: Any = "",
         consent_named: Any = False) -> WorkshopParticipant:
    """Join the workshop from a phone, or update what this phone said of itself (same token, same row)."""
    check_editable(workshop)
    if not valid_token(token):
        raise InvalidInputError(_("Cet appareil n'a pas de jeton valide : rechargez la page."))
    name = _text(name, label=_("Nom"), max_length=NAME_MAX)
    organisation = _text(organisation, label=_("Organisation"), max_length=NAME_MAX)
    actor_group = _text(actor_group, label=_("Groupe d'acteurs"), max_length=40)
    if actor_group and not vocabularies.is_valid(ACTOR_GROUP_VOCABULARY, actor_group):
        raise InvalidInputError(_("Groupe d'acteurs inconnu."))
    if not isinstance(consent_named, bool):
        raise InvalidInputError(_("Consentement : valeur invalide."))
    participant = participant_for(workshop, token)
    if participant is None:
        participant = WorkshopParticipant(workshop_id=workshop.id, device_hash=device_hash(token), source="phone")
        db.session.add(participant)
    participant.name = name
    participant.organisation_name = organisation
    participant.actor_group = actor_group
    participant.consent_named = consent_named and bool(name)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:  # the same phone joined twice at once: keep the first row
        existing = participant_for(workshop, token)
        if existing is None:  # pragma: no cover - the row that collided is there
            raise
        return existing
    return participant


# --- boards -----------------------------------------------------------------------------------------------

def open_boards(workshop: Workshop) -> list[Board]:
    """Return the workshop's boards open to the room, in agenda order."""
    return list(db.session.scalars(select(Board).where(
        Board.workshop_id == workshop.id, Board.state == "open", Board.deleted.is_(False)).order_by(Board.position,
                                                                                                  Board.id)))


def board_of(workshop: Workshop | int, board_uid: Any) -> Board:
    """Return a board of the workshop (or workshop id) that the room may see (open or closed, never a draft)."""
    workshop_id = workshop if isinstance(workshop, int) else workshop.id
    board = None
    if isinstance(board_uid, str) and _UID_RE.fullmatch(board_uid):
        board = db.session.scalar(select(Board).where(Board.uid == board_uid, Board.workshop_id == workshop_id,
                                                      Board.deleted.is_(False)))
    if board is None or board.state == "draft":
        raise NotFoundError(_("Ce tableau n'existe pas ou n'est pas encore ouvert."))
    return board


def _category(board: Board, category_uid: Any) -> NoteCategory | None:
    categories = board.categories
    if not categories:
        return None
    if not isinstance(category_uid, str) or not category_uid:
        if len(categories) == 1:
            return categories[0]
        raise InvalidInputError(_("Choisissez une catégorie."))
    for category in categories:
        if category.uid == category_uid:
            return category
    raise InvalidInputError(_("Catégorie inconnue."))


def _check_room_board(board: Board) -> None:
    """Refuse a write to a board of another city or in the trash. Its workshop's row is not read again: a
    room opens only for one of our own workshops (`ensure_join_code`), and a board of another city's
    workshop is another city's board (bundles refuse any other pairing)."""
    check_editable(board)


def post_note(board: Board, participant: WorkshopParticipant, *, author: str, text: Any, category_uid: Any,
              client_key: Any, now: dt.datetime | None = None) -> tuple[StickyNote, bool]:
    """Post a note; a resent note (same client key) is the same note. Return (note, created)."""
    _check_room_board(board)
    if not isinstance(client_key, str) or not _CLIENT_KEY_RE.fullmatch(client_key):
        raise InvalidInputError(_("Clé de note invalide : rechargez la page."))
    existing = db.session.scalar(select(StickyNote).where(StickyNote.board_id == board.id,
                                                          StickyNote.client_key == client_key))
    if existing is not None:
        if existing.author_key != author:
            raise ConflictError(_("Clé de note déjà utilisée : rechargez la page."))
        return existing, False  # the phone lost our answer and sent the note again
    if not accepts_notes(board, now):
        raise ConflictError(_("Ce tableau ne reçoit plus de notes."))
    text = _text(text, label=_("Note"), max_length=board.note_max_length, multiline=True, required=True)
    category = _category(board, category_uid)
    written = db.session.scalar(select(func.count()).select_from(StickyNote).where(
        StickyNote.board_id == board.id, StickyNote.author_key == author))
    if written >= NOTES_PER_PHONE:
        raise ConflictError(_("Vous avez déjà envoyé %(n)d notes sur ce tableau : c'est le maximum par "
                              "participant.", n=NOTES_PER_PHONE))
    position = (db.session.scalar(select(func.max(StickyNote.position)).where(StickyNote.board_id == board.id))
                or 0) + 1
    note = StickyNote(board_id=board.id, category_id=category.id if category else None, text=text,
                      client_key=client_key, author_key=author, author_actor_group=participant.actor_group or "",
                      author_participant_id=None if board.anonymous else participant.id,
                      pending=bool(board.moderated), position=position)
    try:
        with db.session.begin_nested():
            db.session.add(note)
            db.session.flush()
    except IntegrityError:  # the same key arrived twice at once (PostgreSQL): answer the stored one
        stored = db.session.scalar(select(StickyNote).where(StickyNote.board_id == board.id,
                                                            StickyNote.client_key == client_key))
        if stored is None or stored.author_key != author:  # pragma: no cover
            raise
        return stored, False
    board_versions.bump(board, phone=author)
    return note, True


def _visible_note(board: Board, note_uid: Any) -> StickyNote:
    note = None
    if isinstance(note_uid, str) and _UID_RE.fullmatch(note_uid):
        note = db.session.scalar(select(StickyNote).where(StickyNote.uid == note_uid, StickyNote.board_id == board.id))
    if note is None or note.hidden or note.pending or not notes_visible_to_all(board):
        raise NotFoundError(_("Cette note n'existe pas."))
    return note


def vote(board: Board, participant: WorkshopParticipant, *, note_uid: Any, delta: Any, author: str = "",
         now: dt.datetime | None = None) -> int:
    """Add (delta=1) or take back (delta=-1) one dot on a note; return the dots this phone has on it.
    `author` is the phone's author key (its next answer must show this dot)."""
    _check_room_board(board)
    if delta not in (1, -1) or isinstance(delta, bool):
        raise InvalidInputError(_("Vote invalide."))
    if not accepts_votes(board, now):
        raise ConflictError(_("Les votes ne sont pas ouverts sur ce tableau."))
    # Lock the participant's row (PostgreSQL) so that two taps at once cannot pass the limits together;
    # SQLite's BEGIN IMMEDIATE already serialises writers.
    db.session.scalar(select(WorkshopParticipant.id).where(WorkshopParticipant.id == participant.id)
                      .with_for_update())
    note = _visible_note(board, note_uid)
    mine = db.session.scalar(select(NoteVote).where(NoteVote.note_id == note.id,
                                                    NoteVote.participant_id == participant.id))
    if delta > 0:
        used = db.session.scalar(select(func.coalesce(func.sum(NoteVote.weight), 0)).join(StickyNote).where(
            StickyNote.board_id == board.id, NoteVote.participant_id == participant.id)) or 0
        if used >= board.votes_per_participant:
            raise ConflictError(_("Vous avez utilisé vos %(n)d votes.", n=board.votes_per_participant))
        if mine is not None and mine.weight >= board.votes_per_note:
            raise ConflictError(_("%(n)d vote(s) au plus par note.", n=board.votes_per_note))
        if mine is None:
            mine = NoteVote(note_id=note.id, participant_id=participant.id, weight=0)
            db.session.add(mine)
        mine.weight += 1
    else:
        if mine is None or mine.weight <= 0:
            raise ConflictError(_("Vous n'avez pas voté pour cette note."))
        mine.weight -= 1
    weight = mine.weight
    if weight == 0:
        db.session.delete(mine)
    db.session.flush()
    note.vote_count = StickyNote.vote_count + delta  # in SQL: concurrent voters never lose a dot
    board_versions.bump(board, phone=author)
    db.session.flush()
    return weight


def forget_shared() -> None:
    """Drop what the room keeps in memory (tests; a restored backup)."""
    room_memory.forget()


def notes_for_phone(board: Board, author: str) -> list[dict[str, Any]]:
    """Return every note a phone may see: the shared ones and its own (pending ones too), never a hidden one."""
    state = board_state(board, author=author, participant=None)
    mine = set(state["mine"])
    return [{**n, "mine": n["id"] in mine} for n in state["notes"]] + [{**n, "mine": True} for n in state["own"]]


def _board_header(board: Board | room_memory.BoardRules, version: int, now: dt.datetime, my_votes: dict[str, int]) -> dict[str, Any]:
    return {
        "v": version,
        "state": board.state,
        "accepting": accepts_notes(board, now),
        "voting": accepts_votes(board, now),
        "visible": notes_visible_to_all(board),
        "timer_ends_at": _epoch_ms(board.timer_ends_at),
        "now": _epoch_ms(now),
        "votes_left": max(0, board.votes_per_participant - sum(my_votes.values())),
        "votes_per_note": board.votes_per_note,
    }


def board_state(board: Board, *, author: str, participant: WorkshopParticipant | int | None,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """Return the board as a phone sees it: rules and state, `notes` (shared), `own` (notes only this phone
    sees: its pending ones, all of them before the reveal), `mine` (its uids among the shared), `my_votes`.
    Other phones' latest notes and votes may be missing for up to room_memory.SHARED_MAX_AGE; this phone's
    own, and the facilitator's changes, never are."""
    need = board_versions.must_show(board.id, author)
    snap = room_memory.snapshot(board.id, uid=board.uid, need=need)
    if snap.rules is None:
        raise NotFoundError(_("Ce tableau n'existe pas ou n'est pas encore ouvert."))
    view = room_memory.phone_view(snap, author, _participant_id(participant), need=need)
    return {**_board_header(snap.rules, snap.version, _now(now), view.my_votes), "mine": view.mine,
            "own": view.own, "notes": snap.notes, "my_votes": view.my_votes, "chain": snap.chain}


def _participant_id(participant: WorkshopParticipant | int | None) -> int | None:
    return participant if participant is None or isinstance(participant, int) else participant.id


def board_state_json(board_id: int, *, board_uid: str, workshop_id: int, author: str, participant: int | None,
                     since: Any = None, now: dt.datetime | None = None) -> tuple[int, str]:
    """Return (version, the board_state JSON) of a board of the workshop that the room may see, from what
    the room keeps in memory (no query once the room runs).

    `since` is what the phone holds ("chain.version", from its last answer's `chain` and `v`): if the chain
    can say what changed after it, `notes` carries only the notes added or changed since, `gone` the uids
    that left the shared list, and `delta` is true; otherwise `notes` is the whole list. The version is the
    snapshot's, read before its content: a phone never keeps older content under a newer version's tag."""
    need = board_versions.must_show(board_id, author)
    snap = room_memory.snapshot(board_id, uid=board_uid, need=need)
    if not seen_by_room(snap, board_uid, workshop_id):
        raise NotFoundError(_("Ce tableau n'existe pas ou n'est pas encore ouvert."))
    view = room_memory.phone_view(snap, author, participant, need=need)
    return snap.version, state_json(snap, view, since=since, now=now)


def seen_by_room(snap: room_memory.BoardSnapshot, board_uid: str, workshop_id: int) -> bool:
    """Whether the snapshot's board is that board of that workshop, and the room may show it."""
    rules = snap.rules
    return not (rules is None or rules.uid != board_uid or rules.deleted or rules.state == "draft"
                or rules.workshop_id != workshop_id)


def state_json(snap: room_memory.BoardSnapshot, view: room_memory.PhoneView, *, since: Any = None,
               now: dt.datetime | None = None) -> str:
    """The JSON a phone's poll is answered with (see board_state_json)."""
    assert snap.rules is not None
    head = {**_board_header(snap.rules, snap.version, _now(now), view.my_votes), "mine": view.mine,
            "own": view.own, "my_votes": view.my_votes, "chain": snap.chain}
    body = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    delta = room_memory.changes_since(snap, since)
    if delta is None:
        return body[:-1] + ',"delta":false,"notes":' + snap.text + "}"
    return body[:-1] + ',"delta":true,' + delta + "}"


def _epoch_ms(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.replace(tzinfo=dt.UTC).timestamp() * 1000)


def projector_state(board: Board, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Return what the projector shows: counts per category, the timer, and the notes once visible."""
    now = _now(now)
    rows = db.session.execute(select(StickyNote.category_id, func.count()).where(
        StickyNote.board_id == board.id, StickyNote.hidden.is_(False), StickyNote.pending.is_(False))
        .group_by(StickyNote.category_id))
    counts = {category_id: n for category_id, n in rows}
    visible = notes_visible_to_all(board)
    notes = []
    if visible:
        notes = [{"id": n.uid, "text": n.text, "cat": n.category.uid if n.category else "", "votes": n.vote_count}
                 for n in db.session.scalars(select(StickyNote).where(
                     StickyNote.board_id == board.id, StickyNote.hidden.is_(False),
                     StickyNote.pending.is_(False)).order_by(StickyNote.position, StickyNote.id))]
    return {
        "v": board_versions.current(board.id),
        "state": board.state,
        "accepting": accepts_notes(board, now),
        "visible": visible,
        "timer_ends_at": _epoch_ms(board.timer_ends_at),
        "now": _epoch_ms(now),
        "total": sum(counts.values()),
        "counts": {c.uid: counts.get(c.id, 0) for c in board.categories},
        "notes": notes,
    }


def workshop_by_uid(uid: Any) -> Workshop:
    """Return a workshop by its public uid (NotFoundError otherwise)."""
    workshop = None
    if isinstance(uid, str) and _UID_RE.fullmatch(uid):
        workshop = db.session.scalar(select(Workshop).where(Workshop.uid == uid, Workshop.deleted.is_(False)))
    if workshop is None:
        raise NotFoundError(_("Cet atelier n'existe pas."))
    return workshop


def projector_board(workshop: Workshop, board_uid: Any = None) -> Board | None:
    """Return the board the projector shows: the one asked for, else the first open one, else the last."""
    boards = [b for b in workshop.boards if not b.deleted]
    if isinstance(board_uid, str) and board_uid:
        for board in boards:
            if board.uid == board_uid:
                return board
        raise NotFoundError(_("Ce tableau n'existe pas."))
    open_ones = [b for b in boards if b.state == "open"]
    return open_ones[0] if open_ones else (boards[-1] if boards else None)


WIFI_SECURITIES = ("WPA", "WEP", "nopass")


def wifi_payload(ssid: Any, password: Any, security: Any) -> tuple[str, str, str]:
    """Check what the facilitator typed for the Wi-Fi QR code (kept in memory only, never stored)."""
    ssid = _text(ssid, label=_("Nom du réseau Wi-Fi"), max_length=32, required=True)
    password = _text(password, label=_("Mot de passe Wi-Fi"), max_length=63)
    if security not in WIFI_SECURITIES:
        raise InvalidInputError(_("Type de sécurité Wi-Fi inconnu."))
    if security != "nopass" and not password:
        raise InvalidInputError(_("Mot de passe Wi-Fi : à remplir."))
    return ssid, password, security
