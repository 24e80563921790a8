"""The base of every form: no text longer than its column, no invisible control character.

Every form of PIU derives from `PiuForm`, so a field added later is bounded too: a field with its
own `Length` keeps it; any other text field gets the default bound of its kind."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, TextAreaField
from wtforms.validators import Length

from ..registry import TEXTAREA_MAX_LENGTH
from ..services.records import control_character
from ..services.users import MAX_PASSWORD_LENGTH

LINE_MAX_LENGTH = 1_000  # a one-line field without a column length of its own (search words, titles…)


def length(max: int, min: int = -1) -> Length:  # noqa: A002 - the validator's own names
    """A `Length` validator with a translated message."""
    if min > 0:
        return Length(min=min, max=max, message=_l("Entre %(min)d et %(max)d caractères."))
    return Length(max=max, message=_l("%(max)d caractères au plus."))


def _bound(field: Any) -> int:
    declared = [v.max for v in field.validators if isinstance(v, Length) and v.max != -1]
    if declared:
        return min(declared)
    if isinstance(field, PasswordField):
        return MAX_PASSWORD_LENGTH
    return TEXTAREA_MAX_LENGTH if isinstance(field, TextAreaField) else LINE_MAX_LENGTH


class Mandatory:
    """Mark a field whose value the service requires (the check is the service's: one rule for the
    form, the CLI and imports); the form macro shows the mark, as for `DataRequired` fields."""

    field_flags = {"mandatory": True}

    def __call__(self, form: Any, field: Any) -> None:
        return None


class PiuForm(FlaskForm):
    def validate(self, extra_validators: Any = None) -> bool:
        """Run the fields' own checks, then refuse (never cut) over-long texts and control characters."""
        valid = super().validate(extra_validators)
        for field in self:
            if not isinstance(field, StringField) or not isinstance(field.data, str):
                continue
            errors: list[Any] = list(field.errors)
            limit = _bound(field)
            if len(field.data) > limit and not any(isinstance(v, Length) for v in field.validators):
                errors.append(_l("%(max)d caractères au plus.", max=limit))
            if not isinstance(field, PasswordField):  # a password is hashed, never shown nor exported
                bad = control_character(field.data, multiline=isinstance(field, TextAreaField))
                if bad:
                    errors.append(_l("Caractère de contrôle invisible interdit (%(code)s) : retirez-le "
                                     "(il vient souvent d'un copier-coller).", code=bad))
            if len(errors) != len(field.errors):
                field.errors = errors
                valid = False
        return valid
