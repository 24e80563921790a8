"""Text cells that a spreadsheet must not run as a formula, and the way back.

Excel and LibreOffice run a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
as a formula (CSV injection). In the CSV of a list export such text is written with a leading
apostrophe, which both show as plain text. The escape is reversible: text that already starts with
apostrophes followed by a trigger gets one more, so that reading back removes exactly one and every
value survives a round trip unchanged.

An XLSX cell says its own type: a text cell is never run, so it needs no apostrophe
(`keep_apostrophes` only protects text that `restore` would otherwise change). Exchange bundles
(format 1.1) escape nothing: they carry data as it was entered.
"""

from __future__ import annotations

import re

FORMULA_TRIGGERS = "=+-@\t\r"
_NEEDS_ESCAPE = re.compile(r"'*[=+\-@\t\r]")
_ESCAPED = re.compile(r"'+[=+\-@\t\r]")


def neutralise(text: str) -> str:
    """Return `text` safe to put in a spreadsheet cell (a leading apostrophe if it could run)."""
    return "'" + text if _NEEDS_ESCAPE.match(text) else text


def restore(text: str) -> str:
    """Undo `neutralise`: drop the apostrophe it added."""
    return text[1:] if _ESCAPED.match(text) else text


def keep_apostrophes(text: str) -> str:
    """Return `text` for a cell typed as text: unchanged, but with one more apostrophe when it
    already starts with apostrophes and a trigger, so that `restore` gives it back as it was."""
    return "'" + text if _ESCAPED.match(text) else text
