"""An update brought by a bundle names, in the record's history, the fields that changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from piu_app.extensions import db
from piu_app.models import ChangeLog, Innovation, Person
from piu_app.registry import RECORD_TYPES
from piu_app.services import records

from ..conftest import PASSWORD, csrf_token
from ..factories import make, make_innovation, make_organisation
from .cities import export, import_, inside, make_city

INNOVATIONS = RECORD_TYPES["innovations"]


@pytest.fixture
def cities(register_template: Path, tmp_path: Path):
    def make_(code: str, **kw):
        return make_city(register_template, tmp_path, code, **kw)
    return make_


def test_an_imported_update_shows_the_fields_that_changed(cities, tmp_path):
    a, b = cities("ville-a", name="Ville A"), cities("ville-b")
    with inside(a):
        org = make_organisation(name="Lumisol", visibility="network")
        innovation = make_innovation(name="Éclairage solaire", visibility="network", price_indication=1000)
        make("persons", family_name="Diallo", email="awa@ville-a.sn", contact_consent=True, visibility="public")
        uid, org_uid = innovation.uid, org.uid
    import_(b, export(a, tmp_path / "a1.zip"))
    with inside(a):
        innovation = db.session.scalars(db.select(Innovation).filter_by(uid=uid)).one()
        records.update(INNOVATIONS, innovation, {"price_indication": "2500000", "tagline": "Nouvelle accroche",
                                                 "themes": ["energy_climate", "mobility"], "visibility": "public"},
                       username="a")
        records.add_link(INNOVATIONS, innovation, "carriers", target_uid=org_uid, role="carrier", username="a")
        person = db.session.scalars(db.select(Person).filter_by(family_name="Diallo")).one()
        records.update(RECORD_TYPES["persons"], person, {"email": "awa.diallo@ville-a.sn"}, username="a")
    totals, _batch = import_(b, export(a, tmp_path / "a2.zip"))
    assert totals["updated"] == 2
    with inside(b):
        log = db.session.scalars(db.select(ChangeLog).filter_by(record_uid=uid, action="import")
                                 .order_by(ChangeLog.id.desc())).first()
        assert log.changes["origin"] == ["", "Ville A"]
        assert log.changes["price_indication"][1].startswith("2500000")
        assert log.changes["tagline"][1] == "Nouvelle accroche"
        assert log.changes["themes"] == ["energy_climate", "energy_climate;mobility"]
        assert log.changes["visibility"] == ["network", "public"]
        assert log.changes["carriers"] == ["", f"{org_uid} (carrier)"]
        assert not {"version", "updated_at", "uid", "origin_instance"} & set(log.changes)
        person_log = db.session.scalars(db.select(ChangeLog).filter_by(record_type="persons", action="import")
                                        .order_by(ChangeLog.id.desc())).first()
        assert "email" in person_log.changes
        assert "awa" not in repr(person_log.changes)  # a contact detail: that it changed, never what it is
    # the page puts it into words: the carrier by its name, the role, the amount, the sharing level
    client = b.test_client()
    with inside(b):
        from piu_app.services import users

        users.create(username="lecteur", password=PASSWORD, role="reader")
    client.post("/login", data={"username": "lecteur", "password": PASSWORD, "csrf_token": csrf_token(client, "/login")})
    page = client.get(f"/innovations/{uid}/history").get_data(as_text=True)
    assert "depuis Ville A" in page and "Lumisol (Porteur" in page and "2\u202f500\u202f000" in page
    assert "Public" in page and "Nouvelle accroche" in page and "Mobilité" in page
    assert org_uid not in page and "energy_climate" not in page
