"""Several cities on one machine: each is an app with its own SQLite register, made from a template copy."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from piu_app import create_app, upgrade_database
from piu_app.database import writing
from piu_app.extensions import db
from piu_app.services import exchange
from piu_app.services import instance as instance_service


def make_template(home: Path) -> Path:
    """A migrated, empty register, made once per test session and copied for every city."""
    app = create_app({"TESTING": True, "SECRET_KEY": "test"}, instance_path=home)
    upgrade_database(app, backup=False)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return home / "piu.sqlite3"


def make_city(template: Path, root: Path, code: str, *, name: str | None = None, country: str = "SN") -> Flask:
    home = root / code
    home.mkdir(parents=True)
    shutil.copy(template, home / "piu.sqlite3")
    app = create_app({"TESTING": True, "SECRET_KEY": "test"}, instance_path=home)
    with app.app_context(), writing():
        instance_service.configure(city_name=name or code.title(), country_code=country, instance_code=code)
        db.session.commit()
    return app


@contextmanager
def inside(app: Flask) -> Iterator[None]:
    """Work in a city's register as a request would: one write transaction, committed at the end."""
    with app.test_request_context(), writing():
        try:
            yield
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def export(app: Flask, out: Path, level: str = "network") -> Path:
    with inside(app):
        exchange.export(level, out, uploads=Path(app.config["PIU_UPLOADS_DIR"]))
    return out


def import_(app: Flask, bundle: Path):
    with inside(app):
        plan, batch = exchange.import_bundle(bundle, username="test", uploads=Path(app.config["PIU_UPLOADS_DIR"]))
        return plan.totals(), (batch.uid if batch else None)


def data_rows(bundle: Path) -> dict[str, set[tuple[str, ...]]]:
    """Every data row of a bundle, per table (order-free), to compare bundles."""
    import csv
    import io

    found: dict[str, set[tuple[str, ...]]] = {}
    with zipfile.ZipFile(bundle) as zf:
        for name in zf.namelist():
            if name.startswith("data/"):
                rows = list(csv.reader(io.TextIOWrapper(zf.open(name), encoding="utf-8", newline="")))
                found[name] = {tuple(r) for r in rows[1:]}
    return found


def all_bytes(bundle: Path) -> bytes:
    with zipfile.ZipFile(bundle) as zf:
        return b"\n".join(zf.read(name) for name in zf.namelist())


def unsigned_copy(bundle: Path, out: Path) -> Path:
    """The bundle as a release without signatures wrote it (no `signature/` members, no
    `x-piu-signature`, checksums made again). A test that changes an exported bundle to reach a
    check behind the signature starts from this copy: a signed bundle changed after its signing is
    refused before any other check."""
    import hashlib
    import json

    with zipfile.ZipFile(bundle) as zf:
        members = {name: zf.read(name) for name in zf.namelist() if not name.startswith("signature/")}
    package = json.loads(members["datapackage.json"])
    package.pop("x-piu-signature", None)
    for resource in package["resources"]:
        if resource.get("path") in members:
            resource["hash"] = "sha256:" + hashlib.sha256(members[resource["path"]]).hexdigest()
    members["datapackage.json"] = json.dumps(package, ensure_ascii=False, indent=1).encode()
    members["checksums.sha256"] = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                                          for name, data in sorted(members.items())
                                          if name != "checksums.sha256").encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out
