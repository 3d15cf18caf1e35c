"""XLSX with XlsxWriter in ``constant_memory`` mode: a data sheet, a codebook sheet and an about sheet.

``constant_memory`` flushes each row to a temporary file as soon as the next one starts, so memory
stays flat however many responses there are (the rows stream from the database straight into it).
Every string is written with ``write_string`` and the workbook has ``strings_to_formulas``,
``strings_to_urls`` and ``strings_to_numbers`` off: a text cell is always a text cell, never a
formula, a hyperlink or a number. Text that a spreadsheet could take for a formula also gets the
documented leading apostrophe (promise S11), as in CSV, so it stays inert if the sheet is later saved
as CSV. Numbers are numeric cells; days are date cells.

A sheet holds at most 1,048,576 rows; a larger export continues on ``data_2``, ``data_3``…
"""

from __future__ import annotations

import datetime as dt
from typing import Any, BinaryIO

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from survey.exports.cells import xml_safe
from survey.exports.dataset import Dataset
from survey.exports.writers.base import header, label_presenter, safe_text, text_of
from survey.exports.writers.codebook import FIXED_HEADER, codebook_header, codebook_rows

EXCEL_MAX_ROWS = 1_048_576


def write_xlsx(
    dataset: Dataset,
    out: BinaryIO,
    neutralise: bool = True,
    labels: bool = False,
    rows_per_sheet: int = EXCEL_MAX_ROWS - 1,
) -> int:
    """Write the dataset to ``out`` as an XLSX workbook; return the number of data rows.

    ``labels=True`` writes column labels as the header and category labels instead of codes.
    ``rows_per_sheet`` (data rows per sheet, below the header) exists so tests can reach the split.
    """
    workbook = xlsxwriter.Workbook(
        out,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
        },
    )
    bold = workbook.add_format({"bold": True})
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    names = header(dataset, labels)
    present = label_presenter(dataset) if labels else None

    def new_sheet(number: int) -> Worksheet:
        sheet = workbook.add_worksheet("data" if number == 1 else f"data_{number}")
        for index, name in enumerate(names):
            sheet.write_string(0, index, xml_safe(safe_text(name, neutralise)), bold)
        sheet.freeze_panes(1, 0)
        return sheet

    count = 0
    sheet_number = 1
    sheet = new_sheet(sheet_number)
    row_index = 0
    for row in dataset.rows():
        if row_index == rows_per_sheet:
            sheet_number += 1
            sheet = new_sheet(sheet_number)
            row_index = 0
        row_index += 1
        if present is not None:
            row = present(row)
        for index, value in enumerate(row):
            _write_cell(sheet, row_index, index, value, neutralise, day)
        count += 1

    _write_codebook(workbook, dataset, neutralise, bold)
    _write_about(workbook, dataset, count, neutralise, bold)
    workbook.close()
    return count


def _write_cell(sheet: Worksheet, row: int, column: int, value: Any, neutralise: bool, day: Any) -> None:
    if value is None:
        return
    if isinstance(value, str):
        sheet.write_string(row, column, xml_safe(safe_text(value, neutralise)))
    elif isinstance(value, bool):
        sheet.write_number(row, column, int(value))
    elif isinstance(value, int | float):
        sheet.write_number(row, column, value)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, column, value, day)
    else:
        sheet.write_string(row, column, xml_safe(safe_text(text_of(value), neutralise)))


def _write_codebook(workbook: xlsxwriter.Workbook, dataset: Dataset, neutralise: bool, bold: Any) -> None:
    sheet = workbook.add_worksheet("codebook")
    for index, name in enumerate(codebook_header(dataset)):
        sheet.write_string(0, index, name, bold)
    sheet.freeze_panes(1, 1)
    numeric = FIXED_HEADER.index("numeric_code")
    for row_index, row in enumerate(codebook_rows(dataset), start=1):
        for index, value in enumerate(row):
            if index == numeric and isinstance(value, int):
                sheet.write_number(row_index, index, value)
            elif value is not None:
                sheet.write_string(row_index, index, xml_safe(safe_text(text_of(value), neutralise)))


def _write_about(workbook: xlsxwriter.Workbook, dataset: Dataset, rows: int, neutralise: bool, bold: Any) -> None:
    sheet = workbook.add_worksheet("about")
    lines: list[tuple[str, str]] = [
        ("questionnaire", dataset.questionnaire),
        ("title", dataset.title_in(dataset.language)),
        ("versions", " ".join(str(v.number) for v in dataset.versions)),
        ("language of labels", dataset.language),
        ("rows", str(rows)),
    ]
    lines += [(f"privacy: {key}", text_of(value)) for key, value in dataset.privacy.items() if key != "k_anonymity"]
    report = dataset.privacy.get("k_anonymity")
    if report:
        lines += [
            ("k-anonymity: k", str(report["k"])),
            ("k-anonymity: status", report["status"]),
            ("k-anonymity: quasi-identifiers", ", ".join(report["quasi_identifiers"])),
            ("k-anonymity: dropped", ", ".join(report["dropped"])),
            *((f"k-anonymity: step {i}", step) for i, step in enumerate(report["steps"], start=1)),
        ]
        diversity = report.get("l_diversity")
        if diversity:
            lines += [
                ("l-diversity: l", str(diversity["l"])),
                ("l-diversity: items withheld", str(diversity["cells_withheld"])),
                *((f"l-diversity: answers withheld: {item}", str(n)) for item, n in diversity["rows_withheld"].items()),
            ]
    if neutralise:
        lines.append(("formula safety", "text cells that began with = + - @ tab CR LF or NUL start with '"))
    for row_index, (key, value) in enumerate(lines):
        sheet.write_string(row_index, 0, key, bold)
        sheet.write_string(row_index, 1, xml_safe(safe_text(value, neutralise)))
