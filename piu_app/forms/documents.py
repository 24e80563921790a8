"""Attachment upload form and the form that links two records."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField
from wtforms.validators import Length


class UploadForm(FlaskForm):
    file = FileField(_l("Fichier"), validators=[FileRequired(_l("Choisissez un fichier."))])
    title = StringField(_l("Titre"), validators=[Length(max=200)])
    doc_type = SelectField(_l("Type de document"), choices=[])


class LinkForm(FlaskForm):
    target = SelectField(_l("Fiche"), choices=[])
    role = SelectField(_l("Rôle"), choices=[])
