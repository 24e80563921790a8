"""The Imports page: every import (bundles and spreadsheets), what each brought, its backup, its undo.

Editors and administrators see it and undo imports (the roles that import); readers do not.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..extensions import db
from ..services import DomainError
from ..services import imports as imports_service
from .access import require_role, username

bp = Blueprint("imports", __name__, url_prefix="/imports")

PAGE_SIZE = 25
RECORDS_PAGE_SIZE = 50


def _page() -> int:
    raw = request.args.get("page", "1")
    return max(1, min(int(raw), 100_000)) if raw.isdigit() and len(raw) <= 6 else 1


@bp.get("/")
@require_role("editor")
def index():
    page = imports_service.list_imports(_page(), PAGE_SIZE)
    return render_template("imports/index.html", page=page)


@bp.get("/<uid>")
@require_role("editor")
def detail(uid: str):
    batch = imports_service.get(uid)
    records = imports_service.records(batch, _page(), RECORDS_PAGE_SIZE)
    return render_template("imports/detail.html", batch=batch, records=records,
                           counts=imports_service.counts_of(batch), blockers=imports_service.blockers(batch),
                           limit=imports_service.BLOCKERS_SHOWN, backup_kept=_backup_kept(batch.backup_name))


def _backup_kept(name: str) -> bool:
    """Whether the backup taken before the import is still in the backups directory (rotation removes old ones)."""
    return bool(name) and (Path(current_app.config["PIU_BACKUPS_DIR"]) / name).is_file()


@bp.post("/<uid>/undo")
@require_role("editor")
def undo(uid: str):
    undo_and_say(uid)
    return redirect(url_for(".detail", uid=uid))


def undo_and_say(uid: str) -> None:
    """Undo an import and commit, or roll back; either way, say what happened (shared with the
    exchange page's own undo button)."""
    try:
        imports_service.undo(uid, username=username(), uploads=current_app.config["PIU_UPLOADS_DIR"])
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return
    db.session.commit()
    flash(_("Import annulé : les fiches qu'il avait apportées sont retirées, celles qu'il avait remplacées "
            "sont rétablies."), "success")
