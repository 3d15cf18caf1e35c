"""CSV: UTF-8, every field quoted, formula-safe text cells, optional BOM for Excel.

Every field is quoted (``QUOTE_ALL``), which also keeps ``;``-delimiter locales (Albanian and
Serbian Excel) from splitting cells. Text cells that a spreadsheet could take for a formula get a
leading apostrophe (:mod:`survey.exports.cells`); numbers are written as numbers, unprefixed, so
``-5`` in a numeric column stays ``-5``. Lines end with CRLF (RFC 4180); a text answer's own line
breaks stay inside its quoted field. ``bom=True`` starts the file with a UTF-8 byte order mark, which
Excel needs to read UTF-8 (Albanian ë/ç, Serbian Cyrillic, emoji) correctly.

The file is produced in chunks of about 64 KiB as rows stream from the database
(:func:`iter_csv`), so memory does not grow with the number of responses.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterable
from typing import Any, BinaryIO

from survey.exports.dataset import Dataset
from survey.exports.writers.base import CHUNK_SIZE, header, label_presenter, safe_text, text_of, write_chunks

BOM = "\ufeff".encode()


def iter_delimited(
    names: list[str],
    rows: Iterable[tuple[Any, ...]],
    neutralise: bool = True,
    bom: bool = False,
) -> Generator[bytes, None, int]:
    """CSV bytes of a header and rows; returns the number of rows.

    Only strings are neutralised: numbers (ints and floats) are written as numbers, so a numeric
    column is never prefixed, while any text, a rating's "cant_say" included, is checked.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    if bom:
        yield BOM
    writer.writerow([safe_text(name, neutralise) for name in names])
    count = 0
    for row in rows:
        writer.writerow([safe_text(value, neutralise) if isinstance(value, str) else text_of(value) for value in row])
        count += 1
        if buffer.tell() >= CHUNK_SIZE:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")
    return count


def iter_csv(
    dataset: Dataset, bom: bool = False, neutralise: bool = True, labels: bool = False
) -> Generator[bytes, None, int]:
    """The dataset as CSV, in chunks; returns the number of rows.

    ``labels=True`` writes column labels as the header and category labels instead of codes, in
    the dataset's language.
    """
    rows: Iterable[tuple[Any, ...]] = dataset.rows()
    if labels:
        present = label_presenter(dataset)
        rows = map(present, rows)
    return (yield from iter_delimited(header(dataset, labels), rows, neutralise=neutralise, bom=bom))


def write_csv(dataset: Dataset, out: BinaryIO, bom: bool = False, neutralise: bool = True, labels: bool = False) -> int:
    """Write the dataset as CSV to ``out``; return the number of rows."""
    return write_chunks(iter_csv(dataset, bom=bom, neutralise=neutralise, labels=labels), out)
