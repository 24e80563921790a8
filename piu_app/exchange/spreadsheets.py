"""Spreadsheets in and out: read a city's CSV or XLSX, map its columns, preview, import; export lists.

Reading copes with files as cities write them: UTF-8 with or without BOM, UTF-16, Windows-1252;
`;`, `,` or tab separators; a title and blank rows above the header; merged cells; a total line at
the bottom; French numbers ("12 500 000", "1,5 M€", "70 %") and dates ("12/03/2024", "12 mars
2024", "mars 2024", real Excel dates). Nothing is written until `import_rows`, which creates every
accepted row in the caller's single transaction and records one `ImportBatch` with one
`ImportChange` per created record (so that the import can be undone).

A mapping is `{"columns": {header: target}, "values": {target: {cell key: code or uid}}}`: a target
is a field name, `link:<name>` (e.g. an innovation's carriers) or `visibility`; the value choices
are the user's answers for cell values the vocabularies did not recognise. Both are remembered per
record type and header row (`SpreadsheetMapping`), and offered again for the same layout.

Exports: CSV is written in UTF-8 with a BOM, `;` separators, CRLF and decimal commas, which French
Excel and LibreOffice open without an import dialog; dates are ISO (yyyy-mm-dd), which both read
as dates in every locale. XLSX carries real numbers and dates. No exported cell can run as a formula:
in XLSX every text is a cell typed as text (never a formula, whatever its first character, and shown
without an apostrophe: a phone number "+221 77 …" reads as typed); in CSV, which has no types, a text
starting with = + - @ tab or CR gets a leading apostrophe (`cells.neutralise`), phone numbers
included. A "+" followed only by digits, spaces, dots, dashes and parentheses cannot call a function
or reach another cell or file, but a spreadsheet would still compute it ("+33-1-23" shows 9,
"+221 77" an error): the apostrophe keeps the number's digits; the XLSX export is the readable one.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import decimal
import difflib
import gzip
import hashlib
import io
import json
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.cell.cell import Cell as XlsxCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from ..database import fold
from ..models import ImportBatch, ImportChange, SpreadsheetMapping, Theme, VocabularyTerm, db
from ..registry import RECORD_TYPES, TEXT_KINDS, Field, Link, RecordType
from ..services import InvalidInputError
from ..services import instance as instance_service
from ..services import records as record_service
from .cells import FORMULA_TRIGGERS, keep_apostrophes, neutralise, restore

# Every record type a city keeps in a table, the most asked first (the upload form's order).
IMPORTABLE = ("experiments", "innovations", "organisations", "persons", "funding_aids", "places", "territories",
              "needs", "procurements", "support_programmes", "lessons", "barriers", "experiment_fundings", "reviews")
MAX_ROWS = 20_000
MAX_COLUMNS = 200
HEADER_SEARCH_ROWS = 30
EXPORT_MAX_ROWS = 100_000
MAX_OPTIONS = 1000
XLSX_MAX_TEXT = 32_767  # Excel's limit for one cell
Cell = Any  # str, int, float, bool, datetime.date or None
SHARING_LABELS = (("private", _l("Privé (local)")), ("network", _l("Réseau")), ("public", _l("Public")))


class SpreadsheetError(InvalidInputError):
    """A file that cannot be read as a table; the message says what to do."""


# --------------------------------------------------------------------------- reading

@dataclass
class Table:
    """The header and data rows of a spreadsheet; `line` is the row number the user sees.

    `total_rows` is set when only some rows were loaded back from the stored form (`load_table`).
    """

    headers: list[str]
    rows: list[tuple[int, list[Cell]]]
    notes: list[str] = field(default_factory=list)
    header_line: int = 1
    total_rows: int | None = None

    @property
    def row_count(self) -> int:
        return len(self.rows) if self.total_rows is None else self.total_rows


def read_table(data: bytes, *, max_rows: int = MAX_ROWS) -> Table:
    """Read CSV or XLSX bytes into a table, or raise SpreadsheetError with a message in French."""
    if not data.strip():
        raise SpreadsheetError(_("Le fichier est vide."))
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise SpreadsheetError(_("Ancien format Excel (.xls) : enregistrez le fichier en .xlsx ou en .csv, puis recommencez."))
    if data.startswith(b"PK\x03\x04"):
        grid, notes = _read_xlsx(data, max_rows)
    else:
        grid, notes = _read_csv(data, max_rows)
    return _tabulate(grid, notes, max_rows)


_MERGE_REF = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')


def _merged_ranges(archive: zipfile.ZipFile, member: str) -> list[tuple[int, int, int, int]]:
    """Return the merged ranges (min_col, min_row, max_col, max_row) of a sheet, read from its XML as a stream.

    openpyxl's read-only mode (which streams the rows instead of building millions of cell objects)
    does not give the merged cells: they are listed at the end of the sheet's XML.
    """
    from openpyxl.utils.cell import range_boundaries

    found: set[bytes] = set()
    tail = b""
    with archive.open(member) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            chunk = tail + block
            found.update(m.group(1) for m in _MERGE_REF.finditer(chunk))
            tail = chunk[-200:]
    return sorted(range_boundaries(ref.decode("ascii")) for ref in found)  # type: ignore[misc]


def _has_content(ws: Any) -> bool:
    if (ws.max_row or 0) > 1 or (ws.max_column or 0) > 1:
        return True
    return any(v is not None for row in ws.iter_rows(max_row=1, max_col=1, values_only=True) for v in row)


def _read_xlsx(data: bytes, max_rows: int) -> tuple[list[list[Cell]], list[str]]:
    """Stream the first sheet with content, row by row (openpyxl read-only: memory bounded by the values kept)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        if "xl/workbook.xml" not in names:
            if "mimetype" in names and b"opendocument" in archive.read("mimetype"):
                raise SpreadsheetError(_("Fichier OpenDocument (.ods) : enregistrez-le en .xlsx ou en .csv, puis recommencez."))
            raise SpreadsheetError(_("Ce fichier compressé n'est pas un classeur Excel (.xlsx)."))
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)  # formulas: last value
    except SpreadsheetError:
        raise
    except Exception as exc:  # openpyxl raises many kinds of errors on damaged files
        raise SpreadsheetError(_("Ce classeur Excel est illisible ou endommagé. Ouvrez-le et enregistrez-le "
                                 "à nouveau en .xlsx, ou exportez-le en .csv.")) from exc
    try:
        with archive, contextlib.closing(book):
            return _read_sheet(book, archive, max_rows)
    except SpreadsheetError:
        raise
    except Exception as exc:
        raise SpreadsheetError(_("Ce classeur Excel est illisible ou endommagé. Ouvrez-le et enregistrez-le "
                                 "à nouveau en .xlsx, ou exportez-le en .csv.")) from exc


def _read_sheet(book: Any, archive: zipfile.ZipFile, max_rows: int) -> tuple[list[list[Cell]], list[str]]:
    active = book.active if book.active in book.worksheets else None  # a chart sheet has no cells
    sheet = active if active is not None and _has_content(active) else None
    others = [ws for ws in book.worksheets if ws is not active and _has_content(ws)]
    if sheet is None:
        if not others:
            raise SpreadsheetError(_("Le fichier est vide."))
        sheet = others.pop(0)
    notes = []
    if others:
        notes.append(_("Le classeur a %(n)d feuilles : seule la feuille « %(name)s » est lue.", n=len(others) + 1,
                       name=sheet.title))
    member = getattr(sheet, "_worksheet_path", None)  # openpyxl's read-only sheet knows its XML member
    merged = [m for m in (_merged_ranges(archive, member.lstrip("/")) if member else [])
              if m[3] > m[1] and m[0] <= MAX_COLUMNS]  # merged down several rows
    seen: dict[Any, Any] = {}  # one object per distinct value: a column of repeated values costs one
    grid: list[list[Cell]] = []
    for row in sheet.iter_rows():
        if len(grid) >= max_rows + HEADER_SEARCH_ROWS:
            raise _too_many_rows(max_rows)
        values = []
        for cell in row[:MAX_COLUMNS]:
            value = _xlsx_value(cell)
            if value is not None:
                try:
                    value = seen.setdefault((type(value), value), value)
                except TypeError:
                    pass
            values.append(value)
        grid.append(values)
    filled = 0
    for min_col, min_row, _max_col, max_row in merged:
        # A value merged down several rows (e.g. one financer for three aids) belongs to each row;
        # a value merged across columns (a title) belongs to its first column only.
        top = _at(grid[min_row - 1], min_col - 1) if min_row <= len(grid) else None
        for r in range(min_row, min(max_row, len(grid))):
            row_values = grid[r]
            row_values.extend([None] * (min_col - len(row_values)))
            row_values[min_col - 1] = top
        filled += 1
    if filled:
        notes.append(_("%(n)d groupe(s) de cellules fusionnées : la valeur est reportée sur chaque ligne.", n=filled))
    return grid, notes


def _xlsx_value(cell: Any) -> Cell:
    value = cell.value
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and "%" in (cell.number_format or ""):
        return _tidy(round(value * 100, 10))  # a cell shown as 70 % holds 0.7: keep what the user sees
    if isinstance(value, str):
        return restore(value.strip())
    return value


def _read_csv(data: bytes, max_rows: int) -> tuple[list[list[Cell]], list[str]]:
    text, encoding = _decode(data)
    controls = sum(1 for ch in text[:20_000] if ord(ch) < 32 and ch not in "\t\r\n")
    if "\x00" in text[:20_000] or controls > len(text[:20_000]) / 100:
        raise SpreadsheetError(_("Ce fichier n'est pas un tableur lisible : choisissez un fichier .csv ou .xlsx."))
    delimiter = _sniff(text)
    grid: list[list[Cell]] = []
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            grid.append([restore(c.strip()) for c in row[:MAX_COLUMNS]])
            if len(grid) > max_rows + HEADER_SEARCH_ROWS:
                raise _too_many_rows(max_rows)
    except csv.Error as exc:
        raise SpreadsheetError(_("Ce fichier CSV est mal formé (%(detail)s).", detail=str(exc))) from exc
    names = {";": _("point-virgule"), ",": _("virgule"), "\t": _("tabulation")}
    return grid, [_("Fichier CSV lu en %(enc)s, séparateur %(sep)s.", enc=encoding, sep=names[delimiter])]


def _decode(data: bytes) -> tuple[str, str]:
    """Return the text and the name of its encoding: BOMs first, then UTF-8, then Windows-1252."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace"), "UTF-8"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), "UTF-16"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "ISO-8859-1"


def _sniff(text: str) -> str:
    """Pick the separator that splits the first lines into the most regular number of columns."""
    lines = [line for line in text[:100_000].splitlines() if line.strip()][:30]
    best, best_score = ";", (0.0, 0)
    for delimiter in (";", ",", "\t"):
        counts = [len(r) for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)]
        if not counts:
            continue
        width, freq = Counter(counts).most_common(1)[0]
        score = (freq / len(counts), width)
        if width > 1 and score > best_score:
            best, best_score = delimiter, score
    return best


def _too_many_rows(max_rows: int) -> SpreadsheetError:
    return SpreadsheetError(_("Le fichier dépasse %(n)s lignes : découpez-le en plusieurs fichiers.",
                              n=f"{max_rows:,}".replace(",", "\u202f")))


def _blank(value: Cell) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


_TOTAL = re.compile(r"^(sous[ -]?)?(total|totaux)\b")


def _tabulate(grid: list[list[Cell]], notes: list[str], max_rows: int) -> Table:
    """Find the header row (skipping titles and blank rows), then keep the data rows under it."""
    widths = [sum(1 for c in row if not _blank(c)) for row in grid[:HEADER_SEARCH_ROWS]]
    widest = max(widths, default=0)
    header_index = next((i for i, row in enumerate(grid[:HEADER_SEARCH_ROWS])
                         if widths[i] >= max(1, math.ceil(widest * 0.6))
                         and _looks_like_header([c for c in row if not _blank(c)])), None)
    if header_index is None:
        raise SpreadsheetError(_("Aucune ligne d'en-tête trouvée : la première ligne du tableau doit donner "
                                 "le nom de chaque colonne."))
    body = grid[header_index + 1:]
    width = max([len(grid[header_index])] + [len(r) for r in body])
    # Drop trailing columns with neither a header nor a value.
    while width and _blank(_at(grid[header_index], width - 1)) and all(_blank(_at(r, width - 1)) for r in body):
        width -= 1
    headers = _unique_headers([_at(grid[header_index], i) for i in range(width)])
    rows: list[tuple[int, list[Cell]]] = []
    for offset, row in enumerate(body):
        cells = [_at(row, i) for i in range(width)]
        filled = [c for c in cells if not _blank(c)]
        if not filled:
            continue
        line = header_index + offset + 2
        if isinstance(filled[0], str) and _TOTAL.match(fold(filled[0])) and all(
                not isinstance(c, str) for c in filled[1:]):
            notes.append(_("Ligne %(line)d « %(text)s » : ligne de total, ignorée.", line=line, text=filled[0][:60]))
            continue
        rows.append((line, cells))
    if len(rows) > max_rows:
        raise _too_many_rows(max_rows)
    if not rows:
        raise SpreadsheetError(_("Le fichier ne contient aucune ligne de données sous l'en-tête."))
    if header_index:
        notes.append(_("En-tête trouvé à la ligne %(line)d : les lignes au-dessus (titre) sont ignorées.",
                       line=header_index + 1))
    return Table(headers, rows, notes, header_index + 1)


def _looks_like_header(cells: list[Cell]) -> bool:
    """Tell whether filled cells can name columns: all text, and not all numbers or dates."""
    return all(isinstance(c, str) for c in cells) and not all(_is_number_or_date(c) for c in cells)


def _is_number_or_date(value: Cell) -> bool:
    for parse in (parse_number, parse_date):
        try:
            parse(value)
            return True
        except ValueError:
            pass
    return False


def _at(row: Sequence[Cell], i: int) -> Cell:
    return row[i] if i < len(row) else None


def _unique_headers(raw: list[Cell]) -> list[str]:
    headers: list[str] = []
    for i, value in enumerate(raw):
        name = " ".join(str(value).split()) if not _blank(value) else _("Colonne %(letter)s", letter=get_column_letter(i + 1))
        base, n = name, 2
        while name in headers:
            name, n = f"{base} ({n})", n + 1
        headers.append(name)
    return headers


# --------------------------------------------------------------------------- the table between steps

_DATE_TAG, _TEXT_TAG = "\x00d", "\x00s"  # a date; a text that itself starts with NUL


def save_table(table: Table, path: Path) -> None:
    """Store a table read once in a compact form (gzip'd JSON lines), for the next steps of the import."""
    def encode(value: Cell) -> Any:
        if isinstance(value, dt.date):
            return _DATE_TAG + value.isoformat()
        return _TEXT_TAG + value if isinstance(value, str) and value.startswith("\x00") else value

    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
        fh.write(json.dumps({"headers": table.headers, "notes": table.notes, "header_line": table.header_line,
                             "rows": len(table.rows)}, ensure_ascii=False) + "\n")
        for line, cells in table.rows:
            fh.write(json.dumps([line, *(encode(c) for c in cells)], ensure_ascii=False) + "\n")


def load_table(path: Path, *, headers: Iterable[str] | None = None, max_rows: int | None = None) -> Table:
    """Load a table stored by `save_table`: only the cells of the columns named in `headers` (the others
    are None), and at most `max_rows` rows, so that each step holds only what it shows or checks."""
    def decode(value: Any) -> Cell:
        if isinstance(value, str) and value.startswith("\x00"):
            rest = value[len(_DATE_TAG):]
            return dt.date.fromisoformat(rest) if value.startswith(_DATE_TAG) else rest
        return value

    with gzip.open(path, "rt", encoding="utf-8") as fh:
        head = json.loads(fh.readline())
        width = len(head["headers"])
        wanted = set(headers) if headers is not None else None
        keep = [i for i, h in enumerate(head["headers"]) if wanted is None or h in wanted]
        rows: list[tuple[int, list[Cell]]] = []
        for text in fh:
            if max_rows is not None and len(rows) >= max_rows:
                break
            item = json.loads(text)
            cells: list[Cell] = [None] * width
            for i in keep:
                cells[i] = decode(item[i + 1])
            rows.append((item[0], cells))
    return Table(head["headers"], rows, head["notes"], head["header_line"], total_rows=head["rows"])


# --------------------------------------------------------------------------- cell parsers

_CURRENCIES = [
    (re.compile(r"€|\beuros?\b|\beur\b"), "EUR"),
    (re.compile(r"\bf\s?cfa\b|\bcfa\b|\bxof\b"), "XOF"),
    (re.compile(r"\bxaf\b"), "XAF"),
    (re.compile(r"\$|\busd\b|\bdollars?\b"), "USD"),
    (re.compile(r"\bdh\b|\bmad\b|\bdirhams?\b"), "MAD"),
    (re.compile(r"\b(chf|cad|tnd|dzd|cdf|gnf|mga|htg|khr|vnd|lbp)\b"), ""),  # the code itself
]
_MULTIPLIERS = [(re.compile(r"\s*(mds?|mrds?|milliards?)$"), 1e9), (re.compile(r"\s*(m|millions?)$"), 1e6),
                (re.compile(r"\s*(k|mille)$"), 1e3)]
_SEPARATORS = re.compile(r"[\s\u00a0\u202f\u2009'’]")


def _tidy(number: float | int) -> int | float:
    """Return integral numbers as int (12500000, not 12500000.0)."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 2**53:
        return int(number)
    return number


def parse_amount(value: Cell) -> tuple[int | float, str | None]:
    """Read a French number, with an optional currency, percent sign or multiplier; return (number, currency)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(value)
        return _tidy(value), None
    text = fold(str(value)).strip()
    currency = None
    for pattern, code in _CURRENCIES:
        match = pattern.search(text)
        if match:
            currency = code or match.group(1).upper()
            text = pattern.sub(" ", text)
    text = text.replace("%", " ").replace("−", "-").strip()
    factor = 1.0
    for pattern, multiplier in _MULTIPLIERS:
        if pattern.search(text) and re.search(r"\d", text):
            text, factor = pattern.sub("", text), multiplier
            break
    text = _SEPARATORS.sub("", text)
    if not re.fullmatch(r"[+-]?\d[\d.,]*", text) or text[-1] in ".,":
        raise ValueError(value)
    sign, digits = (-1 if text[0] == "-" else 1), text.lstrip("+-")
    if "," in digits and "." in digits:  # the last one is the decimal mark: 1.234,5 or 1,234.5
        decimal = "," if digits.rfind(",") > digits.rfind(".") else "."
        digits = digits.replace("." if decimal == "," else ",", "").replace(decimal, ".")
    elif digits.count(",") > 1 or digits.count(".") > 1:  # only thousands separators: 1.234.567
        if not re.fullmatch(r"\d{1,3}([.,]\d{3})+", digits):
            raise ValueError(value)
        digits = digits.replace(",", "").replace(".", "")
    else:
        digits = digits.replace(",", ".")  # French decimal comma: 12,5
    number = float(digits) * factor * sign
    if "." not in digits and factor == 1:
        return int(digits) * sign, currency
    return _tidy(round(number, 10)), currency


def parse_number(value: Cell) -> int | float:
    """Read a French number ("12 500 000", "12 500,50 €", "1.234,5", "70 %"); raise ValueError."""
    return parse_amount(value)[0]


_MONTHS = {
    "janvier": 1, "janv": 1, "jan": 1, "january": 1, "fevrier": 2, "fevr": 2, "fev": 2, "february": 2, "feb": 2,
    "mars": 3, "mar": 3, "march": 3, "avril": 4, "avr": 4, "april": 4, "apr": 4, "mai": 5, "may": 5,
    "juin": 6, "june": 6, "jun": 6, "juillet": 7, "juil": 7, "july": 7, "jul": 7, "aout": 8, "august": 8, "aug": 8,
    "septembre": 9, "sept": 9, "sep": 9, "september": 9, "octobre": 10, "oct": 10, "october": 10,
    "novembre": 11, "nov": 11, "november": 11, "decembre": 12, "dec": 12, "december": 12,
}
_WEEKDAYS = r"(?:(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche),?\s+)?"
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def parse_date(value: Cell) -> dt.date:
    """Read a date as French people write it ("12/03/2024", "12 mars 2024", "mars 2024", ISO, Excel)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if float(value).is_integer() and 1800 <= value <= 2100:
            return dt.date(int(value), 1, 1)
        if 1 <= value < 80_000:  # an Excel serial day number
            return _EXCEL_EPOCH + dt.timedelta(days=int(value))
        raise ValueError(value)
    text = " ".join(fold(str(value)).split())
    year, month, day = 0, 0, 1
    if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[t ].*)?", text):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})(?: .*)?", text):
        day, month, year = int(m[1]), int(m[2]), int(m[3])
        if len(m[3]) == 2:
            year += 2000 if year < 70 else 1900
    elif m := re.fullmatch(_WEEKDAYS + r"(\d{1,2})(?:er)?\s+([a-z]+)\.?\s+(\d{4})", text):
        day, month, year = int(m[1]), _MONTHS.get(m[2], 0), int(m[3])
    elif m := re.fullmatch(r"([a-z]+)\.?\s+(\d{4})", text):
        month, year = _MONTHS.get(m[1], 0), int(m[2])
    elif m := re.fullmatch(r"(\d{1,2})[/.-](\d{4})", text):
        month, year = int(m[1]), int(m[2])
    elif re.fullmatch(r"\d{4}", text):
        month, year = 1, int(text)
    if not 1800 <= year <= 2100:
        raise ValueError(value)
    return dt.date(year, month, day)  # raises ValueError on a month or day out of range


_TRUE = {"oui", "o", "x", "vrai", "yes", "y", "1", "true", "ok", "✓", "✔", "v"}
_FALSE = {"non", "n", "faux", "no", "0", "false", "-"}


def parse_bool(value: Cell) -> bool | None:
    """Read oui/non, x, vrai/faux, yes/no, 1/0 (empty gives None); raise ValueError otherwise."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    key = fold(str(value)).strip().rstrip(".")
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise ValueError(value)


def split_values(text: str) -> list[str]:
    """Split a multi-value cell ("Mobilité; Énergie", "a / b", "a, b") into its parts."""
    return [part for part in (p.strip() for p in re.split(r"[;|\n/,+]", text)) if part]


def _key(text: str) -> str:
    """Fold a label or a cell for comparison: no accents, case or punctuation."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(text)).split())


# Words that mean "no value here" in a cell that should hold a date, number or list value.
_NO_VALUE = {_key(w) for w in ("-", "?", "n/a", "na", "nc", "n.c.", "nd", "néant", "aucun", "aucune", "sans objet",
                               "inconnu", "à vérifier", "à préciser", "à définir", "permanent", "en continu",
                               "tout le territoire", "toute la ville", "ensemble du territoire", "toute la commune",
                               "toutes", "tous", "toute", "all", "non renseigné", "ne sait pas")}


# --------------------------------------------------------------------------- mapping

@dataclass(frozen=True)
class Target:
    """What a column can feed: a field, a link (`link:<name>`) or the sharing level.

    A target reached through a linked record (`innovation.themes`, `innovation.link:carriers.org_type`)
    feeds that record when the import creates it: `path` names the refs and links on the way, `rt_key`
    the record type the leaf field belongs to.
    """

    name: str
    label: str
    kind: str
    field: Field | None = None
    link: Link | None = None
    path: tuple[str, ...] = ()
    rt_key: str = ""
    group: str = ""

    @property
    def has_choices(self) -> bool:
        return self.kind in ("vocab", "vocab_list", "themes", "ref", "link", "visibility")

    @property
    def ref_type(self) -> str | None:
        """The record type a ref or link target points to."""
        if self.kind == "ref" and self.field is not None:
            return self.field.ref
        if self.kind == "link" and self.link is not None:
            return self.link.target
        return None

    @property
    def leaf(self) -> str:
        return self.name.rsplit(".", 1)[-1]


# Record types an import may create when a linked record named in a cell is not in the register yet,
# and the fields of theirs a column of the same sheet may fill (the others are left for the form).
CREATABLE: dict[str, tuple[str, ...]] = {
    "innovations": ("tagline", "description", "themes", "innovation_kind", "deployment_stage", "website",
                    "link:carriers"),
    "organisations": ("org_type", "acronym", "actor_family", "is_startup", "website"),
    "places": ("place_type", "address", "postcode"),
    "territories": ("level", "country_code"),
    "funding_aids": ("financer", "aid_type"),
}
# Records that point to a row's record (a funding the experiment obtained, the contract it was bought
# with) and that columns of the same row may describe: (record type, its ref to the row, its fields
# offered). One is created per row whose columns for it are filled; its target names start with "+".
DEPENDENTS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "experiments": (
        ("experiment_fundings", "experiment", ("funding_aid", "amount_obtained", "amount_requested", "status", "date")),
        ("procurements", "experiment", ("route", "technique", "estimated_value", "awarded_value", "supplier",
                                        "notification_date")),
    ),
}
# Values given to a created record's required lists when no column says (shown in the preview).
NEW_DEFAULTS: dict[str, dict[str, str]] = {
    "organisations": {"org_type": "other"},
    "places": {"place_type": "demonstrator_site"},
    "territories": {"level": "autre"},
    "experiment_fundings": {"status": "obtained"},
    "procurements": {"route": "other"},
}
# What an organisation created from a column is, by the column's part: a carrier's column names carriers.
ROLE_DEFAULTS: dict[str, dict[str, str]] = {
    "link:carriers": {"actor_family": "carrier"}, "financer": {"actor_family": "funder"},
    "buyer": {"actor_family": "buyer"}, "supplier": {"actor_family": "carrier"},
}
# Two fields of a record type that default to each other: an experiments sheet names its projects
# once; the experiment's title and the innovation it tests are then that name.
DERIVED: dict[str, tuple[tuple[str, str], ...]] = {"experiments": (("innovation", "title"), ("title", "innovation"))}
_MAX_DEPTH = 2


def _own_targets(rt: RecordType) -> list[Target]:
    found = [Target(f.name, str(f.label), f.kind, field=f, rt_key=rt.key) for f in rt.fields if f.kind != "scores"]
    found += [Target(f"link:{link.name}", str(link.label), "link", link=link, rt_key=rt.key) for link in rt.links]
    return found


def targets(rt: RecordType) -> list[Target]:
    """Return what the columns of a spreadsheet of type `rt` can be mapped to.

    The record's own fields, its links and sharing level come first; then, for each ref or link to a
    record type the import may create, the fields of the record it would create (grouped under it).
    """
    own = _own_targets(rt)
    found = [*own, Target("visibility", _("Niveau de partage"), "visibility", rt_key=rt.key)]

    def companions(parent: Target, depth: int) -> None:
        kind = parent.ref_type
        if kind not in CREATABLE or kind == rt.key or depth > _MAX_DEPTH:
            return
        sub = {t.name: t for t in _own_targets(RECORD_TYPES[kind])}
        group = _("%(link)s (fiche créée par l'import)", link=parent.label)
        for leaf in CREATABLE[kind]:
            t = sub[leaf]
            child = Target(f"{parent.name}.{leaf}", f"{parent.label} › {t.label}", t.kind, field=t.field,
                           link=t.link, path=(*parent.path, parent.leaf), rt_key=kind, group=group)
            found.append(child)
            if child.kind in ("ref", "link"):
                companions(child, depth + 1)

    for t in own:
        if t.kind in ("ref", "link"):
            companions(t, 1)
    for key, _back_ref, leaves in DEPENDENTS.get(rt.key, ()):
        dep_rt = RECORD_TYPES[key]
        sub = {t.name: t for t in _own_targets(dep_rt)}
        group = _("%(type)s (une fiche créée pour chaque ligne)", type=dep_rt.label)
        for leaf in leaves:
            t = sub[leaf]
            child = Target(f"+{key}.{leaf}", f"{dep_rt.label} › {t.label}", t.kind, field=t.field, link=t.link,
                           path=(f"+{key}",), rt_key=key, group=group)
            found.append(child)
            if child.kind in ("ref", "link"):
                companions(child, 2)
    return found


_SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("nom", "intitule", "titre", "denomination"),
    "title": ("intitule", "titre", "objet"),
    "family_name": ("nom", "nom de famille", "nom de naissance"),
    "given_name": ("prenom", "prenoms"),
    "organisation": ("structure", "organisme", "employeur", "entreprise", "etablissement"),
    "job_title": ("fonction", "poste", "titre", "role", "qualite"),
    "role_kind": ("groupe d acteurs", "type d acteur", "categorie d acteur"),
    "email": ("courriel", "email", "e mail", "mail", "adresse mail", "adresse electronique"),
    "phone": ("telephone", "tel", "portable", "mobile"),
    "contact_consent": ("consentement", "accepte d etre cite", "accord", "consent", "accepte d etre contacte"),
    "themes": ("thematique", "thematiques", "thematique s", "theme", "themes", "secteur", "domaine"),
    "description": ("commentaires", "commentaire", "remarques", "observations", "presentation"),
    "financer": ("financeur", "financeurs", "bailleur", "organisme financeur"),
    "aid_type": ("type d aide", "nature de l aide"),
    "submission_deadline": ("date limite", "echeance", "cloture", "date de cloture"),
    "start_date": ("date d ouverture", "date de debut", "debut", "date de lancement", "lancement"),
    "end_date": ("date de fin", "fin", "date d achevement"),
    "planned_end_date": ("fin prevue", "date de fin prevue", "echeance prevue"),
    "rate_max": ("taux max", "taux maximum", "taux"),
    "rate_min": ("taux min", "taux minimum"),
    "max_amount": ("montant max", "montant maximum", "plafond", "montant"),
    "budget_total": ("budget", "budget total", "montant", "cout", "cout total", "budget ttc", "budget ht"),
    "eligibility": ("beneficiaires", "publics", "public cible", "conditions"),
    "origin_url": ("lien", "url", "lien contact", "source"),
    "currency": ("devise", "monnaie"),
    "website": ("site web", "site internet", "site"),
    "org_type": ("type de structure", "statut juridique", "forme juridique", "categorie", "type de porteur"),
    "actor_family": ("famille d acteurs", "groupe d acteurs"),
    "acronym": ("sigle", "acronyme"),
    "tagline": ("accroche", "resume", "en une ligne"),
    "deployment_stage": ("stade", "maturite", "avancement"),
    "territory": ("territoire", "siege", "ville", "commune"),
    "place": ("lieu", "quartier", "quartier lieu", "site d experimentation", "localisation", "emplacement"),
    "buyer": ("acheteur", "service acheteur", "donneur d ordre", "maitre d ouvrage"),
    "legal_framework": ("cadre juridique", "mode d achat", "mode de passation", "procedure", "montage",
                        "montage contractuel", "mode de contractualisation"),
    "created_year": ("annee de creation", "creation"),
    "is_startup": ("start up", "startup"),
    "id_value": ("siret", "siren", "identifiant", "rna"),
    "link:carriers": ("porteur", "porteurs", "porteur du projet", "structure porteuse"),
    "visibility": ("niveau de partage", "partage", "visibilite"),
}
# What a header means depends on what the rows are: in a list of projects "Nom du projet" names the
# project (an innovation, an experiment), never an organisation; in a list of structures "Porteur"
# names the organisation itself.
_TYPE_SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "innovations": {"name": ("nom", "intitule", "titre", "nom du projet", "projet", "nom de l innovation",
                             "innovation", "solution", "nom de la solution")},
    "experiments": {"title": ("intitule", "titre", "nom", "nom du projet", "projet", "nom de l experimentation",
                              "experimentation"),
                    "innovation": ("innovation", "innovation testee", "solution", "solution testee")},
    "organisations": {"name": ("nom", "raison sociale", "nom de la structure", "denomination", "structure",
                               "porteur", "structure porteuse", "organisme", "organisation")},
    "funding_aids": {"name": ("nom", "intitule", "intitule de l aide", "nom de l aide", "dispositif", "titre")},
    "places": {"name": ("nom", "nom du lieu", "lieu", "quartier lieu", "site")},
    "territories": {"name": ("nom", "territoire", "commune", "ville", "nom de la commune")},
    "experiment_fundings": {"funding_aid": ("financement", "aide", "aide obtenue", "dispositif de financement",
                                            "nom de l aide", "subvention"),
                            "amount_obtained": ("montant obtenu", "financement obtenu", "subvention obtenue",
                                                "montant de l aide", "montant finance"),
                            "amount_requested": ("montant demande", "aide demandee")},
    "procurements": {"route": ("procedure de passation", "type de marche", "type de procedure"),
                     "awarded_value": ("montant du marche", "montant attribue"),
                     "supplier": ("titulaire", "prestataire", "fournisseur", "titulaire du marche")},
}
_MATCH_THRESHOLD = 0.8
_COMPANION_WEIGHT = 0.95  # a record's own field wins over the same field of a record it links to


def header_key(headers: Sequence[str]) -> str:
    """Identify a spreadsheet layout: sha256 of its folded header row."""
    return hashlib.sha256("\x1f".join(fold(h) for h in headers).encode()).hexdigest()


def remembered_mapping(rt: RecordType, headers: Sequence[str]) -> dict[str, Any] | None:
    """Return the mapping last used for this layout, if any."""
    saved = db.session.scalars(db.select(SpreadsheetMapping).filter_by(
        record_type=rt.key, header_key=header_key(headers))).first()
    return clean_mapping(rt, headers, saved.mapping) if saved is not None else None


def suggest_mapping(rt: RecordType, headers: Sequence[str], rows: Sequence[tuple[int, Sequence[Cell]]] = ()) -> dict[str, Any]:
    """Return the remembered mapping for this layout, else guess each column's field from its header and values.

    A header close to a field's label or a usual synonym proposes the field; the column's values then
    confirm or veto it (a column of dates is not a name, job titles are not codes of the role list);
    a column whose header says nothing but whose values are e-mails or codes of a list goes to that
    field. A field of a linked record (the carrier's type of structure) is proposed only once its
    record's column is mapped.
    """
    remembered = remembered_mapping(rt, headers)
    if remembered is not None:
        return remembered
    all_targets = targets(rt)
    profiles = [_profile([cells[i] if i < len(cells) else None for _line, cells in rows[:_PROFILE_ROWS]])
                for i in range(len(headers))]
    choices = _GuessChoices()
    synonyms = {**_SYNONYMS, **_TYPE_SYNONYMS.get(rt.key, {})}
    columns: dict[str, str] = {}
    used: set[str] = set()
    derived = {a for a, b in DERIVED.get(rt.key, ())}  # fed by another column when not mapped
    candidates: list[tuple[float, int, Target]] = []
    for t in all_targets:
        depth = len(t.path)
        leaf_synonyms = (_TYPE_SYNONYMS.get(t.rt_key, {}) if depth else synonyms).get(t.leaf) or _SYNONYMS.get(t.leaf, ())
        leaf_label = str(t.field.label if t.field else t.link.label if t.link else t.label)
        names = {_key(leaf_label), _key(re.sub(r"\(.*?\)", "", leaf_label)),
                 _key(t.leaf.removeprefix("link:").replace("_", " ")), *leaf_synonyms}
        weight = _COMPANION_WEIGHT ** depth
        for i, header in enumerate(headers):
            score = _similarity(header, names) * weight
            if score >= _MATCH_THRESHOLD * 0.75:  # values may still lift or sink it
                candidates.append((score * _fits(t, profiles[i], choices), i, t))
    candidates.sort(key=lambda c: (-c[0], c[1], len(c[2].path)))

    def eligible(t: Target) -> bool:
        """A linked record's field only once that record's column is mapped (the carrier's type after the carrier)."""
        parent = ".".join(t.path)
        return not t.path or parent in used or (len(t.path) == 1 and (parent in derived or parent.startswith("+")))

    changed = True
    while changed:  # a column mapped to a linked record makes its fields eligible: go again
        changed = False
        for score, i, t in candidates:
            if score >= _MATCH_THRESHOLD and headers[i] not in columns and t.name not in used and eligible(t):
                columns[headers[i]] = t.name
                used.add(t.name)
                changed = True
    _guess_from_values(headers, profiles, [t for t in all_targets if not t.path], choices, columns, used)
    return {"columns": {h: columns.get(h, "") for h in headers}, "values": {}}


_PROFILE_ROWS = 200
_EMAIL = re.compile(r"[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+")
_URL = re.compile(r"(https?://|www\.)\S+", re.I)


@dataclass
class _Profile:
    """What a column's values look like: the share of its filled cells of each shape."""

    filled: int = 0
    dates: float = 0.0
    numbers: float = 0.0
    emails: float = 0.0
    urls: float = 0.0
    bools: float = 0.0
    phones: float = 0.0
    texts: list[str] = field(default_factory=list)  # distinct texts, for the lists' codes


def _profile(values: Sequence[Cell]) -> _Profile:
    cells = [v for v in values if not _blank(v)]
    if not cells:
        return _Profile()
    counts: Counter[str] = Counter()
    texts: dict[str, str] = {}
    for v in cells:
        text = cell_text(v)
        if isinstance(v, dt.date) or (isinstance(v, str) and not re.fullmatch(r"[\d\s.,]+", v) and _is_date(v)):
            counts["dates"] += 1
        elif isinstance(v, str) and _is_phone(text):
            counts["phones"] += 1  # "+221 77 000 00 00", "01 23 45 67 89": not an amount
        elif isinstance(v, (int, float)) and not isinstance(v, bool) or _is_number(v):
            counts["numbers"] += 1
        if _EMAIL.fullmatch(text):
            counts["emails"] += 1
        if _URL.match(text):
            counts["urls"] += 1
        try:
            if parse_bool(v) is not None and not isinstance(v, (int, float)):
                counts["bools"] += 1
        except ValueError:
            pass
        if len(texts) < 50:
            texts.setdefault(_key(text), text)
    n = len(cells)
    return _Profile(n, counts["dates"] / n, counts["numbers"] / n, counts["emails"] / n, counts["urls"] / n,
                    counts["bools"] / n, counts["phones"] / n, [t for k, t in texts.items() if k and k not in _NO_VALUE])


def _is_phone(text: str) -> bool:
    return bool(_PHONE.fullmatch(text)) and text[:1] in "+0" and sum(c.isdigit() for c in text) >= 8


def _is_date(value: Cell) -> bool:
    try:
        parse_date(value)
    except ValueError:
        return False
    return True


def _is_number(value: Cell) -> bool:
    try:
        parse_number(value)
    except ValueError:
        return False
    return True


class _GuessChoices:
    """The codes of each list, loaded once, to tell whether a column's values are codes of a list."""

    def __init__(self) -> None:
        self._terms: dict[str, _Choices] = {}

    def share(self, t: Target, texts: Sequence[str]) -> float | None:
        """Return the share of distinct values recognised as codes of `t`'s list (None: not a list)."""
        if t.kind not in ("vocab", "vocab_list", "themes") or not texts:
            return None
        key = "themes" if t.kind == "themes" else str(t.field.vocab)  # type: ignore[union-attr]
        if key not in self._terms:
            if key == "themes":
                options = [(th.code, [th.label_fr, th.label_en]) for th in
                           db.session.scalars(db.select(Theme).filter_by(deleted=False))]
            else:
                options = [(term.code, [term.label_fr, term.label_en]) for term in
                           db.session.scalars(db.select(VocabularyTerm).filter_by(vocabulary=key, active=True))]
            self._terms[key] = _Choices(options, {})
        choices = self._terms[key]
        if t.kind == "vocab":
            found = sum(1 for text in texts if choices.match(text))
        else:
            found = sum(1 for text in texts if choices.match_many(text)[0])
        return found / len(texts)


def _fits(t: Target, p: _Profile, choices: _GuessChoices) -> float:
    """How well a column's values fit a target: about 1 when nothing is known, below to veto, above to confirm."""
    if not p.filled:
        return 1.0
    kind = t.kind
    mostly_dates, mostly_numbers = p.dates >= 0.6, p.numbers >= 0.8
    if kind == "date":
        return 1.1 if mostly_dates else 0.9 if mostly_numbers else 0.4
    if kind in ("int", "float"):
        return 1.05 if mostly_numbers else 0.4 if mostly_dates or p.emails >= 0.5 else 0.7
    if kind == "email":
        return 1.1 if p.emails >= 0.5 else 0.4
    if kind == "url":
        return 1.05 if p.urls + p.emails >= 0.5 else 0.4 if mostly_dates or mostly_numbers else 1.0
    if kind == "bool":
        return 1.05 if p.bools >= 0.6 else 0.5
    if mostly_dates or mostly_numbers:
        return 0.4  # a column of dates or amounts is not a name, a list or a link
    if kind in ("text", "textarea", "ref", "link") and p.emails >= 0.5:
        return 0.5
    if p.phones >= 0.5:
        return 1.05 if t.leaf == "phone" else 0.5
    share = choices.share(t, p.texts)
    if share is not None and len(p.texts) >= 2:
        if share == 0:
            return 0.5  # none of its values is a code of the list: job titles are not roles
        if share >= 0.5:
            return 1.05
    return 1.0


def _guess_from_values(headers: Sequence[str], profiles: Sequence[_Profile], own: Sequence[Target],
                       choices: _GuessChoices, columns: dict[str, str], used: set[str]) -> None:
    """Map the columns no header matched whose values clearly belong to one field (e-mails, a list's codes)."""
    for i, header in enumerate(headers):
        p = profiles[i]
        if header in columns or p.filled < 2:
            continue
        best: tuple[float, str] | None = None
        for t in own:
            if t.name in used:
                continue
            if t.kind == "email" and p.emails >= 0.8:
                score = p.emails
            else:
                share = choices.share(t, p.texts) if t.kind in ("vocab", "themes") and len(p.texts) >= 2 else None
                score = share if share is not None and share >= 0.8 else 0.0
            if score and (best is None or score > best[0]):
                best = (score, t.name)
        if best is not None:
            columns[header] = best[1]
            used.add(best[1])


_PHONE = re.compile(r"\+?[\d\s().-]{8,}")


def looks_personal(values: Sequence[Cell]) -> bool:
    """Tell whether sample cells hold a person's contact details (e-mail addresses, phone numbers)."""
    texts = [cell_text(v) for v in values if not _blank(v)]
    return bool(texts) and all(_EMAIL.fullmatch(t) or (isinstance(v, str) and _PHONE.fullmatch(t))
                               for v, t in zip([v for v in values if not _blank(v)], texts, strict=True))


def derived_notes(rt: RecordType) -> list[str]:
    """Say which fields take another column's value when no column of their own is mapped."""
    notes = []
    for wanted, source in DERIVED.get(rt.key, ()):
        f = rt.field(wanted)
        if f.kind == "ref":
            notes.append(_("Sans colonne pour « %(wanted)s », chaque ligne reprend « %(source)s » : la fiche de ce nom "
                           "est liée, ou créée si elle n'existe pas.", wanted=f.label, source=rt.field(source).label))
    return notes


def _similarity(header: str, names: Iterable[str]) -> float:
    keys = {_key(header), _key(re.sub(r"\(.*?\)", "", header))} - {""}
    best = 0.0
    for key in keys:
        words = set(key.split())
        for name in names:
            if key == name:
                return 1.0
            if len(name) >= 5 and set(name.split()) <= words:
                best = max(best, 0.8)
            best = max(best, difflib.SequenceMatcher(None, key, name).ratio())
    return best


def clean_mapping(rt: RecordType, headers: Sequence[str], mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Keep only known headers and targets, each target fed by one column at most."""
    names = {t.name for t in targets(rt)}
    columns: dict[str, str] = {}
    used: set[str] = set()
    raw = mapping.get("columns", {}) if isinstance(mapping, Mapping) else {}
    for header in headers:
        name = raw.get(header, "") if isinstance(raw, Mapping) else ""
        if name in names and name not in used:
            columns[header] = name
            used.add(name)
        else:
            columns[header] = ""
    values = mapping.get("values", {}) if isinstance(mapping, Mapping) else {}
    values = {t: {str(k): str(v) for k, v in choices.items()} for t, choices in values.items()
              if t in names and isinstance(choices, Mapping)} if isinstance(values, Mapping) else {}
    return {"columns": columns, "values": values}


def remember_mapping(rt: RecordType, headers: Sequence[str], mapping: Mapping[str, Any]) -> None:
    """Save the mapping for this layout, to offer it again next time."""
    key = header_key(headers)
    saved = db.session.scalars(db.select(SpreadsheetMapping).filter_by(record_type=rt.key, header_key=key)).first()
    if saved is None:
        saved = SpreadsheetMapping(record_type=rt.key, header_key=key)
        db.session.add(saved)
    saved.mapping = clean_mapping(rt, headers, mapping)


# --------------------------------------------------------------------------- preview

@dataclass(frozen=True)
class NewRef:
    """A linked record the import will create: its type and the folded name that identifies it."""

    record_type: str
    key: str


@dataclass
class NewRecord:
    """A linked record named in the file but not in the register, proposed for creation («à créer»)."""

    record_type: str
    key: str
    title: str
    values: dict[str, Any]
    links: dict[str, list[Any]]
    line: int
    target: str  # the first column target that named it (where the user may pick an existing record instead)

    @property
    def ref(self) -> NewRef:
        return NewRef(self.record_type, self.key)


@dataclass
class RowReport:
    """What one spreadsheet row would become, and what stands in the way."""

    line: int
    title: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    links: dict[str, list[Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duplicate: bool = False
    new: list[NewRef] = field(default_factory=list)  # linked records this row names that the import creates
    dependents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (type, values) to create with it

    @property
    def status(self) -> str:
        return "error" if self.errors else "duplicate" if self.duplicate else "warning" if self.warnings else "ok"


@dataclass
class Preview:
    record_type: str
    rows: list[RowReport]
    notes: list[str]
    unknown: dict[str, dict[str, str]]  # target → {cell key: cell text} the user may choose a value for
    options: dict[str, list[tuple[str, str]]]  # target → (code or uid, label) offered for those values
    new: dict[NewRef, NewRecord] = field(default_factory=dict)  # linked records the import creates, in order
    creatable: frozenset[str] = frozenset()  # targets whose unknown values are created, not asked

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.status for r in self.rows)
        return {s: counted.get(s, 0) for s in ("ok", "warning", "duplicate", "error")}

    @property
    def importable(self) -> int:
        return sum(1 for r in self.rows if r.status in ("ok", "warning"))

    @property
    def dependent_count(self) -> int:
        return sum(len(r.dependents) for r in self.rows if r.status in ("ok", "warning"))

    def new_by_type(self) -> dict[str, list[NewRecord]]:
        """Return the records to create grouped by record type, in the register's order of types."""
        grouped: dict[str, list[NewRecord]] = {}
        for new in self.new.values():
            grouped.setdefault(new.record_type, []).append(new)
        return {key: sorted(grouped[key], key=lambda n: n.key) for key in RECORD_TYPES if key in grouped}


CREATE = "+"  # the answer "create this record" for a linked value the register does not know


def _stem(key: str) -> str:
    """Fold the French feminine and plural endings ("Terminé", "terminées" → "termin")."""
    return " ".join(re.sub(r"(?:ee|e)?s?$", "", w) if len(w) > 3 else w for w in key.split())


class _Choices:
    """Recognise a cell as a code: the user's choice, then code or label, then a part of a label."""

    def __init__(self, options: Iterable[tuple[str, Sequence[str]]], chosen: Mapping[str, str]) -> None:
        options = list(options)
        valid = {code for code, _names in options}
        self.chosen = {k: v for k, v in chosen.items() if v == "" or v in valid}  # answers about retired codes drop
        self.exact: dict[str, str] = {}
        loose: dict[str, set[str]] = {}
        stems: dict[str, set[str]] = {}
        for code, names in options:
            for name in [code, *names]:
                if not name:
                    continue
                for key in {_key(name), _key(name).replace(" ", ""), _key(re.sub(r"\(.*?\)", "", name))} - {""}:
                    self.exact.setdefault(key, code)
                if name is not code:  # labels only: an English code is no French word
                    stems.setdefault(_stem(_key(name)), set()).add(code)
                for part in re.split(r"[,/;()]| et | ou ", fold(name)):
                    if len(_key(part)) >= 3:
                        loose.setdefault(_key(part), set()).add(code)
        self.loose = {k: next(iter(v)) for k, v in loose.items() if len(v) == 1}
        self.stems = {k: next(iter(v)) for k, v in stems.items() if len(v) == 1 and k}

    def match(self, text: str) -> str | None:
        key = _key(text)
        if key in self.chosen:
            return self.chosen[key] or None
        return (self.exact.get(key) or self.exact.get(key.replace(" ", "")) or self.loose.get(key)
                or self.stems.get(_stem(key)))

    def match_many(self, text: str) -> tuple[list[str], list[str]]:
        """Return the codes found in a multi-value cell and the parts left unrecognised."""
        whole = self.match(text)
        if whole or _key(text) in self.chosen:
            return ([whole] if whole else []), []
        codes: list[str] = []
        unknown: list[str] = []
        for part in re.split(r"[;|\n]", text):
            if not part.strip():
                continue
            code = self.match(part)
            pieces = [(part, code)] if code or _key(part) in self.chosen else [(p, self.match(p)) for p in split_values(part)]
            for piece, found in pieces:
                if found and found not in codes:
                    codes.append(found)
                elif not found and _key(piece) not in self.chosen and _key(piece) not in _NO_VALUE:
                    unknown.append(piece.strip())
        return codes, unknown


class _Previewer:
    """Turns cells into the values `services.records.create` takes, loading each list once.

    A ref or link cell naming a record the register does not have proposes that record for creation
    when its type is creatable (`CREATABLE`): one proposal per type and folded name, whatever the
    column or row that names it, filled from the columns mapped to its fields on the row that first
    names it.
    """

    def __init__(self, rt: RecordType, mapping: Mapping[str, Any], lang: str) -> None:
        self.rt = rt
        self.lang = lang
        self.targets = {t.name: t for t in targets(rt)}
        self.values = mapping.get("values", {})
        self._cache: dict[str, tuple[_Choices, list[tuple[str, str]]]] = {}
        self._terms: dict[str, list[tuple[str, list[str]]]] | None = None
        model = rt.model
        self.existing = set(db.session.scalars(db.select(model.sort_key).where(model.deleted.is_(False))))
        self.unknown: dict[str, dict[str, str]] = {}
        self.new: dict[NewRef, NewRecord] = {}

    # ----- the lists a cell is matched against, loaded on first use

    def creatable(self, t: Target) -> bool:
        kind = t.ref_type
        return kind in CREATABLE and kind != self.rt.key

    def _choices(self, t: Target) -> _Choices:
        return self._load(t)[0]

    def options(self, t: Target) -> list[tuple[str, str]]:
        return self._load(t)[1]

    def _load(self, t: Target) -> tuple[_Choices, list[tuple[str, str]]]:
        kind = t.ref_type
        # answers about linked records hold for every column of that type (a carrier is the same
        # organisation as a buyer of the same name); answers about lists hold for their column
        cache_key = f"records:{kind}" if kind else t.name
        if cache_key in self._cache:
            return self._cache[cache_key]
        if kind:
            target_rt = RECORD_TYPES[kind]
            model = target_rt.model
            records = db.session.scalars(db.select(model).where(model.deleted.is_(False)).order_by(model.sort_key))
            options = [(r.uid, [target_rt.title_of(r), getattr(r, "acronym", "") or ""]) for r in records]
            chosen: dict[str, str] = {}
            for other in self.targets.values():
                if other.ref_type == kind:
                    chosen.update(self.values.get(other.name, {}))
        else:
            if t.kind in ("vocab", "vocab_list"):
                options = self._vocab(t.field.vocab)  # type: ignore[union-attr, arg-type]
            elif t.kind == "themes":
                options = [(th.code, [th.label_fr, th.label_en]) for th in
                           db.session.scalars(db.select(Theme).filter_by(deleted=False).order_by(Theme.position))]
            else:
                options = [(code, [str(label)]) for code, label in SHARING_LABELS]
            chosen = self.values.get(t.name, {})
        shown = [(code, names[0] if kind else _term_label(names, self.lang)) for code, names in options][:MAX_OPTIONS]
        self._cache[cache_key] = (_Choices(options, chosen), shown)  # a select box stays usable
        return self._cache[cache_key]

    def _vocab(self, vocabulary: str) -> list[tuple[str, list[str]]]:
        if self._terms is None:
            self._terms = {}
            for term in db.session.scalars(db.select(VocabularyTerm).filter_by(active=True)):
                self._terms.setdefault(term.vocabulary, []).append((term.code, [term.label_fr, term.label_en]))
        return self._terms.get(vocabulary, [])

    # ----- one row

    def row(self, line: int, cells: Mapping[str, Cell]) -> RowReport:
        report = RowReport(line)
        cells = dict(cells)
        for wanted, source in DERIVED.get(self.rt.key, ()):
            if wanted in self.targets and wanted not in cells and not _blank(cells.get(source)):
                cells[wanted] = cells[source]
        currency_hint: tuple[str, str] | None = None
        for name, raw in cells.items():
            t = self.targets[name]
            if t.path:
                continue  # a field of a linked record: read when that record is proposed
            try:
                value = self._linked(t, raw, report, cells) if t.kind in ("ref", "link") else self._convert(t, raw, report)
            except ValueError as exc:
                report.errors.append(f"{t.label} : {exc}")
                continue
            if isinstance(value, _Amount):
                value, hint = value.number, value.currency
                if hint:
                    currency_hint = (hint, str(raw))
            if value is None or value == []:
                continue
            if t.kind == "link":
                report.links[t.link.name] = value  # type: ignore[union-attr]
            else:
                report.values[name] = value
        if currency_hint and "currency" in self.targets and self.targets["currency"].field:
            self._infer_currency(report, *currency_hint)
        for f in self.rt.fields:
            if f.required and f.name not in report.values and not any(f"{f.label} :" in e for e in report.errors):
                report.errors.append(f"{f.label} : " + _("ce champ est obligatoire et la cellule est vide."))
        sort_key = fold(" ".join(str(report.values.get(a) or "") for a in self.rt.order_by))[:200]
        report.title = " ".join(str(report.values.get(a) or "") for a in
                                (self.rt.order_by[::-1] if self.rt.key == "persons" else self.rt.order_by)).strip()
        self._dependents(report, cells)
        if sort_key.strip() and sort_key in self.existing and not report.errors:
            report.duplicate = True
            report.warnings.append(_("Une fiche « %(title)s » existe déjà (dans le registre ou plus haut dans le fichier) : "
                                     "ligne ignorée.", title=report.title))
        elif sort_key.strip():
            self.existing.add(sort_key)
        report.warnings = list(dict.fromkeys(report.warnings))  # one message for two carriers of the same type
        return report

    def _linked(self, t: Target, raw: Cell, report: RowReport, cells: Mapping[str, Cell]) -> Any:
        """Return the uid (ref) or uids (link) a cell names; unknown names of a creatable type become NewRefs."""
        if not self.creatable(t) or _blank(raw):
            return self._convert(t, raw, report)
        text = cell_text(raw)
        if _key(text) in _NO_VALUE:
            report.warnings.append(_("%(label)s : « %(raw)s » n'est pas une valeur ; laissé vide.", label=t.label, raw=text))
            return None
        choices = self._choices(t)
        if t.kind == "ref":  # one record: the whole cell names it, separators included ("Écoles (6) / cantines")
            code = choices.match(text)
            if code is not None or _key(text) in choices.chosen:
                return code
            return self._propose(t, text, report, cells)
        codes: list[Any] = []
        found, unknown = choices.match_many(text)
        codes.extend(found)
        for part in unknown:
            ref = self._propose(t, part, report, cells)
            if ref is not None and ref not in codes:
                codes.append(ref)
        return codes

    def _propose(self, t: Target, text: str, report: RowReport, cells: Mapping[str, Cell]) -> NewRef | None:
        """Propose a record of `t`'s type named `text` (once per type and name), filled from this row's columns."""
        kind = t.ref_type
        assert kind is not None
        target_rt = RECORD_TYPES[kind]
        text = " ".join(text.split())
        ref = NewRef(kind, _key(text))
        self._unknown(t, text)
        if ref in self.new:
            report.new.append(ref)
            return ref
        title = target_rt.field(target_rt.title_attr)
        if title.max_length and len(text) > title.max_length:
            report.errors.append(f"{t.label} : " + _("« %(raw)s » : %(n)d caractères au plus pour le nom d'une fiche à créer.",
                                                     raw=text[:60] + "…", n=title.max_length))
            return None
        defaults = {**NEW_DEFAULTS.get(kind, {}), **(ROLE_DEFAULTS.get(t.leaf, {}) if kind == "organisations" else {})}
        new = NewRecord(kind, ref.key, text, {target_rt.title_attr: text, **defaults}, {}, report.line, t.name)
        self.new[ref] = new
        self._fill(t.name + ".", cells, report, new.values, new.links)
        report.new.append(ref)
        return ref

    def _fill(self, prefix: str, cells: Mapping[str, Cell], report: RowReport, values: dict[str, Any],
              links: dict[str, list[Any]]) -> None:
        """Read the cells of the fields under `prefix` (a record to create) into its values and links."""
        for name, raw in cells.items():
            if not name.startswith(prefix) or "." in name[len(prefix):] or _blank(raw):
                continue
            child = self.targets[name]
            try:
                value = (self._linked(child, raw, report, cells) if child.kind in ("ref", "link")
                         else self._convert(child, raw, report))
            except ValueError as exc:  # the record is created without it: the row itself is fine
                report.warnings.append(f"{child.label} : {exc}")
                continue
            if isinstance(value, _Amount):
                if value.currency and "currency" in {f.name for f in RECORD_TYPES[child.rt_key].fields}:
                    values.setdefault("currency", value.currency)  # "5 000 000 FCFA": the record's currency
                value = value.number
            if value is None or value == []:
                continue
            if child.kind == "link":
                links[child.link.name] = value  # type: ignore[union-attr]
            else:
                values[child.leaf] = value

    def _dependents(self, report: RowReport, cells: Mapping[str, Cell]) -> None:
        """Propose the records that point to this row's record, from the row's cells for them."""
        for key, _back_ref, _leaves in DEPENDENTS.get(self.rt.key, ()):
            prefix = f"+{key}."
            if not any(name.startswith(prefix) and not _blank(raw) for name, raw in cells.items()):
                continue
            dep_rt = RECORD_TYPES[key]
            values: dict[str, Any] = {}
            self._fill(prefix, cells, report, values, {})
            if not values:
                continue
            if dep_rt.title_attr in {f.name for f in dep_rt.fields} and dep_rt.field(dep_rt.title_attr).required:
                values.setdefault(dep_rt.title_attr, report.title[:200])
            for leaf, code in NEW_DEFAULTS.get(key, {}).items():
                values.setdefault(leaf, code)
            missing = [str(f.label) for f in dep_rt.fields if f.required and f.name not in values
                       and not (f.kind == "ref" and f.ref == self.rt.key)]  # the row's record: set at import
            if missing:
                report.warnings.append(_("%(type)s non créé : %(fields)s sans valeur.", type=dep_rt.label,
                                         fields=", ".join(missing)))
                continue
            report.dependents.append((key, values))

    def _infer_currency(self, report: RowReport, code: str, raw: str) -> None:
        given = report.values.get("currency")
        if not given and self._choices(self.targets["currency"]).match(code):
            report.values["currency"] = code
            if code == "XOF" and "cfa" in fold(raw):
                report.warnings.append(_("Devise : « %(raw)s » compris comme XOF (franc CFA UEMOA) ; "
                                         "corrigez la fiche s'il s'agit du XAF.", raw=raw))
        elif given and given != code:
            report.warnings.append(_("Devise : le montant « %(raw)s » n'est pas en %(code)s, la devise indiquée.",
                                     raw=raw, code=given))

    def _convert(self, t: Target, raw: Cell, report: RowReport) -> Any:
        """Return the value for `create`, None when empty; raise ValueError with the message to show."""
        if _blank(raw):
            return None
        kind = t.kind
        f = t.field
        if kind in TEXT_KINDS:
            return self._text(t, cell_text(raw), report)
        if isinstance(raw, str) and _key(raw) in _NO_VALUE and kind != "bool":
            report.warnings.append(_("%(label)s : « %(raw)s » n'est pas une valeur ; laissé vide.", label=t.label, raw=raw))
            return None
        if kind in ("int", "float"):
            try:
                number, currency = parse_amount(raw)
            except ValueError:
                raise ValueError(_("« %(raw)s » n'est pas un nombre (écrivez par exemple 12 500 ou 3,5).", raw=raw)) from None
            assert f is not None
            if kind == "int" and not float(number).is_integer():
                raise ValueError(_("« %(raw)s » : un nombre entier est attendu.", raw=raw))
            low, high = f.min_value, f.max_value
            if (low is not None and number < low) or (high is not None and number > high):
                raise ValueError(_("« %(raw)s » : valeur attendue entre %(a)s et %(b)s.", raw=raw,
                                   a=_fmt(low), b=_fmt(high)))
            if abs(number) > record_service.MAX_NUMBER:
                raise ValueError(_("« %(raw)s » : nombre trop grand.", raw=raw))
            return _Amount(int(number) if kind == "int" else number, currency)
        if kind == "date":
            try:
                return parse_date(raw)
            except ValueError:
                raise ValueError(_("« %(raw)s » n'est pas une date (écrivez-la jj/mm/aaaa, par exemple 12/03/2024).",
                                   raw=cell_text(raw))) from None
        if kind == "bool":
            try:
                return parse_bool(raw)
            except ValueError:
                raise ValueError(_("« %(raw)s » : écrivez oui ou non.", raw=raw)) from None
        text = cell_text(raw)
        choices = self._choices(t)
        if kind in ("vocab", "visibility"):
            code = choices.match(text)
            if code is None and _key(text) not in choices.chosen:
                self._unknown(t, text)
                if f is not None and f.required:
                    fallback = next((c for c in ("other", "autre") if choices.match(c) == c), None)
                    if fallback is None:
                        raise ValueError(_("« %(raw)s » n'est pas dans la liste ; choisissez sa valeur ci-dessous.", raw=text))
                    report.warnings.append(_("%(label)s : « %(raw)s » n'est pas dans la liste ; classé « Autre » "
                                             "(choisissez sa valeur ci-dessous).", label=t.label, raw=text))
                    return fallback
                report.warnings.append(_("%(label)s : « %(raw)s » n'est pas dans la liste ; laissé vide "
                                         "(choisissez sa valeur ci-dessous).", label=t.label, raw=text))
            return code
        codes, unknown = choices.match_many(text)
        for part in unknown:
            self._unknown(t, part)
        if unknown and kind in ("ref", "link"):
            report.warnings.append(_("%(label)s : « %(raw)s » introuvable dans le registre ; lien non créé "
                                     "(importez d'abord ces fiches, ou choisissez-les ci-dessous).",
                                     label=t.label, raw=" ; ".join(unknown)))
        elif unknown:
            report.warnings.append(_("%(label)s : « %(raw)s » n'est pas dans la liste ; valeur ignorée "
                                     "(choisissez sa valeur ci-dessous).", label=t.label, raw=" ; ".join(unknown)))
        if kind == "ref":
            if len(codes) > 1:
                raise ValueError(_("« %(raw)s » désigne plusieurs fiches ; une seule est attendue.", raw=text))
            return codes[0] if codes else None
        return codes

    def _text(self, t: Target, text: str, report: RowReport) -> str | None:
        f = t.field
        assert f is not None
        if f.kind == "email":
            if not re.fullmatch(r"[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+", text):
                raise ValueError(_("« %(raw)s » n'est pas une adresse de courriel.", raw=text))
        elif f.kind == "url":
            if re.fullmatch(r"www\.\S+", text, re.I):
                text = "https://" + text
            elif re.fullmatch(r"[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+", text):
                text = "mailto:" + text
            elif not re.fullmatch(r"https?://\S+", text, re.I):
                report.warnings.append(_("%(label)s : « %(raw)s » n'est pas une adresse web ; laissé vide.",
                                         label=t.label, raw=text))
                return None
        if f.max_length and len(text) > f.max_length:
            raise ValueError(_("%(n)d caractères au plus (la cellule en compte %(m)d).", n=f.max_length, m=len(text)))
        bad = record_service.control_character(text, multiline=f.kind == "textarea")
        if bad:  # the preview says it, as the import would (services.records refuses them)
            raise ValueError(_("Caractère de contrôle invisible interdit (%(code)s) : retirez-le "
                               "(il vient souvent d'un copier-coller).", code=bad))
        return text

    def _unknown(self, t: Target, text: str) -> None:
        self.unknown.setdefault(t.name, {}).setdefault(_key(text), text)


@dataclass
class _Amount:
    number: int | float
    currency: str | None


def cell_text(value: Cell) -> str:
    """Return a cell as the text the user reads (dates dd/mm/yyyy, decimal comma)."""
    if isinstance(value, bool):
        return _("oui") if value else _("non")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float):
        return str(_tidy(value)).replace(".", ",")
    return str(value).strip()


def _fmt(number: float | None) -> str:
    return "…" if number is None else f"{number:g}"


def _term_label(names: Sequence[str], lang: str) -> str:
    return (names[1] if lang == "en" and len(names) > 1 and names[1] else names[0]) or ""


def preview(rt: RecordType, table: Table, mapping: Mapping[str, Any], *, lang: str = "fr") -> Preview:
    """Check every row against the mapping without writing anything; return a row-by-row report."""
    mapping = clean_mapping(rt, table.headers, mapping)
    columns = [(i, name) for i, name in enumerate(mapping["columns"][h] for h in table.headers) if name]
    previewer = _Previewer(rt, mapping, lang)
    rows = [previewer.row(line, {name: cells[i] for i, name in columns}) for line, cells in table.rows]
    notes = list(table.notes)
    if not columns:
        notes.append(_("Aucune colonne n'est associée à un champ."))
    mapped = {name for _i, name in columns}
    for wanted, source in DERIVED.get(rt.key, ()):
        if wanted not in mapped and source in mapped:
            notes.append(_("Aucune colonne pour « %(wanted)s » : elle reprend « %(source)s » de la même ligne.",
                           wanted=rt.field(wanted).label, source=rt.field(source).label))
    derived = {wanted for wanted, source in DERIVED.get(rt.key, ()) if source in mapped}
    for name in sorted(mapped):
        t = previewer.targets[name]
        parent = ".".join(t.path)
        if t.path and parent not in mapped and not (len(t.path) == 1 and (parent in derived or parent.startswith("+"))):
            notes.append(_("« %(field)s » ne sert qu'aux fiches créées depuis « %(parent)s », qu'aucune colonne ne "
                           "remplit : cette colonne est ignorée.", field=t.label, parent=previewer.targets[parent].label))
    options = {name: previewer.options(previewer.targets[name]) for name in previewer.unknown}
    creatable = frozenset(name for name, t in previewer.targets.items() if t.ref_type and previewer.creatable(t))
    return Preview(rt.key, rows, notes, previewer.unknown, options, _reachable(rows, previewer.new), creatable)


def new_details(report: Preview, *, lang: str = "fr") -> dict[NewRef, list[str]]:
    """Return, for each record to create, what it will hold besides its name ("Type de structure : Start-up")."""
    if not report.new:
        return {}
    labels = {(t.vocabulary, t.code): t.label(lang) for t in db.session.scalars(db.select(VocabularyTerm))}
    themes = {t.code: t.label(lang) for t in db.session.scalars(db.select(Theme))}
    wanted: dict[str, set[str]] = {}  # the existing records the new ones link to: one query per type
    for new in report.new.values():
        target_rt = RECORD_TYPES[new.record_type]
        for f in target_rt.fields:
            if f.kind == "ref" and isinstance(new.values.get(f.name), str):
                wanted.setdefault(str(f.ref), set()).add(new.values[f.name])
        for link in target_rt.links:
            wanted.setdefault(link.target, set()).update(v for v in new.links.get(link.name, []) if isinstance(v, str))
    titles: dict[str, str] = {}
    for key, uids in wanted.items():
        target_rt = RECORD_TYPES[key]
        for chunk in (sorted(uids)[i:i + 500] for i in range(0, len(uids), 500)):
            for record in db.session.scalars(db.select(target_rt.model).where(target_rt.model.uid.in_(chunk))):
                titles[record.uid] = target_rt.title_of(record)
    details: dict[NewRef, list[str]] = {}
    for ref, new in report.new.items():
        target_rt = RECORD_TYPES[new.record_type]
        lines = []
        for f in target_rt.fields:
            value = new.values.get(f.name)
            if f.name == target_rt.title_attr or value in (None, "", []):
                continue
            if f.kind == "vocab":
                text = labels.get((f.vocab, value), value)  # type: ignore[arg-type]
            elif f.kind == "vocab_list":
                text = ", ".join(labels.get((f.vocab, v), v) for v in value)  # type: ignore[arg-type]
            elif f.kind == "themes":
                text = ", ".join(themes.get(v, v) for v in value)
            elif f.kind == "ref":
                text = _linked_title(report, titles, value)
            else:
                text = cell_text(value)
            lines.append(f"{f.label} : {text if len(text) <= 120 else text[:117] + '…'}")
        for link in target_rt.links:
            if new.links.get(link.name):
                lines.append(f"{link.label} : " + ", ".join(_linked_title(report, titles, v) for v in new.links[link.name]))
        details[ref] = lines
    return details


def _linked_title(report: Preview, titles: Mapping[str, str], value: Any) -> str:
    if isinstance(value, NewRef):
        new = report.new.get(value)
        return _("%(title)s (à créer)", title=new.title if new else value.key)
    return titles.get(value, str(value))


def _reachable(rows: Sequence[RowReport], proposed: Mapping[NewRef, NewRecord]) -> dict[NewRef, NewRecord]:
    """Return the proposed records that rows to be imported need, each after the records it links to."""
    found: dict[NewRef, NewRecord] = {}

    def visit(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, NewRef) and value not in found and value in proposed:
            new = proposed[value]
            for v in [*new.values.values(), *new.links.values()]:
                visit(v)
            found[value] = new  # after what it needs

    for row in rows:
        if row.status in ("ok", "warning"):
            for v in [*row.values.values(), *row.links.values(), *(x for _k, dv in row.dependents for x in dv.values())]:
                visit(v)
    return found


# --------------------------------------------------------------------------- import

def import_rows(rt: RecordType, table: Table, mapping: Mapping[str, Any], *, username: str, filename: str,
                sha256: str, valid_only: bool = False, lang: str = "fr") -> ImportBatch:
    """Create a record per accepted row, and the linked records they name, in the caller's transaction.

    Rows with errors block the whole import unless `valid_only`; rows already in the register are
    skipped. Each created record, linked ones included, is one `ImportChange` of the returned batch,
    so that undoing the import removes them all. The caller commits, or rolls back on any exception
    (then nothing is written).
    """
    if rt.key not in IMPORTABLE:
        raise InvalidInputError(_("Ce type de fiche ne s'importe pas depuis un tableur."))
    checked = preview(rt, table, mapping, lang=lang)
    errors = [r for r in checked.rows if r.errors]
    if errors and not valid_only:
        raise InvalidInputError(_("%(n)d ligne(s) contiennent des erreurs : corrigez le fichier, ou choisissez "
                                  "d'importer seulement les lignes valides.", n=len(errors)))
    batch = ImportBatch(kind="spreadsheet", filename=filename[:255], sha256=sha256, username=username, report={})
    db.session.add(batch)
    created_counts: Counter[str] = Counter()
    origin = instance_service.instance_code()  # read once, not once per record
    made: dict[NewRef, str] = {}
    roles: dict[str, str] = {}

    def role_of(link: Link) -> str:
        if link.role_vocab not in roles:
            roles[link.role_vocab] = next(iter(_vocab_codes(link.role_vocab)), "")
        return roles[link.role_vocab]

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return made[value] if isinstance(value, NewRef) else value

    def link_all(target_rt: RecordType, record: Any, links: Mapping[str, list[Any]]) -> None:
        for link in target_rt.links:
            for uid in dict.fromkeys(resolve(links.get(link.name, []))):
                record_service.add_link(target_rt, record, link.name, target_uid=uid, role=role_of(link), username=username)

    for ref, new in checked.new.items():  # linked records first, each after the records it links to
        target_rt = RECORD_TYPES[new.record_type]
        try:
            record = record_service.create(target_rt, {k: resolve(v) for k, v in new.values.items()}, username=username,
                                           origin=origin)
            link_all(target_rt, record, new.links)
        except InvalidInputError as exc:
            raise InvalidInputError(_("Ligne %(line)d, %(type)s « %(title)s » à créer : %(msg)s", line=new.line,
                                      type=str(target_rt.label).lower(), title=new.title,
                                      msg=_describe(target_rt, exc))) from exc
        made[ref] = record.uid
        db.session.add(ImportChange(batch=batch, record_type=new.record_type, record_uid=record.uid, action="created",
                                    before=None))
        created_counts[new.record_type] += 1
    skipped: list[dict[str, Any]] = []
    created = 0
    for row in checked.rows:
        if row.errors or row.duplicate:
            skipped.append({"table": rt.key, "uid": "", "line": row.line,
                            "reason": "; ".join(row.errors) or row.warnings[-1]})
            continue
        try:
            with db.session.begin_nested():  # a row refused here leaves the others intact
                record = record_service.create(rt, {k: resolve(v) for k, v in row.values.items()}, username=username,
                                               origin=origin)
                link_all(rt, record, row.links)
                brought = []
                for key, values in row.dependents:
                    back_ref = next(ref for k, ref, _leaves in DEPENDENTS[rt.key] if k == key)
                    dep = record_service.create(RECORD_TYPES[key], {**{k: resolve(v) for k, v in values.items()},
                                                                    back_ref: record.uid}, username=username, origin=origin)
                    brought.append((key, dep.uid))
        except InvalidInputError as exc:
            if not valid_only:
                raise InvalidInputError(_("Ligne %(line)d : %(msg)s", line=row.line, msg=_describe(rt, exc))) from exc
            skipped.append({"table": rt.key, "uid": "", "line": row.line, "reason": _describe(rt, exc)})
            continue
        db.session.add(ImportChange(batch=batch, record_type=rt.key, record_uid=record.uid, action="created", before=None))
        created += 1
        for key, uid in brought:
            db.session.add(ImportChange(batch=batch, record_type=key, record_uid=uid, action="created", before=None))
            created_counts[key] += 1
    remember_mapping(rt, table.headers, mapping)
    tables = {key: {"created": n, "updated": 0, "unchanged": 0, "skipped": 0, "conflicts": 0}
              for key, n in created_counts.items() if key != rt.key}
    batch.report = {
        "record_type": rt.key,
        "rows": len(checked.rows),
        "tables": {rt.key: {"created": created + created_counts.get(rt.key, 0), "updated": 0, "unchanged": 0,
                            "skipped": len(skipped), "conflicts": 0}, **tables},
        "linked_created": sum(created_counts.values()),
        "skipped": skipped,
        "warnings": [{"line": r.line, "messages": r.warnings} for r in checked.rows
                     if r.warnings and not r.errors and not r.duplicate][:1000],
        "notes": checked.notes,
    }
    from ..services import imports as imports_service  # here: that service imports the exchange modules

    return imports_service.finish(batch)  # where its history ends: what changes after it blocks its undo


def _vocab_codes(vocabulary: str) -> list[str]:
    return list(db.session.scalars(db.select(VocabularyTerm.code).filter_by(vocabulary=vocabulary, active=True)
                                   .order_by(VocabularyTerm.position, VocabularyTerm.code)))


def _describe(rt: RecordType, exc: InvalidInputError) -> str:
    labels = {f.name: str(f.label) for f in rt.fields}
    return "; ".join(f"{labels.get(k, k)} : {v}" for k, v in exc.field_errors.items()) or exc.message


# --------------------------------------------------------------------------- export

def export_table(rt: RecordType, records: Iterable[Any], *, lang: str = "fr") -> tuple[list[str], list[list[Cell]]]:
    """Return the header and typed rows of a list: labels for codes, titles for links, uid and sharing level."""
    labels = {(t.vocabulary, t.code): t.label(lang) for t in db.session.scalars(db.select(VocabularyTerm))}
    themes = {t.code: t.label(lang) for t in db.session.scalars(db.select(Theme))}
    sharing = {code: str(label) for code, label in SHARING_LABELS}
    fields = list(rt.fields)
    headers = ["uid", *(str(f.label) for f in fields), *(str(link.label) for link in rt.links), _("Niveau de partage")]
    rows: list[list[Cell]] = []
    for record in records:
        row: list[Cell] = [record.uid]
        for f in fields:
            row.append(_export_value(rt, f, record, labels, themes))
        for link in rt.links:
            target_rt = RECORD_TYPES[link.target]
            row.append("; ".join(target_rt.title_of(getattr(r, link.target_attr)) for r in getattr(record, link.owner_attr)))
        row.append(sharing.get(record.visibility, record.visibility))
        rows.append(row)
    return headers, rows


def _export_value(rt: RecordType, f: Field, record: Any, labels: Mapping[tuple[str, str], str],
                  themes: Mapping[str, str]) -> Cell:
    if f.kind == "ref":
        target = getattr(record, f.name)
        return RECORD_TYPES[f.ref].title_of(target) if target is not None else None  # type: ignore[index]
    if f.kind == "themes":
        return "; ".join(themes.get(t.code, t.code) for t in getattr(record, f.name))
    if f.kind == "scores":
        return "; ".join(f"{labels.get((f.vocab, s.criterion), s.criterion)} {s.score}/5"  # type: ignore[arg-type]
                         for s in record.scores)
    value = getattr(record, f.column)
    if value is None or value == "":
        return None
    if f.kind == "vocab":
        return labels.get((f.vocab, value), value)  # type: ignore[arg-type]
    if f.kind == "vocab_list":
        return "; ".join(labels.get((f.vocab, v), v) for v in value.split(";") if v)  # type: ignore[arg-type]
    if f.kind == "bool":
        return _("oui") if value else _("non")
    return value


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """Write a table as CSV for French Excel: UTF-8 BOM, `;`, CRLF, decimal comma, ISO dates, no formulas."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in headers])
    for row in rows:
        writer.writerow([_csv_cell(c) for c in row])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("oui") if value else _("non")
    if isinstance(value, (int, float)):
        text = repr(_tidy(value))
        if "e" in text.lower():  # no exponent: 1e-05 → 0,00001
            text = format(decimal.Decimal(text), "f")
        return text.replace(".", ",")
    if isinstance(value, dt.date):
        return value.isoformat()
    return neutralise(str(value))


def xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence[Cell]], *, title: str = "PIU") -> bytes:
    """Write a table as XLSX: real numbers and dates, a bold frozen header with filters, no formulas."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = re.sub(r"[\[\]:*?/\\]", " ", title)[:31] or "PIU"
    sheet.append([_xlsx_text(sheet, h) for h in headers])
    widths = [len(h) for h in headers]
    for row in rows:
        sheet.append([_xlsx_text(sheet, c) if isinstance(c, str) else c for c in row])
        for i, c in enumerate(row):
            if c is not None:
                widths[i] = max(widths[i], min(60, len(str(c))))
    for column in sheet.iter_cols(min_row=2):
        for cell in column:
            if isinstance(cell.value, dt.date):
                cell.number_format = "DD/MM/YYYY"
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = max(8, width + 2)
    sheet.freeze_panes = "A2"
    if headers:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{sheet.max_row}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_text(sheet: Any, value: str) -> XlsxCell:
    """A cell typed as text: never a formula, shown as typed (no apostrophe)."""
    text = keep_apostrophes(ILLEGAL_CHARACTERS_RE.sub("", value)[:XLSX_MAX_TEXT])
    cell = XlsxCell(sheet, value=text)
    cell.data_type = "s"  # openpyxl takes a string starting with "=" for a formula: force the type
    if text[:1] in FORMULA_TRIGGERS:
        cell.quotePrefix = True  # and the spreadsheet keeps it text when someone edits the cell
    return cell


def export_rows(rt: RecordType, records: Iterable[Any], fmt: str, *, lang: str = "fr") -> bytes:
    """Return the records as CSV or XLSX bytes (`fmt` is "csv" or "xlsx")."""
    headers, rows = export_table(rt, records, lang=lang)
    if fmt == "xlsx":
        return xlsx_bytes(headers, rows, title=str(rt.label_plural))
    return csv_bytes(headers, rows)
