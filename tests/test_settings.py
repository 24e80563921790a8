"""Every setting is documented, and the secret key is generated per install."""

from __future__ import annotations

from pathlib import Path

from piu_app import create_app
from piu_app.config import SETTINGS

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_every_setting_has_help_and_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert setting.help.strip(), setting.name
        assert f"`PIU_{setting.name}`" in text, f"{setting.name} missing from docs/settings.md"


def test_secret_key_is_generated_once_per_install(tmp_path):
    first = create_app(instance_path=tmp_path).config["SECRET_KEY"]
    second = create_app(instance_path=tmp_path).config["SECRET_KEY"]
    other = create_app(instance_path=tmp_path / "other").config["SECRET_KEY"]
    assert first == second and first != other and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_data_directory_follows_piu_home(tmp_path, monkeypatch):
    from piu_app import paths

    monkeypatch.setenv("PIU_HOME", str(tmp_path / "home"))
    assert paths.data_dir() == (tmp_path / "home").resolve()
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith(str(tmp_path / "home" / "piu.sqlite3"))
