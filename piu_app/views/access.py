"""Role checks for views, declared on each view so that the gatekeeper and the tests can read them.

Every endpoint declares who may call it: `PUBLIC_ENDPOINTS` (anyone, even without an account), or
`require_role(...)` on the view or on its blueprint's `before_request`. An endpoint that declares
nothing is refused to everyone (see `views._gatekeeper`), and tests/views/test_routes_by_role.py
fails: a new route cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask
from flask_login import current_user

from ..models import ROLES
from ..services import users as user_service

ANONYMOUS = "anonymous"
# Endpoints reachable without an account (everything else needs a login and a declared role).
PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "auth.set_language", "main.healthz", "static"}


def require_role(role: str) -> Callable:
    """Refuse the view (403, clear message) unless the user holds `role` or a stronger one."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user_service.require(current_user if current_user.is_authenticated else None, role)
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        return wrapper

    return decorator


def required_role(app: Flask, endpoint: str | None) -> str | None:
    """Return the role an endpoint requires (`ANONYMOUS` for public ones), or None if it declares none."""
    if endpoint is None:
        return None
    if endpoint in PUBLIC_ENDPOINTS:
        return ANONYMOUS
    view = app.view_functions.get(endpoint)
    declared = [getattr(view, "required_role", None)]
    blueprint = endpoint.rpartition(".")[0]
    if blueprint:
        declared += [getattr(f, "required_role", None) for f in app.before_request_funcs.get(blueprint, ())]
    roles = [r for r in declared if r]
    return max(roles, key=ROLES.index) if roles else None


def username() -> str:
    return current_user.username if current_user.is_authenticated else ""
