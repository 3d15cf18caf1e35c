"""SPSS .sav (our own streaming writer, :mod:`.sav`) and Stata .dta (through pyreadstat): numeric codes
with value labels, variable labels, and non-substantive codes declared as missing values.

Categorical columns (choices, scale points, ranks, language, channel) are written as numbers with
value labels: the definition's own values where they are usable (a 1..5 scale stays 1..5), otherwise
positions 1..n (:attr:`survey.exports.dataset.Category.code`). Non-substantive answers ("don't know",
"prefer not to say", a rating's "can't say") are declared missing:

- **SPSS**: they get negative codes below every valid value (-1, -2…; for a rating scale that
  reaches below zero, below its minimum) and one missing range covering them (``missing_ranges``);
- **Stata**: they become extended missing values ``.a``, ``.b``… with value labels.

Multiple-choice columns are 0/1 with labels, ratings and numbers are numeric, free text is a string,
the day is a date and a month is ``YYYY-MM`` text. Empty text is written as an empty string (neither
format has a missing string); SPSS text is cut (at a character) only past the format's 32,767 bytes,
and readers take its trailing spaces for padding. Names are cut to the formats' limits (SPSS 64
bytes, Stata 32 characters) and made unique; a renamed variable's label starts with its dataset
name. Labels are cut to the formats' limits at a character boundary (SPSS: variable 256 bytes, value
120 bytes; Stata: variable 80 characters).

**Memory bound.** Each column's variable (name, labels, value labels, missing values, measure and
cell conversion) is worked out once (:func:`column_specs`) for both formats.

- **SPSS streams with flat memory.** :func:`write_sav` converts the rows as they come from the
  database and hands them to :func:`.sav.write_system_file`, which spools them to a private
  temporary file in chunks of a few MiB (numbers already reduced to their compression byte, text as
  UTF-8) while it learns each text's widest value, then writes the dictionary and the
  bytecode-compressed cases. Memory is a few chunks whatever the number of responses (about 30 MB
  above the imports for 1,000,000 responses × 150 columns, the same as for 100,000); the temporary
  file is about the size of the result. Nothing is written to ``out`` until every row was read.
- **Stata holds the frame.** pyreadstat writes .dta from a complete pandas DataFrame and has no append
  mode, so that format holds every row once. Cells are collected column by column into compact
  arrays (8 bytes per numeric cell; Python objects only for text, dates and columns that hold
  missing-value letters), roughly ``8 × rows × columns`` bytes plus the text and up to about four
  times that where missing-value letters make object columns, plus a transient copy while pandas
  builds the frame. Use .sav, CSV, JSON lines, XLSX or the data package (all flat) for larger exports.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyreadstat

from survey.exports.dataset import Column, Dataset
from survey.exports.writers import sav

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


@dataclass(frozen=True)
class VariableSpec:
    """One column as a variable of a format (``sav`` or ``dta``), worked out once for every writer.

    ``convert`` turns a dataset cell into what the format holds (a float code, NaN for an empty
    cell, a missing-value letter in Stata; text and dates pass unchanged); ``storage`` says what
    the cells are: ``number``, ``date``, ``string`` or, in Stata, ``mixed`` (numbers and letters).
    """

    column: Column
    name: str
    label: str
    value_labels: dict[Any, str] | None
    missing: list[Any] | None
    measure: str
    storage: str
    convert: Callable[[Any], Any]


def _conversion(
    column: Column, flavour: str, language: str
) -> tuple[Callable[[Any], Any], str, dict[Any, str] | None, list[Any] | None]:
    """How one column's cells convert, what they are stored as, its value labels (code -> label) and
    its missing declaration."""
    nan = math.nan
    if not (column.categorical or column.kind == "rating"):
        if column.type in ("integer", "number"):
            return (lambda value: nan if value is None else float(value)), "number", None, None
        return (lambda value: value), ("date" if column.type == "date" else "string"), None, None

    letters: dict[Any, str] = {}
    if flavour == "dta":
        letters = {c.value: STATA_MISSING_LETTERS[i] for i, c in enumerate(column.missing_categories[:26])}
    codes = {c.value: float(c.code) for c in column.categories if not c.anchor}
    numbers_pass = column.kind == "rating"

    def rating(value: Any) -> Any:
        if value is None:
            return nan
        if isinstance(value, str) and value in letters:
            return letters[value]
        if numbers_pass and not isinstance(value, str):
            return float(value)
        return codes[value]

    # Categories only: the same mapping as one dict lookup (a KeyError for an unknown value).
    lookup: dict[Any, Any] = {
        **codes,
        **{value: letter for value, letter in letters.items() if isinstance(value, str)},
        None: nan,
    }
    convert: Callable[[Any], Any] = rating if numbers_pass else lookup.__getitem__

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
    return convert, ("mixed" if letters else "number"), labels, missing


def column_specs(dataset: Dataset, flavour: str) -> list[VariableSpec]:
    """Every column's variable in ``flavour``: name, label, value labels, missing values, measure
    and cell conversion."""
    language = dataset.language
    names = variable_names(list(dataset.names), flavour)
    specs: list[VariableSpec] = []
    for column in dataset.columns:
        name = names[column.name]
        convert, storage, labels, declared = _conversion(column, flavour, language)
        prefix = f"{column.name}: " if name != column.name else ""
        if flavour == "sav":
            label = _cut_bytes(prefix + column.label(language), SPSS_VARIABLE_LABEL_BYTES)
        else:
            label = _cut_chars(prefix + column.short_label(language), STATA_VARIABLE_LABEL_CHARS)
        if column.categorical:
            measure = "ordinal" if column.ordered else "nominal"
        elif column.type in ("integer", "number"):
            measure = "scale"
        else:
            measure = "nominal"
        specs.append(VariableSpec(column, name, label, labels or None, declared or None, measure, storage, convert))
    return specs


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


def build_frame(dataset: Dataset, flavour: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The DataFrame pyreadstat writes, and its metadata (names, labels, value labels, missing)."""
    specs = column_specs(dataset, flavour)
    collectors = [_Collector(spec.storage not in ("number",), spec.convert) for spec in specs]
    for row in dataset.rows():
        for collector, value in zip(collectors, row, strict=True):
            collector.add(value)
    frame = pd.DataFrame({spec.name: collector.series() for spec, collector in zip(specs, collectors, strict=True)})
    meta = {
        "names": {spec.column.name: spec.name for spec in specs},
        "column_labels": {spec.name: spec.label for spec in specs},
        "value_labels": {spec.name: spec.value_labels for spec in specs if spec.value_labels},
        "missing": {spec.name: spec.missing for spec in specs if spec.missing},
        "measures": {spec.name: spec.measure for spec in specs},
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


def _sav_date(value: Any) -> float:
    return math.nan if value is None else sav.spss_date(value)


def _sav_text(value: Any) -> bytes:
    """UTF-8 text; empty text is an empty string. Cut (at a character) only past the format's limit."""
    if value is None:
        return b""
    text = value if isinstance(value, str) else str(value)
    encoded = text.encode("utf-8")
    if len(encoded) > sav.MAX_STRING_BYTES:
        encoded = _cut_bytes(text, sav.MAX_STRING_BYTES).encode("utf-8")
    return encoded


def sav_variables(specs: list[VariableSpec]) -> tuple[list[sav.Variable], list[Callable[[Any], Any]]]:
    """The .sav variables of the columns, and for each the conversion of a dataset cell to its cell."""
    variables: list[sav.Variable] = []
    converters: list[Callable[[Any], Any]] = []
    for spec in specs:
        column = spec.column
        missing: list[sav.Missing] = [m["lo"] if m["lo"] == m["hi"] else (m["lo"], m["hi"]) for m in spec.missing or ()]
        convert: Callable[[Any], Any]
        if spec.storage == "date":
            kind, convert = "date", _sav_date
        elif spec.storage == "string":
            kind, convert = "string", _sav_text
        else:
            kind, convert = "number", spec.convert
        whole = column.categorical or column.type == "integer"  # codes, 0/1 flags, ratings, counts
        variables.append(
            sav.Variable(
                name=spec.name,
                type=kind,
                label=spec.label,
                decimals=0 if whole else 2,
                measure=spec.measure,
                value_labels=spec.value_labels or {},
                missing=missing,
            )
        )
        converters.append(convert)
    return variables, converters


def write_sav(dataset: Dataset, out: BinaryIO) -> int:
    """Write the dataset to ``out`` as an SPSS .sav file (bytecode-compressed, streamed through a
    temporary spool; see :mod:`.sav`); return the number of rows."""
    variables, converters = sav_variables(column_specs(dataset, "sav"))
    notes = _note_lines(
        [
            f"{dataset.questionnaire}, versions {' '.join(str(v.number) for v in dataset.versions)}",
            *(f"privacy {key}: {value}" for key, value in dataset.privacy.items() if key != "k_anonymity"),
        ]
    )
    cases = ([convert(value) for convert, value in zip(converters, row, strict=True)] for row in dataset.rows())
    return sav.write_system_file(
        out,
        variables,
        cases,
        file_label=_cut_bytes(dataset.title_in(dataset.language), SPSS_FILE_LABEL_BYTES),
        documents=notes,
    )


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
