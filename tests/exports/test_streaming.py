"""Exports stream: memory stays flat in the number of responses, the database cursor is server-side,
and no ORM entities are loaded (research/perf-ceilings.md §7, §9)."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from survey.db import db
from survey.exports.dataset import Category, Column, Dataset, ExportOptions, build_dataset
from survey.exports.writers import delimited, jsonlines, write_export
from survey.questionnaires.services import today
from survey.responses.models import Answer, Response
from tests.exports.conftest import CODE, clone_responses, export_definition, make_questionnaire, sample_answers, submit

OPTIONS = ExportOptions(batch_size=100)


class NullSink(io.RawIOBase):
    """A binary file that forgets what it is given, so only the writer's own memory is measured."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def peak_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        action()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_rows_stream_from_the_database_with_flat_memory(app: Flask):
    make_questionnaire(export_definition())
    submit(CODE, sample_answers(1))
    actions: dict[str, Callable[[], object]] = {
        "rows": lambda: sum(1 for _row in build_dataset(CODE, OPTIONS).rows()),
        "list(rows)": lambda: list(build_dataset(CODE, OPTIONS).rows()),  # the control: it must grow
    }
    clone_responses(CODE, 299)
    actions["rows"]()  # warm caches (compiled SQL, imports) before measuring
    small = {name: peak_bytes(action) for name, action in actions.items()}
    clone_responses(CODE, 1000)
    assert build_dataset(CODE).count() == 1300
    large = {name: peak_bytes(action) for name, action in actions.items()}
    assert large["list(rows)"] - small["list(rows)"] > 500_000, (small, large)  # 1,000 rows held: > 0.5 MB
    assert large["rows"] - small["rows"] < 50_000, (small, large)


def synthetic(rows: int) -> Dataset:
    """A dataset of ``rows`` copies of one varied row: it measures the writers, not the database."""
    languages = ("en", "sq", "sr-Latn", "sr-Cyrl")
    scale = tuple(Category(f"p{i}", {lang: f"point {i} [{lang}]" for lang in languages}, i) for i in range(1, 6))
    columns = (
        Column("version", "meta", "integer", {"en": "Version"}),
        Column("day", "meta", "date", {"en": "Day"}),
        *(Column(f"q{i}", "choice", "string", {"en": f"Q{i}"}, categories=scale) for i in range(20)),
        *(Column(f"m__{i}", "flag", "integer", {"en": f"M{i}"}) for i in range(10)),
        Column("rating", "rating", "integer", {"en": "Rating"}),
        Column("amount", "number", "number", {"en": "Amount"}),
        Column("comment", "text", "string", {"en": "Comment"}),
    )
    row = (1, today(), *(f"p{1 + i % 5}" for i in range(20)), *(i % 2 for i in range(10)), 7, -2.5,
           "Prishtinë, Приштина, Priština 😀\n=1+1")  # fmt: skip
    return Dataset(
        questionnaire="synthetic",
        title={lang: "Synthetic" for lang in languages},
        language="en",
        languages=languages,
        versions=(),
        columns=columns,
        options=OPTIONS,
        privacy={},
        _rows=lambda: (row for _ in range(rows)),
        _count=lambda: rows,
    )


def test_writers_keep_memory_flat_as_rows_grow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Smaller chunks, so that the CSV and JSON buffers reach their (constant) size in the small run too.
    monkeypatch.setattr(delimited, "CHUNK_SIZE", 8192)
    monkeypatch.setattr(jsonlines, "CHUNK_SIZE", 8192)

    def run(fmt: str, rows: int) -> Callable[[], object]:
        def action() -> None:
            if fmt in ("csv", "jsonl"):
                write_export(fmt, synthetic(rows), NullSink())
            else:
                with (tmp_path / f"out.{fmt}").open("wb") as out:
                    write_export(fmt, synthetic(rows), out)

        return action

    formats = ("csv", "jsonl", "xlsx", "datapackage")
    run("xlsx", 10)()  # warm imports
    small = {fmt: peak_bytes(run(fmt, 300)) for fmt in formats}
    large = {fmt: peak_bytes(run(fmt, 1200)) for fmt in formats}
    for fmt in formats:
        assert large[fmt] - small[fmt] < 50_000, (fmt, small, large)

    def hold(rows: int) -> Callable[[], object]:
        return lambda: [list(row) for row in synthetic(rows).rows()]

    assert peak_bytes(hold(1200)) - peak_bytes(hold(300)) > 200_000  # the control: holding rows shows


def test_the_export_query_streams_and_loads_no_orm_entities(exported: list[dict[str, Any]]):
    engine = db.session.get_bind()
    streamed: list[tuple[bool, str]] = []
    loaded: list[object] = []

    def after_execute(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "FILTER (WHERE" in statement or "ORDER BY responses.id" in statement:
            streamed.append((bool(context.execution_options.get("stream_results")), type(cursor).__name__))

    def on_load(target: object, _context: Any) -> None:
        loaded.append(target)

    event.listen(engine, "after_cursor_execute", after_execute)
    event.listen(Response, "load", on_load)
    event.listen(Answer, "load", on_load)
    try:
        for pivot in ("sql", "python"):
            rows = list(build_dataset(CODE, ExportOptions(pivot=pivot)).rows())
            assert len(rows) == len(exported)
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)
        event.remove(Response, "load", on_load)
        event.remove(Answer, "load", on_load)
    assert loaded == []
    assert len(streamed) == 2 and all(stream for stream, _cursor in streamed)
    if engine.dialect.name == "postgresql":
        assert {cursor for _stream, cursor in streamed} == {"ServerCursor"}  # a named, server-side cursor


@pytest.mark.parametrize("pivot", ["sql", "python"])
def test_a_wide_questionnaire_falls_back_to_or_uses_the_python_pivot(app: Flask, pivot: str, monkeypatch: Any):
    import survey.exports.dataset as dataset_module

    make_questionnaire(export_definition())
    for i in range(4):
        submit(CODE, sample_answers(i))
    monkeypatch.setattr(dataset_module, "SQL_PIVOT_MAX_VALUES", 10 if pivot == "python" else 10_000)
    automatic = build_dataset(CODE)
    forced = build_dataset(CODE, ExportOptions(pivot=pivot))
    assert list(automatic.rows()) == list(forced.rows())
