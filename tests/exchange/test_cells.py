"""Spreadsheet cells never run as formulas, and the escape loses nothing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from piu_app.exchange.cells import FORMULA_TRIGGERS, neutralise, restore


@given(st.text())
def test_any_text_survives_the_round_trip(text):
    assert restore(neutralise(text)) == text


@given(st.text(alphabet=FORMULA_TRIGGERS + "'a1 ", min_size=1))
def test_no_escaped_cell_starts_with_a_formula_trigger(text):
    assert neutralise(text)[0] not in FORMULA_TRIGGERS


def test_plain_text_and_numbers_are_left_alone():
    assert neutralise("Éclairage solaire") == "Éclairage solaire"
    assert neutralise('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert neutralise("-12") == "'-12"  # only text columns are escaped; numbers are written as numbers
