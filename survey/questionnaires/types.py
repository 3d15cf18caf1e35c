"""The question-type registry: one class per type, and adding a type touches only this module.

Each type knows four things about its questions:
- its **definition** (a marshmallow schema of the type's extras, with internal consistency checks);
- its **normalised rows** (options and matrix items written to the database at publish time);
- its **answers** (validation of one submitted value, returning the normalised value);
- its **storage** (the ``answers`` rows one normalised value becomes).

Questions are the plain dicts of a validated definition.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from survey.i18n import gettext as _
from survey.questionnaires.fields import (
    TEXT_MAX,
    Code,
    ConditionField,
    LocalizedText,
    OptionSchema,
    RowSchema,
    ScaleSchema,
    Strict,
    StrictBoolean,
    StrictInteger,
    StrictNumber,
    clean_text,
    duplicate_code_errors,
)

INT32 = 2**31 - 1


class AnswerError(Exception):
    """One answer is invalid; ``messages`` is a list, or a dict keyed by matrix row."""

    def __init__(self, messages: list[str] | dict[str, list[str]]) -> None:
        super().__init__(messages)
        self.messages = messages


@dataclass(frozen=True)
class OptionSpec:
    code: str
    value: float | None
    non_substantive: bool


@dataclass(frozen=True)
class StoredValue:
    """One ``answers`` row before ids are resolved."""

    option: str | None = None
    item: str | None = None
    number: float | None = None
    text: str | None = None
    rank: int | None = None


class QuestionSchema(Strict):
    """Fields common to every question type."""

    code = Code(required=True)
    type = fields.String(required=True)
    required = StrictBoolean(load_default=False)
    demographic = StrictBoolean(load_default=False)
    text = LocalizedText(required=True)
    help = LocalizedText(load_default=None, allow_none=True)
    display_if = ConditionField(load_default=None, allow_none=True)
    terminate_if = ConditionField(load_default=None, allow_none=True)
    # Authoring metadata, English only, never shown to respondents.
    themes = fields.List(fields.String(), load_default=None, allow_none=True)
    op_ed_excerpt = fields.String(load_default=None, allow_none=True)
    informed_by = fields.List(fields.String(), load_default=None, allow_none=True)


class QuestionType:
    name: ClassVar[str]
    schema: ClassVar[type[QuestionSchema]]

    # -- definition ------------------------------------------------------------------------
    def options(self, question: dict[str, Any]) -> list[OptionSpec]:
        """Option rows (choices, scale points, non-substantive codes) in display order."""
        return []

    def items(self, question: dict[str, Any]) -> list[str]:
        """Item (matrix row) codes in display order."""
        return []

    def condition_codes(self, question: dict[str, Any]) -> set[str] | None:
        """Codes another question's ``display_if`` may test; None if it cannot be a condition."""
        return None

    # -- answers ---------------------------------------------------------------------------
    def is_empty(self, value: Any) -> bool:
        return value is None

    def validate(self, question: dict[str, Any], value: Any) -> Any:
        """Return the normalised answer or raise :class:`AnswerError`.

        Normalised means canonical: two answers that mean the same are equal after validation
        (choices in option order, text in NFC without outer spaces), which idempotent replays rely on.
        """
        raise NotImplementedError

    def selected(self, value: Any) -> set[str]:
        """The codes an answer selects, for evaluating conditions on it."""
        return set()

    def storage(self, question: dict[str, Any], value: Any) -> list[StoredValue]:
        raise NotImplementedError

    # -- web form ----------------------------------------------------------------------------
    @property
    def template(self) -> str:
        """The Jinja template that renders this type's inputs."""
        return f"questions/{self.name}.html"

    def from_form(self, question: dict[str, Any], form: FormData) -> Any:
        """The answer value posted by the web form (the same shape the JSON API takes), or None."""
        return _text_or_none(form.get(field_name(question)))


class FormData(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def getlist(self, key: str) -> list[str]: ...


def field_name(question: dict[str, Any], *parts: str | int) -> str:
    """The form field name of a question (or of one of its rows or ranks)."""
    return "-".join(["q", question["code"], *map(str, parts)])


def _text_or_none(value: str | None) -> str | None:
    return value if value not in (None, "") else None


_registry: dict[str, QuestionType] = {}


def register(cls: type[QuestionType]) -> type[QuestionType]:
    _registry[cls.name] = cls()
    return cls


def get_type(name: str) -> QuestionType:
    return _registry[name]


def type_names() -> list[str]:
    return list(_registry)


def _option_specs(options: list[dict[str, Any]]) -> list[OptionSpec]:
    return [OptionSpec(o["code"], o.get("value"), o.get("non_substantive", False)) for o in options]


def _choose(codes: set[str], value: Any) -> str:
    if not isinstance(value, str) or value not in codes:
        raise AnswerError([_("Not a valid choice.")])
    return value


def _code_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AnswerError([_("Must be a list of choices.")])
    if len(set(value)) != len(value):
        raise AnswerError([_("Each choice may be given only once.")])
    return value


# -- single_choice --------------------------------------------------------------------------


class ChoiceQuestionSchema(QuestionSchema):
    options = fields.List(fields.Nested(OptionSchema), required=True, validate=validate.Length(min=2))
    ordinal = StrictBoolean(load_default=False)
    randomize_options = StrictBoolean(load_default=False)

    @validates_schema(skip_on_field_errors=False)
    def _options_consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        options = data.get("options") or []
        errors: dict[int, Any] = duplicate_code_errors(options)
        for index, option in enumerate(options):
            if option.get("exclusive") and data.get("type") != "multiple_choice":
                errors.setdefault(index, {})["exclusive"] = ["only multiple_choice options can be exclusive"]
            if data.get("ordinal") and not option.get("non_substantive") and option.get("value") is None:
                errors.setdefault(index, {})["value"] = [
                    "an ordinal question needs a value on every substantive option"
                ]
        if errors:
            raise ma.ValidationError({"options": errors})


@register
class SingleChoice(QuestionType):
    name = "single_choice"
    schema = ChoiceQuestionSchema

    def options(self, question: dict[str, Any]) -> list[OptionSpec]:
        return _option_specs(question["options"])

    def condition_codes(self, question: dict[str, Any]) -> set[str]:
        return {o["code"] for o in question["options"]}

    def validate(self, question: dict[str, Any], value: Any) -> str:
        return _choose(self.condition_codes(question), value)

    def selected(self, value: Any) -> set[str]:
        return {value}

    def storage(self, question: dict[str, Any], value: Any) -> list[StoredValue]:
        return [StoredValue(option=value)]


# -- multiple_choice ------------------------------------------------------------------------


class MultipleChoiceQuestionSchema(ChoiceQuestionSchema):
    min_choices = StrictInteger(load_default=0, validate=validate.Range(min=0))
    max_choices = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(min=1))

    @validates_schema
    def _limits_consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        low, high, count = data["min_choices"], data["max_choices"], len(data["options"])
        if high is not None and high < low:
            raise ma.ValidationError({"max_choices": ["must not be less than min_choices"]})
        if low > count:
            raise ma.ValidationError({"min_choices": ["more than the number of options"]})


@register
class MultipleChoice(SingleChoice):
    name = "multiple_choice"
    schema = MultipleChoiceQuestionSchema

    def is_empty(self, value: Any) -> bool:
        return value is None or value == []

    def validate(self, question: dict[str, Any], value: Any) -> list[str]:
        chosen = _code_list(value)
        by_code = {o["code"]: o for o in question["options"]}
        if any(code not in by_code for code in chosen):
            raise AnswerError([_("Not a valid choice.")])
        if len(chosen) > 1 and any(by_code[code].get("exclusive") for code in chosen):
            raise AnswerError([_("This choice cannot be combined with other choices.")])
        low, high = question.get("min_choices") or 0, question.get("max_choices")
        if len(chosen) < low:
            raise AnswerError([_("Select at least %(n)d.", n=low)])
        if high is not None and len(chosen) > high:
            raise AnswerError([_("Select at most %(n)d.", n=high)])
        order = list(by_code)
        return sorted(chosen, key=order.index)

    def selected(self, value: Any) -> set[str]:
        return set(value)

    def storage(self, question: dict[str, Any], value: Any) -> list[StoredValue]:
        return [StoredValue(option=code) for code in value]

    def from_form(self, question: dict[str, Any], form: FormData) -> list[str] | None:
        return form.getlist(field_name(question)) or None


# -- likert ---------------------------------------------------------------------------------


def _scale_errors(scale: dict[str, Any] | None) -> dict[str, Any]:
    if not scale:
        return {}
    points = scale.get("points") or []
    errors: dict[str, Any] = {}
    point_errors = duplicate_code_errors(points)
    for index, point in enumerate(points):
        if point.get("value") is None:
            point_errors.setdefault(index, {})["value"] = ["every scale point needs a value"]
        elif point["value"] != index + 1:
            point_errors.setdefault(index, {})["value"] = [
                f"scale points are valued 1..n in order; expected {index + 1}"
            ]
    if point_errors:
        errors["points"] = point_errors
    point_codes = {p.get("code") for p in points}
    extra = scale.get("non_substantive") or []
    extra_errors = duplicate_code_errors(extra)
    for index, option in enumerate(extra):
        if option.get("code") in point_codes:
            extra_errors.setdefault(index, {})["code"] = [f"duplicate code {option['code']!r}"]
    if extra_errors:
        errors["non_substantive"] = extra_errors
    return errors


def _scale_specs(scale: dict[str, Any]) -> list[OptionSpec]:
    return _option_specs(scale["points"]) + [
        OptionSpec(o["code"], None, True) for o in scale.get("non_substantive", [])
    ]


def _scale_codes(scale: dict[str, Any]) -> set[str]:
    """The codes a scale accepts (its points and non-substantive codes), read without building specs:
    every likert and matrix answer is checked against them (issue 7)."""
    return {o["code"] for o in scale["points"]} | {o["code"] for o in scale.get("non_substantive", ())}


class LikertQuestionSchema(QuestionSchema):
    scale = fields.Nested(ScaleSchema, required=True)

    @validates_schema(skip_on_field_errors=False)
    def _scale_consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors = _scale_errors(data.get("scale"))
        if errors:
            raise ma.ValidationError({"scale": errors})


@register
class Likert(SingleChoice):
    """One point of a scale: answered, checked and stored as a single choice among the scale's codes."""

    name = "likert"
    schema = LikertQuestionSchema

    def options(self, question: dict[str, Any]) -> list[OptionSpec]:
        return _scale_specs(question["scale"])

    def condition_codes(self, question: dict[str, Any]) -> set[str]:
        return _scale_codes(question["scale"])


# -- matrix ---------------------------------------------------------------------------------


class MatrixQuestionSchema(LikertQuestionSchema):
    rows = fields.List(fields.Nested(RowSchema), required=True, validate=validate.Length(min=1))
    randomize_rows = StrictBoolean(load_default=False)
    reverse_keyed_rows = fields.List(Code(), load_default=list)

    @validates_schema(skip_on_field_errors=False)
    def _rows_consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        rows = data.get("rows") or []
        errors: dict[str, Any] = {}
        if duplicates := duplicate_code_errors(rows):
            errors["rows"] = duplicates
        codes = {r.get("code") for r in rows}
        unknown = [c for c in data.get("reverse_keyed_rows") or [] if c not in codes]
        if unknown:
            errors["reverse_keyed_rows"] = [f"unknown row {c!r}" for c in unknown]
        if errors:
            raise ma.ValidationError(errors)


@register
class Matrix(QuestionType):
    name = "matrix"
    schema = MatrixQuestionSchema

    def options(self, question: dict[str, Any]) -> list[OptionSpec]:
        return _scale_specs(question["scale"])

    def items(self, question: dict[str, Any]) -> list[str]:
        return [r["code"] for r in question["rows"]]

    def is_empty(self, value: Any) -> bool:
        return value is None or value == {}

    def validate(self, question: dict[str, Any], value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise AnswerError([_("Must be an object of row codes and answers.")])
        rows = self.items(question)
        points = _scale_codes(question["scale"])
        errors: dict[str, list[str]] = {}
        for row, point in value.items():
            if row not in rows:
                errors[row] = [_("Unknown row.")]
            elif point is not None and (not isinstance(point, str) or point not in points):
                errors[row] = [_("Not a valid choice.")]
        if question.get("required"):
            for row in rows:
                if value.get(row) is None and row not in errors:
                    errors[row] = [_("An answer is required.")]
        if errors:
            raise AnswerError(errors)
        return {row: value[row] for row in rows if value.get(row) is not None}

    def storage(self, question: dict[str, Any], value: Any) -> list[StoredValue]:
        return [StoredValue(item=row, option=point) for row, point in value.items()]

    def from_form(self, question: dict[str, Any], form: FormData) -> dict[str, str] | None:
        answered = {row: form.get(field_name(question, row)) for row in self.items(question)}
        return {row: point for row, point in answered.items() if point} or None


# -- rating ---------------------------------------------------------------------------------


class RangeSchema(Strict):
    min = StrictInteger(required=True, validate=validate.Range(min=-INT32, max=INT32))
    max = StrictInteger(required=True, validate=validate.Range(min=-INT32, max=INT32))
    step = StrictInteger(load_default=1, validate=validate.Range(min=1))

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["max"] <= data["min"]:
            raise ma.ValidationError({"max": ["must be greater than min"]})
        if (data["max"] - data["min"]) % data["step"]:
            raise ma.ValidationError({"step": ["must divide max - min"]})


class AnchorsSchema(Strict):
    min = LocalizedText(required=True)
    max = LocalizedText(required=True)


class RatingQuestionSchema(QuestionSchema):
    range = fields.Nested(RangeSchema, required=True)
    anchors = fields.Nested(AnchorsSchema, load_default=None, allow_none=True)
    non_substantive = fields.List(fields.Nested(OptionSchema), load_default=list)

    @validates_schema(skip_on_field_errors=False)
    def _codes_unique(self, data: dict[str, Any], **kwargs: Any) -> None:
        if errors := duplicate_code_errors(data.get("non_substantive") or []):
            raise ma.ValidationError({"non_substantive": errors})


@register
class Rating(QuestionType):
    name = "rating"
    schema = RatingQuestionSchema

    def options(self, question: dict[str, Any]) -> list[OptionSpec]:
        return [OptionSpec(o["code"], None, True) for o in question.get("non_substantive", [])]

    def validate(self, question: dict[str, Any], value: Any) -> int | str:
        if isinstance(value, str):
            return _choose({o.code for o in self.options(question)}, value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnswerError([_("Must be a whole number.")])
        low, high, step = (question["range"][k] for k in ("min", "max", "step"))
        if not low <= value <= high:
            raise AnswerError([_("Must be between %(min)d and %(max)d.", min=low, max=high)])
        if (value - low) % step:
            raise AnswerError([_("Must be a step of %(step)d from %(min)d.", step=step, min=low)])
        return value

    def storage(self, question: dict[str, Any], value: Any) -> list[StoredValue]:
        if isinstance(value, str):
            return [StoredValue(option=value)]
        return [StoredValue(number=value)]

    def from_form(self, question: dict[str, Any], form: FormData) -> int | str | None:
        value = _text_or_none(form.get(field_name(question)))
        return int(value) if value is not None and re.fullmatch(r"-?[0-9]{1,10}", value) else value


# -- ranking --------------------------------------------------------------------------------


class RankingQuestionSchema(QuestionSchema):
    options = fields.List(fields.Nested(OptionSchema), required=True, validate=validate.Length(min=2))
    min_ranked = StrictInteger(load_default=1, validate=validate.Range(min=1))
    max_ranked = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(min=1))
    randomize_options = StrictBoolean(load_default=False)

    @validates_schema(skip_on_field_errors=False)
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        options = data.get("options") or []
        if errors := duplicate_code_errors(options):
            raise ma.ValidationError({"options": errors})
        low, high = data.get("min_ranked"), data.get("max_ranked")
        if low is not None and high is not None and high < low:
            raise ma.ValidationError({"max_ranked": ["must not be less than min_ranked"]})
        if options and high is not None and high > len(options):
            raise ma.ValidationError({"max_ranked": ["more than the number of options"]})
        if options and low is not None and low > len(options):
            raise ma.ValidationError({"min_ranked": ["more than the number of options"]})


@register
class Ranking(QuestionType):
    name = "ranking"
    schema = RankingQuestionSchema

    def options(self, question: dict[str, Any]) -> list[OptionSpec]:
        return _option_specs(question["options"])

    def is_empty(self, value: Any) -> bool:
        return value is None or value == []

    def validate(self, question: dict[str, Any], value: Any) -> list[str]:
        ranked = _code_list(value)
        codes = {o["code"] for o in question["options"]}
        if any(code not in codes for code in ranked):
            raise AnswerError([_("Not a valid choice.")])
        low = question.get("min_ranked") or 1
        high = question.get("max_ranked") or len(codes)
        if len(ranked) < low:
            raise AnswerError([_("Rank at least %(n)d.", n=low)])
        if len(ranked) > high:
            raise AnswerError([_("Rank at most %(n)d.", n=high)])
        return ranked

    def storage(self, question: dict[str, Any], value: Any) -> list[StoredValue]:
        return [StoredValue(option=code, rank=rank) for rank, code in enumerate(value, start=1)]

    def from_form(self, question: dict[str, Any], form: FormData) -> list[str] | None:
        """One select per rank; blanks are skipped so ranks 1, 3 filled mean a list of two."""
        ranks = range(1, (question.get("max_ranked") or len(question["options"])) + 1)
        chosen = [form.get(field_name(question, "rank", rank)) for rank in ranks]
        return [code for code in chosen if code] or None


# -- number ---------------------------------------------------------------------------------


class NumberQuestionSchema(QuestionSchema):
    min = StrictNumber(load_default=None, allow_none=True)
    max = StrictNumber(load_default=None, allow_none=True)
    integer = StrictBoolean(load_default=False)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["min"] is not None and data["max"] is not None and data["max"] < data["min"]:
            raise ma.ValidationError({"max": ["must not be less than min"]})


@register
class Number(QuestionType):
    name = "number"
    schema = NumberQuestionSchema

    def validate(self, question: dict[str, Any], value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise AnswerError([_("Must be a number.")])
        if question.get("integer") and not isinstance(value, int):
            raise AnswerError([_("Must be a whole number.")])
        if isinstance(value, int) and not -INT32 <= value <= INT32:
            raise AnswerError([_("Number out of range.")])
        low, high = question.get("min"), question.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise AnswerError([_("Must be between %(min)s and %(max)s.", min=_num(low), max=_num(high))])
        return value

    def storage(self, question: dict[str, Any], value: Any) -> list[StoredValue]:
        return [StoredValue(number=value)]

    def from_form(self, question: dict[str, Any], form: FormData) -> int | float | str | None:
        value = _text_or_none((form.get(field_name(question)) or "").strip().replace(",", "."))
        if value is None:
            return None
        if re.fullmatch(r"-?[0-9]{1,10}", value):
            return int(value)
        if re.fullmatch(r"-?[0-9]{1,10}\.[0-9]{1,10}", value):
            return float(value)
        return value  # not a number: the validation says so in the respondent's language


def _num(value: float | None) -> str:
    if value is None:
        return "…"
    return str(int(value)) if float(value).is_integer() else str(value)


# -- text -----------------------------------------------------------------------------------


class TextQuestionSchema(QuestionSchema):
    max_length = StrictInteger(load_default=1000, validate=validate.Range(min=1, max=TEXT_MAX))
    multiline = StrictBoolean(load_default=False)


@register
class Text(QuestionType):
    name = "text"
    schema = TextQuestionSchema

    def is_empty(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and not value.strip())

    def validate(self, question: dict[str, Any], value: Any) -> str:
        if not isinstance(value, str):
            raise AnswerError([_("Must be text.")])
        try:
            text = clean_text(value)
        except ma.ValidationError:
            raise AnswerError([_("Contains a character that is not allowed.")]) from None
        if not question.get("multiline") and ("\n" in text or "\r" in text):
            raise AnswerError([_("Must be a single line.")])
        limit = question.get("max_length") or TEXT_MAX
        if len(text) > limit:
            raise AnswerError([_("Must be at most %(n)d characters.", n=limit)])
        return text

    def storage(self, question: dict[str, Any], value: Any) -> list[StoredValue]:
        return [StoredValue(text=value)]
