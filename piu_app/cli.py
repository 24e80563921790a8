"""The `piu` command: each sub-command parses its arguments and calls one service."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import __version__, cli_language, paths

cli_language.install()  # click's own messages (usage, --help, errors) in French, like the command's own

LEVELS = {"network": "réseau", "public": "public"}
ROLES = {"admin": "administrateur", "editor": "éditeur", "reader": "lecteur"}


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]},
             subcommand_metavar="[COMMANDE] [ARGUMENTS]...")
@click.version_option(__version__, "--version", prog_name="piu", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """PIU — le registre de l'innovation urbaine de votre ville. Sans commande : démarre et ouvre le navigateur."""
    if ctx.invoked_subcommand is None:
        from . import launcher

        sys.exit(launcher.main())


@main.command()
@click.option("--host", default=None, metavar="ADRESSE", help="Adresse d'écoute (127.0.0.1 par défaut).")
@click.option("--port", type=int, default=None, metavar="PORT", help="Port (5080 par défaut ; 0 = un port libre).")
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
        details = ", ".join(f"{n} {_type_words(key, n)}" for key, n in added.items())
    click.echo(f"Démonstration : {total} fiches ajoutées ({details})." if added
               else "Démonstration : déjà chargée, rien d'ajouté.")


def _type_words(key: str, n: int = 2) -> str:
    """A record type in words, in lower case (« 7 territoires », « 1 innovation »); needs an app context."""
    from .registry import RECORD_TYPES

    rt = RECORD_TYPES.get(key)
    if rt is None:
        return {"documents": "pièces jointes", "workshops": "atelier" if n == 1 else "ateliers"}.get(key, key)
    words = str(rt.label if n == 1 else rt.label_plural)
    return words[:1].lower() + words[1:]


@main.command()
@click.option("--city", required=True, metavar="NOM", help="Nom de la ville (par exemple « Ville de Ziguinchor »).")
@click.option("--country", required=True, metavar="PAYS", help="Pays : son nom ou son code ISO à deux lettres (Sénégal ou SN).")
@click.option("--code", "instance_code", required=True, metavar="CODE",
              help="Code de l'instance, court et définitif : 3 à 64 lettres minuscules, chiffres et tirets.")
@click.option("--admin", "admin_username", required=True, metavar="IDENTIFIANT", help="Identifiant du premier administrateur.")
@click.option("--password", "password_option", default=None, metavar="MOT_DE_PASSE",
              help="Son mot de passe (10 caractères au moins). Mieux : la variable d'environnement "
                   "PIU_ADMIN_PASSWORD, qu'aucune liste de processus ne montre.")
def setup(city: str, country: str, instance_code: str, admin_username: str, password_option: str | None) -> None:
    """Installer un registre sans navigateur (installation scriptée) : la ville et son premier administrateur.

    Refusé si le registre est déjà installé. Exemple :
    PIU_ADMIN_PASSWORD=… piu setup --city "Ville de Ziguinchor" --country SN --code ziguinchor --admin awa
    """
    from .database import writing
    from .extensions import db
    from .services import DomainError
    from .services import instance as instance_service

    password = password_option if password_option is not None else os.environ.get("PIU_ADMIN_PASSWORD", "")
    if not password:
        _fail("Mot de passe manquant : donnez-le par la variable d'environnement PIU_ADMIN_PASSWORD "
              "(ou l'option --password). Rien n'a été changé.", code=2)
    app = _app()
    with app.test_request_context(), writing():
        try:
            user = instance_service.first_setup(city_name=city, country=country, instance_code=instance_code,
                                                admin_username=admin_username, admin_password=password)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            problems = [str(m) for m in getattr(exc, "field_errors", {}).values()]
            _fail("\n".join([f"Installation refusée : {exc.message}", *(f"  - {p}" for p in problems),
                              "Rien n'a été changé."]))
        settings = instance_service.current()
        click.echo(f"Registre de {settings.city_name} ({settings.country_code}) installé, code d'instance "
                   f"« {settings.instance_code} » ; administrateur « {user.username} ». Démarrez-le avec « piu ».")


@main.command("create-admin")
@click.option("--username", prompt="Identifiant", metavar="IDENTIFIANT", help="Identifiant du compte.")
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
        click.echo(f"Compte « {user.username} » créé ({ROLES.get(user.role, user.role)}).")


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
@click.option("--out", metavar="FICHIER", type=click.Path(dir_okay=False, path_type=Path), default=None,
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
@click.argument("file", metavar="FICHIER", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Ne pas demander de confirmation.")
def restore(file: Path, yes: bool) -> None:
    """Remplacer la base par la sauvegarde FICHIER (chemin, ou nom d'un fichier du dossier des sauvegardes).

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
@click.option("--out", metavar="FICHIER", type=click.Path(dir_okay=False, path_type=Path), default=None,
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
    size = f"{summary.size / 1e6:.1f}".replace(".", ",")
    click.echo(f"Paquet écrit : {target} ({shared} fiches, {size} Mo, niveau {LEVELS[level]}).")


@main.command("import")
@click.argument("file", metavar="FICHIER", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Vérifier et montrer ce qui changerait, sans rien écrire.")
def import_bundle(file: Path, dry_run: bool) -> None:
    """Importer le paquet d'échange FICHIER d'une autre ville (vérifié d'abord, sauvegarde avant d'écrire)."""
    from flask_babel import gettext as _
    from sqlalchemy.exc import SQLAlchemyError

    from .database import is_disk_full, release_journal, writing
    from .exchange.bundle_import import BundleError
    from .extensions import db
    from .services import DomainError, exchange, imports

    app = _app()
    with app.test_request_context(), writing():
        try:
            if dry_run:
                plan = exchange.preview(file)
                plan.bundle.close()
                batch_uid = None
            else:
                backup = imports.backup_taker(db.engine, app.config["PIU_BACKUPS_DIR"], app.config["BACKUP_KEEP"])
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
        _report_import(plan, dry_run=dry_run, batch_uid=batch_uid)


def _report_import(plan, *, dry_run: bool, batch_uid: str | None) -> None:
    """Say what an import found and did, in words (inside the app context: the labels are translated)."""
    from .exchange.bundle_import import reasons

    bundle = plan.bundle
    click.echo(f"Paquet de {bundle.origin_name or '?'} ({bundle.origin_instance}), "
               f"niveau {LEVELS.get(bundle.level, bundle.level)}.")
    fingerprint = bundle.signature.fingerprint if bundle.signature else ""
    click.echo({"verified": f"Signé avec la clé enregistrée pour cette ville ({fingerprint}).",
                "first": f"Premier paquet signé de cette ville : clé {fingerprint} (comparez-la avec la ville par "
                         "téléphone ; elle est enregistrée à l'import).",
                "own": "Paquet de votre propre ville : ses fiches ne remplacent jamais les vôtres."}
               .get(plan.trust, "Paquet non signé : non vérifié."))
    for origin, count in plan.unverified.items():
        click.echo(f"  {count} fiche(s) de {origin} relayée(s) sans pouvoir être vérifiée(s).")
    click.echo(f"{'fiches':<26}{'nouvelles':>10}{'mises à jour':>14}{'inchangées':>12}{'ignorées':>10}{'conflits':>10}")
    for table, row in plan.counts().items():
        if any(row.values()):
            name = _type_words(table)[:25]
            click.echo(f"{name:<26}{row['created']:>10}{row['updated']:>14}{row['unchanged']:>12}"
                       f"{row['skipped']:>10}{row['conflict']:>10}")
    labels = reasons()
    for decisions in plan.decisions.values():
        for d in decisions.values():
            if d.action in ("skipped", "conflict") and d.reason != "own_record":
                click.echo(f"  {_type_words(d.table, 1)} « {d.title or d.uid} » : {labels.get(d.reason, d.reason)}")
    if dry_run:
        click.echo("Essai à blanc : rien n'a été écrit.")
    elif batch_uid is None:
        click.echo("Rien à importer : tout était déjà là.")
    else:
        click.echo(f"Import appliqué (identifiant {batch_uid}) ; pour l'annuler : piu undo-import {batch_uid}")


@main.command("imports")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Nombre d'imports montrés, les plus récents d'abord.")
def list_imports(limit: int) -> None:
    """Lister les imports (paquets et tableurs) : identifiant, date, fichier, fiches, annulable ou non."""
    from flask_babel import gettext as _

    from .services import imports

    app = _app()
    with app.test_request_context():
        batches = imports.recent(limit)
        if not batches:
            click.echo(_("Aucun import pour l'instant."))
            return
        for batch in batches:
            counts = imports.counts_of(batch)
            kind = _("paquet") if batch.kind == "bundle" else _("tableur")
            if batch.status != "applied":
                state = _("annulé")
            else:
                found = imports.blockers(batch, limit=1)
                state = _("annulable") if not found else _("non annulable : %(why)s", why=found[0].describe())
            click.echo(_("%(uid)s  %(when)s  %(kind)s « %(file)s »  %(created)d nouvelle(s), %(updated)d mise(s) à "
                         "jour  — %(state)s", uid=batch.uid, when=f"{batch.created_at:%Y-%m-%d %H:%M}", kind=kind,
                         file=batch.filename, created=counts["created"], updated=counts["updated"], state=state))


@main.command("undo-import")
@click.argument("batch_uid", metavar="IDENTIFIANT")
def undo_import(batch_uid: str) -> None:
    """Annuler un import : retirer ce qu'il a apporté, rétablir ce qu'il a remplacé."""
    from flask_babel import gettext as _

    from .database import writing
    from .extensions import db
    from .services import DomainError, imports

    app = _app()
    with app.test_request_context(), writing():
        try:
            imports.undo(batch_uid, username="cli", uploads=app.config["PIU_UPLOADS_DIR"])
            db.session.commit()
        except imports.ImportBlockedError as exc:
            db.session.rollback()
            click.echo(_("Cet import ne peut pas être annulé :"), err=True)
            for blocker in exc.blockers:
                click.echo(f"  - {blocker.describe()}", err=True)
            click.echo(_("Annulez d'abord ces changements (ou l'import qui les a faits) ; « piu imports » liste "
                         "les imports."), err=True)
            sys.exit(1)
        except DomainError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message) from exc
    click.echo("Import annulé.")
