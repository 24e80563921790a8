"""Whatever a form, the CLI or a spreadsheet hands the records service, the answer is either a clear
refusal (InvalidInputError) or a record holding exactly what was given: never a crash, never a
truncated text, never a control character, never nan or infinity (issue 10, items 8 and 9)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piu_app.extensions import db
from piu_app.registry import RECORD_TYPES, TEXTAREA_MAX_LENGTH
from piu_app.services import InvalidInputError, records

INNOVATIONS = RECORD_TYPES["innovations"]
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
texts = st.one_of(st.text(max_size=300), st.text(alphabet=st.characters(max_codepoint=0x9f), max_size=300),
                  st.integers(0, 3).map(lambda n: "x" * (TEXTAREA_MAX_LENGTH - 1 + n)))


@_SETTINGS
@given(tagline=texts, description=texts)
def test_texts_are_kept_exactly_or_refused(ctx, tagline, description):
    savepoint = db.session.begin_nested()
    try:
        record = records.create(INNOVATIONS, {"name": "Essai", "tagline": tagline, "description": description},
                                username="prop")
    except InvalidInputError as exc:
        assert set(exc.field_errors) <= {"tagline", "description"}
        bad_line = any(ord(c) < 32 or ord(c) == 127 for c in tagline.strip())
        bad_text = any((ord(c) < 32 and c not in "\t\r\n") or ord(c) == 127 for c in description.strip())
        too_long = len(tagline.strip()) > 140 or len(description.strip()) > TEXTAREA_MAX_LENGTH
        assert bad_line or bad_text or too_long
    else:
        assert record.tagline == tagline.strip() and record.description == description.strip()
    finally:
        savepoint.rollback()


@_SETTINGS
@given(number=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30),
                        st.sampled_from(["nan", "inf", "-inf", "1e999", "Infinity", "douze", "", "12"]), st.text(max_size=8)))
def test_numbers_are_finite_or_refused(ctx, number):
    record = None
    savepoint = db.session.begin_nested()
    try:
        record = records.create(INNOVATIONS, {"name": "Essai", "price_indication": number}, username="prop")
        stored = record.price_indication
        assert stored is None or math.isfinite(stored)
    except InvalidInputError as exc:
        assert "price_indication" in exc.field_errors
    finally:
        savepoint.rollback()


@pytest.mark.parametrize(("score", "accepted"), [("nan", False), ("abc", False), ("9", False), ("-4", False),
                                                 ("99", False), ("3.5", False), ("\x00", False), ("3", True),
                                                 ("", True), (None, True)])
def test_review_scores_outside_one_to_five_are_refused_never_a_crash(ctx, score, accepted):
    from tests.factories import make_innovation

    innovation = make_innovation()
    values = {"innovation": innovation.uid, "reviewer_type": "agent", "scores": {"benefit": score}}
    if accepted:
        review = records.create(RECORD_TYPES["reviews"], values, username="prop")
        assert [s.score for s in review.scores] == ([3] if score == "3" else [])
        return
    with pytest.raises(InvalidInputError) as caught:
        records.create(RECORD_TYPES["reviews"], values, username="prop")
    assert "scores" in caught.value.field_errors
