"""The domain API: every rule of the register lives in these modules.

Services take explicit arguments, never touch the request, and raise the errors below, whose
message is already in the user's language. The caller (a view, the CLI, the exchange code) owns the
transaction: it commits after a successful call, and rolls back on any error.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A failure the user can understand and act on."""

    def __init__(self, message: Any, *, field_errors: dict[str, str] | None = None) -> None:
        super().__init__(str(message))
        self.message = str(message)
        self.field_errors = field_errors or {}


class NotFoundError(DomainError):
    pass


class ConflictError(DomainError):
    pass


class InvalidInputError(DomainError):
    pass


class PermissionDeniedError(DomainError):
    pass
