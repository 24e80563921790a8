"""Exchange with the network: export a bundle, import one (upload → preview → confirm), undo."""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from contextlib import suppress
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    after_this_request,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from ..database import is_disk_full, release_journal
from ..exchange import bundle_format as bf
from ..exchange.bundle_import import BundleError, reasons, signature_summary
from ..extensions import db
from ..forms.exchange import ExportForm, ImportForm
from ..services import DomainError
from ..services import exchange as exchange_service
from ..services import imports as imports_service
from .access import require_role, username
from .imports import undo_and_say

bp = Blueprint("exchange", __name__, url_prefix="/exchange")


_KEEP_SECONDS = 24 * 3600  # an upload never confirmed is forgotten after a day


def _pending_dir() -> Path:
    path = Path(current_app.config["PIU_UPLOADS_DIR"]) / "pending-imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pending(token: str) -> tuple[Path, str]:
    """Return the uploaded bundle waiting under `token` and the user's name for it, for its uploader only.

    Another user (even an editor) is answered as if the upload did not exist: a token seen in a
    shared screen or a log gives nobody else the file, its preview or its import.
    """
    if not token.isalnum() or len(token) > 64:
        abort(404)
    path = _pending_dir() / f"{token}.zip"
    meta = _pending_meta(path)
    if not path.is_file() or meta is None or meta.get("user_id") != current_user.get_id():
        flash(_("Ce fichier n'est plus disponible : déposez-le à nouveau."), "error")
        abort(redirect(url_for(".index")))
    return path, str(meta.get("filename") or _("paquet.zip"))


def _pending_meta(path: Path) -> dict | None:
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _forget_abandoned(folder: Path) -> None:
    now = time.time()
    for old in folder.iterdir():
        with suppress(OSError):
            if old.is_file() and now - old.stat().st_mtime > _KEEP_SECONDS:
                old.unlink()


def _disk_full_message() -> str:
    return _("Le disque est plein : l'import n'a rien écrit. Libérez de la place (par exemple en supprimant "
             "d'anciennes sauvegardes) puis recommencez.")


def _table_labels() -> dict[str, str]:
    labels = {key: str(rtable.rt.label_plural) for key, rtable in bf.TABLES.items()}
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
    folder = _pending_dir()
    _forget_abandoned(folder)
    token = secrets.token_hex(16)
    path = folder / f"{token}.zip"
    limit = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024 * 10  # bundles may be larger than one attachment
    size = 0
    try:
        with path.open("wb") as out:
            for block in iter(lambda: form.bundle.data.stream.read(1024 * 1024), b""):
                size += len(block)
                if size > limit:
                    out.close()
                    _discard(path)
                    flash(_("Ce fichier dépasse %(n)d Mo.", n=limit // (1024 * 1024)), "error")
                    return redirect(url_for(".index"))
                out.write(block)
        name = (form.bundle.data.filename or "").replace("\\", "/").rsplit("/", 1)[-1][:200]
        path.with_suffix(".json").write_text(json.dumps({"filename": name, "user_id": current_user.get_id()},
                                                        ensure_ascii=False), encoding="utf-8")
    except OSError as exc:
        _discard(path)
        if not is_disk_full(exc):
            raise
        flash(_disk_full_message(), "error")
        return redirect(url_for(".index"))
    return redirect(url_for(".preview", token=token))


@bp.get("/import/<token>")
@require_role("editor")
def preview(token: str):
    path, filename = _pending(token)
    try:
        plan = exchange_service.preview(path, filename=filename)
    except BundleError as exc:
        _discard(path)
        return render_template("exchange/refused.html", error=exc, filename=filename), 400
    try:
        totals = plan.totals()
        show = request.args.get("show", "")
        if show not in PREVIEW_ACTIONS or not totals.get(show):
            show = next((a for a in PREVIEW_ACTIONS if totals.get(a)), "created")
        skipped = [d for decisions in plan.decisions.values() for d in decisions.values()
                   if d.action in ("skipped", "conflict")]
        return render_template("exchange/preview.html", plan=plan, token=token, counts=plan.counts(),
                               totals=totals, show=show, decisions=_decisions(plan, show),
                               skipped=skipped[:200], skipped_total=len(skipped),
                               actions=PREVIEW_ACTIONS, reasons=reasons(), labels=_table_labels(),
                               signature=signature_summary(plan))
    finally:
        plan.bundle.close()


PREVIEW_ACTIONS = ("created", "updated", "conflict", "skipped", "unchanged")
PREVIEW_PAGE_SIZE = 50


def _decisions(plan, show: str) -> imports_service.Page:
    """One page of the records of the bundle that the import would treat as `show`, each linked
    when it is already in this register."""
    chosen = [d for decisions in plan.decisions.values() for d in decisions.values() if d.action == show]
    page_size = PREVIEW_PAGE_SIZE
    raw = request.args.get("page", "1")
    page = max(1, min(int(raw) if raw.isdigit() and len(raw) <= 6 else 1, -(-len(chosen) // page_size) or 1))
    shown = chosen[(page - 1) * page_size:page * page_size]
    items = [imports_service.ImportedRecord(d.table, d.uid, d.action) for d in shown]
    imports_service.describe(items)  # which are here, under which title
    for item, d in zip(items, shown, strict=True):
        item.title = d.title or item.title  # the bundle's title: what the record will be called
        item.reason = d.reason
    return imports_service.Page(items, len(chosen), page, page_size)


@bp.post("/import/<token>")
@require_role("editor")
def confirm(token: str):
    path, filename = _pending(token)
    config = current_app.config

    backup = imports_service.backup_taker(db.engine, config["PIU_BACKUPS_DIR"], config["BACKUP_KEEP"])
    try:
        plan, batch = exchange_service.import_bundle(path, filename=filename, username=username(),
                                                     uploads=config["PIU_UPLOADS_DIR"], backup=backup)
        db.session.commit()
    except BundleError as exc:
        db.session.rollback()
        _discard(path)
        return render_template("exchange/refused.html", error=exc, filename=filename), 400
    except DomainError as exc:  # e.g. the backup before the import could not be written
        db.session.rollback()
        _discard(path)
        flash(exc.message, "error")
        return redirect(url_for(".index"))
    except (OSError, SQLAlchemyError) as exc:
        if not is_disk_full(exc):
            raise
        db.session.rollback()
        release_journal(db.engine)  # give back the space the failed transaction took
        _discard(path)
        flash(_disk_full_message(), "error")
        return redirect(url_for(".index"))
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
    path.with_suffix(".json").unlink(missing_ok=True)


@bp.get("/imports/<uid>")
@require_role("editor")
def report(uid: str):
    batch = exchange_service.get_import(uid)
    return render_template("exchange/report.html", batch=batch, reasons=reasons(), labels=_table_labels(),
                           records=imports_service.records(batch, 1, REPORT_RECORDS),
                           blockers=imports_service.blockers(batch), limit=imports_service.BLOCKERS_SHOWN)


REPORT_RECORDS = 20  # the first records it brought; the Imports page lists them all


@bp.post("/imports/<uid>/undo")
@require_role("editor")
def undo(uid: str):
    undo_and_say(uid)
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
