"""Every cell of a bundle is checked before anything is written, and the preview runs the same checks
as the import: a bundle the preview calls valid never fails half-way.

Each hostile bundle below is written as a stranger would (from a genuine export of city A, a few
bytes changed, the checksums recomputed so that only the content is wrong). For each, the preview
refuses it with a clear message, and the import refuses it leaving city B's database and data
directory byte for byte as they were. Bundles carry data as it was entered (format 1.1): a phone
number keeps its "+", a text starting with an apostrophe keeps it; bundles of format 1.0, which
escaped such text, still import and are un-escaped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from piu_app.database import is_sqlite, wait_for_checkpoints, writing
from piu_app.exchange import bundle_format as bf
from piu_app.exchange import bundle_import as bi
from piu_app.exchange.cells import neutralise
from piu_app.extensions import db
from piu_app.models import Experiment, Innovation, Person, ReviewScore, Theme
from piu_app.services import backups
from piu_app.services import exchange as exchange_service
from tests.exchange.cities import export, inside, make_city
from tests.factories import make, make_experiment, make_innovation

Files = dict[str, bytes]
PHONE = "+221 77 123 45 67"
TRICKY = [PHONE, "=HYPERLINK(\"http://evil\")", "'=1", "''+2", "'apostrophe d'abord", "-12 %", "@SUM(A1)"]


# --------------------------------------------------------------------------- bundles, as a stranger edits them

@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory, register_template: Path) -> Files:
    """City A's network bundle: innovations with themes, a carrier, an experiment, a review with scores."""
    root = tmp_path_factory.mktemp("city-a")
    a = make_city(register_template, root, "ville-a")
    with inside(a):
        innovation = make_innovation(name="Éclairage solaire", visibility="network",
                                     themes=["energy_climate", "mobility"])
        make_innovation(name=TRICKY[1], tagline=TRICKY[3], visibility="network")
        make_experiment(innovation, title="Pilote du port", visibility="network")
        make("reviews", innovation=innovation.uid, reviewer_type="peer_city", visibility="network",
             scores={"benefit": "5", "total_cost": "3"})
        make("persons", family_name="Diallo", phone=PHONE, email="awa@ville-a.sn", contact_consent=True,
             visibility="public")
    return read(export(a, root / "a.zip"))


@pytest.fixture
def city_b(register_template: Path, tmp_path: Path) -> Flask:
    return make_city(register_template, tmp_path, "ville-b")


def read(path: Path) -> Files:
    """The members of a bundle, without its signature: a forger cannot sign (see `write`)."""
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist() if not info.filename.startswith("signature/")}


def write(path: Path, files: Files) -> Path:
    """Write the files as a bundle, every hash recomputed (the descriptor's, then checksums.sha256)."""
    files = dict(files)
    try:
        package = json.loads(files["datapackage.json"])
    except (ValueError, RecursionError):
        package = None  # a descriptor broken on purpose is left as it is
    if isinstance(package, dict):
        package.pop("x-piu-signature", None)
        for resource in package.get("resources", []):
            data = files.get(resource.get("path", ""))
            if data is not None:
                resource["hash"], resource["bytes"] = f"sha256:{hashlib.sha256(data).hexdigest()}", len(data)
        files["datapackage.json"] = json.dumps(package, ensure_ascii=False).encode()
    files["checksums.sha256"] = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items()
                                        if name != "checksums.sha256").encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def table(files: Files, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files[name].decode("utf-8"), newline="")))


def with_table(files: Files, name: str, rows: list[dict[str, str]], header: list[str] | None = None) -> Files:
    header = header or next(csv.reader(io.StringIO(files[name].decode("utf-8"), newline="")))
    out = io.StringIO()
    writer = csv.DictWriter(out, header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return {**files, name: out.getvalue().encode("utf-8")}


def edit(files: Files, name: str, change: Callable[[list[dict[str, str]]], None]) -> Files:
    rows = table(files, name)
    change(rows)
    return with_table(files, name, rows)


def with_descriptor(files: Files, change: Callable[[dict], None]) -> Files:
    package = json.loads(files["datapackage.json"])
    change(package)
    return {**files, "datapackage.json": json.dumps(package, ensure_ascii=False).encode()}


def add_term(files: Files, vocabulary: str, code: str, label: str) -> Files:
    name = f"vocabularies/{vocabulary}.csv"
    rows = table(files, name)
    rows.append({**{k: "" for k in rows[0]}, "code": code, "label_fr": label})
    return with_table(files, name, rows)


# --------------------------------------------------------------------------- the state of city B

def state(app: Flask) -> tuple[bytes, dict[str, str]]:
    """City B's database (bytes once the WAL is folded in, or every row) and every file of its data directory."""
    with app.app_context():
        db.session.rollback()
        if is_sqlite(db.engine):
            wait_for_checkpoints()  # the import's own checkpoint, on its thread, would make this one busy
            raw = db.engine.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                raw.close()
            database = Path(db.engine.url.database or "").read_bytes()
        else:
            database = "\n".join(repr(db.session.execute(select(t)).all()) for t in db.metadata.sorted_tables).encode()
        db.session.remove()
    home = Path(app.instance_path)
    files = {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(home.rglob("*"))
             if p.is_file() and not p.name.endswith(("-wal", "-shm"))}
    return database, files


def refusal(exc: bi.BundleError) -> str:
    return "\n".join([str(exc.message), *map(str, exc.problems)])


def preview(app: Flask, path: Path) -> bi.Plan:
    with app.test_request_context(), writing():
        try:
            return exchange_service.preview(path)
        finally:
            db.session.rollback()
            db.session.remove()


def import_(app: Flask, path: Path):
    config = app.config
    with app.test_request_context(), writing():
        try:
            plan, batch = exchange_service.import_bundle(
                path, filename=path.name, username="editor", uploads=config["PIU_UPLOADS_DIR"],
                backup=lambda: backups.take(db.engine, config["PIU_BACKUPS_DIR"], reason="import", keep=10))
            db.session.commit()
            return plan, batch
        except BaseException:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def _score(files: Files, value: str) -> Files:
    return edit(files, "data/review_scores.csv", lambda rows: rows[0].update(score=value))


def _own_record_link(files: Files) -> Files:
    # The experiment's innovation claims to be city B's own: B never takes it, so it would not be there
    innovation = table(files, "data/experiments.csv")[0]["innovation_uid"]
    return edit(files, "data/innovations.csv",
                lambda rows: [r.update(origin_instance="ville-b") for r in rows if r["uid"] == innovation])


def _nested(files: Files) -> Files:
    text = files["datapackage.json"].decode()
    return {**files, "datapackage.json": (text[:-1] + ', "x-deep": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()}


def _twice(name: str, change: Callable[[dict[str, str]], None] | None = None) -> Callable[[Files], Files]:
    def make_twice(files: Files) -> Files:
        rows = table(files, name)
        copy = dict(rows[0])
        if change:
            change(copy)
        return with_table(files, name, [*rows, copy])
    return make_twice


LONG_CODE = "c" * 61
# case -> (how a stranger spoils A's bundle, a phrase of the French refusal)
HOSTILE: dict[str, tuple[Callable[[Files], Files], str]] = {
    "score-99": (lambda f: _score(f, "99"), "score : valeur hors limites (99)"),
    "score-minus-4": (lambda f: _score(f, "-4"), "score : valeur hors limites (-4)"),
    "score-0": (lambda f: _score(f, "0"), "score : valeur hors limites (0)"),
    "theme-code-61": (lambda f: edit(add_term(f, "themes", LONG_CODE, "Trop long"), "data/innovation_themes.csv",
                                     lambda rows: rows[0].update(theme_code=LONG_CODE)),
                      "code : 60 caractères au plus"),
    "term-code-61": (lambda f: add_term(f, "carrier_role", LONG_CODE, "Rôle"), "code : 60 caractères au plus"),
    "term-label-201": (lambda f: add_term(f, "carrier_role", "nouveau", "L" * 201), "label_fr : 200 caractères au plus"),
    "term-code-semicolon": (lambda f: add_term(f, "carrier_role", "a;b", "Deux"), "ne peut contenir ni « ; »"),
    "vocab-code-too-long-for-column": (
        lambda f: edit(add_term(f, "experiment_status", "s" * 50, "Cinquante"), "data/experiments.csv",
                       lambda rows: rows[0].update(status="s" * 50)),
        "status : 40 caractères au plus"),
    "origin-5000": (lambda f: edit(f, "data/innovations.csv", lambda rows: rows[0].update(origin_instance="x" * 5000)),
                    "origin_instance : 64 caractères au plus"),
    "origin-path-html": (lambda f: edit(f, "data/innovations.csv",
                                        lambda rows: rows[0].update(origin_instance="../../x <b>")),
                         "origin_instance : « ../../x <b> » n'a pas la forme attendue"),
    "descriptor-origin-path": (lambda f: with_descriptor(f, lambda p: p["x-piu-origin"].update(
        instance_code="../../x <b>")), "n'a pas la forme d'un code d'instance"),
    "descriptor-origin-5000": (lambda f: with_descriptor(f, lambda p: p["x-piu-origin"].update(
        instance_code="x" * 5000)), "n'a pas la forme d'un code d'instance"),
    "descriptor-city-5000": (lambda f: with_descriptor(f, lambda p: p["x-piu-origin"].update(city_name="V" * 5000)),
                             "Le nom de la ville d'origine du paquet (x-piu-origin) est invalide"),
    "level-unknown": (lambda f: with_descriptor(f, lambda p: p.update({"x-piu-level": "<b>" * 2000})),
                      "x-piu-level) est inconnu"),
    "format-version-three-parts": (lambda f: with_descriptor(f, lambda p: p["x-piu-format"].update(version="1.0.0")),
                                   "La version du format du paquet est illisible"),
    "name-too-long": (lambda f: edit(f, "data/innovations.csv", lambda rows: rows[0].update(name="N" * 201)),
                      "name : 200 caractères au plus"),
    "duplicate-theme": (_twice("data/innovation_themes.csv"), "a deux lignes pour « "),
    "duplicate-score": (_twice("data/review_scores.csv", lambda r: r.update(score="1")),
                        "a deux lignes pour « benefit »"),
    "experiment-without-innovation": (lambda f: edit(f, "data/experiments.csv",
                                                     lambda rows: rows[0].update(innovation_uid="")),
                                      "innovation_uid : valeur obligatoire manquante"),
    "experiment-link-to-nothing": (lambda f: edit(f, "data/experiments.csv", lambda rows: rows[0].update(
        innovation_uid="00000000-dead-4000-8000-000000000000")), "ne mène à aucune fiche"),
    "experiment-link-to-a-record-not-taken": (_own_record_link, "innovation_uid : le lien vers"),
    "nested-descriptor": (_nested, "datapackage.json est imbriqué trop profondément"),
    "huge-descriptor": (lambda f: with_descriptor(f, lambda p: p.update(padding=os.urandom(4_700_000).hex())),
                        "datapackage.json est démesuré"),
    "utf16-table": (lambda f: {**f, "data/innovations.csv": f["data/innovations.csv"].decode().encode("utf-16")},
                    "enregistrez le fichier en UTF-8"),
    "utf16-table-without-bom": (lambda f: {**f, "data/innovations.csv":
                                           f["data/innovations.csv"].decode().encode("utf-16-le")},
                                "enregistrez le fichier en UTF-8"),
    "latin1-table": (lambda f: {**f, "data/innovations.csv": f["data/innovations.csv"].decode().encode("latin-1")},
                     "enregistrez le fichier en UTF-8"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_the_preview_refuses_and_the_import_writes_nothing(genuine: Files, city_b: Flask, tmp_path: Path,
                                                           case: str) -> None:
    spoil, phrase = HOSTILE[case]
    bundle = write(tmp_path / f"{case}.zip", spoil(genuine))
    before = state(city_b)
    with pytest.raises(bi.BundleError) as previewed:
        preview(city_b, bundle)
    assert phrase in refusal(previewed.value)
    assert "colonnes" not in refusal(previewed.value)  # never "missing columns" for an encoding problem
    with pytest.raises(bi.BundleError) as imported:
        import_(city_b, bundle)
    assert refusal(imported.value) == refusal(previewed.value)  # the import runs the very checks of the preview
    assert state(city_b) == before  # not a byte written: no record, no backup, no attachment


def test_the_genuine_bundle_imports(genuine: Files, city_b: Flask, tmp_path: Path) -> None:
    """The hostile cases above differ from an importable bundle only by what they spoil."""
    plan, batch = import_(city_b, write(tmp_path / "a.zip", genuine))
    assert batch is not None and plan.totals()["created"] == 5
    with city_b.app_context():
        scores = {s.criterion: s.score for s in db.session.scalars(select(ReviewScore))}
        assert scores == {"benefit": 5, "total_cost": 3}
        assert db.session.scalars(select(Experiment.innovation_id)).one() is not None


def test_a_score_at_the_ends_of_the_scale_is_taken(genuine: Files, city_b: Flask, tmp_path: Path) -> None:
    for score in ("1", "5"):
        preview(city_b, write(tmp_path / f"{score}.zip", _score(genuine, score)))


def test_a_table_saved_with_a_byte_order_mark_imports(genuine: Files, city_b: Flask, tmp_path: Path) -> None:
    files = {**genuine, "data/innovations.csv": b"\xef\xbb\xbf" + genuine["data/innovations.csv"],
             "vocabularies/themes.csv": b"\xef\xbb\xbf" + genuine["vocabularies/themes.csv"]}
    plan, _batch = import_(city_b, write(tmp_path / "bom.zip", files))
    assert plan.counts()["innovations"]["created"] == 2


def test_a_deep_descriptor_nested_inside_strings_is_not_depth(genuine: Files) -> None:
    """Brackets inside a JSON string are text, not nesting."""
    assert bi._json_depth(json.dumps({"a": "[" * 5000, "b": [{"c": "]]]\\\"[["}]})) == 3
    assert bi._json_depth("[" * 40 + "]" * 40) == 40


# --------------------------------------------------------------------------- data as it was entered

def test_bundles_carry_text_as_it_was_entered(genuine: Files, city_b: Flask, tmp_path: Path) -> None:
    package = json.loads(genuine["datapackage.json"])
    assert package["x-piu-format"]["version"] == "1.1"
    people = table(genuine, "data/persons.csv")
    assert people[0]["phone"] == PHONE  # not "'+221 77 …": readable by any program, not only PIU
    assert {r["name"] for r in table(genuine, "data/innovations.csv")} == {"Éclairage solaire", TRICKY[1]}
    assert "'" + PHONE not in genuine["data/persons.csv"].decode()
    readme = genuine["LISEZMOI.md"].decode()
    assert "texte" in readme and "double-clic" in readme and "as text" in readme  # how to open the CSVs safely
    import_(city_b, write(tmp_path / "a.zip", genuine))
    with city_b.app_context():
        assert db.session.scalars(select(Person.phone)).one() == PHONE
        assert set(db.session.scalars(select(Innovation.tagline))) >= {TRICKY[3]}  # its two apostrophes kept


def test_a_format_1_0_bundle_is_still_un_escaped(genuine: Files, city_b: Flask, tmp_path: Path) -> None:
    """Format 1.0 wrote risky text with one more leading apostrophe: a 1.0 bundle imports as before."""
    files = with_descriptor(genuine, lambda p: p["x-piu-format"].update(version="1.0"))

    def escape(rows: list[dict[str, str]]) -> None:
        for row in rows:
            row.update(name=neutralise(row["name"]), tagline=neutralise(row["tagline"]))
    files = edit(files, "data/innovations.csv", escape)
    files = edit(files, "data/persons.csv", lambda rows: rows[0].update(phone=neutralise(rows[0]["phone"])))
    assert "'" + PHONE in files["data/persons.csv"].decode()
    import_(city_b, write(tmp_path / "old.zip", files))
    with city_b.app_context():
        assert db.session.scalars(select(Person.phone)).one() == PHONE
        assert set(db.session.scalars(select(Innovation.name))) == {"Éclairage solaire", TRICKY[1]}
        assert set(db.session.scalars(select(Innovation.tagline))) >= {TRICKY[3]}


def _bundle_with(cells: list[str], version: str) -> bi.Bundle:
    """A bundle (in memory) whose innovations table holds `cells` in its name column."""
    header = [c.name for c in bf.TABLES["innovations"].columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[text if name == "name" else "" for name in header] for text in cells])
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("data/innovations.csv", out.getvalue())
    return bi.Bundle(zipfile.ZipFile(data), {}, "", "t.zip", "ville-a", "Ville A", version, "network")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(TRICKY), st.text(), st.text(alphabet="'=+-@\t\r ab1").map(str.strip)),
                min_size=1, max_size=5))
def test_a_1_1_bundle_is_never_un_escaped_and_a_1_0_one_always(cells: list[str]) -> None:
    at = [c.name for c in bf.TABLES["innovations"].columns].index("name")
    resources = {"innovations": {}}
    for version, expected in (("1.1", cells), ("1.0", cells)):
        written = cells if version == "1.1" else [neutralise(c) for c in cells]  # as each format writes them
        plan = bi.Plan(None, "ville-b")  # type: ignore[arg-type]
        bundle = _bundle_with(written, version)
        read_back = [row[at] for _line, row in bi._rows(bundle, resources, "innovations",
                                                          [c.name for c in bf.TABLES["innovations"].columns], plan)]
        assert read_back == expected and plan.errors == []
        assert [bf.read_value("text", bf.write_value("text", c)) for c in cells] == cells


def test_themes_of_a_peer_keep_their_full_code(genuine: Files, city_b: Flask, tmp_path: Path) -> None:
    """A 60-character code is the most a term holds: taken whole, never cut."""
    code = "t" * 60
    files = edit(add_term(genuine, "themes", code, "Soixante"), "data/innovation_themes.csv",
                 lambda rows: rows[0].update(theme_code=code))
    import_(city_b, write(tmp_path / "t.zip", files))
    with city_b.app_context():
        assert code in set(db.session.scalars(select(Theme.code)))


def test_undo_puts_back_text_kept_by_a_release_that_escaped_it() -> None:
    """What an import replaced is kept to undo it; a release writing format 1.0 kept it escaped."""
    columns = bf.TABLES["innovations"].columns
    kept_then = {"row": {"name": "'=1", "tagline": "''+2", "version": "3"}, "children": {}}
    assert bi._as_entered(columns, kept_then, kept_then["row"]) == {"name": "=1", "tagline": "'+2", "version": "3"}
    kept_now = {**kept_then, "as_entered": True}
    assert bi._as_entered(columns, kept_now, kept_now["row"]) == kept_then["row"]
    scores = bf.TABLES["reviews"].children[-1].columns[1:]
    assert bi._as_entered(scores, kept_then, dict(enumerate(["benefit", "5", "'-faible"]))) == {
        0: "benefit", 1: "5", 2: "-faible"}
