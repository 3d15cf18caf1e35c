"""``flask survey export``: writes the file only when the export succeeds; progress on standard error."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from survey.exports import services
from survey.exports.cli import ProgressLine, export_command
from survey.exports.services import export_responses
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
    # One class of twelve: the matrix row r2 was only ever answered "dont_know", so it is withheld.
    r2_answers = sum(1 for i in range(12) if "r2" in (sample_answers(i).get("grid") or {}))
    assert "l-diversity (l = 2): withheld 1 item(s) in groups with fewer than 2 different answers" in result.output
    assert f"answers withheld: grid__r2 ({r2_answers})" in result.output
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 12
    for row in rows:
        assert "community" not in row and "comment" not in row and "story" not in row and "day" not in row
        assert row["age"] == "a1" and len(row["month"]) == 7
        assert row["grid__r2"] is None
    assert set(rows[0]) == set(NAMES) - {"community", "comment", "story", "day"} | {"month"}


# -- progress ------------------------------------------------------------------------------------------


def export_to(app: Flask, target: Path, *extra: str) -> Any:
    result = app.test_cli_runner().invoke(export_command, [CODE, "--format", "csv", "--output", str(target), *extra])
    assert result.exit_code == 0, result.output
    return result


def test_progress_goes_to_stderr_and_leaves_the_file_alone(
    exported: list[dict[str, Any]], app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(services, "PROGRESS_EVERY", 5)
    shown = export_to(app, tmp_path / "shown.csv")
    # Not a terminal: a line at the start and the last figures (the others fall within ten seconds).
    assert shown.stderr.splitlines() == ["Exporting: 0 of 12 rows (0%)", "Exporting: 12 of 12 rows (100%)"]
    assert "Exporting" not in shown.stdout and "12 of 12 responses" in shown.stdout

    hidden = export_to(app, tmp_path / "hidden.csv", "--no-progress")
    assert hidden.stderr == "" and "12 of 12 responses" in hidden.stdout
    assert (tmp_path / "shown.csv").read_bytes() == (tmp_path / "hidden.csv").read_bytes()
    rows = list(csv.reader(io.StringIO((tmp_path / "shown.csv").read_text(encoding="utf-8"), newline="")))
    assert len(rows) == len(exported) + 1 and "Exporting" not in str(rows)


def test_standard_output_gets_the_data_and_no_progress(exported: list[dict[str, Any]], app: Flask, tmp_path: Path):
    export_to(app, tmp_path / "file.csv", "--no-progress")
    result = app.test_cli_runner().invoke(export_command, [CODE, "--format", "csv", "--output", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == (tmp_path / "file.csv").read_bytes()  # nothing else on stdout
    assert "Exporting" not in result.stderr
    assert "12 of 12 responses, 24 columns -> standard output" in result.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "file.csv"]


def test_the_service_reports_rows_as_the_writer_takes_them(
    exported: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(services, "PROGRESS_EVERY", 5)
    calls: list[tuple[int, int]] = []
    summary = export_responses(CODE, "jsonl", io.BytesIO(), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 12), (5, 12), (10, 12), (12, 12)]
    assert summary.rows_written == 12


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_is_throttled():
    ticks = iter(i * 0.1 for i in range(1000))

    def clock() -> float:
        return next(ticks)

    terminal = Terminal()
    meter = ProgressLine(terminal, clock=clock)  # redrawn at most every 0.25 s
    for done in range(0, 1001, 100):  # one call each 0.1 s
        meter(done, 1000)
    meter.close()
    frames = terminal.getvalue().split("\r")[1:]
    assert [frame.removesuffix("\x1b[K").removesuffix("\x1b[K\n") for frame in frames] == [
        "Exporting: 0 of 1,000 rows (0%)",
        "Exporting: 300 of 1,000 rows (30%)",
        "Exporting: 600 of 1,000 rows (60%)",
        "Exporting: 900 of 1,000 rows (90%)",
        "Exporting: 1,000 of 1,000 rows (100%)",
    ]
    assert terminal.getvalue().endswith("\n")

    log = io.StringIO()
    quiet = ProgressLine(log, clock=clock)  # a new line at most every 10 s
    for done in range(0, 1001, 100):
        quiet(done, 1000)
    quiet.close()
    assert log.getvalue().splitlines() == ["Exporting: 0 of 1,000 rows (0%)", "Exporting: 1,000 of 1,000 rows (100%)"]
