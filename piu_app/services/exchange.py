"""Sharing with the network: export a bundle, preview and apply an import, undo it, list imports.

The bundle format and the merge live in `piu_app.exchange`; this module is what the views and the
CLI call, and it owns the order of things: check everything, back up, then write.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from .. import paths
from ..database import bulk_cache, checkpoint_afterwards
from ..exchange import bundle_export, bundle_import, signing
from ..exchange.bundle_import import Plan
from ..models import ImportBatch, ImportConflict, PeerKey, db
from . import NotFoundError
from . import imports as imports_service
from . import instance as instance_service


def export(level: str, out: Path, *, uploads: Path | None = None, include_documents: bool = False,
           max_document_bytes: int = bundle_export.MAX_DOCUMENT_BYTES,
           data_dir: Path | None = None) -> bundle_export.ExportSummary:
    """Write the bundle of what is shared at `level` (network or public) to `out`, signed with this
    instance's key (kept in `data_dir`, by default the app's data directory; made if missing)."""
    key = own_key(data_dir)
    with bulk_cache(db.session.connection()):
        return bundle_export.export_bundle(out, level=level, uploads=uploads, include_documents=include_documents,
                                           max_document_bytes=max_document_bytes, key=key,
                                           manifests=_manifests_dir(data_dir))


def own_key(data_dir: Path | None = None) -> signing.SigningKey:
    """Return this instance's signing key (made at set-up; made now for an instance of an earlier release)."""
    return signing.instance_key(Path(data_dir or current_app.config["PIU_DATA_DIR"]))


def _manifests_dir(data_dir: Path | None = None) -> Path:
    return paths.manifests_dir(Path(data_dir or current_app.config["PIU_DATA_DIR"]))


def own_fingerprint() -> str:
    """Return the fingerprint of this instance's key, or "" when it cannot be made (a full disk)."""
    try:
        return own_key().fingerprint
    except OSError:
        return ""


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
    """Check, back up (`backup()` is called only if something will change; the file it returns is
    kept with the import), then apply in the current transaction; the caller commits. Returns the
    plan and the batch (None when nothing changed)."""
    plan = preview(path, filename=filename)
    try:
        taken = backup() if backup is not None and plan.has_changes else None
        conn = db.session.connection()
        with bulk_cache(conn), checkpoint_afterwards(conn):
            batch = bundle_import.apply_import(plan, username=username, uploads=uploads)
            # pins the key at the first signed bundle; keeps the manifests, to relay the records
            bundle_import.keep_signature(plan, username=username, manifests=_manifests_dir())
            if batch is not None:
                imports_service.finish(batch, backup=taken if isinstance(taken, (str, Path)) else None)
            return plan, batch
    finally:
        plan.bundle.close()


def undo(batch_uid: str, *, username: str, uploads: Path | None = None) -> ImportBatch:
    """Undo an import in the current transaction; the attachment files it wrote go once the caller commits."""
    return imports_service.undo(batch_uid, username=username, uploads=uploads)


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


def pinned_keys() -> list[PeerKey]:
    """Return the keys pinned for peer cities (and the cities whose key was forgotten), by city."""
    return list(db.session.scalars(select(PeerKey).order_by(PeerKey.city_name, PeerKey.origin_instance)))


def forget_key(origin: str, *, username: str) -> PeerKey:
    """Forget the key pinned for a city on purpose (it made a new one): its next signed bundle pins anew."""
    peer = signing.pinned_key(origin)
    if peer is None:
        raise NotFoundError(_("Aucune clé n'est enregistrée pour cette ville."))
    signing.forget(peer, username=username)
    return peer
