"""Blueprints (thin: form → service → flash → redirect), access rules and error pages."""

from __future__ import annotations

from flask import Flask, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape

from .. import __version__
from ..database import MARK_END, MARK_START, reset_write_intent, set_write_intent
from ..extensions import db, login_manager
from ..i18n import current_lang
from ..registry import RECORD_TYPES
from ..services import (
    ConflictError,
    DomainError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    vocabularies,
)
from ..services import instance as instance_service
from ..services import records as record_service
from ..services import users as user_service
from .access import PUBLIC_ENDPOINTS, required_role


def register(app: Flask) -> None:
    from . import (
        admin,
        auth,
        backups,
        barriers,
        documents,
        exchange,
        imports,
        innovations,
        main,
        peers,
        records,
        room_admin,
        spreadsheets,
        workshop_reports,
        workshops,
    )

    app.register_blueprint(auth.bp)
    app.register_blueprint(main.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(documents.bp)
    app.register_blueprint(exchange.bp)
    app.register_blueprint(backups.bp)
    app.register_blueprint(peers.bp)
    app.register_blueprint(spreadsheets.bp)
    app.register_blueprint(imports.bp)
    app.register_blueprint(workshops.bp)
    app.register_blueprint(room_admin.bp)
    app.register_blueprint(workshop_reports.bp)
    # Record blueprints are made per app: a blueprint cannot gain routes once registered.
    for key, rt in RECORD_TYPES.items():
        bp = records.make_blueprint(rt)
        if key == "innovations":
            innovations.add_routes(bp)
        if key == "barriers":
            barriers.add_routes(bp)
        app.register_blueprint(bp)

    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Connectez-vous pour accéder au registre.")
    # The cookie carries the user's session token, checked at every request: logout, a password change
    # and a reset replace the token, so a copied cookie stops working at once.
    login_manager.user_loader(user_service.from_session_id)

    @app.before_request
    def _gatekeeper():
        # Writes start with BEGIN IMMEDIATE so that concurrent writers queue instead of failing.
        g._write_token = set_write_intent(request.method not in ("GET", "HEAD", "OPTIONS"))
        if _carries_nul():
            # Never typed by a person; PostgreSQL refuses it in any query (a 500), and a record holding
            # one made every peer refuse the city's bundle. Other control characters: see forms.base.
            raise InvalidInputError(_("Caractère de contrôle invisible interdit (%(code)s) : retirez-le "
                                      "(il vient souvent d'un copier-coller).", code="U+0000"))
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if instance_service.current() is None or user_service.count() == 0:
            return redirect(url_for("auth.setup"))
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if request.endpoint is not None and required_role(app, request.endpoint) is None:
            # Deny by default: a route that declares no role is a mistake, never an open door.
            app.logger.error("endpoint %s declares no required role: refused", request.endpoint)
            raise PermissionDeniedError(_("Votre rôle ne permet pas cette action."))
        return None

    @app.teardown_request
    def _reset_write_intent(_exc):
        token = g.pop("_write_token", None)
        if token is not None:
            reset_write_intent(token)

    @app.template_filter("highlight")
    def _highlight(snippet: str) -> Markup:
        """Escape a search snippet, then turn the index's match markers into <mark>."""
        return Markup(str(escape(snippet)).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>"))

    @app.template_filter("number")
    def _number(value: int) -> str:
        """A whole number as the reader writes it: 113 494 in French, 113,494 in English."""
        from flask_babel import format_decimal

        return format_decimal(value)

    @app.context_processor
    def _globals():
        lang = current_lang()
        instance = instance_service.current() if request.endpoint != "static" else None
        own_code = instance.instance_code if instance else ""
        return {
            "lang": lang,
            "record_types": RECORD_TYPES,
            "instance": instance,
            "version": __version__,
            "labels": _LabelCache(lang),
            "record_display": record_service.display_value,
            "is_foreign": lambda record: record_service.is_foreign(record, own_code),
            "can_edit": current_user.is_authenticated and current_user.has_role("editor"),
            "is_admin": current_user.is_authenticated and current_user.has_role("admin"),
        }

    def _page(status: int, message: str):
        db.session.rollback()
        if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
            return jsonify({"error": message}), status
        return render_template("errors.html", status=status, message=message), status

    app.register_error_handler(NotFoundError, lambda e: _page(404, e.message))
    app.register_error_handler(PermissionDeniedError, lambda e: _page(403, e.message))
    app.register_error_handler(ConflictError, lambda e: _page(409, e.message))
    app.register_error_handler(InvalidInputError, lambda e: _page(400, e.message))
    app.register_error_handler(DomainError, lambda e: _page(400, e.message))
    app.register_error_handler(CSRFError, lambda e: _page(400, _(
        "Le formulaire a expiré ou ne vient pas de cette application. Rechargez la page et recommencez.")))
    app.register_error_handler(404, lambda e: _page(404, _("Cette page n'existe pas.")))
    app.register_error_handler(403, lambda e: _page(403, _("Votre rôle ne permet pas cette action.")))
    app.register_error_handler(405, lambda e: _page(405, _("Cette action n'est pas permise ici.")))
    app.register_error_handler(413, lambda e: _page(413, _(
        "Fichier trop volumineux : %(mb)d Mo au plus.", mb=app.config["MAX_UPLOAD_MB"])))
    app.register_error_handler(500, lambda e: _page(500, _(
        "Une erreur inattendue s'est produite ; rien n'a été enregistré. Le détail est dans le journal.")))


def _carries_nul() -> bool:
    """Tell whether the request's path, query or form fields (names or values) hold a NUL character."""
    if "\x00" in request.path:
        return True
    fields = [request.args] + ([request.form] if request.method == "POST" else [])
    return any("\x00" in key or "\x00" in value for multi in fields for key, value in multi.items(multi=True))


class _LabelCache(dict):
    """Vocabulary labels in the page's language, read from the database once per page."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self.update(vocabularies.label_map(self.lang))
            for theme in vocabularies.themes():
                self[("theme", theme.code)] = theme.label(self.lang)
            self._loaded = True

    def get(self, key, default=None):  # type: ignore[override]
        self._load()
        return super().get(key, default)

    def __getitem__(self, key):
        self._load()
        return super().__getitem__(key)

    def __call__(self, vocabulary: str, code: str | None) -> str:
        if not code:
            return ""
        return self.get((vocabulary, code), code)
