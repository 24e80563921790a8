"""Learn from peers through HTTP: the pages every role reads, the empty state, the way in, the home setting."""

from __future__ import annotations

from datetime import date

from flask import Flask

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.models import LessonPerson
from piu_app.services import instance as instance_service
from tests.conftest import csrf_token
from tests.factories import make_foreign, make_innovation, make_territory


def _seed(app: Flask) -> dict[str, str]:
    """Our coastal town, and a peer's experiment in a town like it with a lesson, a review and two people."""
    with app.test_request_context(), writing():
        home = make_territory(name="Port-Sable", population=60_000, degurba_l1=2, features=["littoral"])
        instance_service.set_home_territory(home.uid)
        innovation = make_innovation()
        joal = make_foreign("territories", name="Joal-Fadiouth", level="commune", country_code="SN",
                            population=45_000, degurba_l1=2, features=["littoral"])
        experiment = make_foreign("experiments", title="Essai à Joal", innovation=innovation.uid, territory=joal.uid,
                                  status="completed", outcome="generalised", start_date=date(2022, 1, 10))
        shared = make_foreign("persons", given_name="Awa", family_name="Diop", email="awa@joal.sn",
                              contact_consent=True, visibility="public")
        secret = make_foreign("persons", given_name="Moussa", family_name="Sarr", email="moussa@joal.sn",
                              phone="+221 77 111", contact_consent=False, visibility="public")
        lesson = make_foreign("lessons", title="Ce que Joal a appris", experiment=experiment.uid, author=shared.uid,
                              what_worked="Les pêcheurs ont adopté l'éclairage.")
        lesson.people_links.append(LessonPerson(person=secret, role="witness"))
        make_foreign("reviews", innovation=innovation.uid, experiment=experiment.uid, reviewer_type="peer_city",
                     would_recommend=True, scores={"benefit": 4})
        db.session.commit()
        return {"innovation": innovation.uid}


def test_reader_sees_peers_ranked_with_reasons_origin_lessons_and_consenting_contacts(app, reader):
    uids = _seed(app)
    page = reader.get(f"/peers/innovations/{uids['innovation']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Qui l'a essayé ailleurs ?" in html and "Essai à Joal" in html
    assert "Classement" in html and "Même pays (SN)" in html and "Point commun : Littoral" in html
    assert "Partagé par peer-city" in html and "Généralisée" in html
    assert "Ce que Joal a appris" in html and "Les pêcheurs ont adopté" in html
    assert "1 sur 1 recommandent" in html and "note moyenne 4/5" in html
    assert "awa@joal.sn" in html
    assert "moussa@joal.sn" not in html and "+221 77 111" not in html
    assert "Votre territoire : Port-Sable" in html


def test_theme_page_and_picker(app, reader):
    _seed(app)
    html = reader.get("/peers/themes/energy_climate").get_data(as_text=True)
    assert "Essai à Joal" in html and "Éclairage public solaire intelligent" in html
    assert reader.get("/peers/?theme=mobility").headers["Location"].endswith("/peers/themes/mobility")
    assert "Pas encore d'expérience d'une ville pair" in reader.get("/peers/themes/mobility").get_data(as_text=True)
    assert reader.get("/peers/themes/nope").status_code == 404
    index = reader.get("/peers/").get_data(as_text=True)
    assert "Apprendre des pairs" in index and "/peers/themes/mobility" in index


def test_empty_state_tells_how_to_get_peers_data(app, reader, editor):
    with app.test_request_context(), writing():
        uid = make_innovation().uid
        db.session.commit()
    html = reader.get(f"/peers/innovations/{uid}").get_data(as_text=True)
    assert "Pas encore d'expérience d'une ville pair" in html and "paquet" in html and "Échanges" in html
    assert "Le territoire de votre ville n'est pas encore connu" in html
    assert 'href="/exchange"' in editor.get(f"/peers/innovations/{uid}").get_data(as_text=True)


def test_innovation_page_links_to_peers(app, reader):
    uids = _seed(app)
    html = reader.get(f"/innovations/{uids['innovation']}").get_data(as_text=True)
    assert f'href="/peers/innovations/{uids["innovation"]}"' in html and "Qui l'a essayé ailleurs ?" in html


def test_peers_pages_need_a_login(app, client):
    uids = _seed(app)
    assert client.get(f"/peers/innovations/{uids['innovation']}").status_code == 302


def test_admin_chooses_the_home_territory(app, admin, reader):
    with app.test_request_context(), writing():
        uid = make_territory(name="Port-Sable").uid
        db.session.commit()
    page = admin.get("/admin/instance").get_data(as_text=True)
    assert "Territoire de la ville" in page and uid in page
    response = admin.post("/admin/instance", data={"home_territory": uid,
                                                   "csrf_token": csrf_token(admin, "/admin/instance")})
    assert response.status_code == 302
    with app.app_context():
        assert instance_service.current().home_territory_uid == uid
    response = admin.post("/admin/instance", data={"home_territory": "bogus",
                                                   "csrf_token": csrf_token(admin, "/admin/instance")})
    assert response.status_code == 400
    assert reader.get("/admin/instance").status_code == 403


def test_similar_innovations_of_peers_are_shown_with_city_innovation_reasons_and_links(app, reader):
    uids = _seed(app)
    with app.test_request_context(), writing():
        lamps = make_foreign("innovations", name="Lampadaires solaires autonomes", themes=["energy_climate"],
                             tagline="Des lampadaires à énergie solaire")
        nowhere = make_foreign("experiments", title="Lampadaires sans lieu connu", innovation=lamps.uid,
                               status="ongoing")
        db.session.commit()
        lamps_uid, nowhere_uid = lamps.uid, nowhere.uid
    html = reader.get(f"/peers/innovations/{uids['innovation']}").get_data(as_text=True)
    assert "Cette innovation, ailleurs" in html and "Des innovations proches, ailleurs" in html
    assert f'href="/innovations/{lamps_uid}"' in html and f'href="/experiments/{nowhere_uid}"' in html
    assert "Innovation proche : Lampadaires solaires autonomes" in html and "Mots en commun :" in html
    assert "Territoire non renseigné par cette ville" in html
    assert "Aucun point commun connu" not in html  # a peer without a territory is never just "nothing in common"
    page = reader.get(f"/innovations/{uids['innovation']}").get_data(as_text=True)
    assert "Essai à Joal" in page and "Lampadaires sans lieu connu" in page and "innovation proche" in page
    assert "Toutes les expériences des villes pairs" in page


def test_a_long_list_of_peers_shows_a_page_then_more_on_demand(app, reader):
    """Fifty peers' experiments with their lessons made a 50 KB page: a page's worth is shown, and a plain
    link shows one page more (no JavaScript); a hostile `n` is bounded."""
    step = app.config["PAGE_SIZE"]
    with app.test_request_context(), writing():
        innovation = make_innovation()
        for n in range(step + 3):
            make_foreign("experiments", title=f"Essai pair n°{n:03d}", innovation=innovation.uid,
                         status="completed", start_date=date(2020, 1, 1 + n % 28))
        db.session.commit()
        uid = innovation.uid
    html = reader.get(f"/peers/innovations/{uid}").get_data(as_text=True)
    assert html.count("Essai pair n°") == step
    more = f'href="/peers/innovations/{uid}?n={2 * step}#memes-{step + 1}"'
    assert more in html and "Afficher plus d'expérimentations" in html
    html = reader.get(f"/peers/innovations/{uid}?n={2 * step}").get_data(as_text=True)
    assert html.count("Essai pair n°") == step + 3 and "Afficher plus d" not in html
    assert f'id="memes-{step + 1}"' in html  # the link opens the page at the first new one
    for hostile, shown in (("-5", step), ("abc", step), ("99999999999999999999", step + 3)):
        assert reader.get(f"/peers/innovations/{uid}?n={hostile}").get_data(as_text=True).count("Essai pair n°") \
            == shown
    html = reader.get("/peers/themes/energy_climate").get_data(as_text=True)
    assert html.count("Essai pair n°") == step and 'href="/peers/themes/energy_climate?n=' in html
