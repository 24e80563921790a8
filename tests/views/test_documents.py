"""Serving attachments (issue 10, item 2 and the Low items on uploads): a document row can never make
PIU serve a file outside the uploads folder, downloads are attachments with nosniff, and a name with a
NUL stays downloadable."""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import pytest
from flask import Flask

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.models import Document
from tests import factories
from tests.conftest import csrf_token

PDF = b"%PDF-1.4\n% cahier des charges\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 20


def _record(app: Flask) -> str:
    with app.test_request_context(), writing():
        uid = factories.make_innovation(name="Éclairage", visibility="network").uid
        db.session.commit()
    return uid


def _upload(client, uid: str, data: bytes, filename: str):
    return client.post(f"/innovations/{uid}/documents", data={
        "csrf_token": csrf_token(client, f"/innovations/{uid}"), "title": "", "doc_type": "other",
        "file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def _document_uid(client, uid: str) -> str:
    page = client.get(f"/innovations/{uid}").get_data(as_text=True)
    return re.findall(r'href="/documents/([0-9a-f-]{36})"', page)[-1]


def _row(app: Flask, *, sha256: str, filename: str = "cctp.pdf", media_type: str = "application/pdf") -> str:
    """A document row as an old release's import could leave it (its cells never checked)."""
    record = _record(app)
    with app.test_request_context(), writing():
        document = Document(title="Cahier", filename=filename, media_type=media_type, size=10, sha256=sha256,
                            linked_type="innovations", linked_uid=record, visibility="network",
                            origin_instance="ville-pair")
        db.session.add(document)
        db.session.commit()
        return document.uid


def _secret(app: Flask) -> Path:
    path = Path(app.config["PIU_DATA_DIR"]) / "secret_key"
    if not path.exists():
        path.write_text("canary-secret-key-" + "x" * 40)
    return path


def test_a_download_is_an_attachment_with_nosniff(app, editor):
    uid = _record(app)
    assert _upload(editor, uid, PDF, "cctp.pdf").status_code == 302
    response = editor.get(f"/documents/{_document_uid(editor, uid)}?inline=1")
    assert response.data == PDF
    assert response.headers["Content-Disposition"].startswith("attachment") and "cctp.pdf" in response.headers[
        "Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "application/pdf"


def test_only_a_checked_image_is_shown_inline_and_then_sandboxed(app, editor):
    uid = _record(app)
    assert _upload(editor, uid, PNG, "plan.png").status_code == 302
    response = editor.get(f"/documents/{_document_uid(editor, uid)}?inline=1")
    assert response.data == PNG and response.mimetype == "image/png"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert response.headers["Content-Security-Policy"].startswith("sandbox")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_exe_renamed_pdf_is_refused_and_never_served(app, editor):
    uid = _record(app)
    response = _upload(editor, uid, b"MZ\x90\x00" + b"\x00" * 60, "rapport.pdf")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "n&#39;est pas celui d&#39;un fichier .pdf" in body or "n'est pas celui d'un fichier .pdf" in body
    assert ".upload-" not in body  # the message never names the temporary file
    assert not re.findall(r'href="/documents/', editor.get(f"/innovations/{uid}").get_data(as_text=True))
    assert not [p for p in Path(app.config["PIU_UPLOADS_DIR"]).rglob("*") if p.is_file()]


def test_a_row_whose_media_type_lies_is_served_as_what_its_content_is(app, editor):
    digest = hashlib.sha256(PDF).hexdigest()
    stored = Path(app.config["PIU_UPLOADS_DIR"]) / digest[:2] / digest
    stored.parent.mkdir(parents=True)
    stored.write_bytes(PDF)
    doc = _row(app, sha256=digest, filename="page.pdf", media_type="text/html")
    response = editor.get(f"/documents/{doc}?inline=1")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize("who", ["reader", "editor", "admin"])
@pytest.mark.parametrize("target", ["passwd", "secret_key", "relative_secret", "windows"])
def test_a_row_pointing_outside_uploads_is_never_served(app, request, who, target):
    client = request.getfixturevalue(who)
    secret = _secret(app)
    sha256 = {"passwd": "/etc/passwd", "secret_key": str(secret), "relative_secret": "../../secret_key",
              "windows": "C:/Windows/win.ini"}[target]
    if len(sha256) > 64 and app.config.get("DATABASE_URL"):
        pytest.skip("PostgreSQL's VARCHAR(64) cannot hold this path: such a row never existed there")
    doc = _row(app, sha256=sha256)
    response = client.get(f"/documents/{doc}")
    assert response.status_code == 404
    body = response.get_data()
    assert secret.read_bytes() not in body and b"root:" not in body
    assert "aucun fichier valide" in response.get_data(as_text=True)


def test_a_stored_file_that_is_a_link_out_of_uploads_is_never_served(app, editor):
    secret = _secret(app)
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()  # even with the digest of the target's bytes
    link = Path(app.config["PIU_UPLOADS_DIR"]) / digest[:2] / digest
    link.parent.mkdir(parents=True)
    os.symlink(secret, link)
    doc = _row(app, sha256=digest)
    response = editor.get(f"/documents/{doc}")
    assert response.status_code == 404 and secret.read_bytes() not in response.get_data()


def test_a_stored_file_whose_bytes_changed_is_not_served(app, editor):
    uid = _record(app)
    _upload(editor, uid, PDF, "cctp.pdf")
    digest = hashlib.sha256(PDF).hexdigest()
    (Path(app.config["PIU_UPLOADS_DIR"]) / digest[:2] / digest).write_bytes(b"%PDF-1.4\n% forged\n")
    response = editor.get(f"/documents/{_document_uid(editor, uid)}")
    assert response.status_code == 404 and b"forged" not in response.data
    assert "abîmé" in response.get_data(as_text=True)


def test_a_name_with_a_nul_stays_downloadable(app, editor):
    uid = _record(app)
    assert _upload(editor, uid, PDF, "rap\x00port.pdf").status_code == 302
    response = editor.get(f"/documents/{_document_uid(editor, uid)}")
    assert response.status_code == 200 and response.data == PDF
    assert "rapport.pdf" in response.headers["Content-Disposition"]


def test_an_old_row_whose_name_has_a_nul_stays_downloadable(app, editor):
    if not str(app.config.get("DATABASE_URL") or "sqlite").startswith("sqlite"):
        pytest.skip("PostgreSQL never stored a NUL")
    digest = hashlib.sha256(PDF).hexdigest()
    stored = Path(app.config["PIU_UPLOADS_DIR"]) / digest[:2] / digest
    stored.parent.mkdir(parents=True)
    stored.write_bytes(PDF)
    doc = _row(app, sha256=digest, filename="cahier\x00\r\n.pdf")  # left by a release that kept the NUL
    response = editor.get(f"/documents/{doc}")
    assert response.status_code == 200 and response.data == PDF
    assert "cahier.pdf" in response.headers["Content-Disposition"]
    assert "\x00" not in response.headers["Content-Disposition"]
