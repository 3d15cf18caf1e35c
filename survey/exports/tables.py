"""Result tables as files: the disclosure-controlled (or staff) results, one row per published cell.

The numbers come from :mod:`survey.results.services` only, so a table file can never say more than
the results page: public tables are read from the snapshot in force, staff tables are the staff
view with its group gate. Labels are in the language asked for; text cells are formula-safe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import xlsxwriter

from survey.exports.cells import neutralise, xml_safe
from survey.i18n import translated
from survey.questionnaires.definition import iter_questions

COLUMNS = (
    "question",
    "question_text",
    "row",
    "row_label",
    "rank",
    "group",
    "group_label",
    "n",
    "option",
    "option_label",
    "count",
    "percent",
)


def table_rows(results: dict[str, Any], definition: dict[str, Any], language: str) -> Iterator[dict[str, Any]]:
    """One dict per cell of every question and group in ``results`` (public or staff shape)."""
    default = definition["default_language"]
    specs = {q["code"]: q for _s, q in iter_questions(definition)}
    breakdown = specs.get(results.get("breakdown") or "")
    group_labels = {o["code"]: translated(o["label"], language, default) for o in (breakdown or {}).get("options", [])}
    for question in results["questions"]:
        spec = specs.get(question["code"], {})
        labels = _labels(spec, language, default)
        rows = {r["code"]: translated(r["label"], language, default) for r in spec.get("rows", [])}
        for group in question["groups"]:
            base = {
                "question": question["code"],
                "question_text": translated(spec.get("text"), language, default),
                "group": group["group"],
                "group_label": group_labels.get(group["group"], group["group"]),
                "n": group["n"],
            }
            cells = group.get("cells") or [{}]
            for cell in cells:
                yield {
                    **base,
                    "row": cell.get("row"),
                    "row_label": rows.get(cell.get("row"), ""),
                    "rank": cell.get("rank"),
                    "option": cell.get("option"),
                    "option_label": labels.get(cell.get("option"), cell.get("option") or ""),
                    "count": cell.get("count"),
                    "percent": cell.get("percent"),
                }


def _labels(spec: dict[str, Any], language: str, default: str) -> dict[str, str]:
    found = {}
    scale = spec.get("scale") or {}
    for option in [
        *spec.get("options", []),
        *spec.get("non_substantive", []),
        *scale.get("points", []),
        *scale.get("non_substantive", []),
    ]:
        found[option["code"]] = translated(option["label"], language, default)
    return found


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def tables_csv(rows: Iterator[dict[str, Any]]) -> bytes:
    """Every field quoted (safe for ;-separated locales too), text cells formula-neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row[c] if isinstance(row[c], int | float) else neutralise(_text(row[c])) for c in COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def tables_xlsx(rows: Iterator[dict[str, Any]]) -> bytes:
    """A single sheet; numbers as numbers, everything else written as (neutralised) strings."""
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    )
    sheet = workbook.add_worksheet("results")
    bold = workbook.add_format({"bold": True})
    for column, name in enumerate(COLUMNS):
        sheet.write_string(0, column, name, bold)
    for line, row in enumerate(rows, start=1):
        for column, name in enumerate(COLUMNS):
            value = row[name]
            if isinstance(value, int | float) and not isinstance(value, bool):
                sheet.write_number(line, column, value)
            elif value is not None:
                sheet.write_string(line, column, neutralise(xml_safe(str(value))))
    workbook.close()
    return out.getvalue()
