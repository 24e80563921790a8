"""Translations: French is the source language, English is read from `translations/en/*.po`.

The catalogues are compiled in memory when first needed, so no generated `.mo` file is kept in
the repository and a frozen build only has to carry the `.po` text.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

from babel import support
from babel.messages import mofile, pofile
from flask import current_app, has_request_context, session
from flask_babel import Babel, Domain, get_locale

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
LOCALES = ("fr", "en")
_lock = threading.Lock()
_compiled: dict[str, support.Translations | support.NullTranslations] = {}


def load_catalogue(locale: str) -> support.Translations | support.NullTranslations:
    """Return the compiled catalogue for a locale (French, the source language, needs none)."""
    with _lock:
        if locale not in _compiled:
            po_path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
            if locale == "fr" or not po_path.is_file():
                _compiled[locale] = support.NullTranslations()
            else:
                with po_path.open("rb") as fh:
                    catalog = pofile.read_po(fh, locale=locale)
                buffer = io.BytesIO()
                mofile.write_mo(buffer, catalog, use_fuzzy=False)
                buffer.seek(0)
                _compiled[locale] = support.Translations(buffer)
        return _compiled[locale]


class PoDomain(Domain):
    def get_translations(self):  # type: ignore[override]
        locale = get_locale()
        return load_catalogue(str(locale) if locale else "fr")


class PoBabel(Babel):
    @property
    def domain_instance(self) -> Domain:  # type: ignore[override]
        return _DOMAIN


_DOMAIN = PoDomain()


def select_locale() -> str:
    """Pick the language: the user's explicit choice, else the configured default (French).

    The browser's Accept-Language is ignored on purpose: shared laptops and phones in a room often
    carry an English system language while the city works in French.
    """
    chosen = session.get("lang") if has_request_context() else None
    if chosen in LOCALES:
        return chosen
    return current_app.config.get("DEFAULT_LOCALE", "fr")


def current_lang() -> str:
    locale = get_locale()
    return str(locale.language) if locale else "fr"
