"""Marshmallow building blocks of the definition format: codes, multilingual text, options.

The languages a definition declares are not known to a field on its own (marshmallow 4 has no
schema context), so :func:`definition_languages` sets them in a context variable for the duration
of one validation, and :class:`LocalizedText` reads them from there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

CODE_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
TEXT_MAX = 5000

# Control characters other than tab and line breaks, and the bidirectional overrides that can make
# text display differently from what it says.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True)
class LanguageRules:
    declared: frozenset[str]
    require_complete: bool


_rules: ContextVar[LanguageRules | None] = ContextVar("definition_languages", default=None)


@contextmanager
def definition_languages(declared: set[str], require_complete: bool) -> Iterator[None]:
    token = _rules.set(LanguageRules(frozenset(declared), require_complete))
    try:
        yield
    finally:
        _rules.reset(token)


SURROGATE_PROBLEM = "contains an invalid character (lone surrogate)"


def text_problem(value: str) -> str | None:
    """Why ``value`` must never be stored, or None: a lone surrogate (not text at all; no database or
    encoder takes it), or a control character or bidirectional override (see ``_FORBIDDEN``)."""
    if _SURROGATE.search(value):
        return SURROGATE_PROBLEM
    if _FORBIDDEN.search(value):
        return "contains a control character"
    return None


def clean_text(value: str) -> str:
    """NFC-normalise, unify line breaks (browsers send CRLF) and strip; raise if the text holds
    characters that must never be stored."""
    if problem := text_problem(value):
        raise ma.ValidationError(problem)
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()


class Code(fields.String):
    """A stable snake_case identifier."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            validate=validate.Regexp(
                CODE_PATTERN,
                error="must be snake_case: a lowercase letter, then lowercase letters, digits or _",
            ),
            **kwargs,
        )


class LocalizedText(fields.Field):
    """A map from language tag to non-empty text, checked against the declared languages."""

    default_error_messages = {"invalid": "must be an object mapping language codes to text"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        rules = _rules.get()
        errors: dict[str, list[str]] = {}
        result: dict[str, str] = {}
        for language, text in value.items():
            if rules is not None and language not in rules.declared:
                errors[language] = ["language not declared in 'languages'"]
            elif not isinstance(text, str):
                errors[language] = ["must be a string"]
            else:
                try:
                    cleaned = clean_text(text)
                except ma.ValidationError as error:
                    errors[language] = error.messages  # type: ignore[assignment]
                    continue
                if not cleaned:
                    errors[language] = ["must not be empty"]
                elif len(cleaned) > TEXT_MAX:
                    errors[language] = [f"longer than {TEXT_MAX} characters"]
                else:
                    result[language] = cleaned
        if rules is not None and rules.require_complete:
            for language in sorted(rules.declared - value.keys()):
                errors[language] = ["missing translation"]
        if errors:
            raise ma.ValidationError(errors)
        return result

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class StrictInteger(fields.Integer):
    """An integer that refuses booleans, floats and numeric strings."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON boolean: ``true`` or ``false`` only, never ``1``, ``"1"``, ``"yes"`` or ``"on"`` (promise S9)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictNumber(fields.Float):
    """A finite JSON number; strings and booleans are refused."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class OptionSchema(Strict):
    code = Code(required=True)
    label = LocalizedText(required=True)
    value = StrictInteger(load_default=None, allow_none=True)
    non_substantive = StrictBoolean(load_default=False)
    exclusive = StrictBoolean(load_default=False)
    pin_last = StrictBoolean(load_default=False)


class RowSchema(Strict):
    code = Code(required=True)
    label = LocalizedText(required=True)


class ScaleSchema(Strict):
    code = Code(load_default=None, allow_none=True)
    type = fields.String(load_default="ordinal", validate=validate.OneOf(["ordinal"]))
    points = fields.List(fields.Nested(OptionSchema), required=True, validate=validate.Length(min=2))
    non_substantive = fields.List(fields.Nested(OptionSchema), load_default=list)


class ConditionField(fields.Field):
    """``{question, operator: in|not_in, values}`` or ``{all: [...]}`` / ``{any: [...]}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return _load_condition(value)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


def _load_condition(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ma.ValidationError("must be a condition object")
    keys = set(value)
    if keys in ({"all"}, {"any"}):
        (combinator,) = keys
        parts = value[combinator]
        if not isinstance(parts, list) or not parts:
            raise ma.ValidationError({combinator: ["must be a non-empty list of conditions"]})
        loaded, errors = [], {}
        for index, part in enumerate(parts):
            try:
                loaded.append(_load_condition(part))
            except ma.ValidationError as error:
                errors[index] = error.messages
        if errors:
            raise ma.ValidationError({combinator: errors})
        return {combinator: loaded}
    return _SimpleCondition().load(value)


class _SimpleCondition(Strict):
    question = Code(required=True)
    operator = fields.String(required=True, validate=validate.OneOf(["in", "not_in"]))
    values = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


def condition_leaves(condition: dict[str, Any]) -> list[dict[str, Any]]:
    """The simple ``{question, operator, values}`` parts of a (possibly compound) condition."""
    for combinator in ("all", "any"):
        if combinator in condition:
            return [leaf for part in condition[combinator] for leaf in condition_leaves(part)]
    return [condition]


def duplicate_code_errors(items: list[dict[str, Any]], field: str = "code") -> dict[int, Any]:
    """``{index: {"code": ["duplicate code"]}}`` for every item repeating an earlier code."""
    seen: set[str] = set()
    errors: dict[int, Any] = {}
    for index, item in enumerate(items):
        code = item.get(field)
        if code in seen:
            errors[index] = {field: [f"duplicate code {code!r}"]}
        elif code is not None:
            seen.add(code)
    return errors
