"""What every writer shares: how a cell becomes text, labels instead of codes, and counting rows.

A writer is a function ``write_<format>(dataset, out, **options) -> int`` that writes the whole file
to the binary file object ``out`` and returns the number of data rows written. ``out`` is left open
(a CLI passes a file; an HTTP download uses :func:`survey.exports.writers.iter_export`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Iterator
from typing import Any, BinaryIO

from survey.exports.cells import neutralise
from survey.exports.dataset import Column, Dataset

CHUNK_SIZE = 64 * 1024


def text_of(value: Any) -> str:
    """A cell as text: empty for missing, ISO 8601 for dates, the shortest exact form for numbers."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def safe_text(value: str, enabled: bool) -> str:
    """Formula-neutralised ``value`` when ``enabled`` (spreadsheet formats), else as it is."""
    return neutralise(value) if enabled else value


def label_presenter(dataset: Dataset) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function turning a row of codes into a row of labels in the dataset's language.

    Category values (option codes, 0/1 flags, non-substantive codes of ratings, language and channel
    codes) become their labels; numbers, dates and free text stay as they are.
    """
    language = dataset.language
    tables: list[dict[Any, str] | None] = []
    for column in dataset.columns:
        if column.categorical or column.kind == "rating":
            tables.append({c.value: c.label(language) for c in column.categories if not c.anchor})
        else:
            tables.append(None)

    def present(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            value if table is None or value is None or isinstance(value, float) else table.get(value, value)
            for value, table in zip(row, tables, strict=True)
        )

    return present


def header(dataset: Dataset, labels: bool) -> list[str]:
    """Column names, or (``labels``) column labels in the dataset's language."""
    return [column.label(dataset.language) if labels else column.name for column in dataset.columns]


def is_numeric_cell(column: Column, value: Any) -> bool:
    """True for a number in a numeric column (a rating's non-substantive code is text)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and column.type in ("integer", "number")


def write_chunks(chunks: Generator[bytes, None, int], out: BinaryIO) -> int:
    """Write every chunk of a streaming writer to ``out``; return the generator's row count."""
    while True:
        try:
            out.write(next(chunks))
        except StopIteration as stop:
            return stop.value


def copy_in_chunks(source: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    while chunk := source.read(chunk_size):
        yield chunk
