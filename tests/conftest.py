"""Shared fixtures: an app on a temporary data directory, a client logged in with each role."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from piu_app import create_app, upgrade_database
from piu_app.database import writing
from piu_app.extensions import db
from piu_app.services import instance as instance_service
from piu_app.services import users as user_service

# Property tests check behaviour, not speed (speed is measured in bench/): no per-example deadline and no
# "too slow" health check, which only failed on a loaded machine (a test suite run on every core).
settings.register_profile("piu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("piu")

PASSWORD = "correct-horse-battery"


# Every test that uses `app` runs on SQLite, and also on PostgreSQL when PIU_TEST_DATABASE_URL names
# a server (CI starts one): the same code must serve a laptop and a network hub.
ENGINES = ["sqlite"] + (["postgresql"] if os.environ.get("PIU_TEST_DATABASE_URL") else [])


@functools.cache
def postgresql_url() -> str:
    """PIU_TEST_DATABASE_URL, or under pytest-xdist a database of this worker's own next to it
    (created on first use), since each test empties the schema of the database it uses."""
    url = make_url(os.environ["PIU_TEST_DATABASE_URL"])
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url.render_as_string(hide_password=False)
    own = f"{url.database}_{worker}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": own}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{own}"'))  # a worker name: gw0, gw1, …
    engine.dispose()
    return url.set(database=own).render_as_string(hide_password=False)


def _configured(app: Flask) -> None:
    """Migrate the register of `app` and set it up as every test finds it."""
    upgrade_database(app, backup=False)
    with app.app_context(), writing():
        instance_service.configure(city_name="Ville de Test", country_code="SN", instance_code="test-city")
        for role in ("admin", "editor", "reader"):
            user_service.create(username=role, password=PASSWORD, role=role)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


_APP_CONFIG = {"TESTING": True, "SECRET_KEY": "test", "LOGIN_LOCK_SECONDS": 30}


@functools.cache
def _sqlite_register() -> Path:
    """The configured SQLite register every test starts from, made once per test process: migrating
    and hashing three passwords for each test cost a second a test, most of the suite's time."""
    folder = Path(tempfile.mkdtemp(prefix="piu-test-register-"))
    atexit.register(shutil.rmtree, folder, True)
    _configured(create_app(dict(_APP_CONFIG), instance_path=folder))
    with contextlib.closing(sqlite3.connect(folder / "piu.sqlite3")) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the file that is copied
        conn.execute("PRAGMA journal_mode=DELETE")
    return folder / "piu.sqlite3"


@functools.cache
def _postgresql_admin() -> Any:
    return create_engine(make_url(postgresql_url()).set(database="postgres"), isolation_level="AUTOCOMMIT",
                         poolclass=NullPool)


@functools.cache
def _postgresql_register() -> str:
    """The name of a database holding the configured register (see `_sqlite_register`), made once per
    test process; each test gets a fresh copy of it (CREATE DATABASE … TEMPLATE)."""
    url = make_url(postgresql_url())
    template = f"{url.database}_register"
    with _postgresql_admin().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{template}"'))
    folder = Path(tempfile.mkdtemp(prefix="piu-test-register-"))
    atexit.register(shutil.rmtree, folder, True)
    app = create_app({**_APP_CONFIG, "DATABASE_URL": url.set(database=template).render_as_string(hide_password=False)},
                     instance_path=folder)
    _configured(app)
    return template


def _forget_room_memory() -> None:
    """Board versions and the room's shared notes are kept in memory by board id, what peers tried by
    database URL, and both repeat across the tests' databases (in the product one process serves one
    database)."""
    from piu_app.services import board_versions, peers
    from piu_app.services import room as room_service

    board_versions.forget()
    room_service.forget_shared()
    peers.forget()  # what peers tried, kept by database URL: a PostgreSQL test database's repeats


@pytest.fixture(params=ENGINES)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    config = dict(_APP_CONFIG)
    data = tmp_path / "data"
    data.mkdir()
    if request.param == "postgresql":
        url = make_url(postgresql_url())
        template = _postgresql_register()
        with _postgresql_admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{url.database}" TEMPLATE "{template}" STRATEGY FILE_COPY'))
        config["DATABASE_URL"] = url.render_as_string(hide_password=False)
    else:
        shutil.copyfile(_sqlite_register(), data / "piu.sqlite3")
    app = create_app(config, instance_path=data)
    _forget_room_memory()
    yield app
    _forget_room_memory()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """An application context with write intent, for service-level tests."""
    with app.test_request_context(), writing():
        yield
        db.session.rollback()


def login(client: FlaskClient, username: str) -> FlaskClient:
    response = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": csrf_token(client, "/login")})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def csrf_token(client: FlaskClient, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def editor(app: Flask) -> FlaskClient:
    return login(app.test_client(), "editor")


@pytest.fixture
def reader(app: Flask) -> FlaskClient:
    return login(app.test_client(), "reader")


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    return login(app.test_client(), "admin")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory with a configured register, named by PIU_HOME (for the `piu` commands and
    the launcher; SQLite whatever the test run's engine, French whatever the machine's locale)."""
    for name in ("PIU_DATABASE_URL", "PIU_TEST_DATABASE_URL", "PIU_DEFAULT_LOCALE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("PIU_HOME", str(home))
    app = create_app({"TESTING": True}, instance_path=home)
    upgrade_database(app, backup=False)
    with app.app_context(), writing():
        instance_service.configure(city_name="Ville CLI", country_code="SN", instance_code="cli-city")
        db.session.commit()
        db.engine.dispose()
    return home


@pytest.fixture(scope="session")
def register_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated SQLite register that tests copy to make other cities quickly."""
    from .exchange.cities import make_template

    return make_template(tmp_path_factory.mktemp("template"))



def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Print the figures of the hostile-bundle run (tests/exchange/test_bundle_fuzz.py), which each
    test worker writes to PIU_FUZZ_STATS.<worker>, before pytest's closing line."""
    import json

    base = os.environ.get("PIU_FUZZ_STATS")
    if not base:
        return
    for path in sorted(Path(base).parent.glob(Path(base).name + ".*")):
        figures = json.loads(path.read_text())
        terminalreporter.write_line(f"hostile bundles ({path.suffix.lstrip('.')}): {figures['inputs']} inputs, "
                                    f"{figures.get('refused', 0)} refused, {figures.get('accepted', 0)} accepted")


# The longest tests (minutes each in the CI job: `--durations` of a whole run) go first, so that the test
# workers (pytest -n auto) take them at the start and share the rest, instead of one worker finishing a
# fuzz lane alone at the end.
_LONGEST_FIRST = ("test_bundle_fuzz.py::test_a_mutated_bundle", "test_kill_9_during_backups",
                  "test_merge_properties.py::test_three_cities")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not any(name in item.nodeid for name in _LONGEST_FIRST))
