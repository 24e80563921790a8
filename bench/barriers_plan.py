#!/usr/bin/env python3
"""Show how SQLite runs the barrier catalogue's queries: EXPLAIN QUERY PLAN and the time of each statement.

The statements are those the services really send (caught with a cursor event while the ranking and
the most cited barrier's page are read), replayed with their parameters under EXPLAIN QUERY PLAN.
Run it on a register left by `bench/barriers.py` (it prints where):

    .venv/bin/python bench/barriers_plan.py /tmp/piu-bench-barriers-100000-xxxx
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a data directory holding piu.sqlite3")
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    from sqlalchemy import event

    from piu_app import create_app
    from piu_app.extensions import db
    from piu_app.services import barriers as barrier_service

    app = create_app({"SECRET_KEY": "bench"}, instance_path=Path(args.folder))
    with app.test_request_context():
        engine = db.engine
        seen: list[tuple[str, str, object]] = []

        def caught(_conn, _cursor, statement, parameters, _context, _many) -> None:
            seen.append((page, statement, parameters))

        event.listen(engine, "before_cursor_execute", caught)
        page = "ranking"
        top = barrier_service.most_cited()[0]
        page = "barrier page"
        barrier_service.citations_of(top.barrier)
        event.remove(engine, "before_cursor_execute", caught)

        with engine.connect() as conn:
            for where, statement, parameters in seen:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                times = []
                for _ in range(3):  # the best of three, every row fetched (SQLite works as rows are read)
                    t0 = time.perf_counter()
                    rows = conn.exec_driver_sql(statement, parameters).all()
                    times.append((time.perf_counter() - t0) * 1000)
                print(f"--- {where}: {min(times):.1f} ms, {len(rows)} rows")
                print("   ", " ".join(statement.split())[:300])
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters):
                    print("      ", row[-1])


if __name__ == "__main__":
    main()
