"""The export dataset: columns derived from a questionnaire's published versions, and one row per
response streamed from the database.

:func:`build_dataset` returns a :class:`Dataset`: its :attr:`~Dataset.columns` describe every column
(name, type, labels in each language of the definition, categories with their numeric codes and
which codes are non-substantive), and :meth:`~Dataset.rows` yields one tuple per response. Writers
(``survey.exports.writers``) take a dataset and a binary file.

How the rows are made (research/perf-ceilings.md §7 and §9 "Export"):

- **The database pivots.** One ``SELECT … GROUP BY response`` with one ``max(…) FILTER (WHERE
  question_id IN (…) …)`` aggregate per column value turns the normalised ``answers`` rows into one row
  per response, in SQLAlchemy Core (never ORM entities). PostgreSQL runs it as a GroupAggregate over
  the primary-key join; SQLite (≥ 3.30 has ``FILTER``) walks the same indexes.
- **Streamed.** The statement runs with ``yield_per`` (a server-side cursor on PostgreSQL), so the
  process holds one batch of rows, whatever the number of responses. Nothing calls ``fetchall``.
- **A Python pivot as the fallback** (``pivot="python"``, or automatically for questionnaires whose
  columns exceed what one SELECT may carry): the answer rows, streamed in response order, grouped
  with ``itertools.groupby`` and evaluated with the same probes; memory stays one response deep.
- **Order reveals nothing.** Rows come ordered by the response's random UUID primary key, never by
  arrival (promise P2); ``order="shuffled"`` (partner exports) orders them by a keyed hash of the
  id with a key made for the one export, so that two exports cannot be lined up row by row.
- **Versions export together.** Columns are the union over the chosen versions, matched by question
  code and type; a cell is empty where a version did not ask the question (or offer the option, the
  matrix row or the rank). Labels come from the newest version that has them; earlier labels are kept
  in :attr:`Column.label_history` for the codebook (promise R11).

Privacy in the rows (DESIGN §6, disclosure-control.md): the day only (``date_precision="month"``
for partner exports), no response id, and free text scrubbed of PII (:mod:`survey.exports.scrub`)
unless the caller asks for ``free_text="raw"``; ``free_text="drop"`` leaves text columns out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any

from sqlalchemy import Select, String, case, cast, func, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from survey.db import db
from survey.errors import ExportOptionsInvalidError
from survey.exports.columns import CategoryTemplate, ColumnTemplate, Probe, export_columns, word
from survey.exports.scrub import scrub_text
from survey.questionnaires.definition import iter_questions
from survey.questionnaires.models import Option, Question, QuestionItem, Questionnaire, QuestionnaireVersion
from survey.questionnaires.services import get_questionnaire
from survey.responses.models import CHANNELS, Answer, Response

META_COLUMNS = ("version", "language", "channel", "day")
DATE_PRECISIONS = ("day", "month")
FREE_TEXT_MODES = ("scrub", "raw", "drop")
PIVOTS = ("auto", "sql", "python")
ORDERS = ("id", "shuffled")

# PostgreSQL allows 1,664 entries in a select list; leave room for the response columns.
SQL_PIVOT_MAX_VALUES = 1500


# -- public description of a dataset ------------------------------------------------------------


@dataclass(frozen=True)
class Category:
    """A value of a categorical column.

    ``value`` is what text formats hold (an option code, or 0/1); ``code`` the number that SPSS and
    Stata hold. ``missing`` marks non-substantive codes ("don't know"), which statistical formats
    declare as user-missing. ``anchor`` marks a label of one number of a rating scale, which is a
    value label but not a category.
    """

    value: str | int
    labels: Mapping[str, str]
    code: int
    missing: bool = False
    anchor: bool = False
    versions: tuple[int, ...] = ()
    label_history: tuple[tuple[tuple[int, ...], Mapping[str, str]], ...] = ()

    def label(self, language: str) -> str:
        return _pick(self.labels, language)


@dataclass(frozen=True)
class Column:
    """One column of the dataset.

    ``kind`` is ``meta`` (version, language, channel, day/month) or the question kind (``choice``,
    ``flag``, ``rank``, ``rating``, ``number``, ``text``); ``type`` the value type (``string``,
    ``integer``, ``number``, ``date``, ``yearmonth``). A ``rating`` column is ``integer`` and holds a
    non-substantive code as a string where the respondent gave one.
    """

    name: str
    kind: str
    type: str
    labels: Mapping[str, str]
    question: str | None = None
    question_type: str | None = None
    section: str | None = None
    demographic: bool = False
    categories: tuple[Category, ...] = ()
    ordered: bool = False
    minimum: float | None = None
    maximum: float | None = None
    versions: tuple[int, ...] = ()
    label_history: tuple[tuple[tuple[int, ...], Mapping[str, str]], ...] = ()
    part_labels: Mapping[str, str] | None = None  # the option, matrix row or rank of a sub-column
    question_labels: Mapping[str, str] | None = None  # the question's text

    def label(self, language: str) -> str:
        return _pick(self.labels, language)

    def short_label(self, language: str) -> str:
        """The sub-column's own part first ("Option — Question"), for formats that cut labels short."""
        if self.part_labels is None or self.question_labels is None:
            return self.label(language)
        return f"{_pick(self.part_labels, language)} — {_pick(self.question_labels, language)}"

    @property
    def categorical(self) -> bool:
        """Cells are category values (codes or 0/1), not free numbers, text or dates."""
        return self.kind in ("choice", "flag", "rank") or (self.kind == "meta" and bool(self.categories))

    @property
    def value_categories(self) -> tuple[Category, ...]:
        """Substantive categories (neither non-substantive nor rating anchors)."""
        return tuple(c for c in self.categories if not c.missing and not c.anchor)

    @property
    def missing_categories(self) -> tuple[Category, ...]:
        return tuple(c for c in self.categories if c.missing)

    def category(self, value: Any) -> Category | None:
        for category in self.categories:
            if category.value == value and not category.anchor:
                return category
        return None


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how much detail to keep.

    ``versions``: the published version numbers to include (default: every published version).
    ``language``: the language of labels (default: the questionnaire's default language).
    ``date_precision``: ``day`` (staff) or ``month`` (partners). ``free_text``: ``scrub`` (default),
    ``raw`` (only when the caller explicitly needs the text as written) or ``drop``.
    ``pivot``: ``auto`` (SQL unless the questionnaire is too wide for one SELECT), ``sql`` or
    ``python``. ``batch_size``: rows fetched per round trip. ``order``: ``id`` (by the random UUID:
    reveals nothing about arrival, and the database streams without sorting) or ``shuffled`` (by a
    keyed hash of the id with a key made for this export and then forgotten, so that two exports
    cannot be lined up row by row; partner exports use it, at the cost of a sort in the database).
    """

    versions: tuple[int, ...] | None = None
    language: str | None = None
    date_precision: str = "day"
    free_text: str = "scrub"
    pivot: str = "auto"
    batch_size: int = 1000
    order: str = "id"

    def checked(self) -> ExportOptions:
        problems: dict[str, list[str]] = {}
        if self.date_precision not in DATE_PRECISIONS:
            problems["date_precision"] = [f"Must be one of: {', '.join(DATE_PRECISIONS)}."]
        if self.free_text not in FREE_TEXT_MODES:
            problems["free_text"] = [f"Must be one of: {', '.join(FREE_TEXT_MODES)}."]
        if self.pivot not in PIVOTS:
            problems["pivot"] = [f"Must be one of: {', '.join(PIVOTS)}."]
        if self.order not in ORDERS:
            problems["order"] = [f"Must be one of: {', '.join(ORDERS)}."]
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            problems["batch_size"] = ["Must be a positive integer."]
        if problems:
            raise ExportOptionsInvalidError("The export options are invalid.", problems)
        return self


@dataclass(frozen=True)
class VersionInfo:
    number: int
    id: int
    definition: Mapping[str, Any]
    checksum: str
    published_on: dt.date | None


@dataclass
class ClassProfile:
    """Rows grouped by a combination of values of some columns (``names``), each group with what it
    answered to other categorical columns (``items``): enough for k-anonymity and l-diversity
    without holding rows.

    ``counts``: rows per combination. ``values``: per combination, one set per item of the distinct
    values given (missing answers are not values). ``answered``: per combination, one count per item
    of the rows that answered it.
    """

    names: tuple[str, ...]
    items: tuple[str, ...]
    counts: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    values: dict[tuple[Any, ...], tuple[set[Any], ...]] = field(default_factory=dict)
    answered: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)

    def add(self, combo: tuple[Any, ...], rows: int, values: Sequence[Iterable[Any]], answered: Sequence[int]) -> None:
        """Merge ``rows`` rows of ``combo`` with these values and answer counts (one per item)."""
        self.counts[combo] += rows
        if not self.items:
            return
        if combo not in self.values:
            self.values[combo] = tuple(set() for _ in self.items)
            self.answered[combo] = [0] * len(self.items)
        known, counted = self.values[combo], self.answered[combo]
        for index, (found, answers) in enumerate(zip(values, answered, strict=True)):
            known[index].update(found)
            counted[index] += answers


@dataclass
class Dataset:
    """Column specs and a re-iterable row source (every call to :meth:`rows` runs the query anew)."""

    questionnaire: str
    title: Mapping[str, str]
    language: str
    languages: tuple[str, ...]
    versions: tuple[VersionInfo, ...]
    columns: tuple[Column, ...]
    options: ExportOptions
    privacy: dict[str, Any]
    _rows: Callable[[], Iterator[tuple[Any, ...]]] = field(repr=False)
    _count: Callable[[], int] = field(repr=False)
    _profile_by: Callable[[Sequence[str], Sequence[str]], ClassProfile] | None = field(default=None, repr=False)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """One tuple per response, aligned with :attr:`columns`, streamed."""
        return self._rows()

    def count(self) -> int:
        """The number of responses the rows come from (one query; no rows are read)."""
        return self._count()

    def count_by(self, names: Sequence[str]) -> Counter[tuple[Any, ...]]:
        """How many rows have each combination of values of the named columns (grouped in SQL)."""
        return self.profile_by(names).counts

    def profile_by(self, names: Sequence[str], items: Sequence[str] = ()) -> ClassProfile:
        """Rows per combination of values of ``names`` and, per combination, the distinct values and
        the number of answers of each of the categorical columns ``items`` (grouped in SQL)."""
        if self._profile_by is None:
            raise NotImplementedError("this dataset cannot count combinations")
        return self._profile_by(names, items)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def title_in(self, language: str) -> str:
        return _pick(self.title, language)

    def derived(
        self,
        columns: Sequence[Column],
        transform: Callable[[tuple[Any, ...]], tuple[Any, ...]],
        privacy: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """A dataset whose rows are this one's rows passed through ``transform`` (still streamed)."""
        source = self._rows
        return replace(
            self,
            columns=tuple(columns),
            privacy={**self.privacy, **(privacy or {})},
            _rows=lambda: (transform(row) for row in source()),
            _profile_by=None,
        )


def _pick(labels: Mapping[str, str], language: str) -> str:
    if language in labels:
        return labels[language]
    if "en" in labels:
        return labels["en"]
    return next(iter(labels.values()), "")


# -- building ---------------------------------------------------------------------------------


def build_dataset(code: str, options: ExportOptions | None = None) -> Dataset:
    """The dataset of questionnaire ``code``: every response to the chosen published versions."""
    options = (options or ExportOptions()).checked()
    questionnaire = get_questionnaire(code)
    connection = db.session.connection()
    versions = _chosen_versions(connection, questionnaire, options.versions)
    languages = _languages(versions)
    language = options.language or questionnaire.default_language
    if language not in languages:
        raise ExportOptionsInvalidError(
            "The questionnaire has no labels in that language.",
            {"language": [f"Must be one of: {', '.join(languages)}."]},
        )
    ids = _IdCatalog.load(connection, [v.id for v in versions])
    planned = _plan(versions, ids, options, languages)
    source = _Source(questionnaire.id, [v.id for v in versions], planned, options)
    newest = versions[-1].definition
    privacy = {
        "date_precision": options.date_precision,
        "free_text": options.free_text,
        "row_order": (
            "random (ordered by the random UUID of each response, not by arrival)"
            if options.order == "id"
            else "shuffled for this export (by a keyed hash of each response's id; the key was not kept)"
        ),
        "identifiers": "none (no response id, IP address, user agent, cookie or time of day is stored or exported)",
    }
    return Dataset(
        questionnaire=questionnaire.code,
        title=newest["title"],
        language=language,
        languages=tuple(languages),
        versions=tuple(versions),
        columns=tuple(p.column for p in planned),
        options=options,
        privacy=privacy,
        _rows=source.rows,
        _count=source.count,
        _profile_by=source.profile_by,
    )


def _chosen_versions(
    connection: Connection, questionnaire: Questionnaire, numbers: Iterable[int] | None
) -> list[VersionInfo]:
    v = QuestionnaireVersion.__table__
    rows = connection.execute(
        select(v.c.id, v.c.number, v.c.definition, v.c.checksum, v.c.published_on)
        .where(v.c.questionnaire_id == questionnaire.id, v.c.published_on.is_not(None))
        .order_by(v.c.number)
    ).all()  # a handful of versions, not responses
    published = {
        row.number: VersionInfo(row.number, row.id, row.definition, row.checksum, row.published_on) for row in rows
    }
    if numbers is None:
        chosen = list(published.values())
    else:
        wanted = sorted(set(numbers))
        unknown = [n for n in wanted if n not in published]
        if unknown:
            raise ExportOptionsInvalidError(
                "Only published versions can be exported.",
                {"versions": [f"Version {n} is not a published version of {questionnaire.code!r}." for n in unknown]},
            )
        chosen = [published[n] for n in wanted]
    if not chosen:
        raise ExportOptionsInvalidError(
            "The questionnaire has no published version.", {"versions": ["Nothing was published yet."]}
        )
    return chosen


def _languages(versions: Sequence[VersionInfo]) -> list[str]:
    """Languages of every chosen version, the newest version's order first."""
    result: list[str] = []
    for version in reversed(versions):
        for language in version.definition["languages"]:
            if language["code"] not in result:
                result.append(language["code"])
    return result


@dataclass
class _IdCatalog:
    """Database ids of the chosen versions' questions, options and matrix rows (small tables)."""

    questions: dict[tuple[int, str, str], int]  # (version id, code, type) -> question id
    options: dict[tuple[int, str], int]  # (question id, code) -> option id
    items: dict[tuple[int, str], int]  # (question id, code) -> item id
    option_codes: dict[int, str]  # option id -> code

    @classmethod
    def load(cls, connection: Connection, version_ids: list[int]) -> _IdCatalog:
        q, o, i = Question.__table__, Option.__table__, QuestionItem.__table__
        questions = {
            (row.version_id, row.code, row.type): row.id
            for row in connection.execute(
                select(q.c.id, q.c.version_id, q.c.code, q.c.type).where(q.c.version_id.in_(version_ids))
            )
        }
        options: dict[tuple[int, str], int] = {}
        codes: dict[int, str] = {}
        for row in connection.execute(
            select(o.c.id, o.c.question_id, o.c.code)
            .join(q, q.c.id == o.c.question_id)
            .where(q.c.version_id.in_(version_ids))
        ):
            options[(row.question_id, row.code)] = row.id
            codes[row.id] = row.code
        items = {
            (row.question_id, row.code): row.id
            for row in connection.execute(
                select(i.c.id, i.c.question_id, i.c.code)
                .join(q, q.c.id == i.c.question_id)
                .where(q.c.version_id.in_(version_ids))
            )
        }
        return cls(questions, options, items, codes)


@dataclass(frozen=True)
class _ResolvedProbe:
    """A probe with database ids: it renders as one SQL aggregate and evaluates the same in Python."""

    kind: str
    question_ids: tuple[int, ...]
    item_ids: tuple[int, ...] | None = None
    rank: int | None = None
    option_ids: tuple[int, ...] | None = None

    def sql(self) -> ColumnElement[Any]:
        a = Answer.__table__
        condition = a.c.question_id.in_(self.question_ids)
        if self.item_ids is not None:
            condition = condition & a.c.item_id.in_(self.item_ids)
        if self.rank is not None:
            condition = condition & (a.c.rank == self.rank)
        if self.kind == "option":
            value: ColumnElement[Any] = a.c.option_id
        elif self.kind == "flag":
            value = case((a.c.option_id.in_(self.option_ids or ()), 1), else_=0)
        elif self.kind == "number":
            value = a.c.number
        else:
            value = a.c.text
        return func.max(value).filter(condition)

    def evaluate(self, by_question: Mapping[int, list[Any]]) -> Any:
        found = None
        for question_id in self.question_ids:
            for row in by_question.get(question_id, ()):
                if self.item_ids is not None and row.item_id not in self.item_ids:
                    continue
                if self.rank is not None and row.rank != self.rank:
                    continue
                if self.kind == "option":
                    value = row.option_id
                elif self.kind == "flag":
                    value = 1 if row.option_id in (self.option_ids or ()) else 0
                elif self.kind == "number":
                    value = row.number
                else:
                    value = row.text
                if value is not None and (found is None or value > found):
                    found = value
        return found


@dataclass
class _Planned:
    """A column, the raw pivot values that fill it (indexes into the pivot's row) and their conversion."""

    column: Column
    raw: tuple[int, ...]
    convert: Callable[[Sequence[Any]], Any]
    probes: tuple[_ResolvedProbe, ...] = ()


# The pivot's raw row starts with these response columns; probe values follow.
_RAW_VERSION, _RAW_LANGUAGE, _RAW_CHANNEL, _RAW_DAY = 0, 1, 2, 3
_RAW_PROBES = 4


@dataclass
class _Merged:
    """One column key, (question code, type, suffix), over the versions that have it."""

    code: str
    qtype: str
    suffix: str | None
    section: str
    demographic: bool
    text: Mapping[str, str]  # the question's text in the newest version that has it
    by_version: dict[int, ColumnTemplate] = field(default_factory=dict)  # version number -> template


_QuestionKey = tuple[str, str]  # (code, type)


def _plan(
    versions: Sequence[VersionInfo], ids: _IdCatalog, options: ExportOptions, languages: list[str]
) -> list[_Planned]:
    planned = _meta_columns(versions, options, languages)
    merged, order = _merge_templates(versions)
    newest_type: dict[str, str] = {}
    for version in reversed(versions):
        for _section, question in iter_questions(version.definition):
            newest_type.setdefault(question["code"], question["type"])
    version_ids = {v.number: v.id for v in versions}
    used = {p.column.name for p in planned}
    offset = _RAW_PROBES
    for code, qtype in order:
        base = code if qtype == newest_type[code] else f"{code}__{qtype}"
        entries, suffixes = merged[(code, qtype)]
        for suffix in suffixes:
            entry = entries[suffix]
            template = entry.by_version[max(entry.by_version)]
            if template.kind == "text" and options.free_text == "drop":
                continue
            name = _unique(base if suffix is None else f"{base}__{suffix}", used)
            probes = tuple(_resolve(probe, entry, version_ids, ids) for probe in template.probes)
            column = _column(name, entry, template)
            raw = tuple(range(offset, offset + len(probes)))
            offset += len(probes)
            planned.append(_Planned(column, raw, _converter(column, raw, ids.option_codes, options), probes))
    return planned


def _unique(name: str, used: set[str]) -> str:
    candidate, counter = name, 1
    while candidate in used:
        counter += 1
        candidate = f"{name}_{counter}"
    used.add(candidate)
    return candidate


def _merge_orders(sequences: Sequence[Sequence[Any]]) -> list[Any]:
    """One order from several (newest first): the newest order, with each key that only an older
    sequence has slotted in after the key it followed there."""
    result: list[Any] = []
    for sequence in sequences:
        previous = None
        for key in sequence:
            if key in result:
                previous = key
                continue
            position = result.index(previous) + 1 if previous is not None else 0
            result.insert(position, key)
            previous = key
    return result


def _merge_templates(
    versions: Sequence[VersionInfo],
) -> tuple[dict[_QuestionKey, tuple[dict[str | None, _Merged], list[str | None]]], list[_QuestionKey]]:
    """Every version's column templates, keyed by question (code, type) and suffix; orders merged."""
    merged: dict[_QuestionKey, dict[str | None, _Merged]] = {}
    suffix_orders: dict[_QuestionKey, list[list[str | None]]] = defaultdict(list)
    question_orders: list[list[_QuestionKey]] = []
    for version in reversed(versions):  # newest first: its order and labels lead
        keys: list[_QuestionKey] = []
        for section, question in iter_questions(version.definition):
            key = (question["code"], question["type"])
            keys.append(key)
            entries = merged.setdefault(key, {})
            suffixes: list[str | None] = []
            for template in export_columns(question):
                entry = entries.setdefault(
                    template.suffix,
                    _Merged(
                        question["code"],
                        question["type"],
                        template.suffix,
                        section,
                        question.get("demographic", False),
                        question["text"],
                    ),
                )
                entry.by_version[version.number] = template
                suffixes.append(template.suffix)
            suffix_orders[key].append(suffixes)
        question_orders.append(keys)
    order = _merge_orders(question_orders)
    return {key: (merged[key], _merge_orders(suffix_orders[key])) for key in order}, order


def _resolve(probe: Probe, entry: _Merged, version_ids: Mapping[int, int], ids: _IdCatalog) -> _ResolvedProbe:
    question_ids, item_ids, option_ids = [], [], []
    for number in entry.by_version:
        question_id = ids.questions[(version_ids[number], probe.question, entry.qtype)]
        question_ids.append(question_id)
        if probe.item is not None:
            item_ids.append(ids.items[(question_id, probe.item)])
        if probe.kind == "flag":
            option_ids.append(ids.options[(question_id, probe.option)])
    return _ResolvedProbe(
        kind=probe.kind,
        question_ids=tuple(sorted(question_ids)),
        item_ids=tuple(sorted(item_ids)) if probe.item is not None else None,
        rank=probe.rank,
        option_ids=tuple(sorted(option_ids)) if probe.kind == "flag" else None,
    )


def _history(
    labels_by_version: Mapping[int, Mapping[str, str]],
) -> tuple[tuple[tuple[int, ...], Mapping[str, str]], ...]:
    """Labels per group of versions, when they changed between versions; empty when they did not."""
    groups: list[tuple[list[int], Mapping[str, str]]] = []
    for number in sorted(labels_by_version):
        labels = labels_by_version[number]
        for versions, known in groups:
            if dict(known) == dict(labels):
                versions.append(number)
                break
        else:
            groups.append(([number], labels))
    if len(groups) < 2:
        return ()
    return tuple((tuple(versions), labels) for versions, labels in groups)


def _column(name: str, entry: _Merged, template: ColumnTemplate) -> Column:
    templates = entry.by_version.values()
    minimum = None if any(t.minimum is None for t in templates) else min(t.minimum for t in templates)  # type: ignore[type-var]
    maximum = None if any(t.maximum is None for t in templates) else max(t.maximum for t in templates)  # type: ignore[type-var]
    return Column(
        name=name,
        kind=template.kind,
        type="number" if any(t.value_type == "number" for t in templates) else template.value_type,
        labels=template.labels,
        question=entry.code,
        question_type=entry.qtype,
        section=entry.section,
        demographic=entry.demographic,
        categories=_merge_categories(entry, template.kind, minimum),
        ordered=all(t.ordered for t in templates),
        minimum=minimum,
        maximum=maximum,
        versions=tuple(sorted(entry.by_version)),
        label_history=_history({n: t.labels for n, t in entry.by_version.items()}),
        part_labels=template.part_labels,
        question_labels=entry.text,
    )


def _merge_categories(entry: _Merged, kind: str, minimum: float | None) -> tuple[Category, ...]:
    orders: list[list[str | int]] = []
    by_value: dict[str | int, dict[int, CategoryTemplate]] = {}
    for number in sorted(entry.by_version, reverse=True):
        categories = entry.by_version[number].categories
        orders.append([c.value for c in categories])
        for category in categories:
            by_value.setdefault(category.value, {})[number] = category
    order = _merge_orders(orders)
    newest = {value: by_value[value][max(by_value[value])] for value in order}
    codes = _numeric_codes(kind, order, newest, by_value, minimum)
    return tuple(
        Category(
            value=value,
            labels=newest[value].labels,
            code=codes[value],
            missing=newest[value].role == "missing",
            anchor=newest[value].role == "anchor",
            versions=tuple(sorted(by_value[value])),
            label_history=_history({n: c.labels for n, c in by_value[value].items()}),
        )
        for value in order
    )


def _numeric_codes(
    kind: str,
    order: Sequence[str | int],
    newest: Mapping[str | int, CategoryTemplate],
    by_value: Mapping[str | int, Mapping[int, CategoryTemplate]],
    minimum: float | None,
) -> dict[str | int, int]:
    """Numbers for SPSS and Stata: the definition's values where they are usable, else positions;
    non-substantive codes get negative numbers below every valid value (declared missing)."""
    substantive = [v for v in order if newest[v].role == "value"]
    missing = [v for v in order if newest[v].role == "missing"]
    codes: dict[str | int, int] = {}
    if kind in ("flag", "rating"):
        for value in order:
            if newest[value].role != "missing":
                codes[value] = int(value)
        start = min(0, int(minimum) if minimum is not None else 0) - 1
    else:
        numerics = [newest[v].numeric for v in substantive]
        consistent = all(len({c.numeric for c in by_value[v].values()}) == 1 for v in substantive)
        usable = (
            consistent
            and all(n is not None and float(n).is_integer() and n >= 0 for n in numerics)
            and len(set(numerics)) == len(numerics)
        )
        for position, value in enumerate(substantive, start=1):
            codes[value] = int(newest[value].numeric) if usable else position  # type: ignore[arg-type]
        start = -1
    for index, value in enumerate(missing):
        codes[value] = start - index
    return codes


def _meta_columns(versions: Sequence[VersionInfo], options: ExportOptions, languages: list[str]) -> list[_Planned]:
    numbers = tuple(v.number for v in versions)
    number_by_id = {v.id: v.number for v in versions}
    names: dict[str, str] = {}
    for version in reversed(versions):
        for language in version.definition["languages"]:
            names.setdefault(language["code"], language["name"])
    language_categories = tuple(
        Category(code, {lang: names[code] for lang in languages}, position)
        for position, code in enumerate(languages, start=1)
    )
    channel_categories = tuple(
        Category(channel, word(channel, languages), position) for position, channel in enumerate(CHANNELS, start=1)
    )
    if options.date_precision == "day":
        day = Column("day", "meta", "date", word("day", languages), versions=numbers)

        def convert_day(raw: Sequence[Any]) -> Any:
            return raw[_RAW_DAY]
    else:
        day = Column("month", "meta", "yearmonth", word("month", languages), versions=numbers)

        def convert_day(raw: Sequence[Any]) -> Any:
            value = raw[_RAW_DAY]
            return None if value is None else f"{value.year:04d}-{value.month:02d}"

    return [
        _Planned(
            Column("version", "meta", "integer", word("version", languages), versions=numbers),
            (_RAW_VERSION,),
            lambda raw: number_by_id[raw[_RAW_VERSION]],
        ),
        _Planned(
            Column("language", "meta", "string", word("language", languages), categories=language_categories,
                   versions=numbers),
            (_RAW_LANGUAGE,),
            itemgetter(_RAW_LANGUAGE),
        ),
        _Planned(
            Column("channel", "meta", "string", word("channel", languages), categories=channel_categories,
                   versions=numbers),
            (_RAW_CHANNEL,),
            itemgetter(_RAW_CHANNEL),
        ),
        _Planned(day, (_RAW_DAY,), convert_day),
    ]  # fmt: skip


def _number(value: Any) -> Any:
    """Stored numbers are floats; whole ones are exported as integers (4, not 4.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _converter(
    column: Column, raw: tuple[int, ...], option_codes: Mapping[int, str], options: ExportOptions
) -> Callable[[Sequence[Any]], Any]:
    first = raw[0]
    if column.kind in ("choice", "rank"):

        def convert(values: Sequence[Any]) -> Any:
            option = values[first]
            return None if option is None else option_codes[option]

    elif column.kind == "flag":
        convert = itemgetter(first)
    elif column.kind == "rating":
        second = raw[1]

        def convert(values: Sequence[Any]) -> Any:
            if values[first] is not None:
                return _number(values[first])
            option = values[second]
            return None if option is None else option_codes[option]

    elif column.kind == "number":

        def convert(values: Sequence[Any]) -> Any:
            return _number(values[first])

    elif options.free_text == "raw":
        convert = itemgetter(first)
    else:

        def convert(values: Sequence[Any]) -> Any:
            text = values[first]
            return None if text is None else scrub_text(text)

    return convert


# -- the row source ------------------------------------------------------------------------------


_SHUFFLE_FUNCTION = "survey_export_shuffle"


def _keyed_hash(key: str, value: Any) -> str:
    return hmac.new(key.encode(), str(value).encode(), hashlib.sha256).hexdigest()


class _Source:
    """Runs the pivot (SQL or Python) and turns raw rows into dataset rows."""

    def __init__(
        self, questionnaire_id: int, version_ids: list[int], planned: list[_Planned], options: ExportOptions
    ) -> None:
        self.questionnaire_id = questionnaire_id
        self.version_ids = version_ids
        self.planned = planned
        self.probes = [probe for p in planned for probe in p.probes]
        self.converters = [p.convert for p in planned]
        self.batch_size = options.batch_size
        self.shuffle_key = secrets.token_hex(16) if options.order == "shuffled" else None
        if options.pivot == "auto":
            self.strategy = "sql" if len(self.probes) <= SQL_PIVOT_MAX_VALUES else "python"
        else:
            self.strategy = options.pivot

    def _where(self) -> ColumnElement[bool]:
        r = Response.__table__
        return (r.c.questionnaire_id == self.questionnaire_id) & r.c.version_id.in_(self.version_ids)

    def _pivot(self) -> Select[Any]:
        r, a = Response.__table__, Answer.__table__
        values = [r.c.version_id, r.c.language, r.c.channel, r.c.submitted_on]
        values += [probe.sql() for probe in self.probes]
        return (
            select(*(value.label(f"v{index}") for index, value in enumerate(values)))
            .select_from(r.outerjoin(a, a.c.response_id == r.c.id))
            .where(self._where())
            .group_by(r.c.id, r.c.version_id, r.c.language, r.c.channel, r.c.submitted_on)
        )

    def _order(self) -> list[ColumnElement[Any]]:
        """Row order: the random UUID, or a keyed hash of it (then the UUID, which keeps each
        response's answer rows together for the Python pivot)."""
        r = Response.__table__
        if self.shuffle_key is None:
            return [r.c.id]
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            key: ColumnElement[Any] = func.md5(func.concat(self.shuffle_key, cast(r.c.id, String)))
        else:
            raw = connection.connection.dbapi_connection
            raw.create_function(_SHUFFLE_FUNCTION, 2, _keyed_hash, deterministic=True)  # type: ignore[union-attr]
            key = getattr(func, _SHUFFLE_FUNCTION)(literal(self.shuffle_key), r.c.id)
        return [key, r.c.id]

    def _stream(self, statement: Select[Any]) -> Iterator[Any]:
        result = db.session.connection().execute(statement.execution_options(yield_per=self.batch_size))
        try:
            yield from result
        finally:
            result.close()

    def rows(self) -> Iterator[tuple[Any, ...]]:
        converters = self.converters
        raws = self._sql_raw_rows() if self.strategy == "sql" else self._python_raw_rows()
        for raw in raws:
            yield tuple(convert(raw) for convert in converters)

    def _sql_raw_rows(self) -> Iterator[Any]:
        yield from self._stream(self._pivot().order_by(*self._order()))

    def _python_raw_rows(self) -> Iterator[tuple[Any, ...]]:
        r, a = Response.__table__, Answer.__table__
        statement = (
            select(
                r.c.id, r.c.version_id, r.c.language, r.c.channel, r.c.submitted_on,
                a.c.question_id, a.c.item_id, a.c.option_id, a.c.number, a.c.text, a.c.rank,
            )
            .select_from(r.outerjoin(a, a.c.response_id == r.c.id))
            .where(self._where())
            .order_by(*self._order(), a.c.question_id, a.c.seq)
        )  # fmt: skip
        probes = self.probes
        for _response_id, group in itertools.groupby(self._stream(statement), key=itemgetter(0)):
            by_question: dict[int, list[Any]] = defaultdict(list)
            head = None
            for row in group:
                head = head or row
                if row.question_id is not None:
                    by_question[row.question_id].append(row)
            assert head is not None  # noqa: S101 - groupby never yields an empty group
            yield (
                head.version_id, head.language, head.channel, head.submitted_on,
                *(probe.evaluate(by_question) for probe in probes),
            )  # fmt: skip

    def count(self) -> int:
        r = Response.__table__
        return db.session.connection().execute(select(func.count()).select_from(r).where(self._where())).scalar_one()

    def profile_by(self, names: Sequence[str], items: Sequence[str] = ()) -> ClassProfile:
        """Group the pivot by the raw values of ``names``; per group, count the rows and aggregate each
        item's distinct raw values (``array_agg``/``group_concat``) and answers (``count``).

        Raw values are converted afterwards, so two raw combinations that export alike (the same option
        code in two versions) merge, their value sets united. Wide item lists take several queries.
        """
        by_name = {p.column.name: p for p in self.planned}
        chosen = [by_name[name] for name in names]
        measured = [by_name[name] for name in items]
        unsuitable = [p.column.name for p in measured if p.column.kind not in _ITEM_KINDS or len(p.raw) != 1]
        if unsuitable:
            raise ValueError(f"not a single-valued categorical column: {', '.join(unsuitable)}")
        profile = ClassProfile(tuple(names), tuple(items))
        if self.strategy == "python":
            positions = [self.planned.index(p) for p in chosen]
            item_positions = [self.planned.index(p) for p in measured]
            for row in self.rows():
                cells = [row[i] for i in item_positions]
                profile.add(
                    tuple(row[i] for i in positions),
                    1,
                    [() if value is None else (value,) for value in cells],
                    [value is not None for value in cells],
                )
            return profile
        pivot = self._pivot().subquery()
        indexes = sorted({i for p in chosen for i in p.raw})
        grouped = [pivot.c[f"v{i}"] for i in indexes]
        width = _RAW_PROBES + len(self.probes)
        per_query = max(1, (SQL_PIVOT_MAX_VALUES - len(grouped) - 1) // 2)
        starts = range(0, len(measured), per_query) if measured else range(1)
        postgresql = db.session.connection().dialect.name == "postgresql"
        for start in starts:
            chunk = measured[start : start + per_query]
            aggregates: list[ColumnElement[Any]] = []
            for p in chunk:
                value = pivot.c[f"v{p.raw[0]}"]
                aggregates += [_distinct_values(value, postgresql), func.count(value)]
            statement = select(*grouped, func.count(), *aggregates).select_from(pivot).group_by(*grouped)
            for row in self._stream(statement):
                raw: list[Any] = [None] * width
                for index, value in zip(indexes, row, strict=False):
                    raw[index] = value
                found: list[set[Any]] = [set() for _ in measured]
                answered = [0] * len(measured)
                first = len(indexes) + 1
                for position, p in enumerate(chunk):
                    distinct = _parse_distinct(row[first + 2 * position])
                    found[start + position] = {_convert_one(p, value, width) for value in distinct}
                    answered[start + position] = row[first + 2 * position + 1]
                rows = row[len(indexes)] if start == 0 else 0  # each chunk counts the same rows
                profile.add(tuple(p.convert(raw) for p in chosen), rows, found, answered)
        return profile


# Columns whose cells are one raw pivot value from a fixed set: what a distinct-value profile needs.
_ITEM_KINDS = ("choice", "flag", "rank")


def _distinct_values(value: ColumnElement[Any], postgresql: bool) -> ColumnElement[Any]:
    """The distinct non-null raw values of a group (option ids or 0/1): an array, or a comma list."""
    if postgresql:
        return func.array_agg(value.distinct())
    return func.group_concat(value.distinct())


def _parse_distinct(aggregated: Any) -> list[int]:
    if aggregated is None:
        return []
    if isinstance(aggregated, str):
        return [int(part) for part in aggregated.split(",")]
    return [int(value) for value in aggregated if value is not None]


def _convert_one(planned: _Planned, value: Any, width: int) -> Any:
    raw: list[Any] = [None] * width
    raw[planned.raw[0]] = value
    return planned.convert(raw)
