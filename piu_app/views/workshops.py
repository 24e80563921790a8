"""The facilitator's pages: workshops, their agenda, participants and boards (thin: form → service →
flash → redirect). Readers read every page; editors prepare and facilitate.

Actions on a board page post small plain forms (no JavaScript needed); static/js/board.js only adds
drag and drop, which submits the same forms.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..extensions import db
from ..forms.workshops import WorkshopForm
from ..i18n import current_lang
from ..registry import PLACES, TERRITORIES
from ..services import DomainError, vocabularies
from ..services import records as record_service
from ..services import workshops as service
from .access import require_role, username

bp = Blueprint("workshops", __name__, url_prefix="/workshops")
MAX_CSV_BYTES = service.MAX_PARTICIPANTS_FILE


def _checked(view: Callable) -> Callable:
    """Commit a successful action; on a refusal, roll back, say why and go back to the page."""
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            response = view(*args, **kwargs)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(_back(kwargs))
        db.session.commit()
        return response
    return wrapper


def _back(kwargs: dict[str, Any], anchor: str = "") -> str:
    if "board_uid" in kwargs:
        url = url_for(".board", uid=kwargs["uid"], board_uid=kwargs["board_uid"])
    elif "uid" in kwargs:
        url = url_for(".detail", uid=kwargs["uid"])
    else:
        url = url_for(".index")
    return url + (f"#{anchor}" if anchor else "")


def _form_choices(form: WorkshopForm) -> None:
    form.place.choices = [("", "—"), *record_service.choices(PLACES)]
    form.territory.choices = [("", "—"), *record_service.choices(TERRITORIES)]
    form.themes.choices = [(t.code, t.label(current_lang())) for t in vocabularies.themes()]


def _values(form: WorkshopForm) -> dict[str, Any]:
    return {name: form[name].data for name in ("title", "date", "place", "territory", "format", "programme",
                                               "organisers", "objective", "context", "themes", "visibility")}


def _form_page(form: WorkshopForm, workshop: Any, status: int = 200) -> Any:
    return render_template("workshops/form.html", form=form, workshop=workshop), status


# --------------------------------------------------------------------------- workshops

@bp.get("/")
@require_role("reader")
def index():
    return render_template("workshops/index.html", workshops=service.list_workshops())


@bp.route("/new", methods=["GET", "POST"])
@require_role("editor")
def new():
    form = WorkshopForm()
    _form_choices(form)
    if request.method == "GET":
        form.visibility.data = "network"
        form.format.data = "in_person"
    if form.validate_on_submit():
        try:
            workshop = service.create_workshop(_values(form))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return _form_page(form, None, 400)
        db.session.commit()
        flash(_("Atelier « %(title)s » créé.", title=workshop.title), "success")
        return redirect(url_for(".detail", uid=workshop.uid))
    return _form_page(form, None, 400 if form.errors else 200)


@bp.route("/<uid>/edit", methods=["GET", "POST"])
@require_role("editor")
def edit(uid: str):
    workshop = service.get_workshop(uid)
    form = WorkshopForm()
    _form_choices(form)
    if request.method == "GET":
        form.title.data, form.date.data, form.format.data = workshop.title, workshop.date, workshop.format
        form.place.data = workshop.place.uid if workshop.place else ""
        form.territory.data = workshop.territory.uid if workshop.territory else ""
        form.programme.data, form.objective.data = workshop.programme, workshop.objective
        form.context.data, form.visibility.data = workshop.context, workshop.visibility
        form.organisers.data = "\n".join(o.name for o in workshop.organisers)
        form.themes.data = [t.code for t in workshop.themes]
    if form.validate_on_submit():
        try:
            service.update_workshop(workshop, _values(form))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return _form_page(form, workshop, 400)
        db.session.commit()
        flash(_("Atelier enregistré."), "success")
        return redirect(url_for(".detail", uid=uid))
    return _form_page(form, workshop, 400 if form.errors else 200)


@bp.get("/<uid>")
@require_role("reader")
def detail(uid: str):
    workshop = service.get_workshop(uid)
    return render_template(
        "workshops/detail.html", workshop=workshop, service=service,
        participants=service.participants(workshop), counts=service.counts_by_actor_group(workshop),
        produced=service.produced(workshop))


@bp.post("/<uid>/synthesis")
@require_role("editor")
@_checked
def synthesis(uid: str):
    service.save_workshop_synthesis(service.get_workshop(uid), synthesis=request.form.get("synthesis"),
                                    recommendations=request.form.get("recommendations"),
                                    commitments=request.form.get("commitments"))
    flash(_("Synthèse enregistrée."), "success")
    return redirect(url_for(".detail", uid=uid, _anchor="synthese"))


# --------------------------------------------------------------------------- agenda

def _session_values() -> dict[str, Any]:
    return {k: request.form.get(k, "") for k in ("kind", "title", "start_time", "notes", "speakers")}


@bp.post("/<uid>/sessions")
@require_role("editor")
@_checked
def add_session(uid: str):
    service.add_session(service.get_workshop(uid), _session_values(), username=username())
    flash(_("Séquence ajoutée."), "success")
    return redirect(url_for(".detail", uid=uid, _anchor="programme"))


@bp.post("/<uid>/sessions/update")
@require_role("editor")
@_checked
def update_session(uid: str):
    workshop = service.get_workshop(uid)
    action = request.form.get("action", "save")
    if action == "delete":
        service.delete_session(workshop, request.form.get("session"))
        flash(_("Séquence retirée du programme."), "success")
    elif action in ("up", "down"):
        service.move_session(workshop, request.form.get("session"), action)
    else:
        service.update_session(workshop, request.form.get("session"), _session_values(), username=username())
        flash(_("Séquence enregistrée."), "success")
    return redirect(url_for(".detail", uid=uid, _anchor="programme"))


# --------------------------------------------------------------------------- participants

@bp.post("/<uid>/participants")
@require_role("editor")
@_checked
def add_participant(uid: str):
    participant = service.add_participant(
        service.get_workshop(uid), name=request.form.get("name"), organisation=request.form.get("organisation"),
        actor_group=request.form.get("actor_group"), consent=request.form.get("consent") == "y")
    flash(_("%(name)s ajouté·e à la liste.", name=participant.name), "success")
    return redirect(url_for(".detail", uid=uid, _anchor="participants"))


@bp.post("/<uid>/participants/import")
@require_role("editor")
@_checked
def import_participants(uid: str):
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise service.InvalidInputError(_("Choisissez un fichier CSV."))
    data = upload.stream.read(MAX_CSV_BYTES + 1)
    result = service.import_participants(service.get_workshop(uid), data)
    flash(_("%(added)d participants ajoutés, %(already)d déjà dans la liste.", added=result.added,
            already=result.already), "success")
    return redirect(url_for(".detail", uid=uid, _anchor="participants"))


@bp.post("/<uid>/participants/update")
@require_role("editor")
@_checked
def update_participant(uid: str):
    """One form for the whole list: each button's name says what, its value whom."""
    workshop = service.get_workshop(uid)
    form = request.form
    if form.get("remove"):
        service.remove_participant(workshop, form["remove"])
        flash(_("Participant retiré de la liste."), "success")
    elif form.get("consent") or form.get("no_consent"):
        service.set_consent(workshop, form.get("consent") or form.get("no_consent"), bool(form.get("consent")))
    else:
        raise service.InvalidInputError(_("Action inconnue."))
    return redirect(url_for(".detail", uid=uid, _anchor="participants"))


# --------------------------------------------------------------------------- boards

@bp.post("/<uid>/boards")
@require_role("editor")
@_checked
def add_board(uid: str):
    board = service.create_board(service.get_workshop(uid), request.form.get("template", ""),
                                 title=request.form.get("title"))
    flash(_("Tableau « %(title)s » créé : réglez ses règles avant de l'ouvrir.", title=board.title), "success")
    return redirect(url_for(".board_settings", uid=uid, board_uid=board.uid))


@bp.get("/<uid>/boards/<board_uid>")
@require_role("reader")
def board(uid: str, board_uid: str):
    workshop = service.get_workshop(uid)
    board = service.get_board(workshop, board_uid)
    view = service.board_view(board)
    return render_template("workshops/board.html", workshop=workshop, board=board, view=view, service=service,
                           suggestions=service.suggestions(view), now=service.utcnow())


@bp.route("/<uid>/boards/<board_uid>/settings", methods=["GET", "POST"])
@require_role("editor")
def board_settings(uid: str, board_uid: str):
    workshop = service.get_workshop(uid)
    board = service.get_board(workshop, board_uid)
    if request.method == "POST":
        form = request.form
        try:
            service.update_board(board, {**form.to_dict(), "anonymous": form.get("anonymous") == "y",
                                         "private_until_reveal": form.get("private_until_reveal") == "y",
                                         "moderated": form.get("moderated") == "y"})
            rows = [(c.uid, form.get(f"label-{c.uid}", c.label), form.get(f"maps-{c.uid}", c.maps_to))
                    for c in list(board.categories)]
            service.update_categories(board, rows, new_label=form.get("new_label", ""),
                                      new_maps_to=form.get("new_maps_to", ""))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return render_template("workshops/board_settings.html", workshop=workshop,
                                   board=service.get_board(workshop, board_uid), service=service), 400
        db.session.commit()
        flash(_("Règles du tableau enregistrées."), "success")
        return redirect(url_for(".board", uid=uid, board_uid=board_uid))
    return render_template("workshops/board_settings.html", workshop=workshop, board=board, service=service)


def _board(uid: str, board_uid: str) -> Any:
    return service.get_board(service.get_workshop(uid), board_uid)


@bp.post("/<uid>/boards/<board_uid>/state")
@require_role("editor")
@_checked
def board_state(uid: str, board_uid: str):
    service.change_state(_board(uid, board_uid), request.form.get("action", ""), minutes=request.form.get("minutes"))
    return redirect(url_for(".board", uid=uid, board_uid=board_uid))


@bp.post("/<uid>/boards/<board_uid>/notes")
@require_role("editor")
@_checked
def add_note(uid: str, board_uid: str):
    service.add_note(_board(uid, board_uid), text=request.form.get("text"),
                     category_uid=request.form.get("category", ""), actor_group=request.form.get("actor_group", ""))
    flash(_("Post-it ajouté."), "success")
    return redirect(url_for(".board", uid=uid, board_uid=board_uid, _anchor="saisie"))


@bp.post("/<uid>/boards/<board_uid>/notes/action")
@require_role("editor")
@_checked
def note_action(uid: str, board_uid: str):
    """One button per note posts here (its name says what, its value which note)."""
    board = _board(uid, board_uid)
    form = request.form
    for action in ("approve", "hide", "unhide"):
        if form.get(action):
            service.moderate(board, form[action], action)
            return redirect(url_for(".board", uid=uid, board_uid=board_uid, _anchor="n-" + form[action]))
    for name, count in (("vote_add", 1), ("vote_remove", -1)):
        if form.get(name):
            service.add_votes(board, form[name], count)
            return redirect(url_for(".board", uid=uid, board_uid=board_uid, _anchor="n-" + form[name]))
    raise service.InvalidInputError(_("Action inconnue."))


@bp.post("/<uid>/boards/<board_uid>/group")
@require_role("editor")
@_checked
def group(uid: str, board_uid: str):
    """The checked notes: moved to a theme (or out of any), or gathered in a new theme."""
    board = _board(uid, board_uid)
    notes = request.form.getlist("notes")
    if request.form.get("action") == "new":
        theme = service.create_theme(board, request.form.get("label"), notes)
        flash(_("Thème « %(label)s » créé.", label=theme.label), "success")
        anchor = "t-" + theme.uid
    else:
        service.move_notes(board, notes, request.form.get("theme", ""))
        anchor = "t-" + request.form["theme"] if request.form.get("theme") else "sans-theme"
    return redirect(url_for(".board", uid=uid, board_uid=board_uid, _anchor=anchor))


@bp.post("/<uid>/boards/<board_uid>/themes")
@require_role("editor")
@_checked
def theme_action(uid: str, board_uid: str):
    board = _board(uid, board_uid)
    form = request.form
    action = form.get("action")
    theme_uid = form.get("theme", "")
    if action == "create":
        theme = service.create_theme(board, form.get("label"))
        theme_uid = theme.uid
    elif action == "rename":
        service.rename_theme(board, theme_uid, form.get("label"))
    elif action == "synthesis":
        service.save_theme_synthesis(board, theme_uid, form.get("synthesis"))
        flash(_("Synthèse du thème enregistrée."), "success")
    elif action == "delete":
        service.delete_theme(board, theme_uid)
        theme_uid = ""
    elif action == "merge":
        service.merge_themes(board, theme_uid, form.getlist("themes"))
        flash(_("Thèmes fusionnés."), "success")
    elif action == "split":
        new = service.split_theme(board, theme_uid, form.getlist("notes"), form.get("label"))
        theme_uid = new.uid
    elif action == "accept":
        theme = service.accept_suggestion(board, form.getlist("notes"), form.get("label"))
        flash(_("Thème « %(label)s » créé à partir de la suggestion.", label=theme.label), "success")
        theme_uid = theme.uid
    elif action == "board_synthesis":
        service.save_board_synthesis(board, form.get("synthesis"))
        flash(_("Synthèse du tableau enregistrée."), "success")
        theme_uid = ""
    else:
        raise service.InvalidInputError(_("Action inconnue."))
    return redirect(url_for(".board", uid=uid, board_uid=board_uid, _anchor=f"t-{theme_uid}" if theme_uid else ""))


@bp.route("/<uid>/boards/<board_uid>/promote", methods=["GET", "POST"])
@require_role("editor")
def promote(uid: str, board_uid: str):
    """Turn a note or a theme into a barrier, a need or an innovation (similar barriers proposed first)."""
    workshop = service.get_workshop(uid)
    board = service.get_board(workshop, board_uid)
    source = request.form if request.method == "POST" else request.args
    note_uid, theme_uid = source.get("note", ""), source.get("theme", "")
    subject = service.promotion_subject(board, note_uid, theme_uid)
    if request.method == "POST":
        try:
            kind, record_uid = service.promote(
                board, kind=source.get("kind", ""), note_uid=note_uid, theme_uid=theme_uid,
                title=source.get("title"), description=source.get("description"),
                existing_uid=source.get("existing", ""), username=username())
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Versé au registre."), "success")
            return redirect(url_for(".board", uid=uid, board_uid=board_uid,
                                    _anchor=("n-" if note_uid else "t-") + (note_uid or theme_uid)))
    title, description = service.subject_text(board, subject)
    return render_template("workshops/promote.html", workshop=workshop, board=board, subject=subject,
                           note_uid=note_uid, theme_uid=theme_uid, title=title, description=description,
                           similar=service.similar_barriers(f"{title} {description}", actor_group=service.actor_group_of(board, subject)),
                           service=service)
