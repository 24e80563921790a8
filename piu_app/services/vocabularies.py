"""Controlled vocabularies and themes: seeding, labels, and an administrator's edits."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func

from ..models import Theme, VocabularyTerm, db
from ..vocabulary_seed import THEMES, VOCABULARIES
from . import InvalidInputError, NotFoundError


def seed(origin: str = "") -> int:
    """Add the seeded terms and themes that are missing (edits and additions are kept); return how many."""
    added = 0
    existing = {(t.vocabulary, t.code) for t in db.session.scalars(db.select(VocabularyTerm))}
    for vocabulary, terms in VOCABULARIES.items():
        for position, (code, label_fr, label_en) in enumerate(terms):
            if (vocabulary, code) not in existing:
                db.session.add(VocabularyTerm(vocabulary=vocabulary, code=code, label_fr=label_fr,
                                              label_en=label_en, position=position * 10, seeded=True))
                added += 1
    theme_codes = set(db.session.scalars(db.select(Theme.code)))
    for position, (code, label_fr, label_en) in enumerate(THEMES):
        if code not in theme_codes:
            db.session.add(Theme(code=code, label_fr=label_fr, label_en=label_en, position=position * 10,
                                 origin_instance=origin, visibility="public"))
            added += 1
    return added


def terms(vocabulary: str, *, include_inactive: bool = False) -> list[VocabularyTerm]:
    query = db.select(VocabularyTerm).filter_by(vocabulary=vocabulary)
    if not include_inactive:
        query = query.filter_by(active=True)
    return list(db.session.scalars(query.order_by(VocabularyTerm.position, VocabularyTerm.code)))


def choices(vocabulary: str, lang: str) -> list[tuple[str, str]]:
    """Return (code, label) of the active terms of a vocabulary, for a select box."""
    return [(t.code, t.label(lang)) for t in terms(vocabulary)]


def label_map(lang: str) -> dict[tuple[str, str], str]:
    """Return {(vocabulary, code): label} for the whole vocabulary table (a few hundred rows)."""
    return {(t.vocabulary, t.code): t.label(lang) for t in db.session.scalars(db.select(VocabularyTerm))}


def is_valid(vocabulary: str, code: str) -> bool:
    return db.session.scalar(db.select(func.count()).select_from(VocabularyTerm).filter_by(
        vocabulary=vocabulary, code=code, active=True)) > 0


def vocabulary_names() -> list[str]:
    return sorted(VOCABULARIES)


def themes() -> list[Theme]:
    return list(db.session.scalars(db.select(Theme).filter_by(deleted=False).order_by(Theme.position, Theme.code)))


def save_term(vocabulary: str, *, code: str, label_fr: str, label_en: str, active: bool = True) -> VocabularyTerm:
    """Add a term to a vocabulary, or relabel / (de)activate an existing one."""
    if vocabulary not in VOCABULARIES:
        raise NotFoundError(_("Vocabulaire inconnu."))
    code, label_fr = code.strip(), label_fr.strip()
    if not code or not label_fr:
        raise InvalidInputError(_("Le code et le libellé français sont obligatoires."))
    term = db.session.scalars(db.select(VocabularyTerm).filter_by(vocabulary=vocabulary, code=code)).first()
    if term is None:
        last = db.session.scalar(db.select(func.max(VocabularyTerm.position)).filter_by(vocabulary=vocabulary)) or 0
        term = VocabularyTerm(vocabulary=vocabulary, code=code, position=last + 10)
        db.session.add(term)
    term.label_fr, term.label_en, term.active = label_fr, label_en.strip(), active
    return term


def save_theme(*, code: str, label_fr: str, label_en: str, origin: str) -> Theme:
    code, label_fr = code.strip(), label_fr.strip()
    if not code or not label_fr:
        raise InvalidInputError(_("Le code et le libellé français sont obligatoires."))
    theme = db.session.scalars(db.select(Theme).filter_by(code=code)).first()
    if theme is None:
        last = db.session.scalar(db.select(func.max(Theme.position))) or 0
        theme = Theme(code=code, position=last + 10, origin_instance=origin, visibility="public")
        db.session.add(theme)
    else:
        theme.version += 1
    theme.label_fr, theme.label_en = label_fr, label_en.strip()
    return theme
