"""Regenerate the exchange bundles kept as test fixtures in this folder.

    .venv/bin/python tests/data/bundles/make_bundles.py [OUT_DIR]     (default: this folder)

`valid-peer.registre.zip` is exported by the app itself, run on a throw-away data directory
(PIU_HOME) as the peer city "ville-pair" with a handful of network records; every other file is
that bundle broken in one way, in Python (zipfile), so that each is refused for one reason only:
where a mutation must not be caught by the checksums, the checksums are recomputed.
The outputs are committed; tests/exchange/test_hostile_bundles.py reads them, and checks that this
script still makes bundles refused for the same reasons.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
import struct
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
VALID = "valid-peer.registre.zip"
PEER_CODE = "ville-pair"

# Fixed identifiers, so that tests can name the records of the valid bundle.
UIDS = {
    "territory": "5e0c7a10-0000-4000-8000-000000000001",
    "organisation": "5e0c7a10-0000-4000-8000-000000000002",
    "innovation": "5e0c7a10-0000-4000-8000-000000000003",
    "experiment": "5e0c7a10-0000-4000-8000-000000000004",
    "lesson": "5e0c7a10-0000-4000-8000-000000000005",
}
NOWHERE_UID = "00000000-dead-4000-8000-000000000000"
BOMB_BYTES = 200 * 1024 * 1024

Files = dict[str, bytes]


# --------------------------------------------------------------------------- the valid bundle

def make_valid(out: Path) -> None:
    """Export a small network bundle of the peer city "ville-pair", made on a temporary data directory."""
    from piu_app import create_app, upgrade_database
    from piu_app.database import writing
    from piu_app.exchange.bundle_export import export_bundle
    from piu_app.extensions import db
    from piu_app.registry import RECORD_TYPES
    from piu_app.services import instance, records

    with tempfile.TemporaryDirectory(prefix="piu-make-bundles-") as home:
        previous = os.environ.get("PIU_HOME")
        os.environ["PIU_HOME"] = home
        try:
            app = create_app({"TESTING": True, "SECRET_KEY": "make-bundles"}, instance_path=Path(home))
            upgrade_database(app, backup=False)
            with app.test_request_context(), writing():
                instance.configure(city_name="Ville Pair", country_code="CI", instance_code=PEER_CODE)
                db.session.flush()

                def create(key: str, values: dict, uid: str) -> object:
                    return records.create(RECORD_TYPES[key], values, username="make-bundles", uid=uid)

                create("territories", {"name": "Bouaké-Nord", "level": "commune", "country_code": "CI"},
                       UIDS["territory"])
                create("organisations", {"name": "Énergie Solaire Pair", "org_type": "startup", "is_startup": True},
                       UIDS["organisation"])
                innovation = create("innovations", {
                    "name": "Éclairage public solaire à Bouaké", "tagline": "Candélabres autonomes, « made in CI »",
                    "themes": ["energy_climate"], "deployment_stage": "pilot"}, UIDS["innovation"])
                records.add_link(RECORD_TYPES["innovations"], innovation, "carriers",
                                 target_uid=UIDS["organisation"], role="carrier", username="make-bundles")
                create("experiments", {"title": "Pilote du quartier Commerce", "innovation": UIDS["innovation"],
                                       "territory": UIDS["territory"], "status": "ongoing",
                                       "start_date": dt.date(2024, 3, 1)}, UIDS["experiment"])
                create("lessons", {"title": "Leçons du pilote de Bouaké", "experiment": UIDS["experiment"],
                                   "date": dt.date(2024, 9, 15), "what_worked": "Maintenance confiée à une équipe locale."},
                       UIDS["lesson"])
                db.session.commit()
                export_bundle(out, level="network")
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        finally:
            if previous is None:
                os.environ.pop("PIU_HOME", None)
            else:
                os.environ["PIU_HOME"] = previous


# --------------------------------------------------------------------------- mutations

def read(path: Path) -> Files:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def reseal(files: Files) -> Files:
    """Recompute every hash (resources of datapackage.json, then checksums.sha256) after a change."""
    files = dict(files)
    package = json.loads(files["datapackage.json"])
    for resource in package.get("resources", []):
        data = files.get(resource.get("path", ""))
        if data is not None:
            resource["hash"], resource["bytes"] = f"sha256:{hashlib.sha256(data).hexdigest()}", len(data)
    files["datapackage.json"] = json.dumps(package, ensure_ascii=False, indent=2).encode("utf-8")
    listed = [line.partition("  ")[2] for line in files["checksums.sha256"].decode("utf-8").splitlines() if line]
    files["checksums.sha256"] = "".join(f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n"
                                        for name in listed if name in files).encode("utf-8")
    return files


def write(path: Path, files: Files, extra: Callable[[zipfile.ZipFile], None] | None = None) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data,
                        compress_type=zipfile.ZIP_DEFLATED)
        if extra is not None:
            extra(zf)


def replace(files: Files, name: str, old: bytes, new: bytes) -> Files:
    assert old in files[name], f"{old!r} not in {name}"
    return {**files, name: files[name].replace(old, new, 1)}


def _member(name: str, data: bytes, *, mode: int | None = None) -> Callable[[zipfile.ZipFile], None]:
    def add(zf: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        if mode is not None:
            info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return add


def _bomb(zf: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("data/zeros.csv", date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    block = bytes(1024 * 1024)
    with zf.open(info, "w") as fh:
        for _ in range(BOMB_BYTES // len(block)):
            fh.write(block)


def _future(files: Files) -> Files:
    package = json.loads(files["datapackage.json"])
    package["x-piu-format"]["version"] = "99.0"
    return reseal({**files, "datapackage.json": json.dumps(package, ensure_ascii=False, indent=2).encode("utf-8")})


def _append(files: Files, name: str, line: str) -> Files:
    return reseal({**files, name: files[name] + line.encode("utf-8")})


def _cp1252(files: Files, name: str) -> Files:
    text = files[name].decode("utf-8")
    assert any(ch in text for ch in "éÉèà"), "the re-encoded table must hold accents"
    return reseal({**files, name: text.encode("cp1252", "replace")})


def _damaged(valid: Path, member: str) -> bytes:
    """The archive with one member's compressed bytes overwritten: its directory is intact, its data is not."""
    data = bytearray(valid.read_bytes())
    with zipfile.ZipFile(valid) as zf:
        info = zf.getinfo(member)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start:start + info.compress_size] = b"\xff" * info.compress_size
    return bytes(data)


def _descriptor(files: Files, **changes: object) -> Files:
    package = json.loads(files["datapackage.json"])
    package.update(changes)
    return {**files, "datapackage.json": json.dumps(package, ensure_ascii=False, indent=2).encode("utf-8")}


def make_hostile(out: Path, valid: Path) -> list[Path]:
    """Write every broken bundle next to `valid`; return their paths."""
    files = read(valid)
    made: list[tuple[str, Files, Callable[[zipfile.ZipFile], None] | None]] = [
        ("traversal.zip", files, _member("data/../../evil.csv", b"pwned\n")),
        ("absolute.zip", files, _member("/etc/evil", b"pwned\n")),
        ("symlink.zip", files, _member("data/link.csv", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)),
        ("zipbomb.zip", files, _bomb),
        ("future-format.zip", _future(files), None),
        ("wrong-checksum.zip", replace(files, "data/organisations.csv", "Énergie Solaire Pair".encode(),
                                       "Énergie Solaire Pirate".encode()), None),
        ("broken-fk.zip", reseal(replace(files, "data/experiments.csv",
                                         f'"{UIDS["innovation"]}"'.encode(), f'"{NOWHERE_UID}"'.encode())), None),
        ("malformed-csv.zip", _append(files, "data/lessons.csv", f'{NOWHERE_UID},"quote never closed,x\r\n'), None),
        ("wrong-cell-count.zip", _append(files, "data/lessons.csv", f"{NOWHERE_UID},too,few\r\n"), None),
        ("wrong-encoding.zip", _cp1252(files, "data/innovations.csv"), None),
        ("huge-integer.zip", reseal(replace(files, "data/lessons.csv", b'Z","1","false",', b'Z","99999999999999999999","false",')),
         None),
        ("bad-descriptor.zip", _descriptor(files, resources="data/*.csv"), None),
        ("missing-datapackage.zip", {k: v for k, v in files.items() if k != "datapackage.json"}, None),
    ]
    paths = []
    for name, content, extra in made:
        write(out / name, content, extra)
        paths.append(out / name)
    data = valid.read_bytes()
    (out / "truncated.zip").write_bytes(data[: len(data) // 2])
    (out / "damaged.zip").write_bytes(_damaged(valid, "data/innovations.csv"))
    (out / "not-a-zip.zip").write_text("Ceci n'est pas un paquet d'échange, juste du texte.\n", encoding="utf-8")
    return [*paths, out / "truncated.zip", out / "damaged.zip", out / "not-a-zip.zip"]


def build(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    valid = out / VALID
    make_valid(valid)
    return [valid, *make_hostile(out, valid)]


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"{path.stat().st_size:>9}  {path.name}")
