"""The definition format: the shipped questionnaire, and broken definitions with exact paths."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from survey.errors import DefinitionInvalidError
from survey.questionnaires.definition import checksum, iter_questions, validate_definition
from survey.questionnaires.services import SHIPPED_DEFINITIONS
from tests.factories import all_types_definition

LANGUAGES = {"en", "sq", "sr-Latn", "sr-Cyrl"}


def shipped() -> dict[str, Any]:
    return json.loads((SHIPPED_DEFINITIONS / "dialogue_2022.json").read_text(encoding="utf-8"))


def localized_texts(value: Any, path: str = "") -> list[tuple[str, dict]]:
    """Every respondent-facing text object (a dict whose keys include 'en') with its path."""
    found = []
    if isinstance(value, dict):
        if "en" in value and all(isinstance(v, str) for v in value.values()):
            return [(path, value)]
        for key, item in value.items():
            if key not in ("themes", "sources", "source_document"):
                found += localized_texts(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += localized_texts(item, f"{path}[{index}]")
    return found


def test_shipped_questionnaire_is_valid_and_publishable():
    definition = validate_definition(shipped(), require_complete=True)
    assert definition["code"] == "dialogue_2022"
    assert {lang["code"] for lang in definition["languages"]} == LANGUAGES


def test_shipped_questionnaire_is_complete_in_four_languages():
    texts = localized_texts(shipped())
    assert len(texts) > 300
    for path, text in texts:
        assert set(text) == LANGUAGES, path
        assert all(value.strip() for value in text.values()), path


def test_shipped_questionnaire_structure_follows_the_notes():
    definition = validate_definition(shipped())
    questions = dict((q["code"], q) for _s, q in iter_questions(definition))
    # 33 substantive + 4 demographic + consent (questionnaire-notes §1)
    assert len(questions) == 38
    assert [c for c, q in questions.items() if q.get("demographic")] == [
        "residence_area",
        "community",
        "age_band",
        "gender",
    ]
    assert {c for c, q in questions.items() if q.get("required")} == {
        "consent_confirm",
        "awareness_dialogue",
        "agreements_heard",
        "dialogue_support",
        "residence_area",
    }
    cyrillic = {chr(c) for c in range(0x0400, 0x0500)}
    for path, text in localized_texts(definition):
        assert not set(text["sr-Latn"]) & cyrillic, path
        assert not set(text["sr-Cyrl"]) & set("abcdefghijklmnopqrstuvwxyzčćšžđ"), path


def test_validation_is_idempotent_so_checksums_are_stable():
    once = validate_definition(shipped())
    assert validate_definition(copy.deepcopy(once)) == once
    assert checksum(validate_definition(once)) == checksum(once)


def _broken(change) -> dict[str, Any]:
    definition = all_types_definition()
    change(definition)
    return definition


def _question(d: dict, code: str) -> dict:
    return next(q for s in d["sections"] for q in s["questions"] if q["code"] == code)


BROKEN = [
    (
        "duplicate option code",
        lambda d: _question(d, "which")["options"].append({"code": "a", "label": {"en": "A"}}),
        "sections[0].questions[1].options[4].code: duplicate code 'a'",
    ),
    (
        "unknown type",
        lambda d: _question(d, "heard").update(type="slider"),
        "sections[0].questions[0].type: unknown question type",
    ),
    (
        "missing translation",
        lambda d: _question(d, "support")["text"].pop("sq"),
        "sections[0].questions[2].text.sq: missing translation",
    ),
    (
        "undeclared language",
        lambda d: _question(d, "heard")["text"].update(de="Gehört?"),
        "sections[0].questions[0].text.de: language not declared in 'languages'",
    ),
    (
        "empty text",
        lambda d: d["title"].update(en="   "),
        "title.en: must not be empty",
    ),
    (
        "bad code",
        lambda d: _question(d, "comment").update(code="Comment-1"),
        "sections[0].questions[7].code: must be snake_case",
    ),
    (
        "duplicate question code across sections",
        lambda d: _question(d, "community").update(code="heard"),
        "sections[1].questions[0].code: duplicate question code 'heard'",
    ),
    (
        "display_if on a later question",
        lambda d: _question(d, "which").update(
            display_if={"question": "support", "operator": "in", "values": ["agree"]}
        ),
        "sections[0].questions[1].display_if: refers to 'support', which is not an earlier question",
    ),
    (
        "display_if with an unknown value",
        lambda d: _question(d, "which").update(display_if={"question": "heard", "operator": "in", "values": ["maybe"]}),
        "sections[0].questions[1].display_if: 'maybe' is not a code of 'heard'",
    ),
    (
        "display_if bad operator",
        lambda d: _question(d, "which").update(display_if={"question": "heard", "operator": "eq", "values": ["yes"]}),
        "sections[0].questions[1].display_if.operator: Must be one of: in, not_in.",
    ),
    (
        "max below min",
        lambda d: _question(d, "which").update(min_choices=2, max_choices=1),
        "sections[0].questions[1].max_choices: must not be less than min_choices",
    ),
    (
        "exclusive outside multiple choice",
        lambda d: _question(d, "heard")["options"][0].update(exclusive=True),
        "sections[0].questions[0].options[0].exclusive: only multiple_choice options can be exclusive",
    ),
    (
        "scale values out of order",
        lambda d: _question(d, "support")["scale"]["points"][1].update(value=5),
        "sections[0].questions[2].scale.points[1].value: scale points are valued 1..n in order; expected 2",
    ),
    (
        "matrix duplicate row",
        lambda d: _question(d, "grid")["rows"].append({"code": "r1", "label": {"en": "again"}}),
        "sections[0].questions[3].rows[2].code: duplicate code 'r1'",
    ),
    (
        "rating step does not divide",
        lambda d: _question(d, "score")["range"].update(step=3),
        "sections[0].questions[4].range.step: must divide max - min",
    ),
    (
        "ranking more than options",
        lambda d: _question(d, "priorities").update(max_ranked=9),
        "sections[0].questions[5].max_ranked: more than the number of options",
    ),
    (
        "text too long a limit",
        lambda d: _question(d, "comment").update(max_length=100000),
        "sections[0].questions[7].max_length: Must be greater than or equal to 1 and less than or equal to 5000.",
    ),
    (
        "integer flag not boolean-typed number",
        lambda d: _question(d, "household").update(min="1"),
        "sections[0].questions[6].min: Not a valid number.",
    ),
    (
        "unknown member",
        lambda d: _question(d, "heard").update(colour="red"),
        "sections[0].questions[0].colour: Unknown field.",
    ),
    (
        "demographic must be single choice",
        lambda d: _question(d, "score").update(demographic=True),
        "sections[0].questions[4].demographic: a demographic question must be single_choice",
    ),
    (
        "default language not declared",
        lambda d: d.update(default_language="fr"),
        "default_language: must be one of the declared languages",
    ),
    (
        "consent that cannot be declined",
        lambda d: d["consent"].pop("terminate_if"),
        "consent.terminate_if: say which answer declines consent",
    ),
    (
        "control character in a label",
        lambda d: _question(d, "heard")["options"][0]["label"].update(en="Yes\x00"),
        "sections[0].questions[0].options[0].label.en: contains a control character",
    ),
    (
        "no sections",
        lambda d: d.update(sections=[]),
        "sections: Shorter than minimum length 1.",
    ),
]


@pytest.mark.parametrize(("name", "change", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_definitions_fail_with_path_and_message(name, change, expected):
    with pytest.raises(DefinitionInvalidError) as caught:
        validate_definition(_broken(change))
    problems = caught.value.errors["problems"]
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_at_once():
    def many(d):
        _question(d, "heard").update(type="slider")
        _question(d, "support")["text"].pop("sq")
        d["default_language"] = "fr"

    with pytest.raises(DefinitionInvalidError) as caught:
        validate_definition(_broken(many))
    problems = caught.value.errors["problems"]
    assert len(problems) >= 3
    assert any(p.startswith("default_language") for p in problems)
    assert any(p.startswith("sections[0].questions[0].type") for p in problems)
    assert any(p.startswith("sections[0].questions[2].text.sq") for p in problems)


def test_a_draft_may_be_incomplete_but_not_published():
    definition = _broken(lambda d: _question(d, "support")["text"].pop("sq"))
    assert validate_definition(definition, require_complete=False)["code"] == "all_types"
    with pytest.raises(DefinitionInvalidError):
        validate_definition(definition, require_complete=True)


@pytest.mark.parametrize("raw", [None, [], "text", 3])
def test_not_an_object(raw):
    with pytest.raises(DefinitionInvalidError):
        validate_definition(raw)


def test_a_broken_question_others_refer_to_is_reported_not_crashed():
    definition = all_types_definition()
    definition["consent"]["options"] = [definition["consent"]["options"][0]]  # one option only
    _question(definition, "heard")["options"] = [{"code": "yes", "label": {"en": "Yes"}}]  # 'which' refers to it
    with pytest.raises(DefinitionInvalidError) as caught:
        validate_definition(definition)
    problems = caught.value.errors["problems"]
    assert "consent.options: Shorter than minimum length 2." in problems
    assert any(p.startswith("sections[0].questions[0].options") for p in problems)
