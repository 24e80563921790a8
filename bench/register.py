#!/usr/bin/env python3
"""Benchmark the register at scale: full-text search and list pages with 1k, 10k, 100k innovations.

For each size, a throw-away data directory gets a fresh database (the real migrations), a
configured instance and an admin account; the register is then filled fast with bulk inserts
through SQLAlchemy Core (organisations, innovations with themes and a carrier, experiments,
lessons, reviews), the full-text index is built with `services.search.rebuild()`, and the
Flask test client (logged in) times:

  search page   GET /search?q=...           (common word, accent-less query of accented words,
                                            rare word, two words, prefix)
  search svc    services.search.search()    (same queries, no HTTP/template: separates rendering)
  list page     GET /innovations/?...       (theme + deployment stage filter, unfiltered,
                                            visibility filter, sort=updated; random page 1..5)
  save          services.records.update()   (one innovation, with history and search index;
                                            20 saves, informative)

and a correctness spot check: "Éclairage public solaire intelligent" must be found by
q="eclairage solaire". Everything stays in-process (no server, no network).

Usage (from the repository root):

    .venv/bin/python bench/register.py                            # 1000, 10000, 100000
    .venv/bin/python bench/register.py --sizes 1000 --queries 50   # quick look
    .venv/bin/python bench/register.py --sizes 100000 --keep /tmp/piu-bench   # keep the databases
    .venv/bin/python bench/register.py --sizes 100000 --explain    # + query plans and SQL timings
    .venv/bin/python bench/register.py --app-root /tmp/piu-patched # bench a patched copy of piu_app
    .venv/bin/python bench/register.py --analyze                   # run ANALYZE after the fill

Target (issue): at 100 000 innovations, search and list p95 under 100 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ADMIN_USER = "admin"
ADMIN_PASSWORD = "bench-password-2026"
BATCH = 5000
TARGET_MS = 100.0
SPOT_NAME = "Éclairage public solaire intelligent"
SPOT_QUERY = "eclairage solaire"
RARE_WORD = "photocatalyse"

# (label, query) — accent-less queries of words stored with accents on purpose.
SEARCH_QUERIES = [
    ("common", "energie"),
    ("accents", "energie solaire"),
    ("accents", "dechets"),
    ("rare", RARE_WORD),
    ("two-words", "compostage quartier"),
    ("prefix", "mobil"),
]

# --------------------------------------------------------------------------- French word lists

SOLUTIONS = [
    "Éclairage solaire", "Compostage collectif", "Navette électrique", "Capteurs de qualité de l'air",
    "Plateforme de covoiturage", "Collecte des déchets", "Réseau de chaleur", "Toiture végétalisée",
    "Fontaine connectée", "Vélo-cargo", "Kiosque numérique", "Récupération des eaux pluviales",
    "Tri sélectif", "Borne de recharge", "Serre urbaine", "Mobilier urbain", "Cartographie participative",
    "Micro-réseau électrique", "Brique en terre crue", "Assainissement autonome", "Télérelève des compteurs",
    "Guichet numérique", "Ressourcerie", "Pavés drainants", "Îlot de fraîcheur", "Transport à la demande",
    "Méthaniseur de quartier", "Signalement citoyen", "Rénovation énergétique", "Chauffe-eau solaire",
    "Billettique mobile", "Jardin partagé", "Désalinisation solaire", "Marché numérique",
    "Consigne des emballages", "Station météo", "Éco-pâturage", "Gestion des encombrants",
]
QUALIFIERS = [
    "intelligente", "communautaire", "à bas coût", "pour les quartiers", "en libre-service", "modulaire",
    "participative", "bas-carbone", "de proximité", "mutualisée", "sobre", "open source", "mobile",
    "pour les écoles", "pour les marchés", "résiliente", "hybride", "autonome", "frugale", "partagée",
]
BRAND_SYLLABLES = ["ka", "lo", "mi", "sé", "to", "ra", "vé", "nu", "da", "kou", "ba", "li", "fa", "jo", "zé",
                   "ma", "ti", "no", "pé", "wa"]
VERBS = ["Réduire", "Améliorer", "Simplifier", "Mesurer", "Valoriser", "Sécuriser", "Partager", "Économiser",
         "Développer", "Faciliter"]
OBJECTS = ["la facture d'énergie", "la collecte des déchets", "la mobilité douce", "l'accès à l'eau",
           "la qualité de l'air", "l'éclairage des rues", "les déplacements", "la propreté",
           "la consommation électrique", "le tri des déchets", "les démarches administratives",
           "la fraîcheur en été"]
PLACES = ["des écoles", "des quartiers périphériques", "des marchés", "des centres de santé", "du centre-ville",
          "des habitants", "des communes rurales", "des gares routières", "des bâtiments publics",
          "des zones d'activité"]
SENTENCES = [
    "La solution réduit la consommation d'énergie de {pct} % grâce à une régulation fine.",
    "Elle a été conçue avec les habitants du quartier {quartier} lors d'ateliers participatifs.",
    "Les déchets organiques sont valorisés localement en compost et en biogaz.",
    "Le dispositif fonctionne à l'énergie solaire et reste autonome plusieurs jours sans soleil.",
    "La mobilité des usagers est suivie de façon anonyme pour adapter l'offre de transport.",
    "Un tableau de bord permet aux agents de la collectivité de suivre les indicateurs clés.",
    "La maintenance est assurée par une entreprise locale formée par le porteur.",
    "Le modèle économique repose sur un abonnement mensuel et une participation de la commune.",
    "Les données sont hébergées sur le territoire et restent la propriété de la collectivité.",
    "Le matériel est réparable et les pièces détachées sont disponibles sur place.",
    "L'expérimentation a montré une baisse des dépôts sauvages et une meilleure propreté des rues.",
    "Le réseau d'éclairage public est piloté à distance pour économiser l'électricité la nuit.",
    "Les eaux pluviales sont récupérées pour l'arrosage des espaces verts et des jardins partagés.",
    "Une application mobile permet de signaler les pannes et de suivre leur résolution.",
    "Le compostage de quartier mobilise des bénévoles et des agents municipaux.",
    "La transition énergétique du patrimoine communal est accélérée par des achats groupés.",
]
QUARTIERS = ["Médina", "Plateau", "Grand-Yoff", "Pikine", "Rufisque", "Guédiawaye", "Parcelles", "Ouakam",
             "Fann", "Hann", "Yeumbeul", "Thiaroye"]
ORG_KINDS = ["Association", "Coopérative", "Société", "Groupement", "Agence", "Fondation", "Atelier", "Collectif"]
ORG_TOPICS = ["Énergie verte", "Déchets et ressources", "Mobilité urbaine", "Eau et assainissement",
              "Numérique citoyen", "Habitat durable", "Agriculture urbaine", "Économie circulaire"]
LESSON_ADVICE = [
    "Impliquer les habitants dès la conception évite les rejets tardifs.",
    "Prévoir la maintenance dans le budget dès le départ.",
    "Un référent technique dans la commune est indispensable.",
    "Mesurer la situation de départ pour pouvoir montrer les résultats.",
    "Les délais d'achat public doivent être anticipés de six mois.",
]


def _brand(rng: random.Random) -> str:
    return "".join(rng.choice(BRAND_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _description(rng: random.Random, rare: bool) -> str:
    parts = [rng.choice(SENTENCES).format(pct=rng.randint(10, 60), quartier=rng.choice(QUARTIERS))
             for _ in range(rng.randint(3, 6))]
    if rare:
        parts.append(f"Un revêtement par {RARE_WORD} dégrade les polluants de l'air.")
    return " ".join(parts)


# --------------------------------------------------------------------------- helpers

def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(ms: list[float], cpu: list[float] | None = None) -> dict[str, float]:
    out = {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "max": max(ms) if ms else float("nan"),
           "n": len(ms)}
    if cpu is not None:
        out.update(cpu_p50=percentile(cpu, 50), cpu_p95=percentile(cpu, 95))
    return out


def split_summary(pairs: list[tuple[float, float]]) -> dict[str, float]:
    return summary([w for w, _ in pairs], [c for _, c in pairs])


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def fmt_summary(s: dict[str, float]) -> str:
    text = f"p50 {s['p50']:7.1f}  p95 {s['p95']:7.1f}  max {s['max']:7.1f} ms"
    if "cpu_p95" in s:
        text += f"   cpu p50 {s['cpu_p50']:6.1f}  p95 {s['cpu_p95']:6.1f} ms"
    return text + f"  (n={s['n']})"


def machine_info() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram": ram, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version}


# --------------------------------------------------------------------------- fill

def fill(app, n: int, rng: random.Random, *, analyze: bool) -> dict:
    """Create instance + admin, bulk-insert the register, build the FTS index. Return timings and counts."""
    from sqlalchemy import insert, text

    from piu_app.database import fold, writing
    from piu_app.extensions import db
    from piu_app.models import (
        ChangeLog,
        Experiment,
        Innovation,
        InnovationOrganisation,
        Lesson,
        Organisation,
        Review,
        Theme,
        VocabularyTerm,
        new_uid,
    )
    from piu_app.models.innovations import innovation_themes
    from piu_app.registry import RECORD_TYPES
    from piu_app.services import instance as instance_service
    from piu_app.services import search as search_service
    from piu_app.services import users as user_service

    by_table = {rt.model.__tablename__: rt for rt in RECORD_TYPES.values()}
    info: dict = {}
    with app.app_context(), writing():
        instance_service.configure(city_name="Ville-Banc", country_code="SN", instance_code="bench")
        user_service.create(username=ADMIN_USER, password=ADMIN_PASSWORD, role="admin")
        db.session.commit()

        def vocab(name: str) -> list[str]:
            return list(db.session.scalars(db.select(VocabularyTerm.code).filter_by(vocabulary=name)))

        kinds, stages = vocab("innovation_kind"), vocab("deployment_stage")
        org_types, exp_statuses, exp_stages = vocab("org_type"), vocab("experiment_status"), vocab("experiment_stage")
        reviewer_types = vocab("reviewer_type")
        theme_rows = db.session.execute(db.select(Theme.id, Theme.code)).all()
        theme_ids = [r.id for r in theme_rows]
        info["theme_codes"] = [r.code for r in theme_rows]
        # the list page's query parameter for themes is the field's name (`themes` today)
        info["theme_param"] = next(f.name for f in RECORD_TYPES["innovations"].filter_fields if f.kind == "themes")
        info["stages"] = stages

        now = dt.datetime(2026, 11, 21, 12, 0, 0)
        span = 3 * 365 * 24 * 3600

        def shared() -> dict:
            created = now - dt.timedelta(seconds=rng.randint(0, span))
            updated = created + dt.timedelta(seconds=rng.randint(0, int((now - created).total_seconds())))
            return {"uid": new_uid(), "origin_instance": "bench", "created_at": created, "updated_at": updated,
                    "version": 1, "deleted": False, "visibility": rng.choice(("private", "network", "public")),
                    "lang": "fr", "licence": "", "source": "", "draft": False}

        def bulk(table, rows_iter, total: int) -> None:
            rt = by_table.get(table.name)
            with_sort_key = rt is not None and "sort_key" in table.c
            batch: list[dict] = []
            for row in rows_iter:
                if with_sort_key:  # what services.records derives from the title on every save
                    row["sort_key"] = fold(" ".join(str(row.get(a) or "") for a in rt.order_by))[:200]
                batch.append(row)
                if len(batch) >= BATCH:
                    db.session.execute(insert(table), batch)
                    batch = []
            if batch:
                db.session.execute(insert(table), batch)
            db.session.commit()  # one transaction per table keeps the WAL small

        n_org, n_exp, n_les, n_rev = max(1, n // 5), n // 2, n // 4, n // 4
        t0 = time.perf_counter()

        def orgs():
            for i in range(1, n_org + 1):
                topic = rng.choice(ORG_TOPICS)
                yield {**shared(), "id": i, "name": f"{rng.choice(ORG_KINDS)} {_brand(rng)} {topic}",
                       "acronym": "", "org_type": rng.choice(org_types), "actor_family": "", "id_type": "",
                       "id_value": "", "territory_id": None, "website": "",
                       "description_short": f"Structure engagée pour {rng.choice(OBJECTS)} {rng.choice(PLACES)}.",
                       "description": "", "created_year": rng.randint(1990, 2025), "size_band": "",
                       "is_startup": rng.random() < 0.3}

        bulk(Organisation.__table__, orgs(), n_org)

        rare_every = max(1, n // 20)  # ~20 innovations carry the rare word, whatever the size

        def innovations():
            for i in range(1, n + 1):
                if i == n:
                    name = SPOT_NAME  # the spot-check record, always the last one
                else:
                    name = f"{rng.choice(SOLUTIONS)} {rng.choice(QUALIFIERS)} {_brand(rng)}"
                yield {**shared(), "id": i, "name": name[:200],
                       "tagline": f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}"[:140],
                       "description": _description(rng, rare=(i % rare_every == 7 % rare_every)),
                       "innovation_kind": rng.choice(kinds), "trl": rng.randint(1, 9),
                       "deployment_stage": rng.choice(stages), "price_model": "", "price_indication": None,
                       "currency": "", "open_source": rng.random() < 0.2, "data_hosting": "", "website": ""}

        bulk(Innovation.__table__, innovations(), n)

        def inno_themes():
            for i in range(1, n + 1):
                for tid in rng.sample(theme_ids, rng.randint(1, 3)):
                    yield {"innovation_id": i, "theme_id": tid}

        bulk(innovation_themes, inno_themes(), n * 2)

        def carriers():
            for i in range(1, n + 1):
                yield {"id": i, "innovation_id": i, "organisation_id": rng.randint(1, n_org), "role": "carrier"}

        bulk(InnovationOrganisation.__table__, carriers(), n)

        def experiments():
            for i in range(1, n_exp + 1):
                start = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randint(0, 1400))
                yield {**shared(), "id": i, "title": f"Test {rng.choice(SOLUTIONS).lower()} à {rng.choice(QUARTIERS)}",
                       "innovation_id": rng.randint(1, n), "need_id": None, "buyer_id": rng.randint(1, n_org),
                       "territory_id": None, "place_id": None, "start_date": start, "end_date": None,
                       "planned_end_date": start + dt.timedelta(days=180), "stage": rng.choice(exp_stages),
                       "status": rng.choice(exp_statuses), "outcome": "pending",
                       "budget_total": float(rng.randint(1, 500) * 100_000), "currency": "XOF",
                       "budget_public_share": None, "human_resources_fte": None, "legal_framework": "",
                       "derogation": False, "kpis": "Taux de satisfaction, base 0, cible 80 %"}

        bulk(Experiment.__table__, experiments(), n_exp)

        def lessons():
            for i in range(1, n_les + 1):
                yield {**shared(), "id": i,
                       "title": f"Retour d'expérience : {rng.choice(SOLUTIONS).lower()} ({rng.choice(QUARTIERS)})",
                       "experiment_id": rng.randint(1, max(1, n_exp)), "author_id": None,
                       "date": dt.date(2023, 1, 1) + dt.timedelta(days=rng.randint(0, 1000)),
                       "context": rng.choice(SENTENCES).format(pct=rng.randint(10, 60), quartier=rng.choice(QUARTIERS)),
                       "what_worked": "La mobilisation des habitants et des agents.",
                       "what_did_not": "Les délais de livraison du matériel.",
                       "conditions_for_replication": "Un budget de maintenance et un référent technique.",
                       "advice": rng.choice(LESSON_ADVICE), "results_impacts": "", "costs_actual": ""}

        if n_exp:
            bulk(Lesson.__table__, lessons(), n_les)

        def reviews():
            for i in range(1, n_rev + 1):
                yield {**shared(), "id": i, "innovation_id": rng.randint(1, n), "experiment_id": None,
                       "reviewer_person_id": None, "reviewer_org_id": rng.randint(1, n_org),
                       "reviewer_type": rng.choice(reviewer_types), "verified": False,
                       "overall_comment": f"Solution utile pour {rng.choice(OBJECTS)} ; "
                                          f"{rng.choice(LESSON_ADVICE).lower()}",
                       "would_recommend": rng.random() < 0.7,
                       "date": dt.date(2023, 1, 1) + dt.timedelta(days=rng.randint(0, 1000))}

        bulk(Review.__table__, reviews(), n_rev)

        def history():  # one "create" per innovation, and a few updates: what the history pages read
            stamp = now - dt.timedelta(days=30)
            for i in range(1, n + 1):
                yield {"record_type": "innovations", "record_uid": inno_uids[i - 1], "record_title": f"Innovation {i}",
                       "action": "create", "username": ADMIN_USER, "at": stamp, "changes": {}}
                if i % 10 == 0:
                    yield {"record_type": "innovations", "record_uid": inno_uids[i - 1],
                           "record_title": f"Innovation {i}", "action": "update", "username": ADMIN_USER,
                           "at": stamp + dt.timedelta(days=1), "changes": {"tagline": ["avant", "après"]}}

        inno_uids = list(db.session.scalars(db.select(Innovation.uid).order_by(Innovation.id)))
        bulk(ChangeLog.__table__, history(), n)
        info["documents"] = fill_documents(app, n, rng, inno_uids, shared)
        info["fill_s"] = time.perf_counter() - t0
        info["counts"] = {"organisations": n_org, "innovations": n, "experiments": n_exp, "lessons": n_les,
                          "reviews": n_rev}

        if analyze:
            t0 = time.perf_counter()
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            info["analyze_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        info["indexed"] = search_service.rebuild()
        db.session.commit()
        info["index_s"] = time.perf_counter() - t0

        db.session.remove()
        checkpoint(db.engine)
    return info


DOCUMENTS_PER = 500  # one attachment per 500 innovations (2 at 1 000, 200 at 100 000)
DOCUMENT_BYTES = 40_000


def fill_documents(app, n: int, rng: random.Random, inno_uids: list[str], shared) -> dict:
    """Attach files to a few innovations, stored as PIU stores them (uploads/<2 hex>/<sha256>).

    Half are text-like (a PDF of words: compresses), half random bytes (a photo: does not)."""
    import hashlib

    from piu_app.extensions import db
    from piu_app.models import Document

    uploads = Path(app.config["PIU_UPLOADS_DIR"])
    count, total = max(2, n // DOCUMENTS_PER), 0
    rows = []
    for i in range(count):
        if i % 2:
            data = rng.randbytes(DOCUMENT_BYTES)
            name, media = f"photo-{i}.jpg", "image/jpeg"
            data = b"\xff\xd8\xff" + data[3:]
        else:
            text = " ".join(rng.choice(SENTENCES) for _ in range(DOCUMENT_BYTES // 80))
            data = b"%PDF-1.4\n" + text.encode()[:DOCUMENT_BYTES]
            name, media = f"rapport-{i}.pdf", "application/pdf"
        digest = hashlib.sha256(data).hexdigest()
        target = uploads / digest[:2] / digest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        total += len(data)
        rows.append({**shared(), "title": name, "doc_type": "other", "filename": name, "media_type": media,
                     "size": len(data), "sha256": digest, "linked_type": "innovations",
                     "linked_uid": inno_uids[rng.randrange(len(inno_uids))], "sort_key": name})
    db.session.execute(db.insert(Document.__table__), rows)
    db.session.commit()
    return {"count": count, "bytes": total}


def describe(app) -> dict:
    """What fill() returns, read back from a register filled by an earlier run (--reuse)."""
    from piu_app.extensions import db
    from piu_app.models import Experiment, Innovation, Lesson, Organisation, Review, Theme, VocabularyTerm
    from piu_app.registry import RECORD_TYPES

    with app.app_context():
        def count(model) -> int:
            return db.session.scalar(db.select(db.func.count()).select_from(model)) or 0

        info = {"fill_s": 0.0, "index_s": 0.0, "indexed": 0,
                "theme_codes": list(db.session.scalars(db.select(Theme.code))),
                "theme_param": next(f.name for f in RECORD_TYPES["innovations"].filter_fields if f.kind == "themes"),
                "stages": list(db.session.scalars(db.select(VocabularyTerm.code).filter_by(vocabulary="deployment_stage"))),
                "counts": {"organisations": count(Organisation), "innovations": count(Innovation),
                           "experiments": count(Experiment), "lessons": count(Lesson), "reviews": count(Review)}}
        db.session.remove()
    return info


def checkpoint(engine) -> None:
    """Fold the WAL into the database file (outside any transaction, hence the raw connection)."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()


# --------------------------------------------------------------------------- measurements

def login(app):
    client = app.test_client()
    response = client.post("/login", data={"username": ADMIN_USER, "password": ADMIN_PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"login failed: HTTP {response.status_code}")
    return client


class Timer:
    """Wall-clock and CPU time of a block, in ms. CPU time (this process) is what the request costs
    when the machine is not shared; wall time includes waiting for a core."""

    def __enter__(self) -> Timer:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = (time.perf_counter() - self.wall0) * 1000
        self.cpu = (time.process_time() - self.cpu0) * 1000


def timed_get(client, url: str) -> tuple[Timer, bytes]:
    with Timer() as t:
        response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: HTTP {response.status_code}")
    return t, response.data


def measure_search_page(client, n_queries: int) -> tuple[dict, dict[str, list[float]]]:
    from urllib.parse import quote

    for _, q in SEARCH_QUERIES:  # warm-up: template compilation, page cache
        timed_get(client, f"/search?q={quote(q)}")
    all_ms: list[float] = []
    all_cpu: list[float] = []
    per: dict[str, list[float]] = {}
    for i in range(n_queries):
        label, q = SEARCH_QUERIES[i % len(SEARCH_QUERIES)]
        t, _ = timed_get(client, f"/search?q={quote(q)}")
        all_ms.append(t.wall)
        all_cpu.append(t.cpu)
        per.setdefault(q, []).append((t.wall, t.cpu))
    return summary(all_ms, all_cpu), per


def measure_search_service(app, n_queries: int) -> tuple[dict, dict[str, list[float]], dict[str, int]]:
    from piu_app.services import search as search_service

    totals: dict[str, int] = {}
    for _, q in SEARCH_QUERIES:
        with app.app_context():
            _, totals[q] = search_service.search(q)
    all_ms: list[float] = []
    all_cpu: list[float] = []
    per: dict[str, list[float]] = {}
    for i in range(n_queries):
        _, q = SEARCH_QUERIES[i % len(SEARCH_QUERIES)]
        with app.app_context():  # a fresh session each time, as in a request
            with Timer() as t:
                search_service.search(q)
        all_ms.append(t.wall)
        all_cpu.append(t.cpu)
        per.setdefault(q, []).append((t.wall, t.cpu))
    return summary(all_ms, all_cpu), per, totals


def list_urls(info: dict, rng: random.Random, n_queries: int) -> list[tuple[str, str]]:
    urls = []
    kinds = ["filtered", "unfiltered", "visibility", "sort=updated"]
    for i in range(n_queries):
        kind = kinds[i % len(kinds)]
        page = rng.randint(1, 5)
        if kind == "filtered":
            url = (f"/innovations/?{info['theme_param']}={rng.choice(info['theme_codes'])}"
                   f"&deployment_stage={rng.choice(info['stages'])}&page={page}")
        elif kind == "unfiltered":
            url = f"/innovations/?page={page}"
        elif kind == "visibility":
            url = f"/innovations/?visibility={rng.choice(('private', 'network', 'public'))}&page={page}"
        else:
            url = f"/innovations/?sort=updated&page={page}"
        urls.append((kind, url))
    return urls


def measure_list_page(client, info: dict, rng: random.Random, n_queries: int) -> tuple[dict, dict[str, list[float]]]:
    urls = list_urls(info, rng, n_queries)
    for _, url in urls[:4]:
        timed_get(client, url)
    all_ms: list[float] = []
    all_cpu: list[float] = []
    per: dict[str, list[float]] = {}
    for kind, url in urls:
        t, _ = timed_get(client, url)
        all_ms.append(t.wall)
        all_cpu.append(t.cpu)
        per.setdefault(kind, []).append((t.wall, t.cpu))
    return summary(all_ms, all_cpu), per


def measure_saves(app, n: int, rng: random.Random, count: int = 20) -> dict:
    """(d) Save one innovation through services.records.update (validation, history, search index)."""
    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.models import Innovation
    from piu_app.registry import INNOVATIONS
    from piu_app.services import records as record_service

    walls: list[float] = []
    cpus: list[float] = []
    for i in range(count):
        with app.app_context(), writing():
            uid = db.session.scalars(db.select(Innovation.uid).filter_by(id=rng.randint(1, n))).one()
            with Timer() as t:
                record = record_service.get(INNOVATIONS, uid)
                record_service.update(INNOVATIONS, record, {"tagline": f"Réduire la facture d'énergie ({i})"},
                                      username=ADMIN_USER)
                db.session.commit()
        walls.append(t.wall)
        cpus.append(t.cpu)
    return summary(walls, cpus)


# --------------------------------------------------------------------------- every kind of page

PAGE_BUDGET_S = 60.0  # a request still running after this is interrupted and reported as "> budget"


class QueryCounter:
    """Count the SQL statements the app sends (SQLAlchemy event), and interrupt a runaway request.

    The interrupt goes through sqlite3.Connection.interrupt() on every connection the engine opened,
    from a timer thread: SQLite stops the statement, the request answers 500, and the bench goes on."""

    def __init__(self, app) -> None:
        from sqlalchemy import event

        from piu_app.extensions import db

        self.count = 0
        self.statements: list[tuple[str, object]] = []
        self.capture = False
        self.connections: list = []  # sqlite3 connections take no weak references; a bench opens few
        with app.app_context():
            engine = db.engine
        self.engine = engine

        @event.listens_for(engine, "before_cursor_execute")
        def _count(_conn, _cursor, statement, parameters, _context, _executemany):
            self.count += 1
            if self.capture:
                self.statements.append((statement, parameters))

        @event.listens_for(engine, "connect")
        def _remember(dbapi_conn, _record):
            self.connections.append(dbapi_conn)

        # connections opened before the listener (the fill's) are closed: start from a clean pool
        engine.dispose()

    def interrupt(self) -> None:
        for conn in list(self.connections):
            try:
                conn.interrupt()
            except Exception:  # noqa: BLE001 - a closed connection
                pass


def page_urls(app, info: dict, rng: random.Random) -> list[tuple[str, list[str]]]:
    """(kind, URLs) for every kind of page, the records picked at random among the live ones."""
    from piu_app.extensions import db
    from piu_app.models import Innovation
    from piu_app.registry import RECORD_TYPES

    def some_uids(model, k: int = 5) -> list[str]:
        top = db.session.scalar(db.select(db.func.max(model.id))) or 0
        if not top:
            return []
        ids = [rng.randint(1, top) for _ in range(k)]
        return list(db.session.scalars(db.select(model.uid).where(model.id.in_(ids))))

    with app.app_context():
        rules = {r.endpoint for r in app.url_map.iter_rules()}
        pages: list[tuple[str, list[str]]] = [("dashboard", ["/"])]
        for key in RECORD_TYPES:
            prefix = "/" + key.replace("_", "-")
            pages.append((f"list {key}", [f"{prefix}/", f"{prefix}/?page=3", f"{prefix}/?sort=updated&page=2"]))
        for key in ("innovations", "experiments", "organisations", "lessons", "reviews"):
            uids = some_uids(RECORD_TYPES[key].model)
            prefix = "/" + key.replace("_", "-")
            pages.append((f"detail {key}", [f"{prefix}/{u}" for u in uids]))
        inno = some_uids(Innovation)
        big = db.session.scalar(db.select(Innovation.uid).where(Innovation.id == 10))  # has an update too
        pages += [
            ("history", [f"/innovations/{u}/history" for u in [*inno, big]]),
            ("edit form", [f"/innovations/{u}/edit" for u in inno[:2]] + ["/experiments/new"]),
            ("sheet", [f"/innovations/{u}/sheet" for u in inno]),
            ("search", ["/search?q=energie", "/search?q=photocatalyse", "/search?q=mobil&page=2"]),
            ("peers", ["/peers/", *[f"/peers/innovations/{u}" for u in inno[:3]],
                       f"/peers/themes/{info['theme_codes'][0]}"]),
            ("exchange", ["/exchange/", "/exchange/conflicts", "/exchange/keys"]),
            ("spreadsheets", ["/spreadsheets/"]),
            ("backups", ["/backups"]),
            ("admin", ["/admin/users", "/admin/vocabularies", "/admin/instance", "/account"]),
        ]
        # the Imports page is being built in parallel: measured when the route exists
        for candidate in ("imports.index", "imports.imports"):
            if candidate in rules:
                pages.append(("imports", [str(app.url_map.bind("localhost").build(candidate))]))
                break
    return [(kind, urls) for kind, urls in pages if urls]


def measure_pages(app, client, info: dict, rng: random.Random, repeat: int, only: list[str] | None = None) -> dict:
    """p50/p95 (wall and CPU), SQL statements per request, for every kind of page (or those named in `only`)."""
    counter = QueryCounter(app)
    results: dict[str, dict] = {}
    for kind, urls in page_urls(app, info, rng):
        if only and not any(w in kind for w in only):
            continue
        walls, cpus, queries, failed = [], [], [], ""
        for rnd in range(repeat + 1):  # the first round warms up (templates, page cache)
            for url in urls:
                timer = __import__("threading").Timer(PAGE_BUDGET_S, counter.interrupt)
                counter.count = 0
                timer.start()
                try:
                    with Timer() as t:
                        response = client.get(url)
                finally:
                    timer.cancel()
                if response.status_code != 200:
                    failed = (f"> {PAGE_BUDGET_S:.0f} s (interrupted)" if t.wall >= PAGE_BUDGET_S * 1000
                              else f"HTTP {response.status_code} on {url}")
                    break
                if rnd:
                    walls.append(t.wall)
                    cpus.append(t.cpu)
                queries.append(counter.count)
            if failed:
                break
        entry = summary(walls, cpus) if walls else {"n": 0}
        entry.update(queries_max=max(queries) if queries else 0, queries_min=min(queries) if queries else 0,
                     failed=failed, urls=urls[:2])
        results[kind] = entry
        shown = fmt_summary(entry) if walls else "-"
        print(f"      {kind:28} {shown}  SQL {entry['queries_min']}-{entry['queries_max']}"
              f"{'  ' + failed if failed else ''}", flush=True)
    return results


def explain_pages(app, client, info: dict, rng: random.Random, slow_ms: float = 5.0) -> None:
    """For each kind of page, the statements of one request that take over `slow_ms` or scan a table."""
    counter = QueryCounter(app)
    with app.app_context():
        from piu_app.extensions import db
        big = {t for t in db.inspect(db.engine).get_table_names()
               if db.session.execute(db.text(f'SELECT count(*) FROM "{t}"')).scalar() > 1000}
    for kind, urls in page_urls(app, info, rng):
        counter.statements, counter.capture = [], True
        timer = __import__("threading").Timer(PAGE_BUDGET_S, counter.interrupt)
        timer.start()
        try:
            client.get(urls[0])
        finally:
            timer.cancel()
            counter.capture = False
        with app.app_context():
            from piu_app.extensions import db
            raw = db.engine.raw_connection()
            try:
                con = raw.driver_connection
                shown = False
                for statement, params in counter.statements:
                    if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                        continue
                    plan = [row[-1] for row in con.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()]
                    timer = __import__("threading").Timer(PAGE_BUDGET_S / 4, con.interrupt)
                    timer.start()
                    t0 = time.perf_counter()
                    try:
                        con.execute(statement, params).fetchall()
                        ms = (time.perf_counter() - t0) * 1000
                    except sqlite3.OperationalError:
                        ms = float("inf")
                    finally:
                        timer.cancel()
                    # a scan of a big table, or a search on `deleted` alone (every live row)
                    scans = [p for p in plan if (p.startswith("SCAN") and p.split()[1] in big)
                             or p.endswith("(deleted=?)")]
                    if ms >= slow_ms or scans:
                        if not shown:
                            print(f"\n  {kind}: {urls[0]}  ({len(counter.statements)} statements)")
                            shown = True
                        one_line = " ".join(statement.split())
                        print(f"    {ms:8.2f} ms  {one_line[:160]}{'…' if len(one_line) > 160 else ''}")
                        for p in plan:
                            print(f"               plan: {p}")
            finally:
                raw.close()


def measure_backup(app) -> dict:
    """Take one daily backup the way the launcher does, timed, and report its size and the database's."""
    from piu_app.database import wait_for_checkpoints
    from piu_app.extensions import db
    from piu_app.paths import database_file
    from piu_app.services import backups

    wait_for_checkpoints()
    folder = Path(app.config["PIU_BACKUPS_DIR"])
    with app.app_context():
        with Timer() as t:
            target = backups.take(db.engine, folder, reason="daily", keep=app.config["BACKUP_KEEP"])
        db.session.remove()
    uploads = sum(p.stat().st_size for p in Path(app.config["PIU_UPLOADS_DIR"]).rglob("*") if p.is_file())
    return {"seconds": t.wall / 1000, "cpu_seconds": t.cpu / 1000, "bytes": target.stat().st_size,
            "name": target.name, "db_bytes": database_file(Path(app.config["PIU_DATA_DIR"])).stat().st_size,
            "uploads_bytes": uploads}


def spot_check(app, client) -> str:
    """The innovation named SPOT_NAME must be found by SPOT_QUERY (accent-less, words not adjacent)."""
    from urllib.parse import quote

    from piu_app.database import search_index
    from piu_app.extensions import db
    from piu_app.models import Innovation

    with app.app_context():
        uid = db.session.scalars(db.select(Innovation.uid).filter_by(name=SPOT_NAME)).one()
        hits, total = search_index(db.session.connection(), SPOT_QUERY, limit=1_000_000)
        ranks = [i for i, h in enumerate(hits, 1) if h.uid == uid]
    _, body = timed_get(client, f"/search?q={quote(SPOT_QUERY + ' intelligent public')}")
    on_page = SPOT_NAME.encode() in body
    if not ranks:
        raise SystemExit(f"SPOT CHECK FAILED: {SPOT_NAME!r} not found by q={SPOT_QUERY!r} ({total} hits)")
    if not on_page:
        raise SystemExit(f"SPOT CHECK FAILED: {SPOT_NAME!r} not on the /search page for its own words")
    return f"OK: found by q={SPOT_QUERY!r} at rank {ranks[0]} of {total} hits; on the /search page for its own words"


# --------------------------------------------------------------------------- diagnostics (--explain)

def explain(app, info: dict) -> None:
    """Print the plan and SQL-level time of every statement that list_records() and search() run.

    The statements are captured from the engine while the service functions run, so this follows
    whatever SQL the application currently emits."""
    from sqlalchemy import event

    from piu_app.extensions import db
    from piu_app.registry import INNOVATIONS
    from piu_app.services import records as record_service
    from piu_app.services import search as search_service

    def capture(fn) -> list[tuple[str, object]]:
        seen: list[tuple[str, object]] = []

        def listener(_conn, _cursor, statement, parameters, _context, _executemany):
            if statement.lstrip().upper().startswith("SELECT"):
                seen.append((statement, parameters))

        with app.app_context():
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                fn()
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
        return seen

    def replay(statements: list[tuple[str, object]], repeat: int = 5) -> None:
        with app.app_context():
            raw = db.engine.raw_connection()
            try:
                con = raw.driver_connection
                for statement, params in statements:
                    best = float("inf")
                    for _ in range(repeat):
                        t0 = time.perf_counter()
                        con.execute(statement, params).fetchall()
                        best = min(best, (time.perf_counter() - t0) * 1000)
                    one_line = " ".join(statement.split())
                    print(f"    {best:7.2f} ms  {one_line[:150]}{'…' if len(one_line) > 150 else ''}")
                    print(f"               params {str(params)[:100]}")
                    for row in con.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall():
                        print(f"               plan: {row[-1]}")
            finally:
                raw.close()

    cases = [
        ("filtered theme+stage p3", {info["theme_param"]: info["theme_codes"][1], "deployment_stage": info["stages"][2]},
         "name", 3),
        ("unfiltered p5", {}, "name", 5),
        ("visibility=public p2", {"visibility": "public"}, "name", 2),
        ("sort=updated p4", {}, "updated", 4),
    ]
    for label, filters, sort, page in cases:
        print(f"\n  list_records {label}")
        replay(capture(lambda f=filters, s=sort, p=page: record_service.list_records(
            INNOVATIONS, f, page=p, page_size=25, sort=s)))
    for _, query in SEARCH_QUERIES:
        print(f"\n  search {query!r}")
        replay(capture(lambda q=query: search_service.search(q)))


def add_peer_experiments(app, share: int = 10, cities: int = 5) -> int:
    """Give the register peers, as a city of the network has: one experiment in `share` is copied as a
    peer city's experiment of the same innovation (origin peer-0…peer-4, each with the bundle import
    that brought it). Without them the innovation page and the peers pages measured nothing: every
    "who tried it elsewhere" came back empty. Done once per register (a kept one too)."""
    from sqlalchemy import text

    from piu_app.database import writing
    from piu_app.extensions import db
    from piu_app.models import Experiment, ImportBatch

    with app.app_context(), writing():
        if db.session.scalar(db.select(db.func.count()).select_from(Experiment)
                             .where(Experiment.origin_instance.like("peer-%"))):
            return 0
        columns = [c.name for c in Experiment.__table__.columns if c.name != "id"]
        made = {"uid": "lower(printf('%s-%s-7%s-8%s-%s', hex(randomblob(4)), hex(randomblob(2)), "
                       "substr(hex(randomblob(2)), 2), substr(hex(randomblob(2)), 2), hex(randomblob(6))))",
                "origin_instance": f"'peer-' || (id % {cities})", "visibility": "'network'", "draft": "0",
                "deleted": "0", "content_digest": "''"}
        before = db.session.scalar(db.select(db.func.count()).select_from(Experiment))
        db.session.execute(text(
            f"INSERT INTO experiments ({', '.join(columns)}) SELECT "
            f"{', '.join(made.get(c, c) for c in columns)} FROM experiments WHERE id % {share} = 0 "
            "AND innovation_id IS NOT NULL"))
        for k in range(cities):
            db.session.add(ImportBatch(kind="bundle", origin_instance=f"peer-{k}", origin_name=f"Ville paire {k}",
                                       filename=f"peer-{k}.registre.zip", username="bench"))
        db.session.commit()
        return db.session.scalar(db.select(db.func.count()).select_from(Experiment)) - before


# --------------------------------------------------------------------------- main

def bench_size(n: int, args, base_dir: Path) -> dict:
    from piu_app import create_app, upgrade_database
    from piu_app.paths import database_file

    data_dir = base_dir / f"register-{n}"
    reuse = args.reuse and database_file(data_dir).is_file()
    if data_dir.exists() and not reuse:
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261121 + n)
    print(f"\n=== {n} innovations — data dir {data_dir}{' (reused)' if reuse else ''}", flush=True)
    app = create_app({"SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False}, instance_path=data_dir)
    if reuse:  # a register filled by an earlier run (--keep): brought to this code's schema, timed
        with Timer() as t:
            upgrade_database(app, backup=False)
        print(f"  schema upgrade of the kept register: {t.wall / 1000:.1f} s", flush=True)
        info = describe(app)
    else:
        upgrade_database(app)
        info = fill(app, n, rng, analyze=args.analyze)
    peers_added = add_peer_experiments(app)
    if peers_added:
        print(f"  peers: {peers_added} experiments of 5 peer cities added (one experiment in ten)", flush=True)
    db_file = database_file(data_dir)
    info["db_mb"] = db_file.stat().st_size / 1024 / 1024
    print(f"  fill {info['fill_s']:.1f} s ({info['counts']}); index {info['index_s']:.1f} s "
          f"({info['indexed']} records); db {info['db_mb']:.1f} MB", flush=True)
    if "analyze_s" in info:
        print(f"  ANALYZE {info['analyze_s']:.1f} s")

    print(f"  load average before measuring: {load_average()}")
    client = login(app)
    print("  spot check:", spot_check(app, client), flush=True)

    if args.only_pages:  # a quick look at a few kinds of page, nothing else
        wanted = [w.strip() for w in args.only_pages.split(",") if w.strip()]
        print(f"  (f) pages {', '.join(wanted)} ({args.page_repeat} rounds of each URL after a warm-up round):")
        info["pages"] = measure_pages(app, client, info, rng, args.page_repeat, only=wanted)
        with app.app_context():
            __import__("piu_app.extensions").extensions.db.engine.dispose()
        return info
    info["search_page"], per = measure_search_page(client, args.queries)
    print(f"  (a) search page    {fmt_summary(info['search_page'])}")
    info["search_svc"], per_svc, totals = measure_search_service(app, args.queries)
    print(f"  (b) search service {fmt_summary(info['search_svc'])}")
    for _, q in SEARCH_QUERIES:
        if q not in per or q not in per_svc:
            continue
        pg, sv = split_summary(per[q]), split_summary(per_svc[q])
        print(f"        {q!r:24} {totals[q]:>7} hits   page p50 {pg['p50']:7.1f} p95 {pg['p95']:7.1f} "
              f"(cpu p95 {pg['cpu_p95']:6.1f})   service p50 {sv['p50']:7.1f} p95 {sv['p95']:7.1f} "
              f"(cpu p95 {sv['cpu_p95']:6.1f}) ms")
    info["list_page"], per_list = measure_list_page(client, info, rng, args.queries)
    print(f"  (c) list page      {fmt_summary(info['list_page'])}")
    for kind, values in per_list.items():
        s = split_summary(values)
        print(f"        {kind:14} p50 {s['p50']:7.1f} p95 {s['p95']:7.1f} max {s['max']:7.1f}   "
              f"cpu p50 {s['cpu_p50']:6.1f} p95 {s['cpu_p95']:6.1f} ms")
    if not args.skip_pages:
        info["backup"] = measure_backup(app)
        b = info["backup"]
        print(f"  (e) daily backup   {b['seconds']:.2f} s (cpu {b['cpu_seconds']:.2f} s), {b['name']}: "
              f"{b['bytes'] / 1e6:.1f} MB for a database of {b['db_bytes'] / 1e6:.1f} MB "
              f"+ {b['uploads_bytes'] / 1e6:.1f} MB of attachments", flush=True)
        print(f"  (f) every kind of page ({args.page_repeat} rounds of each URL after a warm-up round):")
        info["pages"] = measure_pages(app, client, info, rng, args.page_repeat)
        if args.explain:
            explain_pages(app, client, info, rng)
    info["save"] = measure_saves(app, n, rng)
    print(f"  (d) save 1 record  {fmt_summary(info['save'])}")
    print(f"  load average after: {load_average()}", flush=True)
    if args.explain:
        explain(app, info)
    from piu_app.extensions import db
    with app.app_context():
        db.engine.dispose()
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated numbers of innovations")
    parser.add_argument("--queries", type=int, default=200, help="requests per measurement")
    parser.add_argument("--keep", default=None, help="keep the data directories in this directory")
    parser.add_argument("--explain", action="store_true", help="print query plans and SQL-level timings")
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE after the fill (not what the app does)")
    parser.add_argument("--page-repeat", type=int, default=10, help="rounds over each kind of page's URLs")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: measure the registers an earlier run kept there (upgraded, not refilled)")
    parser.add_argument("--skip-pages", action="store_true", help="search and lists only (the former bench)")
    parser.add_argument("--only-pages", default="",
                        help="with --reuse: measure only the kinds of page whose name holds one of these "
                             "comma-separated words (e.g. 'detail innovations,edit form')")
    parser.add_argument("--app-root", default=str(ROOT), help="directory holding the piu_app package to bench")
    # internal: one size in a child process (piu_app's blueprints are module-level objects, so
    # create_app() can run only once per process)
    parser.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.app_root).resolve()))
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    if args.child_size:
        import logging
        logging.getLogger("alembic").setLevel(logging.WARNING)
        info = bench_size(args.child_size, args, Path(args.child_dir))
        Path(args.child_result).write_text(json.dumps(info), encoding="utf-8")
        return

    import piu_app
    print(f"piu_app from {Path(piu_app.__file__).parent}")
    m = machine_info()
    print(f"machine: nproc {m['nproc']}, {m['cpu']}, RAM {m['ram']}, Python {m['python']}, SQLite {m['sqlite']}")
    print(f"load average at start: {load_average()}", flush=True)

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.keep:
        base_dir = Path(args.keep).resolve()
        base_dir.mkdir(parents=True, exist_ok=True)
        tmp = None
    else:
        tmp = tempfile.mkdtemp(prefix="piu-register-bench-")
        base_dir = Path(tmp)
    results = {}
    try:
        for n in sizes:
            result_file = base_dir / f"result-{n}.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--queries", str(args.queries),
                       "--app-root", args.app_root, "--child-size", str(n), "--child-dir", str(base_dir),
                       "--child-result", str(result_file)]
            command += ["--page-repeat", str(args.page_repeat)] + ["--skip-pages"] * args.skip_pages
            command += ["--reuse"] * args.reuse + (["--only-pages", args.only_pages] if args.only_pages else [])
            command += ["--explain"] * args.explain + ["--analyze"] * args.analyze + (["--keep", args.keep] if args.keep else [])
            done = subprocess.run(command, check=False)
            if done.returncode != 0:
                raise SystemExit(f"size {n} failed (exit {done.returncode})")
            results[n] = json.loads(result_file.read_text(encoding="utf-8"))
            result_file.unlink()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    print("\n| innovations | fill s | index s | db MB | search p50 | search p95 | search p95 cpu "
          "| search svc p95 | list p50 | list p95 | list p95 cpu | save p50 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in results.items():
        if "search_page" not in r:  # --only-pages
            continue
        sp, sv, lp = r["search_page"], r["search_svc"], r["list_page"]
        print(f"| {n} | {r['fill_s']:.1f} | {r['index_s']:.1f} | {r['db_mb']:.1f} | "
              f"{sp['p50']:.1f} | {sp['p95']:.1f} | {sp['cpu_p95']:.1f} | {sv['p95']:.1f} | "
              f"{lp['p50']:.1f} | {lp['p95']:.1f} | {lp['cpu_p95']:.1f} | {r['save']['p50']:.1f} |")
    print("(ms; search/list = GET through the Flask test client, logged in, wall clock; cpu = CPU time of "
          "this process for the same requests; search svc = services.search.search() alone; "
          "save = services.records.update() of one innovation + commit)")
    with_pages = {n: r for n, r in results.items() if "pages" in r}
    if with_pages:
        sizes_shown = list(with_pages)
        print("\n| page | " + " | ".join(f"{n:,}: p50 / p95 / cpu p95 ms (SQL)" for n in sizes_shown) + " |")
        print("|---|" + "---:|" * len(sizes_shown))
        kinds = list(dict.fromkeys(k for r in with_pages.values() for k in r["pages"]))
        missed = []
        for kind in kinds:
            cells = []
            for n in sizes_shown:
                e = with_pages[n]["pages"].get(kind)
                if e is None:
                    cells.append("–")
                elif e.get("failed"):
                    cells.append(f"**{e['failed']}**")
                else:
                    sql = str(e["queries_max"]) if e["queries_min"] == e["queries_max"] else \
                        f"{e['queries_min']}–{e['queries_max']}"
                    cells.append(f"{e['p50']:.0f} / {e['p95']:.0f} / {e['cpu_p95']:.0f} ({sql})")
            last = with_pages[sizes_shown[-1]]["pages"].get(kind)
            if last is not None and (last.get("failed") or last["p95"] >= TARGET_MS):
                missed.append(kind + ("" if last.get("failed") or last["cpu_p95"] >= TARGET_MS else " (wall only)"))
            print(f"| {kind} | " + " | ".join(cells) + " |")
        print(f"pages at {sizes_shown[-1]:,}: p95 < {TARGET_MS:.0f} ms "
              + ("MET for every kind" if not missed else f"MISSED by: {', '.join(missed)}"))
        for n, r in with_pages.items():
            b = r.get("backup")
            if b:
                print(f"daily backup at {n:,}: {b['seconds']:.2f} s, {b['bytes'] / 1e6:.1f} MB "
                      f"(database {b['db_bytes'] / 1e6:.1f} MB, attachments {b['uploads_bytes'] / 1e6:.1f} MB)")
    biggest = max(results) if results else None
    if biggest is not None and "search_page" in results[biggest]:
        r = results[biggest]
        ok = r["search_page"]["p95"] < TARGET_MS and r["list_page"]["p95"] < TARGET_MS
        ok_cpu = r["search_page"]["cpu_p95"] < TARGET_MS and r["list_page"]["cpu_p95"] < TARGET_MS
        print(f"target at {biggest:,} innovations (search and list p95 < {TARGET_MS:.0f} ms): "
              f"wall {'MET' if ok else 'MISSED'}, cpu {'MET' if ok_cpu else 'MISSED'}")


if __name__ == "__main__":
    main()
