"""SQL aggregation: the database counts, Python only reshapes the grouped rows.

One GROUP BY over the answers gives every (question, group, row, option, rank, value) count of a
questionnaire, across all its versions (questions and options are matched by their stable codes);
a second gives how many respondents of each group answered each question. Nothing here loads
individual responses.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from survey.db import db
from survey.questionnaires.models import Option, Question, QuestionItem, Questionnaire, QuestionnaireVersion
from survey.responses.models import Answer, Response

ALL = "all"
NOT_ANSWERED = None  # the group of respondents who skipped the breakdown question


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


def aggregate(questionnaire: Questionnaire, breakdown: str | None = None) -> Aggregate:
    """Every count of the questionnaire, overall (group ``"all"``) or by the breakdown question's answer."""
    version_ids = select(QuestionnaireVersion.id).where(QuestionnaireVersion.questionnaire_id == questionnaire.id)
    group_columns: list[Any] = []
    joins: list[Any] = []
    if breakdown is not None:
        # Each response's answer to the breakdown question (a single choice) is its group.
        by_answer, by_question, by_option = aliased(Answer), aliased(Question), aliased(Option)
        grouping = (
            select(by_answer.response_id.label("response_id"), by_option.code.label("grp"))
            .join(by_question, by_answer.question_id == by_question.id)
            .join(by_option, by_answer.option_id == by_option.id)
            .where(by_question.code == breakdown, by_question.version_id.in_(version_ids))
            .subquery()
        )
        group_columns = [grouping.c.grp]
        joins = [(grouping, grouping.c.response_id == Answer.response_id)]

    def scoped(statement: Any) -> Any:
        statement = statement.join(Question, Answer.question_id == Question.id).where(
            Question.version_id.in_(version_ids)
        )
        for target, condition in joins:
            statement = statement.outerjoin(target, condition)
        return statement

    cell_keys = [Question.code, *group_columns, QuestionItem.code, Option.code, Answer.rank, Answer.number]
    cells = scoped(
        select(*cell_keys, func.count())
        .select_from(Answer)
        .outerjoin(Option, Answer.option_id == Option.id)
        .outerjoin(QuestionItem, Answer.item_id == QuestionItem.id)
    ).group_by(*cell_keys)
    answered_keys = [Question.code, *group_columns]
    answered = scoped(
        select(*answered_keys, func.count(func.distinct(Answer.response_id))).select_from(Answer)
    ).group_by(*answered_keys)

    def split(row: Any) -> tuple[str, Any, tuple[Any, ...]]:
        """(question code, group, the rest): the group is ``"all"`` without a breakdown."""
        if breakdown is None:
            return row[0], ALL, tuple(row[1:])
        return row[0], row[1], tuple(row[2:])

    questions: dict[str, QuestionCounts] = {}

    def counts_of(code: str) -> QuestionCounts:
        return questions.setdefault(code, QuestionCounts(code))

    for record in db.session.execute(cells):
        code, group, (row, option, rank, number, count) = split(record)
        entry = counts_of(code)
        if option is not None:
            entry.cells[(group, row, option, rank)] += count
        elif number is not None:
            entry.numbers[group][float(number)] += count
    for record in db.session.execute(answered):
        code, group, (count,) = split(record)
        counts_of(code).answered[group] += count
    return Aggregate(count_responses(questionnaire), breakdown, questions)
