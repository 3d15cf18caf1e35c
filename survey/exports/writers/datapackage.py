"""A Frictionless Data Package (v2) in a zip: the data, a Table Schema, a multilingual codebook, the
questionnaire definitions and a note of the privacy rules applied.

Contents of the zip:

- ``data/responses.csv`` — the rows, as the CSV writer makes them (UTF-8, all fields quoted,
  formula-safe text, no BOM), option codes in the cells;
- ``codebook.csv`` — every variable and value with its labels in every language of the questionnaire
  (:mod:`survey.exports.writers.codebook`);
- ``questionnaire/version-<n>.json`` — each exported version's definition, exactly as published;
- ``PRIVACY.md`` — the rules applied to this export (precision of dates, free text, row order,
  k-anonymity report for partner exports, the formula prefix);
- ``datapackage.json`` — the descriptor, written last so it can carry the byte size and SHA-256 of
  each CSV file. Each column of the responses has a Table Schema field with its type, title (label
  in the export's language), ``categories`` (values with labels; ``categoriesOrdered`` for scales),
  an ``enum`` constraint on category values and ``minimum``/``maximum`` for numbers, and
  ``missingValues``: the empty string ("not asked or not answered") and the question's
  non-substantive codes with their labels (object form, Data Package v2).

The CSV streams straight into the zip entry, so memory stays flat in the number of responses. The
zip can be written to an unseekable stream (zipfile then uses data descriptors).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Generator, Iterable
from typing import IO, Any, BinaryIO

from survey.exports.dataset import Column, Dataset
from survey.exports.writers.codebook import codebook_header, codebook_rows
from survey.exports.writers.delimited import iter_delimited

PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
NOT_ANSWERED = {"value": "", "label": "not asked or not answered"}
_TYPES = {"string": "string", "integer": "integer", "number": "number", "date": "date", "yearmonth": "yearmonth"}


def table_field(column: Column, language: str) -> dict[str, Any]:
    """The Table Schema field of one column."""
    field: dict[str, Any] = {"name": column.name, "type": _TYPES[column.type], "title": column.label(language)}
    if column.question:
        field["description"] = f"{column.question} ({column.question_type}); versions {_numbers(column.versions)}"
    constraints: dict[str, Any] = {}
    values = column.value_categories
    if column.categorical and values:
        field["categories"] = [{"value": c.value, "label": c.label(language)} for c in values]
        if column.ordered:
            field["categoriesOrdered"] = True
        constraints["enum"] = [c.value for c in values]
    if column.type in ("integer", "number"):
        if column.minimum is not None:
            constraints["minimum"] = column.minimum
        if column.maximum is not None:
            constraints["maximum"] = column.maximum
    if constraints:
        field["constraints"] = constraints
    field["missingValues"] = [
        NOT_ANSWERED,
        *({"value": str(c.value), "label": c.label(language)} for c in column.missing_categories),
    ]
    return field


def _numbers(numbers: Iterable[int]) -> str:
    return " ".join(str(n) for n in numbers)


def _privacy_note(dataset: Dataset, neutralise: bool) -> str:
    lines = [
        f"# Privacy rules applied to this export of `{dataset.questionnaire}`",
        "",
        "- No response identifier, IP address, user agent, cookie or time of day is stored or exported.",
    ]
    privacy = dataset.privacy
    if privacy.get("date_precision") == "month":
        lines.append("- Dates are given to the month only (`month`).")
    else:
        lines.append("- Dates are given to the day only (`day`).")
    free_text = privacy.get("free_text")
    if free_text == "scrub":
        lines.append(
            "- Free text was scrubbed: e-mail addresses, URLs, phone numbers, IBANs, bank accounts and "
            "personal numbers were replaced by tokens such as `[email]` and `[phone]`."
        )
    elif free_text == "raw":
        lines.append("- Free text is exported as written (raw text was explicitly requested).")
    else:
        lines.append("- Free-text answers are not included.")
    if str(privacy.get("row_order", "")).startswith("shuffled"):
        lines.append("- Rows were shuffled for this export; their order says nothing about arrival or other exports.")
    else:
        lines.append("- Rows are in random order (by each response's random identifier), not in order of arrival.")
    report = privacy.get("k_anonymity")
    if report:
        lines += [
            "",
            "## k-anonymity",
            "",
            f"- k = {report['k']} over {', '.join(report['quasi_identifiers']) or 'no quasi-identifier'}; "
            f"status: {report['status']}.",
            f"- Smallest group before: {report['smallest_class_before']}; after: {report['smallest_class_after']}.",
            *(f"- {step}" for step in report["steps"]),
        ]
        diversity = report.get("l_diversity")
        if diversity:
            withheld = diversity["rows_withheld"]
            lines += [
                "",
                "## l-diversity",
                "",
                f"- Distinct l = {diversity['l']} on the opinion items: in every group of respondents with the "
                f"same quasi-identifier values, each opinion item has no answer or at least {diversity['l']} "
                "different answers.",
                f"- Where a group's answers to an item had fewer than {diversity['l']} different values (with "
                "l = 2: everyone answered alike), that item is left empty for the whole group; an empty cell "
                "does not say which answer it was.",
                f"- {diversity['cells_withheld']} (group, item) cell(s) withheld; {diversity['classes']} group(s) "
                "checked"
                + (
                    "; answers withheld: " + ", ".join(f"`{item}` {rows}" for item, rows in withheld.items()) + "."
                    if withheld
                    else "."
                ),
            ]
    if neutralise:
        lines += [
            "",
            "## Spreadsheet safety",
            "",
            "Text cells that began with `=`, `+`, `-`, `@`, tab, CR, LF or NUL (or their fullwidth forms, possibly "
            "after spaces) start with an apostrophe `'` so that spreadsheets show them as text.",
        ]
    return "\n".join(lines) + "\n"


class _Hashing(io.RawIOBase):
    """Passes writes through to a zip entry while counting bytes and computing SHA-256."""

    def __init__(self, target: IO[bytes]) -> None:
        super().__init__()
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.target.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def _write_entry(archive: zipfile.ZipFile, path: str, chunks: Generator[bytes, None, int]) -> tuple[int, _Hashing]:
    with archive.open(path, "w", force_zip64=True) as entry:
        sink = _Hashing(entry)
        while True:
            try:
                sink.write(next(chunks))
            except StopIteration as stop:
                return stop.value, sink


def write_datapackage(
    dataset: Dataset, out: BinaryIO, neutralise: bool = True, licenses: list[dict[str, str]] | None = None
) -> int:
    """Write the dataset to ``out`` as a zipped data package; return the number of data rows."""
    language = dataset.language
    name = dataset.questionnaire.replace("_", "-")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        rows, data = _write_entry(
            archive, "data/responses.csv", iter_delimited(list(dataset.names), dataset.rows(), neutralise=neutralise)
        )
        book_rows = ([None if v is None else v for v in row] for row in codebook_rows(dataset))
        _count, book = _write_entry(
            archive, "codebook.csv", iter_delimited(codebook_header(dataset), book_rows, neutralise=neutralise)
        )
        for version in dataset.versions:
            archive.writestr(
                f"questionnaire/version-{version.number}.json",
                json.dumps(version.definition, ensure_ascii=False, indent=2, sort_keys=True),
            )
        archive.writestr("PRIVACY.md", _privacy_note(dataset, neutralise))
        descriptor = {
            "$schema": PROFILE,
            "name": name,
            "title": dataset.title_in(language),
            "description": f"Responses to the questionnaire {dataset.questionnaire!r}, versions "
            f"{_numbers(v.number for v in dataset.versions)}; labels in {language}.",
            "languages": list(dataset.languages),
            "questionnaire": {
                "code": dataset.questionnaire,
                "title": dict(dataset.title),
                "versions": [
                    {
                        "number": v.number,
                        "published_on": v.published_on.isoformat() if v.published_on else None,
                        "checksum": v.checksum,
                        "definition": f"questionnaire/version-{v.number}.json",
                    }
                    for v in dataset.versions
                ],
            },
            "privacy": {key: value for key, value in dataset.privacy.items()},
            "resources": [
                {
                    "name": "responses",
                    "type": "table",
                    "path": "data/responses.csv",
                    "format": "csv",
                    "mediatype": "text/csv",
                    "encoding": "utf-8",
                    "bytes": data.size,
                    "hash": f"sha256:{data.sha256.hexdigest()}",
                    "dialect": {"delimiter": ",", "quoteChar": '"', "doubleQuote": True, "header": True},
                    "schema": {"fields": [table_field(c, language) for c in dataset.columns]},
                },
                {
                    "name": "codebook",
                    "type": "table",
                    "path": "codebook.csv",
                    "format": "csv",
                    "mediatype": "text/csv",
                    "encoding": "utf-8",
                    "bytes": book.size,
                    "hash": f"sha256:{book.sha256.hexdigest()}",
                    "schema": {
                        "fields": [
                            {"name": n, "type": "integer" if n == "numeric_code" else "string"}
                            for n in codebook_header(dataset)
                        ],
                        "missingValues": [""],
                    },
                },
                *(
                    {
                        "name": f"questionnaire-version-{v.number}",
                        "path": f"questionnaire/version-{v.number}.json",
                        "format": "json",
                        "mediatype": "application/json",
                    }
                    for v in dataset.versions
                ),
                {"name": "privacy", "type": "text", "path": "PRIVACY.md", "format": "md", "mediatype": "text/markdown"},
            ],
        }
        if licenses:
            descriptor["licenses"] = licenses
        archive.writestr("datapackage.json", json.dumps(descriptor, ensure_ascii=False, indent=2))
    return rows
