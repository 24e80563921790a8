"""Attachments: files kept in the data directory, linked to a record, with their checksum."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from flask_babel import gettext as _

from ..models import ChangeLog, Document, db
from ..registry import RecordType
from . import InvalidInputError, NotFoundError
from . import instance as instance_service
from .records import check_editable

ALLOWED_EXTENSIONS = {
    ".pdf", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".odt", ".ods", ".odp", ".doc", ".docx", ".xls", ".xlsx",
    ".ppt", ".pptx", ".csv", ".txt", ".md", ".rtf",
}


def stored_path(uploads: Path, document: Document) -> Path:
    return uploads / document.sha256[:2] / document.sha256


def attach(rt: RecordType, record: Any, *, stream: IO[bytes], filename: str, title: str, doc_type: str,
           uploads: Path, max_bytes: int, username: str) -> Document:
    """Store an uploaded file (content-addressed, written atomically) and link it to a record."""
    check_editable(record)
    safe_name = os.path.basename(filename.replace("\\", "/")).strip() or "document"
    ext = os.path.splitext(safe_name)[1].lower()
    if ext not in ALLOWED_EXTENSIONS:
        raise InvalidInputError(_("Type de fichier non accepté (%(ext)s). Formats acceptés : PDF, images, "
                                  "documents bureautiques, CSV, texte.", ext=ext or "?"))
    digest = hashlib.sha256()
    size = 0
    uploads.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=uploads, delete=False, prefix=".upload-") as tmp:
        try:
            while chunk := stream.read(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidInputError(_("Fichier trop volumineux : %(mb)d Mo au plus.", mb=max_bytes // (1 << 20)))
                digest.update(chunk)
                tmp.write(chunk)
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    if size == 0:
        os.unlink(tmp.name)
        raise InvalidInputError(_("Le fichier est vide."))
    document = Document(title=(title.strip() or safe_name)[:200], doc_type=doc_type or "other",
                        filename=safe_name[-255:],
                        media_type=mimetypes.guess_type(safe_name)[0] or "application/octet-stream",
                        size=size, sha256=digest.hexdigest(), linked_type=rt.key, linked_uid=record.uid,
                        visibility=record.visibility if record.visibility != "public" else "network",
                        origin_instance=instance_service.instance_code())
    target = stored_path(uploads, document)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp.name, target)
    db.session.add(document)
    db.session.add(ChangeLog(record_type=rt.key, record_uid=record.uid, record_title=rt.title_of(record)[:300],
                             action="attach", username=username, changes={"document": ["", document.title]}))
    return document


def for_record(record: Any) -> list[Document]:
    return list(db.session.scalars(db.select(Document).filter_by(linked_uid=record.uid, deleted=False)
                                   .order_by(Document.created_at)))


def get(uid: str) -> Document:
    document = db.session.scalars(db.select(Document).filter_by(uid=uid, deleted=False)).first()
    if document is None:
        raise NotFoundError(_("Ce document n'existe pas ou a été supprimé."))
    return document


def detach(rt: RecordType, record: Any, document: Document, *, username: str) -> None:
    """Tombstone an attachment (the file stays, so that the removal can be undone from a backup)."""
    check_editable(record)
    record_title = rt.title_of(record)
    document.deleted = True
    document.version += 1
    db.session.add(ChangeLog(record_type=document.linked_type, record_uid=document.linked_uid,
                             record_title=record_title[:300], action="detach", username=username,
                             changes={"document": [document.title, ""]}))
