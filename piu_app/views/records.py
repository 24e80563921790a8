"""One blueprint per record type, all made by `make_blueprint` from the registry's descriptions.

`/innovations`, `/experiments`, `/lessons`… share these routes: list with filters, detail with
links, create, edit, delete (tombstone) with undo, history, links and attachments.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from ..exchange import spreadsheets
from ..extensions import db
from ..forms.documents import CitationForm, UploadForm
from ..forms.records import (
    VISIBILITY_CHOICES,
    Pick,
    RecordNameField,
    build_form_class,
    build_link_form,
    fill_from_record,
    form_values,
    keep_current_choices,
    new_record_choices,
    picks,
)
from ..i18n import current_lang
from ..registry import RECORD_TYPES, RecordType
from ..services import (
    ConflictError,
    DomainError,
    NotFoundError,
    PermissionDeniedError,
    vocabularies,
)
from ..services import documents as document_service
from ..services import records as record_service
from .access import require_role, username


def make_blueprint(rt: RecordType) -> Blueprint:
    bp = Blueprint(rt.key, __name__, url_prefix=f"/{rt.key.replace('_', '-')}")

    @bp.context_processor
    def _pickers():
        return {"new_record_choices": new_record_choices, "asked": {}}

    @bp.get("/")
    @require_role("reader")
    def index():
        filters = {k: v for k, v in request.args.items() if v}
        page = record_service.list_records(
            rt, filters, page=request.args.get("page", 1, type=int), page_size=current_app.config["PAGE_SIZE"],
            deleted=request.args.get("trash") == "1", drafts_only=request.args.get("drafts") == "1",
            sort=request.args.get("sort", "name"))
        return render_template("records/list.html", rt=rt, page=page, filters=filters,
                               filter_options=_filter_options(rt), visibility_choices=VISIBILITY_CHOICES)

    @bp.get("/export.csv", defaults={"fmt": "csv"})
    @bp.get("/export.xlsx", defaults={"fmt": "xlsx"})
    @require_role("reader")
    def export(fmt: str):
        return _export(rt, fmt)

    @bp.route("/new", methods=["GET", "POST"])
    @require_role("editor")
    def new():
        form = build_form_class(rt, current_lang(), with_links=True)()
        if request.method == "GET":
            form.visibility.data = rt.default_visibility
            for f in rt.fields:  # /experiments/new?innovation=<uid> starts from the innovation's page
                if f.kind == "ref" and request.args.get(f.name):
                    if isinstance(getattr(form, f.name), RecordNameField):
                        getattr(form, f.name).set_record(record_service.get_live(RECORD_TYPES[f.ref],
                                                                                 request.args[f.name][:40]))
                    else:
                        getattr(form, f.name).data = request.args[f.name]
        asked: dict[str, Pick] = {}
        if form.validate_on_submit():
            chosen = picks(form)
            asked = {p.prefix: p for p in chosen if _offer(p)}
            if asked:  # the next screen: the same form, with the matches of each name to choose from
                flash(_("Précisez quelle fiche lier pour chaque nom signalé ci-dessous (ou créez-la), "
                        "puis enregistrez."), "info")
                return render_template("records/form.html", rt=rt, form=form, record=None, asked=asked)
            try:
                record = record_service.create(rt, form_values(form), username=username())
                created = _link_picks(rt, record, chosen)
            except DomainError as exc:
                return _form_error(rt, form, exc, None)
            db.session.commit()
            flash(_("Fiche « %(title)s » créée.", title=rt.title_of(record)), "success")
            for target_rt, target in created:
                flash(_("Fiche « %(title)s » créée en brouillon : complétez-la.", title=target_rt.title_of(target)),
                      "info")
            return redirect(url_for(".detail", uid=record.uid))
        return render_template("records/form.html", rt=rt, form=form, record=None, asked=asked), \
            400 if form.errors else 200

    @bp.get("/lookup.json")
    @require_role("reader")
    def lookup():
        """A few records whose name matches what is being typed (the pickers' optional enhancement)."""
        text = request.args.get("q", "")
        if len(text) > record_service.LOOKUP_MAX_LENGTH:
            return jsonify({"error": _("Nom trop long : %(n)d caractères au plus.",
                                       n=record_service.LOOKUP_MAX_LENGTH)}), 400
        matches = record_service.lookup(rt, text, lang=current_lang()) if len(text.strip()) >= 2 else []
        return jsonify({"results": [{"uid": m.uid, "title": m.title, "detail": m.detail} for m in matches]})

    @bp.get("/<uid>")
    @require_role("reader")
    def detail(uid: str):
        record = record_service.get(rt, uid)
        link_forms = {link.name: build_link_form(link, current_lang()) for link in rt.links}
        upload_form = UploadForm()
        upload_form.doc_type.choices = vocabularies.choices("doc_type", current_lang())
        return render_template("records/detail.html",
                               rt=rt, record=record, backrefs=record_service.backrefs(rt, record),
                               reverse_links=record_service.reverse_links(rt, record), link_forms=link_forms,
                               reverse_citations=record_service.reverse_citations(rt, record),
                               documents=document_service.for_record(record), upload_form=upload_form)

    @bp.route("/<uid>/edit", methods=["GET", "POST"])
    @require_role("editor")
    def edit(uid: str):
        record = record_service.get(rt, uid, include_deleted=False)
        record_service.check_editable(record)
        form = build_form_class(rt, current_lang())()
        if request.method == "GET":
            fill_from_record(form, record)
        else:
            keep_current_choices(form, record)
        if form.validate_on_submit() and not _version_missing(form):
            expected = int(form.version.data)
            try:
                record_service.update(rt, record, form_values(form), username=username(), expected_version=expected)
            except DomainError as exc:
                return _form_error(rt, form, exc, record)
            db.session.commit()
            flash(_("Modifications enregistrées."), "success")
            return redirect(url_for(".detail", uid=uid))
        return render_template("records/form.html", rt=rt, form=form, record=record), 400 if form.errors else 200

    @bp.post("/<uid>/delete")
    @require_role("editor")
    def delete(uid: str):
        record = record_service.get(rt, uid)
        record_service.delete(rt, record, username=username())
        db.session.commit()
        flash({"text": _("Fiche « %(title)s » supprimée.", title=rt.title_of(record)),
               "restore": url_for(".restore", uid=uid)}, "undo")
        return redirect(url_for(".index"))

    @bp.post("/<uid>/restore")
    @require_role("editor")
    def restore(uid: str):
        record = record_service.get(rt, uid)
        record_service.restore(rt, record, username=username())
        db.session.commit()
        flash(_("Fiche « %(title)s » restaurée.", title=rt.title_of(record)), "success")
        return redirect(url_for(".detail", uid=uid))

    @bp.get("/<uid>/history")
    @require_role("reader")
    def history(uid: str):
        record = record_service.get(rt, uid)
        entries = record_service.history_in_words(rt, record, _labels_with_themes(current_lang()))
        return render_template("records/history.html", rt=rt, record=record, entries=entries)

    @bp.post("/<uid>/links/<link_name>")
    @require_role("editor")
    def add_link(uid: str, link_name: str):
        record = record_service.get(rt, uid, include_deleted=False)
        record_service.check_editable(record)
        link = next((candidate for candidate in rt.links if candidate.name == link_name), None)
        if link is None:
            raise NotFoundError(_("Lien inconnu."))
        target_rt = RECORD_TYPES[link.target]
        form = build_link_form(link, current_lang())
        if not form.validate_on_submit():
            for errors in form.errors.values():
                for message in errors:
                    flash(str(message), "error")
            return redirect(url_for(".detail", uid=uid))
        text, target = " ".join((form.q.data or "").split()), form.target.data or ""
        new_values = {f.name: form[f"new__{f.name}"].data or "" for f in new_record_choices(target_rt)}
        matches = []
        if target == "new" and any(not v for v in new_values.values()):
            target = ""  # a required choice is missing: the screen of choices again
        elif not target:
            if not text:
                flash(_("Tapez le nom de la fiche à lier."), "error")
                return redirect(url_for(".detail", uid=uid))
            matches = record_service.lookup(target_rt, text, lang=current_lang())
            exact = [m for m in matches if m.exact]
            target = exact[0].uid if len(exact) == 1 else ""
        if not target:  # the next screen: which record is meant, or a new one
            return render_template("records/link_pick.html", rt=rt, record=record, link=link, target_rt=target_rt,
                                   form=form, text=text, matches=matches, missing=form.target.data == "new")
        return _link_to(uid, target_rt, target, text, new_values, lambda target_uid: record_service.add_link(
            rt, record, link_name, target_uid=target_uid, role=form.role.data, username=username()))

    @bp.post("/<uid>/links/<link_name>/<int:link_id>/remove")
    @require_role("editor")
    def remove_link(uid: str, link_name: str, link_id: int):
        record = record_service.get(rt, uid, include_deleted=False)
        record_service.remove_link(rt, record, link_name, link_id, username=username())
        db.session.commit()
        flash(_("Lien retiré."), "info")
        return redirect(url_for(".detail", uid=uid))

    if rt.citations:
        add_citation_routes(bp, rt)

    @bp.post("/<uid>/documents")
    @require_role("editor")
    def upload(uid: str):
        record = record_service.get(rt, uid, include_deleted=False)
        upload_form = UploadForm()
        upload_form.doc_type.choices = vocabularies.choices("doc_type", current_lang())
        if not upload_form.validate_on_submit():
            flash(_("Choisissez un fichier à joindre."), "error")
            return redirect(url_for(".detail", uid=uid))
        file = upload_form.file.data
        document_service.attach(rt, record, stream=file.stream, filename=file.filename or "",
                                title=upload_form.title.data or "", doc_type=upload_form.doc_type.data,
                                uploads=current_app.config["PIU_UPLOADS_DIR"],
                                max_bytes=current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024, username=username())
        db.session.commit()
        flash(_("Document joint."), "success")
        return redirect(url_for(".detail", uid=uid))

    return bp


def add_citation_routes(bp: Blueprint, rt: RecordType) -> None:
    """Cite records by name from a record's page (a lesson cites the barriers it met)."""

    @bp.post("/<uid>/citations/<citation_name>")
    @require_role("editor")
    def add_citation(uid: str, citation_name: str):
        record = record_service.get(rt, uid, include_deleted=False)
        record_service.check_editable(record)
        citation = record_service.citation(rt, citation_name)
        target_rt = RECORD_TYPES[citation.target]
        form = CitationForm(prefix=citation.name)
        if not form.validate_on_submit():
            for errors in form.errors.values():
                for message in errors:
                    flash(str(message), "error")
            return redirect(url_for(".detail", uid=uid))
        text, target = " ".join((form.q.data or "").split()), form.target.data or ""
        matches = []
        if not target:
            if not text:
                flash(_("Tapez le nom de la fiche à lier."), "error")
                return redirect(url_for(".detail", uid=uid))
            matches = record_service.lookup(target_rt, text, lang=current_lang())
            exact = [m for m in matches if m.exact]
            target = exact[0].uid if len(exact) == 1 else ""
        if not target:  # the next screen: which record is meant, or a new one
            return render_template("records/citation_pick.html", rt=rt, record=record, citation=citation,
                                   target_rt=target_rt, text=text, matches=matches)
        return _link_to(uid, target_rt, target, text, {}, lambda target_uid: record_service.add_citation(
            rt, record, citation_name, target_uid=target_uid, username=username()))

    @bp.post("/<uid>/citations/<citation_name>/<target_uid>/remove")
    @require_role("editor")
    def remove_citation(uid: str, citation_name: str, target_uid: str):
        record = record_service.get(rt, uid, include_deleted=False)
        record_service.check_editable(record)
        record_service.remove_citation(rt, record, citation_name, target_uid=target_uid, username=username())
        db.session.commit()
        flash(_("Lien retiré."), "info")
        return redirect(url_for(".detail", uid=uid))


def _link_to(uid: str, target_rt: RecordType, target: str, text: str, new_values: dict[str, Any],
             attach: Callable[[str], Any]) -> Any:
    """Link the record `uid` to `target` (a uid, or "new": a draft named `text` made first) with
    `attach(target uid)`, in one transaction; back to the record's page with what was done."""
    try:
        created = None
        if target == "new":  # create_named refuses an empty name
            created = record_service.create_named(target_rt, text, new_values, username=username())
            target = created.uid
        attach(target)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".detail", uid=uid))
    db.session.commit()
    flash(_("Lien ajouté."), "success")
    if created is not None:
        flash(_("Fiche « %(title)s » créée en brouillon : complétez-la.", title=target_rt.title_of(created)), "info")
    return redirect(url_for(".detail", uid=uid))


def _labels_with_themes(lang: str) -> dict[tuple[str, str], str]:
    """Vocabulary labels in `lang`, themes under ("theme", code)."""
    labels = vocabularies.label_map(lang)
    labels.update({("theme", theme.code): theme.label(lang) for theme in vocabularies.themes()})
    return labels


def _export(rt: RecordType, fmt: str) -> Response:
    """Send the list with the page's filters as a CSV or XLSX file (every row, not one page)."""
    filters = {k: v for k, v in request.args.items() if v}
    page = record_service.list_records(
        rt, filters, page_size=spreadsheets.EXPORT_MAX_ROWS, deleted=request.args.get("trash") == "1",
        drafts_only=request.args.get("drafts") == "1", sort=request.args.get("sort", "name"))
    data = spreadsheets.export_rows(rt, page.items, fmt, lang=current_lang())
    # `content_type`, not `mimetype`: Werkzeug adds "; charset=utf-8" to a text mimetype, a second time
    content_type = ("text/csv; charset=utf-8" if fmt == "csv"
                    else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    filename = f"piu-{rt.key.replace('_', '-')}-{date.today().isoformat()}.{fmt}"
    return Response(data, content_type=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _offer(pick: Pick) -> bool:
    """Decide a picked name: keep a valid choice, take the one record of exactly that name, or else
    fill `pick.matches` and tell that the user must choose (the next screen)."""
    target = RECORD_TYPES[pick.link.target]
    if pick.choice == "skip":
        return False
    if pick.choice == "new":
        missing = [f for f in new_record_choices(target) if not pick.new_values.get(f.name)]
        if not missing:
            return False
    elif pick.choice:
        if record_service.is_live(target, pick.choice):
            return False
        pick.choice = ""  # a record deleted since it was offered (or a forged value): ask again
    pick.matches = record_service.lookup(target, pick.text, lang=current_lang()) if pick.text else []
    exact = [m for m in pick.matches if m.exact]
    if pick.choice != "new" and len(exact) == 1:
        pick.choice = exact[0].uid
        return False
    pick.asked = True
    return True


def _link_picks(rt: RecordType, record, chosen: list[Pick]) -> list[tuple[RecordType, object]]:
    """Link the new record to the records picked on its form, creating those asked for; return those created."""
    created = []
    for pick in chosen:
        if pick.choice in ("", "skip"):
            continue
        target_rt = RECORD_TYPES[pick.link.target]
        uid = pick.choice
        if uid == "new":
            target = record_service.create_named(target_rt, pick.text, pick.new_values, username=username())
            created.append((target_rt, target))
            uid = target.uid
        record_service.add_link(rt, record, pick.link.name, target_uid=uid, role=pick.role, username=username())
    return created


def _version_missing(form) -> bool:
    """Tell (and say on the form) whether the version the user read is missing or not a number: the
    edit-conflict check needs it, so such a post is refused rather than saved blindly."""
    raw = form.version.data or ""
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return False
    message = _("Le formulaire ne dit pas quelle version de la fiche vous avez lue : rechargez la page et recommencez.")
    form.version.errors = [*form.version.errors, message]
    flash(message, "error")
    return True


def _form_error(rt: RecordType, form, exc: DomainError, record):
    """Show the form again with what the user typed, the message and the fields at fault."""
    db.session.rollback()
    for name, message in exc.field_errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message]
    flash(exc.message, "error")
    status = 409 if isinstance(exc, ConflictError) else 403 if isinstance(exc, PermissionDeniedError) else 400
    return render_template("records/form.html", rt=rt, form=form, record=record), status


def _filter_options(rt: RecordType) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Return (name, label, choices) of each filter offered on a list page."""
    lang = current_lang()
    options = []
    for f in rt.filter_fields:
        if f.kind == "vocab":
            choices = vocabularies.choices(f.vocab, lang)
        elif f.kind == "themes":
            choices = [(t.code, t.label(lang)) for t in vocabularies.themes()]
        elif f.kind == "ref":
            choices = record_service.choices(RECORD_TYPES[f.ref], limit=500)
        elif f.kind == "bool":
            choices = [("1", _("oui")), ("0", _("non"))]
        else:
            continue
        options.append((f.name, str(f.label), choices))
    if "territory" in rt.extra_filters:
        options.append(("territory", _("Expérimentée sur le territoire"),
                        record_service.choices(RECORD_TYPES["territories"], limit=500)))
    return options



