"""JSON lines: one JSON object per response, keys in column order, UTF-8, ``\\n`` after each.

Values keep their types: numbers are JSON numbers, codes and text are strings, dates ISO 8601
strings, empty cells ``null``. No formula prefix: this is a format for programs, not spreadsheets.
Streamed in chunks like CSV.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Generator
from typing import Any, BinaryIO

from survey.exports.dataset import Dataset
from survey.exports.writers.base import CHUNK_SIZE, write_chunks


def _default(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def iter_jsonl(dataset: Dataset) -> Generator[bytes, None, int]:
    """The dataset as JSON lines, in chunks; returns the number of rows."""
    names = dataset.names
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_default, separators=(",", ":"))
    buffer = io.StringIO()
    count = 0
    for row in dataset.rows():
        buffer.write(encoder.encode(dict(zip(names, row, strict=True))))
        buffer.write("\n")
        count += 1
        if buffer.tell() >= CHUNK_SIZE:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")
    return count


def write_jsonl(dataset: Dataset, out: BinaryIO) -> int:
    """Write the dataset as JSON lines to ``out``; return the number of rows."""
    return write_chunks(iter_jsonl(dataset), out)
