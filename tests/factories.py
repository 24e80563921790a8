"""Plain factory functions: each makes one record through the services, with sensible defaults."""

from __future__ import annotations

from typing import Any

from piu_app.registry import RECORD_TYPES
from piu_app.services import records


def make(record_type: str, username: str = "test", **values: Any) -> Any:
    return records.create(RECORD_TYPES[record_type], values, username=username)


def make_territory(**overrides: Any) -> Any:
    return make("territories", **{"name": "Port-Sable", "level": "commune", "country_code": "SN", **overrides})


def make_organisation(**overrides: Any) -> Any:
    return make("organisations", **{"name": "Lumisol", "org_type": "startup", "is_startup": True, **overrides})


def make_innovation(**overrides: Any) -> Any:
    return make("innovations", **{"name": "Éclairage public solaire intelligent",
                                  "tagline": "Des candélabres autonomes à énergie solaire",
                                  "themes": ["energy_climate"], "deployment_stage": "pilot", **overrides})


def make_experiment(innovation: Any, **overrides: Any) -> Any:
    return make("experiments", **{"title": "Pilote boulevard du Fleuve", "innovation": innovation.uid,
                                  "status": "ongoing", **overrides})


def make_foreign(record_type: str, origin: str = "peer-city", **values: Any) -> Any:
    """Make a record as if it came from another city's bundle (read-only here)."""
    return records.create(RECORD_TYPES[record_type], values, username="import", origin=origin)
