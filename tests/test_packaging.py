"""Cheap checks of the PyInstaller packaging (the real build runs with `python packaging/build.py`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "piu.spec"
DATA_FOLDERS = ("templates", "static", "translations", "migrations")


def _spec_tree() -> ast.Module:
    return ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))


def _string_constants(tree: ast.AST) -> list[str]:
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name]


def test_spec_is_valid_python() -> None:
    compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec")


@pytest.mark.parametrize("folder", DATA_FOLDERS)
def test_spec_bundles_every_data_folder(folder: str) -> None:
    assert (ROOT / "piu_app" / folder).is_dir(), f"piu_app/{folder} is gone: update packaging/piu.spec"
    patterns = _string_constants(_spec_tree())
    assert any(p == folder or p.startswith(f"{folder}/") for p in patterns), f"piu.spec does not bundle {folder}/"


def test_spec_ships_migration_scripts_as_source() -> None:
    """Alembic executes env.py and versions/*.py from their paths: they must be collected as .py data."""
    tree = _spec_tree()
    with_py = [call for call in _calls(tree, "collect_data_files")
               if any(kw.arg == "include_py_files" and getattr(kw.value, "value", False) for kw in call.keywords)]
    assert with_py, "no collect_data_files(..., include_py_files=True) for the migrations"
    assert any(s.startswith("migrations/") and s.endswith(".py") for call in with_py for s in _string_constants(call))


def test_spec_is_a_one_folder_console_build_named_piu() -> None:
    tree = _spec_tree()
    (exe,) = _calls(tree, "EXE")
    keywords = {kw.arg: kw.value for kw in exe.keywords}
    assert ast.literal_eval(keywords["name"]) == "piu"
    assert ast.literal_eval(keywords["exclude_binaries"]) is True
    assert ast.literal_eval(keywords["console"]) is True
    (collect,) = _calls(tree, "COLLECT")
    assert {kw.arg: ast.literal_eval(kw.value) for kw in collect.keywords if kw.arg == "name"} == {"name": "piu"}
    strings = _string_constants(tree)
    for module in ("flask_babel", "waitress", "sqlalchemy.dialects.sqlite", "logging.config"):
        assert module in strings, f"{module} missing from hiddenimports"
    assert _calls(tree, "collect_submodules"), "piu_app submodules are not collected"


def test_app_locales_have_babel_data() -> None:
    """The spec keeps only the CLDR data of piu_app.i18n.LOCALES (plus root): each must exist."""
    from babel import localedata

    from piu_app.i18n import LOCALES

    for locale in ("root", *LOCALES):
        assert localedata.exists(locale), locale


def test_entry_script_runs_the_cli() -> None:
    tree = ast.parse((PACKAGING / "piu_entry.py").read_text(encoding="utf-8"))
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert any(node.module == "piu_app.cli" and any(a.name == "main" for a in node.names) for node in imports)


def test_build_outputs_are_git_ignored() -> None:
    lines = (PACKAGING / ".gitignore").read_text(encoding="utf-8").split()
    assert "build/" in lines and "dist/" in lines


def test_build_script_help() -> None:
    result = subprocess.run([sys.executable, str(PACKAGING / "build.py"), "--help"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "--skip-build" in result.stdout
