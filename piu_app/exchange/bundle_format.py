"""The exchange bundle ("paquet d'échange"): its tables, their columns, and how a value is written.

The tables are derived from the register's description (`registry.py`): one table per record
type, plus join tables for what a record holds as a list (themes, territory features, carriers,
the people behind a lesson, review scores). Export, import, the preview and the undo of an import
all read and write rows through this one description, so a value is written one way and read
back one way. A row here is a dict of CSV strings: the bundle's own form, also used to compare a
local record with an incoming one and to keep what an import replaced.
"""

from __future__ import annotations

import datetime as dt
import math
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    Table,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.types import NullType

from ..database import (
    bool_text_sql,
    driver_rows,
    float_text_sql,
    stored_date_text,
    stored_datetime_text,
    stored_text_sql,
)
from ..models import (
    Board,
    NoteCategory,
    NoteTheme,
    ReviewScore,
    StickyNote,
    Theme,
    VocabularyTerm,
    WorkshopParticipant,
    WorkshopParticipantCount,
)
from ..registry import BUNDLE_ONLY_TYPES, RECORD_TYPES, TEXTAREA_MAX_LENGTH, RecordType
from ..services.instance import CODE_PATTERN

FORMAT_NAME = "piu-registre"
FORMAT_VERSION = (1, 1)  # major, minor: a bundle of a newer format is refused
# Format 1.0 wrote text starting with = + - @ tab CR with a leading apostrophe (`cells.neutralise`);
# since 1.1 every cell holds the value as it was entered. A 1.0 bundle is un-escaped when read.
ESCAPED_FORMATS = ((1, 0),)
SCHEMA_BASE_URI = "https://piu.example.org/schemas/registre/1.0/"  # stable URI named in dct:conformsTo

# Record types in an order where every link points to a table already written (territories
# point to their parent territory: that one link is set in a second pass).
TABLE_ORDER = ("territories", "organisations", "persons", "places", "innovations", "needs", "experiments",
               "barriers", "lessons", "procurements", "funding_aids", "experiment_fundings", "reviews", "support_programmes",
               "workshops", "workshop_sessions", "boards")
# Every record type that travels: the register's, and workshops, sequences and boards (see registry).
BUNDLE_TYPES: dict[str, RecordType] = {**RECORD_TYPES, **BUNDLE_ONLY_TYPES}

IDENTITY = ("uid", "origin_instance", "created_at", "updated_at", "version", "deleted", "visibility", "lang",
            "licence", "source")
EXTRA_COLUMNS = {"reviews": ("verified",)}  # derived columns a peer cannot recompute without our data

T = TypeVar("T")
UID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
INSTANCE_CODE_PATTERN = CODE_PATTERN  # the shape of an `origin_instance`, as the set-up makes instance codes
VOCABULARY_CODE_LENGTH: int = VocabularyTerm.__table__.c.code.type.length


class CellError(Exception):
    """A cell that does not hold a value of its column's type (the message names the type)."""


# --------------------------------------------------------------------------- cell values

def write_value(kind: str, value: Any) -> str:
    """Return the CSV text of a stored value (ISO 8601 dates, `true`/`false`, text as it was entered)."""
    if value is None:
        return ""
    if kind == "bool":
        return "true" if value else "false"
    if kind == "int":
        return str(int(value))
    if kind == "float":
        return repr(float(value))
    if kind == "date":
        return value.isoformat()
    if kind == "datetime":
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"
    return str(value)


def read_value(kind: str, text: str) -> Any:
    """Return the stored value of a CSV cell, or raise CellError with the reason."""
    if text == "":
        return None if kind in ("int", "float", "date", "datetime") else (False if kind == "bool" else "")
    try:
        if kind == "bool":
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if kind == "int":
            return int(text)
        if kind == "float":
            number = float(text)
            if not math.isfinite(number):
                raise ValueError
            return number
        if kind == "date":
            return dt.date.fromisoformat(text)
        if kind == "datetime":
            if not text.endswith("Z"):
                raise ValueError
            return dt.datetime.fromisoformat(text[:-1])
    except ValueError as exc:
        raise CellError(kind) from exc
    return text


FIELD_KINDS = {"text": "text", "textarea": "text", "url": "text", "email": "text", "vocab": "text",
               "int": "int", "float": "float", "date": "date", "bool": "bool", "ref": "ref"}
SCHEMA_TYPES = {"text": "string", "int": "integer", "float": "number", "date": "date", "bool": "boolean",
                "datetime": "datetime", "ref": "string"}


# --------------------------------------------------------------------------- columns and tables

@dataclass(frozen=True)
class Column:
    name: str                        # bundle column
    kind: str                        # text, int, float, date, datetime, bool, ref
    attr: str = ""                   # model column (refs: `<name>_id`)
    ref: str | None = None           # ref: the record type pointed to
    vocab: str | None = None         # codes of this vocabulary
    label: Any = None
    help: Any = None
    required: bool = False           # for a live record
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    personal: bool = False
    pattern: str | None = None       # text: the shape every non-empty value must have (a regular expression)
    sibling: str | None = None       # the uid of a row of this other join table of the same owner (a note's column)
    always: bool = False             # required in a tombstone too: a link the database cannot leave empty


@dataclass(frozen=True)
class ChildTable:
    """A join table: rows that belong to one record of `owner` (its themes, carriers, scores…)."""

    name: str
    owner: str
    columns: tuple[Column, ...]      # the first is the owner's uid
    title: str
    title_en: str
    key_size: int = 1                # the columns after the owner's uid that an owner may hold once (its key)
    uid_keyed: bool = False          # rows with their own uid (a board's columns, themes, notes): unique in the bundle
    primary_key: tuple[str, ...] = ()  # the schema's primary key when not every key column (see bundle_export)

    @property
    def owner_column(self) -> str:
        return self.columns[0].name


@dataclass(frozen=True)
class RecordTable:
    rt: RecordType
    columns: tuple[Column, ...]
    children: tuple[ChildTable, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.rt.key

    @property
    def table(self) -> Table:
        return self.rt.model.__table__

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


_IDENTITY_COLUMNS = (
    Column("uid", "text", "uid", required=True, max_length=36),
    Column("origin_instance", "text", "origin_instance", required=True, max_length=64,
           pattern=INSTANCE_CODE_PATTERN),
    Column("created_at", "datetime", "created_at", required=True),
    Column("updated_at", "datetime", "updated_at", required=True),
    Column("version", "int", "version", required=True),
    Column("deleted", "bool", "deleted", required=True),
    Column("visibility", "text", "visibility", required=True, max_length=16),
    Column("lang", "text", "lang", max_length=16),
    Column("licence", "text", "licence", max_length=32),
    Column("source", "text", "source"),
)


def singular(key: str) -> str:
    """Return the singular of a record type's key, as used in join-table and column names."""
    return {"territories": "territory"}.get(key, key.removesuffix("s"))


def _stored_length(table: Table, attr: str) -> int | None:
    """The length of a VARCHAR column (None for TEXT): a longer cell is refused, never cut."""
    return getattr(table.c[attr].type, "length", None) if attr in table.c else None


def _record_table(rt: RecordType) -> RecordTable:
    columns = list(_IDENTITY_COLUMNS)
    table = rt.model.__table__
    for f in rt.fields:
        if f.kind in FIELD_KINDS:
            name = f"{f.name}_uid" if f.kind == "ref" else f.name
            length = None if f.kind == "ref" else f.max_length or _stored_length(table, f.column)
            columns.append(Column(name, FIELD_KINDS[f.kind], f.column, ref=f.ref, vocab=f.vocab, label=f.label,
                                  help=f.help, required=f.required, max_length=length, personal=f.personal,
                                  minimum=f.min_value, maximum=f.max_value, pattern=f.pattern,
                                  always=f.kind == "ref" and f.required and not table.c[f.column].nullable))
    for extra in EXTRA_COLUMNS.get(rt.key, ()):
        columns.append(Column(extra, "bool", extra))
    one = singular(rt.key)
    children: list[ChildTable] = []
    owner = Column(f"{one}_uid", "ref", ref=rt.key, required=True)
    if rt.has_themes:
        children.append(ChildTable(f"{one}_themes", rt.key,
                                   (owner, Column("theme_code", "text", vocab="themes", required=True,
                                                  max_length=_stored_length(Theme.__table__, "code"))),
                                   "Thématiques", "Themes"))
    for f in rt.fields:
        if f.kind == "vocab_list":
            children.append(ChildTable(f"{one}_{f.name}", rt.key,
                                       (owner, Column(f.name.removesuffix("s"), "text", vocab=f.vocab, required=True,
                                                      max_length=VOCABULARY_CODE_LENGTH)),
                                       str(f.label), f.name))
    for link in rt.links:
        cols = [owner, Column(f"{singular(link.target)}_uid", "ref", ref=link.target, required=True),
                Column("role", "text", vocab=link.role_vocab, required=True,
                       max_length=_stored_length(link.model.__table__, "role"))]
        if "match_note" in link.model.__table__.c:
            cols.append(Column("match_note", "text"))
        children.append(ChildTable(link.model.__tablename__, rt.key, tuple(cols), str(link.label), link.name,
                                   key_size=2))  # unique (owner, target, role)
    for c in rt.citations:  # a lesson's barriers: the cited record's uid, once per owner
        children.append(ChildTable(c.table.name, rt.key,
                                   (owner, Column(f"{singular(c.target)}_uid", "ref", ref=c.target, required=True)),
                                   str(c.label), "Barriers met" if c.target == "barriers" else c.name))
    if rt.key == "reviews":
        scores = next(f for f in rt.fields if f.kind == "scores")  # the grid's scale is declared in the register
        children.append(ChildTable("review_scores", rt.key,
                                   (owner, Column("criterion", "text", vocab=scores.vocab, required=True,
                                                  max_length=_stored_length(ReviewScore.__table__, "criterion")),
                                    Column("score", "int", required=True, minimum=scores.min_value,
                                           maximum=scores.max_value),
                                    Column("evidence", "text")),
                                   "Notes par critère", "Scores per criterion"))
    children += WORKSHOP_PARTS.get(rt.key, ())
    return RecordTable(rt, tuple(columns), tuple(children))


# --------------------------------------------------------------------------- workshops' parts

# What travels of a workshop besides its own row: counts of participants by actor group (never the
# participants), and, with each board, its columns, its themes (their synthesis, what they became)
# and its notes (text, column, theme, vote count). Never: hidden notes or notes waiting for the
# moderator, a note's author (participant, actor group, device key), its client key, its time, or
# the votes themselves. Each part is read from `part_source` and written to `part_table`.
ACTOR_GROUP_VOCABULARY = "barrier_actor_group"
MAX_PARTICIPANTS = 100_000
MAX_NOTE_TEXT = 2000                 # services.workshops.MAX_NOTE_LENGTH
MAX_VOTE_COUNT = 1_000_000
_PROMOTED_KIND = "^(barrier|need|innovation)$"


def _uid_column(name: str, *, required: bool = False, sibling: str | None = None) -> Column:
    return Column(name, "text", name, required=required, max_length=36, pattern=UID_PATTERN, sibling=sibling)


_BOARD = Column("board_uid", "ref", ref="boards", required=True)
WORKSHOP_PARTS: dict[str, tuple[ChildTable, ...]] = {
    "workshops": (
        ChildTable("workshop_participant_counts", "workshops", (
            Column("workshop_uid", "ref", ref="workshops", required=True),
            Column("actor_group", "text", "actor_group", vocab=ACTOR_GROUP_VOCABULARY, max_length=40),
            Column("participants", "int", "participants", required=True, minimum=1, maximum=MAX_PARTICIPANTS)),
            "Participants par groupe d'acteurs", "Participants by actor group",
            primary_key=("workshop_uid", "actor_group")),
    ),
    "boards": (
        ChildTable("note_categories", "boards", (
            _BOARD, _uid_column("uid", required=True),
            Column("label", "text", "label", required=True, max_length=120),
            Column("position", "int", "position", required=True, minimum=0, maximum=10_000),
            Column("maps_to", "text", "maps_to", vocab=ACTOR_GROUP_VOCABULARY, max_length=40)),
            "Colonnes des tableaux", "Board columns", uid_keyed=True, primary_key=("uid",)),
        ChildTable("note_themes", "boards", (
            _BOARD, _uid_column("uid", required=True),
            Column("label", "text", "label", required=True, max_length=200),
            Column("position", "int", "position", required=True, minimum=0, maximum=10_000),
            Column("synthesis", "text", "synthesis", max_length=TEXTAREA_MAX_LENGTH),
            Column("promoted_kind", "text", "promoted_kind", max_length=20, pattern=_PROMOTED_KIND),
            _uid_column("promoted_uid")),
            "Thèmes des tableaux", "Board themes", uid_keyed=True, primary_key=("uid",)),
        ChildTable("sticky_notes", "boards", (
            _BOARD, _uid_column("uid", required=True),
            _uid_column("category_uid", sibling="note_categories"),
            _uid_column("theme_uid", sibling="note_themes"),
            Column("text", "text", "text", required=True, max_length=MAX_NOTE_TEXT),
            Column("position", "int", "position", required=True, minimum=0, maximum=1_000_000),
            Column("vote_count", "int", "vote_count", required=True, minimum=0, maximum=MAX_VOTE_COUNT),
            Column("promoted_kind", "text", "promoted_kind", max_length=20, pattern=_PROMOTED_KIND),
            _uid_column("promoted_uid")),
            "Post-it", "Sticky notes", uid_keyed=True, primary_key=("uid",)),
    ),
}
_PART_TABLES: dict[str, Table] = {"workshop_participant_counts": WorkshopParticipantCount.__table__,
                                  "note_categories": NoteCategory.__table__, "note_themes": NoteTheme.__table__,
                                  "sticky_notes": StickyNote.__table__}
_PART_OWNERS = {"workshop_participant_counts": "workshop_id", "note_categories": "board_id",
                "note_themes": "board_id", "sticky_notes": "board_id"}
# Columns a written part needs that never travel (a note's client key is its uid: unique per board).
PART_DEFAULTS: dict[str, dict[str, Any]] = {
    "sticky_notes": {"author_key": "", "author_actor_group": "", "typed_by_facilitator": False, "pending": False,
                     "hidden": False},
}
_PART_SOURCES: dict[str, Any] = {}


def is_workshop_part(child: ChildTable) -> bool:
    return child.name in _PART_TABLES


def part_table(child: ChildTable) -> tuple[Table, str]:
    """The table a workshop's part is written to, and its column pointing to the owner."""
    return _PART_TABLES[child.name], _PART_OWNERS[child.name]


def part_source(child: ChildTable) -> Any:
    """What a workshop's part reads from (a subquery with the bundle's column names): the counts of a
    workshop made here come from its participants, those of another city's from what its bundle said;
    a board's notes leave without the hidden ones and those waiting for the moderator, their column
    and theme named by uid."""
    if child.name in _PART_SOURCES:
        return _PART_SOURCES[child.name]
    if child.name == "workshop_participant_counts":
        p, stored = WorkshopParticipant.__table__, WorkshopParticipantCount.__table__
        source = union_all(
            select(p.c.workshop_id, p.c.actor_group, func.count().label("participants"))
            .group_by(p.c.workshop_id, p.c.actor_group),
            select(stored.c.workshop_id, stored.c.actor_group, stored.c.participants),
        ).subquery("participant_counts")
    elif child.name == "sticky_notes":
        n, board = StickyNote.__table__, Board.__table__.alias("note_board")
        category, theme = NoteCategory.__table__.alias("note_column"), NoteTheme.__table__.alias("note_group")
        # Never a hidden note, nor one waiting for the moderator, nor those of a board whose notes stay
        # private until a reveal that has not come: the room itself has not shown them yet.
        source = (select(n.c.board_id, n.c.uid, category.c.uid.label("category_uid"), theme.c.uid.label("theme_uid"),
                         n.c.text, n.c.position, n.c.vote_count, n.c.promoted_kind, n.c.promoted_uid)
                  .select_from(n.join(board, board.c.id == n.c.board_id)
                               .outerjoin(category, category.c.id == n.c.category_id)
                               .outerjoin(theme, theme.c.id == n.c.theme_id))
                  .where(n.c.hidden.is_(False), n.c.pending.is_(False),
                         or_(board.c.private_until_reveal.is_(False), board.c.revealed.is_(True)))
                  ).subquery("shared_notes")
    else:
        source = _PART_TABLES[child.name]
    _PART_SOURCES[child.name] = source
    return source


# A board another city shared is read-only here: it arrives closed, its notes shown.
_ARRIVING = {"boards": {"state": "closed", "revealed": True}}


def local_defaults(rtable: RecordTable) -> dict[str, Any]:
    """Values of the columns of a record that never travel (a workshop's join code, a board's live
    state), as a record arriving from a bundle gets them: the model's defaults."""
    written = {c.attr for c in rtable.columns} | {"draft", "sort_key", "content_digest", "features"}
    values = {c.name: c.default.arg for c in rtable.table.c
              if c.name not in written and not c.primary_key and c.default is not None and c.default.is_scalar}
    return values | _ARRIVING.get(rtable.name, {})


TABLES: dict[str, RecordTable] = {key: _record_table(BUNDLE_TYPES[key]) for key in TABLE_ORDER}
assert set(TABLES) == set(BUNDLE_TYPES), "every record type travels in the bundle"

# An attachment's `sha256` must be 64 lowercase hex digits equal to the hash of `documents/<sha256>`;
# its media type and size are taken from those bytes, never from the cells.
DOCUMENT_COLUMNS = (*_IDENTITY_COLUMNS,
                    Column("title", "text", "title", required=True, max_length=200),
                    Column("doc_type", "text", "doc_type", max_length=40),
                    Column("filename", "text", "filename", required=True, max_length=255),
                    Column("media_type", "text", "media_type", max_length=100), Column("size", "int", "size", minimum=0),
                    Column("sha256", "text", "sha256", required=True),  # checked as a digest in _plan_documents
                    Column("linked_type", "text", "linked_type", required=True, max_length=40),
                    Column("linked_uid", "text", "linked_uid", required=True, max_length=36),
                    Column("file_included", "bool"))

VOCABULARY_COLUMNS = ("code", "label_fr", "label_en", "definition_fr", "parent", "source", "version")


# --------------------------------------------------------------------------- reading local rows

class UidMaps:
    """id ↔ uid of every record type, loaded once per table (refs are stored as ids, travel as uids)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._uid: dict[str, dict[int, str]] = {}
        self._id: dict[str, dict[str, int]] = {}
        self._themes: dict[int, str] | None = None
        self._theme_ids: dict[str, int] | None = None

    def uid_of(self, key: str) -> dict[int, str]:
        if key not in self._uid:
            table = TABLES[key].table
            self._uid[key] = dict(driver_rows(self.conn, select(table.c.id, table.c.uid)))
        return self._uid[key]

    def id_of(self, key: str) -> dict[str, int]:
        if key not in self._id:
            self._id[key] = {uid: id_ for id_, uid in self.uid_of(key).items()}
        return self._id[key]

    def add(self, key: str, pairs: Iterable[tuple[int, str]]) -> None:
        uids, ids = self.uid_of(key), self.id_of(key)
        for id_, uid in pairs:
            uids[id_] = uid
            ids[uid] = id_

    def forget(self, key: str, ids: Iterable[int]) -> None:
        uids, by_uid = self.uid_of(key), self.id_of(key)
        for id_ in ids:
            by_uid.pop(uids.pop(id_, ""), None)

    def theme_codes(self) -> dict[int, str]:
        if self._themes is None:
            self._themes = {r[0]: r[1] for r in self.conn.execute(select(Theme.id, Theme.code))}
        return self._themes

    def theme_ids(self) -> dict[str, int]:
        if self._theme_ids is None:
            self._theme_ids = {code: id_ for id_, code in self.theme_codes().items()}
        return self._theme_ids

    def reload_themes(self) -> None:
        self._themes = self._theme_ids = None


def child_db_table(child: ChildTable) -> tuple[Table, str, dict[str, str]]:
    """Return the database table of a join table, its owner column and bundle → database columns
    (a workshop's part: what it is read from, see `part_source`)."""
    if is_workshop_part(child):
        return part_source(child), _PART_OWNERS[child.name], {c.name: c.attr for c in child.columns[1:]}
    rt = BUNDLE_TYPES[child.owner]
    if child.name.endswith("_themes"):
        table = rt.model.themes.property.secondary
        owner_col = next(c.name for c in table.c if c.name != "theme_id")
        return table, owner_col, {"theme_code": "theme_id"}
    if child.name == "review_scores":
        return ReviewScore.__table__, "review_id", {"criterion": "criterion", "score": "score", "evidence": "evidence"}
    citation = next((c for c in rt.citations if c.table.name == child.name), None)
    if citation is not None:
        return citation.table, citation.owner_fk, {child.columns[1].name: citation.target_fk}
    link = next(lk for lk in rt.links if lk.model.__tablename__ == child.name)
    mapping = {child.columns[1].name: link.target_fk, "role": "role"}
    if "match_note" in link.model.__table__.c:
        mapping["match_note"] = "match_note"
    return link.model.__table__, link.owner_fk, mapping


def is_column_child(child: ChildTable) -> bool:
    """Territory features are one `;`-joined column in the database but a join table in the bundle."""
    return child.name == "territory_features"


def local_rows(conn: Connection, rtable: RecordTable, maps: UidMaps, *, ids: Iterable[int] | None = None,
               batch: int = 5000) -> Iterator[tuple[int, dict[str, str], dict[str, list[tuple]]]]:
    """Yield (id, row, children) of local records in the bundle's form, by batches of ids.

    The rows are read on a second thread (`read_ahead`): the caller must not use the connection
    while it iterates."""
    table = rtable.table
    query = raw_select(table).order_by(table.c.id)
    position = {c.name: i for i, c in enumerate(table.c)}
    id_at = position["id"]
    names = [c.name for c in rtable.columns]
    text_of = row_text_function(rtable, position, maps.uid_of)
    children_names = [c.name for c in rtable.children]
    maps.theme_codes()  # loaded here: the reading thread below must not be the first to need them
    for rtable_ in {col.ref for c in rtable.children for col in c.columns if col.ref}:
        maps.uid_of(rtable_)
    pages = ((rows, _load_children(conn, rtable, maps, [r[id_at] for r in rows], rows, position))
             for rows in _chunks(conn, query, table, id_at, ids, batch))
    for rows, children in read_ahead(pages):  # the caller must not use the connection until the end
        per_child = [children[name] for name in children_names]
        for r in rows:
            id_ = r[id_at]
            yield (id_, dict(zip(names, text_of(r), strict=True)),
                   {name: found.get(id_, []) for name, found in zip(children_names, per_child, strict=True)})


def raw_select(table: Table) -> Any:
    """SELECT every column of `table` as the driver returns it (no SQLAlchemy type processing):
    the text functions below take raw values, which spares building a datetime per timestamp."""
    return select(*(type_coerce(c, NullType()).label(c.name) for c in table.c))


CELL_TEXT: dict[str, Any] = {
    # kind -> raw stored value -> CSV text; the same text as `write_value` gives for the typed value
    "text": lambda v: "" if v is None else v,
    "bool": lambda v: "" if v is None else "true" if v else "false",
    "int": lambda v: "" if v is None else str(int(v)),
    "float": lambda v: "" if v is None else repr(float(v)),
    "date": lambda v: "" if v is None else stored_date_text(v),
    "datetime": lambda v: "" if v is None else stored_datetime_text(v),
}


def row_text_function(rtable: RecordTable, position: Mapping[str, int],
                      uids_of: Any, computed: Mapping[str, int] | None = None) -> Any:
    """Return a function: raw row of `rtable`'s table -> list of its bundle columns' texts.

    `uids_of(key)` gives the id -> uid map used for links to records of `key` (an id missing from
    it writes an empty cell: that is how an export leaves out links to records that stay here).
    `computed` gives, for some columns, the place in the row of their text already written by the
    database (see `text_select`; NULL there for a value it left to Python).
    The function is generated once per table: one expression per column, inlined for the text and
    link cells that make most of a row, because a Python call per cell costs as much as the rest
    of the export over 100 000 records."""
    computed = computed or {}
    env: dict[str, Any] = {}
    cells = []
    for n, col in enumerate(rtable.columns):
        raw = f"r[{position[col.attr]}]"
        if col.name in computed:
            done = f"r[{computed[col.name]}]"
            if col.kind in ("bool", "int"):
                cells.append(done)
            else:
                env[f"cell{n}"] = CELL_TEXT[col.kind]
                cells.append(f"(v if (v := {done}) is not None else cell{n}({raw}))")
        elif col.kind == "text":
            cells.append(f"('' if (v := {raw}) is None else v)")
        elif col.kind == "ref":
            env[f"uids{n}"] = uids_of(col.ref or "")
            cells.append(f"('' if (v := {raw}) is None else uids{n}.get(v, ''))")
        else:
            env[f"cell{n}"] = CELL_TEXT[col.kind]
            cells.append(f"cell{n}({raw})")
    source = "def row_text(r):\n    return [" + ", ".join(cells) + "]\n"
    exec(compile(source, f"<bundle row of {rtable.name}>", "exec"), env)  # noqa: S102 - our own column list
    return env["row_text"]


def cell_text_sql(conn: Connection, column: Any, kind: str) -> Any:
    """SQL (an engine that writes CSV lines, see `database.writes_csv_lines`): the bundle text of
    `column`'s stored value, as `CELL_TEXT` writes it; NULL where the engine cannot be sure to
    write the same text (a timestamp in another form, some floats): Python then writes the row.
    Not for links, whose text is the uid of another record."""
    raw = type_coerce(column, NullType())
    if kind == "text":
        return func.coalesce(raw, literal(""))
    if kind == "bool":
        return bool_text_sql(conn, column)
    if kind == "int":
        return func.coalesce(cast(cast(column, BigInteger), String), literal(""))
    if kind == "float":
        return float_text_sql(column)
    if kind in ("date", "datetime"):
        return case((raw.is_(None), literal("")), else_=stored_text_sql(conn, column, kind))
    raise ValueError(kind)


def text_select(conn: Connection, rtable: RecordTable) -> tuple[Any, dict[str, int]]:
    """SELECT every column of `rtable`'s table raw (see `raw_select`), then the text of its boolean,
    integer, date and timestamp bundle columns as the database writes it (bundle column name ->
    place in the row): the engine works out those cells while it reads, outside Python's lock,
    on a thread that otherwise waits (see `read_ahead`)."""
    table = rtable.table
    extra: list[Any] = []
    computed: dict[str, int] = {}
    for col in rtable.columns:
        column = table.c[col.attr]
        if col.kind == "bool":
            sql = bool_text_sql(conn, column)
        elif col.kind == "int":
            sql = func.coalesce(cast(cast(column, BigInteger), String), literal(""))
        elif col.kind in ("date", "datetime"):
            sql = stored_text_sql(conn, column, col.kind)
        else:
            continue
        if sql is not None:
            computed[col.name] = len(table.c) + len(extra)
            extra.append(sql.label(f"text_{len(extra)}"))
    return raw_select(table).add_columns(*extra), computed


def record_text_rows(conn: Connection, rtable: RecordTable, uids_of: Any, *, where: Any,
                     batch: int = 5000) -> Iterator[list[list[str]]]:
    """Yield, by batches in id order, the rows (lists of texts, in column order) of the records
    of `rtable` that match `where`."""
    table = rtable.table
    position = {c.name: i for i, c in enumerate(table.c)}
    query, computed = text_select(conn, rtable)
    text_of = row_text_function(rtable, position, uids_of, computed)
    pages = _chunks(conn, query.where(where).order_by(table.c.id), table, position["id"], None, batch)
    for rows in read_ahead(pages):
        yield [text_of(r) for r in rows]


def read_ahead(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate `pages` on a second thread, up to `depth` pages ahead of the caller.

    SQLite steps through rows with the GIL released, so the next page is read while the caller
    converts and writes the current one: both cores of a small laptop work. Until the iteration
    ends the connection belongs to the reading thread: the caller must not use it meanwhile."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                ready.put(("page", page))
            ready.put(("end", None))
        except BaseException as exc:  # handed over to the caller's thread
            ready.put(("error", exc))

    reader = threading.Thread(target=read, name="bundle-reader", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:  # the caller stopped early or failed: let the reader finish before the connection is used again
        stop.set()
        while reader.is_alive():
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
        reader.join()


def child_text_rows(conn: Connection, rtable: RecordTable, child: ChildTable, uids_of: Any, themes: Mapping[int, str],
                    *, owners: Any, window: int = 5000) -> Iterator[list[list[str]]]:
    """Yield, by batches, the join rows (texts) of the records of `rtable` that match `owners`:
    grouped by owner in id order, each owner's rows sorted, rows with a link to a record missing
    from `uids_of` left out."""
    table = rtable.table
    owner_uids = uids_of(rtable.name)
    if is_column_child(child):
        found: list[list[str]] = []
        for owner_id, features in driver_rows(conn, select(table.c.id, table.c.features).where(owners)
                                              .order_by(table.c.id)):
            if owner_id in owner_uids:  # see below: a record shared since the export began stays out
                found += [[owner_uids[owner_id], code] for code in sorted(c for c in (features or "").split(";") if c)]
        yield found
        return
    ctable, owner_col, mapping = child_db_table(child)
    owner = ctable.c[owner_col]
    columns = child.columns[1:]
    # Column by column: a dict's `get` mapped over a column runs in C, with no Python call per cell.
    converters = [themes.get if col.name == "theme_code" else uids_of(col.ref or "").get if col.kind == "ref"
                  else CELL_TEXT[col.kind] for col in columns]
    query = (select(owner, *(type_coerce(ctable.c[mapping[col.name]], NullType()) for col in columns))
             .join_from(ctable, table, table.c.id == owner).where(owners))
    top = conn.execute(select(func.max(table.c.id))).scalar() or 0
    windows = (driver_rows(conn, query.where(owner > low, owner <= low + window)) for low in range(0, top, window))
    for rows in read_ahead(windows):  # windows of owner ids: memory stays flat
        if not rows:
            continue
        owner_ids, *raw = zip(*rows, strict=True)
        cells = [map(convert, values) for convert, values in zip(converters, raw, strict=True)]
        # (owner id, owner uid, cells…) sorted: owners in id order, each owner's rows sorted; a link
        # to a record that stays here (or an unknown theme) maps to None and leaves the row out, and
        # so does an owner missing from `uids_of` (on PostgreSQL, read committed, a record shared
        # by someone else while the export runs).
        found = sorted(row for row in zip(owner_ids, map(owner_uids.get, owner_ids), *cells, strict=True)
                       if None not in row)
        yield [row[1:] for row in found]


def _lookup(texts: Mapping[Any, str]) -> Any:
    """Raw value -> its text in `texts` (a uid, a theme code), or "" when it has none."""
    return lambda value: "" if value is None else texts.get(value, "")


def _chunks(conn: Connection, query: Any, table: Table, id_at: int, ids: Iterable[int] | None,
            batch: int) -> Iterator[list]:
    if ids is not None:
        id_list = sorted(ids)
        for i in range(0, len(id_list), batch):
            chunk = id_list[i:i + batch]
            if chunk[-1] - chunk[0] < 2 * len(chunk):  # dense: a range, then keep the ids asked for
                wanted = set(chunk)
                rows = [r for r in driver_rows(conn, query.where(table.c.id.between(chunk[0], chunk[-1])))
                        if r[id_at] in wanted]
            else:
                rows = driver_rows(conn, query.where(table.c.id.in_(chunk)))
            if rows:
                yield rows
        return
    last = 0
    while True:  # keyset pages: memory stays flat whatever the size of the register
        rows = driver_rows(conn, query.where(table.c.id > last).limit(batch))
        if not rows:
            return
        yield rows
        last = rows[-1][id_at]


def _load_children(conn: Connection, rtable: RecordTable, maps: UidMaps, ids: list[int], rows: list[Any],
                   position: Mapping[str, int]) -> dict[str, dict[int, list[tuple]]]:
    found: dict[str, dict[int, list[tuple]]] = {}
    for child in rtable.children:
        per_owner: dict[int, list[tuple]] = {}
        if is_column_child(child):
            features_at, id_at = position["features"], position["id"]
            for r in rows:
                codes = sorted(c for c in (r[features_at] or "").split(";") if c)  # join rows come sorted
                if codes:
                    per_owner[r[id_at]] = [(code,) for code in codes]
            found[child.name] = per_owner
            continue
        table, owner_col, mapping = child_db_table(child)
        columns = child.columns[1:]
        db_cols = [table.c[owner_col], *(type_coerce(table.c[mapping[c.name]], NullType()) for c in columns)]
        themes = maps.theme_codes()
        converters = [_lookup(themes) if col.name == "theme_code" else
                      _lookup(maps.uid_of(col.ref or "")) if col.kind == "ref" else CELL_TEXT[col.kind]
                      for col in columns]
        owner = table.c[owner_col]
        wanted = set(ids)
        dense = bool(ids) and max(ids) - min(ids) < 2 * len(ids)
        # A dense batch is read as a range: an IN list of 5 000 ids costs more to build than the rows it selects.
        query = select(*db_cols).where(owner.between(min(ids), max(ids)) if dense else owner.in_(ids))
        for owner_id, *values in driver_rows(conn, query):
            if owner_id not in wanted:
                continue
            per_owner.setdefault(owner_id, []).append(
                tuple(convert(value) for convert, value in zip(converters, values, strict=True)))
        for rows_ in per_owner.values():
            rows_.sort()
        found[child.name] = per_owner
    return found


def content_key(row: Mapping[str, str], children: Mapping[str, list[tuple]]) -> tuple:
    """Return what makes two copies of a record the same (every column and join row)."""
    return tuple(sorted(row.items())), tuple((k, tuple(sorted(v))) for k, v in sorted(children.items()))


__all__ = ["TABLES", "TABLE_ORDER", "Column", "ChildTable", "RecordTable", "UidMaps", "local_rows", "read_value",
           "write_value", "content_key", "CellError"]
