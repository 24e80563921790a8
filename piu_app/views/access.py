"""Role checks for views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask_login import current_user

from ..services import users as user_service


def require_role(role: str) -> Callable:
    """Refuse the view (403, clear message) unless the user holds `role` or a stronger one."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user_service.require(current_user if current_user.is_authenticated else None, role)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def username() -> str:
    return current_user.username if current_user.is_authenticated else ""
