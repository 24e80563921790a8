"""Attachment upload form and the form that links two records."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField

from .base import PiuForm, length


class UploadForm(PiuForm):
    file = FileField(_l("Fichier"), validators=[FileRequired(_l("Choisissez un fichier."))])
    title = StringField(_l("Titre"), validators=[length(200)])
    doc_type = SelectField(_l("Type de document"), choices=[])


class LinkForm(PiuForm):
    target = SelectField(_l("Fiche"), choices=[])
    role = SelectField(_l("Rôle"), choices=[])
