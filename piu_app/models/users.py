"""Accounts of the people who keep the register, and failed-login bookkeeping."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import db, utcnow

ROLES = ("reader", "editor", "admin")


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default="reader")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    # Carried by the session cookie; replaced at logout, password change and reset (services.users),
    # so that a copied cookie stops working at once.
    session_token: Mapped[str] = mapped_column(String(64), default="", server_default="")

    def get_id(self) -> str:
        """What the session cookie carries: the id and the current session token (see services.users)."""
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.active

    def has_role(self, role: str) -> bool:
        """Tell whether the user holds `role` or a stronger one (admin > editor > reader)."""
        return ROLES.index(self.role) >= ROLES.index(role)
