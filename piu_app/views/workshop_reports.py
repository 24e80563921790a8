"""The workshop's compte-rendu (printable page, DOCX, Markdown, notes as CSV and JSON) and the import of an
online board's CSV export (Klaxoon, Miro, Framemo) into a board: preview, then one transaction.

Readers read the report; editors import. The domain work is in services.workshop_report and
services.board_import; these views only fetch, call and send.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from pathlib import Path

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..forms.workshop_reports import BoardImportForm, ConfirmForm
from ..i18n import current_lang
from ..models import Board
from ..services import DomainError, NotFoundError
from ..services import board_import as import_service
from ..services import workshop_report as report_service
from .access import require_role, username

bp = Blueprint("workshop_reports", __name__, url_prefix="/workshops")

DOWNLOADS = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


@bp.get("/<uid>/report")
@require_role("reader")
def report(uid: str):
    workshop = report_service.get_workshop(uid)
    return render_template("workshops/report.html", report=report_service.build(workshop, lang=current_lang()),
                           rs=report_service, workshop=workshop)


@bp.get("/<uid>/report.<fmt>")
@require_role("reader")
def download(uid: str, fmt: str):
    if fmt not in DOWNLOADS:
        return render_template("errors.html", status=404, message=_("Cette page n'existe pas.")), 404
    content = report_service.build(report_service.get_workshop(uid), lang=current_lang())
    if fmt == "docx":
        data = report_service.docx_bytes(content)
    elif fmt == "md":
        data = report_service.markdown(content).encode("utf-8")
    elif fmt == "csv":
        data = report_service.notes_csv(content)
    else:
        data = report_service.notes_json(content)
    name = report_service.filename(content, fmt)
    # `content_type`, not `mimetype`: Werkzeug would add a second "; charset=utf-8" to a text type
    return Response(data, content_type=DOWNLOADS[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


# --------------------------------------------------------------------------- online-board import

_TOKEN = re.compile(r"[0-9a-f]{32}")


def _board(uid: str) -> Board:
    board = db.session.scalar(select(Board).where(Board.uid == uid, Board.deleted.is_(False)))
    if board is None or board.workshop.deleted:
        raise NotFoundError(_("Tableau introuvable."))
    return board


KEEP_SECONDS = 24 * 3600  # a preview left without an answer is forgotten after a day


def _pending_dir() -> Path:
    return Path(current_app.instance_path) / "board-imports"


def _pending(board: Board, token: str) -> Path:
    """The file kept between the preview and the import of this board (the token is ours: 32 hex digits)."""
    path = _pending_dir() / f"{board.uid}-{token}.bin"
    if not _TOKEN.fullmatch(token) or not path.is_file():
        raise NotFoundError(_("Cet aperçu a expiré : déposez le fichier à nouveau."))
    return path


def _keep(board: Board, data: bytes) -> str:
    """Keep the uploaded file until the user confirms; forget the previews nobody confirmed."""
    folder = _pending_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stale = time.time() - KEEP_SECONDS
    for old in folder.glob("*.bin"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < stale:
                old.unlink()
    token = secrets.token_hex(16)
    (folder / f"{board.uid}-{token}.bin").write_bytes(data)
    return token


@bp.route("/boards/<uid>/import", methods=["GET", "POST"])
@require_role("editor")
def import_board(uid: str):
    board = _board(uid)
    form = BoardImportForm()
    if form.validate_on_submit():
        data = form.export.data.read(import_service.MAX_BYTES + 1)
        try:
            parsed = import_service.parse(data)
            plan = import_service.preview(board, parsed)
        except DomainError as exc:
            form.export.errors = [exc.message]
            return render_template("workshops/board_import.html", board=board, form=form), 400
        token = _keep(board, data)
        return render_template("workshops/board_import.html", board=board, form=form, plan=plan, parsed=parsed,
                               token=token, confirm=ConfirmForm())
    status = 400 if request.method == "POST" else 200
    return render_template("workshops/board_import.html", board=board, form=form), status


@bp.post("/boards/<uid>/import/<token>")
@require_role("editor")
def apply_import(uid: str, token: str):
    board = _board(uid)
    path = _pending(board, token)
    if not ConfirmForm().validate_on_submit():
        flash(_("Le formulaire a expiré ou ne vient pas de cette application. Rechargez la page et recommencez."), "error")
        return redirect(url_for(".import_board", uid=uid))
    try:
        added = import_service.apply(board, import_service.parse(path.read_bytes()))
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".import_board", uid=uid))
    db.session.commit()
    path.unlink(missing_ok=True)
    current_app.logger.info("board %s: %d notes imported by %s", board.uid, added, username())
    flash(_("%(n)d notes importées dans le tableau « %(title)s ».", n=added, title=board.title), "success")
    return redirect(url_for(".report", uid=board.workshop.uid))
