"""Accounts and roles; password checks that slow down repeated failures; revocable sessions."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict

from flask_babel import gettext as _
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import ROLES, User, db
from . import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # hashing cost grows with the length: a 15 MB "password" is refused unhashed
MAX_LOCK_SECONDS = 3600
_DUMMY_HASH = generate_password_hash("piu-timing-equaliser")


def count() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(User)) or 0


def get(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def all_users() -> list[User]:
    return list(db.session.scalars(db.select(User).order_by(User.username)))


class LoginThrottle:
    """Failed logins counted per (client address, username), in memory.

    After `max_failures` failures the next try from that address for that name must wait, the wait
    doubling at each further failure. The account itself is never locked: a stranger guessing the
    administrator's password from another address slows down only himself, and an unknown name is
    throttled exactly like an existing one (the answer never tells whether a name exists)."""

    MAX_KEYS = 10_000  # bounded memory whatever a guesser sends: the oldest keys are forgotten first

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def wait(self, key: tuple[str, str]) -> int:
        """Return the seconds still to wait before `key` may try again (0: now)."""
        with self._lock:
            _failures, until = self._entries.get(key, (0, 0.0))
        remaining = until - time.monotonic()
        return int(remaining) + 1 if remaining > 0 else 0

    def failure(self, key: tuple[str, str], *, max_failures: int, lock_seconds: int) -> None:
        with self._lock:
            failures, _until = self._entries.pop(key, (0, 0.0))
            failures += 1
            until = 0.0
            if failures >= max_failures:
                until = time.monotonic() + min(lock_seconds * 2 ** min(failures - max_failures, 20), MAX_LOCK_SECONDS)
            self._entries[key] = (failures, until)
            while len(self._entries) > self.MAX_KEYS:
                self._entries.popitem(last=False)

    def success(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._entries.pop(key, None)


def new_session_token(user: User) -> str:
    """Give the user a new session token: every session that carried the old one ends at once."""
    user.session_token = secrets.token_hex(32)
    return user.session_token


def from_session_id(value: str) -> User | None:
    """Return the active user whose current session token `value` (`User.get_id()`) carries, or None (session revoked)."""
    user_id, _sep, token = (value or "").partition(":")
    if not user_id.isdigit() or len(user_id) > 18 or not token:
        return None  # a cookie of an earlier release (id only) or a forged one: log in again
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or not user.session_token:
        return None
    return user if hmac.compare_digest(user.session_token.encode(), token.encode()) else None


def _check_password(password: str) -> None:
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(_("Le mot de passe doit comporter au plus %(n)d caractères.", n=MAX_PASSWORD_LENGTH),
                                field_errors={"password": _("Trop long.")})
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
    new_session_token(user)
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
    """Replace the password (an administrator's reset): every session of the user ends."""
    _check_password(password)
    user.password_hash = generate_password_hash(password, method="scrypt")
    user.failed_logins, user.locked_until = 0, None
    new_session_token(user)


def end_sessions(user: User) -> None:
    """Log the user out everywhere (logout): a copied session cookie no longer works."""
    new_session_token(user)


def change_own_password(user: User, *, current: str, new: str) -> None:
    """Let a user replace their password, proving they know the current one; their other sessions end
    (the caller carries the new token in the current session)."""
    if not check_password_hash(user.password_hash, current):
        raise PermissionDeniedError(_("Le mot de passe actuel est incorrect."),
                                    field_errors={"current_password": _("Incorrect.")})
    set_password(user, new)


def authenticate(username: str, password: str, *, throttle: LoginThrottle, client: str,
                 max_failures: int, lock_seconds: int) -> User:
    """Return the user if the password is right. After `max_failures` failures from `client` for this
    name, each try must wait (see `LoginThrottle`); unknown names and existing ones get the same
    answers, in about the same time (a password hash is checked in both cases)."""
    name = username.strip().lower()
    key = (client, name)
    wait = throttle.wait(key)
    if wait:
        raise PermissionDeniedError(_("Trop d'essais manqués. Réessayez dans %(s)d secondes.", s=wait))
    if len(password) > MAX_PASSWORD_LENGTH:
        password = ""  # never hash megabytes; such a password cannot be right (see _check_password)
    user = db.session.scalars(db.select(User).filter_by(username=name)).first() if len(name) <= 80 else None
    if user is None:
        check_password_hash(_DUMMY_HASH, password)  # same time as a real check: names are not probed
        throttle.failure(key, max_failures=max_failures, lock_seconds=lock_seconds)
        raise PermissionDeniedError(_("Identifiant ou mot de passe incorrect."))
    if not check_password_hash(user.password_hash, password):
        user.failed_logins += 1  # kept for the administrator's information; never locks the account
        throttle.failure(key, max_failures=max_failures, lock_seconds=lock_seconds)
        raise PermissionDeniedError(_("Identifiant ou mot de passe incorrect."))
    throttle.success(key)
    if not user.active:
        raise PermissionDeniedError(_("Ce compte est désactivé."))
    user.failed_logins, user.locked_until = 0, None
    if not user.session_token:
        new_session_token(user)  # an account made by an earlier release gets its token now
    return user


def require(user: User | None, role: str) -> None:
    if user is None or not user.has_role(role):
        raise PermissionDeniedError(_("Votre rôle ne permet pas cette action."))


def by_username(username: str) -> User:
    user = db.session.scalars(db.select(User).filter_by(username=username.strip().lower())).first()
    if user is None:
        raise NotFoundError(_("Compte introuvable."))
    return user
