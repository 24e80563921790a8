"""Backups page: list, back up now, download, restore (administrators only)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from babel.dates import format_date, format_time
from flask import Blueprint, current_app, flash, redirect, render_template, send_file, url_for
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user

from ..database import is_sqlite
from ..extensions import db
from ..services import DomainError, backups, board_versions
from ..services import peers as peer_service
from ..services import room as room_service
from ..services import users as user_service
from .access import require_role

bp = Blueprint("backups", __name__, url_prefix="/backups")

REASON_LABELS = {
    backups.DAILY: _l("quotidienne"),
    backups.IMPORT: _l("avant import"),
    backups.MIGRATION: _l("avant migration"),
    backups.MANUAL: _l("manuelle"),
    backups.BEFORE_RESTORE: _l("avant restauration"),
}


@bp.before_request
@require_role("admin")
def _admins_only():
    return None


def _dir() -> Path:
    return current_app.config["PIU_BACKUPS_DIR"]


def _when(moment: datetime) -> str:
    """Say a local date and time the way the reader's language does (no time-zone shift: it is local)."""
    locale = get_locale()
    return _("%(date)s à %(time)s", date=format_date(moment, "long", locale=locale),
             time=format_time(moment, "short", locale=locale))


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return _("%(n)s Mo", n=format_decimal(round(size / 1024 / 1024, 1)))
    return _("%(n)s Ko", n=format_decimal(max(1, round(size / 1024))))


def _page(template: str, **context: object) -> str:
    return render_template(template, reasons=REASON_LABELS, when=_when, size=_size, **context)


@bp.get("")
def index():
    if not is_sqlite(db.engine):
        return _page("backups/index.html", server_managed=True, backups=[])
    limit = backups.configured_max_bytes()
    return _page("backups/index.html", server_managed=False, backups=backups.list_backups(_dir()),
                 keep=current_app.config["BACKUP_KEEP"], max_size=_size(limit) if limit else _("aucune limite"))


@bp.post("/now")
def back_up_now():
    try:
        target = backups.take_manual(db.engine, _dir())
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        flash(_("Sauvegarde enregistrée : %(name)s.", name=target.name), "success")
    return redirect(url_for(".index"))


@bp.get("/<name>/download")
def download(name: str):
    backup = backups.find(_dir(), name)
    return send_file(backup.path, as_attachment=True, download_name=backup.name,
                     mimetype="application/zip" if backup.with_files else "application/vnd.sqlite3")


@bp.get("/<name>/restore")
def confirm_restore(name: str):
    return _page("backups/confirm.html", backup=backups.find(_dir(), name))


@bp.post("/<name>/restore")
def restore(name: str):
    backup = backups.find(_dir(), name)
    user_id, username = current_user.id, current_user.username
    try:
        result = backups.restore(db.engine, backup.path, _dir(), keep=current_app.config["BACKUP_KEEP"])
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".index"))
    # What the room and the peers' pages keep in memory (board versions, the notes phones see, what peers
    # tried) was the replaced database's.
    board_versions.forget()
    room_service.forget_shared()
    peer_service.forget()
    flash(_("Sauvegarde du %(when)s restaurée.", when=_when(backup.taken_at))
          + (" " + _("Son schéma a été mis à jour.") if result.upgraded else "")
          + (" " + _("L'état précédent est gardé dans %(name)s.", name=result.safety.name) if result.safety else ""),
          "success")
    # Accounts are now those of the backup: keep the session only if it still names the same administrator.
    user = user_service.get(user_id)
    if user is None or user.username != username or not user.active or not user.has_role("admin"):
        logout_user()
        flash(_("Les comptes sont maintenant ceux de la sauvegarde : reconnectez-vous."), "info")
    return redirect(url_for(".index"))
