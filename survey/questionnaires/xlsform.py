"""XLSForm import and export: the workbooks of KoboToolbox and ODK, to and from the definition format.

:func:`definition_from_xlsform` turns an ``.xlsx`` XLSForm into a *raw* definition (DESIGN §4) that the caller
then checks with :func:`~survey.questionnaires.definition.validate_definition`. Whatever it cannot translate is
reported, never dropped: it raises :class:`~survey.errors.DefinitionInvalidError` whose
``errors["problems"]`` lists every problem at once, each located by sheet and row, for example
``survey row 12: relevant: cannot translate '${age} >= 18' (...)``. Workbook text quoted in a message is
shortened and stripped of control characters; it is never formatted, evaluated or followed.

:func:`xlsform_from_definition` writes a definition as an XLSForm that reads back to an equal definition.

Reading is defensive: at most :data:`MAX_BYTES` of upload, :data:`MAX_UNPACKED_BYTES` once unzipped,
:data:`MAX_ROWS` rows and :data:`MAX_COLUMNS` columns a sheet; XML with a DTD is refused; openpyxl runs
``read_only`` with ``data_only`` (cached values, no formula is evaluated) and without external links.

The XLSForm subset
------------------
Sheets ``survey``, ``choices`` (``list_name`` or ``list name``), ``settings`` (``form_id`` → code,
``form_title`` → title in the default language, ``default_language``; ``version``, ``style`` and
``instance_name`` are ignored). Text columns carry a language: ``label::English (en)``, ``label::en`` or a
bare ``label`` (the default language: settings ``default_language``, else ``en``). Tags are BCP 47 as written,
so ``sr-Latn`` and ``sr-Cyrl`` are accepted as they are.

=====================================  =======================================================================
XLSForm                                definition
=====================================  =======================================================================
``begin_group`` … ``end_group``        a section: name → code, label → title, ``hint`` or a ``note`` as the
                                       group's first row → description; the group's ``relevant`` applies to
                                       every question in it. Questions outside any group go into a default
                                       section (one per run of such rows).
group with appearance ``table-list``   a ``matrix`` question: group name → code, label → text, hint (or a
(≥1 row) or ``field-list`` (≥2 rows)   leading note) → help; each ``select_one`` row → a row; the shared list →
of select_one rows sharing one list    the scale. ODK's header row (appearance ``label``) is skipped.
``select_one L``                       ``single_choice``; with appearance ``likert`` → ``likert`` (points 1..n)
``select_multiple L``                  ``multiple_choice``
``rank L``                             ``ranking``
``integer`` / ``decimal``              ``number`` (``integer`` flag)
``text``                               ``text`` (appearance ``multiline`` → multiline)
``range``                              ``rating``: ``parameters`` ``start=0 end=10 step=1`` (XLSForm defaults
                                       1, 10, 1)
``required``                           yes / true / TRUE() / 1 → required
``relevant``                           ``display_if``: ``${q} = 'c'``, ``${q} != 'c'``, ``selected(${q}, 'c')``,
                                       ``not(...)``, ``and``, ``or``, parentheses. Tests of one question joined
                                       by ``or`` (``=``) or ``and`` (``!=``) become one ``in`` / ``not_in``
                                       condition; a parenthesised part stays a part of its own; ``not``
                                       of a compound is pushed down to its tests. An ``all``/``any`` of
                                       one part is exported as that part and so reads back as it.
``constraint``                         ``. >= 0 and . <= 120`` → number min/max; ``count-selected(.) >= 1``
                                       → min/max_choices; ``string-length(.) <= 500`` → text max_length
``parameters`` ``randomize=true``      ``randomize_options`` of a select_one/select_multiple/rank
=====================================  =======================================================================

Choices named ``dont_know``, ``prefer_not_to_say``, ``cant_say``, ``not_sure`` (and a few similar names) are
non-substantive unless the ``non_substantive`` column says ``no``. A ``select_one`` named ``consent``, or with
``consent`` = yes, becomes the definition's consent question (always required); declining is its ``no``
choice unless a ``terminate_if`` expression says otherwise.

Extra columns (where XLSForm has no place; all optional, booleans are yes/no)
-----------------------------------------------------------------------------
survey sheet:
  ``consent``, ``terminate_if``   the consent question and the answer that ends the questionnaire
  ``demographic``                 a demographic (breakdown) question
  ``ordinal``                     a single_choice whose options are ordered (values in ``numeric_value``)
  ``randomize``                   shuffle options (select rows) or rows (on a matrix's begin_group row)
  ``min_choices`` ``max_choices`` a multiple_choice's limits (the same as a count-selected constraint)
  ``min_ranked`` ``max_ranked``   how many options a ranking needs / allows
  ``max_length``                  a text's limit (the same as a string-length constraint)
  ``scale_code``                  a likert's or matrix's scale code (default: the list name)
  ``anchor_min::…`` ``anchor_max::…``  a rating's end labels, one column per language
  ``non_substantive_list``        a rating's list of non-substantive answers (e.g. "can't say")
  ``reverse_keyed``               on a matrix row: the row is reverse keyed
  ``sensitive``                   on a section's begin_group row: the section is sensitive
  ``themes`` ``informed_by``      authoring metadata: codes separated by spaces (or a JSON array)
  ``op_ed_excerpt``               authoring metadata: a string
choices sheet:
  ``non_substantive`` ``exclusive`` ``pin_last``   option flags (yes/no)
  ``numeric_value``               an option's numeric value (ordinal questions)
settings sheet:
  ``questionnaire_title::…`` ``description::…`` ``privacy_note::…`` ``neutrality_note::…`` ``end_completed::…``
  ``end_screened_out::…``         the questionnaire's texts, one column per language
metadata sheet (columns ``field``, ``json``):
  ``estimated_duration_minutes``, ``source_document`` (a JSON object each), ``themes``, ``sources`` (one row
  per item, or a JSON array)

Round trip
----------
The export writes standard XLSForm wherever it has a place (types, appearances, ``required``, ``relevant``,
``constraint``, range ``parameters``), so KoboToolbox and ODK (pyxform) accept it, and the extra columns above
for the rest. Lists are named after their question or scale and shared when identical; a section's description
is a note as the group's first row. Reading the export gives back an equal validated definition, with two
normalisations: a scale without a code gets its list's name, and an ``all``/``any`` of one part becomes that
part.

Not supported, and reported as a problem
----------------------------------------
Repeats, calculations, ``choice_filter``, ``or_other``, media, ``default``, ``read_only``, other question types
(date, geopoint, image, …), device and respondent metadata (``deviceid``, ``username``, ``phonenumber``, …: the
platform never collects them), notes other than a group's first row, nested groups that are not a matrix,
``relevant`` and ``constraint`` expressions outside the forms above, names that are not snake_case, and any
column that does not apply to its row. Ignored on purpose: ``start``, ``end`` and ``today`` rows (the platform
records the submission day itself), ``constraint_message`` and ``required_message`` (the web form has its own
translated messages), display-only ``appearance`` values, and columns starting with ``$`` (KoboToolbox's own).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import xlsxwriter
from openpyxl import load_workbook

from survey.errors import DefinitionInvalidError
from survey.questionnaires.definition import iter_questions, validate_definition
from survey.questionnaires.fields import CODE_PATTERN, LANGUAGE_PATTERN

MAX_BYTES = 2 * 1024 * 1024
MAX_UNPACKED_BYTES = 40 * 1024 * 1024
MAX_ZIP_MEMBERS = 200
MAX_ROWS = 5000
MAX_COLUMNS = 200
MAX_PROBLEMS = 100
MAX_EXPRESSION = 2000
MAX_NESTING = 20
CELL_MAX = 32767  # the most characters a spreadsheet cell holds

_CODE = re.compile(CODE_PATTERN)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

NON_SUBSTANTIVE_NAMES = frozenset(
    {
        "dont_know",
        "do_not_know",
        "don_t_know",
        "prefer_not_to_say",
        "prefer_not_to_answer",
        "refused",
        "cant_say",
        "cannot_say",
        "not_sure",
        "no_answer",
    }
)
_KNOWN_LANGUAGE_NAMES = {
    "en": "English",
    "sq": "Shqip",
    "sr": "Srpski",
    "sr-Latn": "Srpski (latinica)",
    "sr-Cyrl": "Српски (ћирилица)",
}
_LANGUAGE_BY_NAME = {"english": "en", "shqip": "sq", "albanian": "sq", "srpski": "sr-Latn", "српски": "sr-Cyrl"}
_DEFAULT_SECTION_TITLE = {
    "en": "Questions",
    "sq": "Pyetjet",
    "sr-Latn": "Pitanja",
    "sr-Cyrl": "Питања",
    "sr": "Pitanja",
}

_TRUE = frozenset({"yes", "true", "true()", "1", "y"})
_FALSE = frozenset({"no", "false", "false()", "0", "n"})

# Text columns, by sheet; each takes a language (``label::English (en)``) or is bare (the default language).
_SURVEY_TEXTS = ("label", "hint", "anchor_min", "anchor_max")
_CHOICES_TEXTS = ("label",)
_SETTINGS_TEXTS = (
    "questionnaire_title",
    "description",
    "privacy_note",
    "neutrality_note",
    "end_completed",
    "end_screened_out",
)
_IGNORED_COLUMNS = frozenset({"constraint_message", "required_message"})
_SURVEY_COLUMNS = frozenset(
    {
        "type",
        "name",
        "required",
        "relevant",
        "constraint",
        "appearance",
        "parameters",
        "consent",
        "terminate_if",
        "demographic",
        "ordinal",
        "randomize",
        "min_choices",
        "max_choices",
        "min_ranked",
        "max_ranked",
        "max_length",
        "scale_code",
        "non_substantive_list",
        "reverse_keyed",
        "sensitive",
        "themes",
        "informed_by",
        "op_ed_excerpt",
    }
)
_CHOICES_COLUMNS = frozenset({"list_name", "name", "non_substantive", "exclusive", "pin_last", "numeric_value"})
_SETTINGS_COLUMNS = frozenset({"form_id", "form_title", "default_language"})
_IGNORED_SETTINGS = frozenset({"version", "style", "instance_name"})
_SHEETS = frozenset({"survey", "choices", "settings", "metadata"})
_METADATA_FIELDS = {"estimated_duration_minutes": dict, "source_document": dict, "themes": list, "sources": list}

_IGNORED_TYPES = frozenset({"start", "end", "today"})
_PRIVATE_TYPES = frozenset(
    {"deviceid", "subscriberid", "simserial", "phonenumber", "username", "email", "audit", "start-geopoint"}
)
_CHOICE_TYPES = {"select_one": "single_choice", "select_multiple": "multiple_choice", "rank": "ranking"}
_XLSFORM_CHOICE_TYPES = {kind: xlsform for xlsform, kind in _CHOICE_TYPES.items()}
_PLAIN_TYPES = frozenset(
    {"integer", "decimal", "text", "range", "note", "begin_group", "end_group", "begin_repeat", "end_repeat"}
)
_RELEVANT_HELP = "(supported: ${q} = 'code', ${q} != 'code', selected(${q}, 'code'), not(...), and, or)"


# -- public API -------------------------------------------------------------------------------


def definition_from_xlsform(data: bytes) -> dict[str, Any]:
    """Read an XLSForm ``.xlsx`` and return the raw definition; raise :class:`DefinitionInvalidError`
    listing every problem (with sheet and row) if the workbook cannot be read or translated."""
    sheets = _read_workbook(data)
    return _Importer(sheets).run()


def xlsform_from_definition(definition: dict[str, Any]) -> bytes:
    """Write a definition as an XLSForm ``.xlsx`` that :func:`definition_from_xlsform` reads back unchanged.

    The definition is validated first (without requiring complete translations), so a draft can be exported.
    """
    return _Exporter(validate_definition(definition, require_complete=False)).build()


# -- shared helpers ---------------------------------------------------------------------------


def _quote(value: Any, limit: int = 60) -> str:
    """Workbook text as it may appear in a message: one line, at most ``limit`` characters, quoted."""
    text = _UNSAFE.sub(" ", str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'"


def _fail(problems: list[str]) -> DefinitionInvalidError:
    if len(problems) > MAX_PROBLEMS:
        problems = [*problems[:MAX_PROBLEMS], f"… and {len(problems) - MAX_PROBLEMS} more problems"]
    return DefinitionInvalidError(f"The XLSForm workbook has {len(problems)} problem(s).", {"problems": problems})


def _cell_text(value: Any) -> str:
    """A cell value as text; numbers typed into cells (``1``, ``2.0``) read as they look."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _parse_language(text: str) -> tuple[str, str] | None:
    """``English (en)`` / ``en`` / ``English`` → (tag, name), or None if no BCP 47 tag can be found."""
    text = text.strip()
    match = re.fullmatch(r"(?P<name>.*?)\s*\((?P<tag>[^()]*)\)\s*", text)
    if match:
        tag, name = match["tag"].strip(), match["name"].strip()
        if LANGUAGE_PATTERN.match(tag):
            return tag, name or _KNOWN_LANGUAGE_NAMES.get(tag, tag)
        return None
    if LANGUAGE_PATTERN.match(text):
        return text, _KNOWN_LANGUAGE_NAMES.get(text, text)
    if text.lower() in _LANGUAGE_BY_NAME:
        return _LANGUAGE_BY_NAME[text.lower()], text
    return None


# -- reading the workbook ---------------------------------------------------------------------


@dataclass
class _RawSheet:
    name: str
    rows: list[tuple[int, list[str]]]  # (row number, cell texts); the first row is the header


def _read_workbook(data: bytes) -> dict[str, _RawSheet]:
    """The sheets of an .xlsx, by lower-case name, after the size and safety checks."""
    if not isinstance(data, bytes | bytearray):
        raise _fail(["workbook: expected the bytes of an .xlsx file"])
    if len(data) > MAX_BYTES:
        raise _fail([f"workbook: the file is larger than {MAX_BYTES // (1024 * 1024)} MB"])
    _check_archive(bytes(data))
    try:
        # read_only streams the sheets; data_only takes cached values, so no formula is ever evaluated;
        # keep_links=False leaves external workbook links alone.
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception:  # openpyxl raises many different types for malformed files; all mean the same here
        raise _fail(["workbook: the file could not be read as an .xlsx workbook"]) from None
    try:
        sheets: dict[str, _RawSheet] = {}
        for worksheet in workbook.worksheets:
            key = str(worksheet.title).strip().lower()
            if key in sheets:
                raise _fail([f"workbook: two sheets are named {_quote(key)}"])
            # Other sheets (instructions, notes) are not XLSForm and are not read, so they cannot hurt;
            # only their names matter, to report XLSForm sheets that are not supported.
            rows = _read_sheet(worksheet, key) if key in _SHEETS else []
            sheets[key] = _RawSheet(key, rows)
        return sheets
    except DefinitionInvalidError:
        raise
    except Exception:
        raise _fail(["workbook: the file could not be read as an .xlsx workbook"]) from None
    finally:
        workbook.close()


def _check_archive(data: bytes) -> None:
    """Refuse what is not an xlsx, what unpacks too large (zip bombs) and XML with a DTD (entity attacks)."""
    not_xlsx = _fail(["workbook: the file is not an .xlsx workbook"])
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise not_xlsx
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise _fail(["workbook: the file has too many parts to be an XLSForm"])
            if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
                raise _fail([f"workbook: the file unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MB"])
            names = {member.filename for member in members}
            if "xl/workbook.xml" not in names or "[Content_Types].xml" not in names:
                raise not_xlsx
            for member in members:
                if member.filename.endswith((".xml", ".rels")):
                    # zipfile stops at the declared size, so this read is bounded by the check above.
                    content = archive.read(member)
                    if re.search(rb"<!(DOCTYPE|ENTITY)", content, re.IGNORECASE):
                        raise _fail(["workbook: the file contains an XML document type declaration"])
    except DefinitionInvalidError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError):
        raise not_xlsx from None


def _read_sheet(worksheet: Any, name: str) -> list[tuple[int, list[str]]]:
    too_large = _fail([f"{name}: more than {MAX_ROWS} rows or {MAX_COLUMNS} columns"])
    if (worksheet.max_column or 0) > MAX_COLUMNS or (worksheet.max_row or 0) > MAX_ROWS + 1:
        raise too_large
    # The declared size may be wrong; forget it so that every stored row is seen (and counted).
    worksheet.reset_dimensions()
    rows: list[tuple[int, list[str]]] = []
    for number, values in enumerate(worksheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True), start=1):
        if number > MAX_ROWS + 1 or (len(values) > MAX_COLUMNS and values[MAX_COLUMNS] is not None):
            raise too_large
        texts = [_cell_text(value) for value in values[:MAX_COLUMNS]]
        while texts and not texts[-1].strip():
            texts.pop()
        if texts:
            rows.append((number, texts))
    return rows


# -- rows -------------------------------------------------------------------------------------


@dataclass
class _Row:
    sheet: str
    number: int
    cells: dict[str, str]  # column key → text, non-blank cells only
    used: set[str] = field(default_factory=set)

    @property
    def where(self) -> str:
        return f"{self.sheet} row {self.number}"

    def get(self, key: str) -> str:
        self.used.add(key)
        return self.cells.get(key, "").strip()

    def peek(self, key: str) -> str:
        return self.cells.get(key, "").strip()

    def raw(self, key: str) -> str | None:
        self.used.add(key)
        return self.cells.get(key)

    def texts(self, base: str, languages: Iterable[str]) -> dict[str, str]:
        found = {}
        for tag in languages:
            key = f"{base}::{tag}"
            self.used.add(key)
            if key in self.cells:
                found[tag] = self.cells[key]
        return found

    def use_all(self) -> None:
        self.used.update(self.cells)


@dataclass
class _Column:
    key: str | None  # None: ignored
    base: str = ""
    language: tuple[str, str] | None = None  # (tag, name) of a text column with a language
    bare: bool = False  # a text column without a language


@dataclass
class _Item:
    row: _Row
    kind: str
    list_name: str | None = None


@dataclass
class _Group:
    row: _Row
    children: list[_Item | _Group] = field(default_factory=list)


@dataclass
class _Choice:
    row: _Row
    code: str
    label: dict[str, str]
    non_substantive: bool | None
    exclusive: bool
    pin_last: bool
    value: int | None


@dataclass
class _Known:
    """What a condition may test about an earlier question."""

    type: str
    codes: frozenset[str] | None


# -- import -----------------------------------------------------------------------------------


class _ConditionError(Exception):
    """A relevant/terminate_if expression that cannot be translated; the message is safe to show."""


class _Importer:
    def __init__(self, sheets: dict[str, _RawSheet]) -> None:
        self.sheets = sheets
        self.problems: list[str] = []
        self.languages: dict[str, str] = {}
        self.default = "en"
        self.lists: dict[str, list[_Choice]] = {}
        self.known: dict[str, _Known] = {}
        self.question_rows: dict[str, int] = {}
        self.consent: dict[str, Any] | None = None
        self.consent_row: _Row | None = None
        self.reported_columns: set[tuple[str, str]] = set()
        self.settings_where = "settings row 2"

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # -- the whole ------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        for unsupported in ("external_choices", "entities", "osm"):
            if unsupported in self.sheets:
                self.problem("workbook", f"the {unsupported} sheet is not supported")
        if "survey" not in self.sheets:
            raise _fail(["workbook: there is no survey sheet"])
        headers = {
            name: self._header(name, texts)
            for name, texts in (("survey", _SURVEY_TEXTS), ("choices", _CHOICES_TEXTS), ("settings", _SETTINGS_TEXTS))
            if name in self.sheets
        }
        self._languages(headers)
        rows = {name: self._rows(name, columns) for name, columns in headers.items()}
        definition = self._settings(rows.get("settings", []))
        self._choices(rows.get("choices", []))
        sections = self._sections(self._tree(rows["survey"]))
        if self.consent is not None:
            definition["consent"] = self.consent
        definition["sections"] = sections
        definition.update(self._metadata())
        if self.problems:
            # In the order of the workbook, which is how staff will fix them; a row's problems keep their order.
            raise _fail(sorted(self.problems, key=_problem_order))
        return definition

    # -- headers and languages -----------------------------------------------------------------

    def _header(self, sheet: str, text_bases: tuple[str, ...]) -> list[_Column]:
        rows = self.sheets[sheet].rows
        if not rows:
            return []
        if rows[0][0] != 1:
            self.problem(sheet, "the first row must name the columns")
            return []
        columns: list[_Column] = []
        seen: set[str] = set()
        for cell in rows[0][1]:
            name = cell.strip()
            base, has_language, language = name.partition("::")
            base = base.strip().lower().replace(" ", "_")
            if not name or name.startswith("$") or base in _IGNORED_COLUMNS:
                columns.append(_Column(None))
                continue
            if base in text_bases and has_language:
                parsed = _parse_language(language)
                if parsed is None:
                    self.problem(
                        f"{sheet} row 1",
                        f"column {_quote(name)}: the language needs a BCP 47 tag, e.g. 'label::English (en)'",
                    )
                    columns.append(_Column(None))
                    continue
                column = _Column(f"{base}::{parsed[0]}", base, language=parsed)
            elif base in text_bases:
                column = _Column(f"{base}::", base, bare=True)
            else:
                column = _Column(name if has_language else base, base)
            if column.key in seen:
                self.problem(f"{sheet} row 1", f"column {_quote(name)} appears twice")
                column = _Column(None)
            seen.add(column.key or "")
            columns.append(column)
        return columns

    def _languages(self, headers: dict[str, list[_Column]]) -> None:
        """Declared languages in the order their columns first appear; bare columns are the default one."""
        default_name = None
        parsed_setting = False
        setting = self._default_language_setting(headers.get("settings", []))
        has_bare = any(column.bare for columns in headers.values() for column in columns)
        tagged = [column.language for columns in headers.values() for column in columns if column.language]
        if setting:
            parsed = _parse_language(setting)
            if parsed is None:
                # A bare name such as "Deutsch" matches a column's language name.
                parsed = next(((tag, name) for tag, name in tagged if name.lower() == setting.lower()), None)
            if parsed is None:
                self.problem(
                    self.settings_where, f"default_language: {_quote(setting)} names no language of the columns"
                )
            else:
                self.default, default_name = parsed
                parsed_setting = True
        elif not has_bare and tagged and "en" not in {tag for tag, _name in tagged}:
            self.default = tagged[0][0]
        for columns in headers.values():
            for column in columns:
                if column.bare:
                    column.key = f"{column.base}::{self.default}"
                    self.languages.setdefault(
                        self.default, default_name or _KNOWN_LANGUAGE_NAMES.get(self.default, self.default)
                    )
                elif column.language:
                    self.languages.setdefault(*column.language)
        if parsed_setting and self.default not in self.languages:
            self.problem(self.settings_where, f"default_language: {_quote(setting)} is not a language of the columns")
        if not self.languages:
            self.problem("survey row 1", "no label column (label, label::en or label::English (en))")

    def _default_language_setting(self, columns: list[_Column]) -> str:
        rows = self.sheets.get("settings")
        if not rows or len(rows.rows) < 2:
            return ""
        self.settings_where = f"settings row {rows.rows[1][0]}"
        for column, text in zip(columns, rows.rows[1][1], strict=False):
            if column.key == "default_language":
                return text.strip()
        return ""

    def _rows(self, sheet: str, columns: list[_Column]) -> list[_Row]:
        rows = []
        for number, texts in self.sheets[sheet].rows[1:]:
            cells = {
                column.key: text
                for column, text in zip(columns, texts, strict=False)
                if column.key is not None and text.strip()
            }
            if cells:
                rows.append(_Row(sheet, number, cells))
        return rows

    def _leftovers(self, row: _Row, what: str) -> None:
        """Report every filled cell the translation did not use: nothing is dropped silently."""
        known = {"survey": _SURVEY_COLUMNS, "choices": _CHOICES_COLUMNS, "settings": _SETTINGS_COLUMNS}[row.sheet]
        texts = {"survey": _SURVEY_TEXTS, "choices": _CHOICES_TEXTS, "settings": _SETTINGS_TEXTS}[row.sheet]
        for key in row.cells:
            if key in row.used:
                continue
            base = key.split("::", 1)[0]
            if key in known or (base in texts and "::" in key):
                self.problem(row.where, f"column {_quote(base)} does not apply to {what}")
            elif (row.sheet, key) not in self.reported_columns:
                # An unknown column is reported once, at its first use, not on every row.
                self.reported_columns.add((row.sheet, key))
                self.problem(row.where, f"column {_quote(key)} is not supported")

    # -- cells ----------------------------------------------------------------------------------

    def flag(self, row: _Row, key: str) -> bool | None:
        text = row.get(key)
        if not text:
            return None
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        self.problem(row.where, f"{key}: cannot translate {_quote(text)} (use yes or no)")
        return None

    def integer(self, row: _Row, key: str) -> int | None:
        text = row.get(key)
        if not text:
            return None
        if re.fullmatch(r"-?[0-9]{1,9}", text):
            return int(text)
        self.problem(row.where, f"{key}: {_quote(text)} is not a whole number")
        return None

    def code(self, row: _Row, key: str = "name", what: str = "name") -> str | None:
        text = row.get(key)
        if not text:
            self.problem(row.where, f"{what}: missing")
            return None
        if not _CODE.match(text):
            self.problem(
                row.where,
                f"{what}: {_quote(text)} is not snake_case (a lowercase letter, then lowercase letters, digits or _)",
            )
            return None
        return text

    def word_list(self, row: _Row, key: str) -> list[str] | None:
        text = row.get(key)
        if not text:
            return None
        if text.startswith("["):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                value = None
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return value
            self.problem(row.where, f"{key}: {_quote(text)} is not a JSON array of strings")
            return None
        return [word for word in re.split(r"[\s,]+", text) if word]

    def parameters(self, row: _Row) -> dict[str, str]:
        text = row.get("parameters")
        found: dict[str, str] = {}
        for part in re.split(r"[\s,;]+", text):
            if not part:
                continue
            key, equals, value = part.partition("=")
            if not equals or not key or not value:
                self.problem(row.where, f"parameters: cannot translate {_quote(part)}")
                continue
            found[key.strip().lower()] = value.strip()
        return found

    def appearance(self, row: _Row) -> set[str]:
        # Only likert, multiline, table-list and field-list mean something here; the rest are display hints
        # for ODK apps (minimal, horizontal, ...) that the web form lays out its own way.
        return set(row.get("appearance").lower().split())

    # -- settings, choices, metadata ----------------------------------------------------------------

    def _settings(self, rows: list[_Row]) -> dict[str, Any]:
        definition: dict[str, Any] = {"default_language": self.default}
        definition["languages"] = [{"code": tag, "name": name} for tag, name in self.languages.items()]
        if not rows:
            self.problem("settings", "missing: a settings sheet with form_id (the questionnaire code) and form_title")
            return definition
        row, *others = rows
        for other in others:
            self.problem(other.where, "the settings sheet has one row of values; this row is not read")
        code = self.code(row, "form_id", "form_id")
        if code:
            definition["code"] = code
        row.get("default_language")  # read in _languages
        for ignored in _IGNORED_SETTINGS:
            row.get(ignored)
        title = row.texts("questionnaire_title", self.languages)
        form_title = row.raw("form_title")
        if form_title and form_title.strip():
            if self.default in title and title[self.default].strip() != form_title.strip():
                self.problem(row.where, "form_title and questionnaire_title differ in the default language")
            title.setdefault(self.default, form_title)
        if not title:
            self.problem(row.where, "form_title: missing")
        definition["title"] = title
        for key in ("description", "privacy_note", "neutrality_note"):
            if text := row.texts(key, self.languages):
                definition[key] = text
        end_messages = {}
        for key in ("completed", "screened_out"):
            if text := row.texts(f"end_{key}", self.languages):
                end_messages[key] = text
        if end_messages:
            definition["end_messages"] = end_messages
        self._leftovers(row, "the settings")
        return definition

    def _choices(self, rows: list[_Row]) -> None:
        for row in rows:
            list_name = row.get("list_name")
            if not list_name:
                self.problem(row.where, "list_name: missing")
                row.use_all()
                continue
            code = self.code(row)
            choices = self.lists.setdefault(list_name, [])
            if code and any(choice.code == code for choice in choices):
                self.problem(row.where, f"name: {_quote(code)} appears twice in the list {_quote(list_name)}")
                code = None
            choice = _Choice(
                row,
                code or "",
                row.texts("label", self.languages),
                self.flag(row, "non_substantive"),
                bool(self.flag(row, "exclusive")),
                bool(self.flag(row, "pin_last")),
                self.integer(row, "numeric_value"),
            )
            if code:
                choices.append(choice)
            self._leftovers(row, "a choice")

    def _metadata(self) -> dict[str, Any]:
        sheet = self.sheets.get("metadata")
        if sheet is None or not sheet.rows:
            return {}
        header = [text.strip().lower() for text in sheet.rows[0][1]]
        if "field" not in header or "json" not in header:
            self.problem("metadata row 1", "the metadata sheet needs the columns field and json")
            return {}
        found: dict[str, Any] = {}
        for number, texts in sheet.rows[1:]:
            cells = dict(zip(header, texts, strict=False))
            name, text = cells.get("field", "").strip(), cells.get("json", "").strip()
            where = f"metadata row {number}"
            if not name and not text:
                continue
            kind = _METADATA_FIELDS.get(name)
            if kind is None:
                self.problem(where, f"field: {_quote(name)} is not one of {', '.join(_METADATA_FIELDS)}")
                continue
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                self.problem(where, f"json: {_quote(text)} is not JSON")
                continue
            if kind is dict:
                if not isinstance(value, dict) or name in found:
                    self.problem(where, f"json: {name} takes one JSON object")
                    continue
                found[name] = value
            elif isinstance(value, list):
                found.setdefault(name, []).extend(value)
            elif isinstance(value, dict):
                found.setdefault(name, []).append(value)
            else:
                self.problem(where, f"json: a {name} item must be a JSON object")
        return found

    # -- survey structure -------------------------------------------------------------------------

    def _tree(self, rows: list[_Row]) -> list[_Item | _Group]:
        """Rows nested by their groups."""
        top: list[_Item | _Group] = []
        stack: list[_Group] = []
        for row in rows:
            children = stack[-1].children if stack else top
            kind, list_name = self._kind(row)
            if kind in ("begin_group", "begin_repeat"):
                if kind == "begin_repeat":
                    self.problem(row.where, "repeats (begin_repeat) are not supported")
                group = _Group(row)
                children.append(group)
                stack.append(group)
            elif kind in ("end_group", "end_repeat"):
                row.use_all()  # an end row may repeat the group's name; it carries nothing else
                if stack:
                    stack.pop()
                else:
                    self.problem(row.where, f"{kind} without a group to end")
            elif kind is not None:
                children.append(_Item(row, kind, list_name))
            else:
                row.use_all()
        for group in stack:
            self.problem(group.row.where, f"group {_quote(group.row.peek('name'))} has no end_group")
        return top

    def _kind(self, row: _Row) -> tuple[str | None, str | None]:
        text = row.get("type")
        if not text:
            self.problem(row.where, "type: missing")
            return None, None
        words = text.split()
        head, rest = words[0].lower(), words[1:]
        if head in ("select", "begin", "end") and rest and rest[0].lower() in ("one", "multiple", "group", "repeat"):
            head, rest = f"{head}_{rest[0].lower()}", rest[1:]
        if head in _CHOICE_TYPES:
            if len(rest) == 1:
                return head, rest[0]
            if len(rest) == 2 and rest[1].lower() == "or_other":
                self.problem(row.where, f"type {_quote(text)}: or_other is not supported (add an 'other' choice)")
            else:
                self.problem(row.where, f"type {_quote(text)}: name exactly one choice list")
            return None, None
        if head in _IGNORED_TYPES and not rest:
            return None, None
        if head in _PRIVATE_TYPES and not rest:
            self.problem(row.where, f"type {_quote(text)}: respondent and device metadata is never collected")
            return None, None
        if head in _PLAIN_TYPES and not rest:
            return head, None
        self.problem(row.where, f"type {_quote(text)} is not supported")
        return None, None

    def _sections(self, top: list[_Item | _Group]) -> list[dict[str, Any]]:
        sections: list[dict[str, Any]] = []
        default: dict[str, Any] | None = None
        for child in top:
            if isinstance(child, _Group) and self._matrix_parts(child) is None:
                default = None
                if section := self._section(child):
                    sections.append(section)
                continue
            if isinstance(child, _Item) and child.kind == "note":
                self.problem(child.row.where, "a note is supported only as the first row of a group")
                child.row.use_all()
                continue
            question = self._question(child, None)
            if question is None:
                continue
            if default is None:
                default = self._default_section(sections)
                sections.append(default)
            default["questions"].append(question)
        return sections

    def _default_section(self, sections: list[dict[str, Any]]) -> dict[str, Any]:
        taken = {section["code"] for section in sections}
        code, number = "main", 1
        while code in taken:
            number += 1
            code = f"main_{number}"
        title = {tag: _DEFAULT_SECTION_TITLE.get(tag, _DEFAULT_SECTION_TITLE["en"]) for tag in self.languages}
        return {"code": code, "title": title, "questions": []}

    def _section(self, group: _Group) -> dict[str, Any] | None:
        row = group.row
        code = self.code(row)
        section: dict[str, Any] = {"code": code, "title": row.texts("label", self.languages)}
        description = row.texts("hint", self.languages)
        children = list(group.children)
        if children and isinstance(children[0], _Item) and children[0].kind == "note":
            note = children.pop(0).row
            if description:
                self.problem(note.where, "the group has a hint already; a second description is not supported")
            description = note.texts("label", self.languages)
            note.get("name")  # a note's name has no place in a section
            self._leftovers(note, "a note")
        if description:
            section["description"] = description
        if self.flag(row, "sensitive"):
            section["sensitive"] = True
        self.appearance(row)
        condition = self.condition(row, "relevant")
        self._leftovers(row, "a group")
        questions = []
        for child in self._flatten(children):
            if isinstance(child, _Item) and child.kind == "note":
                self.problem(child.row.where, "a note is supported only as the first row of a group")
                child.row.use_all()
            elif question := self._question(child, condition):
                questions.append(question)
        if not questions:
            self.problem(row.where, f"group {_quote(row.peek('name'))} has no questions")
        section["questions"] = questions
        return section if code else None

    def _flatten(self, children: list[_Item | _Group]) -> Iterable[_Item | _Group]:
        """The questions of a section; a group inside it must be a matrix (sections do not nest)."""
        for child in children:
            if isinstance(child, _Group) and self._matrix_parts(child) is None:
                self.problem(
                    child.row.where,
                    "a group inside a group is supported only as a matrix "
                    "(table-list or field-list of select_one rows sharing one list)",
                )
                child.row.use_all()
                yield from self._flatten(child.children)
            else:
                yield child

    def _matrix_parts(self, group: _Group) -> tuple[_Row | None, list[_Item]] | None:
        """(leading note, row items) if the group is a matrix, else None."""
        appearance = set(group.row.peek("appearance").lower().split())
        if not appearance & {"table-list", "field-list"}:
            return None
        children = list(group.children)
        note = None
        if children and isinstance(children[0], _Item) and children[0].kind == "note":
            note = children.pop(0).row
        items = []
        for child in children:
            if not isinstance(child, _Item) or child.kind != "select_one":
                return None
            if "label" in child.row.peek("appearance").lower().split():
                continue  # ODK's header row of a table-list shows the choices once; it is no row of its own
            items.append(child)
        if len({item.list_name for item in items}) != 1 or any(self._is_consent(item.row) for item in items):
            return None
        if "table-list" not in appearance and len(items) < 2:
            return None
        return note, items

    # -- questions ----------------------------------------------------------------------------------

    def _is_consent(self, row: _Row) -> bool:
        return row.peek("name") == "consent" or row.peek("consent").lower() in _TRUE

    def _question(self, node: _Item | _Group, inherited: dict[str, Any] | None) -> dict[str, Any] | None:
        if isinstance(node, _Group):
            return self._matrix(node, inherited)
        row = node.row
        code = self.code(row)
        if code and code in self.question_rows:
            self.problem(
                row.where, f"name: {_quote(code)} is used twice (first in survey row {self.question_rows[code]})"
            )
            code = None
        consent = self._is_consent(row)
        row.get("consent")
        question: dict[str, Any] = {"code": code or "", "type": "", "text": row.texts("label", self.languages)}
        if help_text := row.texts("hint", self.languages):
            question["help"] = help_text
        required = self.flag(row, "required")
        if required:
            question["required"] = True
        condition = _both(inherited, self.condition(row, "relevant"))
        if condition:
            question["display_if"] = condition
        if self.flag(row, "demographic"):
            question["demographic"] = True
        for key in ("themes", "informed_by"):
            if (words := self.word_list(row, key)) is not None:
                question[key] = words
        if (excerpt := row.raw("op_ed_excerpt")) is not None:
            question["op_ed_excerpt"] = excerpt
        filled = {
            "select_one": self._select_one,
            "select_multiple": self._select_multiple,
            "rank": self._rank,
            "integer": self._number,
            "decimal": self._number,
            "text": self._text,
            "range": self._rating,
        }[node.kind](node, question)
        if consent and question["type"] != "single_choice":
            self.problem(row.where, "the consent question must be a select_one")
        if filled and code:
            self.question_rows[code] = row.number
            self.known[code] = _Known(question["type"], _condition_codes(question))
            if consent:
                # Declining consent ends the questionnaire, so it can never be skipped.
                question["required"] = True
                question["terminate_if"] = self._terminate_if(row, question)
        self._leftovers(row, f"a {node.kind} row")
        if not filled or not code:
            return None
        if consent:
            if self.consent_row is not None:
                self.problem(row.where, f"a second consent question (the first is {self.consent_row.where})")
            else:
                self.consent, self.consent_row = question, row
            return None
        return question

    def _terminate_if(self, row: _Row, question: dict[str, Any]) -> dict[str, Any] | None:
        if row.peek("terminate_if"):
            return self.condition(row, "terminate_if")
        if "no" in {option["code"] for option in question.get("options", [])}:
            return {"question": question["code"], "operator": "in", "values": ["no"]}
        self.problem(row.where, "consent: no choice named 'no'; say which answer declines in a terminate_if column")
        return None

    def _options(self, row: _Row, list_name: str | None, minimum: int = 2) -> list[_Choice] | None:
        choices = self.lists.get(list_name or "")
        if not choices:
            self.problem(row.where, f"the choice list {_quote(list_name)} is not in the choices sheet")
            return None
        if len(choices) < minimum:
            self.problem(row.where, f"the choice list {_quote(list_name)} needs at least {minimum} choices")
            return None
        return choices

    def _randomize(self, row: _Row, question: dict[str, Any], key: str) -> None:
        parameters = self.parameters(row)
        randomize = self.flag(row, "randomize")
        for name, value in parameters.items():
            if name == "randomize" and value.lower() in _TRUE | _FALSE:
                randomize = randomize or value.lower() in _TRUE
            else:
                self.problem(row.where, f"parameters: {_quote(name + '=' + value)} is not supported")
        if randomize:
            question[key] = True

    def _select_one(self, node: _Item, question: dict[str, Any]) -> bool:
        row, list_name = node.row, node.list_name
        choices = self._options(row, list_name)
        if "likert" in self.appearance(row):
            question["type"] = "likert"
            if choices is None:
                return False
            question["scale"] = self._scale(row, choices, list_name or "")
            return True
        question["type"] = "single_choice"
        if self.flag(row, "ordinal"):
            question["ordinal"] = True
        self._randomize(row, question, "randomize_options")
        if choices is None:
            return False
        question["options"] = [_option(choice) for choice in choices]
        return True

    def _scale(self, row: _Row, choices: list[_Choice], list_name: str) -> dict[str, Any]:
        points, others = [], []
        for choice in choices:
            option = _option(choice)
            if option.get("non_substantive"):
                others.append(option)
                continue
            option.pop("value", None)
            if choice.value is not None and choice.value != len(points) + 1:
                self.problem(
                    choice.row.where,
                    f"numeric_value: a scale's points are valued 1..n in order; expected {len(points) + 1}",
                )
            points.append({**option, "value": len(points) + 1})
        if len(points) < 2:
            self.problem(
                row.where, f"the scale {_quote(list_name)} needs at least 2 choices that are not non-substantive"
            )
        scale: dict[str, Any] = {"code": row.get("scale_code") or list_name, "points": points}
        if others:
            scale["non_substantive"] = others
        return scale

    def _select_multiple(self, node: _Item, question: dict[str, Any]) -> bool:
        row, list_name = node.row, node.list_name
        self.appearance(row)
        question["type"] = "multiple_choice"
        self._randomize(row, question, "randomize_options")
        low, high = self._constraint(row, "count-selected(.)", integer=True)
        self._limit(row, question, "min_choices", low)
        self._limit(row, question, "max_choices", high)
        choices = self._options(row, list_name)
        if choices is None:
            return False
        question["options"] = [_option(choice) for choice in choices]
        return True

    def _rank(self, node: _Item, question: dict[str, Any]) -> bool:
        row, list_name = node.row, node.list_name
        self.appearance(row)
        question["type"] = "ranking"
        self._randomize(row, question, "randomize_options")
        for key in ("min_ranked", "max_ranked"):
            if (value := self.integer(row, key)) is not None:
                question[key] = value
        choices = self._options(row, list_name)
        if choices is None:
            return False
        question["options"] = [_option(choice) for choice in choices]
        return True

    def _number(self, node: _Item, question: dict[str, Any]) -> bool:
        row, integer = node.row, node.kind == "integer"
        self.appearance(row)
        question["type"] = "number"
        if integer:
            question["integer"] = True
        low, high = self._constraint(row, ".", integer=integer)
        if low is not None:
            question["min"] = low
        if high is not None:
            question["max"] = high
        return True

    def _text(self, node: _Item, question: dict[str, Any]) -> bool:
        row = node.row
        question["type"] = "text"
        if "multiline" in self.appearance(row):
            question["multiline"] = True
        low, high = self._constraint(row, "string-length(.)", integer=True)
        if low is not None:
            self.problem(row.where, "constraint: a minimum length is not supported")
        self._limit(row, question, "max_length", high)
        return True

    def _rating(self, node: _Item, question: dict[str, Any]) -> bool:
        row = node.row
        self.appearance(row)
        question["type"] = "rating"
        bounds = {"start": 1, "end": 10, "step": 1}  # XLSForm's defaults for a range
        for name, value in self.parameters(row).items():
            if name not in bounds:
                self.problem(row.where, f"parameters: {_quote(name)} is not supported for a range")
            elif not re.fullmatch(r"-?[0-9]{1,9}", value):
                self.problem(row.where, f"parameters: {name} must be a whole number, not {_quote(value)}")
            else:
                bounds[name] = int(value)
        question["range"] = {"min": bounds["start"], "max": bounds["end"], "step": bounds["step"]}
        anchors = {end: row.texts(f"anchor_{end}", self.languages) for end in ("min", "max")}
        if any(anchors.values()):
            question["anchors"] = anchors
        list_name = row.get("non_substantive_list")
        if list_name:
            choices = self._options(row, list_name, minimum=1)
            if choices is None:
                return False
            # Every answer of this list is non-substantive unless a choice says otherwise.
            question["non_substantive"] = [_option(choice, default_non_substantive=True) for choice in choices]
        return True

    def _limit(self, row: _Row, question: dict[str, Any], key: str, from_constraint: int | float | None) -> None:
        column = self.integer(row, key)
        if column is not None and from_constraint is not None and column != from_constraint:
            self.problem(row.where, f"{key} and the constraint disagree")
        value = column if column is not None else from_constraint
        if value is not None:
            question[key] = value

    def _constraint(self, row: _Row, subject: str, integer: bool) -> tuple[Any, Any]:
        """(low, high) from ``subject >= a and subject <= b``; anything else is reported."""
        text = row.get("constraint")
        if not text:
            return None, None
        low = high = None
        unreadable = f"constraint: cannot translate {_quote(text)}"
        for part in re.split(r"\band\b", text):
            match = re.fullmatch(
                r"\s*\(?\s*(?P<subject>\.|count-selected\(\s*\.\s*\)|string-length\(\s*\.\s*\))"
                r"\s*(?P<op>>=|<=|>|<|=)\s*(?P<number>-?[0-9]{1,12}(?:\.[0-9]{1,12})?)\s*\)?\s*",
                part,
            )
            if not match or re.sub(r"\s", "", match["subject"]) != subject:
                self.problem(row.where, unreadable)
                return None, None
            op, number = match["op"], match["number"]
            value: int | float = float(number) if "." in number else int(number)
            if op in (">", "<"):
                if not integer or not isinstance(value, int):
                    self.problem(row.where, unreadable)
                    return None, None
                value, op = (value + 1, ">=") if op == ">" else (value - 1, "<=")
            if integer and not isinstance(value, int) and subject != ".":
                self.problem(row.where, unreadable)
                return None, None
            if op in (">=", "="):
                if low is not None:
                    self.problem(row.where, unreadable)
                    return None, None
                low = value
            if op in ("<=", "="):
                if high is not None:
                    self.problem(row.where, unreadable)
                    return None, None
                high = value
        return low, high

    def _matrix(self, group: _Group, inherited: dict[str, Any] | None) -> dict[str, Any] | None:
        row = group.row
        parts = self._matrix_parts(group)
        if parts is None:  # the callers only pass matrix groups
            return None
        note, items = parts
        code = self.code(row)
        if code and code in self.question_rows:
            self.problem(
                row.where, f"name: {_quote(code)} is used twice (first in survey row {self.question_rows[code]})"
            )
            code = None
        question: dict[str, Any] = {"code": code or "", "type": "matrix", "text": row.texts("label", self.languages)}
        help_text = row.texts("hint", self.languages)
        if note is not None:
            if help_text:
                self.problem(note.where, "the group has a hint already; a second help text is not supported")
            help_text = note.texts("label", self.languages)
            note.get("name")
            self._leftovers(note, "a note")
        if help_text:
            question["help"] = help_text
        condition = _both(inherited, self.condition(row, "relevant"))
        if condition:
            question["display_if"] = condition
        if self.flag(row, "randomize"):
            question["randomize_rows"] = True
        for key in ("themes", "informed_by"):
            if (words := self.word_list(row, key)) is not None:
                question[key] = words
        if (excerpt := row.raw("op_ed_excerpt")) is not None:
            question["op_ed_excerpt"] = excerpt
        self.appearance(row)
        group_required = self.flag(row, "required")
        choices = self._options(items[0].row, items[0].list_name)
        rows, reverse, required = [], [], []
        for item in items:
            row_code = self.code(item.row)
            rows.append({"code": row_code or "", "label": item.row.texts("label", self.languages)})
            required.append(bool(self.flag(item.row, "required")))
            if self.flag(item.row, "reverse_keyed"):
                reverse.append(row_code)
            item.row.get("appearance")
            self._leftovers(item.row, "a matrix row")
        rows_used = {id(item) for item in items}
        for header in group.children:
            if isinstance(header, _Item) and id(header) not in rows_used and header.row is not note:
                header.row.use_all()
        if any(required) and not all(required):
            self.problem(row.where, "the rows of a matrix are all required or none is")
        if group_required or all(required):
            question["required"] = True
        if reverse:
            question["reverse_keyed_rows"] = reverse
        question["rows"] = rows
        if choices is not None:
            question["scale"] = self._scale(row, choices, items[0].list_name or "")
        self._leftovers(row, "a matrix group")
        if not code or choices is None:
            return None
        self.question_rows[code] = row.number
        self.known[code] = _Known("matrix", None)
        for item in items:
            self.known.setdefault(item.row.peek("name"), _Known("matrix row", None))
        return question

    # -- conditions --------------------------------------------------------------------------------

    def condition(self, row: _Row, key: str) -> dict[str, Any] | None:
        text = row.get(key)
        if not text:
            return None
        try:
            return _ConditionParser(text, self._check_reference).parse()
        except _ConditionError as error:
            self.problem(row.where, f"{key}: {error}")
            return None

    def _check_reference(self, name: str, value: str, equals: bool) -> None:
        known = self.known.get(name)
        if known is None:
            raise _ConditionError(f"{_quote('${' + name + '}')} is not an earlier question")
        if known.codes is None:
            raise _ConditionError(f"a {known.type} ({_quote(name)}) cannot be a condition")
        if equals and known.type == "multiple_choice":
            raise _ConditionError(f"use selected(${{{name}}}, '...') for the select_multiple {_quote(name)}")
        if value not in known.codes:
            raise _ConditionError(f"{_quote(value)} is not a choice of {_quote(name)}")


_SHEET_ORDER = {"workbook": 0, "survey": 1, "choices": 2, "settings": 3, "metadata": 4}


def _problem_order(problem: str) -> tuple[int, int]:
    match = re.match(r"(\w+)(?: row (\d+))?", problem)
    if not match:
        return len(_SHEET_ORDER), 0
    return _SHEET_ORDER.get(match[1], len(_SHEET_ORDER)), int(match[2] or 0)


def _option(choice: _Choice, default_non_substantive: bool = False) -> dict[str, Any]:
    option: dict[str, Any] = {"code": choice.code, "label": choice.label}
    non_substantive = choice.non_substantive
    if non_substantive is None:
        non_substantive = default_non_substantive or choice.code in NON_SUBSTANTIVE_NAMES
    if non_substantive:
        option["non_substantive"] = True
    if choice.exclusive:
        option["exclusive"] = True
    if choice.pin_last:
        option["pin_last"] = True
    if choice.value is not None:
        option["value"] = choice.value
    return option


def _condition_codes(question: dict[str, Any]) -> frozenset[str] | None:
    if question["type"] in ("single_choice", "multiple_choice"):
        return frozenset(option["code"] for option in question.get("options", []))
    if question["type"] == "likert":
        scale = question.get("scale", {})
        return frozenset(o["code"] for o in [*scale.get("points", []), *scale.get("non_substantive", [])])
    return None


def _both(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    if first is None or second is None:
        return first or second
    return {"all": [first, second]}


# -- relevant expressions ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | \$\{(?P<ref>[^{}]*)\}
      | '(?P<single>[^']*)'
      | "(?P<double>[^"]*)"
      | (?P<op>!=|=)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z][A-Za-z0-9_-]*)""",
    re.VERBOSE,
)


class _ConditionParser:
    """A recursive-descent reader of the ``relevant`` forms listed in the module docstring.

    Each parsed part is ``(condition, grouped)``: ``grouped`` marks a parenthesised part, which is never merged
    with its neighbours, so that ``(${q} = 'a') or (${q} = 'b')`` stays two conditions while
    ``${q} = 'a' or ${q} = 'b'`` becomes one ``in`` condition.
    """

    def __init__(self, text: str, check: Callable[[str, str, bool], None]) -> None:
        self.text = text
        self.check = check
        self.position = 0
        self.depth = 0
        self.tokens: list[tuple[str, str]] = []
        if len(text) > MAX_EXPRESSION:
            raise self.unreadable()
        offset = 0
        while offset < len(text):
            match = _TOKEN.match(text, offset)
            if not match:
                raise self.unreadable()
            offset = match.end()
            kind = match.lastgroup or ""
            if kind == "space":
                continue
            if kind in ("single", "double"):
                self.tokens.append(("string", match[kind]))
            else:
                self.tokens.append((kind, match[kind]))

    def unreadable(self) -> _ConditionError:
        return _ConditionError(f"cannot translate {_quote(self.text)} {_RELEVANT_HELP}")

    def parse(self) -> dict[str, Any]:
        condition, _grouped = self._any()
        if self.position != len(self.tokens):
            raise self.unreadable()
        return condition

    def _peek(self, kind: str, value: str | None = None) -> bool:
        if self.position >= len(self.tokens):
            return False
        token_kind, token_value = self.tokens[self.position]
        return token_kind == kind and (value is None or token_value == value)

    def _accept(self, kind: str, value: str | None = None) -> str | None:
        if self._peek(kind, value):
            self.position += 1
            return self.tokens[self.position - 1][1]
        return None

    def _expect(self, kind: str, value: str | None = None) -> str:
        found = self._accept(kind, value)
        if found is None:
            raise self.unreadable()
        return found

    def _any(self) -> tuple[dict[str, Any], bool]:
        parts = [self._all()]
        while self._accept("word", "or"):
            parts.append(self._all())
        return _combine("any", parts)

    def _all(self) -> tuple[dict[str, Any], bool]:
        parts = [self._unary()]
        while self._accept("word", "and"):
            parts.append(self._unary())
        return _combine("all", parts)

    def _unary(self) -> tuple[dict[str, Any], bool]:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.unreadable()
        try:
            if self._accept("word", "not"):
                self._expect("punct", "(")
                inner, _grouped = self._any()
                self._expect("punct", ")")
                negated = _negate(inner)
                return negated, "question" not in negated
            if self._accept("punct", "("):
                inner, _grouped = self._any()
                self._expect("punct", ")")
                return inner, True
            if self._accept("word", "selected"):
                self._expect("punct", "(")
                name = self._expect("ref")
                self._expect("punct", ",")
                value = self._expect("string")
                self._expect("punct", ")")
                return self._leaf(name, "=", value, equals=False), False
            if self._peek("ref"):
                name = self._expect("ref")
                op = self._expect("op")
                return self._leaf(name, op, self._expect("string"), equals=True), False
            if self._peek("string"):
                value = self._expect("string")
                op = self._expect("op")
                return self._leaf(self._expect("ref"), op, value, equals=True), False
            raise self.unreadable()
        finally:
            self.depth -= 1

    def _leaf(self, name: str, op: str, value: str, equals: bool) -> dict[str, Any]:
        name = name.strip()
        self.check(name, value, equals)
        return {"question": name, "operator": "in" if op == "=" else "not_in", "values": [value]}


def _combine(kind: str, parts: list[tuple[dict[str, Any], bool]]) -> tuple[dict[str, Any], bool]:
    """Join parts with and/or; ungrouped tests of one question merge (``=`` under or, ``!=`` under and)."""
    if len(parts) == 1:
        return parts[0]
    mergeable = "in" if kind == "any" else "not_in"
    joined: list[dict[str, Any]] = []
    merged_at: dict[str, int] = {}
    for condition, grouped in parts:
        if not grouped and condition.get("operator") == mergeable:
            question = condition["question"]
            if question in merged_at:
                values = joined[merged_at[question]]["values"]
                values.extend(v for v in condition["values"] if v not in values)
                continue
            merged_at[question] = len(joined)
            condition = {**condition, "values": list(condition["values"])}
        joined.append(condition)
    if len(joined) == 1:
        return joined[0], False
    return {kind: joined}, False


def _negate(condition: dict[str, Any]) -> dict[str, Any]:
    if "all" in condition:
        return {"any": [_negate(part) for part in condition["all"]]}
    if "any" in condition:
        return {"all": [_negate(part) for part in condition["any"]]}
    return {**condition, "operator": "not_in" if condition["operator"] == "in" else "in"}


def _expression(condition: dict[str, Any], types: dict[str, str]) -> str:
    """A condition as an XLSForm expression that :class:`_ConditionParser` reads back to the same condition."""
    for kind, joiner in (("all", " and "), ("any", " or ")):
        if kind in condition:
            # Every part in parentheses, so that parts on the same question are not merged on reading.
            return joiner.join(f"({_expression(part, types)})" for part in condition[kind])
    question, values = condition["question"], condition["values"]
    positive = condition["operator"] == "in"
    if types.get(question) == "multiple_choice":
        tests = [f"selected(${{{question}}}, '{v}')" for v in values]
        tests = tests if positive else [f"not({test})" for test in tests]
    else:
        tests = [f"${{{question}}} {'=' if positive else '!='} '{v}'" for v in values]
    return (" or " if positive else " and ").join(tests)


# -- export -----------------------------------------------------------------------------------------


def _yes(value: Any) -> str:
    return "yes" if value else ""


def _number_text(value: float | int) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _words(values: list[str]) -> str:
    if values and all(re.fullmatch(r"[^\s,\[]+", value) for value in values):
        return " ".join(values)
    return json.dumps(values, ensure_ascii=False)


class _Exporter:
    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        self.languages = [
            (language["code"], f"{language['name']} ({language['code']})") for language in definition["languages"]
        ]
        self.types = {question["code"]: question["type"] for _section, question in iter_questions(definition)}
        self.survey: list[dict[str, str]] = []
        self.choices: list[dict[str, str]] = []
        self.lists: dict[str, str] = {}  # the content of a list → its name, so identical lists are shared
        self.names: set[str] = set(self.types) | {section["code"] for section in definition["sections"]}

    def texts(self, base: str, value: dict[str, str] | None) -> dict[str, str]:
        value = value or {}
        return {f"{base}::{header}": value[tag] for tag, header in self.languages if tag in value}

    def unique(self, preferred: str, taken: set[str]) -> str:
        name, number = preferred, 1
        while name in taken:
            number += 1
            name = f"{preferred}_{number}"
        taken.add(name)
        return name

    def choice_list(
        self, preferred: str, options: list[dict[str, Any]], scale: bool = False, explicit: bool = False
    ) -> str:
        """The name of a choices list holding ``options``; identical lists are written once and shared."""
        rows = []
        for option in options:
            row = {"name": option["code"], **self.texts("label", option["label"])}
            non_substantive = option.get("non_substantive", False)
            # Write the flag whenever the name alone would suggest otherwise, so the import sees it as it was.
            if non_substantive or explicit or option["code"] in NON_SUBSTANTIVE_NAMES:
                row["non_substantive"] = "yes" if non_substantive else "no"
            row["exclusive"] = _yes(option.get("exclusive"))
            row["pin_last"] = _yes(option.get("pin_last"))
            if option.get("value") is not None and not scale:
                row["numeric_value"] = str(option["value"])
            rows.append(row)
        content = json.dumps(rows, sort_keys=True, ensure_ascii=False)
        if content not in self.lists:
            self.lists[content] = self.unique(preferred, set(self.lists.values()))
            self.choices.extend({"list_name": self.lists[content], **row} for row in rows)
        return self.lists[content]

    def common(self, question: dict[str, Any]) -> dict[str, str]:
        row = {
            "name": question["code"],
            **self.texts("label", question["text"]),
            **self.texts("hint", question.get("help")),
            "required": _yes(question.get("required")),
            "demographic": _yes(question.get("demographic")),
        }
        if question.get("display_if"):
            row["relevant"] = _expression(question["display_if"], self.types)
        for key in ("themes", "informed_by"):
            if question.get(key) is not None:
                row[key] = _words(question[key])
        if question.get("op_ed_excerpt") is not None:
            row["op_ed_excerpt"] = question["op_ed_excerpt"]
        return row

    def question(self, question: dict[str, Any]) -> None:
        kind = question["type"]
        if kind == "matrix":
            self.matrix(question)
            return
        row = self.common(question)
        if kind in ("single_choice", "multiple_choice", "ranking"):
            name = self.choice_list(question["code"], question["options"])
            row["type"] = f"{_XLSFORM_CHOICE_TYPES[kind]} {name}"
            row["randomize"] = _yes(question.get("randomize_options"))
            row["ordinal"] = _yes(question.get("ordinal"))
        if kind == "multiple_choice":
            bounds = []
            if question.get("min_choices"):
                bounds.append(f"count-selected(.) >= {question['min_choices']}")
            if question.get("max_choices") is not None:
                bounds.append(f"count-selected(.) <= {question['max_choices']}")
            row["constraint"] = " and ".join(bounds)
        elif kind == "ranking":
            if question.get("min_ranked", 1) != 1:
                row["min_ranked"] = str(question["min_ranked"])
            if question.get("max_ranked") is not None:
                row["max_ranked"] = str(question["max_ranked"])
        elif kind == "likert":
            scale = question["scale"]
            name = self.scale_list(question)
            row.update({"type": f"select_one {name}", "appearance": "likert", "scale_code": scale.get("code") or name})
        elif kind == "rating":
            span = question["range"]
            row["type"] = "range"
            row["parameters"] = f"start={span['min']} end={span['max']} step={span['step']}"
            anchors = question.get("anchors") or {}
            row.update(self.texts("anchor_min", anchors.get("min")))
            row.update(self.texts("anchor_max", anchors.get("max")))
            if question.get("non_substantive"):
                row["non_substantive_list"] = self.choice_list(
                    f"{question['code']}_other", question["non_substantive"], explicit=True
                )
        elif kind == "number":
            row["type"] = "integer" if question.get("integer") else "decimal"
            bounds = []
            if question.get("min") is not None:
                bounds.append(f". >= {_number_text(question['min'])}")
            if question.get("max") is not None:
                bounds.append(f". <= {_number_text(question['max'])}")
            row["constraint"] = " and ".join(bounds)
        elif kind == "text":
            row["type"] = "text"
            row["appearance"] = "multiline" if question.get("multiline") else ""
            row["constraint"] = f"string-length(.) <= {question['max_length']}"
        self.survey.append(row)

    def scale_list(self, question: dict[str, Any]) -> str:
        scale = question["scale"]
        options = [*scale["points"], *({**o, "non_substantive": True} for o in scale.get("non_substantive", []))]
        return self.choice_list(scale.get("code") or question["code"], options, scale=True)

    def matrix(self, question: dict[str, Any]) -> None:
        row = self.common(question)
        name = self.scale_list(question)
        row.update(
            {
                "type": "begin_group",
                "appearance": "table-list",
                "randomize": _yes(question.get("randomize_rows")),
                "scale_code": question["scale"].get("code") or name,
                "required": "",  # carried by every row, as ODK expects
            }
        )
        self.survey.append(row)
        reverse = set(question.get("reverse_keyed_rows") or [])
        for item in question["rows"]:
            self.survey.append(
                {
                    "type": f"select_one {name}",
                    "name": item["code"],
                    **self.texts("label", item["label"]),
                    "required": _yes(question.get("required")),
                    "reverse_keyed": _yes(item["code"] in reverse),
                }
            )
        self.survey.append({"type": "end_group", "name": question["code"]})

    def consent(self, question: dict[str, Any]) -> None:
        self.question(question)
        row = self.survey[-1]
        row["consent"] = "yes"
        row["required"] = "yes"
        row["terminate_if"] = _expression(question["terminate_if"], self.types)

    def build(self) -> bytes:
        definition = self.definition
        if definition.get("consent"):
            self.consent(definition["consent"])
        for section in definition["sections"]:
            self.survey.append(
                {
                    "type": "begin_group",
                    "name": section["code"],
                    **self.texts("label", section["title"]),
                    "sensitive": _yes(section.get("sensitive")),
                }
            )
            if section.get("description"):
                note = self.unique(f"{section['code']}_intro", self.names)
                self.survey.append({"type": "note", "name": note, **self.texts("label", section["description"])})
            for question in section["questions"]:
                self.question(question)
            self.survey.append({"type": "end_group", "name": section["code"]})
        output = io.BytesIO()
        # Every cell is written with write_string; the options also stop XlsxWriter from ever turning text
        # into a formula, a number or a link should another write method be used.
        workbook = xlsxwriter.Workbook(
            output,
            {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False},
        )
        bold = workbook.add_format({"bold": True})
        texts = ("label", "hint", "anchor_min", "anchor_max")
        survey_columns = ["type", "name", *self.text_columns(texts[:2]), "required", "relevant", "constraint"]
        survey_columns += ["appearance", "parameters", "consent", "terminate_if", "demographic", "ordinal"]
        survey_columns += ["randomize", "min_ranked", "max_ranked", "scale_code", *self.text_columns(texts[2:])]
        survey_columns += ["non_substantive_list", "reverse_keyed", "sensitive", "themes", "informed_by"]
        survey_columns += ["op_ed_excerpt"]
        self.sheet(workbook, bold, "survey", survey_columns, self.survey, always=self.text_columns(["label"]))
        choice_columns = ["list_name", "name", *self.text_columns(["label"]), "non_substantive", "exclusive"]
        choice_columns += ["pin_last", "numeric_value"]
        self.sheet(workbook, bold, "choices", choice_columns, self.choices)
        settings = self.settings()
        self.sheet(workbook, bold, "settings", list(settings), [settings])
        metadata = self.metadata()
        if metadata:
            self.sheet(workbook, bold, "metadata", ["field", "json"], metadata)
        workbook.close()
        return output.getvalue()

    def text_columns(self, bases: Iterable[str]) -> list[str]:
        return [f"{base}::{header}" for base in bases for _tag, header in self.languages]

    def settings(self) -> dict[str, str]:
        definition = self.definition
        default = definition["default_language"]
        settings = {
            "form_id": definition["code"],
            "form_title": definition["title"].get(default, ""),
            "default_language": dict(self.languages)[default],
            **self.texts("questionnaire_title", definition["title"]),
        }
        for key in ("description", "privacy_note", "neutrality_note"):
            settings.update(self.texts(key, definition.get(key)))
        for key, value in (definition.get("end_messages") or {}).items():
            settings.update(self.texts(f"end_{key}", value))
        return {key: value for key, value in settings.items() if value}

    def metadata(self) -> list[dict[str, str]]:
        rows = []
        for key, kind in _METADATA_FIELDS.items():
            value = self.definition.get(key)
            if value is None:
                continue
            if kind is dict or not value:
                rows.append({"field": key, "json": json.dumps(value, ensure_ascii=False)})
            else:
                rows.extend({"field": key, "json": json.dumps(item, ensure_ascii=False)} for item in value)
        return rows

    def sheet(
        self,
        workbook: Any,
        bold: Any,
        name: str,
        columns: list[str],
        rows: list[dict[str, str]],
        always: Iterable[str] = (),
    ) -> None:
        keep = set(always) | {key for row in rows for key, value in row.items() if value}
        columns = [column for column in columns if column in keep]
        columns += sorted(keep - set(columns))  # none expected: every filled column has its place above
        worksheet = workbook.add_worksheet(name)
        worksheet.freeze_panes(1, 0)
        for index, column in enumerate(columns):
            worksheet.write_string(0, index, column, bold)
        for number, row in enumerate(rows, start=1):
            for index, column in enumerate(columns):
                value = row.get(column)
                if not value:
                    continue
                if len(value) > CELL_MAX:
                    raise _fail([f"{name} row {number + 1}: {column}: longer than a spreadsheet cell holds"])
                worksheet.write_string(number, index, value)
