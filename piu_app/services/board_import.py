"""Import the CSV export of an online board (Klaxoon, Miro, Framemo…) into a board of a workshop.

`parse(data)` reads any bytes and returns a `Parsed` board (its notes, with the line each came from and
what is wrong with it) or raises `BoardImportError` with a message in French: never anything else.
The file is read by the spreadsheet reader (UTF-8 with or without BOM, UTF-16, Windows-1252; `;`, `,`
or tab; a title above the header); the columns are found by their usual names in these tools' exports
(text / contenu / titre, colonne / catégorie / cadre, auteur, votes / likes). A file with a single
unnamed column (Miro's export of a selection of sticky notes) is read as one note per line.

`preview(board, parsed)` says what would be done; `apply(board, parsed)` does it in the caller's one
transaction, or raises before writing anything (a bad file changes nothing). The board's columns
become categories (an existing category with the same name is reused); votes become the notes' vote
counts (one facilitator vote row holding the count, so that `vote_count` stays the sum of the
weights); authors are never stored as names: a named board keeps the author's actor group when the
file gives one (an "actor group" column, or an author cell that names a group), an anonymous board
keeps nothing. Imported notes are approved (the online board was moderated where it was held).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from ..database import fold
from ..exchange.spreadsheets import SpreadsheetError, read_table
from ..models import Board, NoteCategory, NoteVote, StickyNote, VocabularyTerm, db
from . import InvalidInputError, board_versions
from .records import check_editable, control_character

MAX_BYTES = 5 * 1024 * 1024
MAX_NOTES = 5_000
NOTE_MAX_LENGTH = 2_000          # an online board has its own limit; the room's limit is for phones
LABEL_MAX_LENGTH = 120           # note_categories.label
MAX_VOTES = 100_000
ACTOR_GROUP_VOCABULARY = "barrier_actor_group"

# Usual column names, folded (lower case, no accents), most specific first.
TEXT_HEADERS = ("texte", "text", "contenu", "content", "note", "notes", "post-it", "postit", "sticky note",
                "sticky", "idee", "idea", "message", "body", "contenu de la note", "titre", "title")
DETAIL_HEADERS = ("description", "details", "detail", "commentaire", "comment")
COLUMN_HEADERS = ("colonne", "column", "categorie", "category", "cadre", "frame", "liste", "list", "section",
                  "zone", "groupe", "group", "lane", "swimlane", "rubrique")
AUTHOR_HEADERS = ("auteur", "author", "auteur(e)", "cree par", "created by", "createur", "creator", "owner",
                  "participant", "pseudo", "nom")
GROUP_HEADERS = ("groupe d'acteurs", "actor group", "profil", "type d'acteur", "famille d'acteurs")
VOTE_HEADERS = ("votes", "vote", "nombre de votes", "nb votes", "likes", "like", "j'aime", "points", "dots",
                "gommettes", "score", "+1", "reactions")
_VOTES = re.compile(r"^\s*\+?(\d{1,6})(?:[.,]0+)?\s*(?:votes?|likes?|points?|gommettes?)?\s*$", re.IGNORECASE)


class BoardImportError(InvalidInputError):
    """A file that cannot be imported as a board; the message says what to do."""


@dataclass
class ImportedNote:
    line: int
    text: str
    column: str
    author: str
    votes: int
    errors: list[str] = field(default_factory=list)


@dataclass
class Parsed:
    notes: list[ImportedNote]
    columns: dict[str, str]             # role (text, column, author, votes, group, detail) → header found
    messages: list[str]                 # what the reader noticed (encoding, separator, title lines, blanks)
    digest: str                         # SHA-256 of the file: the same file cannot be imported twice

    @property
    def errors(self) -> list[str]:
        return [_("Ligne %(line)d : %(problem)s", line=n.line, problem=e) for n in self.notes for e in n.errors]


def _find(headers: list[str], names: tuple[str, ...], taken: set[str]) -> str | None:
    folded = {fold(h).strip(): h for h in headers if h not in taken}
    for name in names:
        if name in folded:
            return folded[name]
    for name in names:  # "Texte de la note", "Nombre de votes reçus": a usual name at the start
        for key, header in folded.items():
            if len(name) > 3 and key.startswith(name + " "):
                return header
    return None


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def parse(data: bytes) -> Parsed:
    """Read an online board's CSV export, or raise BoardImportError (and nothing else) saying why not."""
    if not isinstance(data, bytes):
        raise BoardImportError(_("Choisissez un fichier."))
    if len(data) > MAX_BYTES:
        raise BoardImportError(_("Fichier trop gros : %(max)d Mo au plus pour un tableau.", max=MAX_BYTES // 1024 // 1024))
    try:
        table = read_table(data, max_rows=MAX_NOTES)
    except SpreadsheetError as exc:
        raise BoardImportError(exc.message) from exc
    headers = [h for h in table.headers]
    columns: dict[str, str] = {}
    taken: set[str] = set()
    for role, names in (("votes", VOTE_HEADERS), ("group", GROUP_HEADERS), ("column", COLUMN_HEADERS),
                        ("author", AUTHOR_HEADERS), ("text", TEXT_HEADERS), ("detail", DETAIL_HEADERS)):
        found = _find(headers, names, taken)
        if found is not None:
            columns[role] = found
            taken.add(found)
    messages = list(table.notes)
    rows = [(line, dict(zip(headers, cells, strict=False))) for line, cells in table.rows]
    if len(headers) == 1 and fold(headers[0]).strip() not in TEXT_HEADERS + DETAIL_HEADERS:
        # One column without a usual name (Miro's export of a selection): its first line is a note too.
        only = headers[0]
        columns = {"text": only}
        rows.insert(0, (table.header_line, {only: only}))
        messages.append(_("Une seule colonne sans nom reconnu : chaque ligne est lue comme une note."))
    if "text" not in columns:
        if "detail" in columns:
            columns["text"] = columns.pop("detail")
        else:
            raise BoardImportError(_(
                "Aucune colonne de texte trouvée parmi « %(headers)s » : la colonne des notes doit s'appeler "
                "« Texte », « Contenu », « Note » ou « Titre » (renommez-la dans le fichier, puis recommencez).",
                headers=" », « ".join(h[:40] for h in headers[:12])))
    notes: list[ImportedNote] = []
    blank = 0
    for line, cells in rows:
        text = _text_of(cells.get(columns["text"]))
        detail = _text_of(cells.get(columns["detail"])) if "detail" in columns else ""
        if detail and detail != text:
            text = f"{text}\n{detail}" if text else detail
        if not text:
            blank += 1
            continue
        note = ImportedNote(line=line, text=text, column=_text_of(cells.get(columns.get("column", ""))),
                            author=_text_of(cells.get(columns.get("group", ""))) or
                            _text_of(cells.get(columns.get("author", ""))), votes=0)
        _check(note, _text_of(cells.get(columns["votes"])) if "votes" in columns else "")
        notes.append(note)
    if blank:
        messages.append(_("%(n)d lignes sans texte ignorées.", n=blank))
    if not notes:
        raise BoardImportError(_("Le fichier ne contient aucune note (la colonne « %(column)s » est vide).",
                                 column=columns["text"][:60]))
    return Parsed(notes, columns, messages, hashlib.sha256(data).hexdigest())


def _check(note: ImportedNote, votes: str) -> None:
    """Check one note's cells; record each problem on the note (nothing is truncated or guessed)."""
    code = control_character(note.text, multiline=True)
    if code:
        note.errors.append(_("caractère de contrôle invisible interdit (%(code)s) dans le texte.", code=code))
    if len(note.text) > NOTE_MAX_LENGTH:
        note.errors.append(_("note de %(n)d caractères : %(max)d au plus.", n=len(note.text), max=NOTE_MAX_LENGTH))
    for value, what in ((note.column, _("la colonne")), (note.author, _("l'auteur"))):
        code = control_character(value)
        if code:
            note.errors.append(_("caractère de contrôle invisible interdit (%(code)s) dans %(what)s.", code=code, what=what))
    if len(note.column) > LABEL_MAX_LENGTH:
        note.errors.append(_("nom de colonne de %(n)d caractères : %(max)d au plus.", n=len(note.column), max=LABEL_MAX_LENGTH))
    if votes:
        match = _VOTES.match(votes)
        if match is None or int(match.group(1)) > MAX_VOTES:
            note.errors.append(_("nombre de votes illisible « %(value)s » (un nombre entier est attendu).", value=votes[:30]))
        else:
            note.votes = int(match.group(1))


@dataclass
class Preview:
    notes: list[ImportedNote]
    new_columns: list[str]
    existing_columns: list[str]
    groups: dict[str, str]             # author cell → actor group code kept ("" = nothing kept)
    vote_total: int
    messages: list[str]
    errors: list[str]
    already_imported: bool

    @property
    def importable(self) -> bool:
        return not self.errors and not self.already_imported


def _actor_groups() -> dict[str, str]:
    """{folded code or label: code} of the actor groups' vocabulary."""
    found: dict[str, str] = {}
    for term in db.session.scalars(select(VocabularyTerm).where(VocabularyTerm.vocabulary == ACTOR_GROUP_VOCABULARY)):
        for name in (term.code, term.label("fr"), term.label("en")):
            if name:
                found[fold(name).strip()] = term.code
                # "Acheteurs" for « Acheteurs (collectivités, aménageurs, promoteurs) »
                found.setdefault(fold(name.split("(")[0]).strip(), term.code)
    if "carriers" in found.values():  # what online boards call the innovators' column
        for word in ("innovateurs", "innovateur", "start-ups", "startups"):
            found.setdefault(word, "carriers")
    return found


def _key(digest: str, line: int) -> str:
    return f"import-{digest[:24]}-{line}"


def preview(board: Board, parsed: Parsed) -> Preview:
    """Say what `apply` would do with this file on this board (nothing is written)."""
    check_editable(board.workshop)  # a board of another city is read-only here
    check_editable(board)
    existing = {fold(c.label).strip(): c.label for c in board.categories}
    new_columns: list[str] = []
    for note in parsed.notes:
        key = fold(note.column).strip()
        if note.column and key not in existing and note.column not in new_columns \
                and key not in {fold(c).strip() for c in new_columns}:
            new_columns.append(note.column)
    groups: dict[str, str] = {}
    if not board.anonymous:
        vocabulary = _actor_groups()
        groups = {n.author: vocabulary.get(fold(n.author).strip(), "") for n in parsed.notes if n.author}
    messages = list(parsed.messages)
    if board.anonymous and any(n.author for n in parsed.notes):
        messages.append(_("Tableau anonyme : les auteurs du fichier ne sont pas conservés."))
    elif any(not code for code in groups.values()):
        messages.append(_("Les auteurs ne sont jamais conservés par leur nom : seul un groupe d'acteurs reconnu "
                          "est gardé, les autres auteurs ne sont pas conservés."))
    already = db.session.scalar(select(StickyNote.id).where(
        StickyNote.board_id == board.id, StickyNote.client_key == _key(parsed.digest, parsed.notes[0].line))) is not None
    used = sorted({fold(n.column).strip() for n in parsed.notes if n.column} & set(existing))
    return Preview(parsed.notes, new_columns, [existing[k] for k in used], groups,
                   sum(n.votes for n in parsed.notes), messages, parsed.errors, already)


def apply(board: Board, parsed: Parsed) -> int:
    """Add the file's notes to the board in the caller's transaction; return how many were added.

    Raises BoardImportError before writing anything when a line is refused or the file was already
    imported into this board."""
    if board.deleted:
        raise BoardImportError(_("Ce tableau a été supprimé."))
    check_editable(board.workshop)
    check_editable(board)
    plan = preview(board, parsed)
    if plan.errors:
        raise BoardImportError(_("Le fichier n'est pas importé : corrigez ces lignes, puis recommencez. %(errors)s",
                                 errors=" ; ".join(plan.errors[:10])))
    if plan.already_imported:
        raise BoardImportError(_("Ce fichier a déjà été importé dans ce tableau."))
    categories = {fold(c.label).strip(): c for c in board.categories}
    position = db.session.scalar(select(func.max(NoteCategory.position)).where(NoteCategory.board_id == board.id)) or 0
    for label in plan.new_columns:
        position += 1
        category = NoteCategory(board=board, label=label, position=position)
        db.session.add(category)
        categories[fold(label).strip()] = category
    note_position = db.session.scalar(select(func.max(StickyNote.position)).where(StickyNote.board_id == board.id)) or 0
    for imported in parsed.notes:
        note_position += 1
        note = StickyNote(board=board, text=imported.text, client_key=_key(parsed.digest, imported.line),
                          category=categories.get(fold(imported.column).strip()) if imported.column else None,
                          author_actor_group="" if board.anonymous else plan.groups.get(imported.author, ""),
                          typed_by_facilitator=True, position=note_position, vote_count=imported.votes)
        db.session.add(note)
        if imported.votes:
            db.session.add(NoteVote(note=note, participant_id=None, weight=imported.votes))
    db.session.flush()
    board_versions.bump(board)
    return len(parsed.notes)
