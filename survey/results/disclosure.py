"""Statistical disclosure control: the one module every published number passes through.

The rules are those of ``research/disclosure-control.md`` (DESIGN §6). The module is pure: plain data in,
JSON-ready dicts out, no Flask, no database, no clock. The same input gives the same output, byte for byte,
so a snapshot rendered twice is identical (invariant I5) and may be cached.

The pipeline, in this order; each step works on the result of the one before:

0. **Survey gate** (``survey_gate``, ``protect_results``). Under ``MIN_SURVEY_N`` responses nothing is
   published, not even per-question totals.
1. **Merge.** Breakdown groups under ``MIN_GROUP_N`` are merged into one ``"other"`` group when the merged
   group reaches ``MIN_GROUP_N``. Otherwise they stay apart and fall to the group gate.
2. **Group gate** (primary suppression of groups). A group with n < ``MIN_GROUP_N`` is shown as
   ``{"n": null, "cells": []}``.
3. **Cell primary suppression.** Counts 1..``CELL_MIN``-1 are shown as ``"<5"``. In groups with
   n < ``ZERO_AMBIGUOUS_BELOW`` zeros are shown as ``"<5"`` too, so "<5" does not say "nobody".
4. **Secondary suppression, to a fixed point.**
   - Inside a group, per line (the options of a question, one matrix row, one ranking position or option):
     while exactly one cell is hidden, or the hidden cells add up to less than ``CELL_MIN``, the next-smallest
     non-zero cell is withheld. A group whose cells are all hidden is hidden.
   - Across groups, because the overall table publishes the margins: while exactly one group is hidden, or
     the hidden groups add up to less than ``MIN_GROUP_N``, the next-smallest visible group is hidden.
5. **Attacker audit** (invariant I6). Every hidden true count in 1..``CELL_MIN``-1 must keep at least
   ``MIN_FEASIBLE_VALUES`` values consistent with everything published about the question: this table, the
   overall table beside it (margins and total), group sizes, percentages, and the rules themselves (a shown
   5 is 5..7, "<5" is 1..4 or 0..4, a withheld cell is at least 5). The audit credits the attacker with a
   little more than is published, which only makes it stricter: the exact n of a group whose percentages
   are shown (percentages from unrounded counts, as the spec asks, can give n away), the answer totals of
   each matrix row and ranking position, and which side of ``ZERO_AMBIGUOUS_BELOW`` a group is on.
   Respondents who skipped the breakdown question are an unpublished row. One slice of a question (all of
   it, or one matrix row, or one ranking position) is a transportation problem, so the feasible values of
   a cell form an interval and max-flow decides them exactly. When a count could be pinned, one more cell is
   withheld (in its column, or in its line when the line itself has no slack), or as a last resort its group
   is hidden; step 4 runs again, then the audit again. The overall table is protected on its own first and
   is never changed by a breakdown, so it reads the same whichever breakdown is requested (linked tables,
   I5); with every group of a breakdown hidden, the breakdown adds nothing to it, so the loop always ends.
6. **Presentation.** Counts, group sizes and totals are rounded to ``ROUND_BASE``, each from its own raw value,
   halves up. Small cells are ``"<5"``; withheld cells are ``null`` (saying "<5" about them would be false).
   Percentages are integers from unrounded counts, only where the denominator is at least
   ``PCT_MIN_DENOM``, and shown as ``"<5%"`` / ``">95%"`` at the extremes in groups under
   ``PCT_TOP_CODE_BELOW``.

Free text is never tabulated: a text question publishes its answer counts only. Staff views
(``staff_table``) skip rounding and cell suppression but keep the group gate and the across-groups rule.
``snapshot_due`` decides when a new public snapshot may be taken (I7).

Limits, by design: the audit considers one breakdown beside the overall table. Combining several breakdowns
of one question, or questions with each other, is left to the fixed catalogue of tables and to snapshots
(spec: no flexible tables); and the choice of *which* cell to withhold (the next-smallest) is itself public
knowledge that the audit does not model.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

ALL_GROUP: Final = "all"
STATUS_PUBLISHED: Final = "published"
STATUS_NOT_YET: Final = "not_yet"

# Question types by how their cells relate to the group size n.
# single line: every respondent is counted in exactly one cell, so the cells add up to n;
# multi line: several lines per group (matrix rows, ranking positions) or several choices per respondent;
# count only: free text, whose answers are counted and never shown.
SINGLE_LINE_TYPES: Final = frozenset({"single_choice", "likert", "rating", "number"})
MULTI_LINE_TYPES: Final = frozenset({"multiple_choice", "matrix", "ranking"})
COUNT_ONLY_TYPES: Final = frozenset({"text"})


@dataclass(frozen=True)
class DisclosureRules:
    """Every parameter of the disclosure-control spec, with the spec's defaults.

    Field names are the configuration keys: the app reads ``MIN_GROUP_N`` from its config (and so
    ``SURVEY_MIN_GROUP_N`` from the environment) through ``from_mapping``.
    """

    MIN_SURVEY_N: int = 50  # completed responses before any public result
    MIN_GROUP_N: int = 10  # any statistic for a group (ONS threshold for sensitive data)
    CELL_MIN: int = 5  # counts 1..CELL_MIN-1 are shown as "<5"
    ZERO_AMBIGUOUS_BELOW: int = 50  # in groups under this n, zeros are shown as "<5" too
    ROUND_BASE: int = 5  # every displayed count, group n and total
    PCT_MIN_DENOM: int = 20  # percentages only for denominators at least this
    PCT_TOP_CODE_BELOW: int = 100  # under this denominator, extreme shares are top/bottom coded
    PCT_BOTTOM: int = 5  # ... shares under this are shown as "<5%"
    PCT_TOP: int = 95  # ... shares over this are shown as ">95%"
    MERGE_SMALL_GROUPS: bool = True  # merge groups under MIN_GROUP_N into "other" where that reaches it
    OTHER_GROUP_CODE: str = "other"
    MIN_FEASIBLE_VALUES: int = 3  # I6: values a hidden count 1..CELL_MIN-1 must keep for an attacker
    FREE_TEXT_MIN_GROUP_N: int = 10  # staff see free text only per group of at least this
    SNAPSHOT_MIN_NEW: int = 10  # a new public snapshot needs this many new responses...
    SNAPSHOT_MIN_HOURS: int = 24  # ... and this many hours since the last one (or the survey's close)
    # Catalogue rules, enforced where breakdowns are chosen (not in this module); kept here so all the
    # spec's numbers are configured in one place.
    MAX_BREAKDOWN_DIMENSIONS: int = 2
    MUNICIPALITY_MIN_N: int = 100

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = type(f.default)
            if type(value) is not expected:
                raise TypeError(f"{f.name} must be {expected.__name__}, not {type(value).__name__}")
            if expected is int and value < 0:
                raise ValueError(f"{f.name} must not be negative")
        for name in ("MIN_GROUP_N", "CELL_MIN", "ROUND_BASE", "MIN_FEASIBLE_VALUES"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        # A shown 0 must mean exactly 0, and a shown multiple of the base never a count under CELL_MIN:
        # the attacker model (and the promise that "<5" is the only small token) relies on it.
        if self.ROUND_BASE > self.CELL_MIN:
            raise ValueError("ROUND_BASE must not exceed CELL_MIN")
        if not self.PCT_BOTTOM < self.PCT_TOP <= 100:
            raise ValueError("need PCT_BOTTOM < PCT_TOP <= 100")
        if self.MIN_FEASIBLE_VALUES > self.CELL_MIN:
            raise ValueError("MIN_FEASIBLE_VALUES cannot exceed CELL_MIN (a hidden count has CELL_MIN values)")
        if not self.OTHER_GROUP_CODE or self.OTHER_GROUP_CODE == ALL_GROUP:
            raise ValueError(f"OTHER_GROUP_CODE must be a non-empty code other than {ALL_GROUP!r}")

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> DisclosureRules:
        """Rules from a config mapping: keys named like the fields, defaults for missing keys.

        Integers given as decimal strings (as an ``instance/config.py`` or a plain environment might) are
        accepted; anything else of the wrong type raises, so a typo cannot silently weaken a threshold.
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in config:
                values[f.name] = _coerce(f.name, config[f.name], type(f.default))
        return cls(**values)


def _coerce(name: str, value: Any, expected: type) -> Any:
    if expected is int and isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if expected is bool and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if type(value) is not expected:
        raise TypeError(f"config key {name} must be {expected.__name__}, not {type(value).__name__}")
    return value


DEFAULT_RULES: Final = DisclosureRules()


# -- input ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellCount:
    """One raw count: respondents who gave ``option`` (for multiple choice: who ticked it).

    ``row`` is the matrix row, ``rank`` the ranking position (1 = most important); both are None otherwise.
    """

    option: str
    count: int
    row: str | None = None
    rank: int | None = None


@dataclass(frozen=True)
class GroupCount:
    """One group's raw size ``n`` (respondents in the group who answered the question) and its cells.

    Pass every option as a cell, zeros included: a missing cell counts as 0.
    """

    group: str
    n: int
    cells: tuple[CellCount, ...] = ()


@dataclass(frozen=True)
class QuestionTable:
    """The raw counts of one question.

    ``overall`` is everyone who answered the question (published as the one group ``"all"``); it also gives
    the margins an attacker sees beside any breakdown. ``groups`` is the breakdown by one demographic
    question, one entry per option of that question, empty ones included (listing only non-empty groups
    would itself disclose). Without groups the table is the overall one. Respondents who skipped the
    demographic question are the difference between ``overall`` and the groups.
    """

    code: str
    type: str
    overall: GroupCount
    groups: tuple[GroupCount, ...] = ()


# -- public API ---------------------------------------------------------------------------------------


def round_count(value: int, rules: DisclosureRules = DEFAULT_RULES) -> int:
    """``value`` rounded to the nearest multiple of ``ROUND_BASE``, halves up (12 -> 10, 13 -> 15)."""
    return _round(value, rules.ROUND_BASE)


def survey_gate(n_total: int, rules: DisclosureRules = DEFAULT_RULES) -> dict[str, Any]:
    """The whole-survey gate: ``{"status": "published", "n": rounded}`` or ``{"status": "not_yet", "n": None}``.

    Under ``MIN_SURVEY_N`` even the total stays unpublished: early totals are what differencing starts from.
    """
    _check_count("n_total", n_total)
    if n_total < rules.MIN_SURVEY_N:
        return {"status": STATUS_NOT_YET, "n": None}
    return {"status": STATUS_PUBLISHED, "n": round_count(n_total, rules)}


def protect_results(
    n_total: int, tables: Iterable[QuestionTable], rules: DisclosureRules = DEFAULT_RULES
) -> dict[str, Any]:
    """The public results of one snapshot: the survey gate, then every question through ``protect_table``.

    Returns ``{"status", "n", "questions"}``; ``questions`` is empty while the survey is not yet published.
    """
    result = survey_gate(n_total, rules)
    questions = [protect_table(table, rules) for table in tables] if result["status"] == STATUS_PUBLISHED else []
    return {**result, "questions": questions}


def protect_table(table: QuestionTable, rules: DisclosureRules = DEFAULT_RULES) -> dict[str, Any]:
    """The public, disclosure-controlled form of one question table (DESIGN §5 "Results shape").

    ``{"code", "type", "groups": [{"group", "n", "cells": [{"option", "count", "percent"}]}]}``; matrix cells
    also carry ``"row"``, ranking cells ``"rank"``. Without a breakdown there is one group, ``"all"``.
    """
    overall, breakdown, residual = _prepare(table, rules, rules.MIN_GROUP_N)
    _protect_alone(overall, rules)
    shown = overall
    if breakdown is not None:
        _protect_with_margins(overall, breakdown, residual, rules)
        shown = breakdown
    return {
        "code": table.code,
        "type": table.type,
        "groups": [_public_group(shown, group, rules) for group in shown.groups],
    }


def staff_table(table: QuestionTable, rules: DisclosureRules = DEFAULT_RULES) -> dict[str, Any]:
    """The staff form of one question table: exact counts, but the same group gate and filter suppression.

    Same shape as ``protect_table``; counts are exact integers and percentages are not top/bottom coded.
    For a text question, a group with a non-null ``n`` is one whose (scrubbed) answers staff may read.
    """
    threshold = rules.MIN_GROUP_N
    if table.type in COUNT_ONLY_TYPES:
        threshold = max(threshold, rules.FREE_TEXT_MIN_GROUP_N)
    overall, breakdown, _residual = _prepare(table, rules, threshold)
    shown = breakdown if breakdown is not None else overall
    for group in shown.groups:
        group.hidden = group.n < threshold
    if breakdown is not None:
        # Filter suppression: without it, staff could subtract the visible groups from the total.
        _fix_groups(breakdown, threshold)
    return {
        "code": table.code,
        "type": table.type,
        "groups": [_staff_group(shown, group, rules) for group in shown.groups],
    }


def snapshot_due(
    *,
    responses: int,
    responses_at_last: int | None,
    hours_since_last: float | None,
    closed: bool = False,
    rules: DisclosureRules = DEFAULT_RULES,
) -> bool:
    """Whether a new public snapshot may be taken now (promise P6, invariant I7).

    Public results only ever come from snapshots. A new one needs ``SNAPSHOT_MIN_NEW`` new responses *and*
    ``SNAPSHOT_MIN_HOURS`` since the last, so that comparing two snapshots never isolates a handful of
    respondents. The spec's exception: when the survey closes, the final numbers are published once.
    ``responses_at_last`` is None before the first snapshot, which waits for ``MIN_SURVEY_N`` responses.
    """
    _check_count("responses", responses)
    if responses_at_last is None:
        return closed or responses >= rules.MIN_SURVEY_N
    new = responses - responses_at_last
    if new <= 0:  # nothing new, or responses deleted by retention: aggregates are kept as they were
        return False
    if closed:
        return True
    return (
        new >= rules.SNAPSHOT_MIN_NEW and hours_since_last is not None and hours_since_last >= rules.SNAPSHOT_MIN_HOURS
    )


# -- internal model ----------------------------------------------------------------------------------

Key = tuple[str | None, str, int | None]  # (matrix row, option, rank)
_COUNT_KEY: Final[Key] = (None, "", None)  # text questions: one unpublished cell holding n


class _Cell(enum.Enum):
    VISIBLE = "visible"
    SMALL = "small"  # primary suppression, shown as "<5"
    WITHHELD = "withheld"  # secondary suppression, shown as null


@dataclass
class _Group:
    code: str
    n: int
    counts: dict[Key, int]
    status: dict[Key, _Cell] = field(default_factory=dict)
    hidden: bool = False


@dataclass
class _Table:
    qtype: str
    keys: list[Key]
    groups: list[_Group]
    lines: list[list[Key]]  # the cell sets the within-group rule works on
    slices: list[list[Key]]  # independent groups x keys tables for the audit

    @property
    def shape(self) -> str:
        if self.qtype in SINGLE_LINE_TYPES:
            return "single"
        return "count" if self.qtype in COUNT_ONLY_TYPES else "multi"


def _round(value: int, base: int) -> int:
    return (2 * value + base) // (2 * base) * base


def _rounding_interval(shown: int, base: int) -> tuple[int, int]:
    """The raw values that round to ``shown``: [shown - base/2, shown + base/2), clipped at 0."""
    return max(0, shown - base // 2), shown + (base - 1) // 2


def _check_count(name: str, value: Any) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")


def _sort_key(key: Key) -> tuple[str, str, int]:
    # Ties are broken by the cell's definition, not its input position, so a cell gets the same status
    # whatever order a caller lists options in.
    row, option, rank = key
    return (row or "", option, rank or 0)


def _prepare(
    table: QuestionTable, rules: DisclosureRules, min_group_n: int
) -> tuple[_Table, _Table | None, _Group | None]:
    """Validate the raw counts and build the overall table, the breakdown (merged) and the unassigned rest."""
    qtype = table.type
    if qtype not in SINGLE_LINE_TYPES | MULTI_LINE_TYPES | COUNT_ONLY_TYPES:
        raise ValueError(f"question {table.code}: unknown type {qtype!r}")
    raw = [table.overall, *table.groups]
    counted = [_group_counts(table.code, qtype, g) for g in raw]
    if qtype in COUNT_ONLY_TYPES:
        keys = [_COUNT_KEY]
    else:
        keys = list(dict.fromkeys(key for counts in counted for key in counts))
    lines, slices = (_canonical(parts) for parts in _structure(qtype, keys))
    groups = []
    for source, counts in zip(raw, counted, strict=True):
        full = {key: counts.get(key, 0) for key in keys}
        if qtype in COUNT_ONLY_TYPES:
            full = {_COUNT_KEY: source.n}
        _check_consistency(table.code, qtype, source.group, source.n, full, lines)
        groups.append(_Group(source.group, source.n, full, dict.fromkeys(keys, _Cell.VISIBLE)))
    overall = _Table(qtype, keys, [groups[0]], lines, slices)
    overall.groups[0].code = ALL_GROUP
    if not table.groups:
        return overall, None, None

    members = groups[1:]
    codes = [g.code for g in members]
    if len(set(codes)) != len(codes) or ALL_GROUP in codes:
        raise ValueError(f"question {table.code}: group codes must be unique and not {ALL_GROUP!r}")
    rest_n = overall.groups[0].n - sum(g.n for g in members)
    rest = {key: overall.groups[0].counts[key] - sum(g.counts[key] for g in members) for key in keys}
    if rest_n < 0 or min(rest.values()) < 0:
        raise ValueError(f"question {table.code}: the groups add up to more than the overall table")
    merged = _merge_small_groups(members, keys, rules, min_group_n)
    breakdown = _Table(qtype, keys, merged, lines, slices)
    residual = _Group("", rest_n, rest) if rest_n > 0 else None
    return overall, breakdown, residual


def _group_counts(code: str, qtype: str, group: GroupCount) -> dict[Key, int]:
    _check_count(f"question {code}, group {group.group!r}: n", group.n)
    if qtype in COUNT_ONLY_TYPES and group.cells:
        raise ValueError(f"question {code}: text answers are counted, never tabulated; pass no cells")
    counts: dict[Key, int] = {}
    for cell in group.cells:
        _check_count(f"question {code}, group {group.group!r}, option {cell.option!r}: count", cell.count)
        if (cell.row is not None) != (qtype == "matrix"):
            raise ValueError(f"question {code}: cells need a row exactly when the question is a matrix")
        if (cell.rank is not None) != (qtype == "ranking"):
            raise ValueError(f"question {code}: cells need a rank exactly when the question is a ranking")
        if cell.rank is not None and (type(cell.rank) is not int or cell.rank < 1):
            raise ValueError(f"question {code}: ranks start at 1")
        key = (cell.row, cell.option, cell.rank)
        if key in counts:
            raise ValueError(f"question {code}, group {group.group!r}: cell {key} given twice")
        counts[key] = cell.count
    return counts


def _structure(qtype: str, keys: list[Key]) -> tuple[list[list[Key]], list[list[Key]]]:
    """Lines for the within-group rule and slices for the audit, by question type."""
    if qtype in COUNT_ONLY_TYPES:
        return [], [keys]
    if qtype == "matrix":
        by_row = _grouped(keys, 0)
        return by_row, by_row
    if qtype == "ranking":
        by_rank = _grouped(keys, 2)
        return by_rank + _grouped(keys, 1), by_rank
    return [keys], [keys]


def _canonical(parts: list[list[Key]]) -> list[list[Key]]:
    # Lines and slices are sets; a fixed order makes every choice made while walking them order-free.
    return sorted((sorted(part, key=_sort_key) for part in parts), key=lambda part: [_sort_key(k) for k in part])


def _grouped(keys: list[Key], part: int) -> list[list[Key]]:
    found: dict[Any, list[Key]] = {}
    for key in keys:
        found.setdefault(key[part], []).append(key)
    return list(found.values())


def _check_consistency(
    code: str, qtype: str, group: str, n: int, counts: dict[Key, int], lines: list[list[Key]]
) -> None:
    # The audit's model of the table is only as true as the counts; inconsistent input is a bug upstream.
    where = f"question {code}, group {group!r}"
    if qtype in SINGLE_LINE_TYPES and sum(counts.values()) != n:
        raise ValueError(f"{where}: the cells of a {qtype} question must add up to n")
    if qtype in MULTI_LINE_TYPES:
        parts = [[key] for key in counts] if qtype == "multiple_choice" else lines
        if any(sum(counts[key] for key in part) > n for part in parts):
            raise ValueError(f"{where}: a count or line of a {qtype} question exceeds n")


def _merge_small_groups(groups: list[_Group], keys: list[Key], rules: DisclosureRules, threshold: int) -> list[_Group]:
    """Merge groups under the threshold (and any existing "other" group) into "other" if that reaches it."""
    other = rules.OTHER_GROUP_CODE
    small = [g for g in groups if g.n < threshold and g.code != other]
    if not rules.MERGE_SMALL_GROUPS or not small:
        return groups
    members = {g.code for g in small} | ({other} if any(g.code == other for g in groups) else set())
    inside = [g for g in groups if g.code in members]
    n = sum(g.n for g in inside)
    if n < threshold:  # the merged group would be suppressed anyway: leave the groups to the group gate
        return groups
    merged = _Group(
        other, n, {key: sum(g.counts[key] for g in inside) for key in keys}, dict.fromkeys(keys, _Cell.VISIBLE)
    )
    return [g for g in groups if g.code not in members] + [merged]


# -- suppression --------------------------------------------------------------------------------------


def _suppress_primary(table: _Table, rules: DisclosureRules) -> None:
    for group in table.groups:
        if group.n < rules.MIN_GROUP_N:
            group.hidden = True
            continue
        if table.shape == "count":
            continue
        for key in table.keys:
            count = group.counts[key]
            if 0 < count < rules.CELL_MIN or (count == 0 and group.n < rules.ZERO_AMBIGUOUS_BELOW):
                group.status[key] = _Cell.SMALL


def _suppress_secondary(table: _Table, rules: DisclosureRules, *, across_groups: bool) -> None:
    """Secondary suppression inside groups and, for a breakdown, across groups, until nothing changes."""
    changed = True
    while changed:
        changed = False
        for group in table.groups:
            if group.hidden:
                continue
            for line in table.lines:
                changed |= _fix_line(group, line, rules)
                if group.hidden:
                    break
            if not group.hidden and table.shape != "count" and _visible_cells(group, table.keys) == []:
                # n with nothing but hidden cells tells only their sum; the spec hides such groups
                group.hidden = changed = True
        if across_groups:
            changed |= _fix_groups(table, rules.MIN_GROUP_N)


def _fix_line(group: _Group, line: list[Key], rules: DisclosureRules) -> bool:
    """Within-group rule on one line; True if something changed (which may be hiding the group)."""
    changed = False
    while True:
        hidden = [key for key in line if group.status[key] is not _Cell.VISIBLE]
        if not hidden or (len(hidden) >= 2 and sum(group.counts[key] for key in hidden) >= rules.CELL_MIN):
            return changed
        candidate = _smallest_visible(group, line)
        if candidate is None:
            # The line cannot be protected inside the group (no non-zero cell left to withhold).
            group.hidden = True
            return True
        group.status[candidate] = _Cell.WITHHELD
        changed = True


def _fix_groups(table: _Table, threshold: int) -> bool:
    """Across-groups rule: no lone hidden group, and hidden groups that add up to the threshold."""
    changed = False
    while True:
        hidden = [g for g in table.groups if g.hidden]
        if not hidden or (len(hidden) >= 2 and sum(g.n for g in hidden) >= threshold):
            return changed
        if not _hide_smallest_group(table):
            return changed
        changed = True


def _visible_cells(group: _Group, keys: Iterable[Key]) -> list[Key]:
    return [key for key in keys if group.status[key] is _Cell.VISIBLE]


def _smallest_visible(group: _Group, keys: Iterable[Key]) -> Key | None:
    """The next cell to withhold: the smallest visible non-zero one (zeros protect nothing)."""
    candidates = [key for key in _visible_cells(group, keys) if group.counts[key] > 0]
    return min(candidates, key=lambda key: (group.counts[key], _sort_key(key)), default=None)


def _hide_smallest_group(table: _Table) -> bool:
    visible = [g for g in table.groups if not g.hidden]
    if not visible:
        return False
    min(visible, key=lambda g: (g.n, g.code)).hidden = True
    return True


# -- the attacker audit -------------------------------------------------------------------------------
#
# Each slice of a question is a groups x keys table. An attacker who reads the published numbers knows, for
# every row (group), column (key) and cell, an interval its true value lies in, and that cells add up to rows
# and columns. That is a circulation with lower and upper bounds on the arcs
#     T -> S (total), S -> row (group n or line total), row -> column (cell), column -> T (overall cell),
# whose constraint matrix is totally unimodular: the values one arc takes over all integer solutions form an
# interval, and fixing the arc and asking max-flow whether a solution remains decides each value exactly.


@dataclass
class _Network:
    arcs: list[list[int]] = field(default_factory=list)  # [tail, head, low, high]
    truth: list[int] = field(default_factory=list)  # the arc's true value
    row: dict[int, int] = field(default_factory=dict)  # row index -> arc
    cell: dict[tuple[int, Key], int] = field(default_factory=dict)
    column: dict[Key, int] = field(default_factory=dict)
    nodes: int = 2

    def add(self, tail: int, head: int, bounds: tuple[int, int], truth: int) -> int:
        self.arcs.append([tail, head, *bounds])
        self.truth.append(truth)
        return len(self.arcs) - 1

    def feasible_with(self, arc: int, value: int) -> bool:
        arcs = [list(a) for a in self.arcs]
        arcs[arc][2] = arcs[arc][3] = value
        return _circulation_exists(self.nodes, arcs)

    def keeps_values(self, arc: int, need: int) -> bool:
        """Whether the arc can take at least ``need`` other values than its true one."""
        low, high, true = self.arcs[arc][2], self.arcs[arc][3], self.truth[arc]
        found = 0
        for step in (1, -1):  # the feasible values are an interval around the true one
            value = true + step
            while found < need and low <= value <= high and self.feasible_with(arc, value):
                found += 1
                value += step
        return found >= need


@dataclass(frozen=True)
class _Failure:
    in_overall: bool  # the exposed count is in the overall table
    group: int  # index, in the table holding it, of the group (0 for the overall table)
    key: Key | None  # None: the group's n is exposed
    slice: tuple[Key, ...]
    line_has_slack: bool  # the count's line could absorb a change: the column is what pins it


_SOURCE, _SINK = 0, 1


def _network(
    overall: _Table, breakdown: _Table | None, residual: _Group | None, keys: list[Key], rules: DisclosureRules
) -> _Network:
    """The attacker's constraints for one slice: the overall table alone, or a breakdown beside it."""
    top = overall.groups[0]
    big = 4 * (top.n + sum(top.counts.values())) + 100  # "unbounded": more than any consistent table needs
    shape = overall.shape
    table = breakdown if breakdown is not None else overall
    rows: list[_Group | None] = list(table.groups)
    if breakdown is not None and residual is not None:
        rows.append(None)  # the respondents who skipped the demographic question: never published
    net = _Network(nodes=2 + len(rows) + len(keys))

    def line(group: _Group) -> int:
        return group.n if shape != "multi" else sum(group.counts[key] for key in keys)

    every = [g if g is not None else residual for g in rows]
    total_truth = sum(line(g) for g in every if g is not None)
    if breakdown is None:
        total = (0, big)
    elif shape == "multi" and not top.hidden:
        total = (line(top), line(top))
    elif shape == "multi":
        total = (0, big)
    else:
        total = _row_bounds(overall, top, rules, big)
    net.add(_SINK, _SOURCE, total, total_truth)
    for i, group in enumerate(rows):
        node = 2 + i
        real = group if group is not None else residual
        if real is None:
            continue
        if group is None or group.hidden:
            bounds = (0, big)
        elif shape == "multi":
            # Line totals of multi-line questions are not published; the audit assumes the attacker knows
            # them, which only makes it stricter.
            bounds = (line(group), line(group))
        else:
            bounds = _row_bounds(table, group, rules, big)
        net.row[i] = net.add(_SOURCE, node, bounds, line(real))
        for j, key in enumerate(keys):
            cell = (0, big) if group is None else _cell_bounds(table, group, key, rules, big)
            net.cell[i, key] = net.add(node, 2 + len(rows) + j, cell, real.counts[key])
    for j, key in enumerate(keys):
        column = (0, big) if breakdown is None else _cell_bounds(overall, top, key, rules, big)
        net.column[key] = net.add(2 + len(rows) + j, _SINK, column, sum(g.counts[key] for g in every if g is not None))
    return net


def _row_bounds(table: _Table, group: _Group, rules: DisclosureRules, big: int) -> tuple[int, int]:
    """What a reader knows of a group's n."""
    if group.hidden:
        return (0, big)
    single = table.shape == "single"
    if single and group.n >= rules.PCT_MIN_DENOM:
        return (group.n, group.n)  # percentages from unrounded counts can reveal n: assume they do
    low, high = _rounding_interval(_round(group.n, rules.ROUND_BASE), rules.ROUND_BASE)
    low = max(low, rules.MIN_GROUP_N)  # a visible group has at least MIN_GROUP_N
    if single:
        high = min(high, rules.PCT_MIN_DENOM - 1)  # no percentages shown: n is under PCT_MIN_DENOM
        # the reader may not know which side of ZERO_AMBIGUOUS_BELOW n is; assuming they do is stricter
        if group.n < rules.ZERO_AMBIGUOUS_BELOW:
            high = min(high, rules.ZERO_AMBIGUOUS_BELOW - 1)
        else:
            low = max(low, rules.ZERO_AMBIGUOUS_BELOW)
    return (low, high)


def _cell_bounds(table: _Table, group: _Group, key: Key, rules: DisclosureRules, big: int) -> tuple[int, int]:
    """What a reader knows of one cell."""
    if group.hidden or table.shape == "count":
        return (0, big)
    status = group.status[key]
    if status is _Cell.SMALL:
        return (0 if group.n < rules.ZERO_AMBIGUOUS_BELOW else 1, rules.CELL_MIN - 1)
    if status is _Cell.WITHHELD:
        return (rules.CELL_MIN, big)  # withheld cells are never zero and never small
    count = group.counts[key]
    if count == 0:
        return (0, 0)  # a shown 0 is exact: 1..CELL_MIN-1 would have been "<5"
    low, high = _rounding_interval(_round(count, rules.ROUND_BASE), rules.ROUND_BASE)
    low = max(low, rules.CELL_MIN)
    denominator = _denominator(table, group, key)
    if denominator >= rules.PCT_MIN_DENOM:
        # Its percentage is shown, and the denominator is taken as known (see _row_bounds): the count is
        # then one of the few whose percentage is the one shown.
        share_low, share_high = _percent_interval(_public_percent(count, denominator, rules), denominator, rules)
        low, high = max(low, share_low), min(high, share_high)
    return (low, high)


def _percent_interval(shown: int | str | None, denominator: int, rules: DisclosureRules) -> tuple[int, int]:
    """The counts out of ``denominator`` whose published percentage is ``shown``."""
    d = denominator
    if shown == f">{rules.PCT_TOP}%":
        return (rules.PCT_TOP * d // 100 + 1, d)
    if shown == f"<{rules.PCT_BOTTOM}%":
        return (0, -(-rules.PCT_BOTTOM * d // 100) - 1)
    if not isinstance(shown, int):
        return (0, d)
    # (200 c + d) // (2 d) == p  <=>  (2 p - 1) d <= 200 c < (2 p + 1) d
    return (-(-(2 * shown - 1) * d // 200), -(-(2 * shown + 1) * d // 200) - 1)


def _denominator(table: _Table, group: _Group, key: Key) -> int:
    """The base of a cell's percentage: the matrix row's answers for a matrix, else the group's n."""
    if table.qtype == "matrix":
        return sum(count for other, count in group.counts.items() if other[0] == key[0])
    return group.n


def _audit(
    overall: _Table, breakdown: _Table | None, residual: _Group | None, rules: DisclosureRules
) -> _Failure | None:
    """The first hidden small count an attacker could narrow to fewer than MIN_FEASIBLE_VALUES values."""
    need = rules.MIN_FEASIBLE_VALUES - 1
    for keys in overall.slices:
        net = _network(overall, breakdown, residual, keys, rules)
        # Targets in a fixed order (by group code and cell definition), so that which count is protected
        # first, and therefore the result, does not depend on the order the input lists them in.
        for failure, arc in sorted(
            _targets(net, overall, breakdown, keys, rules), key=lambda t: _target_order(t[0], overall, breakdown)
        ):
            if not net.keeps_values(arc, need):
                slack = failure.key is not None and _line_has_slack(net, failure, keys, need)
                return _Failure(failure.in_overall, failure.group, failure.key, tuple(keys), slack)
    return None


def _targets(
    net: _Network, overall: _Table, breakdown: _Table | None, keys: list[Key], rules: DisclosureRules
) -> Iterator[tuple[_Failure, int]]:
    """The hidden true counts in 1..CELL_MIN-1 of one slice, with the arc that carries each."""
    small = range(1, rules.CELL_MIN)
    top = overall.groups[0]
    cells = overall.shape != "count"
    sizes = overall.shape != "multi"  # n is not an arc of a multi-line slice

    def hidden(group: _Group, key: Key) -> bool:
        return group.hidden or group.status[key] is not _Cell.VISIBLE

    table = breakdown if breakdown is not None else overall
    for i, group in enumerate(table.groups):
        if sizes and group.hidden and group.n in small:
            yield _Failure(breakdown is None, i, None, (), False), net.row[i]
        for key in keys if cells else ():
            if hidden(group, key) and group.counts[key] in small:
                yield _Failure(breakdown is None, i, key, (), False), net.cell[i, key]
    if breakdown is not None and cells:
        for key in keys:
            if hidden(top, key) and top.counts[key] in small:
                yield _Failure(True, 0, key, (), False), net.column[key]


def _target_order(failure: _Failure, overall: _Table, breakdown: _Table | None) -> tuple[Any, ...]:
    table = overall if failure.in_overall else breakdown
    code = table.groups[failure.group].code if table is not None else ""
    return (failure.in_overall, code, failure.key is not None, _sort_key(failure.key or ("", "", 0)))


def _line_has_slack(net: _Network, failure: _Failure, keys: list[Key], need: int) -> bool:
    """Whether the count's own row could move by ``need`` with the other cells of its row alone."""
    if failure.key is None or failure.group not in net.row:
        return False
    arc = net.cell[failure.group, failure.key]
    _t, _h, low, high = net.arcs[arc]
    true = net.truth[arc]
    row = net.row[failure.group]
    row_low, row_high, row_true = net.arcs[row][2], net.arcs[row][3], net.truth[row]
    others = [net.cell[failure.group, key] for key in keys if key != failure.key]
    down = sum(net.truth[a] - net.arcs[a][2] for a in others) + row_high - row_true
    up = sum(net.arcs[a][3] - net.truth[a] for a in others) + row_true - row_low
    rise = min(high - true, down)  # the count rises while other cells fall or n grows
    fall = min(true - low, up)
    return rise + fall >= need


def _protect_alone(overall: _Table, rules: DisclosureRules) -> None:
    """Suppression and audit of the overall table by itself (it depends on no breakdown)."""
    _suppress_primary(overall, rules)
    _suppress_secondary(overall, rules, across_groups=False)
    top = overall.groups[0]
    while (failure := _audit(overall, None, None, rules)) is not None:
        lines = [key for line in overall.lines if failure.key in line for key in line]
        candidate = _smallest_visible(top, lines)
        if candidate is None:
            top.hidden = True  # nothing left to withhold: an overall table with no numbers but its n is hidden
            return
        top.status[candidate] = _Cell.WITHHELD
        _suppress_secondary(overall, rules, across_groups=False)


def _protect_with_margins(overall: _Table, breakdown: _Table, residual: _Group | None, rules: DisclosureRules) -> None:
    """Suppression and audit of a breakdown against the (already protected) overall table beside it."""
    _suppress_primary(breakdown, rules)
    _suppress_secondary(breakdown, rules, across_groups=True)
    while (failure := _audit(overall, breakdown, residual, rules)) is not None:
        if not _escalate(breakdown, failure):
            # Nothing left to withhold or hide one at a time; with every group hidden the breakdown adds
            # nothing to the overall table, which is protected on its own.
            for group in breakdown.groups:
                group.hidden = True
            return
        _suppress_secondary(breakdown, rules, across_groups=True)


def _escalate(breakdown: _Table, failure: _Failure) -> bool:
    """Withhold or hide one more thing to protect the exposed count; False if nothing is left."""
    key = failure.key
    if key is None:  # a hidden group's n: another group must join it
        return _hide_smallest_group(breakdown)
    if failure.in_overall:  # an overall count that the breakdown's column pins down
        return _withhold_in_column(breakdown, key, None) is not None or _hide_smallest_group(breakdown)
    group = breakdown.groups[failure.group]
    if group.hidden:
        return _withhold_in_column(breakdown, key, None) is not None or _hide_smallest_group(breakdown)
    line = _smallest_visible(group, [k for part in breakdown.lines if key in part for k in part])
    column_exists = any(_column_candidates(breakdown, key, group))
    if column_exists and (failure.line_has_slack or line is None):
        partner = _withhold_in_column(breakdown, key, group)
        if partner is not None:
            _complete_rectangle(group, partner, key, failure.slice)
        return True
    if line is not None:
        group.status[line] = _Cell.WITHHELD
        return True
    group.hidden = True
    return True


def _column_candidates(table: _Table, key: Key, exclude: _Group | None) -> list[_Group]:
    return [
        g
        for g in table.groups
        if g is not exclude and not g.hidden and g.status[key] is _Cell.VISIBLE and g.counts[key] > 0
    ]


def _withhold_in_column(table: _Table, key: Key, exclude: _Group | None) -> _Group | None:
    """Withhold the smallest visible non-zero cell of ``key`` in another group; return that group."""
    candidates = _column_candidates(table, key, exclude)
    if not candidates:
        return None
    partner = min(candidates, key=lambda g: (g.counts[key], g.code))
    partner.status[key] = _Cell.WITHHELD
    return partner


def _complete_rectangle(group: _Group, partner: _Group, key: Key, keys: tuple[Key, ...]) -> None:
    """Give the new column partner a hidden cell in a column where ``group`` has one: a closed cycle of hidden
    cells lets values move around it without changing any published total."""
    columns = [k for k in keys if k != key and group.status[k] is not _Cell.VISIBLE]
    if not columns or any(partner.status[k] is not _Cell.VISIBLE for k in columns):
        return
    corner = _smallest_visible(partner, columns)
    if corner is not None:
        partner.status[corner] = _Cell.WITHHELD


def _circulation_exists(nodes: int, arcs: list[list[int]]) -> bool:
    """Whether integer flows within every arc's [low, high] balance at every node (Hoffman), by max-flow."""
    graph = _FlowGraph(nodes + 2)
    excess = [0] * nodes
    for tail, head, low, high in arcs:
        if low > high:
            return False
        if high > low:
            graph.add(tail, head, high - low)
        excess[tail] -= low
        excess[head] += low
    source, sink, need = nodes, nodes + 1, 0
    for node, amount in enumerate(excess):
        if amount > 0:
            graph.add(source, node, amount)
            need += amount
        elif amount < 0:
            graph.add(node, sink, -amount)
    return graph.max_flow(source, sink) == need


class _FlowGraph:
    """Edmonds-Karp max-flow; the graphs are tiny (a few dozen nodes)."""

    def __init__(self, size: int) -> None:
        self.edges: list[list[int]] = [[] for _ in range(size)]
        self.head: list[int] = []
        self.capacity: list[int] = []

    def add(self, tail: int, head: int, capacity: int) -> None:
        # edge i and its reverse i ^ 1
        self.edges[tail].append(len(self.head))
        self.head.append(head)
        self.capacity.append(capacity)
        self.edges[head].append(len(self.head))
        self.head.append(tail)
        self.capacity.append(0)

    def max_flow(self, source: int, sink: int) -> int:
        total = 0
        while True:
            via = [-1] * len(self.edges)
            via[source] = -2
            queue = deque([source])
            while queue and via[sink] == -1:
                node = queue.popleft()
                for edge in self.edges[node]:
                    head = self.head[edge]
                    if via[head] == -1 and self.capacity[edge] > 0:
                        via[head] = edge
                        queue.append(head)
            if via[sink] == -1:
                return total
            path, node = [], sink
            while node != source:
                path.append(via[node])
                node = self.head[via[node] ^ 1]
            pushed = min(self.capacity[edge] for edge in path)
            for edge in path:
                self.capacity[edge] -= pushed
                self.capacity[edge ^ 1] += pushed
            total += pushed


# -- presentation ---------------------------------------------------------------------------------------


def _cell_labels(table: _Table, key: Key) -> dict[str, Any]:
    row, option, rank = key
    labels: dict[str, Any] = {}
    if table.qtype == "matrix":
        labels["row"] = row
    labels["option"] = option
    if table.qtype == "ranking":
        labels["rank"] = rank
    return labels


def _public_group(table: _Table, group: _Group, rules: DisclosureRules) -> dict[str, Any]:
    if group.hidden:
        return {"group": group.code, "n": None, "cells": []}
    cells = [] if table.shape == "count" else [_public_cell(table, group, key, rules) for key in table.keys]
    return {"group": group.code, "n": round_count(group.n, rules), "cells": cells}


def _public_cell(table: _Table, group: _Group, key: Key, rules: DisclosureRules) -> dict[str, Any]:
    cell = _cell_labels(table, key)
    status = group.status[key]
    if status is _Cell.SMALL:
        cell.update(count=f"<{rules.CELL_MIN}", percent=None)
    elif status is _Cell.WITHHELD:
        cell.update(count=None, percent=None)
    else:
        count = group.counts[key]
        cell.update(
            count=round_count(count, rules), percent=_public_percent(count, _denominator(table, group, key), rules)
        )
    return cell


def _public_percent(count: int, denominator: int, rules: DisclosureRules) -> int | str | None:
    if denominator < rules.PCT_MIN_DENOM or denominator == 0:
        return None
    if denominator < rules.PCT_TOP_CODE_BELOW:
        # exact shares near 0 or 100 % are group attribute disclosure ("all of them said ...")
        if 100 * count > rules.PCT_TOP * denominator:
            return f">{rules.PCT_TOP}%"
        if 100 * count < rules.PCT_BOTTOM * denominator:
            return f"<{rules.PCT_BOTTOM}%"
    return _percent(count, denominator)


def _percent(count: int, denominator: int) -> int:
    return (200 * count + denominator) // (2 * denominator)  # integer percent, halves up, exact arithmetic


def _staff_group(table: _Table, group: _Group, rules: DisclosureRules) -> dict[str, Any]:
    if group.hidden:
        return {"group": group.code, "n": None, "cells": []}
    cells = []
    for key in table.keys if table.shape != "count" else ():
        count, denominator = group.counts[key], _denominator(table, group, key)
        percent = _percent(count, denominator) if denominator >= max(rules.PCT_MIN_DENOM, 1) else None
        cells.append({**_cell_labels(table, key), "count": count, "percent": percent})
    return {"group": group.code, "n": group.n, "cells": cells}


__all__ = [
    "ALL_GROUP",
    "COUNT_ONLY_TYPES",
    "DEFAULT_RULES",
    "MULTI_LINE_TYPES",
    "SINGLE_LINE_TYPES",
    "STATUS_NOT_YET",
    "STATUS_PUBLISHED",
    "CellCount",
    "DisclosureRules",
    "GroupCount",
    "QuestionTable",
    "protect_results",
    "protect_table",
    "round_count",
    "snapshot_due",
    "staff_table",
    "survey_gate",
]
