"""The nesting of datapackage.json is measured before it is parsed, in one linear pass."""

from __future__ import annotations

import json
import time

from hypothesis import given
from hypothesis import strategies as st

from piu_app.exchange.bundle_import import _json_depth

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('ab"\\[]{}é\n')),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=20)


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(json_values)
def test_the_depth_is_that_of_the_parsed_value_whatever_the_strings_hold(value):
    assert _json_depth(json.dumps(value)) == _depth(value)


def test_an_unclosed_string_does_not_make_it_quadratic():
    """8 MB of escaped quotes took days with a pattern that looked for each string's end (found by
    a review); one pass takes about a second here. The bound is generous: a guard, not a benchmark."""
    started = time.monotonic()
    assert _json_depth('\\"' * 4_000_000) == 0
    assert time.monotonic() - started < 30
