"""The one module that knows which database engine runs underneath.

SQLite (the laptop) and PostgreSQL (a network hub) differ in four places, all kept here:

* connection set-up: on SQLite WAL, `synchronous=NORMAL`, foreign keys, a busy timeout, and write
  transactions opened with `BEGIN IMMEDIATE` so that concurrent writers queue on the busy
  timeout instead of failing with "database is locked" when a read transaction tries to upgrade;
* full-text search: an FTS5 table on SQLite, a `tsvector` GIN index on PostgreSQL;
* backups and restores: SQLite's online backup API (PostgreSQL hubs use `pg_dump` and `pg_restore`);
* bulk loads: on SQLite an import of many rows builds a table's indexes afterwards
  (`deferred_indexes`) and leaves the WAL checkpoint to a background thread once it has
  committed (`checkpoint_afterwards`); on PostgreSQL neither, so that a hub's readers are never
  locked out; new primary keys come from max(id) on SQLite, from the sequence on PostgreSQL
  (`reserve_ids`).

Bulk reads and writes (`driver_rows`, `driver_batches`, `insert_rows`) go straight to the
driver's cursor with values as the driver takes and gives them; `stored_datetime_text` reads either
engine's raw timestamps. During an export SQLite writes the rows' texts itself (`stored_text_sql`,
`float_text_sql`, `joined_cells_sql`); on PostgreSQL Python writes them.

Everything above this module speaks SQLAlchemy and calls the functions below.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import functools
import os
import re
import secrets
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    Executable,
    Float,
    Integer,
    String,
    Table,
    and_,
    case,
    cast,
    column,
    event,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    text,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.types import NullType

BUSY_TIMEOUT_MS = 15_000
BULK_CACHE_KB = 32_768  # SQLite page cache while an import or export runs (2 MB otherwise)
BULK_INDEX_ROWS = 10_000  # rows loaded at once above which a table's indexes are built afterwards
SEARCH_TABLE = "search_index"
SEARCH_KEYS = f"{SEARCH_TABLE}_keys"  # SQLite: uid -> rowid of its FTS5 entry
FTS_HASH_BYTES = 16 * 1024 * 1024
# Control characters that cannot come from a form, marking matched words in search snippets.
MARK_START, MARK_END = "\x02", "\x03"

# Set for the duration of a request or command that writes: the next transaction then begins
# with BEGIN IMMEDIATE (takes the write lock up front) instead of a deferred BEGIN.
_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("piu_write_intent", default=False)


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


def ping(conn: Connection) -> None:
    """Raise if the database does not answer (the health check)."""
    conn.exec_driver_sql("SELECT 1")


def engine_options(url: str) -> dict:
    """Return create_engine options for the URL's dialect."""
    if url.startswith("sqlite"):
        # isolation_level=None hands transaction control to the events below (pysqlite otherwise
        # emits its own deferred BEGIN, which we cannot turn into BEGIN IMMEDIATE).
        return {"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False,
                                 "isolation_level": None}}
    return {"pool_pre_ping": True}


def configure_engine(engine: Engine) -> None:
    """Install the SQLite pragmas and transaction events on an engine (no-op elsewhere)."""
    if not is_sqlite(engine):
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: sqlite3.Connection | None, record: Any) -> None:
        if not record.info.pop(_CHECKPOINT_AFTERWARDS, False) or dbapi_conn is None:  # see `checkpoint_afterwards`
            return  # (None: the connection was invalidated, and is closed)
        try:  # never fail here: that would hide the error that ended the import and lose the pool's slot
            dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        except sqlite3.Error:
            pass  # its commits leave the checkpoint to the others' (and to the thread below)
        if engine.url.database and engine.url.database != ":memory:":
            _checkpoint_in_background(Path(engine.url.database))


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Mark the transactions opened inside this block as writers (BEGIN IMMEDIATE on SQLite)."""
    token = _write_intent.set(True)
    try:
        yield
    finally:
        _write_intent.reset(token)


@contextlib.contextmanager
def bulk_cache(conn: Connection) -> Iterator[None]:
    """Give SQLite a 32 MB page cache for the duration of a bulk import or export.

    An import of 100 000 records inserts into a dozen indexes keyed on random uids: with the
    default 2 MB cache every insert reads pages again, and the import takes twice as long. Only
    for that while: a server keeps several connections, each with its own cache."""
    if not is_sqlite(conn):
        yield
        return
    default = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(default)}")


@contextlib.contextmanager
def checkpoint_afterwards(conn: Connection) -> Iterator[None]:
    """Let the commit that ends a bulk write return without copying the WAL into the database (SQLite).

    SQLite's commit copies the write-ahead log into the database file once it holds more than
    1 000 pages: after an import of 100 000 records that copy takes more than a second, while the
    user waits for the report. Here the connection does not do it itself; when it goes back to the
    pool (after the commit or the rollback), a background thread does (SQLite's documentation
    suggests exactly this: https://www.sqlite.org/wal.html#ckpt). Every reader sees the committed
    transaction in the log meanwhile. With `synchronous=NORMAL` a commit is made durable by the
    next checkpoint, as before: a second or two later here, instead of inside the commit."""
    if not is_sqlite(conn):
        yield
        return
    conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
    conn.connection.info[_CHECKPOINT_AFTERWARDS] = True
    yield


_CHECKPOINT_AFTERWARDS = "piu_checkpoint_afterwards"
WAL_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
_checkpoints: list[threading.Thread] = []
_checkpoints_lock = threading.Lock()


def _checkpoint_in_background(path: Path) -> None:
    def checkpoint() -> None:
        try:  # mode=rw: never create a database that has gone meanwhile
            with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                                                    timeout=BUSY_TIMEOUT_MS / 1000)) as conn:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass  # the next commit's automatic checkpoint does it
    thread = threading.Thread(target=checkpoint, name="wal-checkpoint", daemon=True)
    with _checkpoints_lock:
        _checkpoints[:] = [t for t in _checkpoints if t.is_alive()] + [thread]
    thread.start()


def wait_for_checkpoints() -> None:
    """Return once the background checkpoints started so far have ended (benchmarks, tests)."""
    with _checkpoints_lock:
        started = list(_checkpoints)
    for thread in started:
        thread.join()


@contextlib.contextmanager
def deferred_indexes(conn: Connection, incoming: Mapping[str, int]) -> Iterator[None]:
    """Build the secondary indexes of tables after a bulk load instead of during it (SQLite).

    `incoming` gives, per table, how many rows are about to be inserted. A table that receives at
    least BULK_INDEX_ROWS rows, and more than it holds, loses its non-unique indexes for the
    duration of the block; they are created again, from their own SQL, when it ends. Sorting
    100 000 rows into an index once costs a third of inserting them one by one into a dozen
    indexes keyed on random values. Inside the caller's transaction: if the block fails, the
    rollback brings the indexes back with everything else. Unique indexes stay, so that
    constraints are checked as rows arrive. A no-op on PostgreSQL, where DROP INDEX would lock
    the table against every reader of a shared hub for the whole load."""
    if not is_sqlite(conn):
        yield
        return
    dropped: list[str] = []
    for table, rows in incoming.items():
        if rows < BULK_INDEX_ROWS:
            continue
        held = conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar() or 0
        if rows <= held:
            continue
        for name, sql in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL "
                "AND upper(sql) NOT LIKE 'CREATE UNIQUE%' ORDER BY name", (table,)).all():
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
            dropped.append(sql)
    yield
    for sql in dropped:
        conn.exec_driver_sql(sql)


def set_write_intent(value: bool) -> contextvars.Token:
    return _write_intent.set(value)


def reset_write_intent(token: contextvars.Token) -> None:
    _write_intent.reset(token)


# --------------------------------------------------------------------------- raw stored values

def driver_rows(conn: Connection, statement: Executable) -> list[tuple]:
    """Run a SELECT straight on the driver's cursor and return its rows as plain tuples of raw
    values (see below), inside the connection's transaction.

    For bulk reads only (exports, imports): SQLAlchemy's result rows cost half as much again as
    reading the rows themselves, which is seconds over 500 000 rows."""
    cursor = _driver_cursor(conn, statement)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _driver_cursor(conn: Connection, statement: Executable) -> Any:
    """A driver cursor on which `statement` has been executed, its parameters bound as the driver takes them."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args = tuple(params[name] for name in compiled.positiontup or ()) if compiled.positional else params
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), args)
    except BaseException:
        cursor.close()
        raise
    return cursor


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    """INSERT many rows through the driver's executemany, inside the connection's transaction.

    `rows` hold, in the order of `columns`, values as the model's column types take them; the
    dialect's bind processors (a timestamp's text on SQLite, JSON) are applied column by column.
    For bulk writes only: SQLAlchemy's per-row parameter handling costs as much as SQLite's
    inserts themselves over 500 000 rows. Every column with a default must be given (raise
    otherwise), since none is computed here."""
    if not rows:
        return
    unset = [c.name for c in table.c if c.name not in columns and not c.primary_key
             and (c.default is not None or (c.server_default is None and not c.nullable))]
    if unset:
        raise ValueError(f"insert_rows({table.name}): no value for {', '.join(unset)}")
    dialect = conn.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    # Column by column (a transposition runs in C): each column's bind processor, then the columns
    # in the order of the statement's placeholders.
    by_column = dict(zip(columns, zip(*rows, strict=True), strict=True))
    for name, values in by_column.items():
        process = _bulk_bind_processor(table.c[name].type, dialect)
        if process is not None:
            by_column[name] = tuple(map(process, values))
    params: list[Any]
    if compiled.positional:
        params = list(zip(*(by_column[name] for name in compiled.positiontup or ()), strict=True))
    else:
        params = [dict(zip(columns, row, strict=True)) for row in zip(*by_column.values(), strict=True)]
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(str(compiled), params)
    finally:
        cursor.close()


def _bulk_bind_processor(type_: Any, dialect: Any) -> Any:
    """The dialect's bind processor for a column type; for SQLite's timestamps an equivalent that
    costs a fifth as much (SQLAlchemy formats each one through a dict of its parts)."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    if process is None or dialect.name != "sqlite" or not isinstance(type_, DateTime):
        return process

    def timestamp_text(value: Any) -> Any:
        # SQLAlchemy's SQLite format is YYYY-MM-DD HH:MM:SS.ffffff, time zone left out (all UTC here)
        if type(value) is datetime.datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return process(value)
    return timestamp_text


def reserve_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """Return `count` new primary keys for `table`, to insert rows with their ids given.

    A bulk insert then knows its rows' ids without reading them back by uid (0.7 s over 220 000
    records). On SQLite the import holds the only write transaction, so the ids after max(id)
    stay free until it ends; on PostgreSQL they are drawn from the column's sequence."""
    if count <= 0:
        return []
    if is_sqlite(conn):
        first = int(conn.exec_driver_sql(f'SELECT coalesce(max(id), 0) FROM "{table.name}"').scalar() or 0) + 1
        return list(range(first, first + count))
    return [int(row[0]) for row in conn.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
        {"table": table.name, "n": count})]


def stored_datetime_text(value: str | datetime.datetime) -> str:
    """ISO 8601 UTC text (`…T…Z`, microseconds only when there are some) of a DateTime column's
    value as the driver returns it, without SQLAlchemy's type processing: a `datetime` from
    PostgreSQL, the text SQLAlchemy stored (`YYYY-MM-DD HH:MM:SS.ffffff`) from SQLite. Bulk
    exports read raw values: parsing 400 000 timestamps only to format them again costs seconds."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " " and value[19] == ".":  # SQLAlchemy's SQLite format
            return value[:10] + "T" + (value[11:19] if value.endswith(".000000") else value[11:]) + "Z"
        value = datetime.datetime.fromisoformat(value)
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def stored_text_sql(conn: Connection, column: Any, kind: str) -> Any | None:
    """SQL that writes a `date` or `datetime` column's stored value as `stored_date_text` /
    `stored_datetime_text` do, computed by the engine while it reads the rows (without the GIL:
    an export's 440 000 timestamps cost a second and a half of Python otherwise). SQLite only, and
    NULL for a timestamp stored in another form than SQLAlchemy's, which Python then reads; None
    on PostgreSQL, whose driver hands dates and datetimes to Python."""
    if not is_sqlite(conn):
        return None
    if kind == "date":
        return func.coalesce(type_coerce(column, NullType()), "")
    stored = type_coerce(column, NullType())
    standard = and_(func.length(stored) == 26, func.substr(stored, 11, 1) == " ", func.substr(stored, 20, 1) == ".")
    clock = case((func.substr(stored, 20) == ".000000", func.substr(stored, 12, 8)), else_=func.substr(stored, 12))
    return case((standard, func.substr(stored, 1, 10) + literal("T") + clock + literal("Z")), else_=null())


def driver_batches(conn: Connection, statement: Executable, size: int = 5000) -> Iterator[list[tuple]]:
    """Run a SELECT straight on the driver's cursor, inside the connection's transaction, and
    yield its rows by batches of `size` as the engine steps through them: one statement, so that
    what it computes once (an IN list, a subquery) is not computed again for every batch, and
    memory stays flat on SQLite (the PostgreSQL driver fetches the whole result first)."""
    cursor = _driver_cursor(conn, statement)
    try:
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()


# Rows written by the engine (SQLite only): `joined_cells_sql` gives an export the text of a whole
# row in one string instead of thirty Python objects, written without the GIL on the thread that
# reads (see `bundle_export`). PostgreSQL: Python writes the rows.
CELL_SEPARATOR = "\x01"  # never in a stored text: forms and imports refuse control characters


def writes_rows_itself(conn: Connection) -> bool:
    """Whether the engine writes an export's rows itself (`joined_cells_sql`)."""
    return is_sqlite(conn)


def joined_cells_sql(cells: Sequence[Any], *, may_be_null: Sequence[bool], may_hold_nul: Sequence[bool]) -> Any:
    """SQL: the texts of `cells` joined by CELL_SEPARATOR, or NULL when one of them is NULL (a
    text the engine could not write, see `bundle_format.cell_text_sql`) or holds a NUL character
    (printf stops there): Python then writes that row. printf copies the row once, where `||`
    would copy it again for every cell."""
    unsure = [type_coerce(cell, String).is_(None) for cell, null_ in zip(cells, may_be_null, strict=True) if null_]
    nuls = [func.instr(type_coerce(cell, String), func.char(0)) for cell, nul in zip(cells, may_hold_nul, strict=True)
            if nul]
    if nuls:
        total = nuls[0]
        for found in nuls[1:]:
            total = total + found
        unsure.append(total > 0)
    row = func.printf(literal(CELL_SEPARATOR.join(["%s"] * len(cells))), *cells)
    return case((or_(*unsure), null()), else_=row) if unsure else row


def streamed_subquery(statement: Any, name: str) -> Any:
    """`statement` as a subquery SQLite runs as a co-routine, its rows streaming through in its
    order: LIMIT -1 OFFSET 0 keeps the engine from copying its expressions into every place that
    uses its columns (each would be computed again). SQLite only (PostgreSQL refuses LIMIT -1)."""
    return statement.limit(-1).offset(0).subquery(name)


def holds_character_sql(columns: Sequence[Any], codes: Sequence[int]) -> Any:
    """SQL (SQLite): whether one of the texts `columns` holds one of the characters `codes`."""
    return or_(*(func.instr(type_coerce(column, String), func.char(code)) > 0 for column in columns for code in codes))


def bool_text_sql(conn: Connection, column: Any) -> Any:
    """SQL: a boolean column's text as Python's truth of the stored value writes it ("", "true",
    "false"). On SQLite an empty text left by hand in a boolean column is false, as in Python (a
    consent stored so must not let an e-mail leave); PostgreSQL's booleans hold nothing else."""
    raw = type_coerce(column, NullType())
    false_ = or_(raw == 0, raw == literal("")) if is_sqlite(conn) else column == false()
    return case((raw.is_(None), literal("")), (false_, literal("false")), else_=literal("true"))


def float_text_sql(column: Any) -> Any:
    """SQL: a REAL column's value as Python's repr(float) writes it, or NULL when the engine
    cannot be sure to write the same text (Python then writes the row). An integral value below
    1e16 is written positionally with ".0"; another one as printf's 15 significant digits when
    they read back as the same number and need no exponent: the shortest text that reads back,
    which is what repr writes (a 15-digit text that reads back is the correctly rounded one)."""
    value = type_coerce(column, NullType())
    digits = func.printf(literal("%.15g"), value)
    return case(
        (value.is_(None), literal("")),
        (and_(value == cast(value, Integer), func.abs(value) < 1e16),
         func.printf(literal("%d"), value) + literal(".0")),
        (and_(cast(digits, Float) == value, func.instr(digits, literal("e")) == 0), digits),
        else_=null())


def stored_date_text(value: str | datetime.date) -> str:
    """ISO 8601 text of a Date column's raw value (text on SQLite, a `date` on PostgreSQL)."""
    return value if isinstance(value, str) else value.isoformat()


# --------------------------------------------------------------------------- full-text search

def fold(value: str) -> str:
    """Lower-case and strip accents, the way both search back-ends compare words."""
    if value.isascii():  # no accent to strip, nothing to decompose: the common case, ten times faster
        return value.lower()
    # Decompose before and after case folding: compatibility forms (ᴬ, ﬁ) fold only once decomposed.
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", value).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_WORD = re.compile(r"\w+", re.UNICODE)


def search_terms(query: str) -> list[str]:
    """The folded words a user's query looks for (those it excludes left out), to mark them in snippets."""
    return [w for alternative in parse_query(query).groups for words in alternative for w in words]


MAX_QUERY_WORDS = 12
_OR = {"OR", "OU"}  # upper case only: « ou » is a French word


@dataclass(frozen=True)
class SearchQuery:
    """What a user's query asks, engine-free: every group must match (a group is one alternative or
    several joined by OR; an alternative is the words of one typed term, all required), and no
    excluded word may (`-word`). The last word typed also matches as a prefix (typing « solai »)."""

    groups: tuple[tuple[tuple[str, ...], ...], ...] = ()
    excluded: tuple[str, ...] = ()
    prefix_last: bool = True

    def __bool__(self) -> bool:
        return bool(self.groups)


def parse_query(query: str) -> SearchQuery:
    """Read a user's query: words (all required), `a OR b` (either; `OU` too), `-word` (without it).

    Only words (letters, digits) ever reach the engine, each quoted: whatever the user types
    (quotes, parentheses, NEAR, column names, `*`, `^`) is either one of these three operators or
    punctuation, never the engine's own syntax."""
    groups: list[list[tuple[str, ...]]] = []
    excluded: list[str] = []
    joining = False
    count = 0
    for token in query.split():
        if token in _OR:
            joining = bool(groups)
            continue
        negative = token.startswith("-") and len(token) > 1
        words = tuple(_WORD.findall(fold(token[1:] if negative else token)))
        if not words or count >= MAX_QUERY_WORDS:
            joining = False
            continue
        words = words[:MAX_QUERY_WORDS - count]
        count += len(words)
        if negative:
            excluded.extend(w for w in words if w not in excluded)
            joining = False
            continue
        if joining:
            groups[-1].append(words)
        else:
            groups.append([words])
        joining = False
    positive = {w for group in groups for alternative in group for w in alternative}
    excluded = [w for w in excluded if w not in positive]  # « eau -eau » asks for nothing: keep the word
    return SearchQuery(tuple(tuple(g) for g in groups), tuple(excluded))


def create_search_index(conn: Connection) -> None:
    """Create the full-text index table for this dialect (called by the migrations)."""
    if is_sqlite(conn):
        conn.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_TABLE} USING fts5("
            "record_type UNINDEXED, uid UNINDEXED, visibility UNINDEXED, title, body, "
            "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')")
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {SEARCH_KEYS} "
                             "(id INTEGER PRIMARY KEY, uid VARCHAR(36) NOT NULL UNIQUE)")
    else:
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {SEARCH_TABLE} (uid VARCHAR(36) PRIMARY KEY, "
            "record_type VARCHAR(40) NOT NULL, visibility VARCHAR(16) NOT NULL, "
            "title TEXT NOT NULL, body TEXT NOT NULL, folded_title TEXT NOT NULL, folded_body TEXT NOT NULL, "
            "document tsvector GENERATED ALWAYS AS (setweight(to_tsvector('simple', folded_title), 'A') || "
            "setweight(to_tsvector('simple', folded_body), 'B')) STORED)")
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS ix_{SEARCH_TABLE}_document ON {SEARCH_TABLE} USING gin (document)")
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS ix_{SEARCH_TABLE}_type ON {SEARCH_TABLE} (record_type)")


def include_in_autogenerate(name: str | None, type_: str, _parents: dict) -> bool:
    """Keep the search index (and FTS5's shadow tables) out of Alembic's model comparison."""
    return not (type_ == "table" and name is not None and name.startswith(SEARCH_TABLE))


def drop_search_index(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SEARCH_TABLE}")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SEARCH_KEYS}")


@dataclass(frozen=True)
class IndexEntry:
    record_type: str
    uid: str
    visibility: str
    title: str
    body: str


def index_records(conn: Connection, entries: Sequence[IndexEntry]) -> None:
    """Insert or replace the index entries of some records."""
    if not entries:
        return
    if is_sqlite(conn):
        _index_sqlite(conn, entries)
        return
    remove_from_index(conn, [e.uid for e in entries])
    rows = [{"record_type": e.record_type, "uid": e.uid, "visibility": e.visibility, "title": e.title,
             "body": e.body} for e in entries]
    # PostgreSQL has no accent folding without the unaccent extension: the folded copy is made here.
    for r in rows:
        r["folded_title"], r["folded_body"] = fold(r["title"]), fold(r["body"])
    conn.execute(text(f"INSERT INTO {SEARCH_TABLE} (record_type, uid, visibility, title, body, folded_title, "
                      "folded_body) VALUES (:record_type, :uid, :visibility, :title, :body, :folded_title, "
                      ":folded_body)"), rows)


def _index_sqlite(conn: Connection, entries: Sequence[IndexEntry]) -> None:
    uids = [e.uid for e in entries]
    indexed = []
    for start in range(0, len(uids), 500):
        chunk = tuple(uids[start:start + 500])
        indexed += [row[0] for row in conn.exec_driver_sql(
            f"SELECT uid FROM {SEARCH_KEYS} WHERE uid IN ({', '.join('?' * len(chunk))})", chunk)]
    if indexed:  # indexed before: out first, then in again as new entries
        remove_from_index(conn, indexed)
    if len(entries) >= 500:
        # FTS5 keeps new words in a hash table of `hashsize` bytes (1 MB by default) before writing
        # them out as a segment: 16 MB makes a bulk import's index a third faster. The setting is
        # stored in the index's own config table; writing it again costs nothing.
        conn.exec_driver_sql(f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rank) VALUES ('hashsize', {FTS_HASH_BYTES})")
    # Writers are serialised (one write transaction at a time), so max(id) cannot move under us:
    # numbering the new entries here saves reading every new rowid back, which cost more than
    # the full-text insert itself.
    first = int(conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {SEARCH_KEYS}").scalar() or 0) + 1
    conn.exec_driver_sql(f"INSERT INTO {SEARCH_KEYS} (id, uid) VALUES (?, ?)",
                         [(first + i, e.uid) for i, e in enumerate(entries)])
    conn.exec_driver_sql(f"INSERT INTO {SEARCH_TABLE} (rowid, record_type, uid, visibility, title, body) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         [(first + i, e.record_type, e.uid, e.visibility, e.title, e.body)
                          for i, e in enumerate(entries)])


def remove_from_index(conn: Connection, uids: Sequence[str]) -> None:
    if is_sqlite(conn):
        for start in range(0, len(uids), 500):
            chunk = list(uids[start:start + 500])
            params = {f"u{i}": uid for i, uid in enumerate(chunk)}
            placeholders = ", ".join(f":u{i}" for i in range(len(chunk)))
            # Through the keys table, never `WHERE rowid = ?`: SQLite 3.40's FTS5 reports "database disk
            # image is malformed" when a rowid deleted that way is inserted again after a query in the
            # same transaction (tests/services/test_search.py keeps that case).
            conn.execute(text(f"DELETE FROM {SEARCH_TABLE} WHERE rowid IN "
                              f"(SELECT id FROM {SEARCH_KEYS} WHERE uid IN ({placeholders}))"), params)
            conn.execute(text(f"DELETE FROM {SEARCH_KEYS} WHERE uid IN ({placeholders})"), params)
        return
    for start in range(0, len(uids), 500):
        chunk = list(uids[start:start + 500])
        params = {f"u{i}": uid for i, uid in enumerate(chunk)}
        placeholders = ", ".join(f":u{i}" for i in range(len(chunk)))
        conn.execute(text(f"DELETE FROM {SEARCH_TABLE} WHERE uid IN ({placeholders})"), params)


def clear_search_index(conn: Connection) -> None:
    conn.exec_driver_sql(f"DELETE FROM {SEARCH_TABLE}")
    if is_sqlite(conn):
        conn.exec_driver_sql(f"DELETE FROM {SEARCH_KEYS}")


@dataclass(frozen=True)
class SearchHit:
    record_type: str
    uid: str
    rank: float
    text: str = field(default="", repr=False)   # the start of the record's text (SNIPPET_SCAN characters)
    terms: tuple[str, ...] = ()

    @functools.cached_property
    def snippet(self) -> str:
        """The words around the first match, marked; cut only when shown (a theme filter reads 2 000 hits)."""
        return make_snippet(self.text, self.terms)


RANK_ALL_UP_TO = 5000   # hits ranked exactly; above, see search_index (title matches first, windows of RANK_WINDOW)
RANK_WINDOW = 2000      # bm25 of a prefix word over 5 000 title matches took 30 ms at 100 000


# A snippet is cut from the first SNIPPET_SCAN characters of a record's text, whatever its size: FTS5's
# own snippet() scores every window of every column, a cost that grows with the square of the text
# (1 MB took 15 to 60 s, 15 MB never ended, and four such searches held every server thread).
SNIPPET_SCAN = 5_000


def _ranked(conn: Connection, where: str, params: dict, limit: int, offset: int) -> list:
    return conn.execute(text(
        f"SELECT record_type, uid, bm25({SEARCH_TABLE}, 0, 0, 0, 10.0, 1.0) AS rank, "
        f"substr(title, 1, :scan) || ' ' || substr(body, 1, :scan) FROM {SEARCH_TABLE} WHERE {where} "
        "ORDER BY rank, rowid DESC LIMIT :limit OFFSET :offset"),  # ties: the most recent first, always
        {**params, "limit": limit, "offset": offset, "scan": SNIPPET_SCAN}).all()


def _window_then_recent(conn: Connection, where: str, size: int, params: dict, name: str, limit: int,
                        offset: int) -> list:
    """Rows `offset`… of a group of `size` hits: its most recent RANK_WINDOW ranked, then the older
    ones by recency (no ranking: their order is the index's, read backwards with LIMIT)."""
    if offset >= size or limit <= 0:
        return []
    if size <= RANK_WINDOW:
        return _ranked(conn, where, params, limit, offset)
    floor = f"floor_{name}"
    params[floor] = conn.execute(text(
        f"SELECT rowid FROM {SEARCH_TABLE} WHERE {where} ORDER BY rowid DESC LIMIT 1 OFFSET :window"),
        {**params, "window": RANK_WINDOW - 1}).scalar() or 0
    rows = _ranked(conn, f"{where} AND rowid >= :{floor}", params, limit, offset) if offset < RANK_WINDOW else []
    if len(rows) < limit:
        rows += conn.execute(text(
            f"SELECT record_type, uid, 0.0, substr(title, 1, :scan) || ' ' || substr(body, 1, :scan) "
            f"FROM {SEARCH_TABLE} WHERE {where} AND rowid < :{floor} ORDER BY rowid DESC LIMIT :limit OFFSET :offset"),
            {**params, "limit": limit - len(rows), "offset": max(0, offset - RANK_WINDOW),
             "scan": SNIPPET_SCAN}).all()
    return rows


def _fts5_match(q: SearchQuery, *, title_only: bool = False) -> tuple[str, str]:
    """The FTS5 expression of the words `q` requires and of those it excludes ("" when none)."""
    last = (len(q.groups) - 1, len(q.groups[-1]) - 1) if q.groups else (-1, -1)

    def alternative(words: tuple[str, ...], prefix: bool) -> str:
        quoted = [f'"{w}"' for w in words]  # \w+ only: a word never holds a quote
        if prefix:
            quoted[-1] += "*"
        return "(" + " ".join(quoted) + ")"

    groups = ["(" + " OR ".join(alternative(words, q.prefix_last and (g, a) == last)
                                for a, words in enumerate(group)) + ")"
              for g, group in enumerate(q.groups)]
    positive = " AND ".join(groups)
    if title_only:
        positive = "{title} : (" + positive + ")"
    negative = " OR ".join(f'"{w}"' for w in q.excluded)
    return positive, negative


def _fts5(positive: str, negative: str) -> str:
    return f"({positive}) NOT ({negative})" if negative else positive


def _tsquery(q: SearchQuery) -> str:
    """The PostgreSQL `to_tsquery('simple', …)` text of `q` (words are letters and digits only: no operator inside)."""
    last = (len(q.groups) - 1, len(q.groups[-1]) - 1)
    groups = ["(" + " | ".join("(" + " & ".join(words[:-1] + (words[-1] + (":*" if q.prefix_last and (g, a) == last
                                                                            else ""),)) + ")"
                              for a, words in enumerate(group)) + ")"
              for g, group in enumerate(q.groups)]
    return " & ".join(groups + [f"!{w}" for w in q.excluded])


def _filters(record_types: Sequence[str], visibilities: Sequence[str], params: dict) -> str:
    filters = []
    if record_types:
        filters.append("record_type IN (" + ", ".join(f":t{i}" for i in range(len(record_types))) + ")")
        params.update({f"t{i}": t for i, t in enumerate(record_types)})
    if visibilities:
        filters.append("visibility IN (" + ", ".join(f":v{i}" for i in range(len(visibilities))) + ")")
        params.update({f"v{i}": v for i, v in enumerate(visibilities)})
    return "".join(f" AND {f}" for f in filters)


def _matching(conn: Connection, q: SearchQuery, params: dict) -> str:
    """The WHERE condition of the index rows that match `q` (its parameters added to `params`)."""
    if is_sqlite(conn):
        params["q"] = _fts5(*_fts5_match(q))
        return f"{SEARCH_TABLE} MATCH :q"
    params["q"] = _tsquery(q)
    return "document @@ to_tsquery('simple', :q)"


def search_index(conn: Connection, query: str | SearchQuery, *, record_types: Sequence[str] = (),
                 visibilities: Sequence[str] = (), limit: int = 20, offset: int = 0) -> tuple[list[SearchHit], int]:
    """Return ranked hits for `query` (see `parse_query`) and the total number of hits."""
    q = parse_query(query) if isinstance(query, str) else query
    if not q:
        return [], 0
    terms = tuple(w for group in q.groups for alternative in group for w in alternative)
    params: dict[str, object] = {"limit": limit, "offset": offset}
    extra = _filters(record_types, visibilities, params)
    where = _matching(conn, q, params) + extra
    total = conn.execute(text(f"SELECT count(*) FROM {SEARCH_TABLE} WHERE {where}"), params).scalar_one()
    if is_sqlite(conn):
        if total <= RANK_ALL_UP_TO:
            rows = _ranked(conn, where, params, limit, offset)
        else:
            # Ranking costs ~1 µs per hit (bm25): above RANK_ALL_UP_TO hits, the records whose title holds
            # every word come first, then the others; in each group the most recently indexed RANK_WINDOW
            # are ranked, and the older ones follow, most recent first. Every hit keeps its one place.
            positive, negative = _fts5_match(q)
            in_title, _negative = _fts5_match(q, title_only=True)
            params["qt"] = _fts5(in_title, negative)
            params["qb"] = _fts5(f"({positive}) NOT ({in_title})", negative)
            where_t = f"{SEARCH_TABLE} MATCH :qt{extra}"
            where_b = f"{SEARCH_TABLE} MATCH :qb{extra}"
            n_title = conn.execute(text(f"SELECT count(*) FROM {SEARCH_TABLE} WHERE {where_t}"), params).scalar_one()
            rows = []
            for where_g, size, name in ((where_t, n_title, "t"), (where_b, total - n_title, "b")):
                rows += _window_then_recent(conn, where_g, size, params, name, limit - len(rows), offset)
                offset = max(0, offset - size)
        return [SearchHit(r[0], r[1], float(r[2]), r[3] or "", terms) for r in rows], int(total)
    rows = conn.execute(text(
        f"SELECT record_type, uid, ts_rank(document, to_tsquery('simple', :q)) AS rank, "
        f"substr(title, 1, :scan) || ' ' || substr(body, 1, :scan) FROM {SEARCH_TABLE} WHERE {where} "
        "ORDER BY rank DESC, record_type, uid LIMIT :limit OFFSET :offset"),  # ties in one order: pages never repeat
        {**params, "scan": SNIPPET_SCAN}).all()
    return [SearchHit(r[0], r[1], float(r[2]), r[3] or "", terms) for r in rows], int(total)


def search_counts(conn: Connection, query: str | SearchQuery, *, limit: int | None = None
                  ) -> dict[tuple[str, str], int] | None:
    """Return the number of hits of `query` per (record type, sharing level): one grouped query,
    from which the page counts every filter of those two kinds; None above `limit` hits.

    Counting the hits is nearly free (FTS5 reads its doclists); grouping them reads each hit's
    type and level, a few µs per hit: `limit` keeps a word found in most of a large register cheap."""
    q = parse_query(query) if isinstance(query, str) else query
    if not q:
        return {}
    params: dict[str, object] = {}
    where = _matching(conn, q, params)
    if limit is not None and conn.execute(text(  # counting stops past the limit
            f"SELECT count(*) FROM (SELECT 1 FROM {SEARCH_TABLE} WHERE {where} LIMIT :over) AS hits"),
            {**params, "over": limit + 1}).scalar_one() > limit:
        return None
    return {(r[0], r[1]): int(r[2]) for r in conn.execute(text(
        f"SELECT record_type, visibility, count(*) FROM {SEARCH_TABLE} WHERE {where} "
        "GROUP BY record_type, visibility"), params)}


def search_uids(conn: Connection, query: str | SearchQuery, *, record_types: Sequence[str] = (),
                visibilities: Sequence[str] = ()) -> Any:
    """A SELECT of the uids of every hit of `query`, to use inside another query (`uid IN (…)`)."""
    q = parse_query(query) if isinstance(query, str) else query
    params: dict[str, object] = {}
    where = _matching(conn, q, params) + _filters(record_types, visibilities, params)
    return text(f"SELECT uid FROM {SEARCH_TABLE} WHERE {where}").bindparams(**params).columns(column("uid"))


def make_snippet(content: str, terms: Sequence[str], width: int = 12) -> str:
    """Cut about `width` words around the first match and mark the matching words (as FTS5's snippet does).

    Linear and bounded: only the first SNIPPET_SCAN characters are read, and words are folded only
    up to the first match and within the words shown."""
    words = content[:SNIPPET_SCAN].split()

    def matches(word: str) -> bool:
        return any(token.startswith(t) for token in _WORD.findall(fold(word)) for t in terms)

    first = next((i for i, w in enumerate(words) if matches(w)), 0)
    start = max(0, first - width // 3)
    shown = [f"{MARK_START}{w}{MARK_END}" if matches(w) else w for w in words[start:start + width]]
    return ("…" if start else "") + " ".join(shown) + ("…" if start + width < len(words) else "")


_snippet = make_snippet  # the name the earlier tests know


# --------------------------------------------------------------------------- backups

BACKUP_TEMP_PREFIX = ".piu-partial-"  # a backup being written: never matches a backup's final name


def backup_sqlite(engine: Engine, target: Path, *, verify: Callable[[Path], None] | None = None) -> Path:
    """Copy a live SQLite database to `target` with the online backup API (consistent under writes).

    The copy is written to a temporary name beside `target` (private to this user), flushed to disk,
    checked (`PRAGMA integrity_check`, then `verify`), and only then renamed to `target`: a backup
    killed or failed half-way leaves nothing under a final name, and its temporary file is removed
    (or, after a kill, by `remove_stale_backup_files`).
    """
    if not is_sqlite(engine):
        raise NotImplementedError("PostgreSQL hubs are backed up with pg_dump, outside the app.")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = target.parent / f"{BACKUP_TEMP_PREFIX}{target.name}.{os.getpid()}-{secrets.token_hex(4)}"
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # SQLite keeps the mode
    try:
        raw = engine.raw_connection()
        try:
            source: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
            with contextlib.closing(sqlite3.connect(str(temp))) as dest:
                source.backup(dest)
        finally:
            raw.close()
        _fsync_file(temp)
        with contextlib.closing(sqlite3.connect(_read_only_uri(temp), uri=True)) as conn:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity_check failed on the new backup")
        if verify is not None:
            verify(temp)
        os.replace(temp, target)
        fsync_dir(target.parent)
    except BaseException:
        for leftover in (temp, temp.with_name(temp.name + "-journal")):
            with contextlib.suppress(OSError):
                leftover.unlink()
        raise
    return target


def remove_stale_backup_files(folder: Path, *, older_than: float = 3600) -> None:
    """Remove temporary files of backups killed half-way (untouched for `older_than` seconds)."""
    now = time.time()
    for path in folder.glob(f"{BACKUP_TEMP_PREFIX}*") if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > older_than:
                path.unlink()


SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Tell whether an error, or one it wraps, says the disk (or the user's quota) is full."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return True
        if isinstance(current, sqlite3.Error) and (getattr(current, "sqlite_errorcode", None) == SQLITE_FULL
                                                   or "disk is full" in str(current)):
            return True
        if getattr(current, "pgcode", None) == _PG_DISK_FULL:
            return True
        orig = getattr(current, "orig", None)  # SQLAlchemy's wrapper around the driver's error
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return False


def release_journal(engine: Engine) -> None:
    """After a failed write (a full disk), shrink the write-ahead log back so its space is given back.

    SQLite keeps the WAL file at its largest size; a checkpoint with TRUNCATE empties it when no
    reader holds it. Best effort: on PostgreSQL, or if the checkpoint cannot run now, nothing happens.
    """
    if not is_sqlite(engine):
        return
    with contextlib.suppress(Exception):
        raw = engine.raw_connection()
        try:
            for _attempt in range(20):  # a reader (the background checkpoint, another page) may hold it a moment
                busy = raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]  # type: ignore[union-attr]
                if not busy:
                    break
                time.sleep(0.05)
        finally:
            raw.close()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; Windows has no directory handles to flush)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_only_uri(path: Path) -> str:
    # immutable: a backup file is never written while we read it, and a read-only WAL file would
    # otherwise want -wal/-shm files beside it.
    return path.resolve().as_uri() + "?mode=ro&immutable=1"


@dataclass(frozen=True)
class SqliteFile:
    tables: frozenset[str]
    revision: str | None  # Alembic schema revision, None without an alembic_version row


def read_sqlite_file(path: Path, *, check: bool = False) -> SqliteFile:
    """Read the tables and schema revision of a SQLite file without changing it.

    Raise sqlite3.DatabaseError if it is not a SQLite database (or, with `check`, if it is damaged).
    """
    with contextlib.closing(sqlite3.connect(_read_only_uri(path), uri=True)) as conn:
        if check and conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        tables = frozenset(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone() if "alembic_version" in tables \
            else None
    return SqliteFile(tables, row[0] if row else None)


def restore_sqlite(engine: Engine, source: Path) -> None:
    """Copy the SQLite file `source` over the live database with the online backup API, then empty the pool.

    The copy is one write transaction: connections still open see either the old or the new content,
    and a failed copy leaves the database as it was.
    """
    if not is_sqlite(engine):
        raise NotImplementedError("PostgreSQL hubs are restored with pg_restore, outside the app.")
    raw = engine.raw_connection()
    try:
        dest: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
        with contextlib.closing(sqlite3.connect(_read_only_uri(source), uri=True)) as src:
            src.backup(dest)
    finally:
        raw.close()
    engine.dispose()  # pooled connections may cache the old schema; new ones start clean
