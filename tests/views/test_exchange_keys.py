"""The signature on the exchange pages: the city's own fingerprint, who signed a bundle in the
preview and the report, a forged bundle refused, and the administrators' page of pinned keys."""

from __future__ import annotations

import html
import io
from pathlib import Path

from piu_app.exchange import signing
from piu_app.extensions import db
from piu_app.models import PeerKey

from ..conftest import csrf_token, login
from ..exchange.cities import export, inside, make_city
from ..factories import make_innovation


def _peer(register_template, tmp_path):
    peer = make_city(register_template, tmp_path / "peer", "ville-pair", name="Ville Pair")
    with inside(peer):
        make_innovation(name="Compostage de quartier", visibility="network")
    return peer


def _upload(client, data: bytes) -> str:
    response = client.post("/exchange/import", data={"bundle": (io.BytesIO(data), "pair.zip"),
                                                     "csrf_token": csrf_token(client, "/exchange/")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    return response.headers["Location"]


def test_the_exchange_page_shows_the_citys_own_fingerprint(app, editor):
    fingerprint = signing.instance_key(Path(app.config["PIU_DATA_DIR"])).fingerprint
    assert fingerprint in html.unescape(editor.get("/exchange/").get_data(as_text=True))


def test_preview_and_report_say_who_signed_and_a_forged_bundle_is_refused_with_both_fingerprints(
        app, editor, register_template, tmp_path):
    peer = _peer(register_template, tmp_path)
    key = signing.instance_key(Path(peer.config["PIU_DATA_DIR"]))
    preview_url = _upload(editor, export(peer, tmp_path / "p1.zip").read_bytes())
    page = html.unescape(editor.get(preview_url).get_data(as_text=True))
    assert key.fingerprint in page and "premier paquet signé de Ville Pair" in page
    with app.app_context():
        assert db.session.scalars(db.select(PeerKey)).all() == []  # pinned at apply only
    response = editor.post(preview_url, data={"csrf_token": csrf_token(editor, "/exchange/")})
    report = html.unescape(editor.get(response.headers["Location"]).get_data(as_text=True))
    assert key.fingerprint in report
    with app.app_context():
        assert db.session.scalars(db.select(PeerKey.fingerprint)).one() == key.fingerprint
    # the peer's key changes (a forger in its name, or a new laptop): refused, both fingerprints shown
    signing.key_file(Path(peer.config["PIU_DATA_DIR"])).unlink()
    with inside(peer):
        make_innovation(name="Seconde idée", visibility="network")
    preview_url = _upload(editor, export(peer, tmp_path / "p2.zip").read_bytes())
    response = editor.get(preview_url)
    page = html.unescape(response.get_data(as_text=True))
    new_key = signing.instance_key(Path(peer.config["PIU_DATA_DIR"]))
    assert response.status_code == 400
    assert key.fingerprint in page and new_key.fingerprint in page


def test_administrators_list_and_forget_pinned_keys_and_others_cannot(app, editor, register_template, tmp_path):
    peer = _peer(register_template, tmp_path)
    key = signing.instance_key(Path(peer.config["PIU_DATA_DIR"]))
    preview_url = _upload(editor, export(peer, tmp_path / "p1.zip").read_bytes())
    editor.post(preview_url, data={"csrf_token": csrf_token(editor, "/exchange/")})
    assert editor.get("/exchange/keys").status_code == 403
    token = csrf_token(editor, "/exchange/")
    assert editor.post("/exchange/keys/ville-pair/forget", data={"csrf_token": token}).status_code == 403
    admin = login(app.test_client(), "admin")
    page = html.unescape(admin.get("/exchange/keys").get_data(as_text=True))
    assert key.fingerprint in page and "Ville Pair" in page
    response = admin.post("/exchange/keys/ville-pair/forget", data={"csrf_token": csrf_token(admin, "/exchange/keys")})
    assert response.status_code == 302
    with app.app_context():
        peer_key = db.session.scalars(db.select(PeerKey)).one()
        assert peer_key.public_key == "" and peer_key.previous_keys[0]["fingerprint"] == key.fingerprint
    response = admin.post("/exchange/keys/ville-pair/forget", data={"csrf_token": csrf_token(admin, "/exchange/keys")})
    assert response.status_code == 302  # nothing left to forget: a message, not an error page
    assert "aucune : la prochaine clé sera enregistrée" in html.unescape(admin.get("/exchange/keys").get_data(as_text=True))
