"""Forms of the exchange pages: export a bundle, upload one to import."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, RadioField

from .base import PiuForm


class ExportForm(PiuForm):
    level = RadioField(_l("Ce qui part"), default="network", choices=[
        ("network", _l("Réseau : les fiches « Réseau » et « Public » (pour les villes du réseau)")),
        ("public", _l("Public : les fiches « Public » seulement (données ouvertes, Licence Ouverte 2.0)")),
    ])
    include_documents = BooleanField(_l("Joindre les fichiers des pièces jointes partagées"))


class ImportForm(PiuForm):
    bundle = FileField(_l("Paquet d'échange (.zip)"), validators=[FileRequired(_l("Choisissez un fichier."))])
