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


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"a": 1, "a": 2}', "Duplicate key 'a'"),
        ("[NaN]", "NaN is not a valid JSON number"),
        ("[1e999]", "Number out of range"),
        ("[" + "9" * 20 + "]", "Integer out of range"),
        ("\ufeff{}".encode(), "byte order mark"),
        (b"\xff{}", "not valid UTF-8"),
        ('{"a": 1} {"b": 2}', "Invalid JSON: Extra data at position 9"),
    ],
)
def test_what_python_json_would_accept_is_refused_with_its_reason(body, reason):
    with pytest.raises(StrictJSONError, match=reason):
        loads_strict(body, LIMIT)


def test_the_shared_decoder_keeps_nothing_between_documents():
    assert loads_strict('{"a": [1, 2.5, "x"]}', LIMIT) == {"a": [1, 2.5, "x"]}
    with pytest.raises(StrictJSONError, match="Duplicate key"):
        loads_strict('{"a": 1, "a": 1}', LIMIT)
    assert loads_strict('{"a": 1}', LIMIT) == {"a": 1}
