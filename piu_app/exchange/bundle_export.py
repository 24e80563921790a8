"""Write an exchange bundle: what this city chose to share, as a Frictionless Data Package in a zip.

The sharing level decides what leaves the laptop: `network` carries network and public records,
`public` carries public records only; private records, drafts and anything that only a private
record could reveal (a link to it, a person's contact details without consent) never leave.
Rows are read in batches and written straight into the zip, so memory stays flat however large
the register is.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import queue
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from functools import cached_property
from hashlib import sha256
from itertools import islice, repeat
from operator import add, eq, itemgetter, methodcaller
from pathlib import Path
from typing import IO, Any

from flask_babel import LazyString
from sqlalchemy import Connection, String, and_, case, func, literal, not_, or_, select, type_coerce
from sqlalchemy.types import NullType

from .. import __version__
from ..database import (
    CELL_SEPARATOR,
    driver_batches,
    driver_rows,
    holds_character_sql,
    joined_cells_sql,
    streamed_subquery,
    writes_rows_itself,
)
from ..i18n import load_catalogue
from ..models import Document, InstanceSettings, Theme, VocabularyTerm, db, utcnow
from ..models.actors import Place, Territory
from ..models.experiments import Experiment
from ..services import documents as document_service
from . import bundle_format as bf
from . import signing

LEVELS = {"network": ("network", "public"), "public": ("public",)}
DEFAULT_LICENCE = {"public": "etalab-2.0", "network": "network-agreement"}
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
# Deflate level of the tables: at 100 000 innovations level 3 compresses the 143 MB of CSV in half
# the time of the default level 6, for a bundle 13 % larger (32.5 MB against 28.7; bench/RESULTS.md)
CSV_COMPRESSION = 3
# Every cell of a table is quoted (the header is not): the database writes a batch of rows as
# one string and Python quotes it in three replacements (see `_line_batches`).
CSV_QUOTING = csv.QUOTE_ALL


@dataclass
class ExportSummary:
    path: Path
    level: str
    rows: dict[str, int] = field(default_factory=dict)
    documents_included: int = 0
    size: int = 0


# --------------------------------------------------------------------------- labels in both languages

def both(label: Any) -> tuple[str, str]:
    """Return (French, English) of a label written in French in the code."""
    msgid = label._args[0] if isinstance(label, LazyString) else str(label or "")
    return msgid, load_catalogue("en").gettext(msgid) if msgid else ""


_IDENTITY_TITLES = {
    "uid": (("Identifiant unique (UUID)", "Unique identifier (UUID)"),
            ("Identifiant stable de la fiche, le même dans toutes les villes.",
             "Stable identifier of the record, the same in every city.")),
    "origin_instance": (("Instance d'origine", "Origin instance"),
                        ("Code de la ville qui possède la fiche : elle seule la modifie.",
                         "Code of the city that owns the record: only it edits the record.")),
    "created_at": (("Créée le (UTC)", "Created at (UTC)"), ("", "")),
    "updated_at": (("Modifiée le (UTC)", "Updated at (UTC)"), ("", "")),
    "version": (("Version", "Version"), ("Augmente à chaque modification ; la plus haute l'emporte.",
                                         "Grows with every change; the highest wins.")),
    "deleted": (("Supprimée", "Deleted"), ("Fiche supprimée (la suppression se propage).",
                                          "Deleted record (the deletion propagates).")),
    "visibility": (("Niveau de partage", "Sharing level"), ("network ou public.", "network or public.")),
    "lang": (("Langue (BCP 47)", "Language (BCP 47)"), ("", "")),
    "licence": (("Licence", "Licence"), ("", "")),
    "source": (("Source", "Source"), ("", "")),
    "verified": (("Avis vérifié", "Verified review"),
                 ("L'organisation évaluatrice a pris part à l'expérimentation citée.",
                  "The reviewing organisation took part in the cited experiment.")),
    "file_included": (("Fichier inclus", "File included"), ("Le fichier est dans documents/.", "The file is in documents/.")),
}


def _field_descriptor(col: bf.Column, table: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if col.label is not None:
        (title_fr, title_en), (desc_fr, desc_en) = both(col.label), both(col.help)
    elif col.name in _IDENTITY_TITLES:
        (title_fr, title_en), (desc_fr, desc_en) = _IDENTITY_TITLES[col.name]
    else:
        title_fr = title_en = col.name
        desc_fr = desc_en = ""
    if col.kind == "ref":
        desc_fr = (desc_fr + " " if desc_fr else "") + f"UUID d'une fiche de {col.ref}."
        desc_en = (desc_en + " " if desc_en else "") + f"UUID of a record of {col.ref}."
    if col.vocab:
        desc_fr = (desc_fr + " " if desc_fr else "") + f"Code du vocabulaire {col.vocab}."
        desc_en = (desc_en + " " if desc_en else "") + f"Code of the vocabulary {col.vocab}."
    descriptor: dict[str, Any] = {
        "name": col.name, "type": bf.SCHEMA_TYPES[col.kind], "title": title_fr,
        "description": " / ".join(d for d in (desc_fr, desc_en) if d) or title_fr,
        "x-title-en": title_en, "x-description-en": desc_en,
    }
    if col.kind == "bool":
        descriptor["trueValues"], descriptor["falseValues"] = ["true"], ["false"]
    if col.kind == "datetime":
        descriptor["format"] = "any"
    constraints: dict[str, Any] = {}
    if col.name in bf.IDENTITY[:7]:
        constraints["required"] = True
    if col.name == "uid" or col.kind == "ref":
        constraints["pattern"] = bf.UID_PATTERN
    if col.name == "uid" and table:
        constraints["unique"] = True
    if col.name == "visibility":
        constraints["enum"] = list(allowed)
    if col.name == "version":
        constraints["minimum"] = 1
    if col.max_length:
        constraints["maxLength"] = col.max_length
    if col.kind in ("int", "float"):
        if col.minimum is not None:
            constraints["minimum"] = int(col.minimum) if col.kind == "int" else col.minimum
        if col.maximum is not None:
            constraints["maximum"] = int(col.maximum) if col.kind == "int" else col.maximum
    if col.required and col.name not in bf.IDENTITY:
        # required for a live record only: a tombstone carries its identity alone
        descriptor["x-required-when-live"] = True
    if constraints:
        descriptor["constraints"] = constraints
    return descriptor


def _foreign_keys(columns: Iterable[bf.Column], own: str) -> list[dict[str, Any]]:
    keys = []
    for col in columns:
        if col.kind == "ref":
            keys.append({"fields": col.name, "reference": {"resource": "" if col.ref == own else col.ref,
                                                           "fields": "uid"}})
        elif col.vocab:
            keys.append({"fields": col.name, "reference": {"resource": f"vocabulary_{col.vocab}", "fields": "code"}})
    return keys


def table_schema(name: str, columns: tuple[bf.Column, ...], primary_key: list[str], level: str,
                 owner: str = "") -> dict[str, Any]:
    """Return the Table Schema of one bundle table."""
    allowed = LEVELS[level]
    return {
        "$schema": "https://datapackage.org/profiles/2.0/tableschema.json",
        "fields": [_field_descriptor(c, name, allowed) for c in columns],
        "primaryKey": primary_key,
        "foreignKeys": _foreign_keys(columns, name),
        "missingValues": [""],
    }


# --------------------------------------------------------------------------- writing

class _ZipWriter:
    """Write members into the zip, remembering each one's SHA-256 and size."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.files: dict[str, tuple[str, int]] = {}

    def write_bytes(self, name: str, data: bytes) -> None:
        self.zf.writestr(_info(name), data)
        self.files[name] = (hashlib.sha256(data).hexdigest(), len(data))

    def write_file(self, name: str, fh: IO[bytes], *, fast: bool = False) -> str:
        """Copy a file into a member (`fast`: the quickest compression, for text that hardly
        compresses, like the hex fingerprints of a manifest); return its SHA-256."""
        digest, size = hashlib.sha256(), 0
        info = _info(name, level=1 if fast else None)
        with self.zf.open(info, "w") as out:
            for block in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(block)
                out.write(block)
                size += len(block)
        self.files[name] = (digest.hexdigest(), size)
        return digest.hexdigest()

    def write_csv(self, name: str, header: list[str], batches: Iterable[list[list[str]]]) -> int:
        """Write a CSV member from batches of rows; return the number of rows."""
        digest, count = hashlib.sha256(), 0
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(header)
        writer = csv.writer(buffer, lineterminator="\r\n", quoting=CSV_QUOTING)

        def taken() -> bytes:
            data = buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            return data

        with self.zf.open(_info(name, level=CSV_COMPRESSION), "w") as out, _Drain(out, digest) as drain:
            for rows in batches:
                if isinstance(rows, LineBatch | ChildBatch):
                    buffer.write(rows.text)
                else:
                    writer.writerows(rows)
                count += len(rows)
                drain.put(taken())
            drain.put(taken())
        self.files[name] = (digest.hexdigest(), drain.size)
        return count


class _Drain:
    """Hash, compress and write chunks of a member on a second thread while the first one reads
    the next rows: hashlib and zlib release the GIL, so both cores of a small laptop work."""

    def __init__(self, out: IO[bytes], digest: Any) -> None:
        self.out, self.digest, self.size = out, digest, 0
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bundle-writer", daemon=True)

    def __enter__(self) -> _Drain:
        self.thread.start()
        return self

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            if self.error is None:  # after a failure, keep emptying the queue so that put() never blocks
                try:
                    self.digest.update(data)
                    self.out.write(data)
                    self.size += len(data)
                except BaseException as exc:  # handed over to the caller's thread
                    self.error = exc

    def put(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(data)

    def __exit__(self, kind: Any, *_rest: Any) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None and kind is None:
            raise self.error


def _info(name: str, *, level: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible archives
    info.compress_type = zipfile.ZIP_DEFLATED
    if level is not None:  # the attribute is private until Python 3.13
        setattr(info, "compress_level" if hasattr(zipfile.ZipInfo, "compress_level") else "_compresslevel", level)
    info.external_attr = 0o644 << 16
    return info


def bundle_filename(instance_code: str, when: dt.date | None = None) -> str:
    return f"{instance_code}-{(when or dt.date.today()).strftime('%Y%m%d')}.registre.zip"


def export_bundle(out: Path, *, level: str, uploads: Path | None = None, include_documents: bool = False,
                  max_document_bytes: int = MAX_DOCUMENT_BYTES, key: signing.SigningKey | None = None,
                  manifests: Path | None = None) -> ExportSummary:
    """Write the bundle of everything shared at `level` to `out` (atomically: a temporary file, then renamed),
    signed with `key` (see `signing`; None: unsigned, as earlier releases wrote them), with the kept
    manifests (in the folder `manifests`) of the other cities whose records it relays."""
    if level not in LEVELS:
        raise ValueError(level)
    conn = db.session.connection()
    instance = db.session.scalars(select(InstanceSettings)).first()
    tmp = out.with_name(f".{out.name}.part")
    summary = ExportSummary(out, level)
    manifest = _ManifestBuilder(instance.instance_code if instance else "", level, tmp.parent) if key else None
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            writer = _ZipWriter(zf)
            _write(writer, conn, summary, level, instance, uploads if include_documents else None, max_document_bytes,
                   signer=key, manifest=manifest, manifests=manifests)
        os.replace(tmp, out)
    finally:
        if manifest is not None:
            manifest.close()
            manifest.out.close()
        tmp.unlink(missing_ok=True)
    summary.size = out.stat().st_size
    return summary


def _write(writer: _ZipWriter, conn: Connection, summary: ExportSummary, level: str,
           instance: InstanceSettings | None, uploads: Path | None, max_document_bytes: int,
           *, signer: signing.SigningKey | None = None, manifest: _ManifestBuilder | None = None,
           manifests: Path | None = None) -> None:
    allowed = LEVELS[level]
    leaving = _leaving(allowed)
    shared_uid_of = _SharedRecords(conn, leaving)
    themes = bf.UidMaps(conn).theme_codes()
    resources: list[dict[str, Any]] = []
    schemas: dict[str, dict[str, Any]] = {}
    for key in bf.TABLE_ORDER:
        rtable = bf.TABLES[key]
        table = rtable.table
        header = [c.name for c in rtable.columns]
        shared_here = leaving[key]
        summary.rows[key] = 0  # the record table first in the summary, though its join rows are written first
        child_resources = []
        for child in rtable.children:
            # Before the records: a record's fingerprint in the manifest covers its join rows.
            # A tombstone carries no list.
            owners = and_(shared_here, table.c.deleted.is_not(True))
            kids = (_child_batches(conn, rtable, child, leaving, owners=owners)
                    if writes_rows_itself(conn) and not bf.is_column_child(child) and _plain_texts(conn, child)
                    else bf.child_text_rows(conn, rtable, child, shared_uid_of.uids_of, themes, owners=owners))
            with closing(kids):
                summary.rows[child.name] = writer.write_csv(f"data/{child.name}.csv", [c.name for c in child.columns],
                                                            manifest.children(child, kids) if manifest else kids)
            key_fields = [c.name for c in child.columns if c.name not in ("evidence", "match_note", "score")]
            if child.name == "review_scores":
                key_fields = ["review_uid", "criterion"]
            if child.primary_key:
                key_fields = list(child.primary_key)
            schemas[child.name] = table_schema(child.name, child.columns, key_fields, level, owner=child.owner)
            child_resources.append(_resource(child.name, (child.title, child.title_en)))
        # Links to records that stay here come out empty: the export reads them through the maps of
        # shared records only.
        # closing(): if writing fails, the thread reading ahead stops before the connection is rolled back
        if writes_rows_itself(conn):
            batches = _line_batches(conn, rtable, leaving, shared_uid_of.uids_of)
        else:
            batches = bf.record_text_rows(conn, rtable, shared_uid_of.uids_of, where=shared_here)
        with closing(batches):
            rows = batches if writes_rows_itself(conn) else map(_redactor(rtable), batches)
            summary.rows[key] = writer.write_csv(f"data/{key}.csv", header,
                                                 manifest.rows(rtable, rows) if manifest else rows)
        schemas[key] = table_schema(key, rtable.columns, ["uid"], level)
        resources.append(_resource(key, rtable.rt.label_plural))
        resources.extend(child_resources)

    summary.rows["documents"], summary.documents_included = _write_documents(
        writer, conn, allowed, shared_uid_of, uploads, max_document_bytes)
    schemas["documents"] = table_schema("documents", bf.DOCUMENT_COLUMNS, ["uid"], level)
    resources.append(_resource("documents", ("Pièces jointes", "Attachments")))

    for name, terms in _vocabularies(conn).items():
        writer.write_csv(f"vocabularies/{name}.csv", list(bf.VOCABULARY_COLUMNS), [terms])
        resources.append({"name": f"vocabulary_{name}", "type": "table", "path": f"vocabularies/{name}.csv",
                          "scheme": "file", "format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
                          "title": f"Vocabulaire {name} / Vocabulary {name}",
                          "schema": f"schemas/vocabulary_{name}.json"})
        schemas[f"vocabulary_{name}"] = _vocabulary_schema()

    for name, schema in schemas.items():
        writer.write_bytes(f"schemas/{name}.json", _json(schema))
    for resource in resources:
        digest, size = writer.files[resource["path"]]
        resource["hash"], resource["bytes"] = f"sha256:{digest}", size

    _write_geo(writer, conn, shared_uid_of)
    now = utcnow().replace(microsecond=0)
    licence = DEFAULT_LICENCE[level]
    city = instance.city_name if instance else ""
    code = instance.instance_code if instance else ""
    package = {
        "$schema": "https://datapackage.org/profiles/2.0/datapackage.json",
        "name": f"piu-{code}".lower(),
        "title": f"Registre de l'innovation urbaine — {city}",
        "description": f"Paquet d'échange PIU de {city}, niveau de partage « {level} ». "
                       f"PIU exchange bundle of {city}, sharing level “{level}”.",
        "version": now.strftime("%Y%m%d%H%M%S"),
        "created": now.isoformat() + "Z",
        "licenses": [_licence(licence)],
        "contributors": [{"title": city, "roles": ["publisher"]}],
        "keywords": ["innovation urbaine", "urban innovation", "PIU"],
        "x-piu-format": {"name": bf.FORMAT_NAME, "version": ".".join(map(str, bf.FORMAT_VERSION))},
        "x-piu-origin": {"instance_code": code, "city_name": city,
                         "country_code": instance.country_code if instance else ""},
        "x-piu-level": level,
        "x-piu-app-version": __version__,
        "x-vocabulary-versions": {name: "1" for name in _vocabulary_names(conn)},
        "resources": resources,
    }
    if signer is not None and manifest is not None:
        package["x-piu-signature"] = _sign_manifests(writer, manifest, signer, manifests)
    writer.write_bytes("datapackage.json", _json(package))
    writer.write_bytes("dcat.jsonld", _json(_dcat(package, instance, licence, conn)))
    writer.write_bytes("LISEZMOI.md", _readme(package, summary, city, level, licence).encode("utf-8"))
    sums = "".join(f"{digest}  {name}\n" for name, (digest, _size) in sorted(writer.files.items()))
    writer.write_bytes("checksums.sha256", sums.encode("utf-8"))
    if signer is not None:
        writer.write_bytes(signing.BUNDLE_SIGNATURE, signer.sign(sums.encode("utf-8")).encode("ascii"))


_FIRST, _AFTER_OWNER = itemgetter(0), itemgetter(slice(1, None))


def _hex32(digests: Iterable[Any]) -> Iterator[str]:
    """The first 16 bytes of each digest, in hex (the fingerprints of `signing`), with no Python call per digest."""
    return map(itemgetter(slice(None, 32)), map(methodcaller("hexdigest"), digests))


class _ManifestBuilder:
    """Write this city's manifest (see `signing`) as the rows go into the zip, one line per own
    record, into a spooled temporary file, so that memory stays flat; the join rows of a record
    type are read first, their fingerprints kept until its records are (one dict per join table);
    remember the other cities whose records are relayed.

    The fingerprints are computed on a thread of their own, fed batch by batch in the order the
    rows are written: the main thread often waits for the database or for the compression, and
    that thread then works (the rows of a batch are not changed once written)."""

    def __init__(self, own: str, level: str, spool_dir: Path | None) -> None:
        self.own = own
        self.origins: set[str] = set()
        self.kids: dict[str, dict[str, str]] = {}  # join table -> owner uid -> fingerprint of its rows
        self.out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, dir=spool_dir)
        self.out.write(signing.manifest_head(own, utcnow().isoformat() + "Z", level))
        self.queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bundle-manifest", daemon=True)
        self.thread.start()

    def children(self, child: bf.ChildTable, batches: Iterable[list[list[str]]]) -> Iterator[list[list[str]]]:
        for rows in batches:
            self._put((self._children, child.name, rows))
            yield rows

    def rows(self, rtable: bf.RecordTable, batches: Iterable[list[list[str]]]) -> Iterator[list[list[str]]]:
        names = [c.name for c in rtable.columns]
        at = (names.index("uid"), names.index("origin_instance"), names.index("version"))
        kid_names = [child.name for child in rtable.children]
        for rows in batches:
            self._put((self._rows, rtable.name, at, kid_names, rows))
            yield rows
        self._put((self._forget, kid_names))

    def _put(self, item: tuple[Any, ...]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:  # after a failure, keep emptying the queue so that put() never blocks
                try:
                    item[0](*item[1:])
                except BaseException as exc:  # handed over to the caller's thread
                    self.error = exc

    def _children(self, name: str, rows: list[list[str]] | ChildBatch) -> None:
        # = signing.children_fingerprint per owner. An owner's join rows all come in one batch, next
        # to each other (see `bf.child_text_rows`, `_child_batches`); the work is mapped over the
        # batch with C functions, without a Python step per row: 300 000 join rows cost a second otherwise.
        found = self.kids.setdefault(name, {})
        if isinstance(rows, ChildBatch):
            fingerprints = _hex32(map(sha256, map(str.encode, rows.owners_joined())))
            found.update(zip(dict.fromkeys(rows.owner_uids), fingerprints, strict=True))
            return
        join = "\x00".join
        joined = iter(list(map(join, map(_AFTER_OWNER, rows))))
        for uid, count in Counter(map(_FIRST, rows)).items():
            found[uid] = sha256(join(sorted(islice(joined, count))).encode()).hexdigest()[:32]

    def _rows(self, table: str, at: tuple[int, int, int], kid_names: list[str],
              rows: list[list[str]] | LineBatch) -> None:
        # = signing.record_fingerprint(signing.row_fingerprint(row), …) per own record, mapped over
        # the batch with C functions (see `_children`)
        if isinstance(rows, LineBatch):  # written by the database: the joined cells come with the lines
            uids, origins, versions, joined = rows.uids, rows.origins, rows.versions, rows.joined
        else:
            uid_at, origin_at, version_at = at
            uids, origins, versions = (list(map(itemgetter(i), rows)) for i in (uid_at, origin_at, version_at))
            joined = list(map("\x00".join, rows))
        if set(origins) - {self.own}:
            self.origins |= set(origins) - {self.own}
            own = [i for i, origin in enumerate(origins) if origin == self.own]
            uids, versions, joined = ([values[i] for i in own] for values in (uids, versions, joined))
        fingerprints: Iterable[str] = _hex32(map(sha256, map(str.encode, joined)))
        if kid_names:
            for name in kid_names:
                fingerprints = map(add, fingerprints, map(self.kids.get(name, {}).get, uids,
                                                          repeat(signing.NO_CHILDREN)))
            fingerprints = _hex32(map(sha256, map(str.encode, fingerprints)))
        self.out.write("".join(map("{}\t{}\t{}\t{}\n".format, repeat(table), uids, versions,
                                   fingerprints)).encode())

    def _forget(self, kid_names: list[str]) -> None:
        for name in kid_names:
            self.kids.pop(name, None)

    def close(self) -> None:
        """Stop the thread (once the export is written, or has failed)."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()

    def write(self, writer: _ZipWriter) -> str:
        """Put the manifest into the zip; return its SHA-256."""
        self.close()
        if self.error is not None:
            raise self.error
        self.out.seek(0)
        with self.out:
            return writer.write_file(signing.MANIFEST, self.out, fast=True)


def _sign_manifests(writer: _ZipWriter, manifest: _ManifestBuilder, key: signing.SigningKey,
                    manifests: Path | None) -> dict[str, Any]:
    """Write this city's signed manifest and the manifests of the cities it relays; return the
    descriptor's `x-piu-signature`."""
    sha256 = manifest.write(writer)
    relayed = []
    relays = [o for o in manifest.origins if o != manifest.own and signing.is_origin_code(o)]
    for kept in signing.kept_manifests(relays) if manifests is not None else []:
        found = signing.kept_file(manifests, kept)
        if found is None:
            continue  # lost (a restored database): those records travel unproven
        path = signing.relayed_path(kept.origin_instance)
        with found.open("rb") as fh:
            writer.write_file(path, fh, fast=True)
        relayed.append({"origin": kept.origin_instance, "path": path, "public_key": kept.public_key,
                        "fingerprint": signing.fingerprint(kept.public_key), "signature": kept.signature})
    return {"algorithm": signing.ALGORITHM, "public_key": key.public_key, "fingerprint": key.fingerprint,
            "manifest": signing.MANIFEST, "manifest_signature": key.sign(signing.manifest_message(sha256)),
            "bundle_signature": signing.BUNDLE_SIGNATURE, "relayed": relayed}


class _SharedRecords:
    """The records that leave (`_leaving`), per table: id -> uid, and their uids; each table read
    when first asked for, in the export's transaction (an export written by the database needs a
    few: the links of the rows Python writes, the attachments, the map)."""

    def __init__(self, conn: Connection, leaving: Mapping[str, Any]) -> None:
        self.conn, self.leaving = conn, leaving
        self._uids_of: dict[str, dict[int, str]] = {}
        self._uids: dict[str, set[str]] = {}

    def uids_of(self, key: str) -> dict[int, str]:
        if key not in self._uids_of:
            table = bf.TABLES[key].table
            self._uids_of[key] = dict(driver_rows(self.conn, select(table.c.id, table.c.uid).where(self.leaving[key])))
        return self._uids_of[key]

    def uids(self, key: str) -> set[str]:
        if key not in self._uids:
            self._uids[key] = set(self.uids_of(key).values())
        return self._uids[key]


def _leaving(allowed: Iterable[str]) -> dict[str, Any]:
    """The condition, per table, on the records that leave at a level allowing `allowed`: shared,
    and not a draft, and (unless a tombstone, which carries no link) every record a required link
    points to leaves too. An experiment of a private innovation stays home: sent with its link
    blanked, it would make every peer refuse the whole bundle (a required link is missing)."""
    allowed = list(allowed)
    leaving: dict[str, Any] = {}
    for key in bf.TABLE_ORDER:  # the records a link points to come first
        table = bf.TABLES[key].table
        condition = _shared_here(table, allowed)
        for col in bf.TABLES[key].columns:
            if col.kind == "ref" and col.required and col.ref != key and col.ref in leaving:
                target = bf.TABLES[col.ref].table
                points_to_leaving = table.c[col.attr].in_(select(target.c.id).where(leaving[col.ref]))
                # A tombstone keeps a link the database cannot leave empty (a sequence's workshop):
                # it leaves only with that record, as a live one does. Written `+ 0` so that no index
                # serves it (as in `_shared_here`): given the link's index, SQLite read the few
                # workshops first and then sorted their sequences again for the pages' id order.
                condition = and_(condition, (table.c[col.attr] + 0).in_(select(target.c.id).where(leaving[col.ref]))
                                 if col.always else or_(table.c.deleted.is_not(False), points_to_leaving))
        leaving[key] = condition
    return leaving


def _shared_here(table: Any, allowed: Iterable[str]) -> Any:
    """The records of `table` that leave at a level allowing `allowed` visibilities (drafts never do)."""
    # Written so that no index can serve it (`visibility || ''`, `IS NOT true`; the same records:
    # neither column is ever NULL): almost every record meets it, and the pages of an export are
    # read in id order. Given the draft or the visibility index (made for the dashboard's newest
    # drafts and the lists), SQLite lost the id order and sorted the whole table again for every
    # page of 5 000 rows: 41 s instead of 10 at 100 000 innovations.
    return and_(table.c.visibility.concat("").in_(allowed), table.c.draft.is_not(True))


@dataclass
class _Redaction:
    """Where, in a row of `rtable` (texts in column order), the cells `_redactor` may clear are."""
    cleared: list[int]  # all but the identity (and the title, except a person's name): a tombstone's
    deleted: int
    persons: bool
    visibility: int = -1
    consent: int = -1
    contact: tuple[int, ...] = ()
    bio: int = -1


def _redaction(rtable: bf.RecordTable) -> _Redaction:
    names = [c.name for c in rtable.columns]
    at = {name: i for i, name in enumerate(names)}
    keep = set(bf.IDENTITY) | ({rtable.rt.title_attr} if rtable.name != "persons" else set()) | {
        c.name for c in rtable.columns if c.always}  # a tombstone keeps the links its row cannot be without
    plan = _Redaction([i for i, name in enumerate(names) if name not in keep], at["deleted"], rtable.name == "persons")
    if plan.persons:
        plan.visibility, plan.consent = at["visibility"], at["contact_consent"]
        plan.contact, plan.bio = (at["email"], at["phone"]), at["public_bio"]
    return plan


def _redactor(rtable: bf.RecordTable) -> Any:
    """Return the function that removes, from a batch of rows (texts in column order), what must
    not travel: contact details without consent, a private person's biography, and the content
    of a tombstone (a deletion travels as the record's identity alone). Links to records that
    stay here are already empty (see `_write`). Rows are changed in place; the batch is returned.
    `_redacted_sql` is the same rule written in SQL."""
    plan = _redaction(rtable)
    cleared, deleted, persons = plan.cleared, plan.deleted, plan.persons
    visibility, consent, contact, bio = plan.visibility, plan.consent, plan.contact, plan.bio

    def redact(rows: list[list[str]]) -> list[list[str]]:
        for row in rows:
            if row[deleted] == "true":
                for i in cleared:
                    row[i] = ""
            elif persons:
                public = row[visibility] == "public"
                if not (public and row[consent] == "true"):
                    for i in contact:
                        row[i] = ""
                if not public:
                    row[bio] = ""
        return rows

    return redact


def _redacted_sql(rtable: bf.RecordTable, cells: list[Any]) -> list[Any]:
    """`_redactor` in SQL: the text cells of a row of `rtable` (SQL expressions, in column order)
    with what must not travel replaced by empty texts."""
    plan = _redaction(rtable)
    deleted = cells[plan.deleted] == literal("true")
    if plan.persons:
        public = cells[plan.visibility] == literal("public")
        consented = and_(public, cells[plan.consent] == literal("true"))
    redacted = list(cells)
    for i in plan.cleared:
        whens = [(deleted, literal(""))]
        if plan.persons and i in plan.contact:
            whens.append((not_(consented), literal("")))
        if plan.persons and i == plan.bio:
            whens.append((not_(public), literal("")))
        redacted[i] = case(*whens, else_=cells[i])
    return redacted


class LineBatch:
    """Rows of a record table as the database wrote them (see `_line_batches`), redacted.

    The reading thread hands over the rows' texts (cells joined by CELL_SEPARATOR); the CSV is
    made on the thread that writes (`text`), the NUL-joined cells on the manifest's (`joined`):
    the reading thread goes back to the database sooner."""

    def __init__(self, uids: list[str], origins: list[str], versions: list[str], *, texts: list[str] | None = None,
                 whole: str = "", text: str | None = None, joined: list[str] | None = None) -> None:
        self.uids, self.origins, self.versions = uids, origins, versions
        self._texts, self._whole = texts, whole  # whole: the texts joined by U+0002
        if text is not None:
            self.text = text
        if joined is not None:
            self.joined = joined

    @cached_property
    def text(self) -> str:
        """The CSV lines of the rows (`CSV_QUOTING`)."""
        return _quoted(self._whole)

    @cached_property
    def joined(self) -> list[str]:
        """Each row's cells joined by NUL characters: what its fingerprint hashes."""
        return list(map(methodcaller("replace", CELL_SEPARATOR, "\x00"), self._texts or []))

    def __len__(self) -> int:
        return len(self.uids)


def _line_batches(conn: Connection, rtable: bf.RecordTable, leaving: Mapping[str, Any], uids_of: Any,
                  *, batch: int = 5000) -> Iterator[LineBatch]:
    """Yield, by batches in id order, the redacted rows of the records of `rtable` that leave,
    each written by the database as one string (`database.joined_cells_sql`) while it reads:
    SQLite does that work without the interpreter's lock, where the Python path
    (`bf.record_text_rows`, `_redactor`, csv.writer) builds some thirty objects per row under it,
    so the threads that hash, compress and fingerprint (`_Drain`, `_ManifestBuilder`) have the
    interpreter to themselves meanwhile. Python then quotes a whole batch at once (every cell is
    quoted, so three replacements write the CSV). A link's text is the uid of its record when that
    record leaves too (the condition of `uids_of`'s maps, in the same transaction). A row the
    database cannot write exactly as Python does (see `bf.cell_text_sql`) is written by Python."""
    table = rtable.table
    cells: list[Any] = []
    joined_from: Any = table
    for n, col in enumerate(rtable.columns):
        column = table.c[col.attr]
        if col.kind == "ref":
            target = bf.TABLES[col.ref or ""].table
            shared = select(target.c.id, target.c.uid).where(leaving[col.ref]).subquery(f"link_{n}")
            joined_from = joined_from.outerjoin(shared, shared.c.id == column)
            cells.append(func.coalesce(type_coerce(shared.c.uid, NullType()), literal("")))
        else:
            cells.append(bf.cell_text_sql(conn, column, col.kind))
    # Subqueries the engine runs as co-routines (`streamed_subquery`): the cells, computed once;
    # the cells redacted; the row's text.
    kinds = [col.kind for col in rtable.columns]
    names = [col.name for col in rtable.columns]
    identity = [names.index(name) for name in ("uid", "origin_instance", "version")]

    def query() -> Any:
        base = streamed_subquery(select(table.c.id.label("id"), *(cell.label(f"c{i}") for i, cell in enumerate(cells)))
                                 .select_from(joined_from).where(leaving[rtable.name]).order_by(table.c.id), "cells")
        redacted = streamed_subquery(select(base.c.id, *(cell.label(f"r{i}") for i, cell in enumerate(
            _redacted_sql(rtable, [base.c[f"c{i}"] for i in range(len(cells))])))), "redacted")
        texts = [redacted.c[f"r{i}"] for i in range(len(cells))]
        row_sql = joined_cells_sql(texts, may_be_null=[kind in ("float", "date", "datetime") for kind in kinds],
                                   may_hold_nul=[kind in ("text", "ref", "date") for kind in kinds])
        return select(redacted.c.id, *(texts[i] for i in identity), row_sql)

    position = {c.name: i for i, c in enumerate(table.c)}
    redact = _redactor(rtable)
    width = len(cells)

    def pages() -> Iterator[LineBatch]:
        for rows in driver_batches(conn, query(), batch):
            ids, uids, origins, versions, texts = (list(column) for column in zip(*rows, strict=True))
            if None not in texts:
                whole = "\x02".join(texts)
                if whole.count(CELL_SEPARATOR) == len(texts) * (width - 1) and whole.count("\x02") == len(texts) - 1:
                    yield LineBatch(uids, origins, versions, texts=texts, whole=whole)
                    continue
            # Rare (a text with a control character, a value only Python writes): Python writes
            # the rows the database could not, row by row for this batch.
            again = [ids[i] for i, text in enumerate(texts)
                     if text is None or text.count(CELL_SEPARATOR) != width - 1 or "\x02" in text]
            raw = {r[position["id"]]: r for r in driver_rows(conn, bf.raw_select(table).where(table.c.id.in_(again)))}
            python_text = bf.row_text_function(rtable, position, uids_of)
            by_python = dict(zip(again, redact([python_text(raw[id_]) for id_ in again]), strict=True))
            rows_ = [by_python[id_] if id_ in by_python else text.split(CELL_SEPARATOR)
                     for id_, text in zip(ids, texts, strict=True)]
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\r\n", quoting=CSV_QUOTING).writerows(rows_)
            yield LineBatch([row[identity[0]] for row in rows_], [row[identity[1]] for row in rows_],
                            [row[identity[2]] for row in rows_], text=buffer.getvalue(),
                            joined=list(map("\x00".join, rows_)))

    # No reading thread here (unlike `bf.read_ahead`): the engine takes the rows' work off the
    # interpreter, and a second thread handing the interpreter's lock back and forth at every row
    # cost more than it saved (bench/RESULTS.md).
    yield from pages()


class ChildBatch:
    """Join rows as the database wrote them (see `_child_batches`): whole owners, sorted. As in
    `LineBatch`, the CSV and the NUL-joined cells are made by the threads that need them."""

    def __init__(self, owner_uids: list[str], afters: list[str], whole: str) -> None:
        self.owner_uids = owner_uids  # each row's owner
        self._afters, self._whole = afters, whole  # the cells after the owner; every row's cells

    @cached_property
    def text(self) -> str:
        """The CSV lines of the rows (`CSV_QUOTING`)."""
        return _quoted(self._whole)

    @cached_property
    def joined(self) -> list[str]:
        """Each row's cells after the owner, joined by NUL characters."""
        return list(map(methodcaller("replace", CELL_SEPARATOR, "\x00"), self._afters))

    def __len__(self) -> int:
        return len(self.owner_uids)

    def owners_joined(self) -> list[str]:
        """Each owner's rows (`joined`, already sorted) joined by NUL characters, owner after owner:
        what `signing.children_fingerprint` hashes, made with C functions only (a U+0003 ends an
        owner: no text holds one, see `_plain_texts`)."""
        same_owner = map(eq, self.owner_uids, self.owner_uids[1:])
        ends = [*map(_ROW_END.__getitem__, same_owner), "\x03"]
        return "".join(map(add, self.joined, ends))[:-1].split("\x03")


_ROW_END = {True: "\x00", False: "\x03"}  # after a row: its owner's next row, or the next owner


def _plain_texts(conn: Connection, child: bf.ChildTable) -> bool:
    """Whether no text of the join table `child` holds a character the database's rows cannot
    carry (NUL, CELL_SEPARATOR, U+0002, U+0003; forms and imports refuse them all): then
    `_child_batches` writes it, otherwise Python does (`bf.child_text_rows`)."""
    ctable, _owner, mapping = bf.child_db_table(child)
    texts = [ctable.c[mapping[c.name]] for c in child.columns[1:] if c.kind == "text" and c.name != "theme_code"]
    if not texts:
        return True
    odd = holds_character_sql(texts, (0, 1, 2, 3))
    return conn.execute(select(literal(1)).select_from(ctable).where(odd).limit(1)).first() is None


def _child_batches(conn: Connection, rtable: bf.RecordTable, child: bf.ChildTable, leaving: Mapping[str, Any],
                   *, owners: Any, batch: int = 5000) -> Iterator[ChildBatch]:
    """`bf.child_text_rows` written by the database (see `_line_batches`): the join rows of the
    records of `rtable` that match `owners`, grouped by owner in id order, each owner's rows sorted
    (the engine compares texts as Python does, by code point), a row with a link to a record that
    stays here left out (an inner join on the records that leave). One statement streams them; a
    batch ends with an owner's last row."""
    table = rtable.table
    ctable, owner_col, mapping = bf.child_db_table(child)
    owner = ctable.c[owner_col]
    joined_from: Any = ctable.join(table, table.c.id == owner)
    cells: list[Any] = []
    for n, col in enumerate(child.columns[1:]):
        raw = ctable.c[mapping[col.name]]
        if col.name == "theme_code":
            themes = select(Theme.id, Theme.code).subquery(f"themes_{n}")
            joined_from = joined_from.join(themes, themes.c.id == raw)
            cells.append(type_coerce(themes.c.code, String))
        elif col.kind == "ref":
            target = bf.TABLES[col.ref or ""].table
            shared = select(target.c.id, target.c.uid).where(leaving[col.ref]).subquery(f"link_{n}")
            joined_from = joined_from.join(shared, shared.c.id == raw)
            cells.append(type_coerce(shared.c.uid, String))
        else:
            cells.append(type_coerce(bf.cell_text_sql(conn, raw, col.kind), String))
    after = joined_cells_sql(cells, may_be_null=[False] * len(cells), may_hold_nul=[False] * len(cells))
    query = select(table.c.uid, after).select_from(joined_from).where(owners).order_by(owner, *cells)

    width = len(cells)

    def pages() -> Iterator[ChildBatch]:
        held: list[tuple[str, str]] = []  # the last owner's rows, which may go on in the next batch
        for rows in driver_batches(conn, query, batch):
            rows = held + rows
            last = rows[-1][0]
            cut = len(rows)
            while cut and rows[cut - 1][0] == last:
                cut -= 1
            held = rows[cut:]
            if cut:
                yield _child_batch(rows[:cut], width)
        if held:
            yield _child_batch(held, width)

    yield from pages()  # no reading thread: see `_line_batches`


def _child_batch(rows: list[tuple[str, str]], width: int) -> ChildBatch:
    owner_uids, afters = (list(column) for column in zip(*rows, strict=True))
    whole = "\x02".join(map(f"{{}}{CELL_SEPARATOR}{{}}".format, owner_uids, afters))
    if (whole.count(CELL_SEPARATOR) != len(rows) * width or whole.count("\x02") != len(rows) - 1
            or "\x03" in whole):
        raise RuntimeError("a join row holds a control character")  # `_plain_texts` said there was none
    return ChildBatch(owner_uids, afters, whole)


def _quoted(whole: str) -> str:
    """The CSV lines (`CSV_QUOTING`) of rows joined by U+0002, their cells by CELL_SEPARATOR."""
    return '"' + whole.replace('"', '""').replace(CELL_SEPARATOR, '","').replace("\x02", '"\r\n"') + '"\r\n'


def _resource(name: str, label: Any) -> dict[str, Any]:
    title_fr, title_en = label if isinstance(label, tuple) else both(label)
    return {"name": name, "type": "table", "path": f"data/{name}.csv", "scheme": "file", "format": "csv",
            "mediatype": "text/csv", "encoding": "utf-8", "title": title_fr, "x-title-en": title_en,
            "schema": f"schemas/{name}.json"}


def _vocabulary_schema() -> dict[str, Any]:
    fields = [{"name": c, "type": "string"} for c in bf.VOCABULARY_COLUMNS]
    fields[0]["constraints"] = {"required": True, "unique": True}
    return {"fields": fields, "primaryKey": ["code"], "missingValues": [""]}


def _vocabulary_names(conn: Connection) -> list[str]:
    return sorted({*conn.execute(select(VocabularyTerm.vocabulary).distinct()).scalars(), "themes"})


def _vocabularies(conn: Connection) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for term in conn.execute(select(VocabularyTerm).order_by(VocabularyTerm.vocabulary, VocabularyTerm.position,
                                                             VocabularyTerm.code)).mappings():
        found.setdefault(term["vocabulary"], []).append(
            [term["code"], bf.write_value("text", term["label_fr"]), bf.write_value("text", term["label_en"]),
             bf.write_value("text", term["definition_fr"]), "", "piu", "1"])
    found["themes"] = [[t["code"], bf.write_value("text", t["label_fr"]), bf.write_value("text", t["label_en"]), "",
                        t["parent_code"], "piu", "1"]
                       for t in conn.execute(select(Theme).order_by(Theme.position, Theme.code)).mappings()]
    return found


def _write_documents(writer: _ZipWriter, conn: Connection, allowed: tuple[str, ...],
                     shared: _SharedRecords, uploads: Path | None,
                     max_bytes: int) -> tuple[int, int]:
    header = [c.name for c in bf.DOCUMENT_COLUMNS]
    rows: list[list[str]] = []
    included = 0
    query = select(Document.__table__).where(Document.visibility.in_(allowed), Document.draft.is_(False))
    for doc in conn.execute(query.order_by(Document.id)).mappings():
        if doc["linked_type"] not in bf.TABLES or doc["linked_uid"] not in shared.uids(doc["linked_type"]):
            continue  # attached to a record that stays here
        # a row whose digest names no file of uploads/ (an old, hostile import) never sends a file
        path = document_service.stored_path(uploads, doc["sha256"]) if uploads else None
        has_file = bool(path and not doc["deleted"] and path.is_file() and doc["size"] <= max_bytes)
        if has_file and path is not None:
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == doc["sha256"]:
                writer.write_bytes(f"documents/{doc['sha256']}", data)
                included += 1
            else:
                has_file = False  # a damaged file is not shared as if it were the original
        values = {c.name: bf.write_value(c.kind, doc[c.attr]) for c in bf.DOCUMENT_COLUMNS if c.attr}
        values["file_included"] = "true" if has_file else "false"
        rows.append([values[h] for h in header])
    return writer.write_csv("data/documents.csv", header, [rows]), included


def _write_geo(writer: _ZipWriter, conn: Connection, shared: _SharedRecords) -> None:
    """GeoJSON (RFC 7946: WGS84, [longitude, latitude]) of shared places and experiments."""
    places = []
    for p in conn.execute(select(Place.id, Place.uid, Place.name, Place.place_type, Place.visibility, Place.lat,
                                 Place.lon).where(Place.deleted.is_(False))).mappings():
        if p["id"] in shared.uids_of("places") and p["lat"] is not None and p["lon"] is not None:
            places.append(_feature(p["lon"], p["lat"], p["uid"], p["name"], p["place_type"], p["visibility"]))
    coords = {r.id: (r.lon, r.lat) for r in conn.execute(select(Place.id, Place.lat, Place.lon)) if r.lat is not None}
    territory_coords = {r.id: (r.lon, r.lat) for r in conn.execute(select(Territory.id, Territory.lat, Territory.lon))
                        if r.lat is not None and r.lon is not None}
    experiments = []
    # Only the experiments that leave and could be on the map (a shared place or territory with
    # coordinates): reading the 50 000 others cost half a second at 100 000 innovations.
    located = or_(Experiment.place_id.in_(select(Place.id).where(shared.leaving["places"], Place.lat.is_not(None))),
                  Experiment.territory_id.in_(select(Territory.id).where(
                      shared.leaving["territories"], Territory.lat.is_not(None), Territory.lon.is_not(None))))
    for e in conn.execute(select(Experiment.id, Experiment.uid, Experiment.title, Experiment.status,
                                 Experiment.visibility, Experiment.place_id, Experiment.territory_id)
                          .where(Experiment.deleted.is_(False), shared.leaving["experiments"], located)).mappings():
        where = None
        if e["place_id"] in shared.uids_of("places"):
            where = coords.get(e["place_id"])
        if where is None and e["territory_id"] in shared.uids_of("territories"):
            where = territory_coords.get(e["territory_id"])
        if where and where[0] is not None:
            experiments.append(_feature(where[0], where[1], e["uid"], e["title"], e["status"], e["visibility"]))
    for name, features in (("places", places), ("experiments", experiments)):
        writer.write_bytes(f"geo/{name}.geojson", _json({"type": "FeatureCollection", "features": features}))


def _feature(lon: float, lat: float, uid: str, name: str, kind: str, visibility: str) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"uid": uid, "name": name, "type": kind, "visibility": visibility}}


def _licence(code: str) -> dict[str, str]:
    if code == "etalab-2.0":
        return {"name": "etalab-2.0", "title": "Licence Ouverte / Open Licence 2.0",
                "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"}
    return {"name": "network-agreement", "title": "Accord de partage du réseau (pas une donnée ouverte) / "
                                                  "Network data-sharing agreement (not open data)"}


def _dcat(package: Mapping[str, Any], instance: InstanceSettings | None, licence: str,
          conn: Connection) -> dict[str, Any]:
    """The DCAT-AP 3.0 record of the bundle (a Dataset with one Distribution), for catalogues."""
    city = instance.city_name if instance else ""
    country = instance.country_code if instance else ""
    spatial: dict[str, Any] = {"@type": "dct:Location", "skos:prefLabel": city}
    if instance and instance.home_territory_uid:
        home = conn.execute(select(Territory.name, Territory.lat, Territory.lon)
                            .where(Territory.uid == instance.home_territory_uid)).first()
        if home and home.lat is not None and home.lon is not None:
            spatial["dcat:centroid"] = {"@type": "gsp:wktLiteral", "@value": f"POINT({home.lon} {home.lat})"}
    if country:
        spatial["dct:identifier"] = country
    licence_uri = ("https://www.etalab.gouv.fr/licence-ouverte-open-licence/" if licence == "etalab-2.0"
                   else "urn:piu:licence:network-agreement")
    return {
        "@context": {"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/",
                     "foaf": "http://xmlns.com/foaf/0.1/", "skos": "http://www.w3.org/2004/02/skos/core#",
                     "gsp": "http://www.opengis.net/ont/geosparql#", "xsd": "http://www.w3.org/2001/XMLSchema#"},
        "@id": f"urn:piu:bundle:{package['name']}:{package['version']}",
        "@type": "dcat:Dataset",
        "dct:title": [{"@language": "fr", "@value": package["title"]},
                      {"@language": "en", "@value": f"Urban innovation register — {city}"}],
        "dct:description": [{"@language": "fr", "@value": package["description"].split(". PIU")[0]},
                            {"@language": "en", "@value": f"PIU exchange bundle of {city}, level {package['x-piu-level']}."}],
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": city},
        "dct:issued": {"@type": "xsd:dateTime", "@value": package["created"]},
        "dct:modified": {"@type": "xsd:dateTime", "@value": package["created"]},
        "dct:spatial": spatial,
        "dct:license": {"@id": licence_uri},
        "dcat:keyword": package["keywords"],
        "dcat:distribution": [{
            "@type": "dcat:Distribution",
            "dcat:accessURL": {"@id": "urn:piu:bundle:local-file"},
            "dct:format": "application/zip",
            "dcat:mediaType": "application/zip",
            "dct:license": {"@id": licence_uri},
            "dct:conformsTo": {"@id": bf.SCHEMA_BASE_URI},
        }],
    }


def _readme(package: Mapping[str, Any], summary: ExportSummary, city: str, level: str, licence: str) -> str:
    counts = "\n".join(f"| {name} | {n} |" for name, n in summary.rows.items() if n)
    level_fr = {"network": "réseau (fiches « Réseau » et « Public »)", "public": "public (fiches « Public » seulement)"}
    level_en = {"network": "network (network and public records)", "public": "public (public records only)"}
    return f"""# {package['title']}

**Niveau de partage : {level_fr[level]}.** Licence : {_licence(licence)['title']}.
Produit par PIU {package['x-piu-app-version']} le {package['created']} (format {bf.FORMAT_NAME}
{package['x-piu-format']['version']}).

Ce paquet contient les fiches que {city} a choisi de partager. Les fiches privées, les brouillons et
les coordonnées des personnes sans consentement n'y figurent jamais. Chaque fiche garde son
identifiant (`uid`) et sa ville d'origine (`origin_instance`) : seule cette ville peut la modifier.
Les ateliers partagés voyagent avec leurs tableaux, leurs thèmes et leurs post-it (texte et nombre de
votes), jamais avec leurs participants (seulement leur nombre par groupe d'acteurs), les votes un à
un, les post-it masqués ou en attente de modération, ni l'auteur d'un post-it.

- `datapackage.json` : description Frictionless Data Package (tables, schémas, clés, empreintes SHA-256) ;
- `data/*.csv` : une table par type de fiche (UTF-8, virgule, dates ISO 8601) ;
- `vocabularies/*.csv` : les listes de codes et leurs libellés ;
- `schemas/*.json` : le schéma de chaque table ; `geo/*.geojson` : lieux et expérimentations ;
- `dcat.jsonld` : la fiche de catalogue (DCAT-AP) ; `checksums.sha256` : l'empreinte de chaque fichier.

Pour l'ouvrir : PIU → Échanges → Importer un paquet, ou `piu import FICHIER.zip`.

**Ouvrir les CSV dans un tableur.** Les cellules contiennent les données telles qu'elles ont été
saisies : un texte peut commencer par `=`, `+`, `-` ou `@` (un numéro de téléphone « +221 … »,
par exemple). Un tableur lancé par un double-clic sur le fichier exécuterait un tel texte comme une
formule. N'ouvrez donc pas un CSV par double-clic : importez-le comme texte (LibreOffice Calc :
Fichier → Ouvrir, puis dans la boîte d'import cochez « Format des colonnes : Texte » pour toutes les
colonnes ; Excel : Données → À partir d'un fichier texte/CSV, puis « Ne pas détecter les types de
données »). Pour un tableau prêt à lire, exportez plutôt la liste en XLSX depuis PIU.

| table | lignes / rows |
| --- | --- |
{counts}

---

# Urban innovation register — {city}

**Sharing level: {level_en[level]}.** Licence: {_licence(licence)['title']}.
This bundle holds the records {city} chose to share. Private records, drafts and contact details
of persons without consent are never in it. Every record keeps its identifier (`uid`) and its
origin city (`origin_instance`): only that city edits it. Shared workshops carry their boards,
themes and sticky notes (text and vote count); never their participants (only counts by actor
group), single votes, hidden or unmoderated notes, or who wrote a note. Open it in PIU (Exchange → Import a
bundle, or `piu import FILE.zip`); the tables are plain UTF-8 CSV described by `datapackage.json`.

**Opening the CSVs in a spreadsheet program.** Cells hold the data as it was entered: a text may
start with `=`, `+`, `-` or `@` (a phone number "+221 …", for example), which a spreadsheet opened
by double-clicking the file would run as a formula. Do not double-click a CSV: import it as text
(LibreOffice Calc: File → Open, then set every column's type to Text in the import dialog; Excel:
Data → From Text/CSV, then "Do not detect data types"). For a table ready to read, export the list
as XLSX from PIU instead.
"""


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=False).encode("utf-8")
