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
    """Return {(vocabulary, code): label} for the whole vocabulary table (a few hundred rows, read as plain
    rows: every page reads it, and making objects of them cost three times as much)."""
    rows = db.session.execute(db.select(VocabularyTerm.vocabulary, VocabularyTerm.code,
                                        VocabularyTerm.label_fr, VocabularyTerm.label_en))
    return {(vocabulary, code): (label_en if lang == "en" else "") or label_fr
            for vocabulary, code, label_fr, label_en in rows}


def is_valid(vocabulary: str, code: str) -> bool:
    return db.session.scalar(db.select(func.count()).select_from(VocabularyTerm).filter_by(
        vocabulary=vocabulary, code=code, active=True)) > 0


def vocabulary_names() -> list[str]:
    return sorted(VOCABULARIES)


def vocabulary_title(name: str) -> str:
    """The human name of a vocabulary (its internal code is the key), in the user's language."""
    titles = {
        "themes": _("Thématiques"),
        "territory_level": _("Niveaux de territoire"),
        "territory_feature": _("Caractéristiques des territoires"),
        "org_type": _("Types de structure"),
        "actor_family": _("Familles d'acteurs"),
        "id_type": _("Types d'identifiant d'une organisation"),
        "size_band": _("Tailles d'organisation"),
        "role_kind": _("Rôles des personnes"),
        "place_type": _("Types de lieu"),
        "innovation_kind": _("Types d'innovation"),
        "deployment_stage": _("Stades de déploiement"),
        "carrier_role": _("Rôles des porteurs et partenaires"),
        "need_status": _("Statuts des besoins"),
        "need_match_role": _("Liens entre un besoin et une solution"),
        "experiment_stage": _("Étapes d'une expérimentation"),
        "experiment_status": _("Statuts d'une expérimentation"),
        "outcome": _("Résultats d'une expérimentation"),
        "lesson_person_role": _("Rôles des personnes d'un retour d'expérience"),
        "procurement_route": _("Procédures d'achat"),
        "procurement_technique": _("Techniques d'achat"),
        "aid_type": _("Types d'aide financière"),
        "aid_source": _("Sources des aides financières"),
        "funding_status": _("Statuts des financements"),
        "reviewer_type": _("Types d'évaluateur"),
        "review_criterion": _("Critères d'évaluation"),
        "support_lever": _("Leviers d'accompagnement"),
        "barrier_actor_group": _("Groupes d'acteurs des freins"),
        "barrier_nature": _("Natures des freins"),
        "doc_type": _("Types de document joint"),
        "currency": _("Devises"),
    }
    return titles.get(name, name)


def _sort_key(text: str) -> str:
    """Alphabetical order as a reader expects it: accents and case ignored (É with E)."""
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFD", text.casefold()) if not unicodedata.combining(c))


def vocabulary_overview() -> list[tuple[str, str, int]]:
    """(code, human name, number of active terms) of every vocabulary, themes included, by human name."""
    counts = dict(db.session.execute(db.select(VocabularyTerm.vocabulary, func.count()).filter_by(active=True)
                                     .group_by(VocabularyTerm.vocabulary)).all())
    counts["themes"] = db.session.scalar(db.select(func.count()).select_from(Theme).filter_by(deleted=False)) or 0
    rows = [(name, vocabulary_title(name), counts.get(name, 0)) for name in ["themes", *VOCABULARIES]]
    return sorted(rows, key=lambda row: _sort_key(row[1]))


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
