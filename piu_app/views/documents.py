"""Download and remove attachments."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _

from ..extensions import db
from ..registry import RECORD_TYPES
from ..services import NotFoundError
from ..services import documents as document_service
from ..services import records as record_service
from .access import require_role, username

bp = Blueprint("documents", __name__, url_prefix="/documents")


@bp.get("/<uid>")
@require_role("reader")
def download(uid: str):
    document = document_service.get(uid)
    path = document_service.stored_path(current_app.config["PIU_UPLOADS_DIR"], document)
    if not path.is_file():
        raise NotFoundError(_("Le fichier de ce document manque dans le dossier de données."))
    inline = request.args.get("inline") == "1" and document.media_type in ("application/pdf", "image/png", "image/jpeg")
    return send_file(path, mimetype=document.media_type, as_attachment=not inline, download_name=document.filename)


@bp.post("/<uid>/delete")
@require_role("editor")
def delete(uid: str):
    document = document_service.get(uid)
    rt = RECORD_TYPES[document.linked_type]
    record = record_service.get(rt, document.linked_uid)
    document_service.detach(rt, record, document, username=username())
    db.session.commit()
    flash(_("Document retiré."), "info")
    return redirect(url_for(f"{rt.key}.detail", uid=record.uid))
