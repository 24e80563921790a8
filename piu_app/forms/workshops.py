"""Forms of the workshop pages (shape only: the rules are in services/workshops.py)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Optional

from ..registry import TEXTAREA_MAX_LENGTH
from ..services import workshops as workshop_service
from .base import PiuForm, length
from .records import VISIBILITY_CHOICES, MultiCheckboxField


class WorkshopForm(PiuForm):
    title = StringField(_l("Titre"), validators=[DataRequired(_l("À renseigner.")), length(200)])
    date = DateField(_l("Date"), validators=[Optional()])
    place = SelectField(_l("Lieu"), choices=[], default="")
    territory = SelectField(_l("Territoire"), choices=[], default="")
    format = SelectField(_l("Format"), choices=list(workshop_service.FORMATS))
    programme = StringField(_l("Programme"), validators=[length(40)],
                            description=_l("Par exemple : PIU, AIMF, local."))
    organisers = TextAreaField(_l("Organisateurs"), validators=[length(2000)],
                               description=_l("Les organisations du registre, une par ligne (nom ou sigle)."))
    objective = TextAreaField(_l("Objectifs"), validators=[length(TEXTAREA_MAX_LENGTH)])
    context = TextAreaField(_l("Contexte"), validators=[length(TEXTAREA_MAX_LENGTH)])
    themes = MultiCheckboxField(_l("Thématiques"), choices=[])
    visibility = SelectField(_l("Niveau de partage"), choices=VISIBILITY_CHOICES)
