"""Log in, log out, choose the language, and the first set-up of the city."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..demo_data import CITY as DEMO_CITY
from ..extensions import db
from ..forms.auth import LoginForm, OwnPasswordForm, SetupForm
from ..i18n import LOCALES
from ..services import DomainError, PermissionDeniedError
from ..services import instance as instance_service
from ..services import users as user_service
from .access import require_role

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only follow a `next` that stays inside the app."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("main.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if instance_service.current() is None or user_service.count() == 0:
        return redirect(url_for(".setup"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = user_service.authenticate(form.username.data, form.password.data, throttle=_throttle(),
                                             client=request.remote_addr or "",
                                             max_failures=current_app.config["LOGIN_MAX_FAILURES"],
                                             lock_seconds=current_app.config["LOGIN_LOCK_SECONDS"])
        except PermissionDeniedError as exc:
            db.session.commit()  # keep the failure count shown to administrators
            flash(exc.message, "error")
            return render_template("auth/login.html", form=form), 401
        db.session.commit()
        login_user(user)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


def _throttle() -> user_service.LoginThrottle:
    """This server's failed-login counts (in memory: a restart forgets them, which a guesser cannot cause)."""
    return current_app.extensions.setdefault("piu_login_throttle", user_service.LoginThrottle())


@bp.route("/account", methods=["GET", "POST"])
@require_role("reader")
def account():
    """Change one's own password (every role)."""
    form = OwnPasswordForm()
    if form.validate_on_submit():
        try:
            user_service.change_own_password(current_user, current=form.current_password.data,
                                             new=form.new_password.data)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return render_template("auth/account.html", form=form), 400
        db.session.commit()
        login_user(current_user._get_current_object())  # this session carries the new token; the others end
        flash(_("Mot de passe changé."), "success")
        return redirect(url_for("main.dashboard"))
    return render_template("auth/account.html", form=form), 400 if form.errors else 200


@bp.post("/logout")
@require_role("reader")
def logout():
    if current_user.is_authenticated:
        user_service.end_sessions(current_user)  # a copy of this session's cookie stops working too
        db.session.commit()
    logout_user()
    flash(_("Vous êtes déconnecté."), "info")
    return redirect(url_for(".login"))


@bp.post("/lang/<code>")
def set_language(code: str):
    if code in LOCALES:
        session["lang"] = code
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Name the city and create the first administrator (only while there is no account)."""
    if user_service.count() > 0:
        return redirect(url_for(".login"))
    settings = instance_service.current()
    demo = settings is not None and settings.instance_code == DEMO_CITY["instance_code"]
    form = SetupForm()
    if settings is not None and request.method == "GET":
        if not demo:  # the fictional city's name is never offered as the user's own
            form.city_name.data, form.country_code.data = settings.city_name, settings.country_code
        form.instance_code.data = settings.instance_code
    if form.validate_on_submit():
        try:
            user = instance_service.first_setup(
                city_name=form.city_name.data, country=form.country_code.data, instance_code=form.instance_code.data,
                admin_username=form.admin_username.data, admin_password=form.admin_password.data)
        except DomainError as exc:
            db.session.rollback()
            for name, message in getattr(exc, "field_errors", {}).items():
                target = getattr(form, name if hasattr(form, name) else f"admin_{name}", None)
                if target is not None:
                    target.errors = [*target.errors, message]
            flash(exc.message, "error")
            return render_template("auth/setup.html", form=form, settings=settings, demo=demo), 400
        db.session.commit()
        login_user(user)
        flash(_("Bienvenue ! Le registre de %(city)s est prêt.", city=instance_service.current().city_name), "success")
        return redirect(url_for("main.dashboard"))
    return render_template("auth/setup.html", form=form, settings=settings, demo=demo)
