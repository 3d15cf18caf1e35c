"""The codebook: every variable with its question text, and every value with its labels, in every
language of the questionnaire. Shared by the XLSX codebook sheet and the data package's codebook.

One row per variable (``value`` empty), then one row per category (value, numeric code used in
.sav/.dta, whether it is a non-substantive code declared missing). A label that changed between
versions gets one row per group of versions, so earlier answers keep their original wording
(promise R11).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from survey.exports.dataset import Column, Dataset

FIXED_HEADER = ["variable", "question", "question_type", "section", "versions", "value", "numeric_code", "role"]


def codebook_header(dataset: Dataset) -> list[str]:
    return FIXED_HEADER + [f"label_{language}" for language in dataset.languages]


def _versions(numbers: tuple[int, ...]) -> str:
    return " ".join(str(n) for n in numbers)


def _labels(labels: Mapping[str, str], languages: tuple[str, ...]) -> list[str]:
    return [labels.get(language, "") for language in languages]


def _variable_role(column: Column) -> str:
    if column.kind == "meta":
        return "meta"
    return "demographic" if column.demographic else "question"


def codebook_rows(dataset: Dataset) -> Iterator[list[Any]]:
    """Rows aligned with :func:`codebook_header`; values are strings, ints or None."""
    languages = dataset.languages
    for column in dataset.columns:
        fixed = [column.name, column.question, column.question_type, column.section]
        history = column.label_history or ((column.versions, column.labels),)
        for versions, labels in history:
            yield [*fixed, _versions(versions), None, None, _variable_role(column), *_labels(labels, languages)]
        for category in column.categories:
            role = "anchor" if category.anchor else "missing" if category.missing else "value"
            category_history = category.label_history or ((category.versions, category.labels),)
            for versions, labels in category_history:
                yield [
                    column.name,
                    column.question,
                    column.question_type,
                    column.section,
                    _versions(versions),
                    category.value,
                    category.code,
                    role,
                    *_labels(labels, languages),
                ]
