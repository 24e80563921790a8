"""PIU — Place de l'Innovation Urbaine, édition locale.

`create_app` builds the Flask application; nothing happens at import time.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

__version__ = "0.1.0"
MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")


def _secret_key(data_dir: Path) -> str:
    """Return this install's secret key, generating it on first use (never a constant in the code)."""
    from .paths import secret_key_file

    key_file = secret_key_file(data_dir)
    if not key_file.is_file():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(32))
    return key_file.read_text(encoding="utf-8").strip()


def create_app(config: Mapping[str, Any] | None = None, *, instance_path: str | Path | None = None) -> Flask:
    """Build the application: settings, extensions, blueprints, error pages."""
    from . import paths
    from .config import load_settings
    from .database import configure_engine, engine_options

    data_dir = Path(instance_path).resolve() if instance_path else paths.data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = load_settings(data_dir, config)

    app = Flask(__name__, instance_path=str(data_dir), instance_relative_config=False)
    app.config.update(settings)
    url = settings["DATABASE_URL"] or f"sqlite:///{paths.database_file(data_dir)}"
    paths.protect(data_dir, sqlite=not settings["DATABASE_URL"])
    app.config.update(
        SECRET_KEY=settings["SECRET_KEY"] or _secret_key(data_dir),
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(url),
        MAX_CONTENT_LENGTH=int(settings["MAX_UPLOAD_MB"]) * 1024 * 1024 + 64 * 1024,
        PIU_DATA_DIR=data_dir,
        PIU_UPLOADS_DIR=paths.uploads_dir(data_dir),
        PIU_BACKUPS_DIR=paths.backups_dir(data_dir),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,  # a form left open during a long meeting must still post
        JSON_AS_ASCII=False,
    )

    from .extensions import babel, csrf, db, login_manager, migrate
    from .i18n import select_locale

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    csrf.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    babel.init_app(app, default_locale="fr", locale_selector=select_locale)
    login_manager.init_app(app)

    from .views import register

    _bound_integer_urls(app)
    register(app)
    _security_headers(app)
    logging.getLogger("piu").setLevel(logging.INFO)
    return app


# Every answer (pages, errors, static files, downloads, redirects) carries these headers: no page
# runs a script it did not load from PIU itself, none can be framed, none leaks its address.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
MAX_URL_INTEGER = 2**31 - 1  # keys are INTEGER columns (4 bytes on PostgreSQL): a larger number names nothing


def _security_headers(app: Flask) -> None:
    @app.after_request
    def _add_security_headers(response):  # type: ignore[no-untyped-def]
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def _bound_integer_urls(app: Flask) -> None:
    """Make `<int:…>` URL parts stop at the largest stored key, so that a huge number answers 404
    (no route) instead of overflowing the database driver (500)."""
    from werkzeug.routing import IntegerConverter

    class BoundedIntegerConverter(IntegerConverter):
        def __init__(self, url_map, fixed_digits=0, min=None, max=MAX_URL_INTEGER, signed=False):  # noqa: A002
            super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    app.url_map.converters["int"] = BoundedIntegerConverter


def upgrade_database(app: Flask, *, backup: bool = True) -> None:
    """Bring the database to the current schema (backing it up first if it has data), seed vocabularies."""
    import flask_migrate
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from .extensions import db
    from .services import backups, vocabularies
    from .services import instance as instance_service

    with app.app_context():
        script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config(MIGRATIONS_DIR))
        with db.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current != script.get_current_head():
            if backup and current is not None:
                backups.take(db.engine, app.config["PIU_BACKUPS_DIR"], reason="migration",
                             keep=app.config["BACKUP_KEEP"])
            flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        vocabularies.seed(instance_service.instance_code())
        db.session.commit()
