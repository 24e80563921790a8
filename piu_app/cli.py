"""The `piu` command: each sub-command parses its arguments and calls one service."""

from __future__ import annotations

import sys

import click

from . import paths


@click.group(invoke_without_command=True)
@click.pass_context
def main(ctx: click.Context) -> None:
    """PIU — le registre de l'innovation urbaine de votre ville. Sans commande : démarre et ouvre le navigateur."""
    if ctx.invoked_subcommand is None:
        from . import launcher

        sys.exit(launcher.main())


@main.command()
@click.option("--host", default=None, help="Adresse d'écoute (127.0.0.1 par défaut).")
@click.option("--port", type=int, default=None, help="Port (5080 par défaut ; 0 = un port libre).")
@click.option("--no-browser", is_flag=True, help="Ne pas ouvrir le navigateur.")
def serve(host: str | None, port: int | None, no_browser: bool) -> None:
    """Démarrer le serveur."""
    from . import launcher

    sys.exit(launcher.main(host=host, port=port, open_browser=not no_browser))


def _app():
    from . import launcher

    return launcher.prepare(paths.data_dir())


@main.command()
def demo() -> None:
    """Charger le registre de démonstration (ville fictive de Port-Sable). Sans doublon si relancé."""
    from .database import writing
    from .extensions import db
    from .services import demo as demo_service

    app = _app()
    with app.app_context(), writing():
        added = demo_service.load()
        db.session.commit()
    total = sum(added.values())
    click.echo(f"Démonstration : {total} fiches ajoutées" + (f" ({', '.join(f'{k} {v}' for k, v in added.items())})"
                                                                if added else " (déjà chargée)."))


@main.command("create-admin")
@click.option("--username", prompt="Identifiant", help="Identifiant du compte.")
@click.option("--password", prompt="Mot de passe", hide_input=True, confirmation_prompt=True,
              help="Mot de passe (10 caractères au moins).")
@click.option("--role", type=click.Choice(["admin", "editor", "reader"]), default="admin", show_default=True)
def create_admin(username: str, password: str, role: str) -> None:
    """Créer un compte (administrateur par défaut)."""
    from .database import writing
    from .extensions import db
    from .services import DomainError
    from .services import users as user_service

    app = _app()
    with app.app_context(), writing():
        try:
            user = user_service.create(username=username, password=password, role=role)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        db.session.commit()
        click.echo(f"Compte « {user.username} » créé ({user.role}).")


@main.command()
def reindex() -> None:
    """Reconstruire l'index de recherche à partir des fiches."""
    from .database import writing
    from .extensions import db
    from .services import search

    app = _app()
    with app.app_context(), writing():
        count = search.rebuild()
        db.session.commit()
    click.echo(f"Index reconstruit : {count} fiches.")


@main.command()
def where() -> None:
    """Afficher le dossier de données."""
    click.echo(str(paths.data_dir()))
