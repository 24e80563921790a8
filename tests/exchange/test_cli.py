"""`piu export`, `piu import [--dry-run]` and `piu undo-import` on real data directories."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def _piu(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIU_")} | {"PIU_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", "from piu_app.cli import main; main()", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_export_then_import_dry_run_apply_again_and_undo(tmp_path):
    port_sable, other = tmp_path / "port-sable", tmp_path / "other"
    assert _piu(port_sable, "demo").returncode == 0
    bundle = tmp_path / "port-sable.zip"
    result = _piu(port_sable, "export", "--out", str(bundle))
    assert result.returncode == 0 and bundle.is_file(), result.stderr
    assert "niveau réseau" in result.stdout and "network" not in result.stdout  # in words, not the code

    # a second city: its first import is a dry run, which writes nothing
    code = ("from piu_app import launcher, paths; from piu_app.database import writing; "
            "from piu_app.extensions import db; from piu_app.services import instance; "
            "app = launcher.prepare(paths.data_dir()); ctx = app.app_context(); ctx.push(); "
            "w = writing(); w.__enter__(); "
            "instance.configure(city_name='Autre', country_code='CI', instance_code='autre'); db.session.commit()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIU_")} | {"PIU_HOME": str(other)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=120)
    dry = _piu(other, "import", "--dry-run", str(bundle))
    assert dry.returncode == 0 and "Essai à blanc" in dry.stdout and "innovations" in dry.stdout
    applied = _piu(other, "import", str(bundle))
    assert applied.returncode == 0, applied.stderr
    batch = re.search(r"piu undo-import (\S+)", applied.stdout).group(1)
    assert list((other / "backups").glob("piu-import-*.zip")), "a backup is taken before the import"
    assert "Rien à importer" in _piu(other, "import", str(bundle)).stdout
    assert _piu(other, "undo-import", batch).returncode == 0


def test_a_bad_file_is_refused_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    result = _piu(tmp_path / "home", "import", str(bad))
    assert result.returncode == 2
    assert "Paquet refusé" in result.stderr and "Rien n'a été écrit" in result.stderr


def test_imports_lists_every_import_and_undo_names_what_blocks_it(tmp_path):
    """`piu imports` lists each import with its id, date, file, counts and whether it can be undone;
    `piu undo-import` of an import whose records changed since says which record, and by what."""
    home = tmp_path / "ville"
    code = ("from piu_app import launcher, paths; from piu_app.database import writing; "
            "from piu_app.extensions import db; from piu_app.exchange import spreadsheets as ss; "
            "from piu_app.registry import RECORD_TYPES as R; from piu_app.services import imports, instance, records; "
            "app = launcher.prepare(paths.data_dir()); ctx = app.test_request_context(); ctx.push(); "
            "w = writing(); w.__enter__(); "
            "instance.configure(city_name='Ville', country_code='SN', instance_code='ville'); db.session.commit(); "
            "t = ss.read_table('Nom;Type\\nLumisol;association\\nAutre;association\\n'.encode()); "
            "b = ss.import_rows(R['organisations'], t, {'columns': {'Nom': 'name', 'Type': 'org_type'}}, "
            "username='awa', filename='porteurs.csv', sha256='x'); imports.finish(b); db.session.commit(); "
            "o = db.session.scalars(db.select(R['organisations'].model).filter_by(name='Lumisol')).one(); "
            "records.update(R['organisations'], o, {'name': 'Lumisol SA'}, username='moussa'); db.session.commit(); "
            "print(b.uid)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIU_")} | {"PIU_HOME": str(home)}
    batch = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True,
                           timeout=120).stdout.split()[-1]
    listed = _piu(home, "imports")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if batch in line)
    assert "porteurs.csv" in line and "2 nouvelle(s)" in line and "non annulable" in line and "Lumisol SA" in line
    refused = _piu(home, "undo-import", batch)
    assert refused.returncode == 1
    assert "Lumisol SA" in refused.stderr and "moussa" in refused.stderr and "piu imports" in refused.stderr
