"""Every question type's answers through the per-version answer schema (no database needed)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import pytest

from survey.questionnaires.definition import validate_definition
from survey.responses.schemas import build_answer_schema, is_shown, load_answers
from tests.factories import all_types_definition, valid_answers

SCHEMA = build_answer_schema(validate_definition(all_types_definition()))


def load(**changes: Any) -> dict[str, Any]:
    answers = valid_answers()
    for code, value in changes.items():
        if value is DROP:
            answers.pop(code, None)
        else:
            answers[code] = value
    return load_answers(SCHEMA, answers)


DROP = object()


def errors_of(**changes: Any) -> dict[str, Any]:
    with pytest.raises(ma.ValidationError) as caught:
        load(**changes)
    return caught.value.messages  # type: ignore[return-value]


def test_valid_answers_are_normalised():
    loaded = load(comment="  Prishtinë  ", which=["b", "a"])
    assert loaded["which"] == ["a", "b"]  # option order, so equal answers compare equal
    assert loaded["comment"] == "Prishtinë"
    assert loaded["grid"] == {"r1": "agree", "r2": "dont_know"}
    assert loaded["priorities"] == ["p3", "p1"]  # ranking order is the answer


def test_text_is_nfc_normalised():
    decomposed = "Prishtine\u0308"  # e + combining diaeresis
    assert load(comment=decomposed)["comment"] == "Prishtinë"


INVALID = [
    # single_choice
    ("heard", "maybe", "Not a valid choice."),
    ("heard", ["yes"], "Not a valid choice."),
    ("heard", 1, "Not a valid choice."),
    # multiple_choice
    ("which", "a", "Must be a list of choices."),
    ("which", ["a", "a"], "Each choice may be given only once."),
    ("which", ["a", "zzz"], "Not a valid choice."),
    ("which", ["a", "b", "c"], "Select at most 2."),
    ("which", ["a", "none"], "This choice cannot be combined with other choices."),
    # likert
    ("support", "very", "Not a valid choice."),
    ("support", 3, "Not a valid choice."),
    # rating
    ("score", 5, "Must be a step of 2 from 0."),
    ("score", 12, "Must be between 0 and 10."),
    ("score", 6.0, "Must be a whole number."),
    ("score", "6", "Not a valid choice."),
    ("score", True, "Must be a whole number."),
    # ranking
    ("priorities", ["p1"], "Rank at least 2."),
    ("priorities", ["p1", "p2", "p3", "p4"], "Rank at most 3."),
    ("priorities", ["p1", "p1"], "Each choice may be given only once."),
    ("priorities", ["p1", "x"], "Not a valid choice."),
    # number
    ("household", 4.5, "Must be a whole number."),
    ("household", "4", "Must be a number."),
    ("household", 0, "Must be between 1 and 30."),
    ("household", 2**40, "Number out of range."),
    ("household", False, "Must be a number."),
    # text
    ("comment", "x" * 21, "Must be at most 20 characters."),
    ("comment", "two\nlines", "Must be a single line."),
    ("comment", "nul\x00byte", "Contains a character that is not allowed."),
    ("comment", "bell\x07", "Contains a character that is not allowed."),
    ("comment", "lone \ud800 surrogate", "Contains a character that is not allowed."),
    ("comment", "bidi \u202e override", "Contains a character that is not allowed."),
    ("comment", 42, "Must be text."),
    ("story", "c1 control \x85", "Contains a character that is not allowed."),
]


@pytest.mark.parametrize(("code", "value", "message"), INVALID, ids=[f"{c}={v!r}"[:40] for c, v, _m in INVALID])
def test_invalid_answers(code, value, message):
    assert errors_of(**{code: value}) == {code: [message]}


def test_matrix_errors_are_keyed_by_row():
    assert errors_of(grid={"r1": "agree", "r9": "agree"}) == {"grid": {"r9": ["Unknown row."]}}
    assert errors_of(grid={"r1": "wrong"}) == {"grid": {"r1": ["Not a valid choice."]}}
    assert errors_of(grid=["agree"]) == {"grid": ["Must be an object of row codes and answers."]}


def test_matrix_rows_are_optional_unless_required():
    assert load(grid={"r2": "neutral"})["grid"] == {"r2": "neutral"}


def test_non_substantive_codes_are_valid_answers():
    loaded = load(heard="not_sure", which=DROP, support="dont_know", score="cant_say", story=DROP)
    assert (loaded["heard"], loaded["support"], loaded["score"]) == ("not_sure", "dont_know", "cant_say")


def test_exclusive_option_alone_is_valid():
    assert load(which=["none"])["which"] == ["none"]


def test_unknown_question_codes_are_refused():
    assert errors_of(not_a_question="x") == {"not_a_question": ["Unknown field."]}


def test_required_answers_are_reported_together():
    messages = errors_of(heard=DROP, support=None, which=DROP, story=DROP)
    assert messages == {"heard": ["An answer is required."], "support": ["An answer is required."]}


def test_hidden_question_must_not_be_answered():
    # 'which' is shown only if heard == yes
    assert errors_of(heard="no", story=DROP) == {
        "which": ["This question is not asked after your earlier answers; leave it empty."]
    }


def test_hidden_question_is_not_required_and_empty_answers_count_as_none():
    loaded = load(heard="no", which=[], story=DROP, comment="   ")
    assert "which" not in loaded and "comment" not in loaded


def test_compound_display_condition():
    # story: heard not_in [no] AND support in [agree, neutral]
    assert "story" in load(heard="yes", support="neutral")
    assert errors_of(support="disagree") == {
        "story": ["This question is not asked after your earlier answers; leave it empty."]
    }


def test_dependent_of_an_invalid_answer_reports_only_the_cause():
    assert errors_of(heard="bogus") == {"heard": ["Not a valid choice."]}


def test_consent_missing_or_declined():
    assert errors_of(consent=DROP)["consent"] == ["Consent is required to take part."]
    assert errors_of(consent="no") == {"consent": ["Consent was declined, so nothing can be stored."]}


@pytest.mark.parametrize(
    ("condition", "answers", "expected"),
    [
        ({"question": "q", "operator": "in", "values": ["a"]}, {"q": "a"}, True),
        ({"question": "q", "operator": "in", "values": ["a"]}, {"q": ["b", "a"]}, True),
        ({"question": "q", "operator": "in", "values": ["a"]}, {}, False),
        ({"question": "q", "operator": "not_in", "values": ["a"]}, {"q": "b"}, True),
        ({"question": "q", "operator": "not_in", "values": ["a"]}, {"q": ["b", "a"]}, False),
        ({"question": "q", "operator": "not_in", "values": ["a"]}, {}, False),
        (
            {
                "any": [
                    {"question": "q", "operator": "in", "values": ["a"]},
                    {"question": "r", "operator": "in", "values": ["x"]},
                ]
            },
            {"r": "x"},
            True,
        ),
        (
            {
                "all": [
                    {"question": "q", "operator": "in", "values": ["a"]},
                    {"question": "r", "operator": "in", "values": ["x"]},
                ]
            },
            {"r": "x"},
            False,
        ),
    ],
)
def test_condition_semantics(condition, answers, expected):
    assert is_shown(condition, answers) is expected


def test_question_codes_cannot_shadow_schema_attributes():
    definition = all_types_definition()
    definition["sections"][1]["questions"][0]["code"] = "load"
    schema = build_answer_schema(validate_definition(definition))
    answers = valid_answers()
    answers["load"] = answers.pop("community")
    assert load_answers(schema, answers)["load"] == "x"
