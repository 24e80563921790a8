"""Exchange with the network: export a bundle, import one (upload → preview → confirm), undo."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    after_this_request,
    current_app,
    flash,
    redirect,
    render_template,
    send_file,
    url_for,
)
from flask_babel import gettext as _

from ..exchange.bundle_import import BundleError, reasons, signature_summary
from ..extensions import db
from ..forms.exchange import ExportForm, ImportForm
from ..registry import RECORD_TYPES
from ..services import DomainError
from ..services import backups as backup_service
from ..services import exchange as exchange_service
from .access import require_role, username

bp = Blueprint("exchange", __name__, url_prefix="/exchange")


def _pending_dir() -> Path:
    path = Path(current_app.config["PIU_UPLOADS_DIR"]) / "pending-imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pending(token: str) -> Path:
    if not token.isalnum() or len(token) > 64:
        abort(404)
    path = _pending_dir() / f"{token}.zip"
    if not path.is_file():
        flash(_("Ce fichier n'est plus disponible : déposez-le à nouveau."), "error")
        abort(redirect(url_for(".index")))
    return path


def _table_labels() -> dict[str, str]:
    labels = {key: str(rt.label_plural) for key, rt in RECORD_TYPES.items()}
    labels["documents"] = _("Pièces jointes")
    return labels


@bp.get("/")
@require_role("editor")
def index():
    return render_template("exchange/index.html", export_form=ExportForm(), import_form=ImportForm(),
                           imports=exchange_service.imports(), conflict_count=exchange_service.conflict_count(),
                           own_fingerprint=exchange_service.own_fingerprint())


@bp.post("/export")
@require_role("editor")
def export():
    form = ExportForm()
    if not form.validate_on_submit():
        flash(_("Choisissez un niveau de partage."), "error")
        return redirect(url_for(".index"))
    out = Path(tempfile.mkdtemp(prefix="piu-export-")) / exchange_service.default_filename()
    summary = exchange_service.export(form.level.data, out, uploads=current_app.config["PIU_UPLOADS_DIR"],
                                      include_documents=form.include_documents.data)

    @after_this_request
    def _cleanup(response):  # the file is streamed from disk: remove it once sent
        def remove() -> None:
            out.unlink(missing_ok=True)
            out.parent.rmdir()
        response.call_on_close(remove)
        return response

    name = out.name if summary.level == "network" else out.name.replace(".registre.zip", "-public.registre.zip")
    return send_file(out, mimetype="application/zip", as_attachment=True, download_name=name)


@bp.post("/import")
@require_role("editor")
def upload():
    form = ImportForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
        return redirect(url_for(".index"))
    token = secrets.token_hex(16)
    path = _pending_dir() / f"{token}.zip"
    limit = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024 * 10  # bundles may be larger than one attachment
    size = 0
    with path.open("wb") as out:
        for block in iter(lambda: form.bundle.data.stream.read(1024 * 1024), b""):
            size += len(block)
            if size > limit:
                out.close()
                path.unlink(missing_ok=True)
                flash(_("Ce fichier dépasse %(n)d Mo.", n=limit // (1024 * 1024)), "error")
                return redirect(url_for(".index"))
            out.write(block)
    (path.with_suffix(".name")).write_text((form.bundle.data.filename or "paquet.zip")[:200], encoding="utf-8")
    return redirect(url_for(".preview", token=token))


def _filename(path: Path) -> str:
    name_file = path.with_suffix(".name")
    return name_file.read_text(encoding="utf-8") if name_file.is_file() else path.name


@bp.get("/import/<token>")
@require_role("editor")
def preview(token: str):
    path = _pending(token)
    try:
        plan = exchange_service.preview(path, filename=_filename(path))
    except BundleError as exc:
        _discard(path)
        return render_template("exchange/refused.html", error=exc, filename=_filename(path)), 400
    try:
        skipped = [d for decisions in plan.decisions.values() for d in decisions.values()
                   if d.action in ("skipped", "conflict")]
        return render_template("exchange/preview.html", plan=plan, token=token, counts=plan.counts(),
                               totals=plan.totals(), skipped=skipped[:200], skipped_total=len(skipped),
                               reasons=reasons(), labels=_table_labels(), signature=signature_summary(plan))
    finally:
        plan.bundle.close()


@bp.post("/import/<token>")
@require_role("editor")
def confirm(token: str):
    path = _pending(token)
    config = current_app.config

    def backup() -> None:
        backup_service.take(db.engine, config["PIU_BACKUPS_DIR"], reason="import", keep=config["BACKUP_KEEP"])

    try:
        plan, batch = exchange_service.import_bundle(path, filename=_filename(path), username=username(),
                                                     uploads=config["PIU_UPLOADS_DIR"], backup=backup)
    except BundleError as exc:
        db.session.rollback()
        _discard(path)
        return render_template("exchange/refused.html", error=exc, filename=_filename(path)), 400
    db.session.commit()
    _discard(path)
    if batch is None:
        flash(_("Rien à importer : ce paquet ne contient rien de nouveau pour votre registre."), "info")
        return redirect(url_for(".index"))
    totals = plan.totals()
    flash(_("Import terminé : %(created)d nouvelles fiches, %(updated)d mises à jour.",
            created=totals["created"], updated=totals["updated"]), "success")
    return redirect(url_for(".report", uid=batch.uid))


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_suffix(".name").unlink(missing_ok=True)


@bp.get("/imports/<uid>")
@require_role("editor")
def report(uid: str):
    batch = exchange_service.get_import(uid)
    return render_template("exchange/report.html", batch=batch, reasons=reasons(), labels=_table_labels())


@bp.post("/imports/<uid>/undo")
@require_role("editor")
def undo(uid: str):
    try:
        exchange_service.undo(uid, username=username())
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".report", uid=uid))
    db.session.commit()
    flash(_("Import annulé : les fiches qu'il avait apportées sont retirées, celles qu'il avait remplacées "
            "sont rétablies."), "success")
    return redirect(url_for(".report", uid=uid))


@bp.get("/conflicts")
@require_role("editor")
def conflicts():
    return render_template("exchange/conflicts.html", conflicts=exchange_service.conflicts(), reasons=reasons(),
                           labels=_table_labels())


@bp.get("/keys")
@require_role("admin")
def keys():
    return render_template("exchange/keys.html", peers=exchange_service.pinned_keys(),
                           own_fingerprint=exchange_service.own_fingerprint())


@bp.post("/keys/<origin>/forget")
@require_role("admin")
def forget_key(origin: str):
    try:
        peer = exchange_service.forget_key(origin[:64], username=username())
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".keys"))
    db.session.commit()
    flash(_("La clé de %(city)s est oubliée : le prochain paquet signé de cette ville enregistrera sa nouvelle clé. "
            "Comparez son empreinte avec la ville par téléphone avant de l'importer.",
            city=peer.city_name or peer.origin_instance), "success")
    return redirect(url_for(".keys"))
