"""Attachments travel by content, never by path (issue 10, items 1-3 and "what to build" 1).

Written from the attacks of the issue, as a stranger would make them: a `documents` row whose
`sha256` cell is a path (absolute, Windows, `../`) with a zip member `documents/` + that path; a
forged file whose bytes are not its digest; a document that points at a record the bundle does
not bring (the importer's own, say). Each is refused or skipped with a reason, and a refused
bundle writes nothing anywhere: not in the database, not in the data directory, not elsewhere.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from flask import Flask

from piu_app.exchange.bundle_import import BundleError, reasons
from piu_app.extensions import db
from piu_app.models import Document
from piu_app.registry import RECORD_TYPES
from piu_app.services import documents as document_service
from piu_app.services import exchange

from ..factories import make_innovation
from .cities import inside, make_city
from .test_hostile_bundles import db_snapshot

PDF = b"%PDF-1.4\n% cahier des charges de la ville A\n%%EOF\n"
PAYLOAD = b"import os; os.system('echo pwned > /tmp/pwned')\n"  # what a .pth in site-packages would run


@pytest.fixture
def cities(register_template: Path, tmp_path: Path):
    def make(code: str) -> Flask:
        return make_city(register_template, tmp_path / "cities", code)
    return make


def uploads(app: Flask) -> Path:
    return Path(app.config["PIU_UPLOADS_DIR"])


def attach(app: Flask, record, data: bytes = PDF, filename: str = "cctp.pdf", title: str = "CCTP") -> Document:
    return document_service.attach(RECORD_TYPES["innovations"], record, stream=io.BytesIO(data), filename=filename,
                                   title=title, doc_type="other", uploads=uploads(app), max_bytes=1 << 20,
                                   username="test")


def city_a_bundle(app: Flask, out: Path) -> tuple[str, str]:
    """City A shares an innovation with a PDF attached; return (innovation uid, document uid)."""
    with inside(app):
        innovation = make_innovation(name="Éclairage solaire", visibility="network")
        document = attach(app, innovation)
        db.session.flush()
        innovation_uid, document_uid = innovation.uid, document.uid
    with inside(app):
        summary = exchange.export("network", out, uploads=uploads(app), include_documents=True)
    assert summary.documents_included == 1
    return innovation_uid, document_uid


def import_(app: Flask, bundle: Path):
    with inside(app):
        plan, batch = exchange.import_bundle(bundle, username="test", uploads=uploads(app))
        return plan, (batch.uid if batch else None)


def rewrite(bundle: Path, out: Path, *, rows=None, add: dict[str, bytes] | None = None,
            drop: tuple[str, ...] = ()) -> Path:
    """Copy a bundle with its documents table changed by `rows` (a function of the row dicts) and members
    added or dropped, then reseal every hash, as a forger who knows the format would."""
    with zipfile.ZipFile(bundle) as zf:  # a forger cannot sign: the signature goes
        files = {name: zf.read(name) for name in zf.namelist() if name not in drop and not name.startswith("signature/")}
    if rows is not None:
        reader = csv.DictReader(io.StringIO(files["data/documents.csv"].decode("utf-8")))
        header = list(reader.fieldnames or [])
        new_rows = rows([dict(r) for r in reader])
        text = io.StringIO()
        writer = csv.DictWriter(text, header, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(new_rows)
        files["data/documents.csv"] = text.getvalue().encode("utf-8")
    files.update(add or {})
    descriptor = json.loads(files["datapackage.json"])
    descriptor.pop("x-piu-signature", None)
    for resource in descriptor["resources"]:
        if resource.get("path") in files:
            data = files[resource["path"]]
            resource["hash"], resource["bytes"] = f"sha256:{hashlib.sha256(data).hexdigest()}", len(data)
    files["datapackage.json"] = json.dumps(descriptor).encode()
    files["checksums.sha256"] = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                                        for name, data in files.items() if name != "checksums.sha256").encode()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return out


def set_cells(**cells: str):
    return lambda rows: [{**r, **cells} for r in rows]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` but the database (compared by `db_snapshot`) and the log."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("piu.sqlite3") and p.suffix != ".log"}


def refused(app: Flask, bundle: Path, *, outside: list[Path] = ()) -> str:
    """Import `bundle` into `app`: it must be refused with nothing written anywhere; return the message."""
    data_dir = Path(app.config["PIU_DATA_DIR"])
    with app.app_context():
        before_db = db_snapshot()
    before_files = tree(data_dir)
    with pytest.raises(BundleError) as exc:
        import_(app, bundle)
    with app.app_context():
        assert db_snapshot() == before_db
    assert tree(data_dir) == before_files
    for path in outside:
        assert not path.exists() and not path.parent.exists(), f"{path} was written"
    return "\n".join([exc.value.message, *map(str, exc.value.problems)])


# --------------------------------------------------------------------------- the genuine case

def test_an_attachment_travels_with_its_record_is_verified_and_undo_removes_its_file(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    innovation_uid, document_uid = city_a_bundle(a, tmp_path / "a.zip")
    digest = hashlib.sha256(PDF).hexdigest()

    plan, batch_uid = import_(b, tmp_path / "a.zip")
    assert plan.decisions["documents"][document_uid].action == "created"
    stored = uploads(b) / digest[:2] / digest
    assert stored.read_bytes() == PDF
    with inside(b):
        document = db.session.scalars(db.select(Document).filter_by(uid=document_uid)).one()
        assert (document.linked_uid, document.media_type, document.size) == (innovation_uid, "application/pdf", len(PDF))
        from piu_app.services import imports
        listed = {r.uid: r for r in imports.records(imports.get(batch_uid)).items}
        # the Imports page lists the attachment, linked to the page of the record it is attached to
        assert (listed[document_uid].link_type, listed[document_uid].link_uid) == ("innovations", innovation_uid)

    plan, again = import_(b, tmp_path / "a.zip")  # a re-import changes nothing
    assert again is None and plan.decisions["documents"][document_uid].action == "unchanged"

    with inside(b):
        exchange.undo(batch_uid, username="test", uploads=uploads(b))
        assert stored.exists()  # not before the undo commits
    assert not stored.exists()
    assert not [p for p in uploads(b).rglob("*") if p.is_file()]
    with inside(b):
        assert db.session.scalars(db.select(Document)).all() == []


def test_undo_keeps_a_file_that_another_document_still_names(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    _innovation, _document = city_a_bundle(a, tmp_path / "a.zip")
    with inside(b):
        attach(b, make_innovation(name="Fiche de B"), title="Même fichier, joint par B")
    _plan, batch_uid = import_(b, tmp_path / "a.zip")
    digest = hashlib.sha256(PDF).hexdigest()
    with inside(b):
        exchange.undo(batch_uid, username="test", uploads=uploads(b))
    assert (uploads(b) / digest[:2] / digest).read_bytes() == PDF


def test_an_apply_rolled_back_leaves_no_file_behind(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    with pytest.raises(RuntimeError):
        with inside(b):
            exchange.import_bundle(tmp_path / "a.zip", username="test", uploads=uploads(b))
            assert [p for p in uploads(b).rglob("*") if p.is_file()]
            raise RuntimeError("killed before the commit")
    assert not [p for p in uploads(b).rglob("*") if p.is_file()]


# --------------------------------------------------------------------------- item 1: paths

@pytest.mark.parametrize("kind", ["posix", "windows", "traversal", "dot-dot-cell", "uppercase", "short"])
def test_a_sha256_cell_that_is_not_a_digest_refuses_the_bundle_and_writes_nothing(cities, tmp_path, kind):
    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    target = tmp_path / "outside" / "site-packages" / "evil.pth"
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    cell = {"posix": str(target), "windows": "C:/Python312/Lib/site-packages/evil.pth",
            "traversal": "../../../outside/evil.pth", "dot-dot-cell": "../" + digest,
            "uppercase": digest.upper(), "short": digest[:63]}[kind]
    hostile = rewrite(tmp_path / "a.zip", tmp_path / f"{kind}.zip", rows=set_cells(sha256=cell),
                      add={f"documents/{cell}": PAYLOAD})
    message = refused(b, hostile, outside=[target])
    assert "refusée" in message or "refusé" in message or "empreinte SHA-256" in message
    assert cell[:40] in message


def test_the_preview_refuses_what_the_apply_would_refuse(cities, tmp_path):
    """The plan runs the same checks as the apply: a bundle that makes a path is refused at the preview."""
    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    target = tmp_path / "outside" / "evil.pth"
    hostile = rewrite(tmp_path / "a.zip", tmp_path / "abs.zip", rows=set_cells(sha256=str(target)),
                      add={f"documents/{target}": PAYLOAD})
    with inside(b), pytest.raises(BundleError) as exc:
        exchange.preview(hostile)
    assert "n'est pas une empreinte SHA-256" in "\n".join(exc.value.problems)
    assert not target.parent.exists()


def test_a_member_under_documents_not_named_by_a_digest_refuses_the_bundle(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    target = tmp_path / "outside" / "evil.pth"
    hostile = rewrite(tmp_path / "a.zip", tmp_path / "member.zip", add={f"documents/{target}": PAYLOAD})
    message = refused(b, hostile, outside=[target])
    assert "n'est pas nommé par son empreinte SHA-256" in message


# --------------------------------------------------------------------------- item 3: forged bytes

def test_a_forged_attachment_whose_bytes_are_not_its_digest_is_refused(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    digest = hashlib.sha256(PDF).hexdigest()
    forged = b"%PDF-1.4\n% faux cahier des charges\n"
    hostile = rewrite(tmp_path / "a.zip", tmp_path / "forged.zip", add={f"documents/{digest}": forged})
    message = refused(b, hostile)
    assert "ne correspond pas à son empreinte SHA-256" in message and "falsifiée" in message

    # the genuine file then comes in, and is the one kept
    import_(b, tmp_path / "a.zip")
    assert (uploads(b) / digest[:2] / digest).read_bytes() == PDF


def test_a_stored_file_that_was_forged_before_is_replaced_by_the_genuine_bytes(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    digest = hashlib.sha256(PDF).hexdigest()
    planted = uploads(b) / digest[:2] / digest  # left by a release that never checked the bytes
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"%PDF-1.4\n% forged\n")
    import_(b, tmp_path / "a.zip")
    assert planted.read_bytes() == PDF


# --------------------------------------------------------------------------- attachments of records the import brings

def _linked_to(uid: str):
    return set_cells(linked_uid=uid)


def test_a_peer_can_never_attach_a_document_to_the_importers_own_record(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    with inside(b):
        own_uid = make_innovation(name="Fiche de B").uid
    hostile = rewrite(tmp_path / "a.zip", tmp_path / "own.zip", rows=_linked_to(own_uid))
    plan, _batch = import_(b, hostile)
    decision = next(iter(plan.decisions["documents"].values()))
    assert (decision.action, decision.reason) == ("skipped", "attached_elsewhere")
    assert "attached_elsewhere" in reasons()
    with inside(b):
        assert db.session.scalars(db.select(Document)).all() == []
    assert not [p for p in uploads(b).rglob("*") if p.is_file()]


def test_a_document_for_a_record_the_bundle_does_not_bring_is_skipped(cities, tmp_path):
    a, b, c = cities("ville-a"), cities("ville-b"), cities("ville-c")
    city_a_bundle(a, tmp_path / "a.zip")
    with inside(c):
        c_uid = make_innovation(name="Fiche de C", visibility="network").uid
    with inside(c):
        exchange.export("network", tmp_path / "c.zip", uploads=uploads(c))
    import_(b, tmp_path / "c.zip")  # B knows C's record, but A's bundle does not bring it
    hostile = rewrite(tmp_path / "a.zip", tmp_path / "elsewhere.zip", rows=_linked_to(c_uid))
    plan, _batch = import_(b, hostile)
    decision = next(iter(plan.decisions["documents"].values()))
    assert (decision.action, decision.reason) == ("skipped", "attached_elsewhere")
    with inside(b):
        assert db.session.scalars(db.select(Document)).all() == []


def test_a_documents_origin_must_be_its_records_origin(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    for origin, reason in (("ville-c", "document_origin"), ("ville-b", "own_record")):
        hostile = rewrite(tmp_path / "a.zip", tmp_path / f"{origin}.zip", rows=set_cells(origin_instance=origin))
        plan, _batch = import_(b, hostile)
        decision = next(iter(plan.decisions["documents"].values()))
        assert (decision.action, decision.reason) == ("skipped", reason)
        assert reason in reasons()
    with inside(b):
        assert db.session.scalars(db.select(Document)).all() == []


def test_a_file_whose_content_is_not_an_accepted_type_is_skipped(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    exe = b"MZ\x90\x00" + b"\x00" * 60
    digest = hashlib.sha256(exe).hexdigest()
    hostile = rewrite(tmp_path / "a.zip", tmp_path / "exe.zip",
                      rows=set_cells(sha256=digest, media_type="application/pdf", size=str(len(exe))),
                      add={f"documents/{digest}": exe})
    plan, _batch = import_(b, hostile)
    decision = next(iter(plan.decisions["documents"].values()))
    assert (decision.action, decision.reason) == ("skipped", "file_type")
    assert not (uploads(b) / digest[:2] / digest).exists()


def test_imported_names_and_media_types_come_from_what_piu_checked(cities, tmp_path):
    a, b = cities("ville-a"), cities("ville-b")
    _innovation, document_uid = city_a_bundle(a, tmp_path / "a.zip")
    hostile = rewrite(tmp_path / "a.zip", tmp_path / "names.zip",
                      rows=set_cells(filename="../../\x01cctp\x7f.pdf", media_type="text/html", size="3"))
    import_(b, hostile)
    with inside(b):
        document = db.session.scalars(db.select(Document).filter_by(uid=document_uid)).one()
        assert (document.filename, document.media_type, document.size) == ("cctp.pdf", "application/pdf", len(PDF))


# --------------------------------------------------------------------------- export

def test_an_old_row_naming_a_file_outside_uploads_never_leaves_in_a_bundle(cities, tmp_path):
    a = cities("ville-a")
    secret = Path(a.config["PIU_DATA_DIR"]) / "secret_key"
    secret.write_text("canary-secret-key")
    with inside(a):
        innovation = make_innovation(name="Éclairage", visibility="network")
        db.session.add(Document(title="clé", filename="k.pdf", media_type="application/pdf", size=10,
                                sha256=str(secret), linked_type="innovations", linked_uid=innovation.uid,
                                visibility="network", origin_instance="ville-a"))
    with inside(a):
        summary = exchange.export("network", tmp_path / "a.zip", uploads=uploads(a), include_documents=True)
    assert summary.documents_included == 0
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert not any(name.startswith("documents/") for name in zf.namelist())
        assert b"canary-secret-key" not in b"".join(zf.read(n) for n in zf.namelist())


# --------------------------------------------------------------------------- the pages

def _editor_of(app: Flask):
    from piu_app.services import users as user_service
    from tests.conftest import PASSWORD, login

    with inside(app):
        user_service.create(username="editor", password=PASSWORD, role="editor")
    return login(app.test_client(), "editor")


def _upload_bundle(client, bundle: Path):
    from tests.conftest import csrf_token

    with bundle.open("rb") as fh:
        response = client.post("/exchange/import", data={"bundle": (fh, bundle.name),
                                                         "csrf_token": csrf_token(client, "/exchange/")})
    assert response.status_code == 302
    return client.get(response.headers["Location"])


def test_the_preview_page_refuses_a_path_and_shows_why_a_document_is_skipped(cities, tmp_path):
    import html

    a, b = cities("ville-a"), cities("ville-b")
    city_a_bundle(a, tmp_path / "a.zip")
    editor = _editor_of(b)
    target = tmp_path / "outside" / "evil.pth"
    hostile = rewrite(tmp_path / "a.zip", tmp_path / "abs.zip", rows=set_cells(sha256=str(target)),
                      add={f"documents/{target}": PAYLOAD})
    page = _upload_bundle(editor, hostile)
    assert page.status_code == 400
    assert "n'est pas une empreinte SHA-256" in html.unescape(page.get_data(as_text=True))
    assert not target.parent.exists()

    with inside(b):
        own_uid = make_innovation(name="Fiche de B").uid
    onto_ours = rewrite(tmp_path / "a.zip", tmp_path / "own.zip", rows=_linked_to(own_uid))
    page = _upload_bundle(editor, onto_ours)
    body = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 200 and "CCTP" in body
    assert "pièce jointe d'une fiche que cet import n'apporte pas" in body
