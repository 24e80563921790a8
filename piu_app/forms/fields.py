"""Form fields that read numbers the way French users type them ("12 500 000", "3,5")."""

from __future__ import annotations

import math
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import FloatField, IntegerField
from wtforms.widgets import TextInput


def _normalise(raw: str) -> str:
    return raw.replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace(",", ".").strip()


class _NumberInput(TextInput):
    """A text box (not type=number, which refuses "12 500 000"), with the numeric keyboard on phones."""

    def __call__(self, field: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("inputmode", "decimal")
        return super().__call__(field, **kwargs)


class LocaleFloatField(FloatField):
    widget = _NumberInput()
    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and valuelist[0] not in (None, ""):
            try:
                self.data = float(_normalise(str(valuelist[0])))
            except ValueError as exc:
                self.data = None
                raise ValueError(_l("Nombre attendu, par exemple 12 500 ou 3,5.")) from exc
            if not math.isfinite(self.data):  # "nan", "inf", "-inf", "1e999" are not amounts
                self.data = None
                raise ValueError(_l("Nombre attendu, par exemple 12 500 ou 3,5 (ni « nan » ni « inf »)."))
        else:
            self.data = None


class LocaleIntegerField(IntegerField):
    widget = _NumberInput()
    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and valuelist[0] not in (None, ""):
            raw = _normalise(str(valuelist[0]))
            try:
                if len(raw) > 30:  # int() of a 100 000-digit string costs seconds; such a number is a typo
                    raise ValueError(raw[:30])
                self.data = int(raw)
            except ValueError as exc:
                self.data = None
                raise ValueError(_l("Nombre entier attendu.")) from exc
        else:
            self.data = None
