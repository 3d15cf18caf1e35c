"""The questionnaire definition format (DESIGN §4): validation, paths of problems, checksums.

:func:`validate_definition` is the one entry point. It reports every problem at once, each with
the path of where it is, e.g. ``sections[2].questions[4].options[1].code: duplicate code 'yes'``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from survey.errors import DefinitionInvalidError
from survey.questionnaires.fields import (
    LANGUAGE_PATTERN,
    Code,
    LocalizedText,
    Strict,
    StrictBoolean,
    condition_leaves,
    definition_languages,
    duplicate_code_errors,
    text_problem,
)
from survey.questionnaires.types import get_type, type_names


class QuestionField(fields.Field):
    """A question, loaded with the schema of its type from the registry."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ma.ValidationError("must be a question object")
        kind = value.get("type")
        if kind not in type_names():
            raise ma.ValidationError({"type": [f"unknown question type; one of: {', '.join(type_names())}"]})
        try:
            return get_type(kind).schema().load(value)
        except ma.ValidationError as error:
            # Re-raised without marshmallow's partial data: the cross-checks must never see a
            # half-loaded question (a choice question without its options).
            raise ma.ValidationError(error.messages) from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class LanguageSchema(Strict):
    code = fields.String(required=True, validate=validate.Regexp(LANGUAGE_PATTERN, error="not a BCP 47 language tag"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))


class SectionSchema(Strict):
    code = Code(required=True)
    title = LocalizedText(required=True)
    description = LocalizedText(load_default=None, allow_none=True)
    sensitive = StrictBoolean(load_default=False)
    questions = fields.List(QuestionField(), required=True, validate=validate.Length(min=1))


class EndMessagesSchema(Strict):
    completed = LocalizedText(load_default=None, allow_none=True)
    screened_out = LocalizedText(load_default=None, allow_none=True)


class DefinitionSchema(Strict):
    format = fields.String(load_default="questionnaire-definition", validate=validate.Equal("questionnaire-definition"))
    format_version = fields.String(load_default="1.0", validate=validate.OneOf(["1.0"]))
    code = Code(required=True)
    default_language = fields.String(required=True)
    languages = fields.List(fields.Nested(LanguageSchema), required=True, validate=validate.Length(min=1))
    title = LocalizedText(required=True)
    description = LocalizedText(load_default=None, allow_none=True)
    privacy_note = LocalizedText(load_default=None, allow_none=True)
    neutrality_note = LocalizedText(load_default=None, allow_none=True)
    consent = QuestionField(load_default=None, allow_none=True)
    sections = fields.List(fields.Nested(SectionSchema), required=True, validate=validate.Length(min=1))
    end_messages = fields.Nested(EndMessagesSchema, load_default=None, allow_none=True)
    # Authoring metadata kept with the definition, never shown to respondents.
    estimated_duration_minutes = fields.Dict(load_default=None, allow_none=True)
    source_document = fields.Dict(load_default=None, allow_none=True)
    themes = fields.List(fields.Dict(), load_default=None, allow_none=True)
    sources = fields.List(fields.Dict(), load_default=None, allow_none=True)

    @validates_schema(skip_on_field_errors=False)
    def _cross_checks(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        languages = [lang.get("code") for lang in data.get("languages") or []]
        if dupes := duplicate_code_errors(data.get("languages") or []):
            errors["languages"] = dupes
        if "default_language" in data and data["default_language"] not in languages:
            errors["default_language"] = ["must be one of the declared languages"]
        sections = data.get("sections") or []
        section_errors: dict[int, Any] = duplicate_code_errors(sections)
        consent = data.get("consent")
        if consent:
            errors.update(_consent_errors(consent))
        _check_questions(consent, sections, section_errors)
        if section_errors:
            errors["sections"] = section_errors
        if errors:
            raise ma.ValidationError(errors)


def _consent_errors(consent: dict[str, Any]) -> dict[str, Any]:
    problems: dict[str, list[str]] = {}
    if consent.get("type") != "single_choice":
        problems["type"] = ["the consent question must be single_choice"]
    if not consent.get("required"):
        problems["required"] = ["the consent question must be required"]
    terminate = consent.get("terminate_if")
    if not terminate:
        problems["terminate_if"] = ["say which answer declines consent"]
    elif any(leaf["question"] != consent.get("code") for leaf in condition_leaves(terminate)):
        problems["terminate_if"] = ["must refer to the consent question itself"]
    return {"consent": problems} if problems else {}


def _check_questions(
    consent: dict[str, Any] | None, sections: list[dict[str, Any]], section_errors: dict[int, Any]
) -> None:
    """Unique codes across the questionnaire; conditions refer to earlier questions and real codes."""
    earlier: dict[str, dict[str, Any]] = {}
    if consent:
        earlier[consent["code"]] = consent
        _check_condition(consent, "terminate_if", earlier, {}, allow_self=True)
    for s_index, section in enumerate(sections):
        for q_index, question in enumerate(section.get("questions") or []):
            problems: dict[str, Any] = {}
            code = question.get("code")
            if code in earlier:
                problems["code"] = [f"duplicate question code {code!r}"]
            if question.get("terminate_if"):
                problems["terminate_if"] = ["only the consent question can end the questionnaire"]
            if question.get("demographic") and question.get("type") != "single_choice":
                problems["demographic"] = ["a demographic question must be single_choice"]
            _check_condition(question, "display_if", earlier, problems)
            if problems:
                section_errors.setdefault(s_index, {}).setdefault("questions", {})[q_index] = problems
            if code is not None and code not in earlier:
                earlier[code] = question


def _check_condition(
    question: dict[str, Any],
    key: str,
    earlier: dict[str, dict[str, Any]],
    problems: dict[str, Any],
    allow_self: bool = False,
) -> None:
    condition = question.get(key)
    if not condition:
        return
    messages = []
    for leaf in condition_leaves(condition):
        target = earlier.get(leaf["question"])
        if target is None or (target is question and not allow_self):
            messages.append(f"refers to {leaf['question']!r}, which is not an earlier question")
            continue
        codes = get_type(target["type"]).condition_codes(target)
        if codes is None:
            messages.append(f"a {target['type']} question cannot be a condition")
            continue
        messages.extend(f"{v!r} is not a code of {leaf['question']!r}" for v in leaf["values"] if v not in codes)
    if messages:
        problems[key] = messages


def error_paths(messages: Any, prefix: str = "") -> Iterator[str]:
    """Flatten marshmallow's nested messages into ``path: message`` lines."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            yield from error_paths(value, path)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            yield f"{prefix}: {message}" if prefix else message
    else:
        for index, value in enumerate(messages):
            yield from error_paths(value, f"{prefix}[{index}]")


def validate_definition(raw: Any, require_complete: bool = True) -> dict[str, Any]:
    """Load and check a definition; raise :class:`DefinitionInvalidError` listing every problem.

    ``require_complete`` demands every respondent-facing text in every declared language, as
    publishing does; drafts may be validated without it.
    """
    if not isinstance(raw, dict):
        raise DefinitionInvalidError("The definition must be a JSON object.", {"problems": ["must be an object"]})
    declared = (
        {
            lang["code"]
            for lang in raw.get("languages") or []
            if isinstance(lang, dict) and isinstance(lang.get("code"), str)
        }
        if isinstance(raw.get("languages"), list)
        else set()
    )
    problems = list(_character_problems(raw))
    with definition_languages(declared, require_complete):
        try:
            definition = _without_nulls(DefinitionSchema().load(raw))
        except ma.ValidationError as error:
            problems += [p for p in error_paths(error.messages) if p not in problems]
    if problems:
        raise DefinitionInvalidError(f"The definition has {len(problems)} problem(s).", {"problems": problems})
    return definition


def _character_problems(value: Any, path: str = "") -> Iterator[str]:
    """Every string of the definition, authoring metadata and keys included, free of characters that must
    never be stored (not only the texts the schema cleans): ``path: problem`` for each one that is not."""
    if isinstance(value, str):
        if problem := text_problem(value):
            yield f"{path}: {problem}" if path else problem
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (problem := text_problem(key)):
                yield f"{path or 'definition'}: a key {problem}"  # the key itself is not quoted back
                continue
            yield from _character_problems(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _character_problems(item, f"{path}[{index}]")


def _without_nulls(value: Any) -> Any:
    """Drop absent optional members (loaded as None) so the stored definition stays readable."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def iter_questions(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(section_code, question)`` in order, the consent question first (section ``consent``)."""
    if definition.get("consent"):
        yield "consent", definition["consent"]
    for section in definition["sections"]:
        for question in section["questions"]:
            yield section["code"], question


def breakdown_codes(definition: dict[str, Any]) -> tuple[str, ...]:
    """The questions results may be broken down by: those flagged ``demographic`` (DESIGN §4)."""
    return tuple(q["code"] for _section, q in iter_questions(definition) if q.get("demographic"))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def checksum(definition: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(definition).encode("utf-8")).hexdigest()
