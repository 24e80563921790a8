"""The demonstration's workshop: a barriers workshop Port-Sable held, with its agenda, its board of
sticky notes grouped into themes, votes, syntheses and participants, so that a first run shows the
facilitator's pages and the written report (compte-rendu) before any room is opened.

Loaded through services.workshops like a facilitator's own work (the same checks), once: a workshop
with the demonstration's uid is never loaded twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from .models import Barrier, Workshop, db

TITLE = "Atelier PIU — Freins à l'innovation urbaine à Port-Sable"

WORKSHOP = {
    "title": TITLE,
    "date": dt.date(2026, 10, 15),
    "format": "in_person",
    "programme": "PIU",
    "organisers": "Ville de Port-Sable\nSable Innov' Hub",
    "objective": "Identifier ce qui freine l'innovation urbaine à Port-Sable, vu par les acheteurs, les porteurs, "
                 "les facilitateurs et le territoire, et en tirer des engagements pour 2027.",
    "context": "Deuxième atelier de la Place de l'Innovation Urbaine du Littoral-Sud, à la Maison de l'innovation : "
               "des start-ups de l'incubateur ont témoigné de leurs expérimentations avec la Ville avant le "
               "travail en post-it.",
    "themes": ["economy_jobs", "public_services"],
    "visibility": "network",
}

SESSIONS = [
    {"kind": "testimonies", "title": "Témoignages de start-ups", "start_time": "09:30",
     "speakers": ["Ibrahim Traoré", "Ousmane Diop"],
     "notes": "Lumisol (éclairage solaire) et Hydrocarte (cartographie des réseaux) racontent leur premier "
              "marché avec la Ville."},
    {"kind": "board", "title": "Atelier post-it : les freins", "start_time": "10:30", "speakers": [], "notes": ""},
    {"kind": "plenary", "title": "Restitution et engagements", "start_time": "11:45", "speakers": ["Fatou Ndiaye"],
     "notes": ""},
]

# (column index in the "Freins" template, text, votes, theme)
NOTES = [
    (0, "Les procédures de marché public font peur aux services pour acheter une innovation", 6, "procedures"),
    (0, "On ne sait pas quelle procédure utiliser pour une expérimentation de moins de 40 000 €", 4, "procedures"),
    (0, "Pas de budget de fonctionnement prévu après le pilote", 5, "money"),
    (1, "Les délais de paiement de la Ville mettent notre trésorerie à sec", 7, "money"),
    (1, "Trop de temps perdu à répondre à des marchés publics inadaptés aux start-ups", 3, "procedures"),
    (1, "Difficile de trouver le bon interlocuteur dans les services", 2, "silos"),
    (2, "Les incubateurs et les agences ne se parlent pas : accompagnement morcelé", 2, "silos"),
    (2, "Il manque une ingénierie pour écrire un cahier des charges fonctionnel", 3, None),
    (3, "Les services travaillent en silos : personne ne porte le projet de bout en bout", 5, "silos"),
    (3, "Les cycles de décision de la Ville sont trop lents pour une start-up", 4, "money"),
    (4, "Pas de terrain d'expérimentation mis à disposition par la Ville", 3, None),
    (4, "Les habitants ne sont pas associés, le dispositif est rejeté ou dégradé", 1, None),
]

THEMES = {
    "procedures": ("Procédures d'achat mal connues",
                   "Les acheteurs comme les porteurs ne connaissent pas les procédures adaptées à l'innovation "
                   "(marché sans publicité sous le seuil, partenariat d'innovation) : chacun les juge trop lourdes."),
    "money": ("Financement et trésorerie",
              "Les délais de paiement et l'absence de budget après le pilote mettent les jeunes entreprises en "
              "danger ; les décisions arrivent trop tard pour elles."),
    "silos": ("Services cloisonnés, interlocuteurs introuvables",
              "Personne ne porte le projet de bout en bout, ni côté Ville ni côté accompagnement."),
}
# A theme the facilitator turned into a barrier of the catalogue (an existing one, as the page proposes).
PROMOTED = {"money": "Délais de paiement incompatibles avec la trésorerie d'une start-up"}

PARTICIPANTS = [
    ("Fatou Ndiaye", "Ville de Port-Sable", "buyers", True),
    ("Mamadou Sarr", "Ville de Port-Sable", "buyers", True),
    ("Ibrahim Traoré", "Lumisol", "carriers", True),
    ("Ousmane Diop", "Hydrocarte", "carriers", False),
    ("Aminata Sow", "Laboratoire Littoral, Eau et Climat", "facilitators", False),
    ("Participante du quartier des Pêcheurs", "", "territory", False),
]

SYNTHESIS = ("De manière globale, les participants ont fait ressortir, côté acheteurs, la méconnaissance des "
             "procédures adaptées à l'innovation et, côté porteurs, la trésorerie mise à mal par les délais de "
             "paiement. Tous décrivent des services cloisonnés où personne ne porte le projet de bout en bout.")
RECOMMENDATIONS = ("- Former les acheteurs de la Ville aux procédures d'achat innovant.\n"
                   "- Désigner un référent innovation par projet, du besoin au déploiement.\n"
                   "- Payer les expérimentations en 30 jours au plus.")
COMMITMENTS = ("La Ville s'est engagée à publier d'ici mars 2027 un guide de l'achat innovant et à ouvrir "
               "deux terrains d'expérimentation ; Sable Innov' Hub organisera une rencontre acheteurs-porteurs "
               "par trimestre.")


def load(uid: str) -> int:
    """Load the workshop under `uid` unless it is there; return the number of workshops added (0 or 1)."""
    from .services import workshops as ws

    if db.session.scalar(select(Workshop.id).where(Workshop.uid == uid)) is not None:
        return 0
    workshop = ws.create_workshop(WORKSHOP)
    workshop.uid = uid
    for row in SESSIONS:
        ws.add_session(workshop, {**row, "speakers": "\n".join(row["speakers"])}, username="demo")
    board = ws.create_board(workshop, "barriers")
    board.session = workshop.sessions[1] if len(workshop.sessions) > 1 else None
    ws.change_state(board, "open")
    categories = list(board.categories)
    notes = {}
    for column, text, votes, theme in NOTES:
        note = ws.add_note(board, text=text, category_uid=categories[column].uid,
                           actor_group=categories[column].maps_to)
        note.typed_by_facilitator = False  # posted from the phones, in the room
        if votes:
            ws.add_votes(board, note.uid, votes)
        notes.setdefault(theme, []).append(note.uid)
    for key, (label, synthesis) in THEMES.items():
        theme = ws.create_theme(board, label, notes[key])
        ws.save_theme_synthesis(board, theme.uid, synthesis)
        if key in PROMOTED:
            barrier = db.session.scalars(select(Barrier).where(Barrier.label == PROMOTED[key],
                                                               Barrier.deleted.is_(False))).first()
            if barrier is not None:
                ws.promote(board, kind="barrier", theme_uid=theme.uid, existing_uid=barrier.uid, username="demo")
    ws.save_board_synthesis(board, "Trois familles de freins, par ordre de votes : le financement et la "
                                   "trésorerie, les procédures d'achat, le cloisonnement des services.")
    ws.change_state(board, "reveal")
    ws.change_state(board, "close")
    for name, organisation, group, consent in PARTICIPANTS:
        ws.add_participant(workshop, name=name, organisation=organisation, actor_group=group, consent=consent,
                           source="list")
    ws.save_workshop_synthesis(workshop, synthesis=SYNTHESIS, recommendations=RECOMMENDATIONS,
                               commitments=COMMITMENTS)
    workshop.report_version = "def"
    return 1
