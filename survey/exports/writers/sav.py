"""SPSS system files (.sav) written in one pass over the cases, with memory that does not grow with them.

Format code only: records, encoding and compression; nothing here knows about surveys. The layout is
the documented SPSS system-file format (the PSPP developers' guide, "System File Format"), little
endian, UTF-8:

- file header record (``$FL2``), one variable record (type 2) per variable, with continuation
  records (type -1) for each further 8 bytes of a string; value labels (type 3 + type 4); documents
  (type 6); machine integer (7/3, character code 65001) and floating-point information (7/4);
  variable display parameters (7/11); long variable names (7/13); very long strings (7/14);
  the 64-bit case count (7/16); the character encoding (7/20, ``UTF-8``); dictionary end (999);
- then the cases, plain or bytecode-compressed (compression 1): blocks of eight one-byte
  instructions, each block followed by the eight-byte values it announces. 1–251 is the whole
  number ``code - 100`` (so −99…151 take one byte), 253 an uncompressed value that follows, 254 eight
  spaces of a string, 255 system-missing, 0 padding of the last block.

Strings of more than 255 bytes (up to 32,767) are "very long": ``ceil(width / 252)`` segments, each a
variable of its own, the first ones 255 bytes wide (255 bytes of text in 32 units of 8), the last
``width - 252 × (segments - 1)`` wide, tied together by record 7/14.

**Streaming.** The header needs the number of cases and every string's width before the first case.
:func:`write_system_file` reads the cases once and spools them to a private temporary file in chunks
of at most ``chunk_bytes`` (numbers already reduced to their compression instruction, plus the
values that do not compress; strings as UTF-8 with their lengths) while it tracks each string's
longest value; then it writes the dictionary and turns the spool into case data chunk by chunk.
Memory is a small multiple of the chunk size (under 30 MB with the default 4 MiB) whatever the number
of cases; the temporary file is about as large as the compressed data.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, BinaryIO

import numpy as np

MAX_STRING_BYTES = 32767
MAX_NAME_BYTES = 64
MAX_VARIABLE_LABEL_BYTES = 256
MAX_VALUE_LABEL_BYTES = 255  # what the record can hold; SPSS itself shows 120
FILE_LABEL_BYTES = 64
DOCUMENT_LINE_BYTES = 80
CHUNK_BYTES = 4 << 20

SYSMIS = -sys.float_info.max
HIGHEST = sys.float_info.max
LOWEST = math.nextafter(-sys.float_info.max, 0.0)
BIAS = 100

_EPOCH_ORDINAL = dt.date(1582, 10, 14).toordinal()  # SPSS dates count seconds from the Gregorian start
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RESERVED = {"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"}
_MEASURES = {"nominal": 1, "ordinal": 2, "scale": 3}
_FORMAT_A, _FORMAT_F, _FORMAT_DATE = 1, 5, 20
_COMPRESSED, _SPACES, _MISSING, _PADDING = 253, 254, 255, 0
_VARIABLE = struct.Struct("<iiiiii8s")
_CHUNK = struct.Struct("<II")
_PRODUCT = b"@(#) SPSS DATA FILE - citizen-survey streaming writer"

Missing = float | tuple[float, float]


@dataclass(frozen=True)
class Variable:
    """One variable of the file.

    ``type``: ``number`` (cells are floats; NaN or None is system-missing), ``date`` (a number in
    DATE11 format: cells are :func:`spss_date` seconds) or ``string`` (cells are ``str`` or UTF-8
    ``bytes``, at most :data:`MAX_STRING_BYTES`; None is an empty string; the width is the longest
    value). ``missing``: user-missing values of a number, up to three values, or one ``(lo, hi)``
    range and at most one value. ``value_labels``: labels of numbers.
    """

    name: str
    type: str = "number"  # number, date or string
    label: str = ""
    decimals: int = 2
    measure: str = "nominal"  # nominal, ordinal or scale
    value_labels: Mapping[float, str] = field(default_factory=dict)
    missing: Sequence[Missing] = ()


def spss_date(day: dt.date) -> float:
    """A date as SPSS holds it: seconds since 1582-10-14 (a ``datetime`` counts by its day)."""
    return float((day.toordinal() - _EPOCH_ORDINAL) * 86400)


def segment_widths(width: int) -> list[int]:
    """The widths of the variables that hold a string of ``width`` bytes (one unless it is very long)."""
    if width <= 255:
        return [width]
    count = (width + 251) // 252
    return [255] * (count - 1) + [width - 252 * (count - 1)]


def write_system_file(
    out: BinaryIO,
    variables: Sequence[Variable],
    cases: Iterable[Sequence[Any]],
    *,
    file_label: str = "",
    documents: Sequence[str] = (),
    compress: bool = True,
    created: dt.datetime | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> int:
    """Write an SPSS system file of ``cases`` (one sequence of cells per case, aligned with
    ``variables``) to ``out``; return the number of cases. Nothing is written to ``out`` until every
    case has been read."""
    _check(variables, file_label, documents)
    with tempfile.TemporaryFile(prefix="sav-spool-") as spool:
        spooler = _Spooler(variables, spool, chunk_bytes)
        count = spooler.read(cases)
        layout = _Layout(variables, spooler.widths)
        out.write(_dictionary(layout, count, file_label, documents, compress, created or dt.datetime.now()))
        spool.seek(0)
        _write_cases(spool, spooler, layout, out, compress, chunk_bytes)
    return count


# -- checks ---------------------------------------------------------------------------------------


def _check(variables: Sequence[Variable], file_label: str, documents: Sequence[str]) -> None:
    if not variables:
        raise ValueError("an SPSS file needs at least one variable")
    seen: set[str] = set()
    for variable in variables:
        name = variable.name.encode("utf-8")
        if not name or len(name) > MAX_NAME_BYTES or variable.name.lower() in seen:
            raise ValueError(f"variable name {variable.name!r} is empty, too long or used twice")
        seen.add(variable.name.lower())
        if len(variable.label.encode("utf-8")) > MAX_VARIABLE_LABEL_BYTES:
            raise ValueError(f"the label of {variable.name!r} is over {MAX_VARIABLE_LABEL_BYTES} bytes")
        if variable.type not in ("number", "date", "string") or variable.measure not in _MEASURES:
            raise ValueError(f"{variable.name!r}: unknown type or measure")
        if variable.type == "string" and (variable.value_labels or variable.missing):
            raise ValueError(f"{variable.name!r}: value labels and missing values are for numbers only")
        if any(len(label.encode("utf-8")) > MAX_VALUE_LABEL_BYTES for label in variable.value_labels.values()):
            raise ValueError(f"{variable.name!r}: a value label is over {MAX_VALUE_LABEL_BYTES} bytes")
        ranges = [m for m in variable.missing if isinstance(m, tuple)]
        if len(ranges) > 1 or len(variable.missing) > (2 if ranges else 3):
            raise ValueError(f"{variable.name!r}: at most three missing values, or one range and one value")
        if not 0 <= variable.decimals <= 16:
            raise ValueError(f"{variable.name!r}: decimals must be 0..16")
    if len(file_label.encode("utf-8")) > FILE_LABEL_BYTES:
        raise ValueError(f"the file label is over {FILE_LABEL_BYTES} bytes")
    if any(len(line.encode("utf-8")) > DOCUMENT_LINE_BYTES for line in documents):
        raise ValueError(f"a document line is over {DOCUMENT_LINE_BYTES} bytes")


# -- pass 1: cases to the spool ---------------------------------------------------------------------


def _getter(indexes: list[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    if not indexes:
        return lambda row: ()
    if len(indexes) == 1:
        (index,) = indexes
        return lambda row: (row[index],)
    return itemgetter(*indexes)


def _number(value: Any) -> float:
    """A number cell the fast path refused: None is system-missing, a date its SPSS seconds."""
    if value is None:
        return math.nan
    if isinstance(value, dt.date):
        return spss_date(value)
    if isinstance(value, str | bytes):
        raise TypeError(f"a number cell cannot be {type(value).__name__}: {value!r}")
    return float(value)


def _encode(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise TypeError(f"a string cell must be str or bytes, not {type(value).__name__}")


def _opcodes(values: np.ndarray) -> np.ndarray:
    """Each number's compression instruction: 1–251 for a whole number in −99…151, 255 for
    system-missing (NaN), 253 for any other value (which then follows in full)."""
    codes = np.full(values.shape, _COMPRESSED, dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        whole = (values >= -99) & (values <= 151) & (np.floor(values) == values)
    whole &= ~((values == 0) & np.signbit(values))  # -0.0 follows in full, to keep its sign
    codes[whole] = (values[whole] + BIAS).astype(np.uint8)
    codes[np.isnan(values)] = _MISSING
    return codes


class _Spooler:
    """Reads the cases once into a temporary file, in chunks, and learns the string widths.

    A chunk is ``rows`` and ``n`` (uint32), each number's instruction (rows × numbers bytes), the
    ``n`` numbers that do not compress (float64), then per string variable the byte lengths
    (uint32 per row) and the UTF-8 bytes.
    """

    def __init__(self, variables: Sequence[Variable], spool: BinaryIO, chunk_bytes: int) -> None:
        self.spool = spool
        self.width = len(variables)
        self.numbers = [i for i, v in enumerate(variables) if v.type != "string"]
        self.strings = [i for i, v in enumerate(variables) if v.type == "string"]
        self.widths = [0] * len(self.strings)
        self.chunk_bytes = max(chunk_bytes, 1)
        self.chunk_rows: list[int] = []

    def read(self, cases: Iterable[Sequence[Any]]) -> int:
        get_numbers, get_strings = _getter(self.numbers), _getter(self.strings)
        pack = struct.Struct(f"<{len(self.numbers)}d").pack
        numbers = bytearray()
        texts: list[list[bytes]] = [[] for _ in self.strings]
        row_bytes = 8 * len(self.numbers) + 48 * len(self.strings)  # numbers + a bytes object's overhead
        count = rows = text_bytes = 0
        for case in cases:
            if len(case) != self.width:
                raise ValueError(f"case {count + 1} has {len(case)} cells, not {self.width}")
            try:
                numbers += pack(*get_numbers(case))
            except (struct.error, TypeError):
                numbers += pack(*map(_number, get_numbers(case)))
            for column, value in zip(texts, get_strings(case), strict=True):
                if value.__class__ is not bytes:
                    value = _encode(value)
                column.append(value)
                text_bytes += len(value)
            count += 1
            rows += 1
            if rows * row_bytes + text_bytes >= self.chunk_bytes:
                self._flush(rows, numbers, texts)
                numbers, texts = bytearray(), [[] for _ in self.strings]
                rows = text_bytes = 0
        if rows:
            self._flush(rows, numbers, texts)
        for index, width in zip(self.strings, self.widths, strict=True):
            if width > MAX_STRING_BYTES:
                raise ValueError(f"a value of string variable {index + 1} is over {MAX_STRING_BYTES} bytes")
        return count

    def _flush(self, rows: int, numbers: bytearray, texts: list[list[bytes]]) -> None:
        values = np.frombuffer(numbers, dtype="<f8")
        codes = _opcodes(values)
        raw = values[codes == _COMPRESSED].astype("<f8")
        write = self.spool.write
        write(_CHUNK.pack(rows, len(raw)))
        write(codes.tobytes())
        write(raw.tobytes())
        for j, column in enumerate(texts):
            lengths = np.fromiter(map(len, column), dtype="<u4", count=len(column))
            self.widths[j] = max(self.widths[j], int(lengths.max()))
            write(lengths.tobytes())
            write(b"".join(column))
        self.chunk_rows.append(rows)


# -- the dictionary ---------------------------------------------------------------------------------


def _short_name(candidate: str, used: set[str]) -> str:
    """A unique, valid 8-byte name (the long name lives in record 7/13)."""
    base = candidate.upper() if candidate.isascii() else "V"
    base = "".join(c if c.isalnum() or c in "_.@#$" else "_" for c in base) or "V"
    if not base[0].isalpha():
        base = "V" + base
    name = base[:8]
    counter = 0
    while name in used or name in _RESERVED or name.endswith("."):
        counter += 1
        suffix = str(counter)
        name = base[: 8 - len(suffix)] + suffix
    used.add(name)
    return name


@dataclass
class _Placed:
    """A variable in the file: its width (0: number), the names and widths of its segments, where
    its first record is in the dictionary (1-based) and its first 8-byte unit in a case."""

    variable: Variable
    width: int
    segments: list[tuple[str, int]]
    record: int
    unit: int

    @property
    def units(self) -> int:
        return sum(max(1, (w + 7) // 8) for _, w in self.segments)


class _Layout:
    def __init__(self, variables: Sequence[Variable], string_widths: Sequence[int]) -> None:
        widths = iter(string_widths)
        used: set[str] = set()
        self.placed: list[_Placed] = []
        record = unit = 1
        for variable in variables:
            width = max(1, next(widths)) if variable.type == "string" else 0
            short = _short_name(variable.name, used)
            segments = [(short, w) for w in segment_widths(width)]
            for index in range(1, len(segments)):
                segments[index] = (_short_name(short[:5] + str(index), used), segments[index][1])
            placed = _Placed(variable, width, segments, record, unit - 1)
            record += placed.units
            unit += placed.units
            self.placed.append(placed)
        self.case_units = unit - 1


def _format(variable: Variable, width: int) -> int:
    if variable.type == "string":
        return _FORMAT_A << 16 | width << 8
    if variable.type == "date":
        return _FORMAT_DATE << 16 | 11 << 8
    return _FORMAT_F << 16 | 8 << 8 | variable.decimals


def _padded(data: bytes, multiple: int, fill: bytes = b" ") -> bytes:
    return data + fill * (-len(data) % multiple)


def _missing_values(missing: Sequence[Missing]) -> tuple[int, list[float]]:
    def bound(value: float) -> float:
        return HIGHEST if value == math.inf else LOWEST if value == -math.inf else float(value)

    ranges = [m for m in missing if isinstance(m, tuple)]
    values = [float(m) for m in missing if not isinstance(m, tuple)]
    if ranges:
        lo, hi = ranges[0]
        return (-3 if values else -2), [bound(lo), bound(hi), *values]
    return len(values), values


def _variable_records(placed: _Placed) -> bytes:
    variable, parts = placed.variable, []
    for index, (name, width) in enumerate(placed.segments):
        label = variable.label.encode("utf-8") if index == 0 and variable.label else b""
        count, missing = _missing_values(variable.missing) if index == 0 else (0, [])
        fmt = _format(variable, width)
        parts.append(_VARIABLE.pack(2, width, bool(label), count, fmt, fmt, name.encode("ascii").ljust(8)))
        if label:
            parts.append(struct.pack("<i", len(label)) + _padded(label, 4))
        parts.append(struct.pack(f"<{len(missing)}d", *missing))
        continuation = _VARIABLE.pack(2, -1, 0, 0, 0, 0, b" " * 8)
        parts.append(continuation * (max(1, (width + 7) // 8) - 1))
    return b"".join(parts)


def _value_label_records(layout: _Layout) -> bytes:
    """One type 3 + type 4 pair per distinct set of labels, listing every variable that has it."""
    sets: dict[tuple[tuple[float, str], ...], list[int]] = {}
    for placed in layout.placed:
        if placed.variable.value_labels:
            key = tuple((float(v), str(t)) for v, t in placed.variable.value_labels.items())
            sets.setdefault(key, []).append(placed.record)
    parts = []
    for labels, records in sets.items():
        parts.append(struct.pack("<ii", 3, len(labels)))
        for value, text in labels:
            encoded = text.encode("utf-8")
            parts.append(struct.pack("<d", value) + _padded(bytes([len(encoded)]) + encoded, 8))
        parts.append(struct.pack(f"<ii{len(records)}i", 4, len(records), *records))
    return b"".join(parts)


def _extension(subtype: int, size: int, data: bytes) -> bytes:
    return struct.pack("<iiii", 7, subtype, size, len(data) // size) + data


def _dictionary(
    layout: _Layout, count: int, file_label: str, documents: Sequence[str], compress: bool, created: dt.datetime
) -> bytes:
    header = struct.pack(
        "<4s60siiiiid9s8s64s3s",
        b"$FL2",
        _PRODUCT.ljust(60),
        2,  # layout code
        layout.case_units,
        1 if compress else 0,
        0,  # no weight variable
        count if count < 2**31 else -1,
        float(BIAS),
        f"{created.day:02d} {_MONTHS[created.month - 1]} {created.year % 100:02d}".encode("ascii"),
        created.strftime("%H:%M:%S").encode("ascii"),
        file_label.encode("utf-8").ljust(FILE_LABEL_BYTES),
        b"\0\0\0",
    )
    parts = [header, *(_variable_records(p) for p in layout.placed), _value_label_records(layout)]
    if documents:
        lines = [line.encode("utf-8").ljust(DOCUMENT_LINE_BYTES) for line in documents]
        parts.append(struct.pack("<ii", 6, len(lines)) + b"".join(lines))
    # release 1.0.0, machine -1, IEEE 754, compression field (always 1), little endian, UTF-8
    parts.append(_extension(3, 4, struct.pack("<8i", 1, 0, 0, -1, 1, 1, 2, 65001)))
    parts.append(_extension(4, 8, struct.pack("<3d", SYSMIS, HIGHEST, LOWEST)))
    parts.append(_extension(20, 1, b"UTF-8"))
    display = []
    for placed in layout.placed:
        variable = placed.variable
        measure = _MEASURES[variable.measure]
        for index, (_name, width) in enumerate(placed.segments):
            if variable.type == "string":
                shown = min(placed.width if index == 0 else width, 40)
                display += [measure, shown, 0]  # left aligned
            else:
                display += [measure, 11 if variable.type == "date" else 8, 1]  # right aligned
    parts.append(_extension(11, 4, struct.pack(f"<{len(display)}i", *display)))
    names = "\t".join(f"{p.segments[0][0]}={p.variable.name}" for p in layout.placed)
    parts.append(_extension(13, 1, names.encode("utf-8")))
    very_long = "".join(f"{p.segments[0][0]}={p.width:05d}\0\t" for p in layout.placed if len(p.segments) > 1)
    if very_long:
        parts.append(_extension(14, 1, very_long.encode("ascii")))
    parts.append(_extension(16, 8, struct.pack("<qq", 1, count)))
    parts.append(struct.pack("<ii", 999, 0))
    return b"".join(parts)


# -- pass 2: the spool to case data ------------------------------------------------------------------


def _string_block(values: list[bytes], placed: _Placed) -> bytes:
    """The strings as stored: each segment's text (255 bytes of a full one) padded to its units."""
    segments = placed.segments
    if len(segments) == 1:
        size = placed.units * 8
        return b"".join([value.ljust(size) for value in values])
    full = len(segments) - 1
    last = ((segments[-1][1] + 7) // 8) * 8
    parts = []
    for value in values:
        parts += [value[255 * i : 255 * (i + 1)].ljust(256) for i in range(full)]
        parts.append(value[255 * full :].ljust(last))
    return b"".join(parts)


class _Bytecode:
    """Compression instructions and their values into blocks of eight, written as they fill."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.codes = np.zeros(0, dtype=np.uint8)
        self.values = np.zeros((0, 8), dtype=np.uint8)

    def add(self, codes: np.ndarray, values: np.ndarray) -> None:
        if len(self.codes):
            codes, values = np.concatenate([self.codes, codes]), np.concatenate([self.values, values])
        whole = len(codes) - len(codes) % 8
        self._emit(codes[:whole], values[:whole])
        self.codes, self.values = codes[whole:].copy(), values[whole:].copy()

    def close(self) -> None:
        pending = len(self.codes)
        if pending:
            codes = np.concatenate([self.codes, np.full(8 - pending, _PADDING, dtype=np.uint8)])
            values = np.concatenate([self.values, np.zeros((8 - pending, 8), dtype=np.uint8)])
            self._emit(codes, values)

    def _emit(self, codes: np.ndarray, values: np.ndarray) -> None:
        blocks = len(codes) // 8
        if not blocks:
            return
        grid = np.empty((blocks, 9, 8), dtype=np.uint8)
        grid[:, 0, :] = codes.reshape(blocks, 8)
        grid[:, 1:, :] = values.reshape(blocks, 8, 8)
        keep = np.empty((blocks, 9), dtype=bool)
        keep[:, 0] = True
        keep[:, 1:] = codes.reshape(blocks, 8) == _COMPRESSED
        self.out.write(grid[keep].tobytes())


def _read_exactly(spool: BinaryIO, size: int) -> bytes:
    data = spool.read(size)
    if len(data) != size:
        raise OSError("the case spool ended early")
    return data


def _write_cases(
    spool: BinaryIO, spooler: _Spooler, layout: _Layout, out: BinaryIO, compress: bool, chunk_bytes: int
) -> None:
    numbers = [layout.placed[i] for i in spooler.numbers]
    strings = [layout.placed[i] for i in spooler.strings]
    number_units = np.array([p.unit for p in numbers], dtype=np.intp)
    units = layout.case_units
    slice_rows = max(1, chunk_bytes // (units * 8))
    plain = np.arange(256, dtype=np.float64) - BIAS  # an instruction's number, for uncompressed data
    plain[_MISSING] = SYSMIS
    bytecode = _Bytecode(out)
    for rows in spooler.chunk_rows:
        stored, n_raw = _CHUNK.unpack(_read_exactly(spool, _CHUNK.size))
        if stored != rows:
            raise OSError("the case spool is out of step")
        codes = np.frombuffer(_read_exactly(spool, rows * len(numbers)), dtype=np.uint8).reshape(rows, len(numbers))
        raw = np.frombuffer(_read_exactly(spool, n_raw * 8), dtype="<f8")
        values = plain[codes] if not compress else np.zeros(codes.shape)
        values[codes == _COMPRESSED] = raw
        texts = []
        for _placed in strings:
            lengths = np.frombuffer(_read_exactly(spool, rows * 4), dtype="<u4")
            data = _read_exactly(spool, int(lengths.sum(dtype=np.int64)))
            ends = np.cumsum(lengths, dtype=np.int64).tolist()
            texts.append([data[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)])
        for start in range(0, rows, slice_rows):
            stop = min(rows, start + slice_rows)
            case_codes = np.empty((stop - start, units), dtype=np.uint8)
            case_data = np.empty((stop - start, units * 8), dtype=np.uint8)
            case_codes[:, number_units] = codes[start:stop]
            case_data.view("<f8")[:, number_units] = values[start:stop]
            for placed, column in zip(strings, texts, strict=True):
                block = np.frombuffer(_string_block(column[start:stop], placed), dtype=np.uint8)
                first, last = placed.unit, placed.unit + placed.units
                case_data[:, first * 8 : last * 8] = block.reshape(stop - start, -1)
                spaces = (block.reshape(stop - start, placed.units, 8) == 0x20).all(axis=2)
                case_codes[:, first:last] = np.where(spaces, _SPACES, _COMPRESSED)
            if compress:
                bytecode.add(case_codes.reshape(-1), case_data.reshape(-1, 8))
            else:
                out.write(case_data.tobytes())
    if compress:
        bytecode.close()
