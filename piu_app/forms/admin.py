"""Forms of the administration pages: accounts, vocabularies, themes, the instance's settings."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired

from ..services.users import MAX_PASSWORD_LENGTH
from .base import PiuForm, length

ROLE_CHOICES = [("reader", _l("Lecteur")), ("editor", _l("Éditeur")), ("admin", _l("Administrateur"))]


class NewUserForm(PiuForm):
    username = StringField(_l("Identifiant"), validators=[DataRequired(), length(80)])
    display_name = StringField(_l("Nom affiché"), validators=[length(200)])
    role = SelectField(_l("Rôle"), choices=ROLE_CHOICES)
    password = PasswordField(_l("Mot de passe (10 caractères au moins)"),
                             validators=[DataRequired(), length(MAX_PASSWORD_LENGTH, 10)])


class UserRoleForm(PiuForm):
    role = SelectField(_l("Rôle"), choices=ROLE_CHOICES)
    active = BooleanField(_l("Compte actif"))


class PasswordForm(PiuForm):
    password = PasswordField(_l("Nouveau mot de passe"), validators=[DataRequired(), length(MAX_PASSWORD_LENGTH, 10)])


class TermForm(PiuForm):
    code = StringField(_l("Code"), validators=[DataRequired(), length(60)])
    label_fr = StringField(_l("Libellé (français)"), validators=[DataRequired(), length(200)])
    label_en = StringField(_l("Libellé (anglais)"), validators=[length(200)])
    active = BooleanField(_l("Actif"), default=True)


class InstanceForm(PiuForm):
    home_territory = SelectField(
        _l("Territoire de la ville"), choices=[], validate_choice=False,
        description=_l("Les expérimentations des villes pairs sont classées selon leur ressemblance avec ce "
                       "territoire. Sans choix, c'est le territoire le plus utilisé par vos expérimentations."))
