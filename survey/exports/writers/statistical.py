"""SPSS .sav and Stata .dta through pyreadstat: numeric codes with value labels, variable labels, and
non-substantive codes declared as missing values.

Categorical columns (choices, scale points, ranks, language, channel) are written as numbers with
value labels: the definition's own values where they are usable (a 1..5 scale stays 1..5), otherwise
positions 1..n (:attr:`survey.exports.dataset.Category.code`). Non-substantive answers ("don't know",
"prefer not to say", a rating's "can't say") are declared missing:

- **SPSS**: they get negative codes below every valid value (-1, -2…; for a rating scale that
  reaches below zero, below its minimum) and one missing range covering them (``missing_ranges``);
- **Stata**: they become extended missing values ``.a``, ``.b``… with value labels.

Multiple-choice columns are 0/1 with labels, ratings and numbers are numeric, free text is a string,
the day is a date and a month is ``YYYY-MM`` text. Empty text is written as an empty string (neither
format has a missing string). Names are cut to the formats' limits (SPSS 64 bytes, Stata 32
characters) and made unique; a renamed variable's label starts with its dataset name. Labels are cut
to the formats' limits at a character boundary (SPSS: variable 256 bytes, value 120 bytes; Stata:
variable 80 characters).

**Memory bound.** pyreadstat writes from a complete pandas DataFrame and has no append mode, so
these two formats hold every row once. Cells are collected column by column into compact arrays
(8 bytes per numeric cell; Python objects only for text, dates and, in Stata, columns that hold
missing-value letters), which bounds memory at roughly ``8 × rows × columns`` bytes plus the text:
about 120 MB for 100,000 responses to the 151-column op-ed questionnaire in SPSS, up to about four
times that in Stata (its missing-value letters make object columns), plus a transient copy while
pandas builds the frame. Use CSV, JSON lines, XLSX or the data package (all flat) for larger exports.
"""

from __future__ import annotations

import keyword
import math
import re
import shutil
import tempfile
import textwrap
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyreadstat

from survey.exports.dataset import Column, Dataset

SPSS_NAME_BYTES = 64
STATA_NAME_CHARS = 32
SPSS_VARIABLE_LABEL_BYTES = 256
SPSS_VALUE_LABEL_BYTES = 120
SPSS_FILE_LABEL_BYTES = 64
SPSS_NOTE_LINE_BYTES = 80
STATA_VARIABLE_LABEL_CHARS = 80
STATA_FILE_LABEL_CHARS = 80
STATA_MISSING_LETTERS = "abcdefghijklmnopqrstuvwxyz"

SPSS_RESERVED = {"all", "and", "by", "eq", "ge", "gt", "le", "lt", "ne", "not", "or", "to", "with"}
STATA_RESERVED = {
    "_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long", "_n", "_N",
    "_pi", "_pred", "_rc", "_se", "_skip", "strL", "using", "with",
}  # fmt: skip


def _cut_bytes(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def _cut_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def variable_names(names: list[str], flavour: str) -> dict[str, str]:
    """Dataset name -> a valid, unique variable name of the format (``sav`` or ``dta``)."""
    limit = SPSS_NAME_BYTES if flavour == "sav" else STATA_NAME_CHARS
    reserved = SPSS_RESERVED if flavour == "sav" else STATA_RESERVED
    used: set[str] = set()
    result: dict[str, str] = {}
    for name in names:
        clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if not clean or not clean[0].isalpha():
            clean = f"v_{clean}"
        if clean.lower() in {r.lower() for r in reserved} or keyword.iskeyword(clean) or re.fullmatch(r"str\d+", clean):
            clean = f"{clean}_"
        candidate = clean[:limit]
        counter = 1
        while candidate.lower() in used:
            counter += 1
            suffix = f"_{counter}"
            candidate = clean[: limit - len(suffix)] + suffix
        used.add(candidate.lower())
        result[name] = candidate
    return result


class _Collector:
    """One column's cells, kept compact: floats in an ``array('d')`` unless objects are needed."""

    def __init__(self, as_objects: bool, convert: Callable[[Any], Any]) -> None:
        self.convert = convert
        self.values: array[float] | list[Any] = [] if as_objects else array("d")

    def add(self, value: Any) -> None:
        self.values.append(self.convert(value))

    def series(self) -> Any:
        if isinstance(self.values, array):
            return np.frombuffer(self.values, dtype=np.float64) if len(self.values) else np.zeros(0)
        return pd.Series(self.values, dtype=object)


def _collector(
    column: Column, flavour: str, language: str
) -> tuple[_Collector, dict[Any, str] | None, list[Any] | None]:
    """The collector of one column, its value labels (code -> label) and its missing declaration."""
    nan = math.nan
    if not (column.categorical or column.kind == "rating"):
        if column.type in ("integer", "number"):
            return _Collector(False, lambda value: nan if value is None else float(value)), None, None
        return _Collector(True, lambda value: value), None, None

    letters: dict[Any, str] = {}
    if flavour == "dta":
        letters = {c.value: STATA_MISSING_LETTERS[i] for i, c in enumerate(column.missing_categories[:26])}
    codes = {c.value: float(c.code) for c in column.categories if not c.anchor}
    numbers_pass = column.kind == "rating"

    def convert(value: Any) -> Any:
        if value is None:
            return nan
        if isinstance(value, str) and value in letters:
            return letters[value]
        if numbers_pass and not isinstance(value, str):
            return float(value)
        return codes[value]

    cut = (lambda text: _cut_bytes(text, SPSS_VALUE_LABEL_BYTES)) if flavour == "sav" else (lambda text: text)
    labels: dict[Any, str] = {}
    for category in column.categories:
        key = letters.get(category.value) if isinstance(category.value, str) and category.value in letters else None
        labels[key if key is not None else float(category.code)] = cut(category.label(language))
    missing: list[Any] | None = None
    if letters:
        missing = list(letters.values())
    elif flavour == "sav" and column.missing_categories:
        missing_codes = [c.code for c in column.missing_categories]
        missing = [{"lo": float(min(missing_codes)), "hi": float(max(missing_codes))}]
    return _Collector(bool(letters), convert), labels, missing


def build_frame(dataset: Dataset, flavour: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The DataFrame pyreadstat writes, and its metadata (names, labels, value labels, missing)."""
    language = dataset.language
    names = variable_names(list(dataset.names), flavour)
    collectors: list[_Collector] = []
    value_labels: dict[str, dict[Any, str]] = {}
    missing: dict[str, list[Any]] = {}
    column_labels: dict[str, str] = {}
    measures: dict[str, str] = {}
    for column in dataset.columns:
        name = names[column.name]
        collector, labels, declared = _collector(column, flavour, language)
        collectors.append(collector)
        if labels:
            value_labels[name] = labels
        if declared:
            missing[name] = declared
        prefix = f"{column.name}: " if name != column.name else ""
        if flavour == "sav":
            column_labels[name] = _cut_bytes(prefix + column.label(language), SPSS_VARIABLE_LABEL_BYTES)
        else:
            column_labels[name] = _cut_chars(prefix + column.short_label(language), STATA_VARIABLE_LABEL_CHARS)
        if column.categorical:
            measures[name] = "ordinal" if column.ordered else "nominal"
        elif column.type in ("integer", "number"):
            measures[name] = "scale"
        else:
            measures[name] = "nominal"
    for row in dataset.rows():
        for collector, value in zip(collectors, row, strict=True):
            collector.add(value)
    frame = pd.DataFrame(
        {names[c.name]: collector.series() for c, collector in zip(dataset.columns, collectors, strict=True)}
    )
    meta = {
        "names": names,
        "column_labels": column_labels,
        "value_labels": value_labels,
        "missing": missing,
        "measures": measures,
    }
    return frame, meta


def _write_through_file(writer: Callable[[Path], None], out: BinaryIO) -> None:
    """pyreadstat writes to a path; write to a private temporary file and copy it to ``out``."""
    with tempfile.TemporaryDirectory(prefix="survey-export-") as directory:
        path = Path(directory) / "export"
        writer(path)
        with path.open("rb") as written:
            shutil.copyfileobj(written, out)


def _note_lines(paragraphs: list[str]) -> list[str]:
    """SPSS document lines hold 80 bytes each."""
    lines: list[str] = []
    for paragraph in paragraphs:
        lines += [_cut_bytes(line, SPSS_NOTE_LINE_BYTES) for line in textwrap.wrap(paragraph, SPSS_NOTE_LINE_BYTES)]
    return lines


def write_sav(dataset: Dataset, out: BinaryIO) -> int:
    """Write the dataset to ``out`` as an SPSS .sav file; return the number of rows."""
    frame, meta = build_frame(dataset, "sav")
    notes = _note_lines(
        [
            f"{dataset.questionnaire}, versions {' '.join(str(v.number) for v in dataset.versions)}",
            *(f"privacy {key}: {value}" for key, value in dataset.privacy.items() if key != "k_anonymity"),
        ]
    )

    def write(path: Path) -> None:
        pyreadstat.write_sav(
            frame,
            str(path),
            file_label=_cut_bytes(dataset.title_in(dataset.language), SPSS_FILE_LABEL_BYTES),
            column_labels=meta["column_labels"],
            variable_value_labels=meta["value_labels"],
            missing_ranges=meta["missing"],
            variable_measure=meta["measures"],
            note=notes,
        )

    _write_through_file(write, out)
    return len(frame)


def write_dta(dataset: Dataset, out: BinaryIO) -> int:
    """Write the dataset to ``out`` as a Stata .dta file (format 118, Stata 14+); return the rows."""
    frame, meta = build_frame(dataset, "dta")

    def write(path: Path) -> None:
        pyreadstat.write_dta(
            frame,
            str(path),
            file_label=_cut_chars(dataset.title_in(dataset.language), STATA_FILE_LABEL_CHARS),
            column_labels=meta["column_labels"],
            variable_value_labels=meta["value_labels"],
            missing_user_values=meta["missing"],
        )

    _write_through_file(write, out)
    return len(frame)
