"""Uploads are accepted by their content, never by their name (issue 10: "an .exe named .pdf is served
inline as PDF"; "a NUL in an uploaded file name makes the attachment undownloadable")."""

from __future__ import annotations

import hashlib
import io
import unicodedata
import zipfile
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from piu_app.registry import RECORD_TYPES
from piu_app.services import InvalidInputError
from piu_app.services import documents as document_service
from tests.factories import make_innovation

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 48 + b"This program cannot be run in DOS mode."
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


DOCX = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
XLSX = _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
ODT = _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<office:document/>"})
PLAIN_ZIP = _zip({"evil.exe": EXE})


def attach(app: Flask, data: bytes, filename: str, **kw):
    record = make_innovation(name="Fiche à pièces jointes")
    return document_service.attach(RECORD_TYPES["innovations"], record, stream=io.BytesIO(data), filename=filename,
                                   title=kw.get("title", ""), doc_type="other", uploads=Path(app.config["PIU_UPLOADS_DIR"]),
                                   max_bytes=1 << 20, username="editor")


def stored_files(app: Flask) -> list[Path]:
    return [p for p in Path(app.config["PIU_UPLOADS_DIR"]).rglob("*") if p.is_file()]


@pytest.mark.parametrize(("data", "filename", "media_type"), [
    (PDF, "cahier.pdf", "application/pdf"),
    (PNG, "plan.png", "image/png"),
    (JPEG, "photo.JPEG", "image/jpeg"),
    (JPEG, "photo.jpg", "image/jpeg"),
    (b"GIF89a" + b"\x00" * 10, "anim.gif", "image/gif"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8, "img.webp", "image/webp"),
    (DOCX, "note.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (XLSX, "budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (ODT, "note.odt", "application/vnd.oasis.opendocument.text"),
    (OLE, "ancien.xls", "application/vnd.ms-excel"),
    (OLE, "ancien.doc", "application/msword"),
    (OLE, "protégé.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),  # encrypted
    (b"{\\rtf1\\ansi Bonjour}", "lettre.rtf", "application/rtf"),
    ("nom;téléphone\nAwa;+221 77\n".encode(), "contacts.csv", "text/csv"),
    ("\ufeffCompte rendu\n".encode(), "cr.txt", "text/plain"),
    (b"# Notes\n", "notes.md", "text/markdown"),
])
def test_an_upload_is_accepted_by_its_content_and_typed_by_it(app, ctx, data, filename, media_type):
    document = attach(app, data, filename)
    assert document.media_type == media_type
    assert document.sha256 == hashlib.sha256(data).hexdigest()
    path = document_service.stored_path(Path(app.config["PIU_UPLOADS_DIR"]), document)
    assert path is not None and path.read_bytes() == data


@pytest.mark.parametrize(("data", "filename"), [
    (EXE, "rapport.pdf"),            # the issue's .exe renamed .pdf
    (EXE, "photo.png"),
    (PNG, "rapport.pdf"),            # a real image, but not what its name says
    (PLAIN_ZIP, "note.docx"),        # a zip that is no office document
    (DOCX, "budget.xlsx"),           # the wrong office document
    (b"<html><script>alert(1)</script>", "page.pdf"),
    ("Café".encode("latin-1"), "contacts.csv"),   # not UTF-8
    (b"text\x00with a NUL", "notes.txt"),
    (OLE, "note.odt"),
])
def test_an_upload_whose_content_is_not_what_its_name_says_is_refused(app, ctx, data, filename):
    with pytest.raises(InvalidInputError) as exc:
        attach(app, data, filename)
    assert "n'est pas celui d'un fichier" in exc.value.message
    assert filename.rsplit(".", 1)[1] in exc.value.message
    assert stored_files(app) == []  # the temporary file went too


@pytest.mark.parametrize("filename", ["virus.exe", "page.html", "script.svg", "x.pth"])
def test_an_upload_of_a_type_not_kept_is_refused_whatever_its_content(app, ctx, filename):
    with pytest.raises(InvalidInputError) as exc:
        attach(app, PDF, filename)
    assert "Type de fichier non accepté" in exc.value.message
    assert stored_files(app) == []


@pytest.mark.parametrize(("filename", "kept"), [
    ("rap\x00port.pdf", "rapport.pdf"),
    ("\x00\x01\x1f.pdf", "document.pdf"),
    ("../../etc/cahier.pdf", "cahier.pdf"),
    ("C:\\Users\\awa\\cahier.pdf", "cahier.pdf"),
    ("annexe\u202efdp.pdf", "annexefdp.pdf"),
    ("ligne\r\nX-Header: 1.pdf", "ligneX-Header_ 1.pdf"),
    ("", "document.pdf"),             # no name: the content gives the extension
    ("\x00", "document.pdf"),
    ("a" * 600 + ".pdf", "a" * 251 + ".pdf"),
])
def test_an_upload_name_loses_control_characters_and_path_parts(app, ctx, filename, kept):
    document = attach(app, PDF, filename)
    assert document.filename == kept and document.title == kept[:200]
    assert len(document.filename) <= 255


def test_an_empty_upload_is_refused(app, ctx):
    with pytest.raises(InvalidInputError) as exc:
        attach(app, b"", "vide.pdf")
    assert "vide" in exc.value.message
    assert stored_files(app) == []


def test_stored_paths_are_made_only_of_a_checked_digest(tmp_path):
    uploads = tmp_path / "uploads"
    digest = hashlib.sha256(b"x").hexdigest()
    assert document_service.path_for_digest(uploads, digest) == uploads.resolve() / digest[:2] / digest
    for bad in ("/etc/passwd", "C:/Windows/win.ini", "../secret_key", digest.upper(), digest[:63], digest + "0",
                f"{digest[:62]}/..", "", "\x00" * 64):
        with pytest.raises(InvalidInputError):
            document_service.path_for_digest(uploads, bad)
    # a sub-folder that is a link out of uploads/ is never followed
    outside = tmp_path / "outside"
    outside.mkdir()
    uploads.mkdir()
    (uploads / digest[:2]).symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInputError):
        document_service.path_for_digest(uploads, digest)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=400))
def test_any_name_becomes_a_bare_name_without_control_characters(name):
    cleaned = document_service.clean_filename(name)
    assert 0 < len(cleaned) <= 255
    assert "/" not in cleaned and "\\" not in cleaned and cleaned not in (".", "..")
    assert not any(unicodedata.category(c) == "Cc" for c in cleaned)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=120), st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
                 st.builds(lambda p: "/" + p, st.text(max_size=60))))
def test_any_text_names_a_file_inside_uploads_or_nothing(tmp_path_factory, text):
    uploads = tmp_path_factory.getbasetemp() / "uploads-property"
    try:
        path = document_service.path_for_digest(uploads, text)
    except InvalidInputError:
        assert not document_service.is_digest(text)
        return
    assert document_service.is_digest(text) and path.parent.parent == uploads.resolve() and path.name == text
