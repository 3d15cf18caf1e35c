"""Export columns per question type: how one question of one version becomes dataset columns.

This is per-type logic and belongs in the question-type registry (``survey/questionnaires/types.py``);
it lives here until it is moved there as a method ``export_columns(self, question)`` on each
:class:`~survey.questionnaires.types.QuestionType` (the functions below are those methods, one per
type, registered by type name in :data:`EXPORTERS`).

The layout (DESIGN §2, the issue's column rules):

============== ==============================================================================
type           columns
============== ==============================================================================
single_choice  one column holding the option code
likert         one column holding the scale point code
multiple_choice one 0/1 column per option (``<question>__<option>``)
matrix         one column per row holding the point code (``<question>__<row>``)
ranking        one column per rank holding the option code (``<question>__rank<n>``)
rating         one column holding the number, or a non-substantive code (declared missing)
number         one column holding the number
text           one column holding the text
============== ==============================================================================

A column is described by a :class:`ColumnTemplate`: labels in every language of the definition, its
categories (with the definition's numeric values and which codes are non-substantive) and the
:class:`Probe` values that say which stored ``answers`` rows fill it. Probes name codes, not
database ids, so the templates stay free of storage details; the dataset builder resolves them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Labels = Mapping[str, str]

# Words the exports add to labels, in the four languages of the service (English is the fallback).
WORDS: dict[str, dict[str, str]] = {
    "rank": {"en": "rank {n}", "sq": "vendi {n}", "sr-Latn": "{n}. mesto", "sr-Cyrl": "{n}. место"},
    "selected": {"en": "Selected", "sq": "Zgjedhur", "sr-Latn": "Izabrano", "sr-Cyrl": "Изабрано"},
    "not_selected": {"en": "Not selected", "sq": "Pa zgjedhur", "sr-Latn": "Nije izabrano", "sr-Cyrl": "Није изабрано"},
    "other": {
        "en": "Other (rare categories merged)",
        "sq": "Tjetër (kategoritë e rralla të bashkuara)",
        "sr-Latn": "Drugo (retke kategorije spojene)",
        "sr-Cyrl": "Друго (ретке категорије спојене)",
    },
    "version": {"en": "Questionnaire version", "sq": "Versioni i pyetësorit", "sr-Latn": "Verzija upitnika",
                "sr-Cyrl": "Верзија упитника"},
    "language": {"en": "Language of the answers", "sq": "Gjuha e përgjigjeve", "sr-Latn": "Jezik odgovora",
                 "sr-Cyrl": "Језик одговора"},
    "channel": {"en": "Channel", "sq": "Kanali", "sr-Latn": "Kanal", "sr-Cyrl": "Канал"},
    "day": {"en": "Day received", "sq": "Dita e pranimit", "sr-Latn": "Dan prijema", "sr-Cyrl": "Дан пријема"},
    "month": {"en": "Month received", "sq": "Muaji i pranimit", "sr-Latn": "Mesec prijema",
              "sr-Cyrl": "Месец пријема"},
    "web": {"en": "Web form", "sq": "Formulari në internet", "sr-Latn": "Veb obrazac", "sr-Cyrl": "Веб образац"},
    "api": {"en": "API", "sq": "API", "sr-Latn": "API", "sr-Cyrl": "API"},
    "import": {"en": "Import", "sq": "Import", "sr-Latn": "Uvoz", "sr-Cyrl": "Увоз"},
}  # fmt: skip


def word(key: str, languages: list[str] | tuple[str, ...], **values: Any) -> dict[str, str]:
    """One of :data:`WORDS` in each of ``languages`` (English where there is no translation)."""
    forms = WORDS[key]
    return {lang: forms.get(lang, forms["en"]).format(**values) for lang in languages}


@dataclass(frozen=True)
class Probe:
    """Which stored answer rows fill a column, by code.

    ``kind`` is ``option`` (the chosen option's code, for one matrix ``item`` or one ``rank`` if
    given), ``flag`` (1 if ``option`` was chosen, 0 if the question was answered without it),
    ``number`` or ``text``.
    """

    kind: str
    question: str
    option: str | None = None
    item: str | None = None
    rank: int | None = None


@dataclass(frozen=True)
class CategoryTemplate:
    """A value a column can hold: a code (or 0/1, or a rating anchor) with its labels.

    ``role`` is ``value`` (substantive), ``missing`` (non-substantive: "don't know", "prefer not
    to say", declared missing in statistical formats) or ``anchor`` (a label for one number of a
    rating scale, not a category of its own).
    """

    value: str | int
    labels: Labels
    numeric: float | None = None
    role: str = "value"


@dataclass(frozen=True)
class ColumnTemplate:
    """One export column of one question in one version."""

    suffix: str | None  # None: the question's own column; else ``<question>__<suffix>``
    kind: str  # choice | flag | rank | rating | number | text
    value_type: str  # string | integer | number
    labels: Labels
    probes: tuple[Probe, ...]
    categories: tuple[CategoryTemplate, ...] = ()
    ordered: bool = False
    minimum: float | None = None
    maximum: float | None = None
    part_labels: Labels | None = None  # the option, row or rank a sub-column stands for
    extra: dict[str, Any] = field(default_factory=dict)


def _joined(first: Labels, second: Labels, separator: str = " — ") -> dict[str, str]:
    return {lang: f"{text}{separator}{second.get(lang) or next(iter(second.values()))}" for lang, text in first.items()}


def _categories(options: list[dict[str, Any]], force_missing: bool = False) -> tuple[CategoryTemplate, ...]:
    return tuple(
        CategoryTemplate(
            value=o["code"],
            labels=o["label"],
            numeric=o.get("value"),
            role="missing" if force_missing or o.get("non_substantive") else "value",
        )
        for o in options
    )


def _scale_categories(scale: dict[str, Any]) -> tuple[CategoryTemplate, ...]:
    return _categories(scale["points"]) + _categories(scale.get("non_substantive") or [], force_missing=True)


def single_choice_columns(question: dict[str, Any]) -> list[ColumnTemplate]:
    return [
        ColumnTemplate(
            suffix=None,
            kind="choice",
            value_type="string",
            labels=question["text"],
            probes=(Probe("option", question["code"]),),
            categories=_categories(question["options"]),
            ordered=bool(question.get("ordinal")),
        )
    ]


def likert_columns(question: dict[str, Any]) -> list[ColumnTemplate]:
    return [
        ColumnTemplate(
            suffix=None,
            kind="choice",
            value_type="string",
            labels=question["text"],
            probes=(Probe("option", question["code"]),),
            categories=_scale_categories(question["scale"]),
            ordered=True,
        )
    ]


def multiple_choice_columns(question: dict[str, Any]) -> list[ColumnTemplate]:
    languages = list(question["text"])
    flags = (
        CategoryTemplate(0, word("not_selected", languages), 0),
        CategoryTemplate(1, word("selected", languages), 1),
    )
    return [
        ColumnTemplate(
            suffix=option["code"],
            kind="flag",
            value_type="integer",
            labels=_joined(question["text"], option["label"]),
            part_labels=option["label"],
            probes=(Probe("flag", question["code"], option=option["code"]),),
            categories=flags,
            extra={"non_substantive": bool(option.get("non_substantive"))},
        )
        for option in question["options"]
    ]


def matrix_columns(question: dict[str, Any]) -> list[ColumnTemplate]:
    categories = _scale_categories(question["scale"])
    return [
        ColumnTemplate(
            suffix=row["code"],
            kind="choice",
            value_type="string",
            labels=_joined(question["text"], row["label"]),
            part_labels=row["label"],
            probes=(Probe("option", question["code"], item=row["code"]),),
            categories=categories,
            ordered=True,
        )
        for row in question["rows"]
    ]


def ranking_columns(question: dict[str, Any]) -> list[ColumnTemplate]:
    languages = list(question["text"])
    categories = _categories(question["options"])
    deepest = question.get("max_ranked") or len(question["options"])
    return [
        ColumnTemplate(
            suffix=f"rank{rank}",
            kind="rank",
            value_type="string",
            labels=_joined(question["text"], word("rank", languages, n=rank)),
            part_labels=word("rank", languages, n=rank),
            probes=(Probe("option", question["code"], rank=rank),),
            categories=categories,
        )
        for rank in range(1, deepest + 1)
    ]


def rating_columns(question: dict[str, Any]) -> list[ColumnTemplate]:
    low, high = question["range"]["min"], question["range"]["max"]
    anchors = question.get("anchors") or {}
    categories: list[CategoryTemplate] = []
    if anchors:
        categories += [
            CategoryTemplate(low, anchors["min"], low, role="anchor"),
            CategoryTemplate(high, anchors["max"], high, role="anchor"),
        ]
    categories += _categories(question.get("non_substantive") or [], force_missing=True)
    return [
        ColumnTemplate(
            suffix=None,
            kind="rating",
            value_type="integer",
            labels=question["text"],
            probes=(Probe("number", question["code"]), Probe("option", question["code"])),
            categories=tuple(categories),
            ordered=True,
            minimum=low,
            maximum=high,
            extra={"step": question["range"].get("step", 1)},
        )
    ]


def number_columns(question: dict[str, Any]) -> list[ColumnTemplate]:
    return [
        ColumnTemplate(
            suffix=None,
            kind="number",
            value_type="integer" if question.get("integer") else "number",
            labels=question["text"],
            probes=(Probe("number", question["code"]),),
            minimum=question.get("min"),
            maximum=question.get("max"),
        )
    ]


def text_columns(question: dict[str, Any]) -> list[ColumnTemplate]:
    return [
        ColumnTemplate(
            suffix=None,
            kind="text",
            value_type="string",
            labels=question["text"],
            probes=(Probe("text", question["code"]),),
            extra={"max_length": question.get("max_length")},
        )
    ]


EXPORTERS: dict[str, Callable[[dict[str, Any]], list[ColumnTemplate]]] = {
    "single_choice": single_choice_columns,
    "likert": likert_columns,
    "multiple_choice": multiple_choice_columns,
    "matrix": matrix_columns,
    "ranking": ranking_columns,
    "rating": rating_columns,
    "number": number_columns,
    "text": text_columns,
}


def export_columns(question: dict[str, Any]) -> list[ColumnTemplate]:
    """The export columns of one question of a validated definition."""
    try:
        exporter = EXPORTERS[question["type"]]
    except KeyError:
        raise NotImplementedError(f"no export columns for question type {question['type']!r}") from None
    return exporter(question)
