#!/usr/bin/env python3
"""Benchmark the barrier catalogue at scale: « Freins les plus cités », a barrier's page, `similar`.

A throw-away register (the real migrations, SQLite) is filled with bulk inserts: BARRIERS barriers
across the five actor groups, N lessons (each citing one to three barriers, a quarter from peer
cities), and N/10 workshops of one board each holding N sticky notes in all, a third of them
promoted to a barrier (some hidden or pending), plus a few themes. Then, logged in through the
Flask test client, it times:

  ranking page   GET /barriers/most-cited        (and with an actor group filter)
  barrier page   GET /barriers/<uid>             (the most cited barrier: counts and workshops)
  similar        services.barriers.similar()     (a note's text against the whole catalogue)

and counts the SQL statements of the ranking page (they must not grow with the register).

Usage (from the repository root):

    .venv/bin/python bench/barriers.py                    # 1 000, 10 000, 100 000 lessons
    .venv/bin/python bench/barriers.py --sizes 1000 --runs 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ADMIN_USER, ADMIN_PASSWORD = "bench-admin", "bench-password-123"
BARRIERS = 500
BATCH = 5000
WORDS = ("délais", "paiement", "budget", "maintenance", "foncier", "réseau", "procédure", "achat", "marché",
         "trésorerie", "élus", "risque", "données", "habitants", "usagers", "ingénierie", "incubateur",
         "calendrier", "déploiement", "expérimentation", "terrain", "autorisation", "subvention", "service")
PEERS = ("dune-blanche", "rive-claire", "mont-vert")


def fill(app, n: int, rng: random.Random) -> dict:
    from sqlalchemy import insert

    from piu_app.database import fold, writing
    from piu_app.extensions import db
    from piu_app.models import (
        Barrier,
        Board,
        ImportBatch,
        Lesson,
        NoteTheme,
        StickyNote,
        VocabularyTerm,
        Workshop,
        lesson_barriers,
        new_uid,
    )
    from piu_app.services import instance as instance_service
    from piu_app.services import users as user_service

    with app.app_context(), writing():
        instance_service.configure(city_name="Ville-Banc", country_code="SN", instance_code="bench")
        user_service.create(username=ADMIN_USER, password=ADMIN_PASSWORD, role="admin")
        for code in PEERS:
            db.session.add(ImportBatch(kind="bundle", origin_instance=code, origin_name=code.replace("-", " ").title()))
        db.session.commit()
        groups = list(db.session.scalars(db.select(VocabularyTerm.code).filter_by(vocabulary="barrier_actor_group")))
        natures = list(db.session.scalars(db.select(VocabularyTerm.code).filter_by(vocabulary="barrier_nature")))
        now = dt.datetime(2026, 11, 21, 12, 0, 0)

        def shared(origin: str = "bench") -> dict:
            return {"uid": new_uid(), "origin_instance": origin, "created_at": now, "updated_at": now, "version": 1,
                    "deleted": False, "visibility": "network", "lang": "fr", "licence": "", "source": "",
                    "draft": False}

        def bulk(table, rows) -> None:
            batch: list[dict] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= BATCH:
                    db.session.execute(insert(table), batch)
                    batch = []
            if batch:
                db.session.execute(insert(table), batch)
            db.session.commit()

        def barriers():
            for i in range(1, BARRIERS + 1):
                label = f"{' '.join(rng.sample(WORDS, 4)).capitalize()} {i}"
                yield {**shared(), "id": i, "label": label, "sort_key": fold(label),
                       "description": " ".join(rng.sample(WORDS, 8)), "actor_group": rng.choice(groups),
                       "nature": rng.choice(natures), "levers": ""}

        bulk(Barrier.__table__, barriers())
        uids = dict(db.session.execute(db.select(Barrier.id, Barrier.uid)).all())

        def lessons():
            for i in range(1, n + 1):
                origin = rng.choice(PEERS) if i % 4 == 0 else "bench"
                yield {**shared(origin), "id": i, "title": f"Leçon {i}", "sort_key": f"lecon {i}",
                       "experiment_id": None, "author_id": None, "date": None, "context": "", "what_worked": "",
                       "what_did_not": "", "conditions_for_replication": "", "advice": "", "results_impacts": "",
                       "costs_actual": ""}

        bulk(Lesson.__table__, lessons())
        # a few barriers are cited far more than the others, as in life
        weights = [1 / (rank + 1) for rank in range(BARRIERS)]
        bulk(lesson_barriers, ({"lesson_id": i, "barrier_id": b}
                               for i in range(1, n + 1)
                               for b in set(rng.choices(range(1, BARRIERS + 1), weights, k=rng.randint(1, 3)))))
        n_workshops = max(1, n // 100)
        bulk(Workshop.__table__, ({**shared(rng.choice(("bench", *PEERS))), "id": i, "title": f"Atelier {i}",
                                   "sort_key": f"atelier {i}", "programme": "", "date": None, "place_id": None,
                                   "territory_id": None, "format": "in_person", "objective": "", "context": "",
                                   "synthesis": "", "recommendations": "", "commitments": "",
                                   "report_version": "draft", "published_at": None, "join_code": ""}
                                  for i in range(1, n_workshops + 1)))
        bulk(Board.__table__, ({**shared(), "id": i, "workshop_id": i, "session_id": None, "position": 0,
                                "title": "Freins", "sort_key": "freins", "prompt": "", "board_kind": "barriers",
                                "anonymous": True, "private_until_reveal": False, "moderated": False,
                                "votes_per_participant": 5, "votes_per_note": 1, "note_max_length": 280,
                                "timer_seconds": 0, "state": "closed", "revealed": True, "voting_open": False,
                                "frozen": False, "timer_ends_at": None, "revision": 0, "synthesis": ""}
                               for i in range(1, n_workshops + 1)))

        def notes():
            for i in range(1, n + 1):
                promoted = i % 3 == 0
                yield {"id": i, "uid": new_uid(), "board_id": rng.randint(1, n_workshops), "category_id": None,
                       "theme_id": None, "text": " ".join(rng.sample(WORDS, 6)), "client_key": f"k{i}",
                       "author_key": "", "author_participant_id": None, "author_actor_group": "",
                       "typed_by_facilitator": False, "pending": i % 50 == 0, "hidden": i % 40 == 0, "position": i,
                       "vote_count": rng.randint(0, 5), "created_at": now,
                       "promoted_kind": "barrier" if promoted else "",
                       "promoted_uid": uids[rng.choices(range(1, BARRIERS + 1), weights)[0]] if promoted else ""}

        bulk(StickyNote.__table__, notes())
        bulk(NoteTheme.__table__, ({"id": i, "uid": new_uid(), "board_id": i, "label": f"Thème {i}", "position": 0,
                                    "synthesis": "", "promoted_kind": "barrier",
                                    "promoted_uid": uids[rng.randint(1, BARRIERS)]}
                                   for i in range(1, n_workshops + 1)))
        db.session.remove()
    return {"barriers": BARRIERS, "lessons": n, "notes": n, "workshops": n_workshops}


def timed(fn, runs: int) -> dict:
    """Wall-clock p50 and max, and the p50 of this process's CPU time (SQLite runs in the process): on a
    shared machine the CPU time says what the code costs, the wall clock what a user waited."""
    walls, cpus = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    walls.sort()
    return {"p50": statistics.median(walls), "max": walls[-1], "cpu": statistics.median(cpus)}


def bench(n: int, runs: int, rng: random.Random) -> dict:
    from sqlalchemy import event

    from piu_app import create_app, upgrade_database
    from piu_app.extensions import db
    from piu_app.services import barriers as barrier_service

    folder = Path(tempfile.mkdtemp(prefix=f"piu-bench-barriers-{n}-"))
    app = create_app({"SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False}, instance_path=folder)
    upgrade_database(app, backup=False)
    t0 = time.perf_counter()
    info = fill(app, n, rng)
    info["fill_s"] = round(time.perf_counter() - t0, 1)
    info["folder"] = str(folder)
    client = app.test_client()
    assert client.post("/login", data={"username": ADMIN_USER, "password": ADMIN_PASSWORD}).status_code == 302

    def get(url: str) -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)

    with app.app_context():
        top = barrier_service.most_cited(limit=1)[0]
        top_uid, info["top_citations"] = top.barrier.uid, top.total
        engine = db.engine
    seen: list[str] = []
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    get("/barriers/most-cited")
    event.remove(engine, "before_cursor_execute", listener)
    info["ranking_statements"] = len(seen)
    info["ranking_page_ms"] = timed(lambda: get("/barriers/most-cited"), runs)
    info["ranking_filtered_ms"] = timed(lambda: get("/barriers/most-cited?actor_group=buyers"), runs)
    info["barrier_page_ms"] = timed(lambda: get(f"/barriers/{top_uid}"), runs)
    with app.test_request_context():
        info["similar_ms"] = timed(lambda: barrier_service.similar(
            "Les délais de paiement de la mairie mettent la trésorerie en danger", actor_group="buyers"), runs)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--child-size", type=int, help=argparse.SUPPRESS)  # one size per process
    args = parser.parse_args()
    if not args.child_size:
        for n in args.sizes.split(","):
            subprocess.run([sys.executable, __file__, "--child-size", n, "--runs", str(args.runs)], check=True)
        return
    import logging
    import warnings

    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    rng = random.Random(12)
    for n in (args.child_size,):
        info = bench(n, args.runs, rng)
        print(f"lessons={n:>7} notes={info['notes']:>7} workshops={info['workshops']:>5} "
              f"barriers={info['barriers']} fill {info['fill_s']} s; ranking: {info['ranking_statements']} statements, "
              f"p50 {info['ranking_page_ms']['p50']:.0f} ms (max {info['ranking_page_ms']['max']:.0f}, "
              f"CPU {info['ranking_page_ms']['cpu']:.0f}), filtered p50 {info['ranking_filtered_ms']['p50']:.0f} ms "
              f"(CPU {info['ranking_filtered_ms']['cpu']:.0f}); barrier page p50 "
              f"{info['barrier_page_ms']['p50']:.0f} ms (max {info['barrier_page_ms']['max']:.0f}, "
              f"CPU {info['barrier_page_ms']['cpu']:.0f}); similar p50 {info['similar_ms']['p50']:.1f} ms; "
              f"top barrier cited {info['top_citations']} times; register left in {info['folder']}", flush=True)


if __name__ == "__main__":
    main()
