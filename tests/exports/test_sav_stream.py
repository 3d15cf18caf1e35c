"""The streaming SPSS writer, read back by an independent reader (ReadStat through pyreadstat): long
Unicode text, long names, labels, missing values, measures, dates, numbers and compression, with
memory that stays flat as the rows grow."""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyreadstat
import pytest

from survey.exports.dataset import Category, Column, Dataset, ExportOptions, build_dataset
from survey.exports.writers import sav
from survey.exports.writers.statistical import build_frame, write_sav
from tests.exports.conftest import CODE

CYRILLIC = "Приштина, Косово; Ђорђе Љубичић Њ Џ ђ ћ ж. "
ALBANIAN = "Prishtinë, Mitrovicë, Gjakovë — çka, Ç, Ë, xh, zh. "
EMOJI = "😀👩🏽‍🌾🇽🇰 "
CREATED = dt.datetime(2024, 1, 1, 12, 0, 0)


def synthetic(columns: list[Column], rows: list[tuple[Any, ...]], title: str = "Synthetic") -> Dataset:
    return Dataset(
        questionnaire="synthetic",
        title={"en": title},
        language="en",
        languages=("en",),
        versions=(),
        columns=tuple(columns),
        options=ExportOptions(),
        privacy={"free_text": "scrub"},
        _rows=lambda: iter(rows),
        _count=lambda: len(rows),
    )


def export(dataset: Dataset, path: Path) -> int:
    with path.open("wb") as out:
        return write_sav(dataset, out)


def header(path: Path) -> dict[str, int]:
    """The file header's fields that say how the cases are stored."""
    layout, units, compression, _weight, cases = struct.unpack_from("<5i", path.read_bytes(), 64)
    return {"layout": layout, "units": units, "compression": compression, "cases": cases}


def text_column(name: str) -> Column:
    return Column(name, "text", "string", {"en": name.title()})


# -- strings ---------------------------------------------------------------------------------------


def test_long_unicode_text_round_trips_exactly(tmp_path: Path):
    texts = [
        (CYRILLIC * 40)[:999] + ".",  # 1,000 characters, 1,721 bytes: seven segments
        (ALBANIAN * 10)[:299] + ".",
        EMOJI * 40 + "!",
        "Ж" * 127 + "x",  # exactly 255 bytes: the longest plain string
        "Ж" * 128,  # 256 bytes: the shortest very long string
        "ж" * 126,  # 252 bytes
        "x" * 504 + "ё",  # 506 bytes: three segments
        "Line one\nЂорђе Љубичић 😀\nline three",
        "  leading spaces and   inner   spaces",
        "",
        None,
    ]
    rows = [(text, text[:20] if text else None) for text in texts]
    path = tmp_path / "texts.sav"
    assert export(synthetic([text_column("story"), text_column("short")], rows), path) == len(texts)

    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert frame["story"].tolist() == [text or "" for text in texts]
    assert [value.encode("utf-8") for value in frame["story"]] == [(text or "").encode("utf-8") for text in texts]
    assert frame["short"].tolist() == [text[:20] if text else "" for text in texts]
    longest = max(len((text or "").encode("utf-8")) for text in texts)
    assert meta.variable_storage_width["story"] == longest == 1721
    assert meta.original_variable_types["story"] == f"A{longest}"
    assert meta.readstat_variable_types == {"story": "string", "short": "string"}
    assert len(frame["story"][0]) == 1000


def test_trailing_spaces_are_padding_to_the_reader(tmp_path: Path):
    """SPSS pads strings with spaces, so a reader cannot tell trailing spaces from padding."""
    path = tmp_path / "spaces.sav"
    export(synthetic([text_column("comment")], [("trailing  ",), ("  leading",), ("ж" * 200 + "   ",)]), path)
    frame, _meta = pyreadstat.read_sav(str(path))
    assert frame["comment"].tolist() == ["trailing", "  leading", "ж" * 200]


@pytest.mark.parametrize("width", [1, 7, 8, 9, 252, 255, 256, 257, 504, 505, 506, 1000, 32767])
def test_strings_of_every_segment_boundary(width: int, tmp_path: Path):
    texts = ["é" * (width // 2) + "x" * (width % 2), "y", ""]  # the first exactly `width` bytes
    assert len(texts[0].encode("utf-8")) == width
    path = tmp_path / "boundary.sav"
    with path.open("wb") as out:
        sav.write_system_file(out, [sav.Variable("t", "string"), sav.Variable("n")], [(t, 1.0) for t in texts])
    frame, meta = pyreadstat.read_sav(str(path))
    assert frame["t"].tolist() == texts and frame["n"].tolist() == [1.0] * 3
    assert meta.variable_storage_width["t"] == width


def test_text_is_cut_only_past_the_format_limit_and_at_a_character(tmp_path: Path):
    rows = [("ж" * 20000,), ("a" + "ж" * 16383,), ("ok",)]  # 40,000 bytes; exactly 32,767 bytes
    path = tmp_path / "cut.sav"
    export(synthetic([text_column("story")], rows), path)
    frame, meta = pyreadstat.read_sav(str(path))
    assert frame["story"].tolist() == ["ж" * 16383, "a" + "ж" * 16383, "ok"]  # 32,766 bytes: no half letter
    assert meta.variable_storage_width["story"] == sav.MAX_STRING_BYTES


def test_empty_text_is_an_empty_string_one_byte_wide(tmp_path: Path):
    path = tmp_path / "empty.sav"
    export(
        synthetic([text_column("comment"), Column("n", "number", "number", {"en": "N"})], [("", 1), (None, 2)]), path
    )
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert frame["comment"].tolist() == ["", ""]
    assert meta.variable_storage_width["comment"] == 1


# -- the dictionary --------------------------------------------------------------------------------


def test_many_variables_with_long_names_keep_their_names(tmp_path: Path):
    stem = "agreement_on_freedom_of_movement"  # every name shares its first eight bytes
    names = [f"{stem}_{i:03d}" for i in range(300)]
    names += ["x" * 64, "agreemen", "AGREEME1", "agreemen_2", "a" * 8 + "_story"]
    columns = [Column(name, "number", "integer", {"en": f"Label {i}"}) for i, name in enumerate(names[:-1])]
    columns.append(text_column(names[-1]))
    rows = [(*range(i, i + len(names) - 1), "Ђ" * (150 + i)) for i in range(3)]  # a very long string last
    path = tmp_path / "names.sav"
    export(synthetic(columns, rows), path)
    frame, meta = pyreadstat.read_sav(str(path))
    assert list(frame.columns) == names
    assert meta.column_labels[:-1] == [f"Label {i}" for i in range(len(names) - 1)]
    assert frame[names[0]].tolist() == [0.0, 1.0, 2.0] and frame["x" * 64].tolist() == [300.0, 301.0, 302.0]
    assert frame[names[-1]].tolist() == ["Ђ" * 150, "Ђ" * 151, "Ђ" * 152]


def test_value_labels_missing_ranges_and_measures(tmp_path: Path):
    agree = (
        Category("disagree", {"en": "Не слажем се"}, 1),
        Category("agree", {"en": "Pajtohem plotësisht 👍"}, 2),
        Category("dont_know", {"en": "Nuk e di"}, -1, missing=True),
        Category("refused", {"en": "Refuzoi " + "ж" * 80}, -2, missing=True),  # over 120 bytes: cut
    )
    size = (Category("small", {"en": "Small"}, 1), Category("large", {"en": "Large"}, 2))
    columns = [
        Column("support", "choice", "string", {"en": "Support?"}, categories=agree),
        Column("size", "choice", "string", {"en": "Size"}, categories=size, ordered=True),
        Column("balance", "number", "number", {"en": "Balance"}),
        text_column("comment"),
    ]
    rows = [("agree", "small", 1.5, "a"), ("dont_know", "large", None, "b"), ("refused", None, -2, "c"), (None,) * 4]
    path = tmp_path / "labels.sav"
    export(synthetic(columns, rows), path)
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert frame["support"].tolist()[:3] == [2.0, -1.0, -2.0] and math.isnan(frame["support"][3])
    labels = meta.variable_value_labels["support"]
    assert labels[1.0] == "Не слажем се" and labels[2.0] == "Pajtohem plotësisht 👍" and labels[-1.0] == "Nuk e di"
    assert labels[-2.0] == "Refuzoi " + "ж" * 56 and len(labels[-2.0].encode("utf-8")) == 120
    assert meta.variable_value_labels["size"] == {1.0: "Small", 2.0: "Large"}
    assert meta.missing_ranges == {"support": [{"lo": -2.0, "hi": -1.0}]}
    assert meta.variable_measure == {"support": "nominal", "size": "ordinal", "balance": "scale", "comment": "nominal"}
    assert meta.original_variable_types["support"] == "F8.0" and meta.original_variable_types["balance"] == "F8.2"
    plain, _meta = pyreadstat.read_sav(str(path))  # declared missing codes read as missing
    assert plain["support"].isna().tolist() == [False, True, True, True]


def test_file_label_and_documents(tmp_path: Path):
    path = tmp_path / "about.sav"
    title = "Anketa për dialogun Kosovë–Serbi / Анкета о дијалогу " * 3
    export(synthetic([text_column("comment")], [("a",)], title=title), path)
    _frame, meta = pyreadstat.read_sav(str(path))
    assert meta.file_label
    assert title.encode("utf-8").startswith(meta.file_label.encode("utf-8"))
    assert 60 < len(meta.file_label.encode("utf-8")) <= 64
    assert meta.notes == ["synthetic, versions", "privacy free_text: scrub"]
    assert meta.file_encoding == "UTF-8"


# -- numbers and dates ---------------------------------------------------------------------------


def test_dates_including_none(tmp_path: Path):
    days = [dt.date(2024, 5, 17), None, dt.date(1582, 10, 14), dt.date(2024, 2, 29), dt.date(1999, 12, 31)]
    path = tmp_path / "days.sav"
    export(synthetic([Column("day", "meta", "date", {"en": "Day"})], [(day,) for day in days]), path)
    frame, meta = pyreadstat.read_sav(str(path))
    read = frame["day"].tolist()
    assert read[1] != read[1]  # NaN: no date
    assert [read[0], *read[2:]] == [days[0], *days[2:]]
    assert meta.original_variable_types["day"] == "DATE11"


NUMBERS = [
    0.0, 1.0, -1.0, -99.0, 151.0, -100.0, 152.0, 0.5, -99.5, 150.25, -0.0, 1e15, -1e15, 123456789.125,
    1e300, -1e-300, 5e-324, math.inf, -math.inf, math.nan, 42.0, -7.0, 100.0, 2.0**53,
]  # fmt: skip


def bits(value: float | None) -> bytes | None:
    """A number's exact bits (its sign included); None for NaN (system-missing)."""
    return None if value is None or math.isnan(value) else struct.pack("<d", value)


@pytest.mark.parametrize("compress", [True, False])
def test_numbers_round_trip_bit_for_bit(compress: bool, tmp_path: Path):
    variables = [sav.Variable("n", measure="scale"), sav.Variable("m"), sav.Variable("t", "string")]
    rows: list[tuple[Any, ...]] = [(value, NUMBERS[-1 - i], "x" * i) for i, value in enumerate(NUMBERS)]
    rows.append((None, 3, None))  # None is system-missing; an int is a number
    path = tmp_path / "numbers.sav"
    with path.open("wb") as out:
        assert sav.write_system_file(out, variables, rows, compress=compress) == len(rows)
    assert header(path) == {"layout": 2, "units": 1 + 1 + 3, "compression": int(compress), "cases": len(rows)}
    frame, _meta = pyreadstat.read_sav(str(path))
    pairs: list[tuple[list[Any], list[Any]]] = [
        (frame["n"].tolist(), [*NUMBERS, None]),
        (frame["m"].tolist(), [*NUMBERS[::-1], 3]),
    ]
    for read, written in pairs:
        assert [bits(value) for value in read] == [bits(value) for value in written]
    assert frame["t"].tolist() == [row[2] or "" for row in rows]


def test_whole_numbers_in_the_bytecode_range_take_one_byte():
    """Compressed data: a whole number in −99…151 is one instruction byte, any other number that
    byte and its 8 bytes; 8 bytes of a string that are all spaces are one byte."""
    rows = 8000

    def size(cells: Callable[[int], tuple[Any, ...]], variables: list[sav.Variable], compress: bool = True) -> int:
        out = io.BytesIO()
        sav.write_system_file(out, variables, (cells(i) for i in range(rows)), compress=compress, created=CREATED)
        return len(out.getvalue())

    number = [sav.Variable("n")]
    whole = size(lambda i: ((-99.0, 0.0, 1.0, 5.0, 151.0)[i % 5],), number)
    fractional = size(lambda i: ((0.5, 1.25, -98.5)[i % 3],), number)
    outside = size(lambda i: ((-100.0, 152.0, 1e6)[i % 3],), number)
    assert fractional - whole == outside - whole == rows * 8
    assert size(lambda i: (1.0,), number, compress=False) - whole == rows * 8 - rows

    text = [sav.Variable("n"), sav.Variable("s", "string")]
    letters = size(lambda i: (1.0, "x" * 16), text)
    spaces = size(lambda i: (1.0, "" if i else "x" * 16), text)  # the same width: 16
    assert letters - spaces == (rows - 1) * 16


def test_zero_rows(tmp_path: Path):
    columns = [
        Column("day", "meta", "date", {"en": "Day"}),
        Column("size", "choice", "string", {"en": "Size"}, categories=(Category("s", {"en": "Small"}, 1),)),
        text_column("comment"),
    ]
    path = tmp_path / "none.sav"
    assert export(synthetic(columns, []), path) == 0
    frame, meta = pyreadstat.read_sav(str(path))
    assert len(frame) == 0 and list(frame.columns) == ["day", "size", "comment"]
    assert meta.variable_value_labels == {"size": {1.0: "Small"}} and meta.number_rows == 0
    assert header(path)["cases"] == 0


# -- behaviour -------------------------------------------------------------------------------------


def test_the_streamed_file_reads_back_like_pyreadstats_own(exported: list[dict[str, Any]], tmp_path: Path):
    """The same dataset through pyreadstat's writer (from the whole frame, as before) and through the
    streaming writer: every value and every piece of metadata the reader gives is the same."""
    dataset = build_dataset(CODE)
    frame, meta = build_frame(dataset, "sav")
    reference = tmp_path / "pyreadstat.sav"
    pyreadstat.write_sav(
        frame,
        str(reference),
        column_labels=meta["column_labels"],
        variable_value_labels=meta["value_labels"],
        missing_ranges=meta["missing"],
        variable_measure=meta["measures"],
    )
    streamed = tmp_path / "streamed.sav"
    assert export(dataset, streamed) == len(exported)
    expected, expected_meta = pyreadstat.read_sav(str(reference), user_missing=True)
    read, read_meta = pyreadstat.read_sav(str(streamed), user_missing=True)
    assert read.equals(expected)
    for field in ("column_names", "column_labels", "variable_value_labels", "missing_ranges", "variable_measure"):
        assert getattr(read_meta, field) == getattr(expected_meta, field), field
    assert header(streamed)["compression"] == 1


def test_nothing_is_written_when_the_rows_fail():
    def rows() -> Iterator[tuple[float]]:
        yield (1.0,)
        raise RuntimeError("the database went away")

    out = io.BytesIO()
    with pytest.raises(RuntimeError):
        sav.write_system_file(out, [sav.Variable("n")], rows())
    assert out.getvalue() == b""


def test_cells_the_format_cannot_hold_are_refused():
    with pytest.raises(ValueError, match="over 32767 bytes"):
        sav.write_system_file(io.BytesIO(), [sav.Variable("t", "string")], [("x" * 32768,)])
    with pytest.raises(ValueError, match="2 cells, not 1"):
        sav.write_system_file(io.BytesIO(), [sav.Variable("n")], [(1.0, 2.0)])
    with pytest.raises(TypeError):
        sav.write_system_file(io.BytesIO(), [sav.Variable("n")], [("1",)])
    with pytest.raises(ValueError, match="used twice"):
        sav.write_system_file(io.BytesIO(), [sav.Variable("a"), sav.Variable("A")], [])


# -- memory ------------------------------------------------------------------------------------------


def synthetic_cases(count: int) -> Iterator[tuple[Any, ...]]:
    """Survey-like cases made on the fly: 16 small codes, a fraction, a date and two texts."""
    for i in range(count):
        codes = tuple(float((i * 7 + j) % 6 - 1) for j in range(16))
        yield (*codes, i / 7, sav.spss_date(dt.date(2024, 1, 1)), CYRILLIC[: i % 40], ALBANIAN * (i % 3))


MEMORY_VARIABLES = [
    *(sav.Variable(f"q{j}", value_labels={1.0: "Yes", 2.0: "No"}, missing=[-1.0]) for j in range(16)),
    sav.Variable("ratio", measure="scale"),
    sav.Variable("day", "date"),
    sav.Variable("comment", "string"),
    sav.Variable("story", "string"),
]


def traced_peak(count: int, chunk_bytes: int) -> int:
    """The most memory Python and numpy held while writing ``count`` cases (to a file that keeps
    nothing in this process)."""
    with open(os.devnull, "wb") as out:
        tracemalloc.start()
        try:
            written = sav.write_system_file(
                out, MEMORY_VARIABLES, synthetic_cases(count), chunk_bytes=chunk_bytes, created=CREATED
            )
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert written == count
    return peak


def test_memory_stays_flat_as_the_rows_grow_tenfold():
    chunk_bytes = 64 * 1024  # small chunks, so that both runs go through many of them
    traced_peak(2_000, chunk_bytes)  # first-use allocations (imports, caches) are not the rows' memory
    small = traced_peak(2_000, chunk_bytes)
    large = traced_peak(20_000, chunk_bytes)
    assert large < 1.5 * small, (small, large)
    assert large < 12 * chunk_bytes, large  # a few chunks' worth, not the rows
