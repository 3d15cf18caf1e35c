"""Disclosure control (research/disclosure-control.md): every rule by hand-computed examples, then the
invariants I1-I7 as Hypothesis properties over random tables, with an attacker solver of our own for I6.

The solver reads only the public output (plus, where the module documents that it assumes the attacker
knows more, the raw values that assumption hands over) and decides feasibility with Hoffman's circulation
theorem, a different algorithm from the module's max-flow, so the two cannot share a bug.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import random
from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey.results.disclosure import (
    DEFAULT_RULES,
    CellCount,
    DisclosureRules,
    GroupCount,
    QuestionTable,
    protect_results,
    protect_table,
    round_count,
    snapshot_due,
    staff_table,
    survey_gate,
)

RULES = DEFAULT_RULES
PROPERTY = settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
Key = tuple[str | None, str, int | None]


# -- builders -----------------------------------------------------------------------------------------


def cells(counts: Sequence[int], options: str = "abcdefgh") -> tuple[CellCount, ...]:
    return tuple(CellCount(option, count) for option, count in zip(options, counts, strict=False))


def choice(
    counts: Sequence[int], groups: dict[str, Sequence[int]] | None = None, qtype: str = "likert"
) -> QuestionTable:
    """A single-line question; with ``groups`` the overall table is their sum (nobody skipped the breakdown)."""
    if groups:
        counts = [sum(column) for column in zip(*groups.values(), strict=True)]
    breakdown = tuple(GroupCount(code, sum(values), cells(values)) for code, values in (groups or {}).items())
    return QuestionTable("q", qtype, GroupCount("all", sum(counts), cells(counts)), breakdown)


def shown(result: dict[str, Any]) -> dict[str, tuple[Any, list[Any]]]:
    """group -> (n, [(count, percent) ...]) of a public or staff result."""
    return {g["group"]: (g["n"], [(c["count"], c["percent"]) for c in g["cells"]]) for g in result["groups"]}


def overall_of(result: dict[str, Any]) -> tuple[Any, list[Any]]:
    return shown(result)["all"]


# -- parameters ---------------------------------------------------------------------------------------


def test_defaults_are_the_specs_numbers():
    assert dataclasses.asdict(DisclosureRules()) == {
        "MIN_SURVEY_N": 50,
        "MIN_GROUP_N": 10,
        "CELL_MIN": 5,
        "ZERO_AMBIGUOUS_BELOW": 50,
        "ROUND_BASE": 5,
        "PCT_MIN_DENOM": 20,
        "PCT_TOP_CODE_BELOW": 100,
        "PCT_BOTTOM": 5,
        "PCT_TOP": 95,
        "MERGE_SMALL_GROUPS": True,
        "OTHER_GROUP_CODE": "other",
        "MIN_FEASIBLE_VALUES": 3,
        "FREE_TEXT_MIN_GROUP_N": 10,
        "SNAPSHOT_MIN_NEW": 10,
        "SNAPSHOT_MIN_HOURS": 24,
        "MAX_BREAKDOWN_DIMENSIONS": 2,
        "MUNICIPALITY_MIN_N": 100,
    }


def test_rules_from_config_mapping_read_upper_case_keys_and_fall_back_to_defaults():
    config = {"MIN_GROUP_N": 20, "MIN_SURVEY_N": "100", "MERGE_SMALL_GROUPS": "false", "SECRET_KEY": "x"}
    rules = DisclosureRules.from_mapping(config)
    assert (rules.MIN_GROUP_N, rules.MIN_SURVEY_N, rules.MERGE_SMALL_GROUPS) == (20, 100, False)
    assert rules.CELL_MIN == 5
    assert DisclosureRules.from_mapping({}) == DisclosureRules()


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"MIN_GROUP_N": 10.5}, TypeError),
        ({"MIN_GROUP_N": True}, TypeError),
        ({"MERGE_SMALL_GROUPS": 1}, TypeError),
        ({"MIN_GROUP_N": 0}, ValueError),
        ({"CELL_MIN": -1}, ValueError),
        ({"ROUND_BASE": 10}, ValueError),
        ({"PCT_BOTTOM": 96}, ValueError),
        ({"OTHER_GROUP_CODE": "all"}, ValueError),
        ({"MIN_FEASIBLE_VALUES": 6}, ValueError),
    ],
)
def test_rules_refuse_values_that_would_weaken_or_break_the_rules(config, error):
    with pytest.raises(error):
        DisclosureRules.from_mapping(config)


# -- rule by rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "rounded"),
    [(0, 0), (1, 0), (2, 0), (3, 5), (4, 5), (5, 5), (7, 5), (8, 10), (12, 10), (13, 15), (1237, 1235), (1238, 1240)],
)
def test_counts_round_to_five_halves_up(raw, rounded):
    assert round_count(raw) == rounded


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, {"status": "not_yet", "n": None}),
        (49, {"status": "not_yet", "n": None}),
        (50, {"status": "published", "n": 50}),
        (52, {"status": "published", "n": 50}),
        (53, {"status": "published", "n": 55}),
    ],
)
def test_survey_gate(n, expected):
    assert survey_gate(n) == expected


def test_no_question_is_published_before_the_survey_gate_opens():
    table = choice([30, 30])
    assert protect_results(49, [table]) == {"status": "not_yet", "n": None, "questions": []}
    published = protect_results(50, [table])
    assert published["n"] == 50
    assert [q["code"] for q in published["questions"]] == ["q"]


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([3, 3, 3], (None, [])),  # n = 9: the group gate
        ([5, 5], (10, [(5, None), (5, None)])),  # n = 10: shown; no percentages under 20
    ],
)
def test_group_gate(counts, expected):
    assert overall_of(protect_table(choice(counts))) == expected


def test_small_counts_show_as_under_five_and_zeros_are_exact_in_large_groups():
    # n = 200: 0 stays 0; 4 is "<5"; being alone it needs a partner, the next-smallest non-zero cell (96).
    # The attacker learns 4 + 96 = 100 exactly, so the 4 can be anything in 1..4 (the 96 is at least 5).
    assert overall_of(protect_table(choice([0, 4, 96, 100]))) == (
        200,
        [(0, 0), ("<5", None), (None, None), (100, 50)],
    )


def test_zeros_are_ambiguous_in_groups_under_fifty():
    # n = 40: the 0 becomes "<5"; a lone "<5" cell summing to 0 would say "nobody", so the smallest non-zero
    # cell is withheld too (b and c tie at 20; the option code breaks the tie).
    assert overall_of(protect_table(choice([0, 20, 20]))) == (40, [("<5", None), (None, None), (20, 50)])


def test_withheld_cells_are_null_not_under_five():
    result = protect_table(choice([3, 7, 40, 50]))  # the 7 is withheld to protect the 3
    assert overall_of(result) == (100, [("<5", None), (None, None), (40, 40), (50, 50)])


def test_hidden_cells_in_a_group_must_add_up_to_five():
    # 1 and 2 are two hidden cells but add up to 3 < 5, so the next-smallest (6) is withheld as well.
    # Reader: x1 + x2 + x3 = 60 - 51 = 9 with x3 >= 5, so each small cell keeps 1..3.
    assert overall_of(protect_table(choice([1, 2, 6, 51]))) == (
        60,
        [("<5", None), ("<5", None), (None, None), (50, 85)],
    )


def test_a_group_whose_cells_are_all_hidden_is_hidden():
    # n = 10: 1 and 1 are "<5" and add up to 2; the 8 must go too, and a group of hidden cells is hidden.
    assert overall_of(protect_table(choice([1, 1, 8]))) == (None, [])


def test_audit_withholds_more_when_the_spec_rules_leave_a_count_pinned():
    # n = 22, cells 1, 5, 8, 8. The spec's within-group rule stops at {1, 5} (two cells, sum 6). But the 8s
    # carry percentages (36 %) computed from unrounded counts, so a reader can know them and n exactly:
    # x + y = 22 - 16 = 6 with y >= 5 pins x = 1. The audit withholds the next cell of the line (an 8):
    # x + y + z = 14 with y, z >= 5 leaves x anything in 0..4.
    assert overall_of(protect_table(choice([1, 5, 8, 8]))) == (20, [("<5", None), (None, None), (None, None), (10, 36)])


def test_small_groups_and_a_hidden_merge_protect_a_small_count_in_a_large_group():
    # tur + rom (11) merge into "other", whose cells are all small, so it is hidden, and bos (15), the
    # next-smallest group, goes with it. The Serbs' 3 keeps its line partner 17, and its column reads
    # 50 + x + (the hidden groups' share): the hidden groups absorb any change, so 1..4 all fit.
    groups = {
        "alb": [50, 60, 60, 30],
        "serb": [3, 20, 17, 20],
        "bos": [2, 3, 5, 5],
        "tur": [1, 1, 1, 1],
        "rom": [0, 2, 3, 2],
    }
    table = choice([], groups)
    assert shown(protect_table(table)) == {
        "alb": (200, [(50, 25), (60, 30), (60, 30), (30, 15)]),
        "serb": (60, [("<5", None), (20, 33), (None, None), (20, 33)]),
        "bos": (None, []),
        "other": (None, []),
    }
    assert exposed_counts(table) == []


def test_a_lone_hidden_group_takes_the_next_smallest_group_with_it():
    result = protect_table(choice([], {"a": [50, 50], "b": [30, 30], "c": [4, 4]}))
    assert shown(result) == {"a": (100, [(50, 50), (50, 50)]), "b": (None, []), "c": (None, [])}


def test_hidden_groups_must_add_up_to_the_group_minimum():
    # b (3) and c (4) cannot be merged into a group of 10, and hidden together they add up to 7 < 10: a goes.
    result = protect_table(choice([], {"a": [50, 50], "b": [2, 1], "c": [2, 2]}))
    assert shown(result) == {"a": (None, []), "b": (None, []), "c": (None, [])}


def test_small_groups_merge_into_other_when_that_reaches_the_minimum():
    groups = {"a": [50, 50], "b": [30, 30], "c": [3, 3], "d": [2, 3]}
    assert shown(protect_table(choice([], groups))) == {
        "a": (100, [(50, 50), (50, 50)]),
        "b": (60, [(30, 50), (30, 50)]),
        "other": (10, [(5, None), (5, None)]),  # 11 people: 5 and 6, no percentages under 20
    }
    unmerged = protect_table(choice([], groups), DisclosureRules(MERGE_SMALL_GROUPS=False))
    assert shown(unmerged) == {
        "a": (100, [(50, 50), (50, 50)]),
        "b": (60, [(30, 50), (30, 50)]),
        "c": (None, []),
        "d": (None, []),  # c and d hidden together add up to 11: nothing else needs to go
    }


def test_an_existing_other_group_absorbs_the_small_groups():
    groups = {"a": [50, 50], "other": [15, 15], "x": [2, 2]}
    assert shown(protect_table(choice([], groups))) == {
        "a": (100, [(50, 50), (50, 50)]),
        "other": (35, [(15, 50), (15, 50)]),
    }


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([9, 10], (20, [(10, None), (10, None)])),  # n = 19: no percentages
        ([9, 11], (20, [(10, 45), (10, 55)])),  # n = 20: percentages
        ([33, 117], (150, [(35, 22), (115, 78)])),  # 22 %, from 33 of 150, not from the rounded 35
        ([60, 0, 0], (60, [(60, ">95%"), (0, "<5%"), (0, "<5%")])),  # n < 100: extreme shares coded
        ([100, 0], (100, [(100, 100), (0, 0)])),  # n >= 100: exact shares
    ],
)
def test_percentages(counts, expected):
    assert overall_of(protect_table(choice(counts))) == expected


def test_percentages_are_top_coded_only_strictly_above_95():
    result = protect_table(QuestionTable("q", "multiple_choice", GroupCount("all", 60, cells([58, 57, 30, 0]))))
    assert overall_of(result) == (60, [(60, ">95%"), (55, 95), (30, 50), (0, "<5%")])


def test_matrix_cells_carry_their_row_and_percentages_use_the_rows_answers():
    table = QuestionTable(
        "m",
        "matrix",
        GroupCount(
            "all",
            40,
            (
                CellCount("yes", 20, row="r1"),
                CellCount("no", 20, row="r1"),
                CellCount("yes", 10, row="r2"),
                CellCount("no", 15, row="r2"),
            ),
        ),
    )
    assert protect_table(table)["groups"][0]["cells"] == [
        {"row": "r1", "option": "yes", "count": 20, "percent": 50},
        {"row": "r1", "option": "no", "count": 20, "percent": 50},
        {"row": "r2", "option": "yes", "count": 10, "percent": 40},  # 10 of the 25 who answered row r2
        {"row": "r2", "option": "no", "count": 15, "percent": 60},
    ]


def test_matrix_rows_are_lines_of_their_own():
    # Row r1 has a lone small cell, so its partner (58) in the same row is withheld; row r2 is untouched.
    table = QuestionTable(
        "m",
        "matrix",
        GroupCount(
            "all",
            60,
            (
                CellCount("yes", 58, row="r1"),
                CellCount("no", 2, row="r1"),
                CellCount("yes", 30, row="r2"),
                CellCount("no", 30, row="r2"),
            ),
        ),
    )
    assert overall_of(protect_table(table)) == (60, [(None, None), ("<5", None), (30, 50), (30, 50)])


def test_ranking_cells_carry_their_rank():
    ranked = (
        CellCount("a", 30, rank=1),
        CellCount("b", 20, rank=1),
        CellCount("a", 20, rank=2),
        CellCount("b", 30, rank=2),
    )
    result = protect_table(QuestionTable("r", "ranking", GroupCount("all", 50, ranked)))
    assert result["groups"][0]["cells"][:2] == [
        {"option": "a", "rank": 1, "count": 30, "percent": 60},
        {"option": "b", "rank": 1, "count": 20, "percent": 40},
    ]


def test_free_text_is_counted_never_tabulated():
    table = QuestionTable(
        "t", "text", GroupCount("all", 37), (GroupCount("a", 30), GroupCount("b", 4), GroupCount("c", 3))
    )
    # b and c (7) cannot merge into 10 and are hidden, so a must go too: nothing shows a's count beside the total
    assert shown(protect_table(table)) == {"a": (None, []), "b": (None, []), "c": (None, [])}
    assert shown(protect_table(dataclasses.replace(table, groups=()))) == {"all": (35, [])}
    with pytest.raises(ValueError, match="never tabulated"):
        protect_table(QuestionTable("t", "text", GroupCount("all", 1, cells([1]))))


def test_staff_see_exact_counts_but_the_same_group_gate_and_filter_suppression():
    # c (8) fails the gate; b, the next-smallest, goes with it so that a + total does not give c away.
    result = staff_table(choice([], {"a": [97, 3], "b": [30, 30], "c": [4, 4]}))
    assert shown(result) == {"a": (100, [(97, 97), (3, 3)]), "b": (None, []), "c": (None, [])}


def test_staff_read_free_text_only_in_groups_over_the_free_text_threshold():
    table = QuestionTable(
        "t", "text", GroupCount("all", 100), (GroupCount("a", 60), GroupCount("b", 28), GroupCount("c", 12))
    )
    assert shown(staff_table(table)) == {"a": (60, []), "b": (28, []), "c": (12, [])}
    stricter = DisclosureRules(FREE_TEXT_MIN_GROUP_N=15)
    assert shown(staff_table(table, stricter)) == {"a": (60, []), "b": (None, []), "c": (None, [])}


@pytest.mark.parametrize(
    ("kwargs", "due"),
    [
        ({"responses": 49, "responses_at_last": None, "hours_since_last": None}, False),
        ({"responses": 50, "responses_at_last": None, "hours_since_last": None}, True),
        ({"responses": 10, "responses_at_last": None, "hours_since_last": None, "closed": True}, True),
        ({"responses": 69, "responses_at_last": 60, "hours_since_last": 500.0}, False),  # 9 new
        ({"responses": 70, "responses_at_last": 60, "hours_since_last": 23.9}, False),  # too soon
        ({"responses": 70, "responses_at_last": 60, "hours_since_last": 24.0}, True),
        ({"responses": 61, "responses_at_last": 60, "hours_since_last": 1.0, "closed": True}, True),  # at close
        ({"responses": 60, "responses_at_last": 60, "hours_since_last": 99.0, "closed": True}, False),
        ({"responses": 40, "responses_at_last": 60, "hours_since_last": 99.0}, False),  # retention deleted rows
    ],
)
def test_snapshot_cadence(kwargs, due):
    assert snapshot_due(**kwargs) is due


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (QuestionTable("q", "likert", GroupCount("all", 5, cells([1, 2]))), "add up to n"),
        (QuestionTable("q", "poll", GroupCount("all", 3, cells([3]))), "unknown type"),
        (QuestionTable("q", "likert", GroupCount("all", 2, (CellCount("a", 1), CellCount("a", 1)))), "twice"),
        (
            QuestionTable("q", "likert", GroupCount("all", 2, cells([2])), (GroupCount("x", 3, cells([3])),)),
            "more than",
        ),
        (QuestionTable("q", "likert", GroupCount("all", -1, ())), "non-negative"),
        (QuestionTable("q", "matrix", GroupCount("all", 2, cells([2]))), "row"),
        (QuestionTable("q", "multiple_choice", GroupCount("all", 2, cells([3]))), "exceeds n"),
        (QuestionTable("q", "likert", GroupCount("all", 2, cells([2])), (GroupCount("all", 2, cells([2])),)), "unique"),
    ],
)
def test_inconsistent_input_is_refused(table, message):
    with pytest.raises(ValueError, match=message):
        protect_table(table)


# -- random tables ------------------------------------------------------------------------------------

SCALES = (3, 8, 15, 30, 70, 160)
ALL_TYPES = ("likert", "single_choice", "multiple_choice", "matrix", "ranking", "text")


# Strategies are built once: Hypothesis spends most of its time validating strategies built per draw.
# Half the cells are small, so that "<5", zeros and secondary suppression are exercised everywhere.
CELL = {
    scale: st.integers(0, 2 * scale + 1).map(lambda v, s=scale: v if v <= s else (v - s - 1) % 5) for scale in SCALES
}
SCALE = st.sampled_from(SCALES)
INTS = {(low, high): st.integers(low, high) for low in range(3) for high in range(6)}


@cache
def cell_lists(scale: int, length: int) -> st.SearchStrategy[list[int]]:
    return st.lists(CELL[scale], min_size=length, max_size=length)


def draw_keys(draw: st.DrawFn, qtype: str) -> list[Key]:
    if qtype == "text":
        return []
    if qtype == "matrix":
        rows, points = draw(INTS[1, 2]), draw(INTS[2, 4])
        return [(f"r{r}", f"p{p}", None) for r in range(rows) for p in range(points)]
    if qtype == "ranking":
        options = draw(INTS[2, 3])
        return [(None, f"o{o}", rank) for rank in range(1, options + 1) for o in range(options)]
    return [(None, f"o{o}", None) for o in range(draw(INTS[2, 5 if qtype in ("likert", "single_choice") else 4]))]


def draw_group(draw: st.DrawFn, code: str, qtype: str, keys: list[Key]) -> GroupCount:
    scale = draw(SCALE)
    counts = draw(cell_lists(scale, len(keys)))
    if qtype in ("likert", "single_choice"):
        n = sum(counts)
    else:  # n bounds every line of a multi-line question; some respondents may skip rows or choose little
        lines: dict[Any, int] = {}
        for (row, option, rank), count in zip(keys, counts, strict=True):
            line = ("row", row) if qtype == "matrix" else ("rank", rank)
            lines[line] = lines.get(line, 0) + count
            if qtype == "ranking":  # nobody ranks an option twice
                lines["option", option] = lines.get(("option", option), 0) + count
        n = max([0, *(counts if qtype == "multiple_choice" else lines.values())]) + draw(CELL[scale])
    return GroupCount(code, n, tuple(CellCount(o, c, row=r, rank=k) for (r, o, k), c in zip(keys, counts, strict=True)))


CODES = st.permutations(["a", "b", "c", "d", "other"])


@st.composite
def question_tables(draw: st.DrawFn, types: Sequence[str] = ALL_TYPES, max_groups: int = 4) -> QuestionTable:
    qtype = draw(st.sampled_from(types))
    keys = draw_keys(draw, qtype)
    n_groups = draw(INTS[0, max_groups])
    if n_groups == 0:
        overall = draw_group(draw, "all", qtype, keys)
        return QuestionTable("q", qtype, overall)
    codes = draw(CODES)[:n_groups]
    groups = [draw_group(draw, code, qtype, keys) for code in codes]
    # respondents who skipped the demographic question are in the overall table only
    skipped = draw_group(draw, "skipped", qtype, keys) if draw(st.booleans()) else GroupCount("skipped", 0, ())
    everyone = [*groups, skipped]
    totals = [
        sum(cell.count for g in everyone for cell in g.cells if (cell.row, cell.option, cell.rank) == key)
        for key in keys
    ]
    overall = GroupCount(
        "all",
        sum(g.n for g in everyone),
        tuple(CellCount(o, c, row=r, rank=k) for (r, o, k), c in zip(keys, totals, strict=True)),
    )
    return QuestionTable("q", qtype, overall, tuple(groups))


def key_of(cell: dict[str, Any] | CellCount) -> Key:
    if isinstance(cell, CellCount):
        return (cell.row, cell.option, cell.rank)
    return (cell.get("row"), cell["option"], cell.get("rank"))


@dataclasses.dataclass
class Raw:
    n: int
    counts: dict[Key, int]


def raw_groups(table: QuestionTable, result: dict[str, Any], rules: DisclosureRules = RULES) -> dict[str, Raw]:
    """The raw group behind each published group; "other" merges the groups that disappeared (and any input
    group called "other")."""
    if not table.groups:
        return {"all": Raw(table.overall.n, {key_of(c): c.count for c in table.overall.cells})}
    published = {g["group"] for g in result["groups"]}
    missing = {g.group for g in table.groups if g.group not in published}
    merged = missing | {rules.OTHER_GROUP_CODE} if missing else set()
    raw = {g.group: Raw(g.n, {key_of(c): c.count for c in g.cells}) for g in table.groups if g.group not in merged}
    if merged:
        counts: dict[Key, int] = {}
        for g in table.groups:
            for c in g.cells if g.group in merged else ():
                counts[key_of(c)] = counts.get(key_of(c), 0) + c.count
        raw[rules.OTHER_GROUP_CODE] = Raw(sum(g.n for g in table.groups if g.group in merged), counts)
    return raw


def public_cells(group: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    return {key_of(c): c for c in group["cells"]}


# -- I1 to I5 ------------------------------------------------------------------------------------------


@PROPERTY
@given(question_tables(), st.integers(0, 120))
def test_i1_nothing_for_small_groups_and_nothing_before_the_survey_gate(table, n_total):
    results = protect_results(n_total, [table])
    if n_total < RULES.MIN_SURVEY_N:
        assert results == {"status": "not_yet", "n": None, "questions": []}
        return
    question = results["questions"][0]
    raw = raw_groups(table, question)
    assert set(raw) == {g["group"] for g in question["groups"]}
    for group in question["groups"]:
        if raw[group["group"]].n < RULES.MIN_GROUP_N:
            assert group == {"group": group["group"], "n": None, "cells": []}


@PROPERTY
@given(question_tables())
def test_i2_counts_are_multiples_of_five_or_under_five_and_never_a_true_small_count(table):
    for source in (table, dataclasses.replace(table, groups=())):
        result = protect_table(source)
        raw = raw_groups(source, result)
        for group in result["groups"]:
            assert group["n"] is None or (group["n"] % 5 == 0 and group["n"] >= RULES.MIN_GROUP_N)
            for key, cell in public_cells(group).items():
                count = cell["count"]
                assert count is None or count == "<5" or (type(count) is int and count % 5 == 0)
                if 1 <= raw[group["group"]].counts[key] <= 4:
                    assert count == "<5"
                assert cell["percent"] is None or cell["percent"] in ("<5%", ">95%") or 0 <= cell["percent"] <= 100
                if count in ("<5", None):
                    assert cell["percent"] is None


def lines_of(qtype: str, keys: list[Key]) -> list[list[Key]]:
    if qtype == "matrix":
        return [[k for k in keys if k[0] == row] for row in dict.fromkeys(k[0] for k in keys)]
    if qtype == "ranking":
        by_rank = [[k for k in keys if k[2] == rank] for rank in dict.fromkeys(k[2] for k in keys)]
        return by_rank + [[k for k in keys if k[1] == option] for option in dict.fromkeys(k[1] for k in keys)]
    return [keys]


@PROPERTY
@given(question_tables(types=("likert", "multiple_choice", "matrix", "ranking")))
def test_i3_hidden_cells_come_in_twos_that_add_up_to_five(table):
    result = protect_table(table)
    raw = raw_groups(table, result)
    for group in result["groups"]:
        if group["n"] is None:
            continue
        published = public_cells(group)
        for line in lines_of(table.type, list(published)):
            hidden = [raw[group["group"]].counts[key] for key in line if published[key]["count"] in ("<5", None)]
            assert not hidden or (len(hidden) >= 2 and sum(hidden) >= RULES.CELL_MIN), (group["group"], line)
        assert any(cell["count"] not in ("<5", None) for cell in published.values()), "a group of hidden cells"


@PROPERTY
@given(question_tables())
def test_i4_no_margin_has_exactly_one_hidden_group(table):
    for result in (protect_table(table), staff_table(table)):
        # A breakdown of one group has no second group to hide: that group is the margin (then hidden with
        # it, under 10) or shares it only with respondents who skipped the question, who are never published.
        if len(result["groups"]) > 1:
            hidden = [g for g in result["groups"] if g["n"] is None]
            assert len(hidden) != 1
            raw = raw_groups(table, result)
            everything = len(hidden) == len(result["groups"])  # nothing left to hide with them
            assert not hidden or everything or sum(raw[g["group"]].n for g in hidden) >= RULES.MIN_GROUP_N


def status_map(result: dict[str, Any]) -> dict[Any, Any]:
    """What is published about each group and each cell, whatever order they are listed in."""
    sizes = {g["group"]: g["n"] for g in result["groups"]}
    return sizes | {
        (g["group"], key): (c["count"], c["percent"]) for g in result["groups"] for key, c in public_cells(g).items()
    }


@PROPERTY
@given(question_tables(), st.integers(0, 2**32))
def test_i5_same_input_same_bytes_and_a_cell_has_one_status_whatever_the_listing_order(table, seed):
    first = json.dumps(protect_table(table), ensure_ascii=False)
    assert json.dumps(protect_table(table), ensure_ascii=False) == first
    # an equal table built anew (as from another read of the same snapshot) gives the same bytes too
    assert json.dumps(protect_table(pickle.loads(pickle.dumps(table))), ensure_ascii=False) == first  # noqa: S301

    rnd = random.Random(seed)

    def shuffled(group: GroupCount) -> GroupCount:
        return dataclasses.replace(group, cells=tuple(rnd.sample(group.cells, len(group.cells))))

    reordered = QuestionTable(
        table.code,
        table.type,
        shuffled(table.overall),
        tuple(shuffled(g) for g in rnd.sample(table.groups, len(table.groups))),
    )
    assert status_map(protect_table(reordered)) == status_map(json.loads(first))


# -- I6: the attacker solver -----------------------------------------------------------------------------
#
# The attacker sees the published breakdown and, beside it, the published overall table of the question.
# For one slice (the question; one matrix row; one ranking position) the unknowns are the raw cells of
# every group plus, when some respondents skipped the demographic question, an unpublished "skipped" row.
# What they know, as intervals:
#   - a shown count: its rounding interval, minus 1..4 (those would be "<5"); a shown 0 is exactly 0;
#     with a percentage, only the counts that give that percentage (or that share, when top/bottom coded);
#   - "<5": 0..4 in groups under 50 (zeros are ambiguous there), else 1..4; withheld (null): at least 5;
#   - a shown n: its rounding interval, at least MIN_GROUP_N, under 20 if no percentage is shown;
#   - hidden groups and the skipped row: anything;
#   - rows add up to n (single-line questions), columns to the overall table's cells, the total to its n.
# Stricter than the published numbers alone, in the ways the module documents (a stronger attacker; if a
# count survives them it survives the real one): where percentages are shown, the group's n (the
# percentage's base) is known exactly, as percentages from unrounded counts can give it away; the line
# totals of multi-line questions are known; the attacker knows which side of 50 a group's n is on.
BIG = 10**6


@cache
def masks(rows: int) -> np.ndarray:
    return np.array([[(mask >> i) & 1 for i in range(rows)] for mask in range(1 << rows)], dtype=np.int64)


def circulation_feasible(rows: np.ndarray, columns: np.ndarray, cells: np.ndarray, total: tuple[int, int]) -> bool:
    """Hoffman: bounds l <= u admit a circulation iff no vertex set X has more forced in than allowed out.

    Arcs T->S (total), S->row, row->column (cells), column->T; rows, columns are (k, 2) arrays of [low, high],
    cells (r, c, 2). For each choice of S, T and the rows inside X, the worst set of columns is picked
    column by column, so 4 * 2**rows sets are checked, each in one vectorised step.
    """
    if (
        (rows[:, 0] > rows[:, 1]).any()
        or (columns[:, 0] > columns[:, 1]).any()
        or (cells[..., 0] > cells[..., 1]).any()
    ):
        return False
    if total[0] > total[1]:
        return False
    inside = masks(len(rows))
    outside = 1 - inside
    low_from_outside = outside @ cells[..., 0]  # per row set A and column j: sum of lows of rows not in A
    high_from_inside = inside @ cells[..., 1]
    rows_low_inside = inside @ rows[:, 0]
    rows_high_outside = outside @ rows[:, 1]
    for s_in in (False, True):
        for t_in in (False, True):
            column_in = low_from_outside - (0 if t_in else columns[:, 1])  # column j inside X
            column_out = (columns[:, 0] if t_in else 0) - high_from_inside  # column j outside X
            balance = np.maximum(column_in, column_out).sum(axis=1)
            balance += -rows_high_outside if s_in else rows_low_inside
            if s_in and not t_in:
                balance += total[0]
            if t_in and not s_in:
                balance -= total[1]
            if (balance > 0).any():
                return False
    return True


def interval(shown_value: int) -> tuple[int, int]:
    return max(0, shown_value - 2), shown_value + 2


def percent_shown(count: int, denominator: int) -> int | str | None:
    """The spec's percentage rule, written again here with exact fractions."""
    if denominator < 20:
        return None
    share = Fraction(100 * count, denominator)
    if denominator < 100 and share > 95:
        return ">95%"
    if denominator < 100 and share < 5:
        return "<5%"
    return math.floor(share + Fraction(1, 2))


def cell_knowledge(cell: dict[str, Any] | None, group_n: int, denominator: int) -> tuple[int, int]:
    """What the attacker knows of one cell; ``denominator`` is the percentage's base, taken as known."""
    if cell is None:  # a hidden group's cell
        return (0, BIG)
    count = cell["count"]
    if count == "<5":
        return (0 if group_n < 50 else 1, 4)
    if count is None:
        return (5, BIG)
    if count == 0:
        return (0, 0)
    low, high = interval(count)
    values = [v for v in range(max(low, 5), high + 1) if percent_shown(v, denominator) == cell["percent"]]
    return (min(values), max(values))


def size_knowledge(group: dict[str, Any], raw_n: int, qtype: str) -> tuple[int, int]:
    if group["n"] is None:
        return (0, BIG)
    low, high = interval(group["n"])
    if qtype == "text":
        return (max(low, 10), high)
    if any(c["percent"] is not None for c in group["cells"]):
        return (raw_n, raw_n)
    low, high = max(low, 10), min(high, 19)
    return (low, min(high, 49)) if raw_n < 50 else (max(low, 50), high)


def slices_of(qtype: str, keys: list[Key]) -> list[list[Key]]:
    if qtype == "matrix":
        return lines_of(qtype, keys)
    if qtype == "ranking":
        return [[k for k in keys if k[2] == rank] for rank in dict.fromkeys(k[2] for k in keys)]
    return [keys]


TEXT_KEY: Key = ("", "", None)
MULTI = ("multiple_choice", "matrix", "ranking")


@dataclasses.dataclass
class Slice:
    """The attacker's constraints on one slice, and the hidden small counts in it."""

    rows: list[tuple[int, int]]
    columns: list[tuple[int, int]]
    cells: list[list[tuple[int, int]]]
    total: tuple[int, int]
    targets: list[tuple[str, int, int, int, str]]  # (arc kind, row, column, true value, name)

    def feasible(self, kind: str, i: int, j: int, value: int) -> bool:
        rows, columns = np.array(self.rows, dtype=np.int64), np.array(self.columns, dtype=np.int64)
        cells = np.array(self.cells, dtype=np.int64).reshape(len(self.rows), len(self.columns), 2)
        arc = {"row": rows[i], "cell": cells[i, j], "column": columns[j]}[kind]
        if not arc[0] <= value <= arc[1]:
            return False
        arc[:] = value
        return circulation_feasible(rows, columns, cells, self.total)


def attacker_slices(table: QuestionTable, result: dict[str, Any], overall_result: dict[str, Any]) -> list[Slice]:
    qtype = table.type
    top_public = overall_result["groups"][0]
    top = raw_groups(dataclasses.replace(table, groups=()), overall_result)["all"]
    keys = list(top.counts)
    rows: list[tuple[dict[str, Any] | None, Raw]] = [(top_public, top)]
    if table.groups:
        raw = raw_groups(table, result)
        rows = [(g, raw[g["group"]]) for g in result["groups"]]
        skipped = top.n - sum(r.n for _g, r in rows)
        if skipped > 0:  # respondents who skipped the demographic question: an unpublished row
            rest = {key: top.counts[key] - sum(r.counts.get(key, 0) for _g, r in rows) for key in keys}
            rows.append((None, Raw(skipped, rest)))
    if qtype == "text":
        keys = [TEXT_KEY]
        for r in [top, *(r for _g, r in rows)]:
            r.counts = {TEXT_KEY: r.n}
    top_cells = public_cells(top_public)

    def denominator(r: Raw, key: Key) -> int:
        return sum(c for k, c in r.counts.items() if k[0] == key[0]) if qtype == "matrix" else r.n

    slices = []
    for part in slices_of(qtype, keys):

        def line(r: Raw, part: list[Key] = part) -> int:
            return sum(r.counts.get(k, 0) for k in part) if qtype in MULTI else r.n

        piece = Slice([], [], [], (0, BIG), [])
        for i, (group, r) in enumerate(rows):
            hidden = group is None or group["n"] is None
            if hidden:
                piece.rows.append((0, BIG))
            elif qtype in MULTI:
                piece.rows.append((line(r), line(r)))
            else:
                piece.rows.append(size_knowledge(group, r.n, qtype))
            if group is not None and hidden and qtype not in MULTI and 1 <= r.n <= 4:
                piece.targets.append(("row", i, 0, r.n, f"n of {group['group']}"))
            published = public_cells(group) if group is not None else {}
            piece.cells.append([])
            for j, key in enumerate(part):
                count = r.counts.get(key, 0)
                if group is None or qtype == "text":
                    piece.cells[i].append((0, BIG))
                    continue
                piece.cells[i].append(cell_knowledge(published.get(key), r.n, denominator(r, key)))
                if (hidden or published[key]["count"] in ("<5", None)) and 1 <= count <= 4:
                    piece.targets.append(("cell", i, j, count, f"{group['group']} {key}"))
        if not table.groups:
            piece.columns = [(0, BIG)] * len(part)
        else:
            top_hidden = top_public["n"] is None
            for j, key in enumerate(part):
                count = top.counts[key]
                if top_hidden or qtype == "text":
                    piece.columns.append((0, BIG))
                else:
                    piece.columns.append(cell_knowledge(top_cells[key], top.n, denominator(top, key)))
                if qtype != "text" and (top_hidden or top_cells[key]["count"] in ("<5", None)) and 1 <= count <= 4:
                    piece.targets.append(("column", 0, j, count, f"all {key}"))
            if qtype in MULTI:
                piece.total = (0, BIG) if top_hidden else (line(top), line(top))
            else:
                piece.total = size_knowledge(top_public, top.n, qtype)

        # The true table must satisfy everything the attacker knows, or the model is wrong.
        truth = [[r.counts.get(k, 0) for k in part] for _g, r in rows]
        for bounds, values in zip(piece.cells, truth, strict=True):
            assert all(low <= v <= high for (low, high), v in zip(bounds, values, strict=True))
        assert all(low <= line(r) <= high for (low, high), (_g, r) in zip(piece.rows, rows, strict=True))
        assert all(
            low <= sum(col) <= high for (low, high), col in zip(piece.columns, zip(*truth, strict=True), strict=True)
        )
        assert piece.total[0] <= sum(line(r) for _g, r in rows) <= piece.total[1]
        slices.append(piece)
    return slices


def exposed_counts(
    table: QuestionTable,
    rules: DisclosureRules = RULES,
    *,
    result: dict[str, Any] | None = None,
    overall_result: dict[str, Any] | None = None,
) -> list[str]:
    """Every hidden true count 1..4 that an attacker can narrow to fewer than 3 values (empty if none)."""
    overall_result = overall_result or protect_table(dataclasses.replace(table, groups=()), rules)
    result = result or protect_table(table, rules)
    exposed = []
    for piece in attacker_slices(table, result, overall_result):
        for kind, i, j, true, name in piece.targets:
            found = 1  # the true value
            for value in (v for d in (1, 2, 3, 4) for v in (true - d, true + d) if v >= 0):
                if found >= rules.MIN_FEASIBLE_VALUES:
                    break
                found += piece.feasible(kind, i, j, value)
            if found < rules.MIN_FEASIBLE_VALUES:
                exposed.append(f"{name} = {true}: {found} feasible value(s)")
    return exposed


def test_solver_finds_what_the_spec_rules_alone_would_leave_exposed():
    # Without the audit, 1, 5, 8, 8 (n = 22) would be published as "<5", null, 10 (36 %), 10 (36 %), and the
    # attacker gets x + y = 6 with y >= 5: x is 0 or 1 (zeros are ambiguous under 50), two values.
    table = choice([1, 5, 8, 8])
    naive = {"code": "q", "type": "likert", "groups": [{"group": "all", "n": 20, "cells": [
        {"option": "a", "count": "<5", "percent": None}, {"option": "b", "count": None, "percent": None},
        {"option": "c", "count": 10, "percent": 36}, {"option": "d", "count": 10, "percent": 36}]}]}  # fmt: skip
    assert exposed_counts(table, result=naive, overall_result=naive) == [
        "all (None, 'a', None) = 1: 2 feasible value(s)"
    ]
    assert exposed_counts(table) == []


def test_audit_closes_a_rectangle_when_a_column_pins_a_count():
    # The Serbs' 3 has its line partner 27 (spec rule), but its column does not hide it: the overall 53 and
    # the Albanians' 50 are known exactly (percentages shown), so 53 - 50 = 3. The audit withholds the
    # Albanians' 50 in that column and their 100 in the partner's column: four hidden cells in a rectangle,
    # around which 1..4 can move without changing any published number.
    table = choice([], {"alb": [50, 100, 50], "serb": [3, 27, 30]})
    assert shown(protect_table(table)) == {
        "alb": (200, [(None, None), (None, None), (50, 25)]),
        "serb": (60, [("<5", None), (None, None), (30, 50)]),
    }
    assert exposed_counts(table) == []
    spec_rules_only = {"code": "q", "type": "likert", "groups": [
        {"group": "alb", "n": 200, "cells": [{"option": "a", "count": 50, "percent": 25},
         {"option": "b", "count": 100, "percent": 50}, {"option": "c", "count": 50, "percent": 25}]},
        {"group": "serb", "n": 60, "cells": [{"option": "a", "count": "<5", "percent": None},
         {"option": "b", "count": None, "percent": None}, {"option": "c", "count": 30, "percent": 50}]}]}  # fmt: skip
    assert exposed_counts(table, result=spec_rules_only) == ["serb (None, 'a', None) = 3: 1 feasible value(s)"]


@PROPERTY
@given(question_tables(types=("likert", "single_choice")))
def test_i6_attacker_keeps_at_least_three_values_for_every_hidden_small_count(table):
    assert exposed_counts(table) == []


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(question_tables(types=("multiple_choice", "matrix", "ranking", "text")))
def test_i6_holds_for_multi_line_and_text_questions_too(table):
    assert exposed_counts(table) == []


# -- I7 ---------------------------------------------------------------------------------------------------


class Publisher:
    """What the app does: serve the last snapshot, and take a new one only when ``snapshot_due`` says so."""

    def __init__(self, tables: list[QuestionTable], responses: int) -> None:
        self.responses_at_last: int | None = None
        self.hours_since_last: float | None = None
        self.output = ""
        self.refresh(tables, responses, 0.0)

    def refresh(self, tables: list[QuestionTable], responses: int, hours_passed: float) -> None:
        if self.hours_since_last is not None:
            self.hours_since_last += hours_passed
        if snapshot_due(
            responses=responses, responses_at_last=self.responses_at_last, hours_since_last=self.hours_since_last
        ):
            self.output = json.dumps(protect_results(responses, tables))
            self.responses_at_last, self.hours_since_last = responses, 0.0


@PROPERTY
@given(
    question_tables(types=("likert",), max_groups=3),
    st.integers(50, 400),
    st.lists(st.tuples(st.integers(1, 4), st.integers(0, 200)), min_size=1, max_size=4),
)
def test_i7_fewer_than_ten_new_responses_leave_the_public_output_unchanged(table, responses, arrivals):
    publisher = Publisher([table], responses)
    before = publisher.output
    assert json.loads(before)["status"] == "published"
    new = 0
    for count, hours in arrivals:
        new += count
        if new >= RULES.SNAPSHOT_MIN_NEW:
            break
        grown = choice([*(c.count for c in table.overall.cells[:-1]), table.overall.cells[-1].count + new])
        publisher.refresh([grown], responses + new, hours)
        assert publisher.output == before
    assert not snapshot_due(responses=responses + 9, responses_at_last=responses, hours_since_last=10**6)
    assert snapshot_due(responses=responses + 10, responses_at_last=responses, hours_since_last=24.0)


def realistic_breakdowns(count: int) -> list[dict[str, list[int]]]:
    """Survey-like community breakdowns: two large groups, a tail of small ones, answers from Dirichlet shares."""
    rng = np.random.default_rng(2026)
    sizes = {"alb": 640, "srb": 380, "bos": 60, "rae": 35, "tur": 25, "gor": 8, "oth": 20, "mix": 22, "pns": 45}
    tables = []
    for _ in range(count):
        spread = float(rng.choice([0.3, 1.0, 3.0]))
        tables.append(
            {
                code: [int(x) for x in rng.multinomial(max(0, int(rng.normal(n, n / 5))), rng.dirichlet([spread] * 5))]
                for code, n in sizes.items()
            }
        )
    return tables


def test_i6_holds_for_realistic_tables_larger_than_the_random_ones():
    for groups in realistic_breakdowns(10):
        assert exposed_counts(choice([], groups)) == []


def test_the_audit_keeps_realistic_tables_useful():
    # Not an invariant but a guard on usefulness: nearly every count of 5 or more in groups of 50 or more
    # stays visible in survey-like tables.
    visible = candidates = 0
    for groups in realistic_breakdowns(30):
        for code, (_n, published) in shown(protect_table(choice([], groups))).items():
            if code in groups and sum(groups[code]) >= 50:
                candidates += sum(1 for count in groups[code] if count >= 5)
                visible += sum(1 for count, _percent in published if isinstance(count, int) and count > 0)
    assert visible > 0.85 * candidates
