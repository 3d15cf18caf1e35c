"""``flask survey export``: writes the file only when the export succeeds."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from flask import Flask

from survey.exports.cli import export_command
from tests.exports.conftest import CODE, NAMES, export_definition, make_questionnaire, sample_answers, submit


def test_export_writes_the_file_and_reports_the_counts(exported: list[dict[str, Any]], app: Flask, tmp_path: Path):
    target = tmp_path / "responses.csv"
    result = app.test_cli_runner().invoke(
        export_command, [CODE, "--format", "csv", "--output", str(target), "--bom", "--month"]
    )
    assert result.exit_code == 0, result.output
    assert f"{len(exported)} of {len(exported)} responses" in result.output
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"), newline="")))
    assert rows[0][:4] == ["version", "language", "channel", "month"]
    assert len(rows) == len(exported) + 1
    assert [p.name for p in tmp_path.iterdir()] == ["responses.csv"]  # no temporary file left behind


def test_a_refused_partner_export_leaves_no_file(app: Flask, tmp_path: Path):
    make_questionnaire(export_definition())
    for i in range(3):
        submit(CODE, sample_answers(i))
    target = tmp_path / "partner.sav"
    result = app.test_cli_runner().invoke(
        export_command, [CODE, "--format", "sav", "--output", str(target), "--partner"]
    )
    assert result.exit_code != 0
    assert "refused" in result.output and "fewer than k" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_partner_export_prints_what_it_generalised(app: Flask, tmp_path: Path):
    make_questionnaire(export_definition())
    for i in range(12):
        submit(CODE, {**sample_answers(i), "community": "x" if i else "y", "age": "a1"})
    target = tmp_path / "partner.jsonl"
    result = app.test_cli_runner().invoke(
        export_command, [CODE, "--format", "jsonl", "--output", str(target), "--partner", "--k", "5"]
    )
    assert result.exit_code == 0, result.output
    # The lone "y" can only hide by merging with "x", which leaves one category: community is dropped.
    assert "community: merged 'y', 'x' into 'other' (12 responses)" in result.output
    assert "community: a single category remains; the question is dropped" in result.output
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 12
    for row in rows:
        assert "community" not in row and "comment" not in row and "story" not in row and "day" not in row
        assert row["age"] == "a1" and len(row["month"]) == 7
    assert set(rows[0]) == set(NAMES) - {"community", "comment", "story", "day"} | {"month"}
