"""Merging bundles of three cities, for registers made up by hypothesis.

Export A → import into B → B's network export carries A's shared records unchanged; importing the
same bundles again changes nothing; any order of imports gives the same register; nothing private
(a canary record, a canary e-mail) is ever in any file of any bundle.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piu_app.registry import RECORD_TYPES
from piu_app.services import records

from ..factories import make
from .cities import all_bytes, data_rows, export, import_, inside, make_city

CANARY_NAME = "CANARI-PRIVE"
CANARY_EMAIL = "canari@prive.invalid"

visibility = st.sampled_from(["private", "network", "public"])
# One-line fields: formula triggers, quotes and separators, but no tab or line break (refused there).
text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("=+-@'\";,"),
               max_size=30)
innovation = st.fixed_dictionaries({
    "name": text.filter(lambda t: t.strip() != "" and CANARY_NAME not in t),
    "tagline": text.map(lambda t: t[:140]),
    "visibility": visibility,
    "themes": st.lists(st.sampled_from(["energy_climate", "mobility", "water_sanitation", "digital_data"]), unique=True, max_size=2),
    "trl": st.none() | st.integers(1, 9),
    "price_indication": st.none() | st.floats(0, 1e9, allow_nan=False),
})
person = st.fixed_dictionaries({
    "family_name": st.sampled_from(["Diallo", "Nguyen", "Martin"]),
    "visibility": visibility,
    "contact_consent": st.booleans(),
})
city = st.fixed_dictionaries({
    "innovations": st.lists(innovation, max_size=4),
    "persons": st.lists(person, max_size=2),
    "experiment_on": st.lists(st.integers(0, 3), max_size=3),
    "carrier_visibility": visibility,
})


def _fill(app, code: str, spec: dict) -> None:
    with inside(app):
        org = make("organisations", name=f"Porteur {code}", org_type="startup", visibility=spec["carrier_visibility"])
        make("innovations", name=f"{CANARY_NAME} {code}", visibility="private")
        make("persons", family_name="Canari", email=CANARY_EMAIL, phone="+000", contact_consent=False,
             visibility="public")
        made = []
        for values in spec["innovations"]:
            made.append(make("innovations", **values))
            records.add_link(RECORD_TYPES["innovations"], made[-1], "carriers", target_uid=org.uid, role="carrier",
                             username="t")
        for i in spec["experiment_on"]:
            if i < len(made):
                make("experiments", title=f"Essai {code} {i}", innovation=made[i].uid, status="ongoing",
                     visibility=made[i].visibility, buyer=org.uid)
        for values in spec["persons"]:
            make("persons", email=f"{values['family_name'].lower()}@{code}.invalid", organisation=org.uid, **values)


def _state(app, folder: Path, name: str) -> dict:
    return data_rows(export(app, folder / f"{name}.zip"))


@settings(max_examples=12, deadline=None, report_multiple_bugs=False, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(specs=st.lists(city, min_size=3, max_size=3), order=st.permutations(range(3)))
def test_three_cities_merge_without_loss_duplicates_or_leaks(register_template, specs, order):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        a, b, c = (make_city(register_template, root, code) for code in ("ville-a", "ville-b", "ville-c"))
        for app, code, spec in zip((a, b, c), ("ville-a", "ville-b", "ville-c"), specs, strict=True):
            _fill(app, code, spec)
        bundle_a = export(a, root / "a.zip")
        bundle_c = export(c, root / "c.zip")

        # A → B: B's export carries A's shared records unchanged
        import_(b, bundle_a)
        bundle_b = export(b, root / "b.zip")  # B's own records plus A's, relayed
        rows_a, rows_b = data_rows(bundle_a), data_rows(bundle_b)
        for table, rows in rows_a.items():
            assert rows <= rows_b[table], table

        # the same bundles again change nothing
        assert import_(b, bundle_a)[1] is None

        # a fourth city takes the three bundles in two different orders: same register
        bundles = [bundle_a, bundle_b, bundle_c]
        first, second = (make_city(register_template, root, code) for code in ("ville-d", "ville-e"))
        for i in (0, 1, 2):
            import_(first, bundles[i])
        for i in order:
            import_(second, bundles[i])
        for i in order:
            assert import_(second, bundles[i])[1] is None
        state_first, state_second = _state(first, root, "d"), _state(second, root, "e")
        assert state_first == state_second

        # nothing private anywhere
        for bundle in (*bundles, root / "d.zip", root / "e.zip"):
            content = all_bytes(bundle)
            assert CANARY_NAME.encode() not in content
            assert CANARY_EMAIL.encode() not in content


def test_a_relay_chain_keeps_every_record_once(register_template, tmp_path):
    """A → B → C → A: each city ends with everyone's shared records exactly once, and A keeps its own."""
    apps = {code: make_city(register_template, tmp_path, code) for code in ("ville-a", "ville-b", "ville-c")}
    for code, app in apps.items():
        _fill(app, code, {"innovations": [{"name": f"Idée {code}", "tagline": "", "visibility": "network",
                                           "themes": [], "trl": None, "price_indication": None}],
                          "persons": [], "experiment_on": [0], "carrier_visibility": "network"})
    for source, target in itertools.pairwise(["ville-a", "ville-b", "ville-c", "ville-a"]):
        import_(apps[target], export(apps[source], tmp_path / f"{source}-{target}.zip"))
    rows = data_rows(export(apps["ville-a"], tmp_path / "final.zip"))["data/innovations.csv"]
    names = sorted(r[10] for r in rows)
    assert names == ["Idée ville-a", "Idée ville-b", "Idée ville-c"]
