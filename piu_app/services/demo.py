"""Load the demonstration register of a fictional francophone city (`piu demo`).

Every demo record gets a uid derived from its natural key, so loading twice adds nothing: a record
whose uid exists is left as it is (even if the user edited it since).

Then, so that "Qui l'a essayé ailleurs ?" shows something on a first run, the bundle of a fictional
peer city (`demo_peer_data`) is built and imported the way a real one would be: its records are
written into a scratch register of their own (a temporary SQLite file, schema made from the models),
exported at the network level, and the bundle goes through the ordinary import (preview, decisions,
import log, undo). The bundle is unsigned on purpose: a key made for a throwaway register would be
pinned here on first use, and the next `piu demo` (a new key) would then be refused; an unsigned
bundle of a city whose key is not pinned imports marked « non vérifié », which is what it is.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from flask import current_app

from .. import demo_data, demo_peer_data, demo_workshop
from ..models import db
from ..registry import RECORD_TYPES, RecordType
from . import instance as instance_service
from . import records

_NAMESPACE = uuid.UUID("6f1c1d2e-8a55-4a39-9d0c-2a1f0b6b7e51")
DEMO_USER = "demo"


def _person_key(p: dict) -> str:
    return f"{p['given_name']} {p['family_name']}".strip()


# (record type, data, natural key) in an order where every reference points backwards.
_PLAN: list[tuple[str, str, Callable[[dict], str]]] = [
    ("territories", "TERRITORIES", lambda r: r["name"]),
    ("organisations", "ORGANISATIONS", lambda r: r["name"]),
    ("persons", "PERSONS", _person_key),
    ("places", "PLACES", lambda r: r["name"]),
    ("innovations", "INNOVATIONS", lambda r: r["name"]),
    ("needs", "NEEDS", lambda r: r["title"]),
    ("experiments", "EXPERIMENTS", lambda r: r["title"]),
    ("barriers", "BARRIERS", lambda r: r["label"]),
    ("lessons", "LESSONS", lambda r: r["title"]),
    ("procurements", "PROCUREMENTS", lambda r: r["title"]),
    ("funding_aids", "FUNDING_AIDS", lambda r: r["name"]),
    ("experiment_fundings", "EXPERIMENT_FUNDINGS", lambda r: f"{r['experiment']}|{r['funding_aid']}"),
    ("reviews", "REVIEWS", lambda r: f"{r['innovation']}|{r.get('reviewer_org')}|{r.get('date')}"),
    ("support_programmes", "SUPPORT_PROGRAMMES", lambda r: r["name"]),
]
_LINK_KEYS = {"innovations": ("carriers", "carriers"), "needs": ("candidates", "candidates"),
              "lessons": ("people", "people")}


def demo_uid(code: str, record_type: str, natural_key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{code}:{record_type}:{natural_key}"))


def _values(rt: RecordType, row: dict[str, Any], uid_of: Callable[[str, str], str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in rt.fields:
        if f.name not in row:
            continue
        value = row[f.name]
        if f.kind == "ref" and value:
            value = uid_of(f.ref, value)
        elif f.kind == "date" and value:
            value = dt.date.fromisoformat(value)
        values[f.name] = value
    values["visibility"] = row.get("visibility", rt.default_visibility)
    values["draft"] = row.get("draft", False)
    return values


def load() -> dict[str, int]:
    """Load the demonstration register, then a peer city's bundle; return how many records of each type
    the demonstration city itself got (the peer's arrive through the import log, like any bundle)."""
    if instance_service.current() is None:
        city = demo_data.CITY
        instance_service.configure(city_name=city["name"], country_code=city["country_code"],
                                   instance_code=city["instance_code"])
        db.session.flush()
    code = instance_service.instance_code()
    added = _load_records(demo_data, code)
    settings = instance_service.current()
    if settings is not None and not settings.home_territory_uid:
        # the city itself, rather than the neighbourhood most of its pilots took place in: peers compare
        # with a commune (and the page need not count our experiments per territory to guess it)
        instance_service.set_home_territory(demo_uid(code, "territories", demo_data.HOME_TERRITORY))
    # a workshop the city held: the facilitator's pages and the report show something at once
    if demo_workshop.load(demo_uid(code, "workshops", demo_workshop.TITLE)):
        added["workshops"] = 1
    load_peer(code)
    return added


def _load_records(data: ModuleType, code: str, *, home_code: str = "") -> dict[str, int]:
    """Create the records of a demo data module owned by `code`; a row marked "home" is a record of the
    city `home_code` (relayed by a peer), with the uid that city's demonstration gave it."""
    home_keys = {(key, natural_key(row)) for key, constant, natural_key in _PLAN
                 for row in getattr(data, constant, []) if row.get("home")}

    def uid_of(record_type: str, natural: str) -> str:
        return demo_uid(home_code if (record_type, natural) in home_keys else code, record_type, natural)

    added: dict[str, int] = {}
    for key, constant, natural_key in _PLAN:
        rt = RECORD_TYPES[key]
        for row in getattr(data, constant, []):
            uid = uid_of(key, natural_key(row))
            if db.session.scalars(db.select(rt.model.id).filter_by(uid=uid)).first() is not None:
                continue
            record = records.create(rt, _values(rt, row, uid_of), username=DEMO_USER, uid=uid,
                                    origin=home_code if row.get("home") else None)
            if key in _LINK_KEYS:
                link_name, data_key = _LINK_KEYS[key]
                target_type = next(link.target for link in rt.links if link.name == link_name)
                for item in row.get(data_key, []):
                    # candidates are plain names; carriers and people come as [name, role]
                    target_key, role = (item, "candidate") if isinstance(item, str) else item
                    records.add_link(rt, record, link_name, target_uid=uid_of(target_type, target_key),
                                     role=role, username=DEMO_USER)
            for c in rt.citations:  # a lesson's barriers, by label
                for target_key in row.get(c.name, []):
                    records.add_citation(rt, record, c.name, target_uid=uid_of(c.target, target_key),
                                         username=DEMO_USER)
            added[key] = added.get(key, 0) + 1
    return added


def peer_code() -> str:
    return str(demo_peer_data.CITY["instance_code"])


def load_peer(home_code: str) -> dict[str, int]:
    """Build the peer city's bundle and import it (once: nothing if its records are here already);
    return the import's totals (created, unchanged, skipped…)."""
    first = demo_peer_data.EXPERIMENTS[0]["title"]
    experiments = RECORD_TYPES["experiments"].model
    if db.session.scalars(db.select(experiments.id).filter_by(
            uid=demo_uid(peer_code(), "experiments", first))).first() is not None:
        return {}
    from . import exchange as exchange_service

    db.session.flush()  # the import reads the demonstration's records through the same connection
    with tempfile.TemporaryDirectory(prefix="piu-demo-peer-") as scratch:
        bundle = build_peer_bundle(Path(scratch), home_code)
        plan, _batch = exchange_service.import_bundle(bundle, filename=bundle.name, username=DEMO_USER,
                                                      uploads=Path(current_app.config["PIU_UPLOADS_DIR"]))
        return plan.totals()


def build_peer_bundle(folder: Path, home_code: str) -> Path:
    """Write the peer city's network bundle (unsigned) into `folder`, from a scratch register made there."""
    from .. import create_app
    from ..database import create_search_index, writing
    from ..exchange import bundle_export
    from . import vocabularies

    city = demo_peer_data.CITY
    # Its own SQLite file whatever this register runs on (a PostgreSQL hub included).
    app = create_app({"SECRET_KEY": "demo-peer", "DATABASE_URL": ""}, instance_path=folder / "register")
    out = folder / bundle_export.bundle_filename(peer_code(), dt.date(2024, 9, 1))
    with app.app_context(), writing():
        try:
            db.metadata.create_all(db.engine)
            with db.engine.begin() as conn:
                create_search_index(conn)
            vocabularies.seed(peer_code())
            instance_service.configure(city_name=city["name"], country_code=city["country_code"],
                                       instance_code=peer_code())
            db.session.flush()
            _load_records(demo_peer_data, peer_code(), home_code=home_code)
            db.session.flush()
            bundle_export.export_bundle(out, level="network", key=None)
            db.session.commit()
        finally:
            db.session.remove()
            db.engine.dispose()
    return out
