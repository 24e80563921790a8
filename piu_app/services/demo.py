"""Load the demonstration register of a fictional francophone city (`piu demo`).

Every demo record gets a uid derived from its natural key, so loading twice adds nothing: a record
whose uid exists is left as it is (even if the user edited it since).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from .. import demo_data
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


def _values(rt: RecordType, row: dict[str, Any], code: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in rt.fields:
        if f.name not in row:
            continue
        value = row[f.name]
        if f.kind == "ref" and value:
            value = demo_uid(code, f.ref, value)
        elif f.kind == "date" and value:
            value = dt.date.fromisoformat(value)
        values[f.name] = value
    values["visibility"] = row.get("visibility", rt.default_visibility)
    values["draft"] = row.get("draft", False)
    return values


def load() -> dict[str, int]:
    """Load the demonstration register; return how many records of each type were added."""
    if instance_service.current() is None:
        city = demo_data.CITY
        instance_service.configure(city_name=city["name"], country_code=city["country_code"],
                                   instance_code=city["instance_code"])
        db.session.flush()
    code = instance_service.instance_code()
    added: dict[str, int] = {}
    for key, constant, natural_key in _PLAN:
        rt = RECORD_TYPES[key]
        for row in getattr(demo_data, constant):
            uid = demo_uid(code, key, natural_key(row))
            if db.session.scalars(db.select(rt.model.id).filter_by(uid=uid)).first() is not None:
                continue
            record = records.create(rt, _values(rt, row, code), username=DEMO_USER, uid=uid)
            if key in _LINK_KEYS:
                link_name, data_key = _LINK_KEYS[key]
                target_type = next(link.target for link in rt.links if link.name == link_name)
                for item in row.get(data_key, []):
                    # candidates are plain names; carriers and people come as [name, role]
                    target_key, role = (item, "candidate") if isinstance(item, str) else item
                    records.add_link(rt, record, link_name, target_uid=demo_uid(code, target_type, target_key),
                                     role=role, username=DEMO_USER)
            added[key] = added.get(key, 0) + 1
    return added
