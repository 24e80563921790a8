"""Administration: accounts and roles, vocabularies and themes, the instance's settings (administrators only)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user

from ..extensions import db
from ..forms.admin import InstanceForm, NewUserForm, PasswordForm, TermForm, UserRoleForm
from ..registry import TERRITORIES
from ..services import DomainError, NotFoundError, vocabularies
from ..services import instance as instance_service
from ..services import records as record_service
from ..services import users as user_service
from .access import require_role

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@require_role("admin")
def _admins_only():
    return None


@bp.route("/users", methods=["GET", "POST"])
def users():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = user_service.create(username=form.username.data, password=form.password.data,
                                       role=form.role.data, display_name=form.display_name.data or "")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Compte « %(name)s » créé.", name=user.username), "success")
            return redirect(url_for(".users"))
    return render_template("admin/users.html", form=form, users=user_service.all_users(),
                           role_forms={u.id: UserRoleForm(prefix=f"u{u.id}", role=u.role, active=u.active)
                                       for u in user_service.all_users()},
                           password_form=PasswordForm())


@bp.post("/users/<int:user_id>")
def update_user(user_id: int):
    user = user_service.get(user_id)
    if user is None:
        raise NotFoundError(_("Compte introuvable."))
    form = UserRoleForm(prefix=f"u{user_id}")
    if form.validate_on_submit():
        user_service.update(user, role=form.role.data, active=form.active.data, acting=current_user)
        db.session.commit()
        flash(_("Compte « %(name)s » mis à jour.", name=user.username), "success")
    return redirect(url_for(".users"))


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id: int):
    user = user_service.get(user_id)
    if user is None:
        raise NotFoundError(_("Compte introuvable."))
    form = PasswordForm()
    if form.validate_on_submit():
        user_service.set_password(user, form.password.data)  # every session of that user ends
        db.session.commit()
        if user.id == current_user.id:
            login_user(user)  # an administrator resetting their own password stays logged in here
        flash(_("Mot de passe de « %(name)s » changé.", name=user.username), "success")
    else:
        flash(_("Le mot de passe doit comporter au moins 10 caractères."), "error")
    return redirect(url_for(".users"))


@bp.get("/vocabularies")
def vocabulary_index():
    return render_template("admin/vocabularies.html", vocabularies=vocabularies.vocabulary_overview())


@bp.route("/vocabularies/<name>", methods=["GET", "POST"])
def vocabulary(name: str):
    if name not in vocabularies.vocabulary_names() and name != "themes":
        raise NotFoundError(_("Vocabulaire inconnu."))
    form = TermForm()
    if form.validate_on_submit():
        if name == "themes":
            vocabularies.save_theme(code=form.code.data, label_fr=form.label_fr.data, label_en=form.label_en.data or "",
                                    origin=instance_service.instance_code())
        else:
            vocabularies.save_term(name, code=form.code.data, label_fr=form.label_fr.data,
                                   label_en=form.label_en.data or "", active=form.active.data)
        db.session.commit()
        flash(_("Terme « %(code)s » enregistré.", code=form.code.data), "success")
        return redirect(url_for(".vocabulary", name=name))
    terms = vocabularies.themes() if name == "themes" else vocabularies.terms(name, include_inactive=True)
    if request.method == "GET" and request.args.get("code"):
        current = next((t for t in terms if t.code == request.args["code"]), None)
        form.code.data = request.args["code"]
        if current is not None:
            form.label_fr.data, form.label_en.data = current.label_fr, current.label_en
            form.active.data = getattr(current, "active", True)
    return render_template("admin/vocabulary.html", name=name, title=vocabularies.vocabulary_title(name), terms=terms,
                           form=form)


@bp.route("/instance", methods=["GET", "POST"])
def instance_settings():
    form = InstanceForm()
    form.home_territory.choices = [("", _("— le plus utilisé par nos expérimentations —")),
                                   *record_service.choices(TERRITORIES)]
    if form.validate_on_submit():
        try:
            instance_service.set_home_territory(form.home_territory.data or "")
        except DomainError as exc:
            db.session.rollback()
            form.home_territory.errors = [*form.home_territory.errors, *exc.field_errors.values()]
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("Réglages enregistrés."), "success")
            return redirect(url_for(".instance_settings"))
    elif request.method == "GET":
        settings = instance_service.current()
        form.home_territory.data = settings.home_territory_uid if settings else ""
    return render_template("admin/instance.html", form=form), 400 if form.errors else 200
