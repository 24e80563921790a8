"""Log-in and first set-up forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    username = StringField(_l("Identifiant"), validators=[DataRequired()])
    password = PasswordField(_l("Mot de passe"), validators=[DataRequired()])


class OwnPasswordForm(FlaskForm):
    current_password = PasswordField(_l("Mot de passe actuel"), validators=[DataRequired()])
    new_password = PasswordField(_l("Nouveau mot de passe (10 caractères au moins)"),
                                 validators=[DataRequired(), Length(min=10)])
    new_password_confirm = PasswordField(_l("Confirmez le nouveau mot de passe"),
                                         validators=[EqualTo("new_password", message=_l("Les mots de passe diffèrent."))])


class SetupForm(FlaskForm):
    city_name = StringField(_l("Nom de la ville"), validators=[DataRequired(), Length(max=200)])
    country_code = StringField(_l("Pays (code ISO à deux lettres)"), validators=[DataRequired(), Length(min=2, max=2)])
    instance_code = StringField(_l("Code de l'instance"), validators=[DataRequired(), Length(min=3, max=64)],
                                description=_l("Court et définitif : il signe l'origine de chaque fiche créée ici "
                                               "(par exemple « port-sable »)."))
    admin_username = StringField(_l("Identifiant de l'administrateur"), validators=[DataRequired(), Length(max=80)])
    admin_password = PasswordField(_l("Mot de passe"), validators=[DataRequired(), Length(min=10)])
    admin_password_confirm = PasswordField(_l("Confirmez le mot de passe"),
                                           validators=[EqualTo("admin_password", message=_l("Les mots de passe diffèrent."))])
