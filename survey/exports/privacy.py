"""Partner microdata: k-anonymity over the quasi-identifiers, by generalising or refusing, then distinct
l-diversity on the opinion items, by withholding (promise P9).

A partner export (disclosure-control.md, "Partner microdata") keeps no free text, gives the month
instead of the day, shuffles the rows afresh for each export (two releases cannot be lined up row by
row to undo each other's generalisation), and makes every combination of quasi-identifier values,
the *equivalence class*, hold at least ``k`` respondents (default 5). The quasi-identifiers are the
questions the definition marks ``demographic: true`` (community, residence, age band, gender...),
the same questions that are the only allowed breakdowns of results; ``language`` or ``channel`` can
be added by the caller.

:func:`plan_k_anonymity` is the rule, a pure function of the class counts (counted by the database,
``GROUP BY`` over the pivot, so memory holds the classes, never the rows). While some class is smaller
than ``k`` it merges, greedily, the value whose merge coarsens the fewest responses into an ``other``
category of its question: a value found in a small class or, where that class already says
"other", the rarest value not yet merged. The first merge of a question takes its two rarest values,
so every step removes one category; a question left with a single category is dropped. Missing
answers count as a value of their own. If ``generalise`` is off, or even dropping every
quasi-identifier leaves fewer than ``k`` rows, the export is refused. The
:class:`KAnonymityReport` says what was merged, what was dropped and the class sizes before and after.

:func:`plan_l_diversity` then guards against homogeneity ("everyone of community y aged a1 answered
*agree*"): for every exported class and every opinion item (:func:`opinion_items`: the categorical
answer columns that are not quasi-identifiers, demographic, consent or metadata), if the class's
answers hold fewer than ``l`` distinct values (default 2; missing answers are not a value, a
non-substantive code such as "don't know" is), the item is withheld, set to missing, in every row of
that class (local suppression). A withheld cell does not say which value was homogeneous, nor whether
the class answered at all. The distinct values are collected by the same ``GROUP BY`` as the counts
(one set per original combination and item, small because bounded by the categories), and united
through the generalisation: distinct counts cannot be added across merged combinations, sets can. The
:class:`LDiversityReport`, inside the k-anonymity report, says how many (class, item) cells and, per
item, how many answers were withheld.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from survey.errors import ExportOptionsInvalidError, ExportRefusedError
from survey.exports.columns import word
from survey.exports.dataset import Category, ClassProfile, Column, Dataset, ExportOptions, build_dataset

DEFAULT_K = 5
DEFAULT_L = 2

# The section iter_questions gives the consent question: answered "yes" by every stored response.
CONSENT_SECTION = "consent"


@dataclass
class LDiversityReport:
    """What the distinct l-diversity check withheld."""

    l: int  # noqa: E741 - the letter of the rule
    opinion_items: list[str]
    classes: int = 0
    cells_withheld: int = 0  # (class, item) pairs withheld
    rows_withheld: dict[str, int] = field(default_factory=dict)  # item -> answers set to missing
    withheld: dict[tuple[Any, ...], list[str]] = field(default_factory=dict, repr=False)  # class -> items

    def as_dict(self) -> dict[str, Any]:
        return {
            "l": self.l,
            "opinion_items": list(self.opinion_items),
            "classes": self.classes,
            "cells_withheld": self.cells_withheld,
            "rows_withheld": dict(self.rows_withheld),
        }


@dataclass
class KAnonymityReport:
    """What the k-anonymity check found and did."""

    k: int
    quasi_identifiers: list[str]
    n: int
    status: str = "released"  # released (nothing to change) | generalised | refused
    reason: str | None = None
    classes_before: int = 0
    smallest_class_before: int | None = None
    rows_in_small_classes_before: int = 0
    classes_after: int = 0
    smallest_class_after: int | None = None
    merged: dict[str, list[Any]] = field(default_factory=dict)  # question -> values merged into other
    other_values: dict[str, str] = field(default_factory=dict)  # question -> the code of its "other"
    dropped: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    l_diversity: LDiversityReport | None = None

    def mapping(self, name: str) -> dict[Any, Any]:
        """Original value -> exported value for one quasi-identifier (only the values that change)."""
        return dict.fromkeys(self.merged.get(name, []), self.other_values.get(name))

    def exported_class(self, combo: Sequence[Any]) -> tuple[Any, ...]:
        """The exported (generalised) class of an original combination of quasi-identifier values:
        merged values replaced by "other", dropped quasi-identifiers left out."""
        return tuple(
            self.mapping(name).get(value, value)
            for name, value in zip(self.quasi_identifiers, combo, strict=True)
            if name not in self.dropped
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "quasi_identifiers": list(self.quasi_identifiers),
            "n": self.n,
            "status": self.status,
            "reason": self.reason,
            "classes_before": self.classes_before,
            "smallest_class_before": self.smallest_class_before,
            "rows_in_small_classes_before": self.rows_in_small_classes_before,
            "classes_after": self.classes_after,
            "smallest_class_after": self.smallest_class_after,
            "merged_into_other": {name: list(values) for name, values in self.merged.items()},
            "other_values": dict(self.other_values),
            "dropped": list(self.dropped),
            "steps": list(self.steps),
            "l_diversity": self.l_diversity.as_dict() if self.l_diversity is not None else None,
        }


def _sort_key(value: Any) -> tuple[bool, str]:
    return (value is not None, str(value))


def _other_code(values: set[Any]) -> str:
    candidate, counter = "other", 1
    while candidate in values:
        counter += 1
        candidate = "other_merged" if counter == 2 else f"other_merged_{counter - 1}"
    return candidate


def plan_k_anonymity(
    counts: Counter[tuple[Any, ...]],
    names: Sequence[str],
    k: int = DEFAULT_K,
    generalise: bool = True,
    known_values: Sequence[set[Any]] | None = None,
) -> KAnonymityReport:
    """Decide how to reach k-anonymity for class ``counts`` keyed by tuples of ``names`` values.

    ``known_values`` (one set per name) are values the "other" code must not collide with, such as
    categories the question has but nobody chose. The result is a report; refusal is its status.
    """
    if k < 1:
        raise ExportOptionsInvalidError("k must be at least 1.", {"k": ["Must be at least 1."]})
    names = list(names)
    n = sum(counts.values())
    report = KAnonymityReport(k=k, quasi_identifiers=names, n=n)
    mapping: list[dict[Any, Any]] = [{} for _ in names]
    others: list[str] = []
    for index in range(len(names)):
        seen = {combo[index] for combo in counts} | (set(known_values[index]) if known_values else set())
        others.append(_other_code(seen))
    active = list(range(len(names)))

    def table() -> Counter[tuple[Any, ...]]:
        result: Counter[tuple[Any, ...]] = Counter()
        for combo, count in counts.items():
            result[tuple(mapping[j].get(combo[j], combo[j]) for j in active)] += count
        return result

    current = table()
    report.classes_before = len(current)
    report.smallest_class_before = min(current.values(), default=None)
    report.rows_in_small_classes_before = sum(c for c in current.values() if c < k)
    if n and n < k:
        report.status, report.reason = "refused", f"only {n} responses; fewer than k = {k}"
        return report

    while n:
        small = [combo for combo, count in current.items() if count < k]
        if not small:
            break
        if not generalise:
            report.status = "refused"
            report.reason = (
                f"{len(small)} combination(s) of {', '.join(names)} have fewer than {k} responses "
                f"({sum(current[c] for c in small)} responses in all) and generalisation was not allowed"
            )
            return report
        position, value, marginal = _rarest(current, small, active, others)
        j = active[position]
        merged_now = [value]
        if others[j] not in marginal:
            rest = sorted((v for v in marginal if v != value), key=lambda v: (marginal[v], _sort_key(v)))
            if rest:
                merged_now.append(rest[0])
        for original in merged_now:
            mapping[j][original] = others[j]
            report.merged.setdefault(names[j], []).append(original)
        report.other_values[names[j]] = others[j]
        report.steps.append(
            f"{names[j]}: merged {', '.join(repr(v) for v in merged_now)} into {others[j]!r} "
            f"({sum(marginal[v] for v in merged_now)} responses)"
        )
        remaining = {mapping[j].get(v, v) for v in marginal}
        if len(remaining) <= 1:
            active.remove(j)
            report.dropped.append(names[j])
            report.steps.append(f"{names[j]}: a single category remains; the question is dropped")
        current = table()

    report.classes_after = len(current)
    report.smallest_class_after = min(current.values(), default=None)
    if report.merged or report.dropped:
        report.status = "generalised"
    return report


def _rarest(
    current: Counter[tuple[Any, ...]], small: list[tuple[Any, ...]], active: list[int], others: list[str]
) -> tuple[int, Any, Counter[Any]]:
    """The (position, value) to merge next, the candidate that coarsens the fewest responses.

    For each small class and each quasi-identifier, the candidate is the class's own value or, when
    that value is already "other", the rarest value still outside "other" (so "other" grows).
    """
    marginals: list[Counter[Any]] = []
    for position in range(len(active)):
        marginal: Counter[Any] = Counter()
        for combo, count in current.items():
            marginal[combo[position]] += count
        marginals.append(marginal)
    candidates: set[tuple[int, int, tuple[bool, str], Any]] = set()
    for position, j in enumerate(active):
        marginal = marginals[position]
        outside = sorted((v for v in marginal if v != others[j]), key=lambda v: (marginal[v], _sort_key(v)))
        for combo in small:
            value = combo[position]
            if value != others[j]:
                candidates.add((marginal[value], position, _sort_key(value), value))
            elif outside:
                candidates.add((marginal[outside[0]], position, _sort_key(outside[0]), outside[0]))
    _count, position, _key, value = min(candidates, key=lambda c: c[:3])
    return position, value, marginals[position]


def opinion_items(columns: Sequence[Column], quasi_identifiers: Sequence[str]) -> list[str]:
    """The columns l-diversity protects: categorical answers (single choice, likert, matrix rows,
    multiple-choice flags, ranks) that are neither quasi-identifiers, demographic, the consent question
    nor metadata (version, language, channel, day/month)."""
    excluded = set(quasi_identifiers)
    return [
        column.name
        for column in columns
        if column.categorical
        and column.kind != "meta"
        and not column.demographic
        and column.section != CONSENT_SECTION
        and column.name not in excluded
    ]


def plan_l_diversity(profile: ClassProfile, report: KAnonymityReport, l: int = DEFAULT_L) -> LDiversityReport:  # noqa: E741
    """Decide which (exported class, opinion item) cells to withhold so that every class gives, on every
    item, no answer at all or at least ``l`` distinct values.

    ``profile`` is grouped by the original values of ``report.quasi_identifiers``; its combinations are
    merged into exported classes through the report's generalisation, their value sets united.
    """
    if l < 1:
        raise ExportOptionsInvalidError("l must be at least 1.", {"l": ["Must be at least 1."]})
    items = list(profile.items)
    values: dict[tuple[Any, ...], list[set[Any]]] = {}
    answered: dict[tuple[Any, ...], list[int]] = {}
    for combo in profile.counts:
        exported = report.exported_class(combo)
        known = values.setdefault(exported, [set() for _ in items])
        counted = answered.setdefault(exported, [0] * len(items))
        for index, found in enumerate(profile.values.get(combo, ())):
            known[index] |= found
            counted[index] += profile.answered[combo][index]
    result = LDiversityReport(l=l, opinion_items=items, classes=len(values))
    rows: Counter[str] = Counter()
    for exported in sorted(values, key=lambda combo: tuple(_sort_key(v) for v in combo)):
        for index, found in enumerate(values[exported]):
            if 0 < len(found) < l:
                result.withheld.setdefault(exported, []).append(items[index])
                result.cells_withheld += 1
                rows[items[index]] += answered[exported][index]
    result.rows_withheld = {item: rows[item] for item in items if item in rows}  # in column order
    return result


def partner_dataset(
    code: str,
    k: int = DEFAULT_K,
    quasi_identifiers: Sequence[str] | None = None,
    generalise: bool = True,
    versions: Sequence[int] | None = None,
    language: str | None = None,
    pivot: str = "auto",
    l: int = DEFAULT_L,  # noqa: E741
) -> tuple[Dataset, KAnonymityReport]:
    """The partner microdata of questionnaire ``code`` and its k-anonymity report (with the l-diversity
    report inside).

    Month precision, no free text, rows shuffled for this export, k-anonymity over the quasi-identifiers
    (default: the demographic questions) and distinct l-diversity on the opinion items. Raises
    :class:`ExportRefusedError` (with the report) when k-anonymity cannot be met; l-diversity is always
    met, by withholding.
    """
    if l < 1:
        raise ExportOptionsInvalidError("l must be at least 1.", {"l": ["Must be at least 1."]})
    options = ExportOptions(
        versions=tuple(versions) if versions is not None else None,
        language=language,
        date_precision="month",
        free_text="drop",
        pivot=pivot,
        order="shuffled",
    )
    dataset = build_dataset(code, options)
    if quasi_identifiers is None:
        names = [c.name for c in dataset.columns if c.demographic and c.kind == "choice"]
    else:
        names = list(quasi_identifiers)
    columns = {c.name: c for c in dataset.columns}
    bad = [name for name in names if name not in columns or not columns[name].categorical]
    if bad:
        raise ExportOptionsInvalidError(
            "Quasi-identifiers must be categorical columns of the dataset.",
            {"quasi_identifiers": [f"{name!r} is not a categorical column." for name in bad]},
        )
    profile = dataset.profile_by(names, opinion_items(dataset.columns, names))
    counts = profile.counts if names else Counter({(): sum(profile.counts.values())})
    known = [{c.value for c in columns[name].categories} for name in names]
    report = plan_k_anonymity(counts, names, k, generalise, known)
    if report.status == "refused":
        raise ExportRefusedError(f"The partner export was refused: {report.reason}.", report)
    report.l_diversity = plan_l_diversity(profile, report, l)
    return _generalised(dataset, report, report.l_diversity), report


def _generalised(dataset: Dataset, report: KAnonymityReport, diversity: LDiversityReport) -> Dataset:
    """``dataset`` with the report's merges applied, its dropped columns left out and the withheld
    opinion items of each class set to missing."""
    keep: list[int] = []
    columns: list[Column] = []
    mappings: dict[int, dict[Any, Any]] = {}
    for index, column in enumerate(dataset.columns):
        if column.name in report.dropped:
            continue
        keep.append(index)
        mapping = report.mapping(column.name)
        if mapping:
            mappings[len(keep) - 1] = mapping
            column = _with_other(column, set(mapping), report.other_values[column.name], dataset.languages)
        columns.append(column)

    position = {column.name: index for index, column in enumerate(columns)}
    class_positions = [position[name] for name in report.quasi_identifiers if name not in report.dropped]
    withheld = {combo: [position[item] for item in items] for combo, items in diversity.withheld.items()}

    def transform(row: tuple[Any, ...]) -> tuple[Any, ...]:
        cells = [row[i] for i in keep]
        for position, mapping in mappings.items():
            value = cells[position]
            if value in mapping:
                cells[position] = mapping[value]
        if withheld:
            for position in withheld.get(tuple(cells[i] for i in class_positions), ()):
                cells[position] = None
        return tuple(cells)

    privacy = {
        "k_anonymity": report.as_dict(),
        "microdata": (
            "partner: no free text, month precision, k-anonymity over the quasi-identifiers, "
            f"distinct l-diversity (l = {diversity.l}) on the opinion items"
        ),
    }
    return dataset.derived(columns, transform, privacy)


def _with_other(column: Column, merged: set[Any], other: str, languages: Sequence[str]) -> Column:
    kept = tuple(c for c in column.categories if c.value not in merged)
    code = max((c.code for c in kept if not c.missing and not c.anchor), default=0) + 1
    other_category = Category(other, word("other", tuple(languages)), code, versions=column.versions)
    return replace(column, categories=(*kept, other_category), ordered=False)
