"""The strict decoder's nesting limit: measured on the document's structure, never on brackets inside strings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.strict_json import StrictJSONError, loads_strict

LIMIT = 4
# Strings full of what could confuse a scan: brackets, quotes, backslashes, escapes.
tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\/ab\n\u0439')), max_size=12)
documents = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=25,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(documents)
def test_the_limit_counts_structure_only(document):
    text = json.dumps(document, ensure_ascii=False)
    if depth(document) > LIMIT:
        with pytest.raises(StrictJSONError, match="nested deeper than 4"):
            loads_strict(text, LIMIT)
    else:
        assert loads_strict(text, LIMIT) == document


@pytest.mark.parametrize(
    "text",
    [
        '"[[[[[[[[',  # an unterminated string: invalid JSON, not too deep
        '["\\"[[[[[[[["',  # an escaped quote does not end the string
    ],
)
def test_brackets_in_an_unfinished_string_are_not_structure(text):
    with pytest.raises(StrictJSONError, match="Invalid JSON"):
        loads_strict(text, LIMIT)


def test_a_deep_document_is_refused_before_parsing():
    with pytest.raises(StrictJSONError, match="nested deeper than 4"):
        loads_strict("[" * 100_000, LIMIT)  # the recursive parser would raise RecursionError
