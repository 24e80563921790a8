"""Sharing with the network: export a bundle, preview and apply an import, undo it, list imports.

The bundle format and the merge live in `piu_app.exchange`; this module is what the views and the
CLI call, and it owns the order of things: check everything, back up, then write.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from ..database import bulk_cache, checkpoint_afterwards
from ..exchange import bundle_export, bundle_import
from ..exchange.bundle_import import Plan
from ..models import ImportBatch, ImportConflict, db
from . import NotFoundError
from . import instance as instance_service


def export(level: str, out: Path, *, uploads: Path | None = None, include_documents: bool = False,
           max_document_bytes: int = bundle_export.MAX_DOCUMENT_BYTES) -> bundle_export.ExportSummary:
    """Write the bundle of what is shared at `level` (network or public) to `out`."""
    with bulk_cache(db.session.connection()):
        return bundle_export.export_bundle(out, level=level, uploads=uploads, include_documents=include_documents,
                                           max_document_bytes=max_document_bytes)


def default_filename() -> str:
    return bundle_export.bundle_filename(instance_service.instance_code() or "piu")


def preview(path: Path, *, filename: str = "") -> Plan:
    """Check a bundle and tell what importing it would do; nothing is written. Close `plan.bundle` after."""
    bundle = bundle_import.open_bundle(path, filename=filename)
    try:
        with bulk_cache(db.session.connection()):
            return bundle_import.plan_import(bundle, instance_service.instance_code())
    except BaseException:
        bundle.close()
        raise


def import_bundle(path: Path, *, filename: str = "", username: str, uploads: Path,
                  backup: Callable[[], Any] | None = None) -> tuple[Plan, ImportBatch | None]:
    """Check, back up (`backup()` is called only if something will change), then apply in the current
    transaction; the caller commits. Returns the plan and the batch (None when nothing changed)."""
    plan = preview(path, filename=filename)
    try:
        if backup is not None and plan.has_changes:
            backup()
        conn = db.session.connection()
        with bulk_cache(conn), checkpoint_afterwards(conn):
            return plan, bundle_import.apply_import(plan, username=username, uploads=uploads)
    finally:
        plan.bundle.close()


def undo(batch_uid: str, *, username: str, uploads: Path | None = None) -> ImportBatch:
    """Undo an import in the current transaction; the attachment files it wrote go once the caller commits."""
    return bundle_import.undo_import(batch_uid, username=username, uploads=uploads)


def imports(kind: str = "bundle", limit: int = 50) -> list[ImportBatch]:
    """Return the latest imports of one kind (bundle or spreadsheet), newest first."""
    return list(db.session.scalars(select(ImportBatch).filter_by(kind=kind).order_by(ImportBatch.id.desc())
                                   .limit(limit)))


def get_import(uid: str, kind: str = "bundle") -> ImportBatch:
    batch = db.session.scalars(select(ImportBatch).filter_by(uid=uid, kind=kind)).first()
    if batch is None:
        raise NotFoundError(_("Cet import n'existe pas."))
    return batch


def conflicts(limit: int = 200) -> list[ImportConflict]:
    return list(db.session.scalars(select(ImportConflict).order_by(ImportConflict.id.desc()).limit(limit)))


def conflict_count() -> int:
    return db.session.scalar(select(func.count()).select_from(ImportConflict)) or 0
