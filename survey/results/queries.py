"""SQL aggregation: the database counts, Python only reshapes the grouped rows.

One GROUP BY over the answers of a questionnaire (all its versions) gives every count of every
table, for the overall results and for every breakdown at once: each answer row carries its
response's answer profile (``responses.profiles``: the response's answers to the breakdown
questions), so a count per (question, row, option, rank, value, profile) is all there is to know.
The rows with ``seq = 0`` count respondents: each answered question has exactly one. Ids are turned
into codes afterwards, in the few grouped rows, so questions and options match across versions by
their stable codes. Nothing here loads individual responses.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select

from survey.db import db
from survey.questionnaires.models import Option, Question, QuestionItem, Questionnaire, QuestionnaireVersion
from survey.responses.models import Answer, AnswerProfile, Response

ALL = "all"  # the group of the counts without breakdown
OVERALL = ""  # their key; a breakdown's counts are keyed by its question code


@dataclass
class QuestionCounts:
    """The grouped counts of one question. Keys of ``cells``: (group, row, option, rank)."""

    code: str
    cells: Counter[tuple[str | None, str | None, str, int | None]] = field(default_factory=Counter)
    numbers: dict[str | None, Counter[float]] = field(default_factory=lambda: defaultdict(Counter))
    answered: Counter[str | None] = field(default_factory=Counter)


@dataclass
class Aggregate:
    total: int
    breakdown: str | None
    questions: dict[str, QuestionCounts]


def count_responses(questionnaire: Questionnaire) -> int:
    return (
        db.session.scalar(
            select(func.count()).select_from(Response).where(Response.questionnaire_id == questionnaire.id)
        )
        or 0
    )


def aggregate(questionnaire: Questionnaire, breakdowns: Sequence[str] = ()) -> dict[str, Aggregate]:
    """Every count of the questionnaire: overall (key ``OVERALL``, group ``"all"``) and by each breakdown
    question's answer (key: its code; group: the option chosen, ``None`` for those who skipped it)."""
    question_ids = select(Question.id).where(
        Question.version_id.in_(
            select(QuestionnaireVersion.id).where(QuestionnaireVersion.questionnaire_id == questionnaire.id)
        )
    )
    keys = [Answer.question_id, Answer.option_id, Answer.item_id, Answer.rank, Answer.number, Answer.profile_id]
    grouped = (
        select(*keys, func.count(), func.sum(case((Answer.seq == 0, 1), else_=0)))
        .where(Answer.question_id.in_(question_ids))
        .group_by(*keys)
    )
    codes = _Codes(questionnaire, question_ids)
    total = count_responses(questionnaire)
    keys_in_order = (OVERALL, *breakdowns)
    counted = {key: Aggregate(total, key or None, {}) for key in keys_in_order}
    # Per profile, its group in each aggregate (in keys_in_order); per question, its entry in each.
    groups_of = {
        profile: (ALL, *(answers.get(key) for key in breakdowns)) for profile, answers in codes.profiles.items()
    }
    unknown = (ALL, *(None for _ in breakdowns))
    entries_of: dict[int, list[QuestionCounts]] = {}
    # Core rows straight from the session's connection: the ORM would add nothing but time here.
    for (
        question_id,
        option_id,
        item_id,
        rank,
        number,
        profile_id,
        count,
        respondents,
    ) in db.session.connection().execute(grouped):
        entries = entries_of.get(question_id)
        if entries is None:
            code = codes.questions[question_id]
            entries = entries_of[question_id] = [
                counted[key].questions.setdefault(code, QuestionCounts(code)) for key in keys_in_order
            ]
        groups = groups_of.get(profile_id, unknown)
        pairs = zip(entries, groups, strict=True)
        option = codes.options.get(option_id)
        if option is not None:
            row = codes.items.get(item_id)
            for entry, group in pairs:
                entry.cells[(group, row, option, rank)] += count
        elif number is not None:
            value = float(number)
            for entry, group in pairs:
                entry.numbers[group][value] += count
        if respondents:
            for entry, group in zip(entries, groups, strict=True):
                entry.answered[group] += respondents
    return counted


class _Codes:
    """The codes behind the ids in the grouped rows: questions, options and rows of every version,
    and the questionnaire's answer profiles."""

    def __init__(self, questionnaire: Questionnaire, question_ids: Any) -> None:
        self.questions: dict[int, str] = dict(
            db.session.execute(select(Question.id, Question.code).where(Question.id.in_(question_ids))).all()
        )  # type: ignore[arg-type]
        self.options: dict[int | None, str] = dict(
            db.session.execute(select(Option.id, Option.code).where(Option.question_id.in_(question_ids))).all()  # type: ignore[arg-type]
        )
        self.items: dict[int | None, str] = dict(
            db.session.execute(
                select(QuestionItem.id, QuestionItem.code).where(QuestionItem.question_id.in_(question_ids))
            ).all()  # type: ignore[arg-type]
        )
        self.profiles: dict[int, dict[str, str]] = dict(
            db.session.execute(
                select(AnswerProfile.id, AnswerProfile.breakdowns).where(
                    AnswerProfile.questionnaire_id == questionnaire.id
                )
            ).all()  # type: ignore[arg-type]
        )
