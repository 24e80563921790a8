"""Concurrent writers queue (BEGIN IMMEDIATE + busy timeout) instead of failing with "database is locked"."""

from __future__ import annotations

import threading

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.models import Innovation
from piu_app.registry import INNOVATIONS
from piu_app.services import records


def test_parallel_read_then_write_transactions_all_succeed(app):
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with app.app_context(), writing():
                for i in range(10):
                    # read first, then write: the pattern that fails under deferred transactions
                    db.session.scalar(db.select(db.func.count()).select_from(Innovation))
                    records.create(INNOVATIONS, {"name": f"Innovation {n}-{i}"}, username=f"w{n}")
                    db.session.commit()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with app.app_context():
        assert records.list_records(INNOVATIONS).total == 60
        if db.engine.dialect.name != "sqlite":
            return
        pragmas = {name: db.session.execute(db.text(f"PRAGMA {name}")).scalar() for name in
                   ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")}
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 1, "busy_timeout": 15000}
