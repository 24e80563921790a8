"""Import a spreadsheet in four steps: upload, map the columns, preview row by row, confirm.

The uploaded file waits between steps in the uploads directory's temporary area, named by a
random token (never by the user's file name) and tied to the user who sent it; it is deleted
after the import, and forgotten after a day. Editors and administrators import; readers cannot.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..database import is_disk_full
from ..exchange import spreadsheets as sheets
from ..extensions import db
from ..i18n import current_lang
from ..models import ImportBatch
from ..registry import RECORD_TYPES, RecordType
from ..services import DomainError, InvalidInputError
from ..services import exchange as exchange_service
from ..services import imports as imports_service
from .access import require_role, username

bp = Blueprint("spreadsheets", __name__, url_prefix="/spreadsheets")

_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_KEEP_SECONDS = 24 * 3600
PREVIEW_ROWS_SHOWN = 500
NEW_RECORDS_SHOWN = 200  # per record type: the page stays readable for a sheet of thousands of projects


@bp.route("/", methods=["GET", "POST"])
@require_role("editor")
def upload():
    types = [RECORD_TYPES[key] for key in sheets.IMPORTABLE]
    if request.method == "POST":
        rt = RECORD_TYPES.get(request.form.get("record_type", ""))
        file = request.files.get("file")
        max_bytes = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
        data = file.stream.read(max_bytes + 1) if file else b""
        try:
            if rt is None or rt.key not in sheets.IMPORTABLE:
                raise sheets.SpreadsheetError(_("Choisissez le type de fiches à importer."))
            if file is None or not file.filename:
                raise sheets.SpreadsheetError(_("Choisissez un fichier .csv ou .xlsx."))
            if len(data) > max_bytes:
                raise sheets.SpreadsheetError(_("Fichier trop volumineux : %(mb)d Mo au plus.",
                                                mb=current_app.config["MAX_UPLOAD_MB"]))
            table = sheets.read_table(data)
        except sheets.SpreadsheetError as exc:
            flash(exc.message, "error")
            return render_template("spreadsheets/upload.html", types=types, batches=_recent()), 400
        name = (file.filename or "").replace("\\", "/").rsplit("/", 1)[-1][:255]  # type: ignore[union-attr]
        try:
            token = _store(table, {"filename": name, "record_type": rt.key,  # type: ignore[union-attr]
                                  "sha256": hashlib.sha256(data).hexdigest(), "username": username(),
                                  "mapping": sheets.suggest_mapping(rt, table.headers, table.rows)})
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            flash(_("Le disque est plein : le fichier n'a pas pu être gardé pour l'étape suivante. Libérez de "
                    "la place puis recommencez."), "error")
            return render_template("spreadsheets/upload.html", types=types, batches=_recent()), 507
        return redirect(url_for(".mapping", token=token))
    return render_template("spreadsheets/upload.html", types=types, batches=_recent())


@bp.route("/<token>/mapping", methods=["GET", "POST"])
@require_role("editor")
def mapping(token: str):
    rt, table, meta = _load(token, max_rows=3)  # the headers and a few samples: no need for every row
    choices = sheets.targets(rt)
    if request.method == "POST":
        names = {t.name for t in choices}
        columns = {h: request.form.get(f"col-{i}", "") for i, h in enumerate(table.headers)}
        columns = {h: (name if name in names else "") for h, name in columns.items()}
        chosen = [name for name in columns.values() if name]
        twice = sorted({t.label for t in choices if chosen.count(t.name) > 1})
        if twice:
            flash(_("Un champ ne peut recevoir qu'une colonne : %(fields)s.", fields=", ".join(twice)), "error")
        else:
            meta["mapping"] = {"columns": columns, "values": meta["mapping"].get("values", {})}
            _save_meta(token, meta)
            return redirect(url_for(".preview", token=token))
        meta["mapping"]["columns"] = columns
    samples = [[_sample(cells[i]) for _line, cells in table.rows[:3]] for i in range(len(table.headers))]
    personal = {i for i in range(len(table.headers)) if sheets.looks_personal([cells[i] for _line, cells in table.rows[:3]])}
    groups: dict[str, list[sheets.Target]] = {}
    for t in choices:
        groups.setdefault(t.group, []).append(t)
    return render_template("spreadsheets/mapping.html", rt=rt, table=table, meta=meta, token=token,
                           groups=groups, samples=samples, personal=personal,
                           derived=sheets.derived_notes(rt)), 400 if request.method == "POST" else 200


@bp.get("/<token>/preview")
@require_role("editor")
def preview(token: str):
    rt, table, meta = _load(token, mapped_only=True)
    report = sheets.preview(rt, table, meta["mapping"], lang=current_lang())
    labels = {t.name: t.label for t in sheets.targets(rt)}
    asked = {name: values for name, values in report.unknown.items() if name not in report.creatable}
    details = sheets.new_details(report, lang=current_lang())
    return render_template("spreadsheets/preview.html", rt=rt, report=report, meta=meta, token=token,
                           labels=labels, shown=_shown(report.rows), columns=meta["mapping"]["columns"],
                           asked=asked, new_groups=report.new_by_type(), details=details,
                           max_new_shown=NEW_RECORDS_SHOWN)


@bp.post("/<token>/values")
@require_role("editor")
def values(token: str):
    rt, _table, meta = _load(token, max_rows=0)
    chosen: dict[str, dict[str, str]] = meta["mapping"].setdefault("values", {})
    choices = {t.name: t for t in sheets.targets(rt) if t.has_choices}  # targets whose values the user matches
    for name, code in request.form.items():
        if name.startswith("value:") and code != "?":
            target, sep, key = name.removeprefix("value:").rpartition(":")
            if not sep or target not in choices or len(key) > 500 or len(code) > 200 \
                    or len(chosen.get(target, {})) >= sheets.MAX_OPTIONS * 10:
                raise InvalidInputError(_("Ce formulaire ne correspond pas à l'aperçu de ce fichier : rechargez "
                                          "l'aperçu, puis choisissez à nouveau les correspondances."))
            if code == sheets.CREATE:  # back to "create it": forget an earlier answer for that record
                kind = choices[target].ref_type
                for other in (t for t in choices.values() if t.ref_type == kind):
                    chosen.get(other.name, {}).pop(key, None)
                continue
            chosen.setdefault(target, {})[key] = code
    _save_meta(token, meta)
    flash(_("Correspondances enregistrées : l'aperçu en tient compte."), "success")
    return redirect(url_for(".preview", token=token))


@bp.post("/<token>/import")
@require_role("editor")
def confirm(token: str):
    rt, table, meta = _load(token, mapped_only=True)
    config = current_app.config
    backup = None
    try:
        backup = imports_service.backup_taker(db.engine, config["PIU_BACKUPS_DIR"], config["BACKUP_KEEP"])()
        batch = sheets.import_rows(rt, table, meta["mapping"], username=username(), filename=meta["filename"],
                                   sha256=meta["sha256"], valid_only=request.form.get("valid_only") == "1",
                                   lang=current_lang())
        imports_service.finish(batch, backup=backup)
    except DomainError as exc:  # a row refused, or the backup before the import could not be written
        db.session.rollback()
        if backup is not None:
            backup.unlink(missing_ok=True)  # taken for an import that wrote nothing
        flash(exc.message, "error")
        return redirect(url_for(".preview", token=token))
    db.session.commit()
    _delete(token)
    created = batch.report["tables"][rt.key]["created"]
    linked = batch.report.get("linked_created", 0)
    if linked:
        flash(_("Import terminé : %(n)d fiche(s) créée(s), et %(m)d fiche(s) liée(s) créée(s) avec elles.",
                n=created, m=linked), "success")
    else:
        flash(_("Import terminé : %(n)d fiche(s) créée(s).", n=created), "success")
    return redirect(url_for(".report", uid=batch.uid))


@bp.get("/imports/<uid>")
@require_role("editor")
def report(uid: str):
    batch = exchange_service.get_import(uid, kind="spreadsheet")
    rt = RECORD_TYPES.get(batch.report.get("record_type", ""))
    return render_template("spreadsheets/report.html", batch=batch, rt=rt)


# --------------------------------------------------------------------------- the file between steps

def _area() -> Path:
    path = Path(current_app.config["PIU_UPLOADS_DIR"]) / "tmp-spreadsheets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _store(table: sheets.Table, meta: dict[str, Any]) -> str:
    """Keep the table read at upload (not the file: it is read once) and the import's state, under a new token."""
    area = _area()
    now = time.time()
    for old in area.iterdir():  # forget abandoned imports
        if old.is_file() and now - old.stat().st_mtime > _KEEP_SECONDS:
            old.unlink(missing_ok=True)
    token = secrets.token_urlsafe(24)
    try:
        sheets.save_table(table, area / f"{token}.bin")
        _save_meta(token, meta)
    except OSError:
        _delete(token)
        raise
    return token


def _save_meta(token: str, meta: dict[str, Any]) -> None:
    path = _area() / f"{token}.json"
    temp = path.with_suffix(".json-new")
    try:
        temp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        temp.replace(path)  # the state of an import is never half-written
    except OSError:
        temp.unlink(missing_ok=True)
        raise


def _load(token: str, *, mapped_only: bool = False,
          max_rows: int | None = None) -> tuple[RecordType, sheets.Table, dict[str, Any]]:
    """Return the record type, table and state of an upload of this user, or show a clear message.

    The table is loaded back from its stored form: with `mapped_only`, only the cells of the columns
    the mapping uses; with `max_rows`, only the first rows.
    """
    area = _area()
    if not _TOKEN.fullmatch(token) or not (area / f"{token}.json").is_file():
        raise InvalidInputError(_("Ce fichier n'est plus disponible : envoyez-le à nouveau."))
    meta = json.loads((area / f"{token}.json").read_text(encoding="utf-8"))
    if meta.get("username") != username():
        raise InvalidInputError(_("Ce fichier n'est plus disponible : envoyez-le à nouveau."))
    rt = RECORD_TYPES[meta["record_type"]]
    mapped = {h for h, target in meta["mapping"].get("columns", {}).items() if target} if mapped_only else None
    try:
        table = sheets.load_table(area / f"{token}.bin", headers=mapped, max_rows=max_rows)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise InvalidInputError(_("Ce fichier n'est plus disponible : envoyez-le à nouveau.")) from exc
    return rt, table, meta


def _delete(token: str) -> None:
    for suffix in (".bin", ".json"):
        (_area() / f"{token}{suffix}").unlink(missing_ok=True)


def _recent(limit: int = 10) -> list[ImportBatch]:
    return exchange_service.imports(kind="spreadsheet", limit=limit)


def _sample(value: Any) -> str:
    text = "" if value is None else sheets.cell_text(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _shown(rows: list[sheets.RowReport]) -> list[sheets.RowReport]:
    """Rows to show: every row with a message first, then the others, up to a page's worth."""
    flagged = [r for r in rows if r.status != "ok"]
    return sorted((flagged + [r for r in rows if r.status == "ok"])[:PREVIEW_ROWS_SHOWN], key=lambda r: r.line)
