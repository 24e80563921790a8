"""Forms of the online-board import: upload the CSV export, then confirm the preview."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired

from .base import PiuForm


class BoardImportForm(PiuForm):
    export = FileField(_l("Export CSV du tableau en ligne (Klaxoon, Miro, Framemo…)"),
                       validators=[FileRequired(_l("Choisissez un fichier."))])


class ConfirmForm(PiuForm):
    """Only the CSRF token: the file is the one kept at the preview."""
