"""Hostile bundles made by mutating a valid one, as a stranger would: cells, member names and
bytes, the descriptor, the signature.

For every input: no exception but the importer's own refusals (a `BundleError` or another domain
error, with a message for the user); for every refused input, the database and the data
directory are byte-for-byte as before, and nothing is created outside them. An accepted input
is rolled back (and the files it wrote removed) so that each input meets the same register.

Most mutations are "fixed up" as a forger would: the checksums are computed again and the bundle
signed again with the forger's own key, so that the mutation reaches the row checks instead of
stopping at the first checksum. The number of inputs is `PIU_FUZZ_EXAMPLES` (300 by default;
`.ci/run`, the long job, asks for 10 000).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from piu_app.database import writing
from piu_app.extensions import db
from piu_app.services import DomainError, exchange
from piu_app.services import documents as document_service

from ..factories import make
from .cities import inside, make_city, make_template
from .forging import forge_signature, refresh_checksums

EXAMPLES = int(os.environ.get("PIU_FUZZ_EXAMPLES", "300"))
# Shrinking a failure over a bundle of 300 KB takes minutes: the long job reports the first form found.
PHASES = [Phase.explicit, Phase.generate] if os.environ.get("PIU_FUZZ_NO_SHRINK") else list(Phase)
# Hostile paths aim at this name, next to and above the data directory (one per pytest-xdist worker).
OUTSIDE = "piu-fuzz-outside-" + os.environ.get("PYTEST_XDIST_WORKER", "main")
LANES = 4  # the inputs are drawn in independent lanes, so that parallel test workers share them

HOSTILE_TEXT = [
    "", " ", "x" * 70, "x" * 5000, "x" * 300_000, "\x00", "a\x00b", "\x01\x02\x1b[31m", "\ufeffbom", "\ud7ff\ue000",
    "../../" + OUTSIDE, "/tmp/" + OUTSIDE, "C:/" + OUTSIDE, "C:\\" + OUTSIDE, "\\\\server\\share",
    "/etc/passwd", "secret_key", "../secret_key", "documents/../../x", "nan", "inf", "-inf", "1e999", "-1", "0",
    "99", "2147483648", "-2147483649", "99999999999999999999999", "1.5", "true", "false", "TRUE", "2026-13-45",
    "0000-00-00", "2026-01-01T00:00:00", "2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "=cmd|'/c calc'!A1",
    "'=1+1", "+221 77 000 00 00", "@SUM(A1)", "<script>alert(1)</script>", "<b>x</b>", "private", "public",
    "network", "draft", "00000000-0000-0000-0000-000000000000", "not-a-uid", "é" * 61, "a;b;c", "🙂" * 100,
    "0" * 64, "f" * 64, "F" * 64, "g" * 64,
]


# --------------------------------------------------------------------------- the register and the seed

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A city with a bit of everything exports a bundle; a second city, the victim, will import."""
    root = tmp_path_factory.mktemp("fuzz") / "cities"
    template = make_template(tmp_path_factory.mktemp("template"))
    origin = make_city(template, root, "ville-a", name="Ville A")
    with inside(origin):
        from piu_app.services import demo

        demo.load()
        _share_only_the_first(3)
        innovation = make("innovations", name="Lampadaire", visibility="network")
        document_service.attach(_rt("innovations"), innovation, stream=io.BytesIO(b"%PDF-1.4\n%fuzz\n"),
                                filename="note.pdf", title="Note", doc_type="other",
                                uploads=Path(origin.config["PIU_UPLOADS_DIR"]), max_bytes=1 << 20, username="t")
    seed_bundle = root / "seed.zip"
    with inside(origin):
        exchange.export("network", seed_bundle, uploads=Path(origin.config["PIU_UPLOADS_DIR"]),
                        include_documents=True)
    victim = make_city(template, root, "ville-b", name="Ville B")
    with inside(victim):
        make("innovations", name="Notre propre innovation", visibility="network")
    for target in _outside_targets(root):  # left by an earlier run of a defective importer
        if target.is_file():
            target.unlink()
    yield _World({"victim": victim, "seed": _members(seed_bundle.read_bytes()), "root": root})
    if os.environ.get("PIU_FUZZ_STATS"):  # the figures docs/SECURITY.md quotes
        stats = Path(f"{os.environ['PIU_FUZZ_STATS']}.{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
        stats.parent.mkdir(parents=True, exist_ok=True)
        stats.write_text(json.dumps(
            {"inputs": sum(OUTCOMES.values()), **OUTCOMES, "refusals": dict(REFUSALS.most_common(40))},
            ensure_ascii=False, indent=1))


class _World(dict):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example: not 300 KB of zip
        return "<world: ville-a's bundle, ville-b's register>"


def _share_only_the_first(n: int) -> None:
    """Keep the seed small (each input is imported): the first `n` records of each table stay
    shared, the others become private, so the bundle keeps every table and its links to them."""
    from sqlalchemy import select, update

    from piu_app.exchange import bundle_format as bf

    for key in bf.TABLE_ORDER:  # a record whose required link stays home stays home too (the export's rule)
        table = bf.TABLES[key].table
        first = select(table.c.id).order_by(table.c.id).limit(n).scalar_subquery()
        db.session.execute(update(table).where(table.c.id.not_in(first)).values(visibility="private"))


def _rt(key: str):
    from piu_app.registry import RECORD_TYPES

    return RECORD_TYPES[key]


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


# --------------------------------------------------------------------------- mutations

def _csv_cell(data: st.DataObject, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    import csv

    tables = [i for i, (name, _b) in enumerate(members) if name.endswith(".csv")]
    index = data.draw(st.sampled_from(tables), label="table")
    name, raw = members[index]
    try:
        rows = [row for row in csv.reader(io.StringIO(raw.decode("utf-8"), newline="")) if row]
    except (UnicodeDecodeError, csv.Error):
        return members  # an earlier mutation already broke this table
    if not rows:
        return members
    if len(rows) < 2:
        rows.append(list(rows[0]))
    r = data.draw(st.integers(0, len(rows) - 1), label="row")
    c = data.draw(st.integers(0, len(rows[r]) - 1), label="column")
    value = data.draw(st.sampled_from(HOSTILE_TEXT) | st.text(max_size=40), label="value")
    how = data.draw(st.sampled_from(["replace", "replace", "duplicate-row", "drop-row", "extra-cell", "drop-cell"]),
                    label="how")
    if how == "replace":
        rows[r][c] = value
    elif how == "duplicate-row":
        rows.insert(r, list(rows[r]))
    elif how == "drop-row":
        del rows[r]
    elif how == "extra-cell":
        rows[r].append(value)
    else:
        del rows[r][c]
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    encoded = out.getvalue().encode(data.draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16"]),
                                              label="encoding"))
    return [*members[:index], (name, encoded), *members[index + 1:]]


def _document_row(data: st.DataObject, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The attack of the issue: a documents row whose sha256 is a path, with a member at that path."""
    import csv

    index = next((i for i, (name, _b) in enumerate(members) if name == "data/documents.csv"), None)
    try:
        rows = list(csv.reader(io.StringIO(members[index][1].decode("utf-8"), newline=""))) if index is not None else []
    except (UnicodeDecodeError, csv.Error):
        return members
    if not rows or "sha256" not in rows[0]:
        return members
    at = rows[0].index("sha256")
    target = data.draw(st.sampled_from([
        "/tmp/" + OUTSIDE, "../../" + OUTSIDE, "../../../" + OUTSIDE, "C:/" + OUTSIDE, "/etc/passwd",
        "../secret_key", "..", ".", "", "ab", "0" * 64, "g" * 64, "A" * 64]), label="sha256")
    for row in rows[1:]:
        if len(row) > at:
            row[at] = target
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    payload = data.draw(st.sampled_from([b"import os\n", b"%PDF-1.4\n", b""]), label="payload")
    return [*members[:index], ("data/documents.csv", out.getvalue().encode()), *members[index + 1:],
            ("documents/" + target, payload)]


def _member_name(data: st.DataObject, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    index = data.draw(st.integers(0, len(members) - 1), label="member")
    new = data.draw(st.sampled_from([
        "/tmp/" + OUTSIDE, "../" + OUTSIDE, "data/../../" + OUTSIDE, "C:/" + OUTSIDE, "C:" + OUTSIDE,
        "data\\..\\" + OUTSIDE, "documents/../../../" + OUTSIDE, "data/" + "x" * 300 + ".csv", "data/.csv",
        "data/innovations.csv", "datapackage.json", "data/innovations.csv\x00.txt", "./datapackage.json",
    ]) | st.text(max_size=30), label="name")
    return [*members[:index], (new, members[index][1]), *members[index + 1:]]


def _member_bytes(data: st.DataObject, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    index = data.draw(st.integers(0, len(members) - 1), label="member")
    name, raw = members[index]
    how = data.draw(st.sampled_from(["random", "truncate", "flip", "empty", "huge-line"]), label="how")
    if how == "random":
        raw = data.draw(st.binary(max_size=200), label="bytes")
    elif how == "truncate":
        raw = raw[:data.draw(st.integers(0, max(len(raw) - 1, 0)), label="cut")]
    elif how == "flip" and raw:
        at = data.draw(st.integers(0, len(raw) - 1), label="at")
        raw = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255), label="xor")]) + raw[at + 1:]
    elif how == "empty":
        raw = b""
    else:
        raw = raw + b"\r\n" + b'"' + b"y" * 200_000
    return [*members[:index], (name, raw), *members[index + 1:]]


def _descriptor(data: st.DataObject, members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    index = next((i for i, (name, _b) in enumerate(members) if name == "datapackage.json"), None)
    try:
        descriptor = json.loads(members[index][1]) if index is not None else None
    except (ValueError, RecursionError):
        descriptor = None
    if not isinstance(descriptor, dict):
        return members  # an earlier mutation already broke it
    how = data.draw(st.sampled_from(["deep", "origin", "format", "resources", "level", "key", "wide"]), label="how")
    if how == "deep":
        depth = data.draw(st.sampled_from([50, 200, 5000, 100_000]), label="depth")
        raw = ("[" * depth + "]" * depth).encode()
        descriptor = None
    elif how == "origin":
        descriptor["x-piu-origin"] = data.draw(st.sampled_from([
            {"instance_code": "ville-b"}, {"instance_code": "../../x <b>"}, {"instance_code": "x" * 5000},
            {"instance_code": ""}, {"instance_code": 5}, {"instance_code": ["a"]}, "ville-a", None, []]),
            label="origin")
    elif how == "format":
        descriptor["x-piu-format"] = data.draw(st.sampled_from([
            {"name": "piu-registre", "version": "99.0"}, {"name": "piu-registre", "version": "1"},
            {"name": "piu-registre", "version": "a.b"}, {"name": "piu-registre", "version": None},
            {"name": "piu-registre", "version": "1.0"}, {"name": "autre"}, "1.0", None]), label="format")
    elif how == "resources":
        descriptor["resources"] = data.draw(st.sampled_from([
            None, {}, "x", [None], [{"name": "innovations", "path": "/etc/passwd"}],
            [{"name": "innovations", "path": "../" + OUTSIDE}], []]), label="resources")
    elif how == "level":
        descriptor["x-piu-level"] = data.draw(st.sampled_from(["private", "public", "", 7, None]), label="level")
    elif how == "key":
        key = data.draw(st.sampled_from(sorted(descriptor)), label="key")
        descriptor.pop(key)
    else:
        # 9 000 × 1 000 characters: just over the importer's 8 MB limit (70 MB said no more, and cost a
        # second an input to write, hash and zip)
        descriptor["x-wide"] = ["x" * 1000] * data.draw(st.sampled_from([10, 9_000]), label="width")
    if descriptor is not None:
        raw = json.dumps(descriptor).encode()
    return [*members[:index], ("datapackage.json", raw), *members[index + 1:]]


MUTATIONS: dict[str, Callable[[st.DataObject, list[tuple[str, bytes]]], list[tuple[str, bytes]]]] = {
    "cell": _csv_cell, "document": _document_row, "name": _member_name, "bytes": _member_bytes,
    "descriptor": _descriptor,
}


# --------------------------------------------------------------------------- what must not change

def _state(root: Path, home: Path) -> dict[str, str]:
    """Every file under the cities' folder: those of the victim's data directory by content, the
    others by name (the origin's register may still be checkpointing its own WAL)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.endswith("-shm"):  # the WAL index is shared memory, not data
            continue
        found[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest()
                                              if path.is_relative_to(home) else "")
    return found


def _outside_targets(root: Path) -> list[Path]:
    return [Path("/tmp") / OUTSIDE, Path("/") / OUTSIDE, root.parent / OUTSIDE, root.parent.parent / OUTSIDE,
            root / OUTSIDE, Path(f"C:/{OUTSIDE}"), Path(f"C:{OUTSIDE}")]


@pytest.mark.parametrize("lane", range(LANES))
@settings(max_examples=max(EXAMPLES // LANES, 1), deadline=None, database=None, phases=PHASES,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_bundle_is_refused_cleanly_or_imported_safely(world, lane, data):
    victim, root = world["victim"], world["root"]
    home = Path(victim.instance_path)
    members = list(world["seed"])
    for _ in range(data.draw(st.integers(1, 2), label="mutations")):
        kind = data.draw(st.sampled_from(sorted(MUTATIONS)), label="kind")
        members = MUTATIONS[kind](data, members)
    fix = data.draw(st.sampled_from(["checksums+signature", "checksums+signature", "checksums", "none"]), label="fix")
    if fix != "none":
        members = refresh_checksums(members)
    if fix == "checksums+signature":
        members = forge_signature(members, data.draw(st.sampled_from(["forger", "absent", "garbage"]), label="sig"))
    bundle = root.parent / f"incoming-{lane}.zip"
    bundle.write_bytes(_zip(members) if data.draw(st.integers(0, 9), label="raw") else
                       _flip_raw(_zip(members), data))

    before = _state(root, home)
    outcome = _import_and_roll_back(victim, bundle)
    after = _state(root, home)
    for target in _outside_targets(root):
        assert not target.exists(), f"a file was written outside the data directory: {target}"
    if outcome == "refused":
        assert after == before, "a refused bundle changed the data directory"
    else:  # accepted, then rolled back: only the attachments it stored may remain
        extra = set(after) - set(before)
        assert all(p.startswith("ville-b/uploads/") for p in extra), extra
        for name in extra:
            (root / name).unlink()


def _flip_raw(raw: bytes, data: st.DataObject) -> bytes:
    at = data.draw(st.integers(0, len(raw) - 1), label="raw-at")
    return raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:]


_last_refusal: list[str] = []
OUTCOMES: Counter[str] = Counter()
REFUSALS: Counter[str] = Counter()


def _import_and_roll_back(app, bundle: Path) -> str:
    """Import as the CLI and the page do; never commit. Return refused or accepted.

    The backup an import takes once its preview found it valid is only noted (the backups have
    tests of their own): a refusal after it would be a bundle the preview called valid and the
    apply refused, which must never happen."""
    backed_up: list[bool] = []
    with app.test_request_context(), writing():
        try:
            exchange.import_bundle(bundle, username="fuzz", uploads=Path(app.config["PIU_UPLOADS_DIR"]),
                                   backup=lambda: backed_up.append(True))
            OUTCOMES["accepted"] += 1
            return "accepted"
        except DomainError as exc:
            assert str(exc).strip(), "a refusal must say why"
            assert not backed_up, f"the preview found the bundle valid, then the apply refused it: {exc}"
            _last_refusal[:] = [str(exc), *getattr(exc, "problems", [])]
            OUTCOMES["refused"] += 1
            REFUSALS[re.sub(r"\d+|«[^»]*»|\([^)]*\)", "…", str(exc))[:90]] += 1
            return "refused"
        finally:
            db.session.rollback()
            db.session.remove()


def test_the_seed_bundle_itself_imports(world):
    """The mutations start from a bundle that is right: otherwise every input would be refused at once."""
    assert _import_and_roll_back(world["victim"], _write(world["root"].parent / "seed-copy.zip", _zip(world["seed"]))) \
        == "accepted", _last_refusal


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
