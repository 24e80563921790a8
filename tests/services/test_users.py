"""Accounts: hashed passwords, roles, and slowing down repeated failed logins."""

from __future__ import annotations

import pytest

from piu_app.services import ConflictError, InvalidInputError, PermissionDeniedError, users
from tests.conftest import PASSWORD


def _auth(username: str, password: str):
    return users.authenticate(username, password, max_failures=3, lock_seconds=30)


def test_password_is_hashed_with_scrypt(ctx):
    user = users.by_username("editor")
    assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash


def test_short_passwords_and_duplicates_are_refused(ctx):
    with pytest.raises(InvalidInputError):
        users.create(username="new", password="court", role="reader")
    with pytest.raises(ConflictError):
        users.create(username="Editor", password=PASSWORD, role="reader")


def test_repeated_failures_lock_the_account_for_a_while(ctx):
    for _ in range(3):
        with pytest.raises(PermissionDeniedError, match="incorrect"):
            _auth("editor", "wrong-password")
    with pytest.raises(PermissionDeniedError, match="Réessayez dans"):
        _auth("editor", PASSWORD)  # even the right password waits
    user = users.by_username("editor")
    user.locked_until = None
    assert _auth("editor", PASSWORD) is user and user.failed_logins == 0


def test_roles_are_ordered(ctx):
    assert users.by_username("admin").has_role("editor")
    assert not users.by_username("reader").has_role("editor")
    with pytest.raises(PermissionDeniedError):
        users.require(users.by_username("reader"), "editor")


def test_an_admin_cannot_demote_themself(ctx):
    admin = users.by_username("admin")
    with pytest.raises(PermissionDeniedError):
        users.update(admin, role="editor", active=True, acting=admin)
