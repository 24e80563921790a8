"""Attachment upload form and the form that links two records."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField, StringField

from .base import PiuForm, length


class UploadForm(PiuForm):
    file = FileField(_l("Fichier"), validators=[FileRequired(_l("Choisissez un fichier."))])
    title = StringField(_l("Titre"), validators=[length(200)])
    doc_type = SelectField(_l("Type de document"), choices=[])


class LinkForm(PiuForm):
    """Link a record to another, found by its typed name (`q`) or, on the screen of choices, its uid
    (`target`; "new" creates it). No select of every organisation: unusable at 100 000."""

    q = StringField(_l("Nom"), validators=[length(200)])
    target = HiddenField(validators=[length(40)])
    role = SelectField(_l("Rôle"), choices=[])


class CitationForm(PiuForm):
    """Cite a record, found by its typed name (`q`) or, on the screen of choices, its uid (`target`;
    "new" creates it as a draft). Made with the citation's name as prefix."""

    q = StringField(_l("Nom"), validators=[length(200)])
    target = HiddenField(validators=[length(40)])
