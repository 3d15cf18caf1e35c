"""Writers: one module per format, each ``write_<format>(dataset, out, **options) -> rows``.

The same writer serves a CLI writing a file and an HTTP download: :func:`write_export` writes to any
binary file object, and :func:`iter_export` yields the file as byte chunks for a streamed response
(``Response(stream_with_context(iter_export(...)))``; the database session must stay open while it
runs). CSV and JSON lines are produced as the rows stream; XLSX, SPSS, Stata and the zipped data
package need their whole file before the first byte can go out, so they are written to a temporary
file first. Memory stays flat for XLSX, SPSS .sav (spooled in chunks, :mod:`.sav`) and the package;
Stata .dta still holds every row in a DataFrame (see ``statistical`` for its bound).

==========  =====================================  ========================================
format      media type                             module
==========  =====================================  ========================================
csv         text/csv; charset=utf-8                :mod:`.delimited`
jsonl       application/jsonl                      :mod:`.jsonlines`
xlsx        application/vnd.openxmlformats-…sheet  :mod:`.spreadsheet`
sav         application/x-spss-sav                 :mod:`.statistical`, :mod:`.sav`
dta         application/x-stata-dta                :mod:`.statistical`
datapackage application/zip                        :mod:`.datapackage`
==========  =====================================  ========================================
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from survey.errors import ExportOptionsInvalidError
from survey.exports.dataset import Dataset
from survey.exports.writers.base import copy_in_chunks
from survey.exports.writers.datapackage import write_datapackage
from survey.exports.writers.delimited import iter_csv, write_csv
from survey.exports.writers.jsonlines import iter_jsonl, write_jsonl
from survey.exports.writers.spreadsheet import write_xlsx
from survey.exports.writers.statistical import write_dta, write_sav


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    media_type: str
    write: Callable[..., int]
    stream: Callable[..., Any] | None = None  # a generator of chunks that returns the row count


FORMATS: dict[str, Format] = {
    "csv": Format("csv", "csv", "text/csv; charset=utf-8", write_csv, iter_csv),
    "jsonl": Format("jsonl", "jsonl", "application/jsonl; charset=utf-8", write_jsonl, iter_jsonl),
    "xlsx": Format("xlsx", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", write_xlsx),
    "sav": Format("sav", "sav", "application/x-spss-sav", write_sav),
    "dta": Format("dta", "dta", "application/x-stata-dta", write_dta),
    "datapackage": Format("datapackage", "zip", "application/zip", write_datapackage),
}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportOptionsInvalidError(
            "Unknown export format.", {"format": [f"Must be one of: {', '.join(FORMATS)}."]}
        ) from None


def write_export(format_name: str, dataset: Dataset, out: BinaryIO, **options: Any) -> int:
    """Write ``dataset`` in ``format_name`` to ``out``; return the number of rows written."""
    return get_format(format_name).write(dataset, out, **options)


def iter_export(format_name: str, dataset: Dataset, **options: Any) -> Iterator[bytes]:
    """``dataset`` in ``format_name`` as byte chunks, for a streamed HTTP response."""
    fmt = get_format(format_name)
    if fmt.stream is not None:
        yield from fmt.stream(dataset, **options)
        return
    with tempfile.TemporaryFile() as spool:
        fmt.write(dataset, spool, **options)
        spool.seek(0)
        yield from copy_in_chunks(spool)


__all__ = ["FORMATS", "Format", "get_format", "iter_export", "write_export"]
