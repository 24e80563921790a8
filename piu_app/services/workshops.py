"""Workshops, prepared and facilitated from the laptop: the workshop and its agenda, its boards and
their rules, the participant list, and what the facilitator does with the notes (moderation, themes,
votes typed for people without a phone, syntheses, promotion to register records).

Every function takes explicit arguments and leaves the commit to its caller (one use case, one
transaction). Every change a phone or the projector can see calls `board_versions.bump(board)`.
The participants' own actions (joining, posting, voting from a phone) live in services/room.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..database import fold
from ..models import (
    VISIBILITIES,
    Barrier,
    Board,
    NoteCategory,
    NoteTheme,
    NoteVote,
    Organisation,
    Person,
    Place,
    StickyNote,
    Territory,
    Theme,
    Workshop,
    WorkshopParticipant,
    WorkshopParticipantCount,
    WorkshopSession,
    db,
    new_uid,
    utcnow,
)
from ..models.workshops import SESSION_KINDS as SESSION_CODES
from ..models.workshops import WORKSHOP_FORMATS
from ..registry import INNOVATIONS, NEEDS, PERSONS, TEXTAREA_MAX_LENGTH
from . import ConflictError, InvalidInputError, NotFoundError, board_versions, grouping, room_memory
from . import barriers as barrier_service
from . import instance as instance_service
from . import records as record_service

TITLE_MAX = 200
LABEL_MAX = 120
NAME_MAX = 200
MAX_VOTES = 100
MAX_NOTE_LENGTH = 2000
MAX_TIMER_MINUTES = 240
MAX_PARTICIPANTS_FILE = 1_000_000
MAX_PARTICIPANT_ROWS = 5000
MAX_CATEGORIES = 12

# Labels of the codes the model lists (a code without its label fails here, at import).
_FORMAT_LABELS = {"in_person": _l("En présentiel"), "online": _l("En ligne"), "hybrid": _l("Hybride")}
_SESSION_LABELS = {"testimonies": _l("Témoignages"), "board": _l("Atelier post-it"), "plenary": _l("Restitution"),
                   "visit": _l("Visite")}
FORMATS = tuple((code, _FORMAT_LABELS[code]) for code in WORKSHOP_FORMATS)
SESSION_KINDS = tuple((code, _SESSION_LABELS[code]) for code in SESSION_CODES)
# The five actor groups of the barrier catalogue (vocabulary barrier_actor_group).
ACTOR_GROUPS = (
    ("buyers", _l("Acheteurs (collectivités, aménageurs, promoteurs)")),
    ("carriers", _l("Porteurs (start-ups, entreprises, laboratoires)")),
    ("facilitators", _l("Facilitateurs (BET, AMO, clusters, incubateurs, agences de développement)")),
    ("buyer_carrier_relation", _l("Relation acheteur-porteur")),
    ("territory", _l("Territoire")),
)
PROMOTION_KINDS = (("barrier", _l("Frein")), ("need", _l("Besoin")), ("innovation", _l("Innovation à suivre")))
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class BoardTemplate:
    key: str
    label: Any
    board_kind: str
    prompt: Any
    categories: tuple[tuple[Any, str], ...]  # (label, maps_to)


BOARD_TEMPLATES = (
    BoardTemplate("barriers", _l("Freins à l'innovation urbaine"), "barriers",
                  _l("Quels freins à l'innovation urbaine rencontrez-vous ?"), (
                      (_l("Côté acheteurs"), "buyers"), (_l("Côté porteurs"), "carriers"),
                      (_l("Côté facilitateurs"), "facilitators"),
                      (_l("Relation acheteur-porteur"), "buyer_carrier_relation"),
                      (_l("Territoire"), "territory"))),
    BoardTemplate("needs", _l("Besoins"), "needs", _l("De quoi auriez-vous besoin pour innover davantage ?"), (
        (_l("Compétences et méthodes"), ""), (_l("Financement"), ""), (_l("Mise en relation"), ""))),
    BoardTemplate("ideas", _l("Idées / solutions"), "ideas", _l("Quelles idées ou solutions proposez-vous ?"), (
        (_l("Idées"), ""),)),
    BoardTemplate("tools", _l("Outils et fonctionnalités à développer"), "tools",
                  _l("Quels outils ou fonctionnalités faudrait-il développer ?"), (
                      (_l("Outils"), ""), (_l("Fonctionnalités"), ""))),
    BoardTemplate("blank", _l("Tableau vierge"), "free", "", ((_l("Post-it"), ""),)),
)
TEMPLATES = {t.key: t for t in BOARD_TEMPLATES}


# --------------------------------------------------------------------------- checks

def _text(value: Any, label: Any, *, max_length: int, required: bool = False, multiline: bool = False) -> str:
    """Return a checked text: refused (never cut) if too long or carrying a control character."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInputError(_("%(field)s : texte attendu.", field=label))
    value = value.strip() if not multiline else value.strip("\n\r ")
    if required and not value:
        raise InvalidInputError(_("%(field)s : à renseigner.", field=label))
    if len(value) > max_length:
        raise InvalidInputError(_("%(field)s : %(max)d caractères au plus (%(n)d saisis).",
                                  field=label, max=max_length, n=len(value)))
    bad = record_service.control_character(value, multiline=multiline)
    if bad:
        raise InvalidInputError(_("Caractère de contrôle invisible interdit (%(code)s) : retirez-le "
                                  "(il vient souvent d'un copier-coller).", code=bad))
    return value


def _int(value: Any, label: Any, *, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidInputError(_("%(field)s : nombre entier attendu.", field=label)) from None
    if not low <= number <= high:
        raise InvalidInputError(_("%(field)s : entre %(low)d et %(high)d.", field=label, low=low, high=high))
    return number


def _choice(value: Any, choices: Sequence[tuple[str, Any]], label: Any, *, allow_empty: bool = False) -> str:
    if allow_empty and value in (None, ""):
        return ""
    if value not in {code for code, _label in choices}:
        raise InvalidInputError(_("%(field)s : choix inconnu.", field=label))
    return str(value)


def label_of(choices: Sequence[tuple[str, Any]], code: str) -> str:
    """Return the translated label of a fixed choice (the code itself if unknown)."""
    return next((str(text) for c, text in choices if c == code), code)


def _editable(*records: Any) -> None:
    """Refuse to change a record of another city: a workshop, and a board with its own (a peer's board
    can only be under a peer's workshop, but the import and this guard both check it)."""
    for record in records:
        record_service.check_editable(record)


def _touch(record: Any) -> None:
    record.version = (record.version or 0) + 1
    record.updated_at = utcnow()


# --------------------------------------------------------------------------- reading

def list_workshops() -> list[Workshop]:
    """Return the live workshops, the latest first."""
    return list(db.session.scalars(select(Workshop).where(Workshop.deleted.is_(False))
                                   .order_by(Workshop.date.desc().nulls_last(), Workshop.id.desc())))


def get_workshop(uid: str) -> Workshop:
    """Return the live workshop with this uid, or raise NotFoundError."""
    workshop = db.session.scalars(select(Workshop).filter_by(uid=str(uid), deleted=False)).first()
    if workshop is None:
        raise NotFoundError(_("Cet atelier n'existe pas (ou plus)."))
    return workshop


def get_board(workshop: Workshop, board_uid: str) -> Board:
    """Return the workshop's board with this uid, or raise NotFoundError."""
    board = db.session.scalars(select(Board).filter_by(uid=str(board_uid), workshop_id=workshop.id,
                                                       deleted=False)).first()
    if board is None:
        raise NotFoundError(_("Ce tableau n'existe pas (ou plus)."))
    return board


def _session_of(workshop: Workshop, uid: Any) -> WorkshopSession:
    found = db.session.scalars(select(WorkshopSession).filter_by(uid=str(uid or ""), workshop_id=workshop.id,
                                                                 deleted=False)).first()
    if found is None:
        raise NotFoundError(_("Cette séquence n'existe pas (ou plus)."))
    return found


def note_of(board: Board, uid: Any) -> StickyNote:
    """Return the board's note with this uid, or raise NotFoundError."""
    note = db.session.scalars(select(StickyNote).filter_by(uid=str(uid or ""), board_id=board.id)).first()
    if note is None:
        raise NotFoundError(_("Ce post-it n'existe pas (ou plus)."))
    return note


def theme_of(board: Board, uid: Any) -> NoteTheme:
    """Return the board's theme with this uid, or raise NotFoundError."""
    theme = db.session.scalars(select(NoteTheme).filter_by(uid=str(uid or ""), board_id=board.id)).first()
    if theme is None:
        raise NotFoundError(_("Ce thème n'existe pas (ou plus)."))
    return theme


def participant_of(workshop: Workshop, uid: Any) -> WorkshopParticipant:
    found = db.session.scalars(select(WorkshopParticipant).filter_by(uid=str(uid or ""),
                                                                     workshop_id=workshop.id)).first()
    if found is None:
        raise NotFoundError(_("Ce participant n'existe pas (ou plus)."))
    return found


# --------------------------------------------------------------------------- the workshop

def _names(value: Any, label: Any) -> list[str]:
    text = _text(value, label, max_length=2000, multiline=True)
    names = [" ".join(part.split()) for part in re.split(r"[\n;]", text)]
    return list(dict.fromkeys(n for n in names if n))


def _organisations(names: list[str]) -> list[Organisation]:
    """Return the organisations named (by name or acronym); an unknown name is refused with its spelling."""
    found, unknown = [], []
    for name in names:
        key = fold(name)
        org = db.session.scalars(select(Organisation).where(
            Organisation.deleted.is_(False),
            (func.lower(Organisation.name) == name.lower()) | (func.lower(Organisation.acronym) == name.lower()))
            .order_by(Organisation.id)).first()
        if org is None:  # accents or case typed differently: compare folded names
            org = next((o for o in _starting_with(Organisation, key) if fold(o.name) == key), None)
        if org is None:
            unknown.append(name)
        else:
            found.append(org)
    if unknown:
        raise InvalidInputError(_("Organisation inconnue du registre : %(names)s. Créez d'abord sa fiche "
                                  "(menu Registre › Organisations) ou corrigez le nom.", names=", ".join(unknown)))
    return list(dict.fromkeys(found))


def _ref(model: type, uid: Any, label: Any) -> Any:
    if not uid:
        return None
    record = db.session.scalars(select(model).filter_by(uid=str(uid), deleted=False)).first()
    if record is None:
        raise InvalidInputError(_("%(field)s : fiche introuvable.", field=label))
    return record


def _assign_workshop(workshop: Workshop, values: Mapping[str, Any]) -> None:
    workshop.title = _text(values.get("title"), _("Titre"), max_length=TITLE_MAX, required=True)
    date = values.get("date")
    if date is not None and not isinstance(date, dt.date):
        raise InvalidInputError(_("Date : date attendue."))
    workshop.date = date
    workshop.place = _ref(Place, values.get("place"), _("Lieu"))
    workshop.territory = _ref(Territory, values.get("territory"), _("Territoire"))
    workshop.format = _choice(values.get("format") or "in_person", FORMATS, _("Format"))
    workshop.programme = _text(values.get("programme"), _("Programme"), max_length=40)
    workshop.objective = _text(values.get("objective"), _("Objectifs"), max_length=TEXTAREA_MAX_LENGTH,
                               multiline=True)
    workshop.context = _text(values.get("context"), _("Contexte"), max_length=TEXTAREA_MAX_LENGTH, multiline=True)
    visibility = values.get("visibility") or "network"
    if visibility not in VISIBILITIES:
        raise InvalidInputError(_("Niveau de partage inconnu."))
    workshop.visibility = visibility
    codes = list(values.get("themes") or [])
    themes = list(db.session.scalars(select(Theme).where(Theme.code.in_(codes)))) if codes else []
    if len(themes) != len(set(codes)):
        raise InvalidInputError(_("Thématique inconnue."))
    workshop.themes = themes
    workshop.organisers = _organisations(_names(values.get("organisers"), _("Organisateurs")))
    workshop.sort_key = fold(workshop.title)[:200]


def create_workshop(values: Mapping[str, Any]) -> Workshop:
    """Create a workshop owned by this instance."""
    workshop = Workshop(origin_instance=instance_service.instance_code())
    with db.session.no_autoflush:
        _assign_workshop(workshop, values)
    db.session.add(workshop)
    db.session.flush()
    return workshop


def update_workshop(workshop: Workshop, values: Mapping[str, Any]) -> Workshop:
    """Change the workshop's description; its boards follow its sharing level."""
    _editable(workshop)
    with db.session.no_autoflush:
        _assign_workshop(workshop, values)
    for board in workshop.boards:
        board.visibility = workshop.visibility
    _touch(workshop)
    return workshop


def save_workshop_synthesis(workshop: Workshop, *, synthesis: Any, recommendations: Any, commitments: Any) -> None:
    """Record the workshop's synthesis, recommendations and commitments (Markdown)."""
    _editable(workshop)
    workshop.synthesis = _text(synthesis, _("Synthèse"), max_length=TEXTAREA_MAX_LENGTH, multiline=True)
    workshop.recommendations = _text(recommendations, _("Recommandations"), max_length=TEXTAREA_MAX_LENGTH,
                                     multiline=True)
    workshop.commitments = _text(commitments, _("Engagements"), max_length=TEXTAREA_MAX_LENGTH, multiline=True)
    _touch(workshop)


# --------------------------------------------------------------------------- the agenda

def _starting_with(model: type, key: str, limit: int = 500) -> list[Any]:
    """Live records whose folded sort key starts with `key`, in its order (an indexed range: the
    cost does not grow with the register, where reading every record took seconds at 100 000)."""
    key = key[:200]  # as the sort key is cut (`records`)
    if not key:
        return []
    upper = key[:-1] + chr(ord(key[-1]) + 1)
    return list(db.session.scalars(select(model).where(model.deleted.is_(False), model.sort_key >= key,
                                                       model.sort_key < upper).order_by(model.sort_key).limit(limit)))


def _speakers(value: Any, *, username: str) -> list[Person]:
    """Return the persons named (one per line or separated by ';'); an unknown name becomes a draft person."""
    people = []
    for name in _names(value, _("Intervenants")):
        if len(name) > NAME_MAX:
            raise InvalidInputError(_("Intervenants : %(max)d caractères au plus par nom.", max=NAME_MAX))
        key = fold(name)
        # A person's sort key is "family given": typed "Awa Ba Diop" (family name "Ba Diop"), it is one
        # of the name's rotations, "ba diop awa"; typed "Diop" or "Ba Diop", the name starts it.
        words = key.split()[:8]
        candidates = [p for i in range(len(words)) for p in _starting_with(Person, " ".join(words[i:] + words[:i]))]
        person = next((p for p in candidates
                       if fold(" ".join(filter(None, (p.given_name, p.family_name)))) == key or fold(p.family_name) == key), None)
        if person is None:
            person = record_service.create_named(PERSONS, name, {}, username=username)
        people.append(person)
    return list(dict.fromkeys(people))


def _assign_session(session: WorkshopSession, values: Mapping[str, Any], *, username: str) -> None:
    session.kind = _choice(values.get("kind") or "board", SESSION_KINDS, _("Type de séquence"))
    session.title = _text(values.get("title"), _("Titre"), max_length=TITLE_MAX, required=True)
    session.sort_key = fold(session.title)[:200]  # as an import from a bundle writes it
    start = _text(values.get("start_time"), _("Heure"), max_length=5)
    if start and not _TIME.match(start):
        raise InvalidInputError(_("Heure : au format HH:MM, par exemple 09:30."))
    session.start_time = start
    session.notes = _text(values.get("notes"), _("Notes"), max_length=TEXTAREA_MAX_LENGTH, multiline=True)
    session.speakers = _speakers(values.get("speakers"), username=username)


def add_session(workshop: Workshop, values: Mapping[str, Any], *, username: str) -> WorkshopSession:
    """Add a sequence at the end of the agenda."""
    _editable(workshop)
    session = WorkshopSession(workshop=workshop, origin_instance=workshop.origin_instance,
                              visibility=workshop.visibility, position=len(live_sessions(workshop)))
    db.session.add(session)
    with db.session.no_autoflush:  # the speakers' lookup may flush: the title is set before them
        _assign_session(session, values, username=username)
    db.session.flush()
    _touch(workshop)
    return session


def update_session(workshop: Workshop, session_uid: Any, values: Mapping[str, Any], *, username: str) -> None:
    _editable(workshop)
    session = _session_of(workshop, session_uid)
    with db.session.no_autoflush:
        _assign_session(session, values, username=username)
    _touch(session)
    _touch(workshop)


def live_sessions(workshop: Workshop) -> list[WorkshopSession]:
    """Return the workshop's agenda (a removed sequence stays as a tombstone, see `delete_session`)."""
    return [s for s in workshop.sessions if not s.deleted]


def delete_session(workshop: Workshop, session_uid: Any) -> None:
    """Remove a sequence from the agenda (its boards stay, without a sequence). It stays as a tombstone,
    so that the cities that received it in a bundle remove it too."""
    _editable(workshop)
    session = _session_of(workshop, session_uid)
    session.deleted = True
    _touch(session)
    for board in workshop.boards:
        if board.session_id == session.id:
            board.session = None
            _touch(board)
    _renumber(live_sessions(workshop))
    _touch(workshop)


def move_session(workshop: Workshop, session_uid: Any, direction: str) -> None:
    """Move a sequence one place up or down the agenda."""
    _editable(workshop)
    session = _session_of(workshop, session_uid)
    order = live_sessions(workshop)
    index = order.index(session)
    other = index - 1 if direction == "up" else index + 1 if direction == "down" else None
    if other is None:
        raise InvalidInputError(_("Sens inconnu."))
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
    _renumber(order)
    _touch(workshop)


def _renumber(items: Iterable[Any]) -> None:
    for position, item in enumerate(items):
        item.position = position


# --------------------------------------------------------------------------- boards

def create_board(workshop: Workshop, template_key: str, *, title: Any = None) -> Board:
    """Create a board from a template (its prompt and columns), in draft state."""
    _editable(workshop)
    template = TEMPLATES.get(template_key or "")
    if template is None:
        raise InvalidInputError(_("Modèle de tableau inconnu."))
    board = Board(workshop=workshop, origin_instance=workshop.origin_instance, visibility=workshop.visibility,
                  position=len(workshop.boards), board_kind=template.board_kind,
                  title=_text(title, _("Titre"), max_length=TITLE_MAX) or str(template.label),
                  prompt=str(template.prompt), anonymous=True, private_until_reveal=False, moderated=False,
                  votes_per_participant=5, votes_per_note=1, note_max_length=280, timer_seconds=0,
                  state="draft", revealed=False, voting_open=False, frozen=False, revision=0)
    board.sort_key = fold(board.title)[:200]
    board.categories = [NoteCategory(label=str(label), maps_to=maps_to, position=i)
                        for i, (label, maps_to) in enumerate(template.categories)]
    db.session.add(board)
    db.session.flush()
    _touch(workshop)
    return board


def _notes_exist(board: Board) -> bool:
    return bool(db.session.scalar(select(func.count()).select_from(StickyNote).where(StickyNote.board_id == board.id)))


def update_board(board: Board, values: Mapping[str, Any]) -> None:
    """Change a board's title, prompt and rules (anonymity is fixed once a note exists: it was announced)."""
    _editable(board.workshop, board)
    board.title = _text(values.get("title"), _("Titre"), max_length=TITLE_MAX, required=True)
    board.sort_key = fold(board.title)[:200]
    board.prompt = _text(values.get("prompt"), _("Question posée"), max_length=1000, multiline=True)
    anonymous = bool(values.get("anonymous"))
    if anonymous != board.anonymous and _notes_exist(board):
        raise ConflictError(_("Le tableau a déjà des post-it : l'anonymat annoncé aux participants ne peut plus "
                              "changer."))
    board.anonymous = anonymous
    board.private_until_reveal = bool(values.get("private_until_reveal"))
    board.moderated = bool(values.get("moderated"))
    board.votes_per_participant = _int(values.get("votes_per_participant", 0), _("Votes par participant"),
                                       low=0, high=MAX_VOTES)
    board.votes_per_note = _int(values.get("votes_per_note", 1), _("Votes par post-it"), low=1, high=MAX_VOTES)
    if board.votes_per_participant and board.votes_per_note > board.votes_per_participant:
        raise InvalidInputError(_("Votes par post-it : pas plus que les votes par participant."))
    board.note_max_length = _int(values.get("note_max_length", 280), _("Longueur maximale d'un post-it"),
                                 low=20, high=MAX_NOTE_LENGTH)
    board.timer_seconds = 60 * _int(values.get("timer_minutes", 0) or 0, _("Minuteur (minutes)"),
                                    low=0, high=MAX_TIMER_MINUTES)
    session_uid = values.get("session")
    board.session = _session_of(board.workshop, session_uid) if session_uid else None
    board_versions.bump(board)


def update_categories(board: Board, rows: Sequence[tuple[str, Any, Any]], *, new_label: Any = "",
                      new_maps_to: Any = "") -> None:
    """Rename columns and their mapping ((uid, label, maps_to) rows); an emptied label removes a column
    without notes; `new_label` adds one at the end."""
    _editable(board.workshop, board)
    by_uid = {c.uid: c for c in board.categories}
    used = set(db.session.scalars(select(StickyNote.category_id).where(StickyNote.board_id == board.id).distinct()))
    for uid, label, maps_to in rows:
        category = by_uid.get(uid)
        if category is None:
            raise NotFoundError(_("Cette colonne n'existe pas (ou plus)."))
        label = _text(label, _("Colonne"), max_length=LABEL_MAX)
        maps_to = _choice(maps_to, ACTOR_GROUPS, _("Groupe d'acteurs"), allow_empty=True)
        if not label:
            if category.id in used:
                raise ConflictError(_("La colonne « %(label)s » a des post-it : renommez-la plutôt.",
                                      label=category.label))
            board.categories.remove(category)
            continue
        category.label, category.maps_to = label, maps_to
    new_label = _text(new_label, _("Nouvelle colonne"), max_length=LABEL_MAX)
    if new_label:
        if len(board.categories) >= MAX_CATEGORIES:
            raise InvalidInputError(_("%(n)d colonnes au plus.", n=MAX_CATEGORIES))
        board.categories.append(NoteCategory(
            label=new_label, maps_to=_choice(new_maps_to, ACTOR_GROUPS, _("Groupe d'acteurs"), allow_empty=True)))
    _renumber(board.categories)
    board_versions.bump(board)


BOARD_ACTIONS = ("open", "reveal", "hide_all", "voting_open", "voting_close", "timer", "freeze", "unfreeze", "close")


def timer_ended(board: Board, now: dt.datetime | None = None) -> bool:
    return board.timer_ends_at is not None and (now or utcnow()) >= board.timer_ends_at


def accepts_input(board: Board, now: dt.datetime | None = None) -> bool:
    """Tell whether participants may post (the shared rule: open, not frozen, timer not ended)."""
    return board.state == "open" and not board.frozen and not timer_ended(board, now)


def accepts_votes(board: Board, now: dt.datetime | None = None) -> bool:
    return bool(board.voting_open and board.votes_per_participant and accepts_input(board, now))


def change_state(board: Board, action: str, *, minutes: Any = None, now: dt.datetime | None = None) -> None:
    """Apply one of the facilitator's live actions to a board (open, reveal, voting, timer, freeze, close)."""
    _editable(board.workshop, board)
    now = now or utcnow()
    if action not in BOARD_ACTIONS:
        raise InvalidInputError(_("Action inconnue."))
    if action != "open" and board.state == "closed" and action != "reveal":
        raise ConflictError(_("Le tableau est clos : rouvrez-le d'abord."))
    if action == "open":
        board.state = "open"
        board.frozen = False
        if timer_ended(board, now):
            board.timer_ends_at = None
    elif action == "reveal":
        board.revealed = True
    elif action == "hide_all":
        board.revealed = False
    elif action == "voting_open":
        if not board.votes_per_participant:
            raise ConflictError(_("Ce tableau ne prévoit pas de vote : réglez le nombre de votes par participant."))
        board.voting_open = True
    elif action == "voting_close":
        board.voting_open = False
    elif action == "timer":
        default = board.timer_seconds // 60 if board.timer_seconds else None
        count = _int(minutes if minutes not in (None, "") else default, _("Minuteur (minutes)"),
                     low=1, high=MAX_TIMER_MINUTES)
        board.timer_ends_at = now + dt.timedelta(minutes=count)
        board.frozen = False
    elif action == "freeze":
        board.frozen = True
    elif action == "unfreeze":
        board.frozen = False
        if timer_ended(board, now):
            board.timer_ends_at = None
    elif action == "close":
        board.state = "closed"
        board.voting_open = False
    board_versions.bump(board)


# --------------------------------------------------------------------------- notes and votes

def add_note(board: Board, *, text: Any, category_uid: Any = "", actor_group: Any = "") -> StickyNote:
    """Type a note for someone without a phone (approved at once; refused on a closed board)."""
    _editable(board.workshop, board)
    if board.state == "closed":
        raise ConflictError(_("Le tableau est clos."))
    text = _text(text, _("Post-it"), max_length=board.note_max_length, required=True, multiline=True)
    category = None
    if category_uid:
        category = next((c for c in board.categories if c.uid == category_uid), None)
        if category is None:
            raise InvalidInputError(_("Colonne inconnue."))
    group = _choice(actor_group, ACTOR_GROUPS, _("Groupe d'acteurs"), allow_empty=True)
    position = (db.session.scalar(select(func.max(StickyNote.position)).where(StickyNote.board_id == board.id))
                or 0) + 1
    note = StickyNote(board=board, category=category, text=text, client_key=f"facilitator-{new_uid()}",
                      author_actor_group=group, typed_by_facilitator=True, position=position, pending=False,
                      hidden=False, vote_count=0)
    db.session.add(note)
    db.session.flush()
    board_versions.bump(board)
    return note


def moderate(board: Board, note_uid: Any, action: str) -> StickyNote:
    """Approve a pending note, hide a note from everyone but the facilitator, or show it again."""
    _editable(board.workshop, board)
    note = note_of(board, note_uid)
    if action == "approve":
        note.pending = False
    elif action == "hide":
        note.hidden = True
    elif action == "unhide":
        note.hidden = False
        note.pending = False
    else:
        raise InvalidInputError(_("Action inconnue."))
    board_versions.bump(board)
    return note


def add_votes(board: Board, note_uid: Any, count: Any) -> StickyNote:
    """Add (or take back, if negative) dots typed by the facilitator for people without a phone."""
    _editable(board.workshop, board)
    note = note_of(board, note_uid)
    count = _int(count, _("Votes"), low=-MAX_VOTES, high=MAX_VOTES)
    if count == 0:
        return note
    vote = db.session.scalars(select(NoteVote).filter_by(note_id=note.id, participant_id=None)).first()
    typed = vote.weight if vote else 0
    if typed + count < 0:
        raise ConflictError(_("On ne peut retirer que des votes saisis par l'animateur."))
    if vote is None:
        vote = NoteVote(note=note, participant_id=None, weight=0)
        db.session.add(vote)
    vote.weight = typed + count
    if vote.weight == 0:
        db.session.delete(vote)
    note.vote_count = (note.vote_count or 0) + count
    board_versions.bump(board)
    return note


# --------------------------------------------------------------------------- themes

def _new_theme(board: Board, label: Any) -> NoteTheme:
    label = _text(label, _("Nom du thème"), max_length=TITLE_MAX, required=True)
    position = max((t.position for t in board.note_themes), default=-1) + 1
    theme = NoteTheme(label=label, position=position, synthesis="", promoted_kind="", promoted_uid="")
    board.note_themes.append(theme)
    db.session.flush()
    return theme


def _notes(board: Board, uids: Iterable[Any]) -> list[StickyNote]:
    wanted = [str(u) for u in dict.fromkeys(uids) if u]
    if not wanted:
        raise InvalidInputError(_("Cochez au moins un post-it."))
    if len(wanted) > 5000:
        raise InvalidInputError(_("Trop de post-it à la fois."))
    notes = list(db.session.scalars(select(StickyNote).where(StickyNote.board_id == board.id,
                                                             StickyNote.uid.in_(wanted))))
    if len(notes) != len(wanted):
        raise NotFoundError(_("Un des post-it n'existe pas (ou plus) : rechargez la page."))
    return notes


def create_theme(board: Board, label: Any, note_uids: Iterable[Any] = ()) -> NoteTheme:
    """Create a theme, with the chosen notes in it (taken from wherever they were)."""
    _editable(board.workshop, board)
    uids = list(note_uids)
    notes = _notes(board, uids) if uids else []
    theme = _new_theme(board, label)
    for note in notes:
        note.theme_id = theme.id
    board_versions.bump(board)
    return theme


def rename_theme(board: Board, theme_uid: Any, label: Any) -> None:
    _editable(board.workshop, board)
    theme_of(board, theme_uid).label = _text(label, _("Nom du thème"), max_length=TITLE_MAX, required=True)
    board_versions.bump(board)


def delete_theme(board: Board, theme_uid: Any) -> None:
    """Remove a theme; its notes stay on the board, without a theme."""
    _editable(board.workshop, board)
    theme = theme_of(board, theme_uid)
    for note in db.session.scalars(select(StickyNote).filter_by(theme_id=theme.id)):
        note.theme_id = None
    board.note_themes.remove(theme)
    board_versions.bump(board)


def merge_themes(board: Board, target_uid: Any, source_uids: Iterable[Any]) -> NoteTheme:
    """Move the notes of the source themes into the target and remove the sources (syntheses are joined)."""
    _editable(board.workshop, board)
    target = theme_of(board, target_uid)
    sources = [theme_of(board, uid) for uid in dict.fromkeys(source_uids) if uid and uid != target.uid]
    if not sources:
        raise InvalidInputError(_("Cochez au moins un autre thème à fusionner."))
    for source in sources:
        for note in db.session.scalars(select(StickyNote).filter_by(theme_id=source.id)):
            note.theme_id = target.id
        if source.synthesis:
            target.synthesis = "\n\n".join(t for t in (target.synthesis, source.synthesis) if t)
        if source.promoted_uid and not target.promoted_uid:
            target.promoted_kind, target.promoted_uid = source.promoted_kind, source.promoted_uid
        board.note_themes.remove(source)
    _text(target.synthesis, _("Synthèse"), max_length=TEXTAREA_MAX_LENGTH, multiline=True)
    board_versions.bump(board)
    return target


def split_theme(board: Board, theme_uid: Any, note_uids: Iterable[Any], label: Any) -> NoteTheme:
    """Move the chosen notes of a theme to a new theme."""
    _editable(board.workshop, board)
    theme = theme_of(board, theme_uid)
    notes = _notes(board, note_uids)
    if any(n.theme_id != theme.id for n in notes):
        raise InvalidInputError(_("Ne cochez que des post-it de ce thème."))
    new = _new_theme(board, label)
    for note in notes:
        note.theme_id = new.id
    board_versions.bump(board)
    return new


def move_notes(board: Board, note_uids: Iterable[Any], theme_uid: Any) -> None:
    """Put notes in a theme ("" takes them out of any theme)."""
    _editable(board.workshop, board)
    theme = theme_of(board, theme_uid) if theme_uid else None
    for note in _notes(board, note_uids):
        note.theme_id = theme.id if theme else None
    board_versions.bump(board)


def save_theme_synthesis(board: Board, theme_uid: Any, text: Any) -> None:
    _editable(board.workshop, board)
    theme_of(board, theme_uid).synthesis = _text(text, _("Synthèse"), max_length=TEXTAREA_MAX_LENGTH, multiline=True)
    board_versions.bump(board)


def save_board_synthesis(board: Board, text: Any) -> None:
    _editable(board.workshop, board)
    board.synthesis = _text(text, _("Synthèse"), max_length=TEXTAREA_MAX_LENGTH, multiline=True)
    board_versions.bump(board)


# --------------------------------------------------------------------------- the board page

@dataclass
class NoteRow:
    """What the facilitator's page shows of a note (read as plain columns: no object per note)."""

    uid: str
    text: str
    category_id: int | None
    theme_id: int | None
    pending: bool
    hidden: bool
    votes: int
    typed: bool
    actor_group: str
    author: str
    promoted_kind: str
    promoted_uid: str


@dataclass
class CategoryView:
    category: NoteCategory | None
    notes: list[NoteRow] = field(default_factory=list)  # visible notes not yet in a theme
    count: int = 0                                        # visible notes of the column, themed or not
    votes: int = 0


@dataclass
class ThemeView:
    theme: NoteTheme
    notes: list[NoteRow] = field(default_factory=list)
    votes: int = 0


@dataclass
class BoardView:
    board: Board
    categories: list[CategoryView]
    themes: list[ThemeView]
    inbox: list[NoteRow]
    hidden: list[NoteRow]
    category_labels: dict[int, str]
    total: int
    votes: int


def board_view(board: Board) -> BoardView:
    """Read everything the facilitator's board page shows in three queries, whatever the number of notes."""
    rows = db.session.execute(
        select(StickyNote.uid, StickyNote.text, StickyNote.category_id, StickyNote.theme_id, StickyNote.pending,
               StickyNote.hidden, StickyNote.vote_count, StickyNote.typed_by_facilitator,
               StickyNote.author_actor_group, WorkshopParticipant.name, StickyNote.promoted_kind,
               StickyNote.promoted_uid)
        .outerjoin(WorkshopParticipant, WorkshopParticipant.id == StickyNote.author_participant_id)
        .where(StickyNote.board_id == board.id)
        .order_by(StickyNote.vote_count.desc(), StickyNote.position, StickyNote.id))
    notes = [NoteRow(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6] or 0, bool(r[7]), r[8] or "",
                     r[9] or "", r[10] or "", r[11] or "") for r in rows]
    categories = {c.id: CategoryView(c) for c in board.categories}
    loose = CategoryView(None)
    themes = {t.id: ThemeView(t) for t in board.note_themes}
    inbox, hidden = [], []
    total = votes = 0
    for note in notes:
        if note.hidden:
            hidden.append(note)
            continue
        if note.pending:
            inbox.append(note)
            continue
        total += 1
        votes += note.votes
        column = categories.get(note.category_id) or loose
        column.count += 1
        column.votes += note.votes
        theme = themes.get(note.theme_id) if note.theme_id else None
        if theme is not None:
            theme.notes.append(note)
            theme.votes += note.votes
        else:
            column.notes.append(note)
    shown = list(categories.values()) + ([loose] if loose.count else [])
    return BoardView(board, shown, list(themes.values()), inbox, hidden,
                     {c.id: c.label for c in board.categories}, total, votes)


# Keyed by the board's uid (unique across databases) and version: any change makes new suggestions.
_suggestion_cache: dict[tuple[str, int, float], list[grouping.Suggestion]] = {}


def suggestions(view: BoardView, *, threshold: float = grouping.DEFAULT_THRESHOLD) -> list[grouping.Suggestion]:
    """Suggest groups among the visible notes not yet in a theme (kept for the board's current version)."""
    key = (view.board.uid, view.board.revision or 0, threshold)
    if key not in _suggestion_cache:
        loose = [(n.uid, n.text) for c in view.categories for n in c.notes]
        if len(_suggestion_cache) > 64:
            _suggestion_cache.clear()
        _suggestion_cache[key] = grouping.suggest(loose, threshold=threshold)
    return _suggestion_cache[key]


def accept_suggestion(board: Board, note_uids: Iterable[Any], label: Any) -> NoteTheme:
    """Make a theme of a suggested group (only its notes still without a theme are taken)."""
    _editable(board.workshop, board)
    notes = [n for n in _notes(board, note_uids) if n.theme_id is None]
    if not notes:
        raise ConflictError(_("Ces post-it sont déjà dans des thèmes : rechargez la page."))
    theme = _new_theme(board, label)
    for note in notes:
        note.theme_id = theme.id
    board_versions.bump(board)
    return theme


# --------------------------------------------------------------------------- participants

_HEADERS = {
    "name": {"name", "nom", "nom complet", "prenom nom", "participant", "participante"},
    "organisation": {"organisation", "organization", "structure", "organisme", "entreprise"},
    "actor_group": {"actor group", "actor_group", "groupe d'acteurs", "groupe d acteurs", "groupe", "college",
                    "famille d'acteurs"},
    "consent": {"consent", "consentement", "consent_named", "accord", "nomme dans le compte-rendu",
                "accepte d'etre nomme"},
}
_YES = {"oui", "yes", "o", "y", "1", "true", "vrai", "x"}
_NO = {"non", "no", "n", "0", "false", "faux", ""}


def _actor_group_code(value: str) -> str | None:
    """Return the actor group code typed as a code or as (the start of) its label; None if unknown."""
    key = fold(value)
    if not key:
        return ""
    for code, label in ACTOR_GROUPS:
        if key in (fold(code), fold(str(label))) or fold(str(label)).startswith(key):
            return code
    return None


@dataclass
class ImportResult:
    added: int
    already: int


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInputError(_("Fichier illisible : enregistrez-le en CSV (UTF-8)."))


def import_participants(workshop: Workshop, data: bytes) -> ImportResult:
    """Add the participants of a CSV list (name, organisation, actor group, consent); a file with one bad
    line changes nothing and says which lines to fix."""
    _editable(workshop)
    if not isinstance(data, bytes) or not data.strip():
        raise InvalidInputError(_("Le fichier est vide."))
    if len(data) > MAX_PARTICIPANTS_FILE:
        raise InvalidInputError(_("Fichier trop volumineux : %(n)d Ko au plus.", n=MAX_PARTICIPANTS_FILE // 1000))
    text = _decode(data)
    if "\x00" in text:
        raise InvalidInputError(_("Ce fichier n'est pas un CSV (caractère nul)."))
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InvalidInputError(_("Le fichier est vide."))
    header = [fold(cell).replace("_", " ").strip() for cell in rows[0]]
    columns: dict[str, int] = {}
    for name, spellings in _HEADERS.items():
        for index, cell in enumerate(header):
            if cell in {fold(s).replace("_", " ") for s in spellings}:
                columns.setdefault(name, index)
    if "name" not in columns:
        raise InvalidInputError(_("Colonne « nom » introuvable sur la première ligne. Colonnes attendues : nom, "
                                  "organisation, groupe d'acteurs, consentement (oui / non)."))
    if len(rows) - 1 > MAX_PARTICIPANT_ROWS:
        raise InvalidInputError(_("%(n)d participants au plus par fichier.", n=MAX_PARTICIPANT_ROWS))
    errors: list[str] = []
    people: list[tuple[str, str, str, bool]] = []

    def cell(row: list[str], key: str) -> str:
        index = columns.get(key)
        return row[index].strip() if index is not None and index < len(row) else ""

    for line, row in enumerate(rows[1:], start=2):
        try:
            name = _text(cell(row, "name"), _("Nom"), max_length=NAME_MAX, required=True)
            organisation = _text(cell(row, "organisation"), _("Organisation"), max_length=NAME_MAX)
        except InvalidInputError as exc:
            errors.append(_("ligne %(n)d : %(error)s", n=line, error=exc.message))
            continue
        group = _actor_group_code(cell(row, "actor_group"))
        if group is None:
            errors.append(_("ligne %(n)d : groupe d'acteurs inconnu « %(value)s » (attendu : %(codes)s)", n=line,
                            value=cell(row, "actor_group")[:40], codes=", ".join(c for c, _l in ACTOR_GROUPS)))
            continue
        consent = fold(cell(row, "consent"))
        if consent not in _YES | _NO:
            errors.append(_("ligne %(n)d : consentement « %(value)s » : écrivez oui ou non", n=line,
                            value=cell(row, "consent")[:40]))
            continue
        people.append((name, organisation, group, consent in _YES))
    if errors:
        shown = errors[:10] + ([_("… et %(n)d autres lignes", n=len(errors) - 10)] if len(errors) > 10 else [])
        raise InvalidInputError(_("Rien n'a été importé. Corrigez le fichier puis recommencez : %(errors)s.",
                                  errors=" ; ".join(shown)))
    known = {(fold(p.name), fold(p.organisation_name)) for p in db.session.scalars(
        select(WorkshopParticipant).filter_by(workshop_id=workshop.id))}
    orgs = _organisation_ids()
    added = already = 0
    for name, organisation, group, consent in people:
        key = (fold(name), fold(organisation))
        if key in known:
            already += 1
            continue
        known.add(key)
        db.session.add(WorkshopParticipant(workshop_id=workshop.id, name=name, organisation_name=organisation,
                                           organisation_id=orgs.get(fold(organisation)), actor_group=group,
                                           consent_named=consent, source="list"))
        added += 1
    return ImportResult(added, already)


def _organisation_ids() -> dict[str, int]:
    rows = db.session.execute(select(Organisation.id, Organisation.name).where(Organisation.deleted.is_(False)))
    return {fold(name): id_ for id_, name in rows}


def add_participant(workshop: Workshop, *, name: Any, organisation: Any = "", actor_group: Any = "",
                    consent: bool = False, source: str = "door") -> WorkshopParticipant:
    """Add someone at the door (or the facilitator)."""
    _editable(workshop)
    name = _text(name, _("Nom"), max_length=NAME_MAX, required=True)
    organisation = _text(organisation, _("Organisation"), max_length=NAME_MAX)
    group = _choice(actor_group, ACTOR_GROUPS, _("Groupe d'acteurs"), allow_empty=True)
    participant = WorkshopParticipant(workshop_id=workshop.id, name=name, organisation_name=organisation,
                                      organisation_id=_organisation_ids().get(fold(organisation)) if organisation
                                      else None, actor_group=group, consent_named=bool(consent), source=source)
    db.session.add(participant)
    db.session.flush()
    return participant


def set_consent(workshop: Workshop, participant_uid: Any, consent: bool) -> WorkshopParticipant:
    _editable(workshop)
    participant = participant_of(workshop, participant_uid)
    participant.consent_named = bool(consent)
    return participant


def remove_participant(workshop: Workshop, participant_uid: Any) -> None:
    """Remove someone from the list (their anonymous notes stay; named notes lose their name)."""
    _editable(workshop)
    db.session.delete(participant_of(workshop, participant_uid))
    room_memory.participants_changed()  # the room forgets the phone once this commits


def participants(workshop: Workshop) -> list[WorkshopParticipant]:
    return list(db.session.scalars(select(WorkshopParticipant).filter_by(workshop_id=workshop.id)
                                   .order_by(WorkshopParticipant.name, WorkshopParticipant.id)))


def counts_by_actor_group(workshop: Workshop) -> list[tuple[str, str, int]]:
    """Return (code, label, count) for each actor group present, then those without a group (a workshop of
    another city: the counts its bundle brought, since its participants never travel)."""
    counts = Counter(dict(db.session.execute(
        select(WorkshopParticipant.actor_group, func.count()).where(WorkshopParticipant.workshop_id == workshop.id)
        .group_by(WorkshopParticipant.actor_group)).all()))
    counts.update(dict(db.session.execute(
        select(WorkshopParticipantCount.actor_group, WorkshopParticipantCount.participants)
        .where(WorkshopParticipantCount.workshop_id == workshop.id)).all()))
    result = [(code, str(label), counts[code]) for code, label in ACTOR_GROUPS if counts.get(code)]
    if counts.get(""):
        result.append(("", _("Sans groupe indiqué"), counts[""]))
    return result


# --------------------------------------------------------------------------- promotion to the register

def _source_of(workshop: Workshop, board: Board) -> str:
    when = f" ({workshop.date.isoformat()})" if workshop.date else ""
    return _("Atelier « %(title)s »%(when)s, tableau « %(board)s » — /workshops/%(uid)s",
             title=workshop.title, when=when, board=board.title, uid=workshop.uid)


def promotion_subject(board: Board, note_uid: Any, theme_uid: Any) -> NoteTheme | StickyNote:
    if bool(note_uid) == bool(theme_uid):
        raise InvalidInputError(_("Choisissez un post-it ou un thème."))
    return note_of(board, note_uid) if note_uid else theme_of(board, theme_uid)


def subject_text(board: Board, subject: NoteTheme | StickyNote) -> tuple[str, str]:
    """Return a proposed title and description for a record made from a note or a theme."""
    if isinstance(subject, StickyNote):
        return (subject.text if len(subject.text) <= TITLE_MAX else ""), subject.text
    notes = db.session.scalars(select(StickyNote.text).where(StickyNote.theme_id == subject.id,
                                                             StickyNote.hidden.is_(False))
                               .order_by(StickyNote.vote_count.desc(), StickyNote.id))
    lines = [subject.synthesis] if subject.synthesis else []
    lines += [f"- {t}" for t in notes]
    return subject.label, "\n".join(lines)[:TEXTAREA_MAX_LENGTH]


def actor_group_of(board: Board, subject: NoteTheme | StickyNote) -> str:
    """The actor group a subject's column maps to (the most frequent one among a theme's notes)."""
    maps = {c.id: c.maps_to for c in board.categories}
    if isinstance(subject, StickyNote):
        return maps.get(subject.category_id, "") or subject.author_actor_group
    ids = db.session.scalars(select(StickyNote.category_id).where(StickyNote.theme_id == subject.id))
    counted = Counter(maps.get(i, "") for i in ids)
    counted.pop("", None)
    return counted.most_common(1)[0][0] if counted else ""


def similar_barriers(text: str, *, actor_group: str = "", limit: int = 5) -> list[Barrier]:
    """Return catalogue barriers whose wording is close to `text`, best first (proposed before a new one)."""
    return barrier_service.similar(text[:barrier_service.MAX_TEXT_LENGTH], actor_group=actor_group, limit=limit)


def promote(board: Board, *, kind: str, note_uid: Any = "", theme_uid: Any = "", title: Any = "",
            description: Any = "", existing_uid: Any = "", username: str) -> tuple[str, str]:
    """Turn a note or a theme into a register record (a barrier, a need, an innovation to follow up), or
    link it to an existing barrier; return (kind, uid) of the record."""
    _editable(board.workshop, board)
    workshop = board.workshop
    subject = promotion_subject(board, note_uid, theme_uid)
    kind = _choice(kind, PROMOTION_KINDS, _("Type de fiche"))
    if subject.promoted_uid:
        raise ConflictError(_("Déjà versé au registre."))
    source = _source_of(workshop, board)
    if existing_uid:
        if kind != "barrier":
            raise InvalidInputError(_("Seul un frein existant peut être choisi."))
        barrier = db.session.scalars(select(Barrier).filter_by(uid=str(existing_uid), deleted=False)).first()
        if barrier is None:
            raise NotFoundError(_("Ce frein n'existe pas (ou plus)."))
        uid = barrier.uid
    else:
        title = _text(title, _("Intitulé"), max_length=TITLE_MAX, required=True)
        description = _text(description, _("Description"), max_length=TEXTAREA_MAX_LENGTH, multiline=True)
        if kind == "barrier":
            barrier = barrier_service.create(title, description=description,
                                             actor_group=actor_group_of(board, subject),
                                             themes=[t.code for t in workshop.themes],
                                             visibility=workshop.visibility, username=username)
            barrier.source = source
            uid = barrier.uid
        elif kind == "need":
            need = record_service.create(NEEDS, {"title": title, "problem_statement": description,
                                                 "status": "expressed", "draft": True}, username=username)
            need.source = source
            uid = need.uid
        else:
            innovation = record_service.create(INNOVATIONS, {"name": title, "description": description,
                                                             "draft": True}, username=username)
            innovation.source = source
            uid = innovation.uid
    subject.promoted_kind, subject.promoted_uid = kind, uid
    board_versions.bump(board)
    return kind, uid


@dataclass(frozen=True)
class Produced:
    kind: str
    uid: str
    title: str
    origin: str  # the note's text or the theme's label
    board: Board


_KIND_MODELS: dict[str, tuple[type, str]] = {"barrier": (Barrier, "label"), "need": (NEEDS.model, "title"),
                                             "innovation": (INNOVATIONS.model, "name")}


def produced(workshop: Workshop) -> list[Produced]:
    """Return the register records the workshop's notes and themes became."""
    boards = {b.id: b for b in workshop.boards}
    if not boards:
        return []
    found: list[tuple[str, str, str, int]] = []
    for model, text in ((StickyNote, StickyNote.text), (NoteTheme, NoteTheme.label)):
        found += [tuple(r) for r in db.session.execute(  # type: ignore[misc]
            select(model.promoted_kind, model.promoted_uid, text, model.board_id)
            .where(model.board_id.in_(boards), model.promoted_uid != ""))]
    titles: dict[tuple[str, str], str] = {}
    wanted: dict[str, set[str]] = defaultdict(set)
    for kind, uid, _t, _b in found:
        wanted[kind].add(uid)
    for kind, uids in wanted.items():
        model, attr = _KIND_MODELS.get(kind, (None, ""))
        if model is None:
            continue
        for uid, title in db.session.execute(select(model.uid, getattr(model, attr)).where(model.uid.in_(uids))):
            titles[(kind, uid)] = title
    return [Produced(kind, uid, titles.get((kind, uid), uid), origin, boards[board_id])
            for kind, uid, origin, board_id in found]


def promoted_url_key(kind: str) -> str:
    """The registry key of a promoted record's pages ("" when the catalogue has no pages here yet)."""
    from ..registry import RECORD_TYPES
    key = {"barrier": "barriers", "need": "needs", "innovation": "innovations"}.get(kind, "")
    return key if key in RECORD_TYPES else ""
