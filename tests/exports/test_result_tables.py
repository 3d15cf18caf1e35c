"""Result tables as CSV and XLSX: what the results say, readable, formula-safe, nothing more."""

from __future__ import annotations

import csv
import io

import openpyxl

from survey.db import unit_of_work
from survey.questionnaires.services import get_questionnaire
from tests.results.test_results_api import fill
from tests.staff import make_staff

PUBLIC = "/api/v1/questionnaires/dialogue_2022/results/table"
STAFF = "/api/v1/admin/questionnaires/dialogue_2022/results/table"


def read_csv(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_published_tables_match_the_published_results(client):
    fill(60)
    rows = read_csv(client.get(PUBLIC + "?format=csv&breakdown=community&language=sq"))
    results = client.get("/api/v1/questionnaires/dialogue_2022/results?breakdown=community").json
    published = {
        (q["code"], g["group"], c["option"]): c["count"]
        for q in results["questions"]
        for g in q["groups"]
        for c in g.get("cells", [])
        if not c.get("row") and not c.get("rank")
    }
    seen = 0
    for row in rows:
        key = (row["question"], row["group"], row["option"])
        if key in published and not row["row"] and not row["rank"]:
            expected = published[key]
            assert row["count"] == ("" if expected is None else str(expected))
            seen += 1
    assert seen == len(published) > 50
    assert any(r["option_label"] == "Mbështes fuqimisht" for r in rows)
    assert not any("secret-text" in value for row in rows for value in row.values())


def test_staff_tables_are_exact_and_xlsx_keeps_numbers_numeric(client):
    fill(60)
    people = make_staff()
    response = client.get(STAFF + "?format=xlsx&view=staff", headers=people["analyst"].headers)
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data()))["results"]
    header = [cell.value for cell in sheet[1]]
    count_column = header.index("count")
    counts = [
        row[count_column] for row in sheet.iter_rows(min_row=2, values_only=True) if row[count_column] is not None
    ]
    assert counts and all(isinstance(c, int) for c in counts)
    assert any(c % 5 for c in counts)  # exact, not rounded
    assert client.get(STAFF, headers=people["editor"].headers).status_code == 403


def test_formula_like_labels_are_neutralised_and_numbers_left_alone():
    from survey.exports.tables import table_rows, tables_csv
    from tests.factories import all_types_definition

    definition = all_types_definition()
    definition["sections"][0]["questions"][0]["options"][0]["label"]["en"] = '=HYPERLINK("http://x.example")'
    results = {
        "breakdown": None,
        "questions": [
            {
                "code": "heard",
                "groups": [{"group": "all", "n": 40, "cells": [{"option": "yes", "count": -5, "percent": 50}]}],
            }
        ],
    }
    rows = list(csv.DictReader(io.StringIO(tables_csv(table_rows(results, definition, "en")).decode("utf-8-sig"))))
    assert rows[0]["option_label"] == '\'=HYPERLINK("http://x.example")'
    assert rows[0]["count"] == "-5" and rows[0]["n"] == "40"  # numbers are not prefixed


def test_private_results_have_no_public_table(client):
    with unit_of_work():
        get_questionnaire("dialogue_2022").results_public = False
    assert client.get(PUBLIC).status_code == 404
