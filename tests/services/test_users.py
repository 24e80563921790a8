"""Accounts: hashed passwords, roles, and slowing down repeated failed logins."""

from __future__ import annotations

import pytest

from piu_app.services import ConflictError, InvalidInputError, PermissionDeniedError, users
from tests.conftest import PASSWORD

THROTTLE = users.LoginThrottle()


def _auth(username: str, password: str, client: str = "127.0.0.1", throttle: users.LoginThrottle | None = None):
    return users.authenticate(username, password, throttle=throttle or THROTTLE, client=client,
                              max_failures=3, lock_seconds=30)


def test_password_is_hashed_with_scrypt(ctx):
    user = users.by_username("editor")
    assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash


def test_short_passwords_and_duplicates_are_refused(ctx):
    with pytest.raises(InvalidInputError):
        users.create(username="new", password="court", role="reader")
    with pytest.raises(ConflictError):
        users.create(username="Editor", password=PASSWORD, role="reader")


def test_repeated_failures_slow_down_that_address_for_that_name(ctx):
    # Before issue 10 the account itself was locked (anyone could lock the administrator out, and only
    # existing names were ever locked): now the (address, name) pair waits, whether the name exists or not.
    throttle = users.LoginThrottle()
    for name in ("editor", "nobody"):
        for _ in range(3):
            with pytest.raises(PermissionDeniedError, match="incorrect"):
                _auth(name, "wrong-password", throttle=throttle)
        with pytest.raises(PermissionDeniedError, match="Réessayez dans"):
            _auth(name, PASSWORD, throttle=throttle)  # even the right password waits
    user = users.by_username("editor")
    assert _auth("editor", PASSWORD, client="10.0.0.2", throttle=throttle) is user  # another address: at once
    assert user.locked_until is None and user.failed_logins == 0
    throttle.success(("127.0.0.1", "editor"))
    assert _auth("editor", PASSWORD, throttle=throttle) is user


def test_the_wait_doubles_and_is_capped(ctx):
    throttle = users.LoginThrottle()
    key = ("127.0.0.1", "editor")
    waits = []
    for _ in range(6):
        throttle.failure(key, max_failures=3, lock_seconds=30)
        waits.append(throttle.wait(key))
    assert waits[:2] == [0, 0] and 29 <= waits[2] <= 31 and 59 <= waits[3] <= 61 and 119 <= waits[4] <= 121
    for _ in range(100):
        throttle.failure(key, max_failures=3, lock_seconds=30)
    assert throttle.wait(key) <= users.MAX_LOCK_SECONDS + 1


def test_the_throttle_memory_is_bounded(ctx):
    throttle = users.LoginThrottle()
    for i in range(throttle.MAX_KEYS + 50):
        throttle.failure(("10.0.0.1", f"name-{i}"), max_failures=3, lock_seconds=30)
    assert len(throttle._entries) == throttle.MAX_KEYS


def test_session_tokens_are_replaced_by_a_reset_and_by_logout(ctx):
    user = users.by_username("reader")
    first = user.session_token
    assert len(first) == 64 and users.from_session_id(user.get_id()) is user
    old_id = user.get_id()
    users.set_password(user, "another-password")
    assert user.session_token != first and users.from_session_id(old_id) is None
    old_id = user.get_id()
    users.end_sessions(user)
    assert users.from_session_id(old_id) is None and users.from_session_id(user.get_id()) is user


def test_roles_are_ordered(ctx):
    assert users.by_username("admin").has_role("editor")
    assert not users.by_username("reader").has_role("editor")
    with pytest.raises(PermissionDeniedError):
        users.require(users.by_username("reader"), "editor")


def test_an_admin_cannot_demote_themself(ctx):
    admin = users.by_username("admin")
    with pytest.raises(PermissionDeniedError):
        users.update(admin, role="editor", active=True, acting=admin)
