"""The city this instance belongs to, and its first set-up."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

from ..database import fold
from ..exchange import signing
from ..models import InstanceSettings, Territory, User, db
from . import ConflictError, InvalidInputError, NotFoundError

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"  # an instance code; also the shape of a record's origin
_CODE = re.compile(CODE_PATTERN)


def current() -> InstanceSettings | None:
    """Return the city this instance belongs to, or None before the set-up."""
    return db.session.scalars(db.select(InstanceSettings).limit(1)).first()


def instance_code() -> str:
    settings = current()
    return settings.instance_code if settings else ""


# Two-letter codes in CLDR's list of territories that name no country (the European Union, the
# eurozone, the United Nations, outlying Oceania, pseudo-locales, unknown region).
_NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"}


@functools.cache
def _countries() -> dict[str, str]:
    """Folded country name (French and English, from CLDR via Babel) or code -> ISO 3166-1 alpha-2 code."""
    from babel import Locale

    found: dict[str, str] = {}
    for lang in ("en", "fr"):
        for code, name in Locale(lang).territories.items():
            if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES:
                found[" ".join(fold(name).replace("’", "'").split())] = code
                found[fold(code)] = code
    return found


def country_code_of(text: str) -> str | None:
    """Return the ISO 3166-1 alpha-2 code of a country given by its code (« SN ») or its French or
    English name (« Sénégal », « senegal »), or None if it names no country."""
    key = " ".join(fold(text).replace("’", "'").split())
    return _countries().get(key)


def configure(*, city_name: str, country_code: str, instance_code: str) -> InstanceSettings:
    """Name the city of this instance (once: the code becomes the origin of every record made here).

    The country is given by its ISO 3166-1 code or its name, and kept as its two-letter code."""
    city_name = city_name.strip()
    typed_country = country_code.strip()
    country_code = country_code_of(typed_country) or ""
    code = instance_code.strip().lower()
    errors = {}
    if not city_name:
        errors["city_name"] = _("Indiquez le nom de la ville.")
    if not country_code:
        errors["country_code"] = _("Pays inconnu : « %(typed)s ». Indiquez son nom (par exemple Sénégal) ou son "
                                   "code ISO à deux lettres (SN).", typed=typed_country[:60])
    if not _CODE.match(code):
        errors["instance_code"] = _("Le code d'instance comporte 3 à 64 caractères : lettres minuscules, "
                                    "chiffres et tirets, par exemple « port-sable ».")
    if errors:
        raise InvalidInputError(_("Le formulaire contient des erreurs."), field_errors=errors)
    settings = current()
    if settings is None:
        settings = InstanceSettings(city_name=city_name, country_code=country_code, instance_code=code)
        db.session.add(settings)
        # The key that signs the city's bundles (a file of the data directory, never in the database);
        # on a full or read-only disk it is made at the first export instead
        try:
            signing.instance_key(Path(current_app.config["PIU_DATA_DIR"]))
        except OSError:
            logging.getLogger("piu").exception("signing key not made at set-up")
    else:
        # The code is the origin of the records already made here: it never changes once set.
        settings.city_name, settings.country_code = city_name, country_code
    return settings


def first_setup(*, city_name: str, country: str, instance_code: str, admin_username: str,
                admin_password: str) -> User:
    """Install a register: name its city and create its first administrator (refused once an account
    exists; the city can then be renamed by an administrator, never its code)."""
    from . import users as user_service
    from . import vocabularies

    if user_service.count() > 0:
        raise ConflictError(_("Ce registre est déjà installé (il a des comptes)."))
    settings = current()
    if settings is not None and settings.instance_code != instance_code.strip().lower():
        raise ConflictError(_("Ce dossier de données appartient déjà à l'instance « %(code)s » (par exemple la "
                              "démonstration) : son code ne change pas. Utilisez un dossier de données vide pour "
                              "un nouveau registre.", code=settings.instance_code))
    configured = configure(city_name=city_name, country_code=country, instance_code=instance_code)
    db.session.flush()
    vocabularies.seed(configured.instance_code)
    return user_service.create(username=admin_username, password=admin_password, role="admin")


def set_home_territory(territory_uid: str) -> InstanceSettings:
    """Name the city's own territory, to which peers' territories are compared (empty: guess it)."""
    settings = current()
    if settings is None:
        raise NotFoundError(_("L'instance n'est pas encore configurée."))
    uid = territory_uid.strip()
    if uid and db.session.scalars(db.select(Territory.id).filter_by(uid=uid, deleted=False)).first() is None:
        raise InvalidInputError(_("Ce territoire n'existe pas ou a été supprimé."),
                                field_errors={"home_territory": _("Choisissez un territoire de la liste.")})
    settings.home_territory_uid = uid
    return settings
