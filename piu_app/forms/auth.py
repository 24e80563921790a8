"""Log-in and first set-up forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo

from ..services.users import MAX_PASSWORD_LENGTH
from .base import PiuForm, length


class LoginForm(PiuForm):
    username = StringField(_l("Identifiant"), validators=[DataRequired()])
    password = PasswordField(_l("Mot de passe"), validators=[DataRequired()])


class OwnPasswordForm(PiuForm):
    current_password = PasswordField(_l("Mot de passe actuel"), validators=[DataRequired()])
    new_password = PasswordField(_l("Nouveau mot de passe (10 caractères au moins)"),
                                 validators=[DataRequired(), length(MAX_PASSWORD_LENGTH, 10)])
    new_password_confirm = PasswordField(_l("Confirmez le nouveau mot de passe"),
                                         validators=[EqualTo("new_password", message=_l("Les mots de passe diffèrent."))])


class SetupForm(PiuForm):
    city_name = StringField(_l("Nom de la ville"), validators=[DataRequired(), length(200)])
    # A name or a code, kept as the ISO 3166-1 code (services.instance.country_code_of); never cut while typed
    country_code = StringField(_l("Pays"), validators=[DataRequired(), length(100)],
                               description=_l("Son nom ou son code ISO à deux lettres, par exemple Sénégal ou SN."))
    instance_code = StringField(_l("Code de l'instance"), validators=[DataRequired(), length(64, 3)],
                                description=_l("Court et définitif : il signe l'origine de chaque fiche créée ici "
                                               "(par exemple « port-sable »)."))
    admin_username = StringField(_l("Identifiant de l'administrateur"), validators=[DataRequired(), length(80)])
    admin_password = PasswordField(_l("Mot de passe"), validators=[DataRequired(), length(MAX_PASSWORD_LENGTH, 10)],
                                   description=_l("10 caractères au moins."))
    admin_password_confirm = PasswordField(_l("Confirmez le mot de passe"),
                                           validators=[EqualTo("admin_password", message=_l("Les mots de passe diffèrent."))])
