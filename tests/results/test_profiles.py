"""Answer profiles: one GROUP BY counts every breakdown, and gives what counting the raw answers gives."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from survey.db import db
from survey.errors import DefinitionInvalidError
from survey.questionnaires.models import Option, Question, QuestionItem
from survey.questionnaires.services import (
    SHIPPED_DEFINITIONS,
    get_questionnaire,
    publish_draft,
    save_draft,
)
from survey.responses.models import Answer, AnswerProfile, Response
from survey.responses.profiles import profile_id
from survey.responses.services import submit_response
from survey.results.queries import ALL, OVERALL, aggregate
from tests.factories import dialogue_answers, submission

CODE = "dialogue_2022"
CHOICES = {  # few enough combinations that each profile has several respondents
    "residence_area": ["kosovo", "serbia"],
    "community": ["albanian", "serb", None],
    "age_band": ["age_18_24", None],
    "gender": ["woman", "man"],
}
BREAKDOWNS = list(CHOICES)


def fill(count: int, seed: int, version: int | None = None) -> None:
    rng = random.Random(seed)
    for _ in range(count):
        answers = dialogue_answers()
        for code, options in CHOICES.items():
            answers.pop(code, None)
            chosen = rng.choice(options)
            if chosen is not None:
                answers[code] = chosen
        answers["transparency_rating"] = rng.randint(0, 10)
        answers["agreements_known"] = rng.sample(["freedom_of_movement", "licence_plates", "energy"], rng.randint(1, 3))
        answers["priorities_ranking"] = rng.sample(["economy_jobs", "freedom_of_movement", "education_diplomas"], 2)
        if rng.random() < 0.3:
            del answers["message_to_leaders"]
        extra = {"version": version} if version else {}
        submit_response(CODE, submission(answers=answers, **extra), channel="api")


def counted_from_raw_answers(breakdowns: list[str]) -> dict[str, dict[str, Any]]:
    """The same counts, the slow way: every answer row read back and counted in Python."""
    question = dict(db.session.execute(select(Question.id, Question.code)).all())
    option = dict(db.session.execute(select(Option.id, Option.code)).all())
    item = dict(db.session.execute(select(QuestionItem.id, QuestionItem.code)).all())
    rows = db.session.execute(
        select(Answer.response_id, Answer.question_id, Answer.item_id, Answer.option_id, Answer.rank, Answer.number)
    ).all()
    group_of: dict[str, dict[Any, str]] = defaultdict(dict)
    for response, question_id, _item, option_id, _rank, _number in rows:
        if question[question_id] in breakdowns:
            group_of[question[question_id]][response] = option[option_id]
    expected: dict[str, dict[str, Any]] = {}
    for key in [OVERALL, *breakdowns]:
        cells: Counter = Counter()
        numbers: Counter = Counter()
        respondents: dict[tuple[str, Any], set] = defaultdict(set)
        for response, question_id, item_id, option_id, rank, number in rows:
            code = question[question_id]
            group = group_of[key].get(response) if key else ALL
            respondents[(code, group)].add(response)
            if option_id is not None:
                cells[(code, group, item.get(item_id), option[option_id], rank)] += 1
            elif number is not None:
                numbers[(code, group, float(number))] += 1
        answered = {k: len(v) for k, v in respondents.items()}
        expected[key] = {"cells": cells, "numbers": numbers, "answered": answered}
    return expected


def flattened(counted: Any) -> dict[str, Any]:
    cells: Counter = Counter()
    numbers: Counter = Counter()
    answered: dict[tuple[str, Any], int] = {}
    for code, entry in counted.questions.items():
        for (group, row, option, rank), count in entry.cells.items():
            if count:
                cells[(code, group, row, option, rank)] += count
        for group, values in entry.numbers.items():
            for value, count in values.items():
                numbers[(code, group, value)] += count
        for group, count in entry.answered.items():
            answered[(code, group)] = count
    return {"cells": cells, "numbers": numbers, "answered": answered}


def test_one_group_by_counts_every_breakdown_as_the_raw_answers_do(app):
    fill(70, seed=11)
    questionnaire = get_questionnaire(CODE)
    counted = aggregate(questionnaire, BREAKDOWNS)
    expected = counted_from_raw_answers(BREAKDOWNS)
    for key in [OVERALL, *BREAKDOWNS]:
        assert counted[key].total == 70
        assert flattened(counted[key]) == expected[key], key
    # everyone who skipped a breakdown question is in its None group, nobody is lost
    community = counted["community"].questions["dialogue_support"].answered
    assert None in community and sum(community.values()) == 70


def test_every_answer_row_carries_its_responses_profile(app):
    fill(25, seed=3)
    profiles = dict(db.session.execute(select(AnswerProfile.id, AnswerProfile.breakdowns)).all())
    by_response: dict[Any, set[int]] = defaultdict(set)
    for response, profile in db.session.execute(select(Answer.response_id, Answer.profile_id)):
        by_response[response].add(profile)
    assert len(by_response) == 25 and all(len(ids) == 1 for ids in by_response.values())
    for ids in by_response.values():
        (profile,) = ids
        assert profile_id(profiles[profile]) == profile  # the id is the hash of what it stands for
    assert set(profiles) == {p for ids in by_response.values() for p in ids}  # no profile without a response


def _second_version(change: Callable[[dict[str, Any]], None]) -> None:
    questionnaire = get_questionnaire(CODE)
    definition = json.loads((SHIPPED_DEFINITIONS / f"{CODE}.json").read_text(encoding="utf-8"))
    change(definition)
    save_draft(questionnaire, definition)
    publish_draft(questionnaire)


def _question(definition: dict[str, Any], code: str) -> dict[str, Any]:
    return next(q for s in definition["sections"] for q in s["questions"] if q["code"] == code)


def test_a_breakdown_added_by_a_new_version_puts_earlier_responses_in_the_skipped_group(app):
    fill(12, seed=5, version=1)

    def add_breakdown(definition: dict[str, Any]) -> None:
        about_you = next(s for s in definition["sections"] if s["code"] == "s9_about_you")
        settlement = copy.deepcopy(_question(definition, "residence_area"))
        settlement.update(code="settlement_type", required=False)
        about_you["questions"].append(settlement)

    _second_version(add_breakdown)
    answers = dialogue_answers() | {"settlement_type": "serbia"}
    for _ in range(3):
        submit_response(CODE, submission(answers=answers, version=2), channel="api")
    counted = aggregate(get_questionnaire(CODE), ["settlement_type", "community"])
    support = counted["settlement_type"].questions["dialogue_support"]
    assert support.answered == {None: 12, "serbia": 3}
    # questions match across versions by code: both versions' answers are in one table
    assert sum(counted[OVERALL].questions["dialogue_support"].answered.values()) == 15
    assert flattened(counted["community"]) == counted_from_raw_answers(["community"])["community"]


def test_an_ordinary_question_cannot_become_a_breakdown_in_a_later_version(app):
    fill(2, seed=1)

    def flag(definition: dict[str, Any]) -> None:
        _question(definition, "awareness_dialogue")["demographic"] = True

    with pytest.raises(DefinitionInvalidError) as refused:
        _second_version(flag)
    assert refused.value.errors["problems"] == [
        "questions.awareness_dialogue.demographic: an earlier version asked 'awareness_dialogue' as an ordinary "
        "question; give the breakdown question a new code"
    ]

    def unflag(definition: dict[str, Any]) -> None:  # the other way round is allowed
        _question(definition, "gender")["demographic"] = False

    _second_version(unflag)
    assert db.session.scalar(select(Response.id).limit(1)) is not None
