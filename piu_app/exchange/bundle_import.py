"""Take in a bundle from another city: check everything, show what would change, apply, undo.

The order is strict, so that a bad file changes nothing:
1. `open_bundle` checks the archive itself (paths, links, sizes, compression ratio, member count),
   the format version and the SHA-256 of every file, without extracting anything to disk;
2. `plan_import` reads every table and checks every cell against its schema (type, range, length:
   refused, never cut; codes, identifiers, duplicate join keys, links to a record of the bundle
   that the import writes or of this register), and decides per record: new, updated, unchanged,
   skipped (with the reason) or in conflict: the preview. Applying it runs no other check, so a
   bundle the preview calls valid does not fail half-way;
3. `apply_import` writes that plan in the caller's transaction after a backup, and records what it
   created and what it replaced, so that `undo_import` can put everything back.

Merge rules (DOMAIN.md, "exchange bundle"): a record belongs to its origin city; this city's own
records are never overwritten by a bundle; a higher version replaces a lower one; an older one is
skipped; the same version with other content is taken from its owner's own bundle (a share level
may have hidden a link before) but kept as a conflict when it is relayed by a third city.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import IO, Any

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, Connection, delete, func, insert, literal, select, update

from ..database import deferred_indexes, driver_rows, fold, insert_rows, reserve_ids
from ..models import (
    ChangeLog,
    Document,
    ImportBatch,
    ImportChange,
    ImportConflict,
    Theme,
    VocabularyTerm,
    db,
    utcnow,
)
from ..registry import RECORD_TYPES
from ..services import ConflictError, InvalidInputError, NotFoundError
from ..services import documents as document_service
from ..services import imports as imports_service
from ..services import search as search_service
from . import bundle_format as bf
from . import signing
from .cells import restore

MAX_MEMBERS = 20_000
MAX_TOTAL_BYTES = 2 * 1024**3          # uncompressed, all members together
MAX_MEMBER_BYTES = 1024**3
MAX_RATIO = 200                         # a CSV compresses 5 to 20 times; a zip bomb a thousand
RATIO_FLOOR = 1024 * 1024               # small members may compress well without being bombs
MAX_ERRORS_SHOWN = 30
ACTIONS = ("created", "updated", "unchanged", "skipped", "conflict")
WRITE_CHUNK = 5000
INT_RANGE = (-2**31, 2**31 - 1)         # INTEGER columns (PostgreSQL int4; SQLite overflows at 2**63)
MAX_DESCRIPTOR_BYTES = 8 * 1024 * 1024  # datapackage.json: ours is a few hundred KB whatever the register's size
MAX_JSON_DEPTH = 32                     # ours nests 6 levels; Python's parser overflows its stack near 1 000
CITY_NAME_LENGTH = 200                  # ImportBatch.origin_name
# What a damaged member raises when read (a cut or corrupted stream, an unknown compression method).
DAMAGED = (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, OSError)
# What a damaged archive raises when its directory is read: the above, and a header whose fields
# do not add up (found by tests/exchange/test_bundle_fuzz.py).
UNREADABLE = (*DAMAGED, ValueError, struct.error)


class BundleError(InvalidInputError):
    """A bundle refused as a whole; `problems` lists what is wrong, in the user's language."""

    def __init__(self, message: Any, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


# --------------------------------------------------------------------------- 1. the archive

@dataclass
class Bundle:
    zf: zipfile.ZipFile
    descriptor: dict[str, Any]
    sha256: str
    filename: str
    origin_instance: str
    origin_name: str
    format_version: str
    level: str
    signature: signing.BundleSignature | None = None  # None: unsigned (a bundle of an earlier release)

    def open_text(self, name: str) -> IO[str]:
        return io.TextIOWrapper(self.zf.open(name), encoding="utf-8", newline="")

    def has(self, name: str) -> bool:
        return name in self.zf.NameToInfo

    def close(self) -> None:
        self.zf.close()


def open_bundle(path: Path, *, filename: str = "") -> Bundle:
    """Open a bundle and check the archive, the format and the checksums; refuse anything doubtful."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    try:
        zf = zipfile.ZipFile(path)
    except UNREADABLE as exc:
        raise BundleError(_("Ce fichier n'est pas une archive zip lisible (fichier tronqué ou abîmé ?).")) from exc
    try:
        _check_members(zf)
        descriptor = _descriptor(zf)
        origin = descriptor.get("x-piu-origin") or {}
        bundle = Bundle(zf, descriptor, digest.hexdigest(), filename or path.name,
                        str(origin.get("instance_code") or ""), str(origin.get("city_name") or ""),
                        str((descriptor.get("x-piu-format") or {}).get("version") or ""),
                        str(descriptor.get("x-piu-level") or ""))
        if not bundle.origin_instance:
            raise BundleError(_("Le paquet ne dit pas de quelle ville il vient (x-piu-origin manquant)."))
        _check_checksums(bundle)
        bundle.signature = _check_signature(bundle)
        return bundle
    except BaseException:
        zf.close()
        raise


def _check_members(zf: zipfile.ZipFile) -> None:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise BundleError(_("L'archive contient trop de fichiers (%(n)d, au plus %(max)d).",
                            n=len(infos), max=MAX_MEMBERS))
    total = 0
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":") or path.is_absolute():
            raise BundleError(_("L'archive contient un chemin absolu (%(name)s) : refusée.", name=name[:80]))
        if ".." in path.parts:
            raise BundleError(_("L'archive contient un chemin qui sort du dossier (%(name)s) : refusée.",
                                name=name[:80]))
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BundleError(_("L'archive contient un lien symbolique (%(name)s) : refusée.", name=name[:80]))
        if name in seen:
            raise BundleError(_("L'archive contient deux fois le fichier %(name)s : refusée.", name=name[:80]))
        seen.add(name)
        if info.flag_bits & 0x1:
            raise BundleError(_("L'archive est chiffrée : PIU n'ouvre que des paquets non chiffrés."))
        if info.file_size > MAX_MEMBER_BYTES or info.file_size > RATIO_FLOOR and (
                info.compress_size == 0 or info.file_size / info.compress_size > MAX_RATIO):
            raise BundleError(_("Le fichier %(name)s se décompresse en une taille démesurée (bombe zip ?) : "
                                "archive refusée.", name=name[:80]))
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise BundleError(_("L'archive se décompresse en plus de %(max)s Go : refusée.",
                                max=MAX_TOTAL_BYTES // 1024**3))


def _read_member(zf: zipfile.ZipFile, name: str, limit: int = 64 * 1024 * 1024) -> bytes:
    """Read a member, never more than `limit` bytes whatever its header claims."""
    try:
        with zf.open(name) as fh:
            data = fh.read(limit + 1)
    except DAMAGED as exc:
        raise BundleError(_("L'archive est abîmée (fichier %(name)s illisible).", name=name[:80])) from exc
    if len(data) > limit:
        raise BundleError(_("Le fichier %(name)s est trop gros.", name=name))
    return data


def _descriptor(zf: zipfile.ZipFile) -> dict[str, Any]:
    if "datapackage.json" not in zf.NameToInfo:
        raise BundleError(_("Ce n'est pas un paquet d'échange PIU : datapackage.json est absent."))
    info = zf.NameToInfo["datapackage.json"]
    if info.file_size > MAX_DESCRIPTOR_BYTES:
        raise BundleError(_("datapackage.json est démesuré (%(size)d Mo, au plus %(max)d Mo) : paquet refusé.",
                            size=info.file_size // 1024**2, max=MAX_DESCRIPTOR_BYTES // 1024**2))
    try:
        text = _read_member(zf, "datapackage.json", limit=MAX_DESCRIPTOR_BYTES).decode("utf-8-sig")
        if _json_depth(text) > MAX_JSON_DEPTH:
            raise BundleError(_("datapackage.json est imbriqué trop profondément (plus de %(max)d niveaux) : "
                                "paquet refusé.", max=MAX_JSON_DEPTH))
        descriptor = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BundleError(_("datapackage.json est illisible (JSON invalide).")) from exc
    if not isinstance(descriptor, dict):
        raise BundleError(_("datapackage.json est illisible (JSON invalide)."))
    resources = descriptor.setdefault("resources", [])
    if not isinstance(descriptor.get("x-piu-origin") or {}, dict) or not isinstance(resources, list) \
            or not all(isinstance(r, dict) for r in resources):
        raise BundleError(_("datapackage.json est mal formé (x-piu-origin ou resources)."))
    if descriptor.get("x-piu-level") not in (None, "", "network", "public"):
        raise BundleError(_("Le niveau de partage du paquet (x-piu-level) est inconnu : paquet refusé."))
    origin = descriptor.get("x-piu-origin") or {}
    code, city = origin.get("instance_code"), origin.get("city_name")
    if code and (not isinstance(code, str) or _INSTANCE_CODE.fullmatch(code) is None):
        raise BundleError(_("Le code de la ville d'origine du paquet (x-piu-origin) n'a pas la forme d'un code "
                            "d'instance (minuscules, chiffres et tirets, 3 à 64 caractères) : paquet refusé."))
    if city and (not isinstance(city, str) or len(city) > CITY_NAME_LENGTH or _CONTROL.search(city)):
        raise BundleError(_("Le nom de la ville d'origine du paquet (x-piu-origin) est invalide (texte de "
                            "%(max)d caractères au plus) : paquet refusé.", max=CITY_NAME_LENGTH))
    fmt = descriptor.get("x-piu-format") or {}
    if not isinstance(fmt, dict) or fmt.get("name") != bf.FORMAT_NAME:
        raise BundleError(_("Ce n'est pas un paquet d'échange PIU (format inconnu)."))
    if _FORMAT_VERSION.fullmatch(str(fmt.get("version", ""))) is None:  # major.minor, as every PIU writes it
        raise BundleError(_("La version du format du paquet est illisible."))
    version = tuple(int(part) for part in str(fmt.get("version", "")).split("."))
    if version[:1] > bf.FORMAT_VERSION[:1] or version > bf.FORMAT_VERSION:
        raise BundleError(_("Ce paquet a été fait par une version plus récente de PIU (format %(theirs)s ; "
                            "celle-ci lit jusqu'au format %(ours)s). Mettez PIU à jour pour l'importer.",
                            theirs=fmt.get("version"), ours=".".join(map(str, bf.FORMAT_VERSION))))
    return descriptor


_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)
_INSTANCE_CODE = re.compile(bf.INSTANCE_CODE_PATTERN)
_FORMAT_VERSION = re.compile(r"[0-9]{1,4}\.[0-9]{1,4}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _json_depth(text: str) -> int:
    """Return how deeply the arrays and objects of a JSON text nest, without parsing it (a parser
    recurses once per level: a text of nested brackets would overflow its stack). One pass, linear
    whatever the text (an unclosed string must not make it quadratic)."""
    depth = deepest = 0
    in_string = False
    for match in _JSON_TOKENS.finditer(text):  # an iterator: a list of 4 million tokens would not be bounded memory
        token = match.group()
        if token == '"':
            in_string = not in_string
        elif in_string or token[0] == "\\":
            continue  # brackets inside strings, and escaped characters, do not count
        elif token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _check_checksums(bundle: Bundle) -> None:
    """Every file listed in checksums.sha256 and every resource hash must match the bytes."""
    zf = bundle.zf
    if "checksums.sha256" not in zf.NameToInfo:
        raise BundleError(_("Le paquet n'a pas de fichier d'empreintes (checksums.sha256)."))
    expected: dict[str, str] = {}
    for line in _read_member(zf, "checksums.sha256").decode("utf-8", "replace").splitlines():
        if line.strip():
            digest, _sep, name = line.partition("  ")
            expected[name] = digest.strip().lower()
    for resource in bundle.descriptor.get("resources", []):
        declared = str(resource.get("hash", "")).removeprefix("sha256:").lower()
        path = str(resource.get("path", ""))
        if declared and expected.get(path, declared) != declared:
            raise BundleError(_("Les empreintes de %(name)s ne concordent pas.", name=path))
        if path and path not in expected and declared:
            expected[path] = declared
    bad: list[str] = []
    for name, digest in expected.items():
        if name not in zf.NameToInfo:
            raise BundleError(_("Le fichier %(name)s annoncé par le paquet est absent.", name=name[:80]))
        h = hashlib.sha256()
        try:
            with zf.open(name) as fh:
                for block in iter(lambda fh=fh: fh.read(1024 * 1024), b""):
                    h.update(block)
        except DAMAGED as exc:
            raise BundleError(_("L'archive est abîmée (fichier %(name)s illisible).", name=name[:80])) from exc
        if h.hexdigest() != digest:
            bad.append(name)
    if bad:
        raise BundleError(_("Le contenu de %(names)s ne correspond pas à son empreinte SHA-256 : le paquet a été "
                            "modifié ou abîmé en route. Demandez un nouvel export.", names=", ".join(bad[:5])))


def _check_signature(bundle: Bundle) -> signing.BundleSignature | None:
    """Check the producer's signature: it covers checksums.sha256, which must list every other
    member, and its manifest. Refuse a bundle whose signature is incomplete or does not verify.
    Whether the key is the one pinned for the city is for `plan_import` (it reads the register)."""
    zf = bundle.zf
    declared = bundle.descriptor.get("x-piu-signature")
    if declared is None and not bundle.has(signing.BUNDLE_SIGNATURE):
        return None
    unreadable = BundleError(_("La signature du paquet est incomplète ou illisible : paquet refusé. "
                               "Demandez un nouvel export à la ville."))
    public = declared.get("public_key") if isinstance(declared, dict) else None
    if not isinstance(declared, dict) or not bundle.has(signing.BUNDLE_SIGNATURE) \
            or declared.get("algorithm") != signing.ALGORITHM or not signing.is_public_key(public):
        raise unreadable
    sums = _read_member(zf, "checksums.sha256")
    signature = _read_member(zf, signing.BUNDLE_SIGNATURE, limit=1024).decode("ascii", "replace").strip()
    key_fingerprint = signing.fingerprint(public)
    if not signing.verify(public, sums, signature):
        raise BundleError(_("La signature du paquet ne correspond pas à son contenu (clé %(fingerprint)s) : il a été "
                            "modifié après avoir été signé. Paquet refusé ; demandez un nouvel export à la ville.",
                            fingerprint=key_fingerprint))
    listed = {name: digest.strip().lower() for digest, _sep, name in
              (line.partition("  ") for line in sums.decode("utf-8", "replace").splitlines() if line.strip())}
    unlisted = [name for name in zf.namelist()
                if name not in listed and name not in (signing.BUNDLE_SIGNATURE, "checksums.sha256")
                and not name.endswith("/")]
    if unlisted:
        raise BundleError(_("Le paquet contient des fichiers que sa signature ne couvre pas (%(names)s) : paquet "
                            "refusé.", names=", ".join(n[:80] for n in unlisted[:5])))
    # The manifest's SHA-256 is in checksums.sha256, checked against its bytes: its signature signs that.
    manifest_signature = declared.get("manifest_signature")
    if signing.MANIFEST not in listed or not signing.verify(public, signing.manifest_message(listed[signing.MANIFEST]),
                                                            manifest_signature):
        raise unreadable
    try:
        with zf.open(signing.MANIFEST) as fh:
            manifest = signing.parse_manifest(fh.read(4096), records=False)  # its records need no check
    except (ValueError, *DAMAGED) as exc:
        raise unreadable from exc
    if manifest.origin != bundle.origin_instance or not signing.is_origin_code(manifest.origin):
        raise unreadable
    found = signing.BundleSignature(public, key_fingerprint, str(manifest_signature), manifest,
                                    listed[signing.MANIFEST])
    entries = declared.get("relayed") or []
    if not isinstance(entries, list):
        raise unreadable
    for entry in entries:
        origin = entry.get("origin") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not signing.is_origin_code(origin) or origin in found.relayed \
                or entry.get("path") != signing.relayed_path(origin) or entry["path"] not in listed:
            raise unreadable
        found.relayed[origin] = signing.CarriedManifest(origin, str(entry.get("public_key") or ""),
                                                        str(entry.get("signature") or ""), entry["path"],
                                                        listed[entry["path"]])
    return found


# --------------------------------------------------------------------------- 2. the plan

@dataclass
class Decision:
    table: str
    uid: str
    action: str                      # created, updated, unchanged, skipped, conflict
    reason: str = ""                 # why skipped / in conflict (a code, see REASONS)
    title: str = ""
    version: int = 0
    local_version: int = 0
    deleted: bool = False
    origin: str = ""


def reasons() -> dict[str, str]:
    return {
        "own_record": _("fiche de votre ville : jamais remplacée par un paquet"),
        "older_version": _("version plus ancienne que la vôtre"),
        "origin_mismatch": _("cette fiche existe ici avec une autre ville d'origine"),
        "same_version_differs": _("même version, contenu différent, relayée par une autre ville"),
        "no_file": _("fichier joint absent du paquet"),
        "attached_elsewhere": _("pièce jointe d'une fiche que cet import n'apporte pas"),
        "document_origin": _("pièce jointe d'une autre ville que celle de sa fiche"),
        "file_type": _("fichier joint d'un type non accepté (son contenu n'est pas celui qu'annonce son nom)"),
        "relay_document": _("pièce jointe relayée par une autre ville : seule sa ville d'origine, dont la clé est "
                            "enregistrée ici, peut l'envoyer"),
        "relay_unproven": _("relayée sans la preuve signée de sa ville d'origine, dont la clé est enregistrée ici"),
        "relay_bad_signature": _("relayée avec une preuve dont la signature ne vérifie pas"),
        "relay_not_in_manifest": _("relayée, mais absente de ce que sa ville d'origine a signé"),
        "relay_differs": _("relayée, mais différente de ce que sa ville d'origine a signé (contenu, version "
                           "ou suppression)"),
    }


@dataclass
class Plan:
    bundle: Bundle
    own_code: str
    decisions: dict[str, dict[str, Decision]] = field(default_factory=dict)
    children: dict[str, dict[str, list[tuple]]] = field(default_factory=dict)  # only of owners to write
    documents: list[dict[str, Any]] = field(default_factory=list)
    missing_terms: dict[str, list[list[str]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # first (a signed bundle of a city not pinned yet: its key is pinned at apply), verified (signed
    # by the key pinned for the city), unverified (unsigned, from a city not pinned) or own (our code)
    trust: str = "unverified"
    relays: dict[str, signing.RelayProof] = field(default_factory=dict)  # origin -> proof, of relayed records
    unverified: dict[str, int] = field(default_factory=dict)  # origin -> records taken without proof
    workshop_of_session: dict[str, str] = field(default_factory=dict)  # sequence uid -> its workshop's uid

    def counts(self) -> dict[str, dict[str, int]]:
        found = {}
        for table, decisions in self.decisions.items():
            row = dict.fromkeys(ACTIONS, 0)
            for d in decisions.values():
                row[d.action] += 1
            found[table] = row
        return found

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(ACTIONS, 0)
        for row in self.counts().values():
            for k, v in row.items():
                totals[k] += v
        return totals

    @property
    def has_changes(self) -> bool:
        t = self.totals()
        return bool(t["created"] or t["updated"] or self.documents or self.missing_terms)

    def to_write(self, table: str) -> dict[str, Decision]:
        return {uid: d for uid, d in self.decisions.get(table, {}).items() if d.action in ("created", "updated")}


def plan_import(bundle: Bundle, own_code: str) -> Plan:
    """Read and check every table of the bundle against this register; write nothing."""
    plan = Plan(bundle, own_code)
    _check_trust(plan)
    resources = {str(r.get("name")): r for r in bundle.descriptor.get("resources", []) if isinstance(r, dict)}
    conn = db.session.connection()
    in_bundle: dict[str, set[str]] = {}
    vocab = _vocabularies(bundle, resources, conn, plan)
    for key in bf.TABLE_ORDER:
        rtable = bf.TABLES[key]
        in_bundle[key] = set()
        t = rtable.table
        local = {uid: (id_, version, origin, digest) for id_, uid, version, origin, digest in driver_rows(
            conn, select(t.c.id, t.c.uid, t.c.version, t.c.origin_instance, t.c.content_digest))}
        digests: dict[str, bytes] = {}
        incoming: dict[str, Decision] = {}
        self_refs: list[tuple[int, str]] = []
        self_ref_columns = [col.name for col in rtable.columns if col.kind == "ref" and col.ref == key]
        relayed: dict[str, str] = {}  # uid -> row fingerprint, of the records of a third city
        header = [c.name for c in rtable.columns]
        at = {name: i for i, name in enumerate(header)}
        parts_of_workshops: list[tuple[int, str, str, str, str]] = []  # (line, uid, origin, workshop, sequence)
        check = _row_check_function(key, rtable.columns, in_bundle, vocab, conn)
        title = next((c for c in rtable.columns if c.name == rtable.rt.title_attr), None)
        for line, row in _rows(bundle, resources, key, header, plan):
            if check(row):  # the values a Decision needs, as `_check_row` would give them
                origin = row[at["origin_instance"]]
                values = {"version": int(row[at["version"]]), "deleted": row[at["deleted"]] == "true",
                          "origin_instance": origin,
                          rtable.rt.title_attr: bf.read_value(title.kind, row[at[title.name]]) if title else None}
            else:
                values = _check_row(plan, key, line, rtable.columns, dict(zip(header, row, strict=True)), in_bundle,
                                    vocab, conn)
                if values is None:
                    continue
            uid = row[at["uid"]]
            if uid in in_bundle[key]:
                plan.errors.append(_("%(table)s, ligne %(line)d : l'identifiant %(uid)s apparaît deux fois.",
                                     table=key, line=line, uid=uid))
                continue
            in_bundle[key].add(uid)
            self_refs += [(line, row[at[name]]) for name in self_ref_columns if row[at[name]]]
            incoming[uid] = Decision(key, uid, "", title=str(values.get(rtable.rt.title_attr) or ""),
                                     version=values["version"], deleted=values["deleted"],
                                     origin=values["origin_instance"])
            if uid in local:  # only a record already here is compared, content against content
                digests[uid] = _digest(row)
            if values["origin_instance"] not in (bundle.origin_instance, own_code):
                relayed[uid] = signing.row_fingerprint(row)
            if key in _WORKSHOP_PARTS:
                parts_of_workshops.append((line, uid, values["origin_instance"], row[at["workshop_uid"]],
                                           row[at["session_uid"]] if "session_uid" in at else ""))
        children: dict[str, dict[str, list[tuple]]] = {}
        for child in rtable.children:
            children[child.name] = _child_rows(bundle, resources, child, plan, in_bundle, vocab, conn)
        if any(child.uid_keyed for child in rtable.children):
            _check_parts(plan, rtable, children, conn)
        if parts_of_workshops:
            _check_workshop_of(plan, key, parts_of_workshops, conn)
        if relayed:
            _check_relayed(plan, rtable, incoming, relayed, children)
        _decide(plan, rtable, local, incoming, digests, children, conn)
        # A record the import will not write and that is not here (one claiming to be of this city)
        # is nothing a link can point to: links to it are refused below, never written as empty links.
        in_bundle[key] -= {uid for uid, d in incoming.items() if uid not in local and d.action != "created"}
        for line, target in self_refs:
            if target not in in_bundle[key] and target not in local:
                plan.errors.append(_("%(table)s, ligne %(line)d : le lien vers %(uid)s ne mène à aucune fiche.",
                                     table=key, line=line, uid=target))
        writing = plan.to_write(key)
        plan.children.update({name: {owner: rows for owner, rows in per_owner.items() if owner in writing}
                              for name, per_owner in children.items()})
    _plan_documents(plan, resources, in_bundle)
    if plan.errors:
        shown = plan.errors[:MAX_ERRORS_SHOWN]
        more = len(plan.errors) - len(shown)
        if more:
            shown.append(_("… et %(n)d autres erreurs.", n=more))
        raise BundleError(_("Le paquet contient des erreurs : rien n'a été importé."), shown)
    return plan


def _rows(bundle: Bundle, resources: Mapping[str, Any], name: str, header: list[str],
          plan: Plan) -> Iterator[tuple[int, list[str]]]:
    """Yield (line, cells) of a table, the cells in the order of `header` (a list, not a dict:
    building 500 000 dicts costs more than reading the file)."""
    path = f"data/{name}.csv"
    if name not in resources or not bundle.has(path):
        return  # a table may be absent: nothing of that kind was shared
    with _csv_reader(bundle, path, name) as reader:
        got = next(reader, None)
        if got is None:
            return
        missing = set(header) - set(got)
        if missing:
            raise BundleError(_("La table %(name)s n'a pas les colonnes attendues (manquent : %(cols)s).",
                                name=name, cols=", ".join(sorted(missing))))
        positions = [got.index(h) for h in header]
        width = len(got)
        in_order = positions == list(range(width))  # the file's own columns, in our order: zip them
        # A bundle of format 1.0 wrote risky text with a leading apostrophe: take it off here, once,
        # so that every check, comparison and write below sees the value as it was entered.
        texts = [i for i, h in enumerate(header) if _COLUMN_KINDS.get((name, h)) == "text"] if _escaped(bundle) else []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != width:
                plan.errors.append(_("%(table)s, ligne %(line)d : %(n)d cellules au lieu de %(w)d.",
                                     table=name, line=line, n=len(cells), w=width))
                continue
            row = cells if in_order else [cells[p] for p in positions]
            for i in texts:
                if row[i][:1] == "'":
                    row[i] = restore(row[i])
            yield line, row


def _escaped(bundle: Bundle) -> bool:
    """Whether the bundle's text cells carry the formula escape (format 1.0; never since 1.1)."""
    version = tuple(int(part) for part in bundle.format_version.split("."))  # major.minor (`_descriptor`)
    return version in bf.ESCAPED_FORMATS


# (table, column) -> kind, for every table of a bundle
_COLUMN_KINDS = {(table, col.name): col.kind for table, columns in (
    *((key, rtable.columns) for key, rtable in bf.TABLES.items()),
    *((child.name, child.columns) for rtable in bf.TABLES.values() for child in rtable.children),
    ("documents", bf.DOCUMENT_COLUMNS)) for col in columns}


@contextmanager
def _csv_reader(bundle: Bundle, path: str, name: str, *, as_dicts: bool = False) -> Iterator[Any]:
    """Read a CSV member; turn every way it can be unreadable into one clear refusal."""
    reader: Any = None
    try:
        with bundle.zf.open(path) as raw:
            start = raw.read(4096)
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or start.count(b"\x00") * 4 >= len(start) > 0:
            # UTF-16 (or UTF-32): every other byte is NUL; read as UTF-8 it would only say "columns missing"
            raise BundleError(_("La table %(name)s est encodée en UTF-16, pas en UTF-8 : enregistrez le fichier "
                                "en UTF-8 (CSV UTF-8) puis refaites le paquet.", name=name))
        # A UTF-8 byte order mark (added by some spreadsheet programs) is not part of the first column's name
        encoding = "utf-8-sig" if start.startswith(codecs.BOM_UTF8) else "utf-8"
        with io.TextIOWrapper(bundle.zf.open(path), encoding=encoding, newline="") as fh:
            reader = csv.DictReader(fh, strict=True) if as_dicts else csv.reader(fh, strict=True)
            yield reader
    except UnicodeDecodeError as exc:
        raise BundleError(_("La table %(name)s n'est pas encodée en UTF-8 : enregistrez le fichier en UTF-8 "
                            "(CSV UTF-8) puis refaites le paquet.", name=name)) from exc
    except csv.Error as exc:
        raise _csv_error(name, exc, reader.line_num if reader is not None else 0) from exc
    except DAMAGED as exc:
        raise BundleError(_("L'archive est abîmée (fichier %(name)s illisible).", name=path)) from exc


def _csv_error(name: str, exc: csv.Error, line: int) -> BundleError:
    why = str(exc)
    reason = (_("guillemet jamais refermé") if "end of data" in why
              else _("guillemet mal placé") if "expected after" in why
              else _("cellule trop longue") if "field limit" in why else why)
    return BundleError(_("La table %(name)s n'est pas un CSV valide (ligne %(line)d : %(why)s).",
                         name=name, line=line, why=reason))


def _check_row(plan: Plan, table: str, line: int, columns: tuple[bf.Column, ...], row: dict[str, str],
               in_bundle: Mapping[str, set[str]], vocab: Mapping[str, set[str]], conn: Connection) -> dict | None:
    values: dict[str, Any] = {}
    problems = []
    deleted = row.get("deleted") == "true"
    for col in columns:
        text = row[col.name]
        if col.kind in _TEXT_KINDS:  # most cells: no parsing (a bundle holds text as it was entered)
            values[col.name] = text
        else:
            try:
                values[col.name] = bf.read_value(col.kind, text)
            except bf.CellError:
                problems.append(_("%(col)s : « %(value)s » n'est pas un(e) %(kind)s valide.", col=col.name,
                                  value=text[:40], kind=_kind_label(col.kind)))
                continue
        if not text:
            if col.required and (col.name in bf.IDENTITY or col.always or not deleted):
                problems.append(_("%(col)s : valeur obligatoire manquante.", col=col.name))
            continue
        if col.max_length and len(values[col.name]) > col.max_length:
            problems.append(_("%(col)s : %(n)d caractères au plus.", col=col.name, n=col.max_length))
        if "\x00" in text:
            problems.append(_("%(col)s : caractère nul interdit.", col=col.name))
            continue  # not looked up either: PostgreSQL refuses NUL in a query's text
        if col.pattern and re.fullmatch(col.pattern, text) is None:
            problems.append(_("%(col)s : « %(value)s » n'a pas la forme attendue.", col=col.name, value=text[:40]))
        if col.kind in ("int", "float") and (
                (col.kind == "int" and not INT_RANGE[0] <= values[col.name] <= INT_RANGE[1])
                or (col.minimum is not None and values[col.name] < col.minimum)
                or (col.maximum is not None and values[col.name] > col.maximum)):
            problems.append(_("%(col)s : valeur hors limites (%(value)s).", col=col.name, value=text[:20]))
        if col.kind == "ref" and col.ref != table and text not in in_bundle.get(col.ref or "", ()) \
                and not _exists(conn, col.ref or "", text):
            problems.append(_("%(col)s : le lien vers %(uid)s ne mène à aucune fiche (clé étrangère rompue).",
                              col=col.name, uid=text[:40]))
        if col.vocab and text not in vocab.get(col.vocab, ()):
            problems.append(_("%(col)s : code « %(code)s » absent du vocabulaire %(vocab)s.",
                              col=col.name, code=text[:40], vocab=col.vocab))
    if values.get("visibility") not in ("network", "public") and "visibility" in row:
        problems.append(_("visibility : « %(v)s » ne peut pas voyager dans un paquet.", v=row["visibility"][:20]))
    if "uid" in row and row["uid"] and not _is_uid(row["uid"]):
        problems.append(_("uid : « %(v)s » n'est pas un identifiant UUID.", v=row["uid"][:40]))
    if problems:
        plan.errors.extend(_("%(table)s, ligne %(line)d : %(problem)s", table=table, line=line, problem=p)
                           for p in problems)
        return None
    return values


_TEXT_KINDS = frozenset({"text", "ref"})


def _row_check_function(table: str, columns: tuple[bf.Column, ...], in_bundle: Mapping[str, set[str]],
                        vocab: Mapping[str, set[str]], conn: Connection, *, first: int = 0) -> Any:
    """Return a function: bundle row (cells; those of `columns` from position `first`) -> True when
    `_check_row` would find nothing wrong with it.

    Generated once per table, one expression per column (see `_db_row_function`): calling
    `_check_row` on each of 500 000 rows costs seconds, for rows that are nearly always right.
    It says True exactly when `_check_row` finds nothing wrong (a property test holds them
    together); on False the caller asks `_check_row`, which words what is wrong."""
    env: dict[str, Any] = {"uid_match": _UID.fullmatch, "isfinite": math.isfinite, "int": int, "float": float,
                           "date_of": dt.date.fromisoformat, "datetime_of": dt.datetime.fromisoformat,
                           "exists": lambda key, uid: _exists(conn, key, uid)}
    checks = []
    for n, col in enumerate(columns):
        cell = f"row[{first + n}]"
        if not col.required:
            empty = "True"
        elif col.name in bf.IDENTITY or col.always:
            empty = "False"
        else:
            empty = "deleted"
        tests = ["'\\x00' not in v"]
        if col.kind in _TEXT_KINDS:
            if col.max_length:
                tests.append(f"len(v) <= {col.max_length}")
            if col.pattern:
                env[f"shape{n}"] = re.compile(col.pattern).fullmatch
                tests.append(f"shape{n}(v) is not None")
        elif col.kind in ("int", "float"):
            number = f"{col.kind}(v)"
            low = max(col.minimum, INT_RANGE[0]) if col.kind == "int" and col.minimum is not None else (
                INT_RANGE[0] if col.kind == "int" else col.minimum)
            high = min(col.maximum, INT_RANGE[1]) if col.kind == "int" and col.maximum is not None else (
                INT_RANGE[1] if col.kind == "int" else col.maximum)
            if low is not None:
                tests.append(f"{low!r} <= {number}")
            if col.kind == "float":
                tests.append("isfinite(float(v))")
            if high is not None:
                tests.append(f"{number} <= {high!r}")
        elif col.kind == "date":
            tests.append("date_of(v) is not None")
        elif col.kind == "datetime":
            tests.append("v[-1] == 'Z' and datetime_of(v[:-1]) is not None")
        elif col.kind == "bool":
            tests.append("v in ('true', 'false')")
        if col.kind == "ref" and col.ref != table:
            env[f"known{n}"] = in_bundle.get(col.ref or "", set())
            tests.append(f"(v in known{n} or exists({col.ref!r}, v))")
        if col.vocab:
            env[f"codes{n}"] = vocab.get(col.vocab, set())
            tests.append(f"v in codes{n}")
        checks.append(f"(({empty}) if (v := {cell}) == '' else ({' and '.join(tests)}))")
    at = {col.name: first + n for n, col in enumerate(columns)}
    if "visibility" in at:
        checks.append(f"row[{at['visibility']}] in ('network', 'public')")
    if "uid" in at:
        checks.append(f"uid_match(row[{at['uid']}]) is not None")
    deleted = f"row[{at['deleted']}] == 'true'" if "deleted" in at else "False"
    source = (f"def check(row):\n    deleted = {deleted}\n    try:\n        return bool({' and '.join(checks) or 'True'})\n"
              "    except (ValueError, OverflowError):\n        return False\n")
    exec(compile(source, f"<row check of {table}>", "exec"), env)  # noqa: S102 - our own column list
    return env["check"]


def _kind_label(kind: str) -> str:
    return {"int": _("nombre entier"), "float": _("nombre"), "date": _("date (AAAA-MM-JJ)"),
            "datetime": _("date et heure UTC"), "bool": _("booléen (true/false)")}.get(kind, kind)


def _is_uid(text: str) -> bool:
    return _UID.fullmatch(text) is not None


_UID = re.compile(bf.UID_PATTERN)


def _exists(conn: Connection, key: str, uid: str) -> bool:
    table = bf.TABLES[key].table
    return conn.execute(select(table.c.id).where(table.c.uid == uid)).first() is not None


def content_digest(row_digest: bytes, children: Sequence[tuple[str, Sequence[tuple]]]) -> str:
    """Fingerprint of a record's content: its row's `_digest` and its join rows, per table by name."""
    return hashlib.sha1(row_digest + json.dumps(children, ensure_ascii=False).encode()).hexdigest()


def _digest(row: Iterable[str]) -> bytes:
    """Fingerprint of a row in the bundle's form. Both sides list the columns of the table in the
    same order; NUL, refused in a bundle's cells, cannot blur the boundary between two cells."""
    return hashlib.sha1("\x00".join(row).encode()).digest()


def _child_rows(bundle: Bundle, resources: Mapping[str, Any], child: bf.ChildTable, plan: Plan,
                in_bundle: Mapping[str, set[str]], vocab: Mapping[str, set[str]],
                conn: Connection) -> dict[str, list[tuple]]:
    per_owner: dict[str, list[tuple]] = {}
    header = [c.name for c in child.columns]  # the owner's uid first
    check = _row_check_function(child.name, child.columns[1:], in_bundle, vocab, conn, first=1)
    owners = in_bundle[child.owner]
    for line, row in _rows(bundle, resources, child.name, header, plan):
        if row[0] not in owners:
            plan.errors.append(_("%(table)s, ligne %(line)d : la fiche %(uid)s n'est pas dans le paquet.",
                                 table=child.name, line=line, uid=row[0][:40]))
            continue
        if not check(row) and _check_row(plan, child.name, line, child.columns[1:], dict(zip(header, row, strict=True)),
                                         in_bundle, vocab, conn) is None:
            continue
        per_owner.setdefault(row[0], []).append(tuple(row[1:]))
    size = child.key_size
    for owner, rows in per_owner.items():
        rows.sort()
        # The key (a theme, a criterion, a target and role) comes first: sorted, two rows of one key meet
        for before, after in pairwise(rows):
            if before[:size] == after[:size]:
                plan.errors.append(_("%(table)s : la fiche %(uid)s a deux lignes pour « %(key)s ».",
                                     table=child.name, uid=owner[:40], key=" / ".join(after[:size])[:80]))
                break
    return per_owner


def _check_parts(plan: Plan, rtable: bf.RecordTable, children: Mapping[str, Mapping[str, list[tuple]]],
                 conn: Connection) -> None:
    """Refuse the rows of a board's columns, themes and notes (rows with their own uid) whose uid
    appears twice in the bundle or already names a row of another board here, and notes whose
    column or theme is not one of their own board's in the bundle."""
    owners = rtable.table
    for child in rtable.children:
        if not child.uid_keyed:
            continue
        seen: dict[str, str] = {}
        for owner, rows in children[child.name].items():
            for row in rows:
                if seen.setdefault(row[0], owner) != owner:
                    plan.errors.append(_("%(table)s : l'identifiant %(uid)s apparaît deux fois.",
                                         table=child.name, uid=row[0]))
        table, owner_col = bf.part_table(child)
        uids = sorted(seen)
        for i in range(0, len(uids), 5000):
            for uid, owner in conn.execute(select(table.c.uid, owners.c.uid).join_from(
                    table, owners, owners.c.id == table.c[owner_col]).where(table.c.uid.in_(uids[i:i + 5000]))):
                if seen[uid] != owner:
                    plan.errors.append(_("%(table)s : l'identifiant %(uid)s est déjà celui d'un élément d'un autre "
                                         "tableau de ce registre.", table=child.name, uid=uid))
        for n, col in enumerate(child.columns[1:]):
            if not col.sibling:
                continue
            for owner, rows in children[child.name].items():
                known = {row[0] for row in children[col.sibling].get(owner, ())}
                for row in rows:
                    if row[n] and row[n] not in known:
                        plan.errors.append(_("%(table)s : la ligne %(uid)s renvoie à %(target)s, absent de son "
                                             "tableau dans le paquet.", table=child.name, uid=row[0], target=row[n]))


_WORKSHOP_PARTS = ("workshop_sessions", "boards")


def _check_workshop_of(plan: Plan, key: str, rows: list[tuple[int, str, str, str, str]], conn: Connection) -> None:
    """Refuse a sequence or a board whose workshop (in the bundle or here) is another city's, and a board
    whose sequence is another workshop's: a peer's bundle must never add a board to one of our workshops
    (nor move one of its own into a workshop that is not its city's)."""
    # A workshop already here is whose its row here says (a bundle's row cannot make ours a peer's: it is
    # never written over ours); a new one is whose the bundle says.
    origins = {uid: d.origin for uid, d in plan.decisions.get("workshops", {}).items()}
    wanted = sorted({workshop for _l, _u, _o, workshop, _s in rows if workshop})
    workshops, sessions = bf.TABLES["workshops"].table, bf.TABLES["workshop_sessions"].table
    for i in range(0, len(wanted), 5000):
        origins.update(conn.execute(select(workshops.c.uid, workshops.c.origin_instance)
                                    .where(workshops.c.uid.in_(wanted[i:i + 5000]))).all())
    for line, uid, origin, workshop, _sequence in rows:
        if workshop and origins.get(workshop, origin) != origin:
            plan.errors.append(_("%(table)s, ligne %(line)d : %(uid)s est de %(origin)s, mais son atelier %(workshop)s "
                                 "est d'une autre ville : un paquet n'ajoute rien aux ateliers d'une autre ville.",
                                 table=key, line=line, uid=uid, origin=origin, workshop=workshop))
        if key == "workshop_sessions":
            plan.workshop_of_session[uid] = workshop
    if key != "boards":
        return
    wanted = sorted({s for _l, _u, _o, _w, s in rows if s and s not in plan.workshop_of_session})
    for i in range(0, len(wanted), 5000):
        plan.workshop_of_session.update(conn.execute(
            select(sessions.c.uid, workshops.c.uid).join_from(sessions, workshops, workshops.c.id == sessions.c.workshop_id)
            .where(sessions.c.uid.in_(wanted[i:i + 5000]))).all())
    for line, uid, _origin, workshop, sequence in rows:
        if sequence and plan.workshop_of_session.get(sequence, workshop) != workshop:
            plan.errors.append(_("boards, ligne %(line)d : la séquence %(sequence)s du tableau %(uid)s est celle d'un "
                                 "autre atelier.", line=line, sequence=sequence, uid=uid))


def _decide(plan: Plan, rtable: bf.RecordTable, local: Mapping[str, tuple[int, int, str, str]],
            incoming: dict[str, Decision], digests: Mapping[str, bytes],
            children: Mapping[str, Mapping[str, list[tuple]]], conn: Connection) -> None:
    producer = plan.bundle.origin_instance
    same_version: dict[int, str] = {}
    for uid, d in incoming.items():
        if d.action:
            continue  # already skipped: a relayed record its origin's manifest does not vouch for
        if d.origin == plan.own_code:
            d.action, d.reason = "skipped", "own_record"
        elif uid not in local:
            d.action = "created"
        else:
            local_id, local_version, local_origin, local_digest = local[uid]
            d.local_version = local_version
            if local_origin != d.origin:
                d.action, d.reason = "conflict", "origin_mismatch"
            elif d.version > local_version:
                d.action = "updated"
            elif d.version < local_version and plan.trust == "first" and d.origin == producer:
                # The city's first signed word: nothing here about its records was proven before (a
                # relay may have raised a version to 99 to stop its updates), so its own content wins.
                d.action = "updated"
            elif d.version < local_version:
                d.action, d.reason = "skipped", "older_version"
            elif local_digest and local_digest == content_digest(
                    digests[uid], [(name, children[name].get(uid, [])) for name in sorted(children)]):
                d.action = "unchanged"  # the very content the last import wrote: no need to read it back
            else:
                same_version[local_id] = uid
    if same_version:
        maps = bf.UidMaps(conn)
        for local_id, row, kids in bf.local_rows(conn, rtable, maps, ids=list(same_version)):
            uid = same_version[local_id]
            d = incoming[uid]
            theirs = (digests[uid], tuple((name, tuple(children[name].get(uid, []))) for name in sorted(children)))
            mine = (_digest(row.values()), tuple((name, tuple(kids[name])) for name in sorted(kids)))  # kids come sorted
            if theirs == mine:
                d.action = "unchanged"
            elif d.origin == producer:
                d.action = "updated"  # the owner's own word; a share level may have hidden a link before
            else:
                d.action, d.reason = "conflict", "same_version_differs"
    plan.decisions[rtable.name] = incoming


def _check_trust(plan: Plan) -> None:
    """Compare the bundle's signature with the key pinned for its city; refuse a bundle that is
    unsigned or signed by another key when the city's key is pinned."""
    bundle = plan.bundle
    if bundle.origin_instance == plan.own_code:
        plan.trust = "own"  # our own records are never replaced by a bundle
        return
    pinned = signing.pinned_key(bundle.origin_instance)
    city = bundle.origin_name or bundle.origin_instance
    signature = bundle.signature
    if signature is None:
        if pinned is not None:
            raise BundleError(_("Ce paquet dit venir de %(city)s mais il n'est pas signé, alors que la clé de cette "
                                "ville est enregistrée ici (empreinte %(pinned)s) : paquet refusé. Demandez à la ville "
                                "un nouvel export.", city=city, pinned=pinned.fingerprint))
        plan.trust = "unverified"
    elif pinned is None:
        plan.trust = "first"
    elif pinned.public_key == signature.public_key:
        plan.trust = "verified"
    else:
        raise BundleError(_("Ce paquet dit venir de %(city)s mais il est signé par une autre clé que celle enregistrée "
                            "pour cette ville : paquet refusé. Clé enregistrée : %(pinned)s. Clé du paquet : %(theirs)s. "
                            "Si la ville a vraiment changé de clé, comparez l'empreinte avec elle par téléphone ; un "
                            "administrateur peut alors remplacer la clé (Échanges → Clés des villes).",
                            city=city, pinned=pinned.fingerprint, theirs=signature.fingerprint))


def _relay_proof(plan: Plan, origin: str) -> signing.RelayProof:
    """What proves the records of `origin` that this bundle relays (computed once per origin)."""
    proof = plan.relays.get(origin)
    if proof is not None:
        return proof
    pinned = signing.pinned_key(origin)
    carried = plan.bundle.signature.relayed.get(origin) if plan.bundle.signature else None
    if carried is None:
        proof = signing.RelayProof(origin, "missing" if pinned else "unverified",
                                   pinned.fingerprint if pinned else "")
    else:
        key = pinned.public_key if pinned else carried.public_key
        proof = signing.RelayProof(origin, "invalid", signing.fingerprint(key) if signing.is_public_key(key) else "",
                                   key, carried=carried)
        if signing.verify(key, signing.manifest_message(carried.sha256), carried.signature):
            carried.text = _read_member(plan.bundle.zf, carried.path, limit=signing.MAX_MANIFEST_BYTES)
            try:
                manifest = signing.parse_manifest(carried.text)
            except (ValueError, UnicodeDecodeError):
                manifest = None
            if manifest is not None and manifest.origin == origin:
                proof.status, proof.manifest = ("verified" if pinned else "unverified"), manifest
    plan.relays[origin] = proof
    return proof


def _check_relayed(plan: Plan, rtable: bf.RecordTable, incoming: Mapping[str, Decision], relayed: Mapping[str, str],
                   children: Mapping[str, Mapping[str, list[tuple]]]) -> None:
    """Skip the records of a third city that its signed manifest does not vouch for: absent from it, or with
    another version, content or deletion. Count those taken without a verified proof."""
    names = [child.name for child in rtable.children]
    for uid, row in relayed.items():
        d = incoming[uid]
        proof = _relay_proof(plan, d.origin)
        if proof.manifest is None:
            if proof.status == "unverified":  # a city not met yet, relayed by an earlier release
                plan.unverified[d.origin] = plan.unverified.get(d.origin, 0) + 1
            else:
                d.action, d.reason = "skipped", "relay_unproven" if proof.status == "missing" else "relay_bad_signature"
            continue
        signed = proof.manifest.records.get((rtable.name, uid))
        if signed is None:
            d.action, d.reason = "skipped", "relay_not_in_manifest"
        elif signed[1] != signing.record_fingerprint(row, [signing.children_fingerprint(children[name].get(uid, ()))
                                                           for name in names]):
            d.action, d.reason = "skipped", "relay_differs"
        elif proof.status != "verified":
            plan.unverified[d.origin] = plan.unverified.get(d.origin, 0) + 1


def signature_summary(plan: Plan) -> dict[str, Any]:
    """Who signed the bundle and what could not be verified, for the preview and the report."""
    signature = plan.bundle.signature
    return {"trust": plan.trust, "fingerprint": signature.fingerprint if signature else "",
            "relays": {origin: {"status": p.status, "fingerprint": p.fingerprint} for origin, p in plan.relays.items()},
            "unverified": dict(plan.unverified)}


def keep_signature(plan: Plan, *, username: str, manifests: Path) -> None:
    """After an import is applied: pin the city's key at its first signed bundle, and keep (in the folder
    `manifests`) the manifests that prove its records and the records it relayed, to relay them in turn."""
    bundle, signature = plan.bundle, plan.bundle.signature
    if signature is None or bundle.origin_instance == plan.own_code:
        return
    if plan.trust == "first":
        signing.pin(bundle.origin_instance, bundle.origin_name, signature.public_key, username=username)

    def copy_manifest(out: IO[bytes]) -> None:
        with bundle.zf.open(signing.MANIFEST) as fh:
            for block in iter(lambda: fh.read(1024 * 1024), b""):
                out.write(block)

    signing.keep_manifest(manifests, bundle.origin_instance, signature.public_key, signature.manifest_signature,
                          signature.manifest, signature.manifest_sha256, copy_manifest, authoritative=True)
    for origin, proof in plan.relays.items():
        if proof.manifest is not None and proof.carried is not None and origin != plan.own_code:
            signing.keep_manifest(manifests, origin, proof.public_key, proof.carried.signature, proof.manifest,
                                  proof.carried.sha256, lambda out, text=proof.carried.text: out.write(text),
                                  authoritative=proof.status == "verified")
    db.session.flush()


def _vocabularies(bundle: Bundle, resources: Mapping[str, Any], conn: Connection, plan: Plan) -> dict[str, set[str]]:
    """Codes known here or brought by the bundle; terms the bundle adds are created on import."""
    known: dict[str, set[str]] = {}
    for vocabulary, code in conn.execute(select(VocabularyTerm.vocabulary, VocabularyTerm.code)):
        known.setdefault(vocabulary, set()).add(code)
    known["themes"] = set(conn.execute(select(Theme.code)).scalars())
    unescape = restore if _escaped(bundle) else str
    for name, resource in resources.items():
        if not name.startswith("vocabulary_"):
            continue
        vocabulary = name.removeprefix("vocabulary_")
        path = str(resource.get("path", ""))
        if not path.startswith("vocabularies/") or not bundle.has(path):
            continue
        if _VOCABULARY_NAME.fullmatch(vocabulary) is None:
            plan.errors.append(_("Le vocabulaire « %(name)s » a un nom invalide (minuscules, chiffres et _, "
                                 "%(max)d caractères au plus).", name=vocabulary[:40], max=_VOCABULARY_LENGTH))
            continue
        for line, row in _vocab_rows(bundle, path, plan):
            code = row["code"]
            if code and code not in known.setdefault(vocabulary, set()):
                term = [code, unescape(row.get("label_fr", "")) or code, unescape(row.get("label_en", "")),
                        row.get("parent", "")]
                problems = _term_problems(term)
                if problems:
                    plan.errors.extend(_("%(table)s, ligne %(line)d : %(problem)s", table=path, line=line, problem=p)
                                       for p in problems)
                    continue
                known[vocabulary].add(code)
                plan.missing_terms.setdefault(vocabulary, []).append(term)
    return known


_VOCABULARY_LENGTH = VocabularyTerm.__table__.c.vocabulary.type.length
_VOCABULARY_NAME = re.compile(rf"[a-z0-9_]{{1,{_VOCABULARY_LENGTH}}}")
# code, label_fr, label_en, parent: what a term keeps (the shortest of the vocabulary and theme tables)
_TERM_COLUMNS = (("code", bf.VOCABULARY_CODE_LENGTH), ("label_fr", VocabularyTerm.__table__.c.label_fr.type.length),
                 ("label_en", VocabularyTerm.__table__.c.label_en.type.length),
                 ("parent", Theme.__table__.c.parent_code.type.length))


def _term_problems(term: Sequence[str]) -> list[str]:
    """What makes a term brought by a bundle unfit to be stored (too long: refused, never cut)."""
    problems = []
    for (name, limit), text in zip(_TERM_COLUMNS, term, strict=True):
        if len(text) > limit:
            problems.append(_("%(col)s : %(n)d caractères au plus.", col=name, n=limit))
        if _CONTROL.search(text):
            problems.append(_("%(col)s : caractère de contrôle interdit.", col=name))
    if ";" in term[0] or term[0] != term[0].strip():
        # codes are joined with ";" where a record holds several (territory features)
        problems.append(_("code : « %(code)s » ne peut contenir ni « ; » ni espace au début ou à la fin.",
                          code=term[0][:40]))
    return problems


def _vocab_rows(bundle: Bundle, path: str, plan: Plan) -> Iterator[tuple[int, dict[str, str]]]:
    with _csv_reader(bundle, path, path, as_dicts=True) as reader:
        if "code" not in (reader.fieldnames or []):
            raise BundleError(_("Le vocabulaire %(name)s n'a pas de colonne code.", name=path))
        for line, row in enumerate(reader, start=2):
            yield line, {k: v or "" for k, v in row.items() if k}


def _plan_documents(plan: Plan, resources: Mapping[str, Any], in_bundle: Mapping[str, set[str]]) -> None:
    """Decide on each attachment: only for a record this import brings, of the same origin, with a file
    whose bytes hash to its `sha256` cell. A cell or a member that could name a path refuses the bundle."""
    conn = db.session.connection()
    files = _document_members(plan)
    local = {r.uid: (r.version, r.origin_instance) for r in conn.execute(
        select(Document.uid, Document.version, Document.origin_instance))}
    decisions: dict[str, Decision] = {}
    header = [c.name for c in bf.DOCUMENT_COLUMNS]
    for line, cells in _rows(plan.bundle, resources, "documents", header, plan):
        values = _check_row(plan, "documents", line, bf.DOCUMENT_COLUMNS, dict(zip(header, cells, strict=True)),
                            in_bundle, {}, conn)
        if values is None:
            continue
        if not document_service.is_digest(values["sha256"]):
            plan.errors.append(_("documents, ligne %(line)d : sha256 : « %(value)s » n'est pas une empreinte SHA-256 "
                                 "(64 chiffres hexadécimaux en minuscules).", line=line, value=values["sha256"][:80]))
            continue
        uid = values["uid"]
        if uid in decisions:
            plan.errors.append(_("%(table)s, ligne %(line)d : l'identifiant %(uid)s apparaît deux fois.",
                                 table="documents", line=line, uid=uid))
            continue
        values["filename"] = document_service.clean_filename(values["filename"])
        d = Decision("documents", uid, "created", title=values["title"], version=values["version"],
                     deleted=values["deleted"], origin=values["origin_instance"])
        record = plan.decisions.get(values["linked_type"], {}).get(values["linked_uid"])
        size = files.get(values["sha256"])
        if values["origin_instance"] == plan.own_code:
            d.action, d.reason = "skipped", "own_record"
        elif record is None or record.action not in ("created", "updated", "unchanged"):
            # only a record of this bundle that this import brings, never one of ours or another's
            d.action, d.reason = "skipped", "attached_elsewhere"
        elif record.origin != values["origin_instance"]:
            d.action, d.reason = "skipped", "document_origin"
        elif values["origin_instance"] != plan.bundle.origin_instance and signing.pinned_key(values["origin_instance"]):
            # No manifest lists attachments: a relay cannot prove one, so a city known here by its key
            # sends its attachments itself (a relay could otherwise swap a city's file for its own).
            d.action, d.reason = "skipped", "relay_document"
        elif not values["file_included"] or size is None:
            d.action, d.reason = "skipped", "no_file"
        elif (media_type := _member_type(plan.bundle.zf, values["sha256"], values["filename"])) is None:
            d.action, d.reason = "skipped", "file_type"
        else:
            values["media_type"], values["size"] = media_type, size
            if uid in local:
                d.local_version = local[uid][0]
                d.action = "unchanged" if local[uid][0] >= values["version"] else "updated"
                if local[uid][1] != values["origin_instance"]:
                    d.action, d.reason = "conflict", "origin_mismatch"
        if d.action in ("created", "updated"):
            plan.documents.append(values)
            if d.origin != plan.bundle.origin_instance:  # from a city not met yet, relayed: taken unproven
                plan.unverified[d.origin] = plan.unverified.get(d.origin, 0) + 1
        decisions[uid] = d
    plan.decisions["documents"] = decisions


def _document_members(plan: Plan) -> dict[str, int]:
    """The attachment files of the bundle (digest → size): each member under documents/ must be named
    `documents/<sha256>` (64 lowercase hex digits) and its bytes must hash to that name."""
    found: dict[str, int] = {}
    for info in plan.bundle.zf.infolist():
        name = info.filename
        if not name.startswith("documents/") or name == "documents/":
            continue
        digest = name.removeprefix("documents/")
        if not document_service.is_digest(digest):
            plan.errors.append(_("Le fichier joint %(name)s n'est pas nommé par son empreinte SHA-256 "
                                 "(documents/ suivi de 64 chiffres hexadécimaux en minuscules) : refusé.",
                                 name=name[:100]))
            continue
        h = hashlib.sha256()
        try:
            with plan.bundle.zf.open(info) as fh:
                for block in iter(lambda fh=fh: fh.read(1024 * 1024), b""):
                    h.update(block)
        except DAMAGED as exc:
            raise BundleError(_("L'archive est abîmée (fichier %(name)s illisible).", name=name[:80])) from exc
        if h.hexdigest() != digest:
            plan.errors.append(_("Le contenu du fichier joint %(name)s ne correspond pas à son empreinte SHA-256 : "
                                 "pièce jointe falsifiée ou abîmée.", name=name[:100]))
            continue
        found[digest] = info.file_size
    return found


def _member_type(zf: zipfile.ZipFile, digest: str, filename: str) -> str | None:
    """The media type the bytes of `documents/<digest>` show (None: not an accepted format, or not the name's)."""
    try:
        with zf.open(f"documents/{digest}") as fh:
            return document_service.detect_media_type(fh, filename)
    except DAMAGED as exc:
        raise BundleError(_("L'archive est abîmée (fichier %(name)s illisible).", name=f"documents/{digest}")) from exc


# --------------------------------------------------------------------------- 3. apply

def apply_import(plan: Plan, *, username: str, uploads: Path) -> ImportBatch | None:
    """Write the plan in the current transaction; return the batch (None when nothing changes).

    The caller takes the backup before and commits after: one transaction, all or nothing."""
    bundle = plan.bundle
    conflicts = [d for decisions in plan.decisions.values() for d in decisions.values() if d.action == "conflict"]
    if not plan.has_changes and not _new_conflicts(conflicts):
        return None
    conn = db.session.connection()
    batch = ImportBatch(kind="bundle", filename=bundle.filename[:255], sha256=bundle.sha256,
                        origin_instance=bundle.origin_instance, origin_name=bundle.origin_name[:200],
                        format_version=bundle.format_version, username=username)
    db.session.add(batch)
    db.session.flush()
    _add_terms(conn, plan.missing_terms)
    maps = bf.UidMaps(conn)
    resources = {str(r.get("name")): r for r in bundle.descriptor.get("resources", []) if isinstance(r, dict)}
    touched: dict[str, list[int]] = {}
    with deferred_indexes(conn, _incoming_rows(plan)):
        for key in bf.TABLE_ORDER:
            wanted = plan.to_write(key)
            if not wanted:
                continue
            rtable = bf.TABLES[key]
            header = [c.name for c in rtable.columns]
            touched[key] = []
            chunk: dict[str, list[str]] = {}
            uid_at = header.index("uid")
            for _line, row in _rows(bundle, resources, key, header, plan):
                if row[uid_at] in wanted:
                    chunk[row[uid_at]] = row
                if len(chunk) >= WRITE_CHUNK:
                    touched[key] += write_records(conn, rtable, maps, chunk, plan.children, batch_id=batch.id,
                                                  origin_label=bundle.origin_name, username=username)
                    chunk = {}
            if chunk:
                touched[key] += write_records(conn, rtable, maps, chunk, plan.children, batch_id=batch.id,
                                              origin_label=bundle.origin_name, username=username)
            link_self_refs(conn, rtable, maps, list(_self_refs(bundle, resources, key, header, plan, wanted)))
    files_written = _write_documents(conn, plan, uploads, batch.id)
    for d in _new_conflicts(conflicts):
        db.session.add(ImportConflict(batch_id=batch.id, record_type=d.table, record_uid=d.uid, reason=d.reason,
                                      origin_instance=bundle.origin_instance, local_version=d.local_version,
                                      incoming_version=d.version, incoming={"title": d.title}))
    batch.report = report_of(plan) | {"files_written": files_written}
    db.session.flush()
    reindex(touched)
    return batch


def _incoming_rows(plan: Plan) -> dict[str, int]:
    """How many rows applying `plan` inserts into each table, at most (for `deferred_indexes`)."""
    incoming: dict[str, int] = {}
    for key in bf.TABLE_ORDER:
        writing = len(plan.to_write(key))
        if not writing:
            continue
        rtable = bf.TABLES[key]
        incoming[rtable.table.name] = writing
        for child in rtable.children:
            if not bf.is_column_child(child):
                rows = sum(len(r) for r in plan.children.get(child.name, {}).values())
                table = bf.part_table(child)[0] if bf.is_workshop_part(child) else bf.child_db_table(child)[0]
                incoming[table.name] = rows
        for log in (ChangeLog.__table__.name, ImportChange.__table__.name):
            incoming[log] = incoming.get(log, 0) + writing
    return incoming


def _new_conflicts(conflicts: list[Decision]) -> list[Decision]:
    """Conflicts not already on record for the same record and incoming version (re-imports add none)."""
    if not conflicts:
        return []
    known = {(r[0], r[1], r[2]) for r in db.session.execute(
        select(ImportConflict.record_uid, ImportConflict.incoming_version, ImportConflict.reason))}
    return [d for d in conflicts if (d.uid, d.version, d.reason) not in known]


def report_of(plan: Plan) -> dict[str, Any]:
    skipped = [{"table": d.table, "uid": d.uid, "title": d.title[:120], "reason": d.reason}
               for decisions in plan.decisions.values() for d in decisions.values()
               if d.action in ("skipped", "conflict")]
    return {"counts": plan.counts(), "totals": plan.totals(), "skipped": skipped[:2000],
            "skipped_total": len(skipped), "terms_added": {k: len(v) for k, v in plan.missing_terms.items()},
            "level": plan.bundle.level, "signature": signature_summary(plan)}


def _add_terms(conn: Connection, missing: Mapping[str, list[list[str]]]) -> None:
    for vocabulary, terms in missing.items():
        if vocabulary == "themes":
            for code, label_fr, label_en, parent in terms:  # lengths checked by the plan (`_term_problems`)
                db.session.add(Theme(code=code, label_fr=label_fr, label_en=label_en,
                                     parent_code=parent, position=900, origin_instance=""))
        else:
            for code, label_fr, label_en, _parent in terms:
                db.session.add(VocabularyTerm(vocabulary=vocabulary, code=code, label_fr=label_fr,
                                              label_en=label_en, position=900))
    db.session.flush()


def write_records(conn: Connection, rtable: bf.RecordTable, maps: bf.UidMaps, rows: Mapping[str, Sequence[str]],
                  children: Mapping[str, Mapping[str, list[tuple]]], *, batch_id: int | None, origin_label: str,
                  username: str, action: str = "import") -> list[int]:
    """Create or replace records (bundle form: uid -> cells in the order of `rtable.columns`) with their
    join rows; keep what was replaced; return the ids."""
    table = rtable.table
    existing = maps.id_of(rtable.name)
    new_rows, changed = [], []
    columns, db_row = _db_row_function(rtable, maps)
    columns.append("content_digest")
    uid_at = columns.index("uid")
    names = sorted(child.name for child in rtable.children)
    refs = [n for n, col in enumerate(rtable.columns) if col.kind == "ref" and col.ref != rtable.name]
    for uid, row in rows.items():
        values = db_row(row)
        # The fingerprint vouches for what is stored: none when a link found no record to point to
        resolved = all(values[n] is not None for n in refs if row[n])
        values = (*values, content_digest(_digest(row), [(name, children.get(name, {}).get(uid, []))
                                                         for name in names]) if resolved else "")
        if uid in existing:
            changed.append((existing[uid], dict(zip(columns, values, strict=True))))
        else:
            new_rows.append(values)
    befores = {}
    if changed and batch_id is not None:
        # "as_entered": text without formula escapes (what an older release kept had them)
        befores = {id_: {"row": row, "children": kids, "as_entered": True} for id_, row, kids in
                   bf.local_rows(conn, rtable, maps, ids=[id_ for id_, _v in changed])}
    if new_rows:
        new_ids = reserve_ids(conn, table, len(new_rows))
        local = bf.local_defaults(rtable)  # columns that never travel: what a new record has
        insert_rows(conn, table, ["id", *columns, *local], [(id_, *v, *local.values())
                                                            for id_, v in zip(new_ids, new_rows, strict=True)])
        maps.add(rtable.name, [(id_, v[uid_at]) for id_, v in zip(new_ids, new_rows, strict=True)])
    for id_, values in changed:
        values.pop("uid", None)
        conn.execute(update(table).where(table.c.id == id_).values(**values))
    ids = [existing[uid] for uid in rows]
    incomplete = _write_children(conn, rtable, maps, ids, {existing[uid]: uid for uid in rows}, children,
                                 replaced=[id_ for id_, _v in changed])
    lost = sorted(incomplete)
    for i in range(0, len(lost), 5000):
        conn.execute(update(table).where(table.c.id.in_(lost[i:i + 5000])).values(content_digest=""))
    if batch_id is not None:
        if befores:
            conn.execute(insert(ImportChange.__table__), [
                {"batch_id": batch_id, "record_type": rtable.name, "record_uid": maps.uid_of(rtable.name)[id_],
                 "action": "updated", "before": before} for id_, before in befores.items()])
        created = [id_ for id_ in ids if id_ not in befores]
        _log_rows(conn, ImportChange.__table__, table, created, batch_id=batch_id, record_type=rtable.name,
                  record_uid=table.c.uid, action="created", before=None)
    at = utcnow()
    if befores:
        # An update names the fields that changed (compared here, in the bundle's text form, from the
        # rows the undo keeps anyway); a new record only says where it came from.
        changes_of = _change_function(rtable)
        uid_of = maps.uid_of(rtable.name)
        title_at = next((n for n, c in enumerate(rtable.columns) if c.name == rtable.rt.title_attr), None)
        logs = []
        for id_, before in befores.items():
            uid = uid_of[id_]
            row = rows[uid]
            changes = changes_of(before["row"], row, before["children"],
                                 {name: kids.get(uid, []) for name, kids in children.items()})
            logs.append({"record_type": rtable.name, "record_uid": uid,
                         "record_title": (row[title_at] if title_at is not None else "")[:300], "action": action,
                         "username": username, "at": at, "changes": {"origin": ["", origin_label], **changes}})
        for i in range(0, len(logs), 5000):
            conn.execute(insert(ChangeLog.__table__), logs[i:i + 5000])
    title = table.c[rtable.rt.title_attr] if rtable.rt.title_attr in table.c else literal("")
    _log_rows(conn, ChangeLog.__table__, table, [id_ for id_ in ids if id_ not in befores], record_type=rtable.name,
              record_uid=table.c.uid, record_title=func.substr(title, 1, 300), action=action, username=username,
              at=at, changes={"origin": ["", origin_label]})
    return ids


# Bookkeeping columns: they change with every update and say nothing the reader asked about.
_UNLOGGED = {"uid", "origin_instance", "created_at", "updated_at", "version", "lang", "licence", "source"}


def _change_function(rtable: bf.RecordTable) -> Any:
    """Return changes(before_row, row, before_children, children) -> {field: [before, after]} for the
    history of a record an import replaced: both sides in the bundle's text form (refs as uids, put
    into titles when shown), contact details masked as the history of an edit masks them."""
    compared = [(n, col.name.removesuffix("_uid") if col.kind == "ref" else col.name, col.name, col.personal)
                for n, col in enumerate(rtable.columns) if col.name not in _UNLOGGED]
    fields = {f.name: f for f in rtable.rt.fields}
    links = {link.model.__tablename__: link.name for link in rtable.rt.links}
    citations = {c.table.name: c.name for c in rtable.rt.citations}
    kids: list[tuple[str, str, Any]] = []
    for child in rtable.children:
        if child.name.endswith("_themes"):
            kids.append((child.name, "themes", lambda vs: ";".join(sorted(v[0] for v in vs))))
        elif child.name in citations:  # cited uids, put into titles when shown
            kids.append((child.name, citations[child.name], lambda vs: "; ".join(sorted(v[0] for v in vs))))
        elif child.name in links:
            kids.append((child.name, links[child.name], lambda vs: "; ".join(sorted(f"{v[0]} ({v[1]})" for v in vs))))
        elif child.name == "review_scores":
            name = next(f.name for f in rtable.rt.fields if f.kind == "scores")
            kids.append((child.name, name, lambda vs: ";".join(sorted(f"{v[0]}={v[1]}" for v in vs))))
        elif child.title_en in fields:  # a list of codes (a territory's features)
            kids.append((child.name, child.title_en, lambda vs: ";".join(sorted(v[0] for v in vs))))

    def changes(before: Mapping[str, str], row: Sequence[str], before_children: Mapping[str, list],
                children: Mapping[str, list]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for n, name, column, personal in compared:
            old, new = before.get(column, "") or "", row[n] or ""
            if old != new:
                found[name] = [_masked(old), _masked(new)] if personal else [old, new]
        for child, name, text in kids:
            old, new = text(before_children.get(child, [])), text(children.get(child, []))
            if old != new:
                found[name] = [old, new]
        return found

    return changes


def _masked(value: str) -> str:
    """A contact detail as the history shows it: that it changed, never what it is (as `records._snapshot`)."""
    return "•" * 6 + hashlib.sha256(value.encode()).hexdigest()[:4] if value else ""


def _log_rows(conn: Connection, log: Any, table: Any, ids: list[int], **values: Any) -> None:
    """Add one row to `log` per record of `table` in `ids`, with `values` (constants, or columns
    of the record), in SQL: INSERT … SELECT spares building 100 000 rows in Python."""
    columns = [log.c[name] for name in values]
    selected = [v if isinstance(v, ColumnElement) else literal(v, log.c[name].type) for name, v in values.items()]
    for i in range(0, len(ids), 5000):
        chunk = ids[i:i + 5000]
        low, high = min(chunk), max(chunk)
        # ids made in one go (`reserve_ids`) follow each other: a range is exact, and costs less than an IN list
        among = table.c.id.between(low, high) if high - low + 1 == len(chunk) else table.c.id.in_(chunk)
        conn.execute(insert(log).from_select(columns, select(*selected).where(among)))


def _self_refs(bundle: Bundle, resources: Mapping[str, Any], key: str, header: list[str], plan: Plan,
               wanted: Mapping[str, Decision]) -> Iterator[tuple[str, str]]:
    columns = [c.name for c in bf.TABLES[key].columns if c.kind == "ref" and c.ref == key]
    if not columns:
        return
    uid_at, ref_at = header.index("uid"), header.index(columns[0])
    for _line, row in _rows(bundle, resources, key, header, plan):
        if row[uid_at] in wanted:
            yield row[uid_at], row[ref_at]


def link_self_refs(conn: Connection, rtable: bf.RecordTable, maps: bf.UidMaps, pairs: list[tuple[str, str]]) -> None:
    """Set links between records of one table (a territory's parent) once the whole table is written,
    since a parent may come after its child in the file."""
    column = next((c for c in rtable.columns if c.kind == "ref" and c.ref == rtable.name), None)
    if column is None:
        return
    ids = maps.id_of(rtable.name)
    for uid, parent_uid in pairs:
        if parent_uid:
            conn.execute(update(rtable.table).where(rtable.table.c.id == ids[uid]).values(
                {column.attr: ids.get(parent_uid)}))


def _db_row_function(rtable: bf.RecordTable, maps: bf.UidMaps) -> tuple[list[str], Any]:
    """Return the model columns of `rtable` and a function: bundle row (texts, in the order of
    `rtable.columns`) -> their values.

    Generated once per batch, one expression per column (see `bf.row_text_function`): a Python
    call per cell costs more than the conversion itself over 100 000 records. Text is taken as it
    is (`_rows` took the formula escape off the cells of a 1.0 bundle)."""
    env: dict[str, Any] = {"fold": fold, "date_of": dt.date.fromisoformat, "datetime_of": dt.datetime.fromisoformat}
    # As `bf.read_value` reads them, without its checks: the plan refused every import with a bad cell.
    typed = {"int": "(int(v) if (v := {}) else None)", "float": "(float(v) if (v := {}) else None)",
             "date": "(date_of(v) if (v := {}) else None)", "bool": "({} == 'true')",
             "datetime": "(datetime_of(v[:-1]) if (v := {}) else None)"}
    columns, cells = [], []
    for n, col in enumerate(rtable.columns):
        text = f"row[{n}]"
        columns.append(col.attr)
        if col.kind == "text":
            cells.append(f"({text} or '')")
        elif col.kind == "ref":
            env[f"ids{n}"] = maps.id_of(col.ref or "")
            cells.append(f"(ids{n}.get(v) if (v := {text}) else None)")
        elif col.kind in ("int", "float") and not rtable.table.c[col.attr].nullable:
            # a number the database cannot leave empty (a sequence's position): empty (a tombstone) is its default
            env[f"default{n}"] = rtable.table.c[col.attr].default.arg
            cells.append(typed[col.kind].format(text).replace("else None", f"else default{n}"))
        else:
            cells.append(typed[col.kind].format(text))
    if any(bf.is_column_child(child) for child in rtable.children):
        columns.append("features")
        cells.append("''")  # filled by _write_children
    # the sort key as `records.save` makes it, from the values
    order = " + ' ' + ".join(f"str(t[{columns.index(a)}] or '')" if a in columns else "''"
                             for a in rtable.rt.order_by) or "''"
    columns += ["draft", "sort_key"]
    source = (f"def db_row(row):\n    t = ({', '.join(cells)},)\n"
              f"    return t + (False, fold({order})[:200])\n")
    exec(compile(source, f"<database row of {rtable.name}>", "exec"), env)  # noqa: S102 - our own column list
    return columns, env["db_row"]


def _write_children(conn: Connection, rtable: bf.RecordTable, maps: bf.UidMaps, ids: list[int],
                    uid_by_id: Mapping[int, str], children: Mapping[str, Mapping[str, list[tuple]]], *,
                    replaced: list[int] | None = None) -> set[int]:
    """Write the join rows of records; those of `replaced` records (all of `ids` if None) go first.
    Return the ids of the records that lost a join row whose link found nothing to point to."""
    incomplete: set[int] = set()
    for child in rtable.children:
        per_owner = children.get(child.name, {})
        if bf.is_column_child(child):
            for id_ in ids:
                codes = ";".join(values[0] for values in per_owner.get(uid_by_id[id_], []))
                conn.execute(update(rtable.table).where(rtable.table.c.id == id_).values(features=codes))
            continue
        if bf.is_workshop_part(child):
            _write_part(conn, child, ids, uid_by_id, per_owner, ids if replaced is None else replaced)
            continue
        table, owner_col, mapping = bf.child_db_table(child)
        old = ids if replaced is None else replaced
        for i in range(0, len(old), 5000):
            conn.execute(delete(table).where(table.c[owner_col].in_(old[i:i + 5000])))
        if child.name.endswith("_themes") and any(
                values[0] not in maps.theme_ids() for uid in uid_by_id.values() for values in per_owner.get(uid, [])):
            maps.reload_themes()
        targets: list[tuple[str, Any]] = []
        for col in child.columns[1:]:
            if col.name == "theme_code":
                targets.append(("theme_id", maps.theme_ids().get))
            elif col.kind == "ref":
                targets.append((mapping[col.name], maps.id_of(col.ref or "").get))
            else:
                targets.append((mapping[col.name], lambda text, kind=col.kind: bf.read_value(kind, text)))
        new_rows = []
        for id_ in ids:
            for values in per_owner.get(uid_by_id[id_], ()):
                row = (id_, *(convert(text) for (_attr, convert), text in zip(targets, values, strict=True)))
                if None not in row:
                    new_rows.append(row)
                else:
                    incomplete.add(id_)
        insert_rows(conn, table, [owner_col, *(attr for attr, _convert in targets)], new_rows)
    return incomplete


def _write_part(conn: Connection, child: bf.ChildTable, ids: list[int], uid_by_id: Mapping[int, str],
                per_owner: Mapping[str, list[tuple]], old: list[int]) -> None:
    """Write a workshop's part (`bf.WORKSHOP_PARTS`) for the records `ids`, replacing the rows of `old`
    as a whole. A note names its column and theme by uid: they are written before it (the plan
    checked that each names one of its own board's)."""
    table, owner_col = bf.part_table(child)
    for i in range(0, len(old), 5000):
        conn.execute(delete(table).where(table.c[owner_col].in_(old[i:i + 5000])))
    columns = child.columns[1:]
    siblings: dict[str, dict[str, int]] = {}
    for col in columns:
        if col.sibling:
            stable = bf.part_table(next(c for c in bf.TABLES[child.owner].children if c.name == col.sibling))[0]
            siblings[col.name] = {uid: id_ for chunk in range(0, len(ids), 5000) for uid, id_ in conn.execute(
                select(stable.c.uid, stable.c.id).where(stable.c.board_id.in_(ids[chunk:chunk + 5000])))}
    defaults = bf.PART_DEFAULTS.get(child.name, {})
    # a note's `category_uid` is read through a join (see `bf.part_source`) and written as its `category_id`
    names = [owner_col, *(col.name.removesuffix("_uid") + "_id" if col.sibling else col.attr for col in columns),
             *defaults]
    if child.name == "sticky_notes":
        names += ["client_key", "created_at"]
    now = utcnow().replace(microsecond=0)
    rows = []
    for id_ in ids:
        for values in per_owner.get(uid_by_id[id_], ()):
            cells = [siblings[col.name].get(text) if col.sibling and text else None if col.sibling
                     else bf.read_value(col.kind, text) for col, text in zip(columns, values, strict=True)]
            row = [id_, *cells, *defaults.values()]
            if child.name == "sticky_notes":
                row += [values[0], now]  # the note's uid as its client key; the time of the import
            rows.append(row)
    insert_rows(conn, table, names, rows)


def _write_documents(conn: Connection, plan: Plan, uploads: Path, batch_id: int) -> list[str]:
    """Write the planned attachments; return the digests of the files written (absent before)."""
    written: list[str] = []
    for values in plan.documents:
        digest = values["sha256"]
        if not document_service.is_digest(digest):  # the plan refused such a bundle; never make a path of it
            raise BundleError(_("Empreinte SHA-256 invalide : ce document ne désigne aucun fichier."))
        try:
            with plan.bundle.zf.open(f"documents/{digest}") as fh:
                stored = document_service.store_stream(uploads, digest, fh)  # checks the bytes against the digest
        except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:  # not OSError: a full disk is no damage
            raise BundleError(_("L'archive est abîmée (fichier %(name)s illisible).", name=f"documents/{digest}")) from exc
        except InvalidInputError as exc:
            raise BundleError(_("Le contenu du fichier joint %(name)s ne correspond pas à son empreinte SHA-256 : "
                                "pièce jointe falsifiée ou abîmée.", name=f"documents/{digest}")) from exc
        if stored:
            written.append(digest)
            document_service.forget_files_on_rollback(uploads, [digest])
        row = {c.attr: values[c.name] for c in bf.DOCUMENT_COLUMNS if c.attr}
        row["draft"] = False
        existing = conn.execute(select(Document.id).where(Document.uid == row["uid"])).scalar()
        if existing:
            before = dict(conn.execute(select(Document.__table__).where(Document.id == existing)).mappings().one())
            conn.execute(update(Document.__table__).where(Document.id == existing).values(**row))
            conn.execute(insert(ImportChange.__table__), [{"batch_id": batch_id, "record_type": "documents",
                                                           "record_uid": row["uid"], "action": "updated",
                                                           "before": {"document": _jsonable(before)}}])
        else:
            conn.execute(insert(Document.__table__), [row])
            conn.execute(insert(ImportChange.__table__), [{"batch_id": batch_id, "record_type": "documents",
                                                           "record_uid": row["uid"], "action": "created",
                                                           "before": None}])
    return written


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k != "id"}


def reindex(touched: Mapping[str, list[int]], batch: int = 2000) -> None:
    """Bring the search index up to date for records an import wrote (or an undo put back)."""
    db.session.flush()
    for key, ids in touched.items():
        if key not in RECORD_TYPES:
            continue  # workshops, sequences and boards are not in the register's search
        for i in range(0, len(ids), batch):
            search_service.index_ids(RECORD_TYPES[key], ids[i:i + batch])


# --------------------------------------------------------------------------- undo

def undo_import(batch_uid: str, *, username: str, uploads: Path | None = None) -> ImportBatch:
    """Remove what an import (bundle or spreadsheet) brought and put back what it replaced, unless
    something changed its records since (`services.imports.blockers`).

    With `uploads`, the attachment files the import wrote go too, once the undo commits, unless
    a remaining document still names them."""
    batch = db.session.scalars(select(ImportBatch).filter_by(uid=batch_uid)).first()
    if batch is None:
        raise NotFoundError(_("Cet import n'existe pas."))
    if batch.status != "applied":
        raise ConflictError(_("Cet import a déjà été annulé."))
    # Later imports and edits of other records do not matter; of its own records, they block it.
    imports_service.refuse_if_blocked(batch)
    conn = db.session.connection()
    changes = list(conn.execute(select(ImportChange.__table__).where(ImportChange.batch_id == batch.id)).mappings())
    created: dict[str, list[str]] = {}
    updated: dict[str, list[Mapping[str, Any]]] = {}
    for ch in changes:
        (created if ch["action"] == "created" else updated).setdefault(ch["record_type"], []).append(
            ch["record_uid"] if ch["action"] == "created" else ch)
    maps = bf.UidMaps(conn)
    created_ids = {key: {maps.id_of(key)[u] for u in uids if u in maps.id_of(key)}
                   for key, uids in created.items() if key in bf.TABLES}
    touched: dict[str, list[int]] = {}
    # put back what was replaced first, then remove what was created (dependants before what they point to)
    for key in bf.TABLE_ORDER:
        if key not in updated:
            continue
        rtable = bf.TABLES[key]
        before = {ch["record_uid"]: _as_entered(rtable.columns, ch["before"], ch["before"]["row"])
                  for ch in updated[key]}
        # in the order of the table's columns; a cell missing from a row kept by an older release reads as empty
        rows = {uid: [row.get(c.name, "") for c in rtable.columns] for uid, row in before.items()}
        kids: dict[str, dict[str, list[tuple]]] = {}
        child_columns = {child.name: child.columns[1:] for child in rtable.children}
        for ch in updated[key]:
            for name, values in ch["before"]["children"].items():
                kids.setdefault(name, {})[ch["record_uid"]] = [
                    tuple(_as_entered(child_columns.get(name, ()), ch["before"], dict(enumerate(v))).values())
                    for v in values]
        touched[key] = write_records(conn, rtable, maps, rows, kids, batch_id=None, origin_label=batch.origin_name,
                                     username=username, action="import-undo")
        self_ref = next((c.name for c in rtable.columns if c.kind == "ref" and c.ref == key), None)
        if self_ref:
            link_self_refs(conn, rtable, maps, [(uid, row.get(self_ref, "")) for uid, row in before.items()])
    for ch in updated.get("documents", []):
        before = ch["before"]["document"]
        for k in ("created_at", "updated_at"):
            before[k] = bf.read_value("datetime", before[k] + "Z") if before.get(k) else None
        conn.execute(update(Document.__table__).where(Document.uid == ch["record_uid"]).values(**before))
    if created.get("documents"):
        conn.execute(delete(Document.__table__).where(Document.uid.in_(created["documents"])))
    for key in reversed(bf.TABLE_ORDER):
        ids = sorted(created_ids.get(key, ()))
        if not ids:
            continue
        table = bf.TABLES[key].table
        uids = [maps.uid_of(key)[i] for i in ids]
        search_service.remove_uids(uids)
        for i in range(0, len(ids), 5000):
            chunk = ids[i:i + 5000]
            if key == "territories":
                conn.execute(update(table).where(table.c.parent_id.in_(chunk)).values(parent_id=None))
            conn.execute(delete(Document.__table__).where(Document.linked_type == key,
                                                          Document.linked_uid.in_(uids[i:i + 5000])))
            conn.execute(delete(table).where(table.c.id.in_(chunk)))
        conn.execute(insert(ChangeLog.__table__), [
            {"record_type": key, "record_uid": uid, "record_title": "", "action": "import-undo",
             "username": username, "at": utcnow(), "changes": {}} for uid in uids])
    conn.execute(delete(ImportConflict.__table__).where(ImportConflict.batch_id == batch.id))
    batch.status, batch.undone_at, batch.undone_by = "undone", utcnow(), username
    db.session.flush()
    if uploads is not None:
        written = (batch.report or {}).get("files_written") or []
        document_service.remove_files_after_commit(uploads, sorted(document_service.unreferenced(written)))
    reindex(touched)
    return batch


def _as_entered(columns: Sequence[bf.Column], before: Mapping[str, Any], cells: Mapping[Any, str]) -> dict[Any, str]:
    """The cells of a replaced record kept by an import, without the formula escapes that releases
    writing format 1.0 kept in them (`cells` by column name, or by position in `columns`)."""
    if before.get("as_entered"):
        return dict(cells)
    texts = {n for n, col in enumerate(columns) if col.kind == "text"} | {col.name for col in columns
                                                                          if col.kind == "text"}
    return {k: restore(v) if k in texts and isinstance(v, str) else v for k, v in cells.items()}


__all__ = ["Bundle", "BundleError", "Plan", "Decision", "open_bundle", "plan_import", "apply_import", "undo_import",
           "reasons", "report_of"]
