"""Every format read back by an independent reader: the same rows as the database, every value equal
(Albanian, Serbian Cyrillic and Latin, emoji, line breaks), labels and missing values declared
(promises R10, S11, P7)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import openpyxl
import pyreadstat
import pytest
from flask import Flask
from frictionless import Package, validate
from sqlalchemy import func, select

from survey.db import db
from survey.errors import ExportOptionsInvalidError
from survey.exports.dataset import Column, Dataset, ExportOptions, build_dataset
from survey.exports.services import export_responses
from survey.exports.writers import FORMATS, iter_export, write_export
from survey.exports.writers.spreadsheet import write_xlsx
from survey.exports.writers.statistical import variable_names
from survey.questionnaires.models import Questionnaire
from survey.responses.models import Response
from tests.exports.conftest import (
    CODE,
    NAMES,
    PII_SCRUBBED,
    export_definition,
    make_questionnaire,
    sample_answers,
    submit,
)
from tests.exports.test_cells import FORMULA_CORPUS

Row = dict[str, Any]


def db_count(code: str = CODE) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Response).join(Questionnaire).where(Questionnaire.code == code)
    )


def multiset(rows: list[Row]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple((name, row[name]) for name in NAMES) for row in rows)


def write(fmt: str, dataset: Dataset, path: Path, **options: Any) -> int:
    with path.open("wb") as out:
        return write_export(fmt, dataset, out, **options)


def csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def all_quoted(rows: list[list[str]]) -> str:
    return "".join(",".join('"' + field.replace('"', '""') + '"' for field in row) + "\r\n" for row in rows)


# -- CSV ----------------------------------------------------------------------------------------


def test_csv_has_every_row_and_value_with_every_field_quoted(exported: list[Row], tmp_path: Path):
    dataset = build_dataset(CODE)
    path = tmp_path / "export.csv"
    assert write("csv", dataset, path) == len(exported) == db_count() == dataset.count()
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    rows = read_csv(data)
    assert tuple(rows[0]) == NAMES
    assert data.decode("utf-8") == all_quoted(rows)  # QUOTE_ALL, CRLF line ends
    expected = Counter(tuple(csv_text(row[name]) for name in NAMES) for row in exported)
    assert Counter(map(tuple, rows[1:])) == expected
    comments = {row[NAMES.index("comment")] for row in rows[1:]}
    assert PII_SCRUBBED in comments
    assert "Приштина, Косово; Ђорђе Љубичић Њ Џ ђ ћ ж" in comments and "😀👩🏽‍🌾" in comments


def test_csv_bom_and_labels(exported: list[Row], tmp_path: Path):
    dataset = build_dataset(CODE, ExportOptions(language="sr-Cyrl"))
    path = tmp_path / "labels.csv"
    write("csv", dataset, path, bom=True, labels=True)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0][:4] == ["Верзија упитника", "Језик одговора", "Канал", "Дан пријема"]
    assert rows[0][NAMES.index("support")] == "Support? [sr-Cyrl]"
    support = Counter(row[NAMES.index("support")] for row in rows[1:])
    assert support == Counter(f"{row['support']} [sr-Cyrl]" for row in exported)
    flags = {row[NAMES.index("which__a")] for row in rows[1:]}
    assert flags == {"Изабрано", "Није изабрано", ""}
    lean = Counter(row[NAMES.index("lean")] for row in rows[1:])
    assert lean["cant_say [sr-Cyrl]"] == 3 and lean["-5"] == 3


# -- JSON lines ------------------------------------------------------------------------------------


def test_jsonl_keeps_types(exported: list[Row], tmp_path: Path):
    path = tmp_path / "export.jsonl"
    assert write("jsonl", build_dataset(CODE), path) == len(exported)
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert all(list(row) == list(NAMES) for row in rows)
    expected = [{**row, "day": row["day"].isoformat()} for row in exported]
    assert multiset(rows) == multiset(expected)
    assert {type(row["balance"]) for row in rows} == {int, float}
    assert {row["lean"] for row in rows} == {-5, 5, 0, "cant_say"}


# -- XLSX -----------------------------------------------------------------------------------------


def test_xlsx_data_codebook_and_about(exported: list[Row], tmp_path: Path):
    path = tmp_path / "export.xlsx"
    assert write("xlsx", build_dataset(CODE), path) == len(exported)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["data", "codebook", "about"]
    sheet = workbook["data"]
    header, *body = list(sheet.iter_rows())
    assert tuple(cell.value for cell in header) == NAMES
    rows = []
    for cells in body:
        row = {}
        for name, cell in zip(NAMES, cells, strict=True):
            value = cell.value
            if isinstance(value, dt.datetime):
                value = value.date()
            if isinstance(value, str):
                assert cell.data_type == "s"
            elif isinstance(value, int | float):
                assert cell.data_type == "n"
            row[name] = value
        rows.append(row)
    assert multiset(rows) == multiset(exported)

    codebook = [[cell.value for cell in row] for row in workbook["codebook"].iter_rows()]
    assert codebook[0][-4:] == ["label_en", "label_sq", "label_sr-Latn", "label_sr-Cyrl"]
    agree = next(row for row in codebook if row[0] == "support" and row[5] == "agree")
    assert agree[6] == 3 and agree[-4:] == [f"agree [{lang}]" for lang in ("en", "sq", "sr-Latn", "sr-Cyrl")]
    dont_know = next(row for row in codebook if row[0] == "support" and row[5] == "dont_know")
    assert dont_know[6] == -1 and dont_know[7] == "missing"
    about = {row[0].value: row[1].value for row in workbook["about"].iter_rows()}
    assert about["rows"] == str(len(exported)) and about["privacy: free_text"] == "scrub"


def test_xlsx_splits_into_sheets_when_one_is_full(exported: list[Row], tmp_path: Path):
    path = tmp_path / "split.xlsx"
    with path.open("wb") as out:
        assert write_xlsx(build_dataset(CODE), out, rows_per_sheet=5) == 12
    workbook = openpyxl.load_workbook(path, read_only=True)
    assert workbook.sheetnames[:3] == ["data", "data_2", "data_3"]
    sizes = [workbook[name].max_row for name in ("data", "data_2", "data_3")]
    assert sizes == [6, 6, 3]  # header + rows
    workbook.close()


# -- formula safety (S11) ----------------------------------------------------------------------


def synthetic(columns: list[Column], rows: list[tuple[Any, ...]]) -> Dataset:
    return Dataset(
        questionnaire="synthetic",
        title={"en": "Synthetic"},
        language="en",
        languages=("en",),
        versions=(),
        columns=tuple(columns),
        options=ExportOptions(),
        privacy={},
        _rows=lambda: iter(rows),
        _count=lambda: len(rows),
    )


def test_formula_corpus_is_neutralised_in_csv_and_xlsx_and_numbers_stay_numbers(tmp_path: Path):
    columns = [Column("note", "text", "string", {"en": "Note"}), Column("amount", "number", "number", {"en": "A"})]
    rows = [(payload, -5) for payload in FORMULA_CORPUS]
    dataset = synthetic(columns, rows)

    csv_path = tmp_path / "corpus.csv"
    write("csv", dataset, csv_path)
    body = read_csv(csv_path.read_bytes())[1:]
    assert [row[0] for row in body] == ["'" + payload for payload in FORMULA_CORPUS]
    assert {row[1] for row in body} == {"-5"}

    xlsx_path = tmp_path / "corpus.xlsx"
    write("xlsx", dataset, xlsx_path)
    sheet = openpyxl.load_workbook(xlsx_path)["data"]
    cells = list(sheet.iter_rows(min_row=2))
    assert len(cells) == len(FORMULA_CORPUS)
    for (note, amount), payload in zip(cells, FORMULA_CORPUS, strict=True):
        assert note.data_type == "s" and note.value.startswith("'")
        # XML cannot hold NUL (written as U+FFFD); a CR is stored escaped, which openpyxl leaves as is.
        assert note.value.replace("_x000D_", "\r") == "'" + payload.replace("\0", "\ufffd")
        assert amount.data_type == "n" and amount.value == -5


def test_stored_formulas_are_neutralised_in_exports_of_the_database(app: Flask, tmp_path: Path):
    make_questionnaire(export_definition())
    stored = [p for p in FORMULA_CORPUS if p == p.strip() and "\0" not in p]
    for payload in stored:
        answers = {**sample_answers(1), "comment": payload, "balance": -5, "lean": -5}
        submit(CODE, answers)
    dataset = build_dataset(CODE, ExportOptions(free_text="raw"))  # the URLs in them would be scrubbed

    csv_path = tmp_path / "stored.csv"
    write("csv", dataset, csv_path)
    rows = read_csv(csv_path.read_bytes())
    comment, balance, lean = (rows[0].index(name) for name in ("comment", "balance", "lean"))
    assert sorted(row[comment] for row in rows[1:]) == sorted("'" + p for p in stored)
    assert {(row[balance], row[lean]) for row in rows[1:]} == {("-5", "-5")}

    xlsx_path = tmp_path / "stored.xlsx"
    write("xlsx", dataset, xlsx_path)
    body = list(openpyxl.load_workbook(xlsx_path)["data"].iter_rows(min_row=2))
    assert sorted(row[comment].value for row in body) == sorted("'" + p for p in stored)
    assert all(row[comment].data_type == "s" for row in body)
    assert {(row[balance].value, row[balance].data_type, row[lean].value) for row in body} == {(-5, "n", -5)}


# -- SPSS and Stata ----------------------------------------------------------------------------------


def labelled(value: Any, labels: dict[Any, str] | None) -> Any:
    """A statistical file's cell as our test expects it: a category's label, or the value itself."""
    if labels is not None and value in labels and not isinstance(value, str | dt.date):
        return labels[value]
    if labels is not None and isinstance(value, str) and value in labels:
        return labels[value]
    return value


def expected_statistical(row: Row) -> Row:
    """The labels and numbers a .sav/.dta file must give for an expected row (English labels)."""
    result: Row = {}
    for name, value in row.items():
        if value is None:
            result[name] = "" if name in ("comment", "story") else None
        elif name == "version":
            result[name] = float(value)
        elif name == "language":
            result[name] = value  # the definition's language names are the tags themselves
        elif name == "channel":
            result[name] = {"api": "API", "web": "Web form"}[value]
        elif name.startswith("which__"):
            result[name] = "Selected" if value else "Not selected"
        elif name in ("score", "lean") and not isinstance(value, str):
            anchors = {"score": {0: "low [en]", 10: "high [en]"}, "lean": {-5: "left [en]", 5: "right [en]"}}[name]
            result[name] = anchors.get(value, float(value))
        elif name in ("household", "balance"):
            result[name] = float(value)
        elif name in ("day", "comment", "story"):
            result[name] = value
        else:
            result[name] = f"{value} [en]"
    return result


def read_statistical(frame: Any, meta: Any) -> list[Row]:
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {}
        for name in NAMES:
            value = record[name]
            if isinstance(value, float) and value != value:  # NaN
                value = None
            row[name] = labelled(value, meta.variable_value_labels.get(name))
        rows.append(row)
    return rows


def test_sav_has_values_labels_and_declared_missing_codes(exported: list[Row], tmp_path: Path):
    path = tmp_path / "export.sav"
    assert write("sav", build_dataset(CODE), path) == len(exported)
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert len(frame) == len(exported) == db_count()
    assert tuple(frame.columns) == NAMES
    assert multiset(read_statistical(frame, meta)) == multiset([expected_statistical(r) for r in exported])
    assert meta.column_names_to_labels["support"] == "Support? [en]"
    assert meta.column_names_to_labels["which__b"] == "Which? [en] — b [en]"
    assert meta.variable_value_labels["support"] == {1.0: "disagree [en]", 2.0: "neutral [en]", 3.0: "agree [en]",
                                                     -1.0: "dont_know [en]"}  # fmt: skip
    assert meta.missing_ranges["support"] == [{"lo": -1.0, "hi": -1.0}]
    assert meta.missing_ranges["lean"] == [{"lo": -6.0, "hi": -6.0}]  # below the scale's -5
    assert meta.missing_ranges["community"] == [{"lo": -1.0, "hi": -1.0}]
    assert meta.variable_measure["age"] == "ordinal" and meta.variable_measure["balance"] == "scale"
    plain, _meta = pyreadstat.read_sav(str(path))  # declared missing values read as missing
    assert plain["lean"].isna().sum() == sum(1 for r in exported if r["lean"] in (None, "cant_say"))
    assert (plain["lean"] == -5).sum() == 3


def test_dta_has_values_labels_and_extended_missing_values(exported: list[Row], tmp_path: Path):
    path = tmp_path / "export.dta"
    assert write("dta", build_dataset(CODE), path) == len(exported)
    frame, meta = pyreadstat.read_dta(str(path), user_missing=True)
    assert tuple(frame.columns) == NAMES
    assert multiset(read_statistical(frame, meta)) == multiset([expected_statistical(r) for r in exported])
    assert meta.variable_value_labels["lean"] == {-5: "left [en]", 5: "right [en]", "a": "cant_say [en]"}
    assert set(frame["lean"]) >= {"a", -5.0}
    assert meta.column_names_to_labels["grid__r1"] == "r1 [en] — Grid [en]"
    plain, _meta = pyreadstat.read_dta(str(path))
    assert plain["lean"].isna().sum() == 3


def test_statistical_names_are_made_valid_and_unique():
    long = "agreements_known__freedom_of_movement_and_goods"
    names = variable_names([long, long[:40], "with", "to", "x" * 70], "dta")
    assert all(len(n) <= 32 for n in names.values())
    assert len(set(names.values())) == 5
    assert names["with"] == "with_"
    spss = variable_names(["to", "x" * 70, "x" * 64], "sav")
    assert spss["to"] == "to_" and len(spss["x" * 70]) == 64 and spss["x" * 70] != spss["x" * 64]


# -- Data package ------------------------------------------------------------------------------------


def test_datapackage_validates_and_describes_itself(exported: list[Row], tmp_path: Path):
    path = tmp_path / "export.zip"
    assert write("datapackage", build_dataset(CODE, ExportOptions(language="sq")), path) == len(exported)
    report = validate(str(path))
    assert report.valid, report.flatten(["type", "rowNumber", "fieldName", "note"])

    with zipfile.ZipFile(path) as archive:
        assert set(archive.namelist()) == {
            "data/responses.csv",
            "codebook.csv",
            "questionnaire/version-1.json",
            "PRIVACY.md",
            "datapackage.json",
        }
        descriptor = json.loads(archive.read("datapackage.json"))
        data = archive.read("data/responses.csv")
        codebook = read_csv(archive.read("codebook.csv"))
        definition = json.loads(archive.read("questionnaire/version-1.json"))
        privacy = archive.read("PRIVACY.md").decode("utf-8")

    rows = read_csv(data)
    assert tuple(rows[0]) == NAMES
    assert Counter(map(tuple, rows[1:])) == Counter(tuple(csv_text(r[n]) for n in NAMES) for r in exported)
    fields = {f["name"]: f for f in descriptor["resources"][0]["schema"]["fields"]}
    assert list(fields) == list(NAMES)
    assert fields["support"]["title"] == "Support? [sq]"
    assert fields["support"]["constraints"]["enum"] == ["disagree", "neutral", "agree"]
    assert fields["support"]["categoriesOrdered"] is True
    assert {"value": "dont_know", "label": "dont_know [sq]"} in fields["support"]["missingValues"]
    assert fields["lean"]["type"] == "integer" and fields["lean"]["constraints"] == {"minimum": -5, "maximum": 5}
    assert fields["which__a"]["constraints"]["enum"] == [0, 1]
    assert fields["day"]["type"] == "date" and fields["comment"]["type"] == "string"
    assert codebook[0][-4:] == ["label_en", "label_sq", "label_sr-Latn", "label_sr-Cyrl"]
    assert ["agree [en]", "agree [sq]", "agree [sr-Latn]", "agree [sr-Cyrl]"] in [row[-4:] for row in codebook]
    assert (
        definition == db.session.scalar(select(Questionnaire).where(Questionnaire.code == CODE)).versions[0].definition
    )
    assert "scrubbed" in privacy and "day only" in privacy

    resource = Package(str(path)).get_resource("responses")
    typed = resource.read_rows()
    assert len(typed) == len(exported)
    assert Counter(row["lean"] for row in typed) == Counter(
        None if r["lean"] == "cant_say" else r["lean"] for r in exported
    )  # non-substantive codes are declared missing values


def test_datapackage_rejects_a_tampered_file(exported: list[Row], tmp_path: Path):
    """The descriptor's hash and the enum constraints are real checks, not decoration."""
    path = tmp_path / "export.zip"
    write("datapackage", build_dataset(CODE), path)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "data/responses.csv":
                content = content.replace(b'"agree"', b'"agreed"', 1)
            target.writestr(name, content)
    errors = {error[0] for error in validate(str(tampered)).flatten(["type"])}
    assert {"hash-count", "constraint-error"} <= errors


# -- one writer, file or stream -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_streamed_chunks_make_the_same_file(fmt: str, exported: list[Row], tmp_path: Path):
    dataset = build_dataset(CODE)
    streamed = b"".join(iter_export(fmt, dataset))
    written = io.BytesIO()
    write_export(fmt, dataset, written)
    if fmt == "xlsx":  # the workbook records when it was made: compare the cells
        sheets = [openpyxl.load_workbook(io.BytesIO(data))["data"] for data in (streamed, written.getvalue())]
        assert [[c.value for c in r] for r in sheets[0].iter_rows()] == [
            [c.value for c in r] for r in sheets[1].iter_rows()
        ]
    else:
        assert streamed == written.getvalue()


def test_every_format_is_registered():
    assert set(FORMATS) == {"csv", "jsonl", "xlsx", "sav", "dta", "datapackage"}


def test_the_service_refuses_options_of_another_format_and_unknown_formats(exported: list[Row]):
    with pytest.raises(ExportOptionsInvalidError) as caught:
        export_responses(CODE, "xlsx", io.BytesIO(), bom=True)
    assert set(caught.value.errors or {}) == {"bom"}
    with pytest.raises(ExportOptionsInvalidError) as caught:
        export_responses(CODE, "pdf", io.BytesIO())
    assert "format" in (caught.value.errors or {})
    summary = export_responses(CODE, "jsonl", io.BytesIO())
    assert (summary.rows_written, summary.responses, summary.columns) == (12, 12, len(NAMES))
