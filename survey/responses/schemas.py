"""Submission schemas: the envelope every channel sends, and the answer schema built per version.

The answer schema is the one rule book for answers: the JSON API and the web form both validate
through :func:`build_answer_schema`, whose field per question delegates to the question-type
registry and whose schema-level check applies ``required``, ``display_if`` and consent.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

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
    answers = fields.Dict(
        keys=fields.String(),
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


class _AnswerField(fields.Field):
    """One question's answer, validated by its question type; an empty answer loads as None."""

    def __init__(self, question: dict[str, Any]) -> None:
        super().__init__(allow_none=True, load_default=None, data_key=question["code"])
        self.question = question
        self.kind = get_type(question["type"])

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if self.kind.is_empty(value):
            return None
        try:
            return self.kind.validate(self.question, value)
        except AnswerError as error:
            raise ma.ValidationError(error.messages) from None


class AnswerSchemaBase(Schema):
    """Base of the generated per-version schemas; ``_questions`` is set on each subclass.

    A question's field is the attribute ``a_<code>`` with ``data_key=<code>``, so that no question
    code can shadow a Schema attribute (a question called ``load`` or ``fields``).
    """

    _questions: list[dict[str, Any]] = []
    shared: AnswerSchemaBase  # the instance every load uses (set by build_answer_schema)

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _visibility_and_required(self, loaded: dict[str, Any], original: Any, **kwargs: Any) -> None:
        data = _by_code(loaded)
        sent = set(original) if isinstance(original, dict) else set()
        invalid = {code for code in sent if code not in data}
        errors: dict[str, list[str]] = {}
        for question in self._questions:
            code = question["code"]
            if question.get("terminate_if"):
                if data.get(code) is None and code not in invalid:
                    errors[code] = [_("Consent is required to take part.")]
                elif code not in invalid and is_shown(question["terminate_if"], data):
                    # Declining ends the questionnaire: that is the only thing worth saying.
                    raise ma.ValidationError({code: [_("Consent was declined, so nothing can be stored.")]})
                continue
            condition = question.get("display_if")
            if condition and any(leaf["question"] in invalid for leaf in condition_leaves(condition)):
                continue  # visibility depends on an answer that is itself wrong; report that one
            shown = condition is None or is_shown(condition, data)
            answered = data.get(code) is not None
            if not shown and answered:
                errors[code] = [_("This question is not asked after your earlier answers; leave it empty.")]
            elif shown and question.get("required") and not answered and code not in invalid:
                errors[code] = [_("An answer is required.")]
        if errors:
            raise ma.ValidationError(errors)


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


def build_answer_schema(definition: dict[str, Any]) -> type[AnswerSchemaBase]:
    """A schema class whose fields are this version's questions, in questionnaire order."""
    questions = [spec for _section, spec in iter_questions(definition)]
    attributes: dict[str, Any] = {f"a_{spec['code']}": _AnswerField(spec) for spec in questions}
    attributes["_questions"] = questions
    schema = type(f"Answers_{definition['code']}", (AnswerSchemaBase,), attributes)
    schema.shared = schema()  # built once per version; a Schema keeps no state between loads
    return schema


def load_answers(schema: type[AnswerSchemaBase], answers: dict[str, Any]) -> dict[str, Any]:
    """Validate answers; return only the given ones, normalised. Raises ``ma.ValidationError``."""
    loaded = _by_code(schema.shared.load(answers))
    return {code: value for code, value in loaded.items() if value is not None}


def _by_code(loaded: dict[str, Any]) -> dict[str, Any]:
    return {attribute.removeprefix("a_"): value for attribute, value in loaded.items()}
