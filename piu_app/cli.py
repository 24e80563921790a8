"""The `piu` command: each sub-command parses its arguments and calls one service."""

from __future__ import annotations

import sys
from pathlib import Path

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


def _fail(message: str, code: int = 1) -> None:
    """End the command with one clear sentence (in the register's language) and no traceback."""
    click.echo(message, err=True)
    sys.exit(code)


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
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fichier à écrire (par défaut : une sauvegarde « manuelle » dans le dossier des sauvegardes).")
def backup(out: Path | None) -> None:
    """Sauvegarder la base et les pièces jointes (un fichier .zip) maintenant, même pendant que PIU tourne."""
    from . import create_app
    from .extensions import db
    from .services import DomainError, backups

    app = create_app(instance_path=paths.data_dir())
    with app.app_context():
        try:
            target = backups.take_manual(db.engine, app.config["PIU_BACKUPS_DIR"], out=out)
        except DomainError as exc:
            _fail(exc.message)
    click.echo(str(target))


_YES = {"o", "oui", "y", "yes"}


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Ne pas demander de confirmation.")
def restore(file: Path, yes: bool) -> None:
    """Remplacer la base par la sauvegarde FILE (chemin, ou nom d'un fichier du dossier des sauvegardes).

    L'état actuel est d'abord sauvegardé (« avant restauration »). PIU doit être fermé.
    """
    from . import create_app
    from .database import writing
    from .extensions import db
    from .launcher import InstanceLock
    from .services import DomainError, backups

    data_dir = paths.data_dir()
    lock = InstanceLock(data_dir)
    if not lock.acquire():
        raise click.ClickException("PIU est ouvert sur ce dossier de données : fermez-le avant de restaurer "
                                   "(ou restaurez depuis la page « Sauvegardes » de l'application).")
    try:
        app = create_app(instance_path=data_dir)
        if not file.exists() and (app.config["PIU_BACKUPS_DIR"] / file.name).is_file():
            file = app.config["PIU_BACKUPS_DIR"] / file.name
        with app.app_context(), writing():
            try:
                revision = backups.check_file(file)
                if not yes and click.prompt(f"Remplacer la base de {data_dir} par {file} (schéma {revision}) ? [o/N]",
                                            default="", show_default=False).strip().lower() not in _YES:
                    raise click.ClickException("Restauration annulée : rien n'a été changé.")
                result = backups.restore(db.engine, file, app.config["PIU_BACKUPS_DIR"],
                                         keep=app.config["BACKUP_KEEP"])
            except DomainError as exc:
                raise click.ClickException(exc.message) from exc
    finally:
        lock.release()
    click.echo(f"Sauvegarde restaurée : {file}" + (" (schéma mis à jour)" if result.upgraded else ""))
    if result.safety is not None:
        click.echo(f"L'état précédent est gardé dans {result.safety}")


@main.command()
def where() -> None:
    """Afficher le dossier de données."""
    click.echo(str(paths.data_dir()))


@main.command("export")
@click.option("--level", type=click.Choice(["network", "public"]), default="network", show_default=True,
              help="network : fiches « Réseau » et « Public » ; public : fiches « Public » seulement (données ouvertes).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fichier .zip à écrire (par défaut <code-instance>-<AAAAMMJJ>.registre.zip ici).")
@click.option("--documents", is_flag=True, help="Joindre les fichiers des pièces jointes partagées.")
def export_bundle(level: str, out: Path | None, documents: bool) -> None:
    """Exporter un paquet d'échange (ce que la ville partage au niveau choisi ; jamais les fiches privées)."""
    from flask_babel import gettext as _

    from .database import is_disk_full, writing
    from .services import exchange
    from .services import instance as instance_service

    app = _app()
    with app.test_request_context(), writing():
        if instance_service.current() is None:
            _fail(_("Ce registre n'est pas encore installé (dossier de données %(path)s) : rien à exporter. "
                    "Lancez d'abord PIU (commande « piu ») et terminez la mise en route.",
                    path=str(app.config["PIU_DATA_DIR"])))
        target = out or Path.cwd() / exchange.default_filename()
        if not target.parent.is_dir():
            _fail(_("Le dossier %(path)s n'existe pas : créez-le ou choisissez un autre emplacement.",
                    path=str(target.parent)))
        try:
            summary = exchange.export(level, target, uploads=app.config["PIU_UPLOADS_DIR"],
                                      include_documents=documents)
        except OSError as exc:
            if is_disk_full(exc):
                _fail(_("Le disque est plein : le paquet n'a pas été écrit. Libérez de la place puis recommencez."))
            _fail(_("Le paquet n'a pas pu être écrit dans %(path)s (%(error)s).", path=str(target),
                    error=exc.strerror or str(exc)))
    from .exchange.bundle_format import TABLE_ORDER

    shared = sum(n for name, n in summary.rows.items() if name in TABLE_ORDER)
    click.echo(f"Paquet écrit : {target} ({shared} fiches, {summary.size / 1e6:.1f} Mo, niveau {level}).")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Vérifier et montrer ce qui changerait, sans rien écrire.")
def import_bundle(file: Path, dry_run: bool) -> None:
    """Importer le paquet d'échange FILE d'une autre ville (vérifié d'abord, sauvegarde avant d'écrire)."""
    from flask_babel import gettext as _
    from sqlalchemy.exc import SQLAlchemyError

    from .database import is_disk_full, release_journal, writing
    from .exchange.bundle_import import BundleError, reasons
    from .extensions import db
    from .services import DomainError, backups, exchange

    app = _app()
    with app.test_request_context(), writing():
        try:
            if dry_run:
                plan = exchange.preview(file)
                plan.bundle.close()
                batch_uid = None
            else:
                def backup() -> None:
                    backups.take(db.engine, app.config["PIU_BACKUPS_DIR"], reason="import",
                                 keep=app.config["BACKUP_KEEP"])
                plan, batch = exchange.import_bundle(file, username="cli", uploads=app.config["PIU_UPLOADS_DIR"],
                                                     backup=backup)
                batch_uid = batch.uid if batch else None
                db.session.commit()
        except BundleError as exc:
            db.session.rollback()
            click.echo(f"Paquet refusé : {exc.message}", err=True)
            for problem in exc.problems:
                click.echo(f"  - {problem}", err=True)
            click.echo("Rien n'a été écrit.", err=True)
            sys.exit(2)
        except DomainError as exc:  # e.g. the backup taken before writing could not be written
            db.session.rollback()
            _fail(exc.message)
        except (OSError, SQLAlchemyError) as exc:
            if not is_disk_full(exc):
                raise
            db.session.rollback()
            release_journal(db.engine)  # give back the space the failed transaction took
            _fail(_("Le disque est plein : l'import n'a rien écrit. Libérez de la place (par exemple en "
                    "supprimant d'anciennes sauvegardes) puis recommencez."))
    bundle = plan.bundle
    click.echo(f"Paquet de {bundle.origin_name or '?'} ({bundle.origin_instance}), niveau {bundle.level}.")
    fingerprint = bundle.signature.fingerprint if bundle.signature else ""
    click.echo({"verified": f"Signé avec la clé enregistrée pour cette ville ({fingerprint}).",
                "first": f"Premier paquet signé de cette ville : clé {fingerprint} (comparez-la avec la ville par "
                         "téléphone ; elle est enregistrée à l'import).",
                "own": "Paquet de votre propre ville : ses fiches ne remplacent jamais les vôtres."}
               .get(plan.trust, "Paquet non signé : non vérifié."))
    for origin, count in plan.unverified.items():
        click.echo(f"  {count} fiche(s) de {origin} relayée(s) sans pouvoir être vérifiée(s).")
    click.echo(f"{'table':<26}{'nouvelles':>10}{'mises à jour':>14}{'inchangées':>12}{'ignorées':>10}{'conflits':>10}")
    for table, row in plan.counts().items():
        if any(row.values()):
            click.echo(f"{table:<26}{row['created']:>10}{row['updated']:>14}{row['unchanged']:>12}"
                       f"{row['skipped']:>10}{row['conflict']:>10}")
    labels = reasons()
    for decisions in plan.decisions.values():
        for d in decisions.values():
            if d.action in ("skipped", "conflict") and d.reason != "own_record":
                click.echo(f"  {d.table} {d.title or d.uid} : {labels.get(d.reason, d.reason)}")
    if dry_run:
        click.echo("Essai à blanc : rien n'a été écrit.")
    elif batch_uid is None:
        click.echo("Rien à importer : tout était déjà là.")
    else:
        click.echo(f"Import appliqué (identifiant {batch_uid}) ; pour l'annuler : piu undo-import {batch_uid}")


@main.command("undo-import")
@click.argument("batch_uid")
def undo_import(batch_uid: str) -> None:
    """Annuler un import : retirer ce qu'il a apporté, rétablir ce qu'il a remplacé."""
    from .database import writing
    from .extensions import db
    from .services import DomainError, exchange

    app = _app()
    with app.test_request_context(), writing():
        try:
            exchange.undo(batch_uid, username="cli", uploads=app.config["PIU_UPLOADS_DIR"])
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message) from exc
    click.echo("Import annulé.")
