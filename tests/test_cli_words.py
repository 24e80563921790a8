"""The `piu` command speaks French: its sentences in words, click's own messages, no Alembic noise;
`piu --version`; `piu setup` installs a register without a browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from piu_app import __version__
from piu_app.cli import main

PASSWORD = "correct-horse-battery"


def _piu(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PIU_")} | {"PIU_HOME": str(home), **env}
    return subprocess.run([sys.executable, "-c", "from piu_app.cli import main; main(prog_name='piu')", *args],
                          env=environ, capture_output=True, text=True, timeout=120)


def test_version_and_help_in_french():
    runner = CliRunner()
    result = runner.invoke(main, ["--version"], prog_name="piu")
    assert result.exit_code == 0 and result.output.strip() == f"piu {__version__}"
    result = runner.invoke(main, ["--help"], prog_name="piu")
    assert result.exit_code == 0
    assert "Utilisation : piu" in result.output and "Afficher cette aide et quitter." in result.output
    assert "Commandes:" in result.output and "setup" in result.output
    assert "Show this message" not in result.output and "Usage:" not in result.output


def test_usage_errors_in_french():
    runner = CliRunner()
    result = runner.invoke(main, ["export", "--level", "bogus"], prog_name="piu")
    assert result.exit_code == 2
    assert "Erreur : Valeur invalide pour '--level'" in result.output and "n'est pas l'une des valeurs" in result.output
    assert "Essayez « piu export --help » pour l'aide." in result.output
    result = runner.invoke(main, ["nope"], prog_name="piu")
    assert "Commande inconnue : 'nope'." in result.output
    result = runner.invoke(main, ["setup", "--city", "X"], prog_name="piu")
    assert result.exit_code == 2 and "Option manquante" in result.output and "Missing" not in result.output


def test_every_click_module_we_translate_still_asks_gettext():
    """A click upgrade that renames its message functions would put the command back in English."""
    import importlib

    from piu_app import cli_language

    for name in cli_language.CLICK_MODULES:
        assert importlib.import_module(name)._ is cli_language.gettext, name


def test_setup_installs_a_register_without_a_browser_and_refuses_a_second_time(tmp_path):
    home = tmp_path / "ville"
    result = _piu(home, "setup", "--city", "Ville de Ziguinchor", "--country", "Sénégal", "--code", "ziguinchor",
                  "--admin", "awa", PIU_ADMIN_PASSWORD=PASSWORD)
    assert result.returncode == 0, result.stderr
    assert "Ville de Ziguinchor (SN)" in result.stdout and "« ziguinchor »" in result.stdout
    # no Alembic line on the console, on the first command (which migrates) as on the next ones
    assert "Context impl" not in result.stderr and "Running upgrade" not in result.stderr
    assert "Context impl" in (home / "logs" / "piu.log").read_text()  # kept in the log file
    again = _piu(home, "setup", "--city", "Autre", "--country", "CI", "--code", "autre", "--admin", "bob",
                 PIU_ADMIN_PASSWORD=PASSWORD)
    assert again.returncode == 1 and "déjà installé" in again.stderr and "Rien n'a été changé." in again.stderr
    assert "Context impl" not in again.stderr and "Traceback" not in again.stderr

    from piu_app import create_app
    from piu_app.services import instance, users

    app = create_app({"TESTING": True}, instance_path=home)
    with app.app_context():
        settings = instance.current()
        assert (settings.city_name, settings.country_code, settings.instance_code) == \
            ("Ville de Ziguinchor", "SN", "ziguinchor")
        [user] = users.all_users()
        from werkzeug.security import check_password_hash

        assert (user.username, user.role) == ("awa", "admin") and check_password_hash(user.password_hash, PASSWORD)


@pytest.mark.parametrize(("args", "message"), [
    (["--country", "Atlantide"], "Pays inconnu : « Atlantide »"),
    (["--country", "SN", "--code", "X!"], "Le code d'instance comporte"),
])
def test_setup_refuses_bad_input_clearly(tmp_path, args, message):
    base = {"--city": "Ville", "--country": "SN", "--code": "ma-ville", "--admin": "awa"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = _piu(tmp_path / "h", "setup", *[x for pair in base.items() for x in pair], PIU_ADMIN_PASSWORD=PASSWORD)
    assert result.returncode == 1 and message in result.stderr and "Rien n'a été changé." in result.stderr


def test_setup_without_a_password_writes_nothing(tmp_path):
    result = _piu(tmp_path / "h", "setup", "--city", "V", "--country", "SN", "--code", "ma-ville", "--admin", "a")
    assert result.returncode == 2 and "PIU_ADMIN_PASSWORD" in result.stderr
    assert not (tmp_path / "h" / "piu.sqlite3").exists()


def test_demo_and_accounts_in_words(home):
    runner = CliRunner()
    result = runner.invoke(main, ["demo"], prog_name="piu")
    assert result.exit_code == 0, result.output
    assert "7 territoires" in result.output and "30 innovations" in result.output
    assert "territories" not in result.output
    result = runner.invoke(main, ["create-admin", "--username", "bob", "--password", PASSWORD, "--role", "editor"])
    assert "Compte « bob » créé (éditeur)." in result.output
