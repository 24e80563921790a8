"""The workshop's compte-rendu: one function reads it from the database, renderers write it out.

`build(workshop)` returns a plain data structure (`Report`) in the order these reports follow: title,
date and place, context and objectives, the agenda with its speakers, for each board its notes by theme
and by category with their votes (unvoted notes too), the syntheses, the recommendations and
commitments, and the participants (named only with their consent, the others counted by actor group).
The renderers (`markdown`, `docx_bytes`, `notes_csv`, `notes_json`; the printable page is the template
workshops/report.html) only lay that structure out, so every format says the same thing.

Privacy holds here, once for every format: hidden and pending notes are left out; a note names its
author only on a named board and only if that participant consented to be named; an anonymous note
never does (the schema keeps no link to its author anyway). Votes are counts (`vote_count`), never who
voted. The report is available at any time, even before the first note.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..exchange.spreadsheets import csv_bytes
from ..models import (
    Board,
    StickyNote,
    Workshop,
    WorkshopParticipant,
    WorkshopParticipantCount,
    WorkshopSession,
    db,
    utcnow,
)
from . import NotFoundError
from . import vocabularies as vocabulary_service
from . import workshops as workshop_service

FORMATS = dict(workshop_service.FORMATS)
SESSION_KINDS = dict(workshop_service.SESSION_KINDS)
ACTOR_GROUP_VOCABULARY = "barrier_actor_group"
# Characters XML 1.0 (and so DOCX) cannot hold; the inputs refuse them, this guards older or imported rows.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class NoteLine:
    uid: str
    text: str
    category: str
    theme: str
    votes: int
    actor_group: str      # a label, "" when unknown
    author: str           # "" unless a named board and a participant who consented to be named
    typed_by_facilitator: bool
    created_at: str       # ISO 8601, UTC
    group_is_column: bool = False  # the note's actor group is the one its column stands for: said once


@dataclass
class Group:
    """Notes under one heading (a theme, or a category for the notes in no theme)."""

    label: str
    synthesis: str = ""
    notes: list[NoteLine] = field(default_factory=list)
    promoted_kind: str = ""

    @property
    def votes(self) -> int:
        return sum(n.votes for n in self.notes)


@dataclass
class CategoryCount:
    label: str
    notes: int
    votes: int


@dataclass
class BoardReport:
    uid: str
    title: str
    prompt: str
    anonymous: bool
    synthesis: str
    themes: list[Group]                 # each theme with its notes, in the facilitator's order
    unthemed: list[Group]               # notes in no theme, by category
    categories: list[CategoryCount]     # notes and votes per column

    @property
    def note_count(self) -> int:
        return sum(len(g.notes) for g in self.themes + self.unthemed)

    @property
    def vote_count(self) -> int:
        return sum(g.votes for g in self.themes + self.unthemed)


@dataclass
class SessionLine:
    start_time: str
    kind: str
    title: str
    speakers: list[str]
    notes: str


@dataclass
class NamedParticipant:
    name: str
    organisation: str
    actor_group: str
    facilitator: bool


@dataclass
class Report:
    uid: str
    title: str
    date: dt.date | None
    place: str
    territory: str
    format: str
    programme: str
    organisers: list[str]
    themes: list[str]
    context: str
    objective: str
    agenda: list[SessionLine]
    boards: list[BoardReport]
    synthesis: str
    recommendations: str
    commitments: str
    named: list[NamedParticipant]
    counted: list[tuple[str, int]]      # (actor group label, participants not named)
    participant_total: int
    report_version: str
    generated_at: dt.datetime

    @property
    def note_count(self) -> int:
        return sum(b.note_count for b in self.boards)


def get_workshop(uid: str) -> Workshop:
    """Return the live workshop with this uid, or raise NotFoundError."""
    workshop = db.session.scalar(select(Workshop).where(Workshop.uid == uid, Workshop.deleted.is_(False)))
    if workshop is None:
        raise NotFoundError(_("Atelier introuvable."))
    return workshop


def build(workshop: Workshop, *, lang: str = "fr") -> Report:
    """Read the workshop's compte-rendu from the database (hidden and pending notes left out)."""
    labels = vocabulary_service.label_map(lang)
    group_label = _group_labeller(labels)
    sessions = db.session.scalars(
        select(WorkshopSession).where(WorkshopSession.workshop_id == workshop.id, WorkshopSession.deleted.is_(False))
        .options(selectinload(WorkshopSession.speakers)).order_by(WorkshopSession.position, WorkshopSession.id)).all()
    boards = db.session.scalars(
        select(Board).where(Board.workshop_id == workshop.id, Board.deleted.is_(False))
        .options(selectinload(Board.categories), selectinload(Board.note_themes))
        .order_by(Board.position, Board.id)).all()
    participants = db.session.scalars(
        select(WorkshopParticipant).where(WorkshopParticipant.workshop_id == workshop.id)
        .order_by(WorkshopParticipant.id)).all()
    consented = {p.id: p for p in participants if p.consent_named and p.name.strip()}
    notes_by_board: dict[int, list[StickyNote]] = defaultdict(list)
    if boards:
        for note in db.session.scalars(
                select(StickyNote).where(StickyNote.board_id.in_([b.id for b in boards]),
                                         StickyNote.hidden.is_(False), StickyNote.pending.is_(False))
                .order_by(StickyNote.vote_count.desc(), StickyNote.position, StickyNote.id)):
            notes_by_board[note.board_id].append(note)

    named = [NamedParticipant(p.name.strip(), p.organisation_name.strip(), group_label(p.actor_group), p.is_facilitator)
             for p in consented.values()]
    named.sort(key=lambda p: (not p.facilitator, p.name.casefold()))
    counted = Counter(group_label(p.actor_group) or _("Groupe non précisé")
                      for p in participants if p.id not in consented)
    # A workshop of another city: its participants never travel, only their counts by actor group.
    brought = db.session.execute(select(WorkshopParticipantCount.actor_group, WorkshopParticipantCount.participants)
                                 .where(WorkshopParticipantCount.workshop_id == workshop.id)).all()
    for code, count in brought:
        counted[group_label(code) or _("Groupe non précisé")] += count
    return Report(
        uid=workshop.uid, title=workshop.title, date=workshop.date,
        place=workshop.place.name if workshop.place else "",
        territory=workshop.territory.name if workshop.territory else "",
        format=str(FORMATS.get(workshop.format, workshop.format)), programme=workshop.programme,
        organisers=[o.name for o in workshop.organisers if not o.deleted],
        themes=[t.label(lang) for t in workshop.themes],
        context=workshop.context, objective=workshop.objective,
        agenda=[SessionLine(s.start_time, str(SESSION_KINDS.get(s.kind, s.kind)), s.title,
                            [p.name for p in s.speakers if not p.deleted], s.notes) for s in sessions],
        boards=[_board(b, notes_by_board[b.id], consented, group_label) for b in boards],
        synthesis=workshop.synthesis, recommendations=workshop.recommendations, commitments=workshop.commitments,
        named=named, counted=sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])),
        participant_total=len(participants) + sum(count for _code, count in brought), report_version=workshop.report_version,
        generated_at=utcnow().replace(microsecond=0),
    )


def _group_labeller(labels: dict[tuple[str, str], str]) -> Any:
    def label(code: str) -> str:
        return labels.get((ACTOR_GROUP_VOCABULARY, code), code) if code else ""
    return label


def _board(board: Board, notes: list[StickyNote], consented: dict[int, WorkshopParticipant], group_label: Any) -> BoardReport:
    categories = {c.id: c for c in board.categories}
    themes = {t.id: Group(t.label, t.synthesis, promoted_kind=t.promoted_kind) for t in board.note_themes}
    unthemed: dict[int | None, Group] = {c.id: Group(c.label) for c in board.categories}
    counts: dict[int | None, list[int]] = {c.id: [0, 0] for c in board.categories}
    for note in notes:
        category = categories.get(note.category_id) if note.category_id else None
        theme = themes.get(note.theme_id) if note.theme_id else None
        author = ""
        if not board.anonymous and note.author_participant_id in consented:
            author = consented[note.author_participant_id].name.strip()
        line = NoteLine(uid=note.uid, text=note.text, category=category.label if category else "",
                        theme=theme.label if theme else "", votes=note.vote_count or 0,
                        actor_group=group_label(note.author_actor_group), author=author,
                        typed_by_facilitator=note.typed_by_facilitator,
                        created_at=note.created_at.replace(microsecond=0).isoformat() if note.created_at else "",
                        group_is_column=bool(category and category.maps_to
                                             and category.maps_to == note.author_actor_group))
        key = category.id if category else None
        if theme is not None:
            theme.notes.append(line)
        else:
            unthemed.setdefault(key, Group(_("Sans catégorie"))).notes.append(line)
        tally = counts.setdefault(key, [0, 0])
        tally[0] += 1
        tally[1] += line.votes
    return BoardReport(
        uid=board.uid, title=board.title, prompt=board.prompt, anonymous=board.anonymous, synthesis=board.synthesis,
        themes=list(themes.values()),
        unthemed=[g for g in unthemed.values() if g.notes],
        categories=[CategoryCount(categories[k].label if k in categories else _("Sans catégorie"), n, v)
                    for k, (n, v) in counts.items() if k in categories or n],
    )


# --------------------------------------------------------------------------- renderers

def date_text(report: Report) -> str:
    return format_date(report.date, "long") if report.date else ""


def where_and_when(report: Report) -> str:
    return " · ".join(x for x in (date_text(report), report.place, report.territory, report.format) if x)


def filename(report: Report, extension: str) -> str:
    """A file name for a download: the date and the title's plain letters."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", report.title.encode("ascii", "ignore").decode()).strip("-")[:60] or "atelier"
    day = report.date.isoformat() if report.date else ""
    return f"{_('compte-rendu')}-{day + '-' if day else ''}{stem}.{extension}"


def note_votes_text(votes: int) -> str:
    return ngettext("%(num)d vote", "%(num)d votes", votes) if votes else _("aucun vote")


def note_meta(note: NoteLine, *, with_category: bool) -> str:
    """What follows a note's text: its column, who wrote it (only if allowed), its votes."""
    parts = [note.category] if with_category and note.category else []
    if note.author:
        parts.append(note.author)
    elif note.actor_group and not note.group_is_column:
        parts.append(note.actor_group)
    parts.append(note_votes_text(note.votes))
    return " · ".join(parts)


def participant_line(p: NamedParticipant) -> str:
    text = p.name + (f" ({p.organisation})" if p.organisation else "")
    return text + (f" — {_('animation')}" if p.facilitator else "")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}<>()#+\-.!|~])")


def _md(text: str) -> str:
    """Escape text for Markdown so that a note cannot become a link, a heading or HTML."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _md_block(text: str) -> list[str]:
    """A multi-line text (a synthesis) as escaped Markdown paragraphs."""
    return [_md(line) for line in text.strip().splitlines() if line.strip()] if text.strip() else []


def markdown(report: Report) -> str:
    """Write the report as Markdown (every user text escaped)."""
    out = [f"# {_md(report.title)}", ""]
    if where_and_when(report):
        out += [f"*{_md(where_and_when(report))}*", ""]
    if report.organisers:
        out += [f"**{_('Organisateurs')}** : {_md(', '.join(report.organisers))}", ""]
    for heading, text in ((_("Contexte"), report.context), (_("Objectifs"), report.objective)):
        if text.strip():
            out += [f"## {heading}", "", *_paragraphs(_md_block(text))]
    if report.agenda:
        out += [f"## {_('Programme')}", ""]
        for s in report.agenda:
            line = f"- {_md(s.start_time) + ' — ' if s.start_time else ''}**{_md(s.title)}** ({s.kind})"
            if s.speakers:
                line += f" : {_md(', '.join(s.speakers))}"
            out.append(line)
        out.append("")
    for board in report.boards:
        out += [f"## {_md(board.title)}", ""]
        if board.prompt.strip():
            out += [f"> {_md(board.prompt)}", ""]
        out += [_("%(notes)d notes, %(votes)d votes.", notes=board.note_count, votes=board.vote_count), ""]
        if board.categories:
            out += [f"| {_('Catégorie')} | {_('Notes')} | {_('Votes')} |", "|---|---:|---:|"]
            out += [f"| {_md(c.label)} | {c.notes} | {c.votes} |" for c in board.categories]
            out.append("")
        for group in board.themes:
            out += [f"### {_('Thème')} : {_md(group.label)} ({note_votes_text(group.votes)})", ""]
            out += _paragraphs(_md_block(group.synthesis))
            out += [f"- {_md(n.text)} — {_md(note_meta(n, with_category=True))}" for n in group.notes] + [""]
        for group in board.unthemed:
            out += [f"### {_('Sans thème')} — {_md(group.label)}", ""]
            out += [f"- {_md(n.text)} — {_md(note_meta(n, with_category=False))}" for n in group.notes] + [""]
        if board.synthesis.strip():
            out += [f"### {_('Synthèse du tableau')}", "", *_paragraphs(_md_block(board.synthesis))]
    for heading, text in ((_("Synthèse de l'atelier"), report.synthesis), (_("Recommandations"), report.recommendations),
                          (_("Engagements"), report.commitments)):
        if text.strip():
            out += [f"## {heading}", "", *_paragraphs(_md_block(text))]
    out += [f"## {_('Participants')}", ""]
    out += [f"- {_md(participant_line(p))}" for p in report.named]
    out += [f"- {_md(label)} : {n}" for label, n in report.counted]
    out += ["", _("%(n)d participants en tout.", n=report.participant_total), ""]
    return "\n".join(out)


def _paragraphs(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        out += [line, ""]
    return out


def _x(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def docx_bytes(report: Report) -> bytes:
    """Write the report as a Word document (python-docx: opens in Word and LibreOffice)."""
    import docx  # imported here: only this download needs it

    document = docx.Document()
    document.core_properties.title = _x(report.title)[:250]
    document.add_heading(_x(report.title), level=0)
    if where_and_when(report):
        document.add_paragraph(_x(where_and_when(report))).runs[0].italic = True
    if report.organisers:
        _labelled(document, _("Organisateurs"), ", ".join(report.organisers))
    for heading, text in ((_("Contexte"), report.context), (_("Objectifs"), report.objective)):
        _section(document, heading, text)
    if report.agenda:
        document.add_heading(_("Programme"), level=1)
        for s in report.agenda:
            p = document.add_paragraph(style="List Bullet")
            if s.start_time:
                p.add_run(_x(s.start_time) + " — ")
            p.add_run(_x(s.title)).bold = True
            p.add_run(f" ({s.kind})" + (" : " + _x(", ".join(s.speakers)) if s.speakers else ""))
    for board in report.boards:
        document.add_heading(_x(board.title), level=1)
        if board.prompt.strip():
            document.add_paragraph(_x(board.prompt), style="Quote")
        document.add_paragraph(_("%(notes)d notes, %(votes)d votes.", notes=board.note_count, votes=board.vote_count))
        if board.categories:
            table = document.add_table(rows=1, cols=3)
            table.style = "Table Grid"
            for cell, text in zip(table.rows[0].cells, (_("Catégorie"), _("Notes"), _("Votes")), strict=True):
                cell.text = text
            for c in board.categories:
                row = table.add_row().cells
                row[0].text, row[1].text, row[2].text = _x(c.label), str(c.notes), str(c.votes)
        for group in board.themes:
            document.add_heading(_x(f"{_('Thème')} : {group.label} ({note_votes_text(group.votes)})"), level=2)
            for line in group.synthesis.strip().splitlines():
                if line.strip():
                    document.add_paragraph(_x(line))
            for n in group.notes:
                _note(document, n, with_category=True)
        for group in board.unthemed:
            document.add_heading(_x(f"{_('Sans thème')} — {group.label}"), level=2)
            for n in group.notes:
                _note(document, n, with_category=False)
        if board.synthesis.strip():
            _section(document, _("Synthèse du tableau"), board.synthesis, level=2)
    for heading, text in ((_("Synthèse de l'atelier"), report.synthesis), (_("Recommandations"), report.recommendations),
                          (_("Engagements"), report.commitments)):
        _section(document, heading, text)
    document.add_heading(_("Participants"), level=1)
    for p in report.named:
        document.add_paragraph(_x(participant_line(p)), style="List Bullet")
    for label, n in report.counted:
        document.add_paragraph(_x(f"{label} : {n}"), style="List Bullet")
    document.add_paragraph(_("%(n)d participants en tout.", n=report.participant_total))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _labelled(document: Any, label: str, text: str) -> None:
    p = document.add_paragraph()
    p.add_run(label + " : ").bold = True
    p.add_run(_x(text))


def _section(document: Any, heading: str, text: str, *, level: int = 1) -> None:
    if not text.strip():
        return
    document.add_heading(heading, level=level)
    for line in text.strip().splitlines():
        if line.strip():
            document.add_paragraph(_x(line))


def _note(document: Any, note: NoteLine, *, with_category: bool) -> None:
    p = document.add_paragraph(style="List Bullet")
    p.add_run(_x(note.text))
    p.add_run(" — " + _x(note_meta(note, with_category=with_category))).italic = True


NOTE_COLUMNS = ("board", "category", "theme", "text", "votes", "actor_group", "author", "typed_by_facilitator",
                "created_at", "uid")


def _note_rows(report: Report) -> list[tuple[BoardReport, NoteLine]]:
    return [(b, n) for b in report.boards for g in b.themes + b.unthemed for n in g.notes]


def notes_csv(report: Report) -> bytes:
    """The notes and their vote counts as CSV for French Excel (no cell can run as a formula)."""
    headers = [_("Tableau"), _("Catégorie"), _("Thème"), _("Note"), _("Votes"), _("Groupe d'acteurs"), _("Auteur"),
               _("Saisie par l'animation"), _("Créée le (UTC)"), _("Identifiant")]
    rows = [(b.title, n.category, n.theme, n.text, n.votes, n.actor_group, n.author, n.typed_by_facilitator,
             n.created_at, n.uid) for b, n in _note_rows(report)]
    return csv_bytes(headers, rows)


def notes_json(report: Report) -> bytes:
    """The whole report as JSON: the workshop, its boards with their notes and vote counts, participants."""
    data = asdict(report)
    data["date"] = report.date.isoformat() if report.date else None
    data["generated_at"] = report.generated_at.isoformat() + "Z"
    data["counted"] = [{"actor_group": label, "count": n} for label, n in report.counted]
    for board, raw in zip(report.boards, data["boards"], strict=True):
        raw["note_count"], raw["vote_count"] = board.note_count, board.vote_count
        for group, raw_group in zip(board.themes + board.unthemed, raw["themes"] + raw["unthemed"], strict=True):
            raw_group["votes"] = group.votes
    return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")
