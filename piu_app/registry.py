"""What each record type of the register is made of, described once.

Every concept of the register (innovations, experiments, lessons…) lives the same life: a list
with filters, a detail page with its links, a form, a history, a tombstone, a search entry. One
`RecordType` per concept describes its fields; the generic list, form, detail, history and search
code read these descriptions, and each concept's own modules keep only what truly differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from . import models as m

FieldKind = str  # text, textarea, int, float, date, bool, url, email, vocab, vocab_list, ref, themes, scores
TEXT_KINDS = {"text", "textarea", "url", "email"}
# Longest text a multi-line field (a Text column) takes: about eight pages. Forms, the services, the
# spreadsheet and bundle imports all refuse longer texts (never truncate them); bundles declare it as
# the column's maxLength.
TEXTAREA_MAX_LENGTH = 20_000


@dataclass(frozen=True)
class Field:
    name: str
    label: Any
    kind: FieldKind = "text"
    vocab: str | None = None        # vocab, vocab_list, scores: the vocabulary of allowed codes
    ref: str | None = None          # ref: key of the target record type
    required: bool = False
    in_list: bool = False           # shown as a column on the list page
    filter: bool = False            # offered as a filter on the list page
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    help: Any = None
    searchable: bool | None = None  # default: text kinds are indexed for full-text search
    personal: bool = False          # contact data: never written in the history, never exported without consent
    pattern: str | None = None      # text: the shape every non-empty value must have (checked in bundles)

    @property
    def column(self) -> str:
        """Return the model attribute that stores the field (refs store `<name>_id`)."""
        return f"{self.name}_id" if self.kind == "ref" else self.name

    @property
    def indexed(self) -> bool:
        return self.kind in TEXT_KINDS if self.searchable is None else self.searchable


@dataclass(frozen=True)
class Link:
    """A many-to-many link with a role, edited from the owner's detail page (e.g. carriers)."""

    name: str
    label: Any
    reverse_label: Any              # heading on the target's detail page
    model: type
    owner_attr: str                 # relationship on the owner that lists link rows
    owner_fk: str                   # column of the link row pointing to the owner
    target: str                     # key of the target record type
    target_attr: str                # relationship on the link row to the target
    target_fk: str
    role_vocab: str


@dataclass(frozen=True)
class Citation:
    """A many-to-many link without a role, chosen by name on the owner's page (a lesson cites barriers)."""

    name: str                       # relationship on the owner that lists the targets
    label: Any
    reverse_label: Any              # heading on the target's detail page (« Cité par »)
    table: Any                      # the association table
    owner_fk: str                   # its column pointing to the owner
    target: str                     # key of the target record type
    target_fk: str                  # its column pointing to the target


@dataclass(frozen=True)
class RecordType:
    key: str                        # URL prefix, blueprint name, bundle table name
    model: type
    label: Any
    label_plural: Any
    fields: tuple[Field, ...]
    title_attr: str = "name"
    order_by: tuple[str, ...] = ("name",)  # attributes folded into `sort_key`, the list order
    links: tuple[Link, ...] = ()
    citations: tuple[Citation, ...] = ()
    default_visibility: str = "network"
    extra_filters: tuple[str, ...] = ()   # named filters implemented in services.records
    new_label: Any = None

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def list_fields(self) -> list[Field]:
        return [f for f in self.fields if f.in_list]

    @property
    def filter_fields(self) -> list[Field]:
        return [f for f in self.fields if f.filter]

    @property
    def has_themes(self) -> bool:
        return any(f.kind == "themes" for f in self.fields)

    def title_of(self, record: Any) -> str:
        return str(getattr(record, self.title_attr) or "")


def _f(name: str, label: Any, kind: FieldKind = "text", **kw: Any) -> Field:
    if kind == "textarea":
        kw.setdefault("max_length", TEXTAREA_MAX_LENGTH)
    return Field(name, label, kind, **kw)


def _ref(name: str, label: Any, target: str, **kw: Any) -> Field:
    return Field(name, label, "ref", ref=target, **kw)


def _vocab(name: str, label: Any, vocab: str, **kw: Any) -> Field:
    return Field(name, label, "vocab", vocab=vocab, **kw)


_THEMES = Field("themes", _l("Thématiques"), "themes", filter=True)
_CURRENCY = Field("currency", _l("Devise"), "vocab", vocab="currency")

TERRITORIES = RecordType(
    "territories", m.Territory, _l("Territoire"), _l("Territoires"), new_label=_l("Nouveau territoire"),
    fields=(
        _f("name", _l("Nom"), required=True, in_list=True, max_length=200),
        _vocab("level", _l("Niveau"), "territory_level", required=True, in_list=True, filter=True),
        _f("country_code", _l("Pays (code ISO 3166-1)"), max_length=2, in_list=True,
           help=_l("Deux lettres, par exemple SN, FR, CI.")),
        _f("subdivision_code", _l("Subdivision (code ISO 3166-2)"), max_length=10),
        _f("cog_code", _l("Code officiel géographique (France)"), max_length=10),
        _f("population", _l("Population"), "int", min_value=0, in_list=True),
        _f("population_year", _l("Année de la population"), "int", min_value=1800, max_value=2100),
        _f("density_fr", _l("Grille de densité (1 à 7)"), "int", min_value=1, max_value=7),
        _f("degurba_l1", _l("Degré d'urbanisation (1 à 3)"), "int", min_value=1, max_value=3),
        Field("features", _l("Caractéristiques"), "vocab_list", vocab="territory_feature"),
        _f("lat", _l("Latitude"), "float", min_value=-90, max_value=90),
        _f("lon", _l("Longitude"), "float", min_value=-180, max_value=180),
        _ref("parent", _l("Territoire parent"), "territories", filter=True),
    ),
)

ORGANISATIONS = RecordType(
    "organisations", m.Organisation, _l("Organisation"), _l("Organisations"), new_label=_l("Nouvelle organisation"),
    fields=(
        _f("name", _l("Nom"), required=True, in_list=True, max_length=200),
        _f("acronym", _l("Sigle"), max_length=40),
        _vocab("org_type", _l("Type de structure"), "org_type", required=True, in_list=True, filter=True),
        _vocab("actor_family", _l("Famille d'acteurs"), "actor_family", filter=True),
        _f("is_startup", _l("Start-up"), "bool", filter=True, in_list=True),
        _vocab("id_type", _l("Type d'identifiant"), "id_type"),
        _f("id_value", _l("Identifiant"), max_length=40),
        _ref("territory", _l("Siège (territoire)"), "territories", filter=True, in_list=True),
        _f("website", _l("Site web"), "url", max_length=300),
        _f("description_short", _l("Présentation courte"), "textarea", max_length=280),
        _f("description", _l("Description"), "textarea"),
        _f("created_year", _l("Année de création"), "int", min_value=1800, max_value=2100),
        _vocab("size_band", _l("Taille"), "size_band"),
    ),
)

PERSONS = RecordType(
    "persons", m.Person, _l("Personne"), _l("Personnes"), new_label=_l("Nouvelle personne"),
    default_visibility="private", order_by=("family_name", "given_name"),
    fields=(
        _f("given_name", _l("Prénom"), max_length=100, in_list=True),
        _f("family_name", _l("Nom de famille"), required=True, max_length=100, in_list=True),
        _f("job_title", _l("Fonction"), max_length=200, in_list=True),
        _ref("organisation", _l("Organisation"), "organisations", filter=True, in_list=True),
        _vocab("role_kind", _l("Rôle"), "role_kind", filter=True),
        _f("email", _l("Courriel"), "email", max_length=200, searchable=False, personal=True),
        _f("phone", _l("Téléphone"), max_length=40, searchable=False, personal=True),
        _f("contact_consent", _l("Consentement au partage des coordonnées"), "bool",
           help=_l("Sans consentement enregistré, courriel et téléphone ne quittent jamais ce poste.")),
        _f("consent_date", _l("Date du consentement"), "date"),
        _f("consent_scope", _l("Portée du consentement"), max_length=300),
        _f("public_bio", _l("Présentation publique"), "textarea"),
    ),
)

PLACES = RecordType(
    "places", m.Place, _l("Lieu"), _l("Lieux"), new_label=_l("Nouveau lieu"),
    fields=(
        _f("name", _l("Nom"), required=True, in_list=True, max_length=200),
        _vocab("place_type", _l("Type de lieu"), "place_type", required=True, in_list=True, filter=True),
        _ref("operator", _l("Gestionnaire"), "organisations"),
        _ref("territory", _l("Territoire"), "territories", filter=True, in_list=True),
        _f("address", _l("Adresse"), max_length=300),
        _f("postcode", _l("Code postal"), max_length=20),
        _f("lat", _l("Latitude"), "float", min_value=-90, max_value=90),
        _f("lon", _l("Longitude"), "float", min_value=-180, max_value=180),
        _f("opening_hours", _l("Horaires (syntaxe OpenStreetMap)"), max_length=200),
        _f("equipment", _l("Équipements"), "textarea"),
        _f("description_short", _l("Présentation courte"), "textarea", max_length=280),
        _f("website", _l("Site web"), "url", max_length=300),
    ),
)

INNOVATIONS = RecordType(
    "innovations", m.Innovation, _l("Innovation"), _l("Innovations"), new_label=_l("Nouvelle innovation"),
    extra_filters=("territory",),
    fields=(
        _f("name", _l("Nom"), required=True, in_list=True, max_length=200),
        _f("tagline", _l("Description en une ligne"), max_length=140, in_list=True),
        _f("description", _l("Description"), "textarea"),
        _vocab("innovation_kind", _l("Type d'innovation"), "innovation_kind", filter=True),
        _THEMES,
        _f("trl", _l("Maturité technologique (TRL 1 à 9)"), "int", min_value=1, max_value=9),
        _vocab("deployment_stage", _l("Stade de déploiement"), "deployment_stage", filter=True, in_list=True),
        _f("price_model", _l("Modèle de prix"), "textarea"),
        _f("price_indication", _l("Indication de prix"), "float", min_value=0),
        _CURRENCY,
        _f("open_source", _l("Logiciel libre / open source"), "bool"),
        _f("data_hosting", _l("Hébergement des données"), "textarea"),
        _f("website", _l("Site web"), "url", max_length=300),
    ),
    links=(
        Link("carriers", _l("Porteurs et partenaires"), _l("Innovations portées"), m.InnovationOrganisation,
             "carrier_links", "innovation_id", "organisations", "organisation", "organisation_id", "carrier_role"),
    ),
)

NEEDS = RecordType(
    "needs", m.Need, _l("Besoin"), _l("Besoins"), new_label=_l("Nouveau besoin"),
    title_attr="title", order_by=("title",),
    fields=(
        _f("title", _l("Intitulé"), required=True, in_list=True, max_length=200),
        _ref("buyer", _l("Acheteur"), "organisations", in_list=True),
        _f("problem_statement", _l("Problème à résoudre (sans présupposer la solution)"), "textarea"),
        _THEMES,
        _ref("territory", _l("Territoire"), "territories", filter=True),
        _f("constraints", _l("Contraintes"), "textarea"),
        _f("budget_band", _l("Ordre de grandeur du budget"), max_length=100),
        _f("desired_start", _l("Démarrage souhaité"), "date"),
        _vocab("status", _l("Statut"), "need_status", required=True, filter=True, in_list=True),
    ),
    links=(
        Link("candidates", _l("Solutions candidates"), _l("Besoins auxquels elle répond"), m.NeedInnovation,
             "candidate_links", "need_id", "innovations", "innovation", "innovation_id", "need_match_role"),
    ),
)

EXPERIMENTS = RecordType(
    "experiments", m.Experiment, _l("Expérimentation"), _l("Expérimentations"),
    new_label=_l("Nouvelle expérimentation"), title_attr="title", order_by=("title",),
    fields=(
        _f("title", _l("Intitulé"), required=True, in_list=True, max_length=200),
        _ref("innovation", _l("Innovation testée"), "innovations", required=True, in_list=True),
        _ref("need", _l("Besoin auquel elle répond"), "needs"),
        _ref("buyer", _l("Acheteur / commanditaire"), "organisations"),
        _ref("territory", _l("Territoire"), "territories", filter=True, in_list=True),
        _ref("place", _l("Lieu"), "places"),
        _f("start_date", _l("Début"), "date", in_list=True),
        _f("end_date", _l("Fin"), "date"),
        _f("planned_end_date", _l("Fin prévue"), "date"),
        _vocab("stage", _l("Étape"), "experiment_stage", filter=True),
        _vocab("status", _l("Statut"), "experiment_status", required=True, filter=True, in_list=True),
        _vocab("outcome", _l("Résultat"), "outcome", filter=True),
        _f("budget_total", _l("Budget total"), "float", min_value=0),
        _CURRENCY,
        _f("budget_public_share", _l("Part publique du budget (%)"), "float", min_value=0, max_value=100),
        _f("human_resources_fte", _l("Moyens humains (ETP)"), "float", min_value=0),
        _f("legal_framework", _l("Cadre juridique"), "textarea"),
        _f("derogation", _l("Dérogation"), "bool"),
        _f("kpis", _l("Indicateurs (un par ligne : indicateur, base, cible, résultat)"), "textarea"),
    ),
)

LESSONS = RecordType(
    "lessons", m.Lesson, _l("Retour d'expérience"), _l("Retours d'expérience"),
    new_label=_l("Nouveau retour d'expérience"), title_attr="title", order_by=("title",),
    fields=(
        _f("title", _l("Intitulé"), required=True, in_list=True, max_length=200),
        _ref("experiment", _l("Expérimentation"), "experiments", in_list=True),
        _ref("author", _l("Auteur·e"), "persons"),
        _f("date", _l("Date"), "date", in_list=True),
        _f("context", _l("Contexte"), "textarea"),
        _f("what_worked", _l("Ce qui a marché (facteurs de réussite)"), "textarea"),
        _f("what_did_not", _l("Ce qui n'a pas marché (obstacles)"), "textarea"),
        _f("conditions_for_replication", _l("Conditions pour reproduire"), "textarea"),
        _f("advice", _l("Conseils à un pair"), "textarea"),
        _f("results_impacts", _l("Résultats et impacts"), "textarea"),
        _f("costs_actual", _l("Coûts réels"), "textarea"),
    ),
    links=(
        Link("people", _l("Les personnes derrière ce retour"), _l("Retours d'expérience"), m.LessonPerson,
             "people_links", "lesson_id", "persons", "person", "person_id", "lesson_person_role"),
    ),
    citations=(
        Citation("barriers", _l("Freins rencontrés"), _l("Cité par"), m.lesson_barriers, "lesson_id", "barriers",
                 "barrier_id"),
    ),
)

BARRIERS = RecordType(
    "barriers", m.Barrier, _l("Frein"), _l("Freins"), new_label=_l("Nouveau frein"),
    title_attr="label", order_by=("label",),
    fields=(
        _f("label", _l("Intitulé"), required=True, in_list=True, max_length=200),
        _f("description", _l("Description"), "textarea"),
        _vocab("actor_group", _l("Groupe d'acteurs"), "barrier_actor_group", filter=True, in_list=True),
        _vocab("nature", _l("Nature"), "barrier_nature", filter=True, in_list=True),
        _THEMES,
        _f("levers", _l("Leviers connus (contournements, solutions)"), "textarea"),
    ),
)

PROCUREMENTS = RecordType(
    "procurements", m.Procurement, _l("Montage contractuel"), _l("Montages contractuels"),
    new_label=_l("Nouveau montage contractuel"), title_attr="title", order_by=("title",),
    fields=(
        _f("title", _l("Objet"), required=True, in_list=True, max_length=200),
        _ref("experiment", _l("Expérimentation"), "experiments"),
        _ref("buyer", _l("Acheteur"), "organisations", in_list=True),
        _ref("supplier", _l("Titulaire"), "organisations"),
        _vocab("route", _l("Procédure"), "procurement_route", required=True, filter=True, in_list=True),
        _vocab("technique", _l("Technique d'achat"), "procurement_technique"),
        _f("legal_framework", _l("Cadre juridique"), max_length=200,
           help=_l("FR-CCP pour le Code de la commande publique français, ou le code national.")),
        _f("local_procedure_label", _l("Nom local de la procédure"), max_length=200),
        _f("estimated_value", _l("Montant estimé (HT)"), "float", min_value=0),
        _f("awarded_value", _l("Montant attribué (HT)"), "float", min_value=0),
        _CURRENCY,
        _f("publication_date", _l("Date de publication"), "date"),
        _f("notification_date", _l("Date de notification"), "date"),
        _f("duration_months", _l("Durée (mois)"), "int", min_value=0),
        _f("is_innovative", _l("Marché innovant"), "bool", filter=True),
        _f("cpv_code", _l("Code CPV"), max_length=10),
        _f("award_criteria", _l("Critères d'attribution et pondération"), "textarea"),
        _f("offers_received", _l("Offres reçues"), "int", min_value=0),
        _f("sourcing_done", _l("Sourçage réalisé"), "bool"),
        _f("sourcing_description", _l("Description du sourçage"), "textarea"),
        _f("ip_clauses", _l("Clauses de propriété intellectuelle"), "textarea"),
        _f("data_clauses", _l("Clauses sur les données (propriété, réversibilité, hébergement)"), "textarea"),
        _f("lessons_learned", _l("Enseignements"), "textarea"),
    ),
)

FUNDING_AIDS = RecordType(
    "funding_aids", m.FundingAid, _l("Aide financière"), _l("Aides financières"),
    new_label=_l("Nouvelle aide"),
    fields=(
        _f("name", _l("Nom"), required=True, in_list=True, max_length=200),
        _f("description", _l("Description"), "textarea"),
        _ref("financer", _l("Financeur"), "organisations", in_list=True),
        _f("perimeter", _l("Périmètre"), max_length=200),
        _vocab("aid_type", _l("Type d'aide"), "aid_type", filter=True, in_list=True),
        _vocab("aid_source", _l("Source"), "aid_source", filter=True),
        _THEMES,
        _f("start_date", _l("Ouverture"), "date"),
        _f("submission_deadline", _l("Date limite de dépôt"), "date", in_list=True),
        _f("is_call_for_project", _l("Appel à projets"), "bool"),
        _f("rate_min", _l("Taux minimum (%)"), "float", min_value=0, max_value=100),
        _f("rate_max", _l("Taux maximum (%)"), "float", min_value=0, max_value=100),
        _f("max_amount", _l("Montant maximum"), "float", min_value=0),
        _CURRENCY,
        _f("eligibility", _l("Éligibilité"), "textarea"),
        _f("origin_url", _l("Page d'origine"), "url", max_length=300),
        _f("application_url", _l("Page de dépôt"), "url", max_length=300),
    ),
)

EXPERIMENT_FUNDINGS = RecordType(
    "experiment_fundings", m.ExperimentFunding, _l("Financement obtenu"), _l("Financements obtenus"),
    new_label=_l("Nouveau financement"), order_by=("date",),
    fields=(
        _ref("experiment", _l("Expérimentation"), "experiments", required=True, in_list=True),
        _ref("funding_aid", _l("Aide"), "funding_aids", required=True, in_list=True),
        _f("amount_requested", _l("Montant demandé"), "float", min_value=0),
        _f("amount_obtained", _l("Montant obtenu"), "float", min_value=0, in_list=True),
        _CURRENCY,
        _vocab("status", _l("Statut"), "funding_status", required=True, filter=True, in_list=True),
        _f("date", _l("Date"), "date"),
    ),
)

REVIEWS = RecordType(
    "reviews", m.Review, _l("Avis"), _l("Avis"), new_label=_l("Nouvel avis"), order_by=("date",),
    fields=(
        _ref("innovation", _l("Innovation évaluée"), "innovations", required=True, in_list=True),
        _ref("experiment", _l("Expérimentation (pour un avis vérifié)"), "experiments"),
        _ref("reviewer_person", _l("Évaluateur·rice"), "persons"),
        _ref("reviewer_org", _l("Organisation évaluatrice"), "organisations", in_list=True),
        _vocab("reviewer_type", _l("Type d'évaluateur"), "reviewer_type", required=True, filter=True, in_list=True),
        _f("overall_comment", _l("Commentaire général"), "textarea"),
        _f("would_recommend", _l("Recommanderait cette solution"), "bool", in_list=True),
        _f("date", _l("Date"), "date", in_list=True),
        Field("scores", _l("Grille d'évaluation (1 = faible, 5 = excellent)"), "scores", vocab="review_criterion",
              min_value=1, max_value=5),
    ),
)

SUPPORT_PROGRAMMES = RecordType(
    "support_programmes", m.SupportProgramme, _l("Dispositif d'accompagnement"),
    _l("Dispositifs d'accompagnement"), new_label=_l("Nouveau dispositif"),
    fields=(
        _f("name", _l("Nom"), required=True, in_list=True, max_length=200),
        _f("description", _l("Description"), "textarea"),
        _vocab("lever", _l("Levier"), "support_lever", required=True, filter=True, in_list=True),
        _ref("operator", _l("Opérateur"), "organisations", in_list=True),
        _ref("territory", _l("Territoire"), "territories", filter=True),
        _ref("place", _l("Lieu"), "places"),
        _f("start_date", _l("Début"), "date"),
        _f("end_date", _l("Fin"), "date"),
        _THEMES,
        _f("results", _l("Résultats"), "textarea"),
        _ref("contact_person", _l("Personne à contacter"), "persons"),
    ),
)

RECORD_TYPES: dict[str, RecordType] = {rt.key: rt for rt in (
    INNOVATIONS, ORGANISATIONS, EXPERIMENTS, LESSONS, BARRIERS, PROCUREMENTS, FUNDING_AIDS, EXPERIMENT_FUNDINGS,
    REVIEWS, NEEDS, PLACES, SUPPORT_PROGRAMMES, PERSONS, TERRITORIES,
)}

# Workshops, their sequences and their boards are shared records that travel in bundles, but they
# have their own pages (views/workshops.py), not the register's generic list, form, menu and search:
# they are described here for the bundle only, and kept out of RECORD_TYPES on purpose.
_WORKSHOP_FORMATS = "^(" + "|".join(m.workshops.WORKSHOP_FORMATS) + ")$"
_SESSION_KINDS = "^(" + "|".join(m.workshops.SESSION_KINDS) + ")$"
_BOARD_KINDS = "^(" + "|".join(m.workshops.BOARD_KINDS) + ")$"

WORKSHOPS = RecordType(
    "workshops", m.Workshop, _l("Atelier"), _l("Ateliers"), title_attr="title", order_by=("title",),
    fields=(
        _f("title", _l("Titre"), required=True, max_length=200),
        _f("programme", _l("Programme"), max_length=40),
        _f("date", _l("Date"), "date"),
        _ref("place", _l("Lieu"), "places"),
        _ref("territory", _l("Territoire"), "territories"),
        _f("format", _l("Format"), max_length=20, pattern=_WORKSHOP_FORMATS),
        _THEMES,
        _f("objective", _l("Objectif"), "textarea"),
        _f("context", _l("Contexte"), "textarea"),
        _f("synthesis", _l("Synthèse"), "textarea"),
        _f("recommendations", _l("Recommandations"), "textarea"),
        _f("commitments", _l("Engagements"), "textarea"),
        _f("report_version", _l("Version du compte rendu"), max_length=20),
    ),
    citations=(
        Citation("organisers", _l("Organisateurs"), _l("Ateliers organisés"), m.workshop_organisers, "workshop_id",
                 "organisations", "organisation_id"),
    ),
)

WORKSHOP_SESSIONS = RecordType(
    "workshop_sessions", m.WorkshopSession, _l("Séquence d'atelier"), _l("Séquences d'atelier"),
    title_attr="title", order_by=("title",),
    fields=(
        _ref("workshop", _l("Atelier"), "workshops", required=True),
        _f("position", _l("Ordre"), "int", min_value=0, max_value=10_000),
        _f("kind", _l("Type de séquence"), max_length=20, pattern=_SESSION_KINDS),
        _f("title", _l("Titre"), required=True, max_length=200),
        _f("start_time", _l("Heure de début"), max_length=5, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
        _f("notes", _l("Notes"), "textarea"),
    ),
    citations=(
        Citation("speakers", _l("Intervenants"), _l("Intervient dans"), m.workshop_session_speakers, "session_id",
                 "persons", "person_id"),
    ),
)

BOARDS = RecordType(
    "boards", m.Board, _l("Tableau"), _l("Tableaux de post-it"), title_attr="title", order_by=("title",),
    fields=(
        _ref("workshop", _l("Atelier"), "workshops", required=True),
        _ref("session", _l("Séquence"), "workshop_sessions"),
        _f("position", _l("Ordre"), "int", min_value=0, max_value=10_000),
        _f("title", _l("Titre"), required=True, max_length=200),
        _f("prompt", _l("Question posée"), "textarea", max_length=1000),
        _f("board_kind", _l("Type de tableau"), max_length=20, pattern=_BOARD_KINDS),
        _f("anonymous", _l("Anonyme"), "bool"),
        _f("synthesis", _l("Synthèse"), "textarea"),
    ),
)

# Record types that travel in bundles without being register pages (see above).
BUNDLE_ONLY_TYPES: dict[str, RecordType] = {rt.key: rt for rt in (WORKSHOPS, WORKSHOP_SESSIONS, BOARDS)}


@dataclass(frozen=True)
class BackRef:
    """Records of another type that point to a record through one of their ref fields."""

    source: RecordType
    field: Field
    label: Any


@dataclass(frozen=True)
class ReverseLink:
    owner: RecordType
    link: Link


def backrefs_to(target: RecordType) -> list[BackRef]:
    """Return every ref field of every type that points to `target` (drives the detail pages)."""
    found: list[BackRef] = []
    for source in RECORD_TYPES.values():
        refs = [f for f in source.fields if f.kind == "ref" and f.ref == target.key]
        for f in refs:
            label = source.label_plural if len(refs) == 1 else _Joined(source.label_plural, f.label)
            found.append(BackRef(source, f, label))
    return found


@dataclass(frozen=True)
class ReverseCitation:
    owner: RecordType
    citation: Citation


def reverse_citations_to(target: RecordType) -> list[ReverseCitation]:
    return [ReverseCitation(owner, c) for owner in RECORD_TYPES.values() for c in owner.citations
            if c.target == target.key]


def reverse_links_to(target: RecordType) -> list[ReverseLink]:
    return [ReverseLink(owner, link) for owner in RECORD_TYPES.values() for link in owner.links
            if link.target == target.key]


@dataclass(frozen=True)
class _Joined:
    """A heading made of two lazily translated parts, e.g. « Montages contractuels (Titulaire) »."""

    first: Any
    second: Any

    def __str__(self) -> str:
        return f"{self.first} ({self.second})"

