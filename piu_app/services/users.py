"""Accounts and roles; password checks that slow down repeated failures."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import ROLES, User, db, utcnow
from . import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError

MIN_PASSWORD_LENGTH = 10
MAX_LOCK_SECONDS = 3600
_DUMMY_HASH = generate_password_hash("piu-timing-equaliser")


def count() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(User)) or 0


def get(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def all_users() -> list[User]:
    return list(db.session.scalars(db.select(User).order_by(User.username)))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(_("Le mot de passe doit comporter au moins %(n)d caractères.", n=MIN_PASSWORD_LENGTH),
                                field_errors={"password": _("Trop court.")})


def create(*, username: str, password: str, role: str, display_name: str = "") -> User:
    """Create an account; the password is stored as a scrypt hash."""
    username = username.strip().lower()
    if not username:
        raise InvalidInputError(_("Indiquez un identifiant."), field_errors={"username": _("Obligatoire.")})
    if role not in ROLES:
        raise InvalidInputError(_("Rôle inconnu."))
    _check_password(password)
    if db.session.scalars(db.select(User).filter_by(username=username)).first():
        raise ConflictError(_("Cet identifiant est déjà pris."), field_errors={"username": _("Déjà pris.")})
    user = User(username=username, display_name=display_name.strip() or username, role=role,
                password_hash=generate_password_hash(password, method="scrypt"))
    db.session.add(user)
    return user


def update(user: User, *, role: str, active: bool, acting: User) -> User:
    if role not in ROLES:
        raise InvalidInputError(_("Rôle inconnu."))
    if user.id == acting.id and (role != "admin" or not active):
        raise PermissionDeniedError(_("Vous ne pouvez pas retirer vos propres droits d'administration."))
    user.role, user.active = role, active
    return user


def set_password(user: User, password: str) -> None:
    _check_password(password)
    user.password_hash = generate_password_hash(password, method="scrypt")
    user.failed_logins, user.locked_until = 0, None


def change_own_password(user: User, *, current: str, new: str) -> None:
    """Let a user replace their password, proving they know the current one."""
    if not check_password_hash(user.password_hash, current):
        raise PermissionDeniedError(_("Le mot de passe actuel est incorrect."),
                                    field_errors={"current_password": _("Incorrect.")})
    set_password(user, new)


def authenticate(username: str, password: str, *, max_failures: int, lock_seconds: int) -> User:
    """Return the user if the password is right; after `max_failures` failures each try must wait,
    the wait doubling at each further failure."""
    user = db.session.scalars(db.select(User).filter_by(username=username.strip().lower())).first()
    now = utcnow()
    if user is not None and user.locked_until and user.locked_until > now:
        wait = int((user.locked_until - now).total_seconds()) + 1
        raise PermissionDeniedError(_("Trop d'essais manqués. Réessayez dans %(s)d secondes.", s=wait))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)  # same time as a real check: names are not probed
        raise PermissionDeniedError(_("Identifiant ou mot de passe incorrect."))
    if not check_password_hash(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            extra = user.failed_logins - max_failures
            user.locked_until = now + timedelta(seconds=min(lock_seconds * 2 ** extra, MAX_LOCK_SECONDS))
        raise PermissionDeniedError(_("Identifiant ou mot de passe incorrect."))
    if not user.active:
        raise PermissionDeniedError(_("Ce compte est désactivé."))
    user.failed_logins, user.locked_until = 0, None
    return user


def require(user: User | None, role: str) -> None:
    if user is None or not user.has_role(role):
        raise PermissionDeniedError(_("Votre rôle ne permet pas cette action."))


def by_username(username: str) -> User:
    user = db.session.scalars(db.select(User).filter_by(username=username.strip().lower())).first()
    if user is None:
        raise NotFoundError(_("Compte introuvable."))
    return user
