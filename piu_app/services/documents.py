"""Attachments: files kept in the data directory, linked to a record, named by their SHA-256.

A stored file's name is only ever a digest PIU computed itself from the bytes, and every path to a
stored file is built here, from a digest checked to be 64 lowercase hex digits, and resolved inside
the uploads folder: nothing a user or an imported file says becomes a path. A file is accepted by
its content (magic bytes), never by its name, and its media type is the one its content shows.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from flask_babel import gettext as _
from sqlalchemy import select

from .. import transaction_files
from ..models import ChangeLog, Document, db
from ..registry import RecordType
from . import InvalidInputError, NotFoundError
from . import instance as instance_service
from .records import check_editable

MAX_FILENAME = 255
MAX_TITLE = 200
SHA256 = re.compile(r"[0-9a-f]{64}")

# Extension → media type of the formats PIU keeps; the content decides which one a file is.
MEDIA_TYPES = {
    ".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".gif": "image/gif", ".webp": "image/webp",
    ".odt": "application/vnd.oasis.opendocument.text", ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".doc": "application/msword", ".xls": "application/vnd.ms-excel", ".ppt": "application/vnd.ms-powerpoint",
    ".rtf": "application/rtf", ".csv": "text/csv", ".txt": "text/plain", ".md": "text/markdown",
}
ALLOWED_EXTENSIONS = frozenset(MEDIA_TYPES)
TEXT_EXTENSIONS = frozenset({".csv", ".txt", ".md"})
# Media types a browser may show inside PIU's own page (`?inline=1`): images only, never active content.
INLINE_TYPES = frozenset({"image/png", "image/jpeg"})

_MAGIC: tuple[tuple[bytes, int, tuple[str, ...]], ...] = (
    (b"%PDF-", 0, (".pdf",)),
    (b"\x89PNG\r\n\x1a\n", 0, (".png",)),
    (b"\xff\xd8\xff", 0, (".jpg", ".jpeg")),
    (b"GIF87a", 0, (".gif",)),
    (b"GIF89a", 0, (".gif",)),
    # OLE compound file: legacy office, and also a password-protected OOXML document
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, (".doc", ".xls", ".ppt", ".docx", ".xlsx", ".pptx")),
    (b"{\\rtf", 0, (".rtf",)),
)
_ODF = {"application/vnd.oasis.opendocument.text": ".odt", "application/vnd.oasis.opendocument.spreadsheet": ".ods",
        "application/vnd.oasis.opendocument.presentation": ".odp"}
_OOXML = {"word/": ".docx", "xl/": ".xlsx", "ppt/": ".pptx"}
# Path parts and characters a file system or a Content-Disposition header could read as more than a name.
_UNSAFE = re.compile(r'[<>:"|?*]')
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --------------------------------------------------------------------------- names and paths

def is_digest(text: object) -> bool:
    """True for exactly 64 lowercase hex digits: the only text that may name a stored file."""
    return isinstance(text, str) and SHA256.fullmatch(text) is not None


def path_for_digest(uploads: Path, digest: str) -> Path:
    """Where the file of this SHA-256 lives; refuse anything that is not a digest or would leave `uploads`."""
    if not is_digest(digest):
        raise InvalidInputError(_("Empreinte SHA-256 invalide : ce document ne désigne aucun fichier."))
    root = Path(os.path.realpath(uploads))
    target = Path(os.path.realpath(root / digest[:2] / digest))
    if target.parent.parent != root:  # a symlinked sub-folder, say: never follow it out of uploads/
        raise InvalidInputError(_("Empreinte SHA-256 invalide : ce document ne désigne aucun fichier."))
    return target


def stored_path(uploads: Path, document: Document | str) -> Path | None:
    """The stored file of a document (or a digest), or None when it names no valid file (an old, hostile import)."""
    try:
        return path_for_digest(uploads, document if isinstance(document, str) else document.sha256)
    except InvalidInputError:
        return None


def clean_filename(name: str, *, default_ext: str = "") -> str:
    """A file name without path parts or control characters, at most 255 characters.

    A name left empty becomes "document" with its own extension (or `default_ext`)."""
    text = "".join(c for c in str(name) if unicodedata.category(c) != "Cc" and c not in _BIDI)
    text = _UNSAFE.sub("_", text.replace("\\", "/").rsplit("/", 1)[-1]).strip().rstrip(". ")
    bare = text.lstrip(". ")
    if bare != text and "." not in bare:  # ".pdf": an extension alone
        stem, ext = "", "." + bare
    else:
        stem, ext = os.path.splitext(bare)
    if len(ext) > 32:  # no extension is that long: part of the name
        stem, ext = bare, ""
    ext = ext.lower() or default_ext
    if not stem.strip():
        return "document" + ext
    return stem[:MAX_FILENAME - len(ext)].rstrip() + ext


def extension(filename: str) -> str:
    return os.path.splitext(filename)[1].lower()


# --------------------------------------------------------------------------- content

def detect_media_type(fh: IO[bytes], filename: str) -> str | None:
    """The media type that the content of `fh` (seekable, read from its start) shows, if it is a format
    PIU keeps and the name's extension agrees with it (an extension-less name takes the content's);
    None otherwise. Text formats (CSV, TXT, MD) must be UTF-8 without NUL."""
    ext = extension(filename)
    fh.seek(0)
    head = fh.read(64)
    fh.seek(0)
    if ext in TEXT_EXTENSIONS:
        return MEDIA_TYPES[ext] if _is_utf8_text(fh) else None
    found: tuple[str, ...] = ()
    for magic, offset, exts in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            found = exts
            break
    else:
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            found = (".webp",)
        elif head[:4] == b"PK\x03\x04":
            found = _zip_kind(fh)
    if not found:
        return None
    if not ext:
        ext = found[0]
    return MEDIA_TYPES[ext] if ext in found else None


def _zip_kind(fh: IO[bytes]) -> tuple[str, ...]:
    """The office format of a zip container (ODF by its `mimetype` member, OOXML by its parts), if any."""
    try:
        with zipfile.ZipFile(fh) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                with zf.open("mimetype") as member:
                    declared = member.read(100).decode("ascii", "replace").strip()
                return (_ODF[declared],) if declared in _ODF else ()
            if "[Content_Types].xml" in names:
                for prefix, ext in _OOXML.items():
                    if any(n.startswith(prefix) for n in names):
                        return (ext,)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError):
        return ()
    finally:
        fh.seek(0)
    return ()


def _is_utf8_text(fh: IO[bytes]) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := fh.read(1 << 16):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        fh.seek(0)
    return True


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _refused_type(ext: str) -> InvalidInputError:
    return InvalidInputError(_("Type de fichier non accepté (%(ext)s). Formats acceptés : PDF, images, "
                               "documents bureautiques, CSV, texte.", ext=ext or "?"))


# --------------------------------------------------------------------------- writing files

def store_stream(uploads: Path, digest: str, stream: IO[bytes]) -> bool:
    """Store the bytes of `stream` under `digest` if they hash to it: written to a temporary name,
    fsynced, then renamed. Return True when a file was written, False when the right one was there
    already (a file whose bytes are not its name is replaced). Memory stays bounded whatever the size."""
    target = path_for_digest(uploads, digest)
    if target.is_file() and not target.is_symlink() and file_digest(target) == digest:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".import-")
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as fh:
            while block := stream.read(1 << 20):
                h.update(block)
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        if h.hexdigest() != digest:
            raise InvalidInputError(_("Le contenu du fichier joint ne correspond pas à son empreinte SHA-256."))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def forget_files_on_rollback(uploads: Path, digests: Iterable[str]) -> None:
    """Remove these newly written files if the current transaction is rolled back (nothing half-written)."""
    transaction_files.remove_on_rollback(path_for_digest(uploads, d) for d in digests)


def remove_files_after_commit(uploads: Path, digests: Iterable[str]) -> None:
    """Remove the files of these digests once the current transaction commits (an undone import's)."""
    transaction_files.remove_after_commit(path_for_digest(uploads, d) for d in digests)


def unreferenced(digests: Iterable[str]) -> set[str]:
    """The digests that no document row (tombstones included) names any more."""
    wanted = {d for d in digests if is_digest(d)}
    used = set(db.session.scalars(select(Document.sha256).where(Document.sha256.in_(sorted(wanted))))) if wanted else set()
    return wanted - used


# --------------------------------------------------------------------------- the service

def attach(rt: RecordType, record: Any, *, stream: IO[bytes], filename: str, title: str, doc_type: str,
           uploads: Path, max_bytes: int, username: str) -> Document:
    """Store an uploaded file (checked by content, content-addressed, written atomically) and link it to a record."""
    check_editable(record)
    safe_name = clean_filename(filename)
    ext = extension(safe_name)
    if ext and ext not in ALLOWED_EXTENSIONS:
        raise _refused_type(ext)
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
            tmp.flush()
            os.fsync(tmp.fileno())
            if size == 0:
                raise InvalidInputError(_("Le fichier est vide."))
            media_type = detect_media_type(tmp, safe_name)
            if media_type is None:
                if not ext:
                    raise _refused_type(ext)
                raise InvalidInputError(_("Le contenu de ce fichier n'est pas celui d'un fichier %(ext)s : refusé. "
                                          "Formats acceptés : PDF, images, documents bureautiques, CSV, texte.",
                                          ext=ext))
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    if not ext:  # a name with no extension takes the one its content shows
        ext = next(e for e, t in MEDIA_TYPES.items() if t == media_type)
        safe_name = clean_filename(safe_name + ext)
    document = Document(title=(title.strip() or safe_name)[:MAX_TITLE], doc_type=doc_type or "other",
                        filename=safe_name, media_type=media_type,
                        size=size, sha256=digest.hexdigest(), linked_type=rt.key, linked_uid=record.uid,
                        visibility=record.visibility if record.visibility != "public" else "network",
                        origin_instance=instance_service.instance_code())
    try:
        target = path_for_digest(uploads, document.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp.name, target)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
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


def open_stored(uploads: Path, document: Document) -> tuple[Path, str]:
    """The checked file of a document and the media type its content shows, for a download.

    Refuse a row that names no valid file, a missing file, or a file whose bytes are not its digest."""
    path = stored_path(uploads, document)
    if path is None:
        raise NotFoundError(_("Ce document ne désigne aucun fichier valide : il ne peut pas être téléchargé."))
    if not path.is_file():
        raise NotFoundError(_("Le fichier de ce document manque dans le dossier de données."))
    if file_digest(path) != document.sha256:
        raise NotFoundError(_("Le fichier de ce document est abîmé (son contenu ne correspond plus à son "
                              "empreinte SHA-256) : il ne peut pas être téléchargé."))
    with path.open("rb") as fh:
        media_type = detect_media_type(fh, clean_filename(document.filename)) or "application/octet-stream"
    return path, media_type


def detach(rt: RecordType, record: Any, document: Document, *, username: str) -> None:
    """Tombstone an attachment (the file stays, so that the removal can be undone from a backup)."""
    check_editable(record)
    record_title = rt.title_of(record)
    document.deleted = True
    document.version += 1
    db.session.add(ChangeLog(record_type=document.linked_type, record_uid=document.linked_uid,
                             record_title=record_title[:300], action="detach", username=username,
                             changes={"document": [document.title, ""]}))
