"""Flask extensions, created unbound; `create_app` binds them with `init_app`."""

from __future__ import annotations

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from .i18n import PoBabel
from .models.base import db

csrf = CSRFProtect()
login_manager = LoginManager()
migrate = Migrate()
babel = PoBabel()

__all__ = ["db", "csrf", "login_manager", "migrate", "babel"]
