"""Signed bundles, as a stranger would attack them: forged cities, tampered signatures, relays that
change, raise or delete another city's records, unsigned bundles, a key replaced on purpose.

City A is the origin; C relays or forges; D has met A before (A's key is pinned at D); E has never
met A. Every bundle is a real export of a city's register, changed afterwards the way an attacker
would (and re-signed with the attacker's own key when the attack needs a valid signature).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import stat
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select, text

from piu_app.database import writing
from piu_app.exchange import bundle_format as bf
from piu_app.exchange import signing
from piu_app.exchange.bundle_import import BundleError
from piu_app.extensions import db
from piu_app.models import ChangeLog, Innovation, PeerKey, SignedManifest
from piu_app.registry import RECORD_TYPES
from piu_app.services import exchange, records

from ..factories import make, make_experiment, make_innovation, make_organisation, make_territory
from .cities import all_bytes, export, import_, inside, make_city, unsigned_copy

INNOVATIONS = RECORD_TYPES["innovations"]


@pytest.fixture
def cities(register_template: Path, tmp_path: Path):
    def make(code: str, **kw):
        return make_city(register_template, tmp_path / "cities", code, **kw)
    return make


def _fill_a(a) -> dict[str, str]:
    """City A: records with join rows (themes, carriers), links, a person whose contacts stay home."""
    with inside(a):
        territory = make_territory(name="Ville A", visibility="network", features=["littoral", "capitale"])
        org = make_organisation(name="Lumisol", visibility="network", territory=territory.uid)
        secret = make_organisation(name="Fournisseur confidentiel", visibility="private")
        lamp = make_innovation(name="Éclairage solaire", visibility="public", themes=["energy_climate", "mobility"])
        records.add_link(INNOVATIONS, lamp, "carriers", target_uid=org.uid, role="carrier", username="t")
        records.add_link(INNOVATIONS, lamp, "carriers", target_uid=secret.uid, role="distributor", username="t")
        kiosk = make_innovation(name="Kiosque numérique", visibility="network", themes=["digital_data"])
        make_experiment(lamp, title="Pilote du port", territory=territory.uid, buyer=secret.uid, visibility="network")
        make("persons", family_name="Sow", email="sow@ville-a.sn", contact_consent=False, visibility="network",
             organisation=org.uid)
        return {"lamp": lamp.uid, "kiosk": kiosk.uid, "org": org.uid}


def _preview(app, bundle: Path):
    with inside(app):
        plan = exchange.preview(bundle)
        plan.bundle.close()
        return plan


def _import(app, bundle: Path):
    """Import; return the plan's decisions of innovations and the batch's report."""
    with inside(app):
        plan, batch = exchange.import_bundle(bundle, username="test", uploads=Path(app.config["PIU_UPLOADS_DIR"]))
        return plan, (dict(batch.report) if batch else None)


def _innovation(app, uid: str):
    with inside(app):
        row = db.session.execute(select(Innovation.name, Innovation.version, Innovation.deleted)
                                 .where(Innovation.uid == uid)).first()
        return tuple(row) if row else None


def _tamper_in_register(app, uid: str, **values) -> None:
    """What a relaying city's officer (or a script on its laptop) can do to another city's record."""
    with inside(app):
        db.session.execute(Innovation.__table__.update().where(Innovation.uid == uid).values(**values))


def _members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write(members: dict[str, bytes], out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def _rehash(members: dict[str, bytes]) -> None:
    """Make the resource hashes and checksums.sha256 agree with the (changed) members."""
    package = json.loads(members["datapackage.json"])
    for resource in package["resources"]:
        if resource["path"] in members:
            resource["hash"] = "sha256:" + hashlib.sha256(members[resource["path"]]).hexdigest()
            resource["bytes"] = len(members[resource["path"]])
    members["datapackage.json"] = json.dumps(package, ensure_ascii=False).encode()
    members["checksums.sha256"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(members.items())
        if name not in ("checksums.sha256", signing.BUNDLE_SIGNATURE)).encode()


def _resign(members: dict[str, bytes], key: signing.SigningKey) -> None:
    """Sign the bundle (and its manifest) again with another key, as a forger holding only its own key would."""
    package = json.loads(members["datapackage.json"])
    package["x-piu-signature"].update(public_key=key.public_key, fingerprint=key.fingerprint,
                                      manifest_signature=_sign_manifest(key, members[signing.MANIFEST]))
    members["datapackage.json"] = json.dumps(package, ensure_ascii=False).encode()
    _rehash(members)
    members[signing.BUNDLE_SIGNATURE] = key.sign(members["checksums.sha256"]).encode()


def _unsigned(bundle: Path, out: Path, edit=None) -> Path:
    """The bundle as an earlier release wrote it: no signature at all."""
    members = {name: data for name, data in _members(bundle).items() if not name.startswith("signature/")}
    package = json.loads(members["datapackage.json"])
    package.pop("x-piu-signature")
    members["datapackage.json"] = json.dumps(package, ensure_ascii=False).encode()
    if edit:
        edit(members)
    _rehash(members)
    return _write(members, out)


def _sign_manifest(key: signing.SigningKey, text: bytes) -> str:
    return key.sign(signing.manifest_message(hashlib.sha256(text).hexdigest()))


def _key(app) -> signing.SigningKey:
    return signing.instance_key(Path(app.config["PIU_DATA_DIR"]))


def _rename(members: dict[str, bytes], old: str, new: str) -> None:
    members["data/innovations.csv"] = members["data/innovations.csv"].replace(old.encode(), new.encode())


# --------------------------------------------------------------------------- the keys

def test_each_city_has_its_own_key_in_a_private_file_never_in_a_bundle_or_the_database(cities, tmp_path):
    a = cities("ville-a")
    _fill_a(a)
    key_file = signing.key_file(Path(a.config["PIU_DATA_DIR"]))
    assert key_file.is_file()  # made at set-up
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = _key(a)
    assert key.public_key != _key(cities("ville-c")).public_key
    assert len(key.fingerprint.split()) == 10 and all(len(g) == 4 for g in key.fingerprint.split())
    bundle = export(a, tmp_path / "a.zip")
    private_raw = key.private.private_bytes_raw()
    pem_body = b"".join(key_file.read_bytes().splitlines()[1:-1])
    content = all_bytes(bundle)
    for secret in (private_raw, private_raw.hex().encode(), pem_body):
        assert secret not in content
    database = b"".join(p.read_bytes() for p in Path(a.config["PIU_DATA_DIR"]).glob("piu.sqlite3*"))
    for secret in (private_raw, private_raw.hex().encode(), pem_body):
        assert secret not in database
    package = json.loads(_members(bundle)["datapackage.json"])
    assert package["x-piu-signature"]["public_key"] == key.public_key
    assert package["x-piu-signature"]["fingerprint"] == key.fingerprint


def test_an_instance_of_an_earlier_release_gets_its_key_at_its_first_export(cities, tmp_path):
    a = cities("ville-a")
    key_file = signing.key_file(Path(a.config["PIU_DATA_DIR"]))
    key_file.unlink()  # as made by a release without signatures
    export(a, tmp_path / "a.zip")
    assert key_file.is_file() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert signing.BUNDLE_SIGNATURE in _members(tmp_path / "a.zip")


def test_two_first_uses_at_once_agree_on_one_key_and_leave_no_temporary_file(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    home = tmp_path / "home"
    home.mkdir()
    (home / f".{signing.KEY_FILE}.1.dead.part").write_bytes(b"half a key")  # a crash during an earlier attempt
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _i: signing.instance_key(home).public_key, range(16)))
    assert len(set(keys)) == 1
    assert sorted(p.name for p in home.iterdir()) == sorted([signing.KEY_FILE, f".{signing.KEY_FILE}.1.dead.part"])


# --------------------------------------------------------------------------- the producer's signature

def test_the_first_signed_bundle_pins_the_key_at_apply_never_at_preview(cities, tmp_path):
    a, d = cities("ville-a"), cities("ville-d")
    _fill_a(a)
    bundle = export(a, tmp_path / "a.zip")
    plan = _preview(d, bundle)
    assert plan.trust == "first" and plan.bundle.signature.fingerprint == _key(a).fingerprint
    with inside(d):
        assert db.session.scalars(select(PeerKey)).all() == []  # a preview writes nothing
    _plan, report = _import(d, bundle)
    assert report["signature"]["trust"] == "first"
    with inside(d):
        peer = db.session.scalars(select(PeerKey)).one()
        assert (peer.origin_instance, peer.public_key) == ("ville-a", _key(a).public_key)
        assert peer.fingerprint == _key(a).fingerprint
    assert _preview(d, export(a, tmp_path / "a2.zip")).trust == "verified"


def test_a_bundle_forged_in_the_name_of_a_pinned_city_is_refused_with_both_fingerprints(cities, tmp_path):
    a, c, d = cities("ville-a"), cities("ville-c"), cities("ville-d")
    uids = _fill_a(a)
    genuine = export(a, tmp_path / "a.zip")
    import_(d, genuine)
    members = _members(genuine)
    _rename(members, "Éclairage solaire", "Éclairage FORGÉ")
    members["data/innovations.csv"] = members["data/innovations.csv"].replace(b",3,false,", b",4,false,")
    _resign(members, _key(c))  # C holds only its own key
    forged = _write(members, tmp_path / "forged.zip")
    with pytest.raises(BundleError) as refused:
        _import(d, forged)
    assert _key(a).fingerprint in str(refused.value) and _key(c).fingerprint in str(refused.value)
    assert _innovation(d, uids["lamp"])[0] == "Éclairage solaire"


def test_tampered_signature_bytes_or_signed_content_are_refused_even_by_a_city_that_never_met_the_producer(
        cities, tmp_path):
    a, e = cities("ville-a"), cities("ville-e")
    _fill_a(a)
    genuine = export(a, tmp_path / "a.zip")
    members = _members(genuine)
    signature = members[signing.BUNDLE_SIGNATURE].decode()
    members[signing.BUNDLE_SIGNATURE] = (signature[:10] + ("0" if signature[10] != "0" else "1") + signature[11:]).encode()
    with pytest.raises(BundleError, match="modifié après avoir été signé"):
        _import(e, _write(members, tmp_path / "bad-signature.zip"))
    members = _members(genuine)
    _rename(members, "Éclairage solaire", "Éclairage changé")
    _rehash(members)  # checksums made to agree, signature left as it was
    with pytest.raises(BundleError, match="modifié après avoir été signé"):
        _import(e, _write(members, tmp_path / "changed.zip"))
    members = _members(genuine)
    members["notes/extra.txt"] = b"not covered"
    with pytest.raises(BundleError, match="ne couvre pas"):
        _import(e, _write(members, tmp_path / "extra.zip"))
    members = _members(genuine)
    del members[signing.BUNDLE_SIGNATURE]
    with pytest.raises(BundleError, match="incomplète"):
        _import(e, _write(members, tmp_path / "half.zip"))
    with inside(e):
        assert db.session.scalars(select(PeerKey)).all() == []
        assert db.session.scalars(select(Innovation)).all() == []


def test_an_unsigned_bundle_imports_unverified_from_a_city_not_pinned_and_is_refused_from_a_pinned_one(
        cities, tmp_path):
    a, d, e = cities("ville-a"), cities("ville-d"), cities("ville-e")
    uids = _fill_a(a)
    genuine = export(a, tmp_path / "a.zip")
    legacy = _unsigned(genuine, tmp_path / "legacy.zip")
    plan, report = _import(e, legacy)
    assert plan.trust == "unverified" and report["signature"]["trust"] == "unverified"
    assert _preview(cities("ville-f"), unsigned_copy(genuine, tmp_path / "legacy3.zip")).trust == "unverified"
    assert _innovation(e, uids["lamp"]) == _innovation(a, uids["lamp"])
    with inside(e):
        assert db.session.scalars(select(PeerKey)).all() == []  # nothing to pin
    import_(d, genuine)
    with pytest.raises(BundleError) as refused:
        _import(d, _unsigned(genuine, tmp_path / "legacy2.zip", lambda m: _rename(m, "Éclairage solaire", "X")))
    assert "pas signé" in str(refused.value) and _key(a).fingerprint in str(refused.value)


def test_an_administrator_replaces_a_pinned_key_and_the_next_bundle_with_the_new_key_imports(cities, tmp_path):
    a, d = cities("ville-a"), cities("ville-d")
    uids = _fill_a(a)
    import_(d, export(a, tmp_path / "a1.zip"))
    old = _key(a)
    signing.key_file(Path(a.config["PIU_DATA_DIR"])).unlink()  # A lost its laptop: a new key
    with inside(a):
        records.update(INNOVATIONS, db.session.scalars(select(Innovation).filter_by(uid=uids["lamp"])).one(),
                       {"name": "Éclairage solaire v2"}, username="t")
    renewed = export(a, tmp_path / "a2.zip")
    assert _key(a).public_key != old.public_key
    with pytest.raises(BundleError):
        _import(d, renewed)
    with inside(d):
        exchange.forget_key("ville-a", username="admin")
    plan, _report = _import(d, renewed)
    assert plan.trust == "first"
    assert _innovation(d, uids["lamp"])[0] == "Éclairage solaire v2"
    with inside(d):
        peer = db.session.scalars(select(PeerKey)).one()
        assert peer.public_key == _key(a).public_key
        assert [k["public_key"] for k in peer.previous_keys] == [old.public_key]
        assert peer.previous_keys[0]["replaced_by"] == "admin"
        actions = [r.action for r in db.session.scalars(select(ChangeLog).filter_by(record_type="peer_key")
                                                        .order_by(ChangeLog.id))]
        assert actions == ["pin", "unpin", "pin"]


# --------------------------------------------------------------------------- relayed records

def _relay_setup(cities, tmp_path):
    """D met A before A made the kiosk; C got everything from A and relays it; C has records of its own."""
    a, c, d = cities("ville-a"), cities("ville-c"), cities("ville-d")
    uids = _fill_a(a)
    with inside(a):
        early = make_innovation(name="Première idée de A", visibility="network").uid
    import_(d, export(a, tmp_path / "a0.zip"))
    with inside(a):
        made = make_innovation(name="Idée nouvelle de A", visibility="network", themes=["water_sanitation"])
        records.add_link(INNOVATIONS, made, "carriers", target_uid=uids["org"], role="carrier", username="t")
        later = made.uid
    import_(c, export(a, tmp_path / "a1.zip"))
    with inside(c):
        own = make_innovation(name="Idée de C", visibility="network").uid
    uids.update(early=early, later=later, own_c=own)
    return a, c, d, uids


def test_a_genuine_relay_of_a_pinned_city_is_verified_and_accepted(cities, tmp_path):
    a, c, d, uids = _relay_setup(cities, tmp_path)
    plan, report = _import(d, export(c, tmp_path / "c.zip"))
    assert report["signature"]["relays"]["ville-a"]["status"] == "verified"
    assert report["signature"]["unverified"] == {}
    assert [s for s in report["skipped"] if s["reason"].startswith("relay")] == []
    assert _innovation(d, uids["later"]) == _innovation(a, uids["later"])
    assert _innovation(d, uids["own_c"]) == ("Idée de C", 1, False)


def test_a_genuine_relay_reproduces_the_origins_rows_through_two_relays(cities, tmp_path):
    """Links, join rows in another order, redacted contacts: C's and then E's export of A's records
    match A's own manifest, so every relayed record is accepted by a city that met A."""
    a, c, d, uids = _relay_setup(cities, tmp_path)
    e = cities("ville-e")
    import_(e, export(c, tmp_path / "c.zip"))  # E never met A: taken, unverified
    plan, report = _import(d, export(e, tmp_path / "e.zip"))
    assert report["signature"]["relays"]["ville-a"]["status"] == "verified"
    assert [s for s in report["skipped"] if s["reason"].startswith("relay")] == []
    assert _innovation(d, uids["later"]) == _innovation(a, uids["later"])


def test_a_relayed_record_with_a_changed_title_is_skipped_and_reported_the_rest_accepted(cities, tmp_path):
    a, c, d, uids = _relay_setup(cities, tmp_path)
    _tamper_in_register(c, uids["later"], name="Idée détournée par C")
    plan, report = _import(d, export(c, tmp_path / "c.zip"))
    skipped = {s["uid"]: s["reason"] for s in report["skipped"]}
    assert skipped[uids["later"]] == "relay_differs"
    assert _innovation(d, uids["later"]) is None
    assert _innovation(d, uids["own_c"]) == ("Idée de C", 1, False)
    with inside(d):
        page = exchange.get_import(exchange.imports()[0].uid)
        assert page.report["skipped_total"] >= 1


@pytest.mark.parametrize("attack", [{"version": 99}, {"version": 99, "name": "Écrasée"}, {"deleted": True},
                                    {"deleted": True, "version": 2}])
def test_a_third_city_cannot_raise_the_version_or_delete_the_origins_record(cities, tmp_path, attack):
    a, c, d, uids = _relay_setup(cities, tmp_path)
    _tamper_in_register(c, uids["early"], **attack)
    _plan, report = _import(d, export(c, tmp_path / "c.zip"))
    assert {s["uid"]: s["reason"] for s in report["skipped"]}[uids["early"]] == "relay_differs"
    assert _innovation(d, uids["early"]) == ("Première idée de A", 1, False)
    # and A's next own bundle still updates it at D
    with inside(a):
        records.update(INNOVATIONS, db.session.scalars(select(Innovation).filter_by(uid=uids["early"])).one(),
                       {"name": "Première idée, revue"}, username="t")
    import_(d, export(a, tmp_path / "a2.zip"))
    assert _innovation(d, uids["early"]) == ("Première idée, revue", 2, False)


def test_a_relayed_record_the_origin_never_signed_is_skipped(cities, tmp_path):
    a, c, d, uids = _relay_setup(cities, tmp_path)
    with inside(c):  # a record made up in A's name
        made = make_innovation(name="Fausse idée de A", visibility="network").uid
        db.session.execute(text("UPDATE innovations SET origin_instance = 'ville-a' WHERE uid = :u"), {"u": made})
    _plan, report = _import(d, export(c, tmp_path / "c.zip"))
    assert {s["uid"]: s["reason"] for s in report["skipped"]}[made] == "relay_not_in_manifest"
    assert _innovation(d, made) is None


def test_a_relay_without_the_origins_manifest_or_with_a_forged_one_is_skipped_for_a_pinned_city(cities, tmp_path):
    a, c, d, uids = _relay_setup(cities, tmp_path)
    genuine = export(c, tmp_path / "c.zip")
    # without the manifest: an earlier release relayed it, or C dropped the proof
    members = _members(genuine)
    package = json.loads(members["datapackage.json"])
    package["x-piu-signature"]["relayed"] = []
    members["datapackage.json"] = json.dumps(package).encode()
    del members[signing.relayed_path("ville-a")]
    _rehash(members)
    members[signing.BUNDLE_SIGNATURE] = _key(c).sign(members["checksums.sha256"]).encode()
    _plan, report = _import(d, _write(members, tmp_path / "no-proof.zip"))
    assert {s["uid"]: s["reason"] for s in report["skipped"]}[uids["later"]] == "relay_unproven"
    assert _innovation(d, uids["later"]) is None
    # with A's manifest rewritten by C and signed with C's key
    members = _members(genuine)
    path = signing.relayed_path("ville-a")
    package = json.loads(members["datapackage.json"])
    entry = package["x-piu-signature"]["relayed"][0]
    entry.update(public_key=_key(c).public_key, signature=_sign_manifest(_key(c), members[path]))
    members["datapackage.json"] = json.dumps(package).encode()
    _rehash(members)
    members[signing.BUNDLE_SIGNATURE] = _key(c).sign(members["checksums.sha256"]).encode()
    plan = _preview(d, _write(members, tmp_path / "forged-proof.zip"))
    assert plan.decisions["innovations"][uids["later"]].reason == "relay_bad_signature"


def test_a_relay_to_a_city_that_never_met_the_origin_is_marked_unverified(cities, tmp_path):
    a, c, d, uids = _relay_setup(cities, tmp_path)
    e = cities("ville-e")
    plan, report = _import(e, export(c, tmp_path / "c.zip"))
    assert plan.trust == "first"  # C's own key
    assert report["signature"]["relays"]["ville-a"]["status"] == "unverified"
    assert report["signature"]["unverified"]["ville-a"] >= 3
    assert _innovation(e, uids["later"]) == _innovation(a, uids["later"])
    with inside(e):  # kept to relay in turn, never pinned
        assert db.session.scalars(select(SignedManifest.origin_instance).order_by(SignedManifest.origin_instance)
                                  ).all() == ["ville-a", "ville-c"]
        assert [p.origin_instance for p in db.session.scalars(select(PeerKey))] == ["ville-c"]


def _fingerprint_in(members: dict[str, bytes], table: str, uid: str) -> str:
    """The fingerprint of a record as it stands in a bundle (what anyone can compute)."""
    def rows(name):
        return list(csv.reader(io.StringIO(members[f"data/{name}.csv"].decode(), newline="")))[1:]
    row = next(r for r in rows(table) if r[0] == uid)
    kids = [signing.children_fingerprint([r[1:] for r in rows(child.name) if r[0] == uid])
            for child in bf.TABLES[table].children]
    return signing.record_fingerprint(signing.row_fingerprint(row), kids)


def test_the_origins_first_signed_bundle_undoes_a_version_raised_by_an_unverified_relay(cities, tmp_path):
    """E has not met A: C raises A's record to version 99 and vouches for it with a manifest in A's
    name that C signed itself; E takes it, unverified (nothing can tell). A's own first bundle then
    pins A's key and puts A's content back, whatever the version."""
    a, c, d, uids = _relay_setup(cities, tmp_path)
    e = cities("ville-e")
    _tamper_in_register(c, uids["early"], version=99, name="Écrasée par C")
    members = _members(export(c, tmp_path / "c.zip"))
    path = signing.relayed_path("ville-a")
    forged = _fingerprint_in(members, "innovations", uids["early"])
    members[path] = b"\n".join(
        f"innovations\t{uids['early']}\t99\t{forged}".encode() if line.startswith(b"innovations\t" + uids["early"].encode())
        else line
        for line in members[path].split(b"\n"))
    package = json.loads(members["datapackage.json"])
    package["x-piu-signature"]["relayed"][0].update(public_key=_key(c).public_key, signature=_sign_manifest(_key(c), members[path]))
    members["datapackage.json"] = json.dumps(package).encode()
    _rehash(members)
    members[signing.BUNDLE_SIGNATURE] = _key(c).sign(members["checksums.sha256"]).encode()
    plan, report = _import(e, _write(members, tmp_path / "c-forged.zip"))
    assert report["signature"]["relays"]["ville-a"]["status"] == "unverified"
    assert _innovation(e, uids["early"]) == ("Écrasée par C", 99, False)
    # D, which met A, is not fooled by the same bundle
    _plan, report = _import(d, tmp_path / "c-forged.zip")
    assert {s["uid"]: s["reason"] for s in report["skipped"]}[uids["early"]] == "relay_bad_signature"
    assert _innovation(d, uids["early"]) == ("Première idée de A", 1, False)
    # A's own first signed bundle at E: pinned, and A's word wins over the raised version
    plan, _report = _import(e, export(a, tmp_path / "a2.zip"))
    assert plan.trust == "first"
    assert _innovation(e, uids["early"]) == ("Première idée de A", 1, False)
    with inside(e):  # the manifest kept to relay A's records is A's own now
        kept = db.session.scalars(select(SignedManifest).filter_by(origin_instance="ville-a")).one()
        assert kept.public_key == _key(a).public_key


def test_an_older_release_bundle_that_raised_a_version_is_undone_by_the_origins_first_signed_bundle(
        cities, tmp_path):
    a, e = cities("ville-a"), cities("ville-e")
    uids = _fill_a(a)
    genuine = export(a, tmp_path / "a.zip")
    version = _innovation(a, uids["lamp"])[1]

    def raise_version(members):
        rows = members["data/innovations.csv"].decode().split("\r\n")
        members["data/innovations.csv"] = "\r\n".join(
            r.replace(f'"{version}","false",', '"99","false",').replace("Éclairage solaire", "Écrasée")
            if uids["lamp"] in r else r
            for r in rows).encode()
    import_(e, _unsigned(genuine, tmp_path / "legacy.zip", raise_version))
    assert _innovation(e, uids["lamp"]) == ("Écrasée", 99, False)
    _plan, _report = _import(e, genuine)
    assert _innovation(e, uids["lamp"]) == _innovation(a, uids["lamp"])


# --------------------------------------------------------------------------- any change, anywhere

def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.name.endswith(("-wal", "-shm", "-journal"))}


def _counts(app) -> tuple[int, ...]:
    with inside(app):
        return tuple(db.session.scalar(text(f"SELECT count(*) FROM {t}"))  # noqa: S608 - our own table names
                     for t in ("innovations", "organisations", "peer_keys", "signed_manifests", "import_batches"))


def test_any_byte_changed_or_member_dropped_in_a_signed_bundle_is_refused_and_changes_nothing(cities, tmp_path):
    """Property: a signed bundle changed anywhere (a byte of any member, signatures and descriptor
    included, or a member dropped) is refused, by a city that pinned the producer and by one that
    never met it, and leaves the register and the data directory as they were."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    a, d, e = cities("ville-a"), cities("ville-d"), cities("ville-e")
    _fill_a(a)
    genuine = export(a, tmp_path / "a.zip")
    import_(d, genuine)
    members = _members(genuine)
    names = sorted(members)
    before = {app: (_counts(app), _files(Path(app.config["PIU_DATA_DIR"]))) for app in (d, e)}
    outside = set(tmp_path.iterdir())

    @settings(max_examples=120, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(name=st.sampled_from(names), where=st.floats(0, 1, exclude_max=True), flip=st.integers(1, 255),
           drop=st.booleans())
    def attack(name, where, flip, drop):
        changed = dict(members)
        if drop:
            if name == "datapackage.json":
                return  # not a bundle at all: covered by the archive checks
            del changed[name]
        else:
            data = bytearray(changed[name])
            if not data:
                return
            at = int(where * len(data))
            data[at] ^= flip
            changed[name] = bytes(data)
        bundle = _write(changed, tmp_path / "attack.zip")
        for app in (d, e):
            with pytest.raises(BundleError):
                _import(app, bundle)
        bundle.unlink()

    attack()
    for app in (d, e):
        assert (_counts(app), _files(Path(app.config["PIU_DATA_DIR"]))) == before[app]
    assert set(tmp_path.iterdir()) == outside


def test_a_citys_own_bundle_pins_nothing_and_says_so(cities, tmp_path):
    a = cities("ville-a")
    _fill_a(a)
    bundle = export(a, tmp_path / "a.zip")
    assert _preview(a, bundle).trust == "own"
    _import(a, bundle)
    with inside(a):
        assert db.session.scalars(select(PeerKey)).all() == []
        assert db.session.scalars(select(SignedManifest)).all() == []


def test_a_kept_manifest_is_a_private_file_and_a_changed_one_is_never_relayed(cities, tmp_path):
    a, c, d, uids = _relay_setup(cities, tmp_path)
    [kept] = (Path(c.config["PIU_DATA_DIR"]) / "manifests").glob("ville-a-*.tsv")  # named by its content
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    with inside(c):
        row = db.session.scalars(select(SignedManifest).filter_by(origin_instance="ville-a")).one()
        assert uids["later"] not in row.manifest and hashlib.sha256(kept.read_bytes()).hexdigest() in row.manifest
    kept.write_bytes(kept.read_bytes().replace(b"innovations\t", b"innovations\t", 1) + b"x\n")  # changed by hand
    _plan, report = _import(d, export(c, tmp_path / "c.zip"))
    assert {s["uid"]: s["reason"] for s in report["skipped"]}[uids["later"]] == "relay_unproven"


def test_the_manifest_lists_every_own_record_with_the_fingerprint_a_verifier_computes(cities, tmp_path):
    a = cities("ville-a")
    uids = _fill_a(a)
    with inside(a):  # a record relayed from elsewhere is not in A's own manifest
        other = make_innovation(name="Reçue d'ailleurs", visibility="network").uid
        db.session.execute(text("UPDATE innovations SET origin_instance = 'ville-x' WHERE uid = :u"), {"u": other})
    members = _members(export(a, tmp_path / "a.zip"))
    manifest = signing.parse_manifest(members[signing.MANIFEST])
    assert manifest.origin == "ville-a" and manifest.level == "network"
    listed = {uid for _table, uid in manifest.records}
    assert {uids["lamp"], uids["kiosk"], uids["org"]} <= listed and other not in listed
    for (table, uid), (_version, fingerprint) in manifest.records.items():
        assert fingerprint == _fingerprint_in(members, table, uid), (table, uid)


def test_a_failed_export_leaves_no_bundle_no_manifest_and_no_thread_behind(cities, tmp_path, monkeypatch):
    import threading

    from piu_app.exchange import bundle_export, bundle_format

    a = cities("ville-a")
    _fill_a(a)

    def failing(real):
        def read(conn, rtable, *args, **kwargs):
            if rtable.name == "innovations":
                raise OSError(28, "No space left on device")
            yield from real(conn, rtable, *args, **kwargs)
        return read

    # both ways of reading the rows (the database writes them on SQLite, Python on PostgreSQL)
    monkeypatch.setattr(bundle_format, "record_text_rows", failing(bundle_format.record_text_rows))
    monkeypatch.setattr(bundle_export, "_line_batches", failing(bundle_export._line_batches))
    out = tmp_path / "out" / "a.zip"
    out.parent.mkdir()
    with pytest.raises(OSError):
        export(a, out)
    assert list(out.parent.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == "bundle-manifest"]


def test_a_kept_manifest_follows_its_transaction(cities, tmp_path):
    """An import that does not commit leaves no manifest file; one that replaces a kept manifest
    removes the file it replaces once it commits (one file per city, the one the database names)."""
    a, c, d, uids = _relay_setup(cities, tmp_path)
    folder = Path(c.config["PIU_DATA_DIR"]) / "manifests"
    before = sorted(p.name for p in folder.iterdir())
    with inside(a):
        make_innovation(name="Encore une", visibility="network")
    newer = export(a, tmp_path / "a2.zip")
    with c.test_request_context(), writing():  # previewed and applied, then rolled back
        exchange.import_bundle(newer, username="t", uploads=Path(c.config["PIU_UPLOADS_DIR"]))
        db.session.rollback()
        db.session.remove()
    assert sorted(p.name for p in folder.iterdir()) == before
    _import(c, newer)
    after = sorted(p.name for p in folder.iterdir() if p.name.startswith("ville-a-"))
    assert len(after) == 1 and after != [n for n in before if n.startswith("ville-a-")]


def test_a_relay_cannot_swap_the_attachment_of_a_city_known_by_its_key(cities, tmp_path):
    """No manifest lists attachments: C, relaying A's innovation, cannot replace A's file (a
    made-up row at version 99) at D, which knows A's key; D keeps A's own file."""
    import hashlib
    import io

    from sqlalchemy import update

    from piu_app.models import Document
    from piu_app.services import documents

    a, c, d = cities("ville-a"), cities("ville-c"), cities("ville-d")
    genuine, forged = b"%PDF-1.4\n% cahier de A\n%%EOF\n", b"%PDF-1.4\n% faux de C : payez sur IBAN XX\n%%EOF\n"
    uploads = {app: Path(app.config["PIU_UPLOADS_DIR"]) for app in (a, c, d)}
    with inside(a):
        lamp = make_innovation(name="Lampadaire", visibility="network")
        doc = documents.attach(RECORD_TYPES["innovations"], lamp, stream=io.BytesIO(genuine), filename="cctp.pdf",
                               title="CCTP", doc_type="other", uploads=uploads[a], max_bytes=1 << 20, username="t")
        db.session.flush()
        doc_uid = doc.uid
    with inside(a):
        exchange.export("network", tmp_path / "a.zip", uploads=uploads[a], include_documents=True)
    import_(d, tmp_path / "a.zip")  # D pins A's key
    import_(c, tmp_path / "a.zip")
    digest = hashlib.sha256(forged).hexdigest()
    documents.store_stream(uploads[c], digest, io.BytesIO(forged))
    with inside(c):  # C, on its own laptop, swaps A's attachment in its register
        db.session.execute(update(Document.__table__).where(Document.uid == doc_uid)
                           .values(sha256=digest, version=99, title="CCTP (v2)"))
    with inside(c):
        exchange.export("network", tmp_path / "c.zip", uploads=uploads[c], include_documents=True)
    plan, report = _import(d, tmp_path / "c.zip")
    assert plan.decisions["documents"][doc_uid].reason == "relay_document"
    with inside(d):
        row = db.session.scalars(select(Document).filter_by(uid=doc_uid)).one()
        assert (row.version, row.title) == (1, "CCTP")
        assert documents.path_for_digest(uploads[d], row.sha256).read_bytes() == genuine
