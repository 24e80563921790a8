"""Forms of the administration pages: accounts, vocabularies, themes, the instance's settings."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

ROLE_CHOICES = [("reader", _l("Lecteur")), ("editor", _l("Éditeur")), ("admin", _l("Administrateur"))]


class NewUserForm(FlaskForm):
    username = StringField(_l("Identifiant"), validators=[DataRequired(), Length(max=80)])
    display_name = StringField(_l("Nom affiché"), validators=[Length(max=200)])
    role = SelectField(_l("Rôle"), choices=ROLE_CHOICES)
    password = PasswordField(_l("Mot de passe (10 caractères au moins)"), validators=[DataRequired(), Length(min=10)])


class UserRoleForm(FlaskForm):
    role = SelectField(_l("Rôle"), choices=ROLE_CHOICES)
    active = BooleanField(_l("Compte actif"))


class PasswordForm(FlaskForm):
    password = PasswordField(_l("Nouveau mot de passe"), validators=[DataRequired(), Length(min=10)])


class TermForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=60)])
    label_fr = StringField(_l("Libellé (français)"), validators=[DataRequired(), Length(max=200)])
    label_en = StringField(_l("Libellé (anglais)"), validators=[Length(max=200)])
    active = BooleanField(_l("Actif"), default=True)


class InstanceForm(FlaskForm):
    home_territory = SelectField(
        _l("Territoire de la ville"), choices=[], validate_choice=False,
        description=_l("Les expérimentations des villes pairs sont classées selon leur ressemblance avec ce "
                       "territoire. Sans choix, c'est le territoire le plus utilisé par vos expérimentations."))
