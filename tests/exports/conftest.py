"""Export test data: a questionnaire with every type, answered through the real submission service,
and the rows an export must contain, computed from the submitted answers independently of the
export code."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select

from survey.db import db
from survey.questionnaires.models import Questionnaire
from survey.questionnaires.services import create_questionnaire, open_questionnaire, today
from survey.responses.models import Answer, Response
from survey.responses.services import submit_response
from tests.factories import all_types_definition, opt, submission, t

CODE = "export_types"

# bad-inputs.md rows 43–45 and 54, and a multi-line answer.
SINGLE_LINE_TEXTS = [
    "Prishtinë, Mitrovicë, Gjakovë — çka, Ç, Ë, xh, zh",
    "Приштина, Косово; Ђорђе Љубичић Њ Џ ђ ћ ж",
    "Đorđe Ljubičić, Priština",
    "😀👩🏽‍🌾",
]
MULTI_LINE_TEXTS = ["Line one\nЂорђе Љубичић 😀\nline three", "Rreshti i parë\nдруги ред"]
PII_TEXT = "Call me on +383 44 123 456 or write to ex\u200bample@mail.com"
PII_SCRUBBED = "Call me on [phone] or write to [email]"

# The columns of export_definition(), in order.
NAMES = (
    "version", "language", "channel", "day", "consent", "heard", "which__a", "which__b", "which__c",
    "which__none", "support", "grid__r1", "grid__r2", "score", "priorities__rank1", "priorities__rank2",
    "priorities__rank3", "household", "comment", "story", "balance", "lean", "community", "age",
)  # fmt: skip


def export_definition(code: str = CODE) -> dict[str, Any]:
    """The factories' all-types questionnaire, with room for long text, numbers below zero (a decimal
    number and a rating from -5 to 5) and two demographic questions."""
    definition = all_types_definition(code)
    main, about = definition["sections"]
    for question in main["questions"]:
        if question["code"] == "comment":
            question["max_length"] = 500
    main["questions"] += [
        {"code": "balance", "type": "number", "text": t("Balance"), "min": -100, "max": 100},
        {
            "code": "lean",
            "type": "rating",
            "text": t("Lean"),
            "range": {"min": -5, "max": 5},
            "anchors": {"min": t("left"), "max": t("right")},
            "non_substantive": [opt("cant_say", non_substantive=True)],
        },
    ]
    about["questions"] = [
        {
            "code": "community",
            "type": "single_choice",
            "demographic": True,
            "text": t("Community"),
            "options": [opt("x"), opt("y"), opt("z"), opt("w"), opt("prefer_not_to_say", non_substantive=True)],
        },
        {
            "code": "age",
            "type": "single_choice",
            "demographic": True,
            "ordinal": True,
            "text": t("Age"),
            "options": [opt("a1", value=1), opt("a2", value=2)],
        },
    ]
    return definition


def make_questionnaire(definition: dict[str, Any]) -> Questionnaire:
    questionnaire = create_questionnaire(definition)
    open_questionnaire(questionnaire)
    return questionnaire


def sample_answers(i: int) -> dict[str, Any]:
    """A valid, varied answer set: every type, hidden questions, non-substantive codes, Unicode."""
    heard = ("yes", "no", "not_sure")[i % 3]
    support = ("agree", "neutral", "disagree", "dont_know")[i % 4]
    answers: dict[str, Any] = {"consent": "yes", "heard": heard, "support": support}
    if heard == "yes":
        answers["which"] = (["a"], ["b", "c"], ["none"], ["a", "c"])[i % 4]
    if i % 5 != 4:
        answers["grid"] = {"r1": ("agree", "disagree")[i % 2], "r2": "dont_know"} if i % 3 else {"r1": "neutral"}
    answers["score"] = "cant_say" if i % 6 == 5 else (i * 2) % 12
    answers["priorities"] = (["p1", "p2"], ["p4", "p3", "p2"], ["p2", "p1", "p4"])[i % 3]
    if i % 4 != 3:
        answers["household"] = 1 + i % 30
    answers["comment"] = PII_TEXT if i == 7 else SINGLE_LINE_TEXTS[i % len(SINGLE_LINE_TEXTS)]
    if heard != "no" and support in ("agree", "neutral"):
        answers["story"] = MULTI_LINE_TEXTS[i % len(MULTI_LINE_TEXTS)]
    answers["balance"] = (-5, 2.5, 0, -99.25)[i % 4]
    answers["lean"] = (-5, 5, 0, "cant_say")[i % 4]
    answers["community"] = ("x", "y", "prefer_not_to_say", "w")[i % 4]
    if i % 3 != 2:
        answers["age"] = ("a1", "a2")[i % 2]
    return answers


def expected_row(
    answers: dict[str, Any],
    language: str = "en",
    channel: str = "api",
    version: int = 1,
    day: dt.date | None = None,
    scrubbed: bool = True,
) -> dict[str, Any]:
    """The export row of one submission, from its answers (codes, 0/1 flags, ranks, numbers)."""
    which = answers.get("which")
    grid = answers.get("grid") or {}
    ranked = answers.get("priorities") or []
    comment = answers.get("comment")
    if scrubbed and comment == PII_TEXT:
        comment = PII_SCRUBBED
    return {
        "version": version,
        "language": language,
        "channel": channel,
        "day": day or today(),
        "consent": answers.get("consent"),
        "heard": answers.get("heard"),
        **{f"which__{code}": None if which is None else int(code in which) for code in ("a", "b", "c", "none")},
        "support": answers.get("support"),
        "grid__r1": grid.get("r1"),
        "grid__r2": grid.get("r2"),
        "score": answers.get("score"),
        **{f"priorities__rank{rank}": ranked[rank - 1] if len(ranked) >= rank else None for rank in (1, 2, 3)},
        "household": answers.get("household"),
        "comment": comment,
        "story": answers.get("story"),
        "balance": answers.get("balance"),
        "lean": answers.get("lean"),
        "community": answers.get("community"),
        "age": answers.get("age"),
    }


def submit(code: str, answers: dict[str, Any], language: str = "en", channel: str = "api", **extra: Any) -> None:
    result = submit_response(code, submission(answers, language=language, **extra), channel=channel)
    assert result.created


LANGUAGES = ("en", "sq", "sr-Latn", "sr-Cyrl")
CHANNELS = ("api", "web")


@pytest.fixture
def exported(app: Flask) -> list[dict[str, Any]]:
    """``export_types`` with 12 responses; returns their expected rows."""
    make_questionnaire(export_definition())
    expected = []
    for i in range(12):
        answers = sample_answers(i)
        language, channel = LANGUAGES[i % 4], CHANNELS[i % 2]
        submit(CODE, answers, language=language, channel=channel)
        expected.append(expected_row(answers, language, channel))
    return expected


def clone_responses(code: str, count: int) -> None:
    """Add ``count`` copies of the questionnaire's first response in bulk (fast, for volume tests)."""
    r, a = Response.__table__, Answer.__table__
    template = db.session.execute(
        select(r).join(Questionnaire.__table__).where(Questionnaire.code == code).limit(1)
    ).one()
    answers = db.session.execute(select(a).where(a.c.response_id == template.id)).mappings().all()
    responses, rows = [], []
    for _ in range(count):
        new_id = uuid.uuid4()
        responses.append({**template._mapping, "id": new_id, "submission_key": uuid.uuid4().hex * 2})
        rows += [{**answer, "response_id": new_id} for answer in answers]
    db.session.execute(insert(r), responses)
    db.session.execute(insert(a), rows)
