"""What came in from outside: bundle and spreadsheet imports, what each changed, the conflicts kept.

An import is recorded with every record it created or replaced (and the row it replaced), so
that it can be undone; a conflict (a peer's record that disagrees with ours at the same version)
is kept and shown, never dropped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import db, new_uid, utcnow


class ImportBatch(db.Model):
    __tablename__ = "import_batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uid)
    kind: Mapped[str] = mapped_column(String(20), default="bundle")  # bundle, spreadsheet
    filename: Mapped[str] = mapped_column(String(255), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    origin_instance: Mapped[str] = mapped_column(String(64), default="")
    origin_name: Mapped[str] = mapped_column(String(200), default="")
    format_version: Mapped[str] = mapped_column(String(20), default="")
    username: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    status: Mapped[str] = mapped_column(String(20), default="applied")  # applied, undone
    undone_at: Mapped[datetime | None] = mapped_column(DateTime)
    undone_by: Mapped[str] = mapped_column(String(80), default="")
    # The backup file taken just before the import wrote (a name in the backups directory; "" when
    # none was taken: a PostgreSQL hub, or an import of an earlier release).
    backup_name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # The last change_log id once the import had written: a later row about one of its records is
    # a later change, which the undo must not silently throw away (services/imports.py).
    log_mark: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # {"tables": {table: {"created": n, "updated": n, "unchanged": n, "skipped": n, "conflicts": n}},
    #  "skipped": [{"table", "uid", "reason"}], ...}
    report: Mapped[dict] = mapped_column(JSON, default=dict)
    changes: Mapped[list[ImportChange]] = relationship(back_populates="batch", cascade="all, delete-orphan")


class ImportChange(db.Model):
    """One record an import created or replaced; `before` is the replaced row, to undo."""

    __tablename__ = "import_changes"
    __table_args__ = (Index("ix_import_changes_batch", "batch_id", "id"),
                      Index("ix_import_changes_record", "record_uid", "batch_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"))
    record_type: Mapped[str] = mapped_column(String(40))
    record_uid: Mapped[str] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(20))  # created, updated
    before: Mapped[dict | None] = mapped_column(JSON)
    batch: Mapped[ImportBatch] = relationship(back_populates="changes")


class ImportConflict(db.Model):
    """A record of a bundle that could not be taken as is, kept with the incoming row."""

    __tablename__ = "import_conflicts"
    __table_args__ = (Index("ix_import_conflicts_record", "record_uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"), index=True)
    record_type: Mapped[str] = mapped_column(String(40))
    record_uid: Mapped[str] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(String(40))  # same_version_differs, origin_mismatch
    origin_instance: Mapped[str] = mapped_column(String(64), default="")
    local_version: Mapped[int] = mapped_column(Integer, default=0)
    incoming_version: Mapped[int] = mapped_column(Integer, default=0)
    incoming: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SpreadsheetMapping(db.Model):
    """The column → field mapping a user chose for a spreadsheet layout, offered again next time."""

    __tablename__ = "spreadsheet_mappings"
    __table_args__ = (UniqueConstraint("record_type", "header_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(String(40))
    header_key: Mapped[str] = mapped_column(String(64))  # sha256 of the folded header row
    # {"columns": {column header: field name}, "values": {field name: {cell text: code}}}
    mapping: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PeerKey(db.Model):
    """The Ed25519 public key pinned for a peer city at its first signed bundle (trust on first use).

    A later bundle of that city must be signed by this key; an administrator may replace it on
    purpose, and the keys it replaced are kept in `previous_keys` ([{"public_key", "fingerprint",
    "pinned_at", "replaced_at", "replaced_by"}])."""

    __tablename__ = "peer_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    origin_instance: Mapped[str] = mapped_column(String(64), unique=True)
    city_name: Mapped[str] = mapped_column(String(200), default="")
    public_key: Mapped[str] = mapped_column(String(64))   # the 32 raw bytes, hex
    fingerprint: Mapped[str] = mapped_column(String(100))  # what officials read to each other by phone
    pinned_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    pinned_by: Mapped[str] = mapped_column(String(80), default="")
    previous_keys: Mapped[list] = mapped_column(JSON, default=list)


class SignedManifest(db.Model):
    """The last manifest a peer city signed: one line per record it shared (table, uid, version,
    content fingerprint), with the signature, kept so that this city can relay that city's records
    with the proof that they are its own. The manifest itself is a file of the data directory
    (`manifests/<origin>.tsv`, 30 MB at 100 000 records): `manifest` holds its head (origin, created,
    level) and its SHA-256 (see exchange/signing.py, `keep_manifest`)."""

    __tablename__ = "signed_manifests"
    id: Mapped[int] = mapped_column(primary_key=True)
    origin_instance: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[str] = mapped_column(String(64))  # hex
    manifest: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(128))  # hex
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
