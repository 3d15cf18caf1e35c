"""The web form's paging: pages of a definition, visibility, randomised order, page-level checks.

Nothing here stores anything: answers travel between pages in the form itself (a hidden field) and
reach the database only through the submit service on the last page. Validation is the version's
answer schema, the same one the JSON API uses; a page shows the problems of its own questions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import marshmallow as ma

from survey.questionnaires.types import FormData, get_type
from survey.responses.schemas import AnswerSchema, is_shown, load_answers


@dataclass(frozen=True)
class Page:
    index: int
    code: str
    title: dict[str, str] | None
    description: dict[str, str] | None
    questions: list[dict[str, Any]]


def pages_of(definition: dict[str, Any]) -> list[Page]:
    """The consent screen (if any) is page 0; each section is one page after it."""
    pages = []
    if definition.get("consent"):
        pages.append(Page(0, "consent", None, definition.get("description"), [definition["consent"]]))
    for section in definition["sections"]:
        pages.append(
            Page(len(pages), section["code"], section["title"], section.get("description"), section["questions"])
        )
    return pages


def shown(question: dict[str, Any], answers: dict[str, Any]) -> bool:
    condition = question.get("display_if")
    return condition is None or is_shown(condition, answers)


def visible_questions(page: Page, answers: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for q in page.questions if shown(q, answers)]


def without_hidden(definition_pages: list[Page], answers: dict[str, Any]) -> dict[str, Any]:
    """Drop answers to questions that earlier answers now hide (a respondent went back and changed one).

    Questions are visited in order, so a chain of conditions settles in one pass.
    """
    kept: dict[str, Any] = {}
    for page in definition_pages:
        for question in page.questions:
            code = question["code"]
            if code in answers and shown(question, kept):
                kept[code] = answers[code]
    return kept


def read_page(page: Page, form: FormData) -> dict[str, Any]:
    """The answers posted for one page's questions (None where left empty)."""
    return {q["code"]: get_type(q["type"]).from_form(q, form) for q in page.questions}


def merge(carried: dict[str, Any], page_answers: dict[str, Any]) -> dict[str, Any]:
    merged = {code: value for code, value in carried.items() if code not in page_answers}
    merged.update({code: value for code, value in page_answers.items() if value is not None})
    return merged


def problems(
    schema: AnswerSchema, answers: dict[str, Any], codes: set[str]
) -> dict[str, list[str] | dict[str, list[str]]]:
    """The answer schema's messages for the given question codes only."""
    try:
        load_answers(schema, answers)
    except ma.ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {}
        return {code: message for code, message in messages.items() if code in codes}
    return {}


def next_page(pages: list[Page], current: int, answers: dict[str, Any], step: int) -> int | None:
    """The nearest page in direction ``step`` with a visible question, or None past either end."""
    index = current + step
    while 0 <= index < len(pages):
        if visible_questions(pages[index], answers):
            return index
        index += step
    return None


def in_respondent_order(items: list[dict[str, Any]], randomize: bool, seed: str) -> list[dict[str, Any]]:
    """Shuffle per respondent (stable across pages and re-renders); ``pin_last`` items stay last."""
    if not randomize:
        return items
    movable = [item for item in items if not item.get("pin_last")]
    pinned = [item for item in items if item.get("pin_last")]
    random.Random(seed).shuffle(movable)  # noqa: S311 - order effects, not secrecy
    return movable + pinned


def declined(definition: dict[str, Any], answers: dict[str, Any]) -> bool:
    consent = definition.get("consent")
    return bool(consent and consent.get("terminate_if") and is_shown(consent["terminate_if"], answers))
