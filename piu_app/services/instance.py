"""The city this instance belongs to, and its first set-up."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

from ..exchange import signing
from ..models import InstanceSettings, Territory, db
from . import InvalidInputError, NotFoundError

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"  # an instance code; also the shape of a record's origin
_CODE = re.compile(CODE_PATTERN)


def current() -> InstanceSettings | None:
    """Return the city this instance belongs to, or None before the set-up."""
    return db.session.scalars(db.select(InstanceSettings).limit(1)).first()


def instance_code() -> str:
    settings = current()
    return settings.instance_code if settings else ""


def configure(*, city_name: str, country_code: str, instance_code: str) -> InstanceSettings:
    """Name the city of this instance (once: the code becomes the origin of every record made here)."""
    city_name = city_name.strip()
    country_code = country_code.strip().upper()
    code = instance_code.strip().lower()
    errors = {}
    if not city_name:
        errors["city_name"] = _("Indiquez le nom de la ville.")
    if not re.fullmatch(r"[A-Z]{2}", country_code):
        errors["country_code"] = _("Le code pays comporte deux lettres (ISO 3166-1), par exemple SN ou FR.")
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
