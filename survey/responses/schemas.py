"""Submission schemas: the envelope every channel sends, and the answer schema built per version.

The answer schema is the one rule book for answers: the JSON API and the web form both validate
through :class:`AnswerSchema`, which delegates each answer to the question-type registry and then
applies ``required``, ``display_if`` and consent across questions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from survey.api import Schema
from survey.i18n import gettext as _
from survey.questionnaires.definition import iter_questions
from survey.questionnaires.fields import StrictInteger, condition_leaves
from survey.questionnaires.types import AnswerError, get_type

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class SubmissionSchema(Schema):
    """What a client sends to submit one response."""

    submission_id = fields.String(
        required=True,
        metadata={
            "description": "A random (version 4) UUID made by the client when the form is opened and "
            "kept across retries; resubmitting it never stores a second response.",
            "format": "uuid",
            "example": "0b7e7d4e-4c4f-4f59-9a43-2f7e2d8f9b10",
        },
    )
    language = fields.String(required=True, metadata={"description": "The language answered in", "example": "sq"})
    version = StrictInteger(
        load_default=None,
        validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "The published version answered; defaults to the current one"},
    )
    participation_code = fields.String(
        load_default=None,
        validate=validate.Length(max=64),
        metadata={"description": "A one-time invitation code, for questionnaires that require one"},
    )
    answers = fields.Dict(  # JSON object keys are strings already: no per-key field to run
        required=True,
        metadata={"description": "Question code to answer value (DESIGN §4 gives each type's value)"},
    )

    @ma.validates("submission_id")
    def _is_uuid4(self, value: str, **kwargs: Any) -> None:
        if not UUID4.match(value.lower()):
            raise ma.ValidationError("Must be a random (version 4) UUID.")


# One instance for every request: a Schema is configured when built (marshmallow deep-copies its
# fields, the most expensive step of a load) and keeps no state between loads.
SUBMISSION_SCHEMA = SubmissionSchema()


class SubmissionReceiptSchema(Schema):
    """What the service answers: nothing but what the client already knows and the day."""

    submission_id = fields.String(metadata={"format": "uuid"})
    questionnaire = fields.String()
    version = fields.Integer()
    received_on = fields.Date(metadata={"description": "The day (UTC) the response was first stored"})


class AnswerSchema:
    """One published version's answer rules: each question's answer checked by its question type,
    then ``required``, ``display_if`` and consent across questions.

    A plain loop rather than a marshmallow schema of one field per question: it is the hot path of
    every submission (issue 7), and marshmallow's per-field machinery cost more than the checks
    themselves. Problems are reported as marshmallow does everywhere else (``ma.ValidationError``
    with messages keyed by question code, unknown codes as "Unknown field."), all of them at once.
    """

    def __init__(self, definition: dict[str, Any]) -> None:
        self.questions = [spec for _section, spec in iter_questions(definition)]
        self._kinds = {spec["code"]: (spec, get_type(spec["type"])) for spec in self.questions}
        self._rules = [_Rule.of(spec) for spec in self.questions]

    def load(self, answers: dict[str, Any]) -> dict[str, Any]:
        """The given answers normalised, in questionnaire order, empty ones left out."""
        errors: dict[str, Any] = {code: [UNKNOWN_FIELD] for code in answers if code not in self._kinds}
        data: dict[str, Any] = {}
        for code, (question, kind) in self._kinds.items():
            value = answers.get(code)
            if value is None or kind.is_empty(value):
                data[code] = None
                continue
            try:
                data[code] = kind.validate(question, value)
            except AnswerError as error:
                errors[code] = error.messages
        errors.update(self._visibility_and_required(data, invalid=set(errors)))
        if errors:
            raise ma.ValidationError(errors)
        return {code: value for code, value in data.items() if value is not None}

    def _visibility_and_required(self, data: dict[str, Any], invalid: set[str]) -> dict[str, list[str]]:
        """Problems across questions; ``invalid`` answers are reported already and taken as unknown."""
        errors: dict[str, list[str]] = {}
        for rule in self._rules:
            code = rule.code
            if rule.terminate_if:
                if data.get(code) is None and code not in invalid:
                    errors[code] = [_("Consent is required to take part.")]
                elif code not in invalid and is_shown(rule.terminate_if, data):
                    # Declining ends the questionnaire: that is the only thing worth saying.
                    return {code: [_("Consent was declined, so nothing can be stored.")]}
                continue
            if not rule.depends_on.isdisjoint(invalid):
                continue  # visibility depends on an answer that is itself wrong; report that one
            shown = rule.display_if is None or is_shown(rule.display_if, data)
            answered = data.get(code) is not None
            if not shown and answered:
                errors[code] = [_("This question is not asked after your earlier answers; leave it empty.")]
            elif shown and rule.required and not answered and code not in invalid:
                errors[code] = [_("An answer is required.")]
        return errors


@dataclass(frozen=True)
class _Rule:
    """What one question asks of the others' answers, read from its definition once."""

    code: str
    required: bool
    display_if: dict[str, Any] | None
    terminate_if: dict[str, Any] | None
    depends_on: frozenset[str]  # the questions its display_if tests

    @classmethod
    def of(cls, question: dict[str, Any]) -> _Rule:
        condition = question.get("display_if") or None
        leaves = condition_leaves(condition) if condition else []
        return cls(
            code=question["code"],
            required=bool(question.get("required")),
            display_if=condition,
            terminate_if=question.get("terminate_if") or None,
            depends_on=frozenset(leaf["question"] for leaf in leaves),
        )


UNKNOWN_FIELD = "Unknown field."  # marshmallow's words, as every other schema of the API says it


def is_shown(condition: dict[str, Any], answers: dict[str, Any]) -> bool:
    """Evaluate a ``display_if`` (or ``terminate_if``) condition on normalised answers."""
    if "all" in condition:
        return all(is_shown(part, answers) for part in condition["all"])
    if "any" in condition:
        return any(is_shown(part, answers) for part in condition["any"])
    value = answers.get(condition["question"])
    if value is None:
        return False  # a condition on an unanswered question is false, for in and not_in alike
    selected = _selected_codes(value)
    wanted = set(condition["values"])
    if condition["operator"] == "in":
        return bool(selected & wanted)
    return not (selected & wanted)


def _selected_codes(value: Any) -> set[str]:
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return {value} if isinstance(value, str) else set()


def build_answer_schema(definition: dict[str, Any]) -> AnswerSchema:
    """The answer rules of a version, built once per version (they keep no state between loads)."""
    return AnswerSchema(definition)


def load_answers(schema: AnswerSchema, answers: dict[str, Any]) -> dict[str, Any]:
    """Validate answers; return only the given ones, normalised. Raises ``ma.ValidationError``."""
    return schema.load(answers)
