"""Partner microdata: k-anonymity over the demographic questions, generalised or refused, and distinct
l-diversity on the opinion items, by withholding (P9)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyreadstat
import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.errors import ExportOptionsInvalidError, ExportRefusedError
from survey.exports.dataset import ClassProfile, build_dataset
from survey.exports.privacy import (
    LDiversityReport,
    opinion_items,
    partner_dataset,
    plan_k_anonymity,
    plan_l_diversity,
)
from survey.exports.services import export_responses
from tests.exports.conftest import CODE, export_definition, make_questionnaire, sample_answers, submit

# community × age: twenty respondents in four classes of five, and two alone.
TABLE = Counter({("x", "a1"): 5, ("x", "a2"): 5, ("y", "a1"): 5, ("y", "a2"): 5, ("z", "a1"): 1, ("w", "a1"): 1})


def test_a_rare_combination_is_generalised_into_other():
    report = plan_k_anonymity(TABLE, ["community", "age"], k=5)
    assert report.status == "generalised"
    assert (report.n, report.classes_before, report.smallest_class_before) == (22, 6, 1)
    assert report.rows_in_small_classes_before == 2
    # The two lone values merge into "other" (2 responses), still too few with a1, so the rarest
    # remaining community (x; tie with y broken by code) joins them. Age is kept.
    assert report.merged == {"community": ["w", "z", "x"]}
    assert report.other_values == {"community": "other"} and report.dropped == []
    assert report.smallest_class_after == 5 and report.classes_after == 4
    assert len(report.steps) == 2 and "merged 'w', 'z' into 'other'" in report.steps[0]


def test_refusal_when_generalising_is_not_allowed_or_too_few_responses():
    refused = plan_k_anonymity(TABLE, ["community", "age"], k=5, generalise=False)
    assert refused.status == "refused" and "2 combination(s)" in (refused.reason or "")
    assert refused.merged == {}
    tiny = plan_k_anonymity(Counter({("x",): 3, ("y",): 1}), ["community"], k=5)
    assert tiny.status == "refused" and "fewer than k" in (tiny.reason or "")


def test_an_already_safe_table_is_released_unchanged():
    report = plan_k_anonymity(Counter({("x", "a1"): 6, ("y", "a2"): 9}), ["community", "age"], k=5)
    assert report.status == "released" and report.merged == {} and report.dropped == []


def test_a_question_left_with_one_category_is_dropped_and_other_never_collides():
    counts = Counter({("other", "a1"): 12, ("y", "a2"): 6, ("z", "a1"): 1})
    report = plan_k_anonymity(counts, ["community", "age"], k=5)
    assert report.other_values["community"] == "other_merged"  # "other" is a real answer here
    assert report.dropped == ["community"] and report.status == "generalised"
    assert report.smallest_class_after is not None and report.smallest_class_after >= 5


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["x", "y", "z", None]), st.sampled_from(["a1", "a2", "a3"]), st.sampled_from("mf")),
        st.integers(min_value=1, max_value=12),
        min_size=1,
    ),
    st.integers(min_value=2, max_value=10),
)
def test_every_released_table_is_k_anonymous(table: dict[tuple[Any, ...], int], k: int):
    counts = Counter(table)
    names = ["community", "age", "gender"]
    report = plan_k_anonymity(counts, names, k=k)
    if report.status == "refused":
        assert sum(counts.values()) < k
        return
    kept = [i for i, name in enumerate(names) if name not in report.dropped]
    classes: Counter[tuple[Any, ...]] = Counter()
    for combo, count in counts.items():
        classes[tuple(report.mapping(names[i]).get(combo[i], combo[i]) for i in kept)] += count
    assert min(classes.values()) >= k
    assert report.smallest_class_after == min(classes.values())


# -- through the database ------------------------------------------------------------------------


def submit_table(table: Counter[tuple[str, str]]) -> None:
    make_questionnaire(export_definition())
    i = 0
    for (community, age), count in sorted(table.items()):
        for _ in range(count):
            submit(CODE, {**sample_answers(i), "community": community, "age": age})
            i += 1


def test_partner_export_is_generalised_with_its_report(app: Flask):
    submit_table(TABLE)
    dataset, report = partner_dataset(CODE, k=5)
    assert report.quasi_identifiers == ["community", "age"]
    assert report.merged == {"community": ["w", "z", "x"]} and report.status == "generalised"

    assert "comment" not in dataset.names and "story" not in dataset.names  # no free text
    assert "month" in dataset.names and "day" not in dataset.names
    community = dataset.column("community")
    assert [c.value for c in community.categories] == ["y", "prefer_not_to_say", "other"]
    assert community.categories[-1].label("sq") == "Tjetër (kategoritë e rralla të bashkuara)"
    rows = [dict(zip(dataset.names, row, strict=True)) for row in dataset.rows()]
    assert len(rows) == 22
    classes = Counter((row["community"], row["age"]) for row in rows)
    assert classes == Counter({("other", "a1"): 7, ("other", "a2"): 5, ("y", "a1"): 5, ("y", "a2"): 5})
    assert dataset.privacy["k_anonymity"]["merged_into_other"] == {"community": ["w", "z", "x"]}
    assert dataset.privacy["row_order"].startswith("shuffled")

    out = io.BytesIO()
    summary = export_responses(CODE, "csv", out, partner=True, k=5)
    assert summary.rows_written == summary.responses == 22
    assert summary.k_anonymity is not None and summary.k_anonymity.status == "generalised"
    assert b'"other"' in out.getvalue() and b'"w"' not in out.getvalue()


def test_partner_sav_labels_the_other_category(app: Flask, tmp_path: Path):
    submit_table(TABLE)
    path = tmp_path / "partner.sav"
    with path.open("wb") as out:
        export_responses(CODE, "sav", out, partner=True)
    frame, meta = pyreadstat.read_sav(str(path))
    labels = meta.variable_value_labels["community"]
    assert set(labels.values()) == {"y [en]", "prefer_not_to_say [en]", "Other (rare categories merged)"}
    assert Counter(frame["community"].map(labels)) == Counter({"Other (rare categories merged)": 12, "y [en]": 10})


def test_partner_export_is_refused_when_asked_not_to_generalise(app: Flask):
    submit_table(TABLE)
    with pytest.raises(ExportRefusedError) as caught:
        partner_dataset(CODE, k=5, generalise=False)
    assert caught.value.status == 409
    assert caught.value.report.status == "refused"
    assert caught.value.errors["k_anonymity"]["rows_in_small_classes_before"] == 2


def test_partner_export_of_too_few_responses_is_refused(app: Flask):
    submit_table(Counter({("x", "a1"): 3}))
    with pytest.raises(ExportRefusedError) as caught:
        export_responses(CODE, "csv", io.BytesIO(), partner=True, k=5)
    assert "fewer than k" in caught.value.detail


# -- distinct l-diversity on the opinion items -------------------------------------------------------

Answers = dict[str, Any]


def profile_of(table: dict[tuple[Any, ...], list[Answers]], items: Sequence[str]) -> ClassProfile:
    """The profile the database would return for these hand-written rows (one answer dict a row)."""
    profile = ClassProfile(("community",), tuple(items))
    for combo, rows in table.items():
        for answers in rows:
            found = [answers.get(item) for item in items]
            profile.add(combo, 1, [() if v is None else (v,) for v in found], [int(v is not None) for v in found])
    return profile


def diversity_of(table: dict[tuple[Any, ...], list[Answers]], k: int = 1, l: int = 2) -> LDiversityReport:  # noqa: E741
    profile = profile_of(table, ["support", "heard"])
    report = plan_k_anonymity(profile.counts, ["community"], k=k)
    return plan_l_diversity(profile, report, l)


AGREE, NEUTRAL = {"support": "agree"}, {"support": "neutral"}

# (case, rows per community, k, l, withheld (class -> items), answers withheld per item)
L_CASES = [
    ("everyone gave the same answer: withheld", {("x",): [AGREE] * 5}, 1, 2, {("x",): ["support"]}, {"support": 5}),
    ("two different answers: kept", {("x",): [AGREE] * 4 + [NEUTRAL]}, 1, 2, {}, {}),
    ("missing answers are not a value", {("x",): [AGREE, {}, {}, {}, {}]}, 1, 2, {("x",): ["support"]}, {"support": 1}),
    ("nobody answered: nothing to withhold", {("x",): [{}] * 5}, 1, 2, {}, {}),
    ("a non-substantive code is a value", {("x",): [AGREE] * 3 + [{"support": "dont_know"}] * 2}, 1, 2, {}, {}),
    (
        "each class on its own",
        {("x",): [AGREE] * 5, ("y",): [AGREE, NEUTRAL] * 3},
        1,
        2,
        {("x",): ["support"]},
        {"support": 5},
    ),
    (
        "both items of one class",
        {("x",): [{"support": "agree", "heard": "no"}] * 5},
        1,
        2,
        {("x",): ["support", "heard"]},
        {"support": 5, "heard": 5},
    ),
    (
        "l = 3 needs three values",
        {("x",): [AGREE, NEUTRAL] * 3, ("y",): [AGREE, NEUTRAL, {"support": "disagree"}] * 2},
        1,
        3,
        {("x",): ["support"]},
        {"support": 6},
    ),
    # k = 5 merges w and z (2 + 3 responses) into "other": their value sets are united, not their counts
    # added, so two alike answers stay homogeneous and two different ones make the merged class diverse.
    (
        "merged classes: the same value stays homogeneous",
        {("x",): [AGREE, NEUTRAL] * 3, ("w",): [AGREE] * 2, ("z",): [AGREE] * 3},
        5,
        2,
        {("other",): ["support"]},
        {"support": 5},
    ),
    (
        "merged classes: different values make it diverse",
        {("x",): [AGREE, NEUTRAL] * 3, ("w",): [AGREE] * 2, ("z",): [NEUTRAL] * 3},
        5,
        2,
        {},
        {},
    ),
]


@pytest.mark.parametrize(("case", "table", "k", "l", "withheld", "rows"), L_CASES, ids=[c[0] for c in L_CASES])
def test_l_diversity_withholds_homogeneous_items(
    case: str,
    table: dict[tuple[Any, ...], list[Answers]],
    k: int,
    l: int,  # noqa: E741
    withheld: dict[tuple[Any, ...], list[str]],
    rows: dict[str, int],
):
    report = diversity_of(table, k=k, l=l)
    assert report.withheld == withheld
    assert report.rows_withheld == rows
    assert report.cells_withheld == sum(len(items) for items in withheld.values())
    assert report.as_dict() == {
        "l": l,
        "opinion_items": ["support", "heard"],
        "classes": report.classes,
        "cells_withheld": report.cells_withheld,
        "rows_withheld": rows,
    }


def test_l_below_one_is_invalid():
    with pytest.raises(ExportOptionsInvalidError):
        diversity_of({("x",): [AGREE]}, l=0)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["x", "y", "z", None]),
            st.sampled_from(["a1", "a2"]),
            st.sampled_from(["agree", "neutral", "dont_know", None]),
            st.sampled_from(["yes", "no", None]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=3),
)
def test_every_released_class_is_l_diverse(rows: list[tuple[Any, ...]], k: int, l: int):  # noqa: E741
    """Checked against the rows themselves, not the profile: after withholding, every exported class
    has, on every item, no answer or at least l distinct ones; nothing else is withheld."""
    items = ["support", "heard"]
    profile = ClassProfile(("community", "age"), tuple(items))
    for community, age, *answers in rows:
        profile.add((community, age), 1, [() if v is None else (v,) for v in answers], [v is not None for v in answers])
    report = plan_k_anonymity(profile.counts, ["community", "age"], k=k)
    if report.status == "refused":
        return
    diversity = plan_l_diversity(profile, report, l)
    released: dict[tuple[Any, ...], list[set[Any]]] = {}
    before: dict[tuple[Any, ...], list[set[Any]]] = {}
    for community, age, *answers in rows:
        exported = report.exported_class((community, age))
        withheld = diversity.withheld.get(exported, [])
        kept = released.setdefault(exported, [set(), set()])
        seen = before.setdefault(exported, [set(), set()])
        for index, value in enumerate(answers):
            if value is not None:
                seen[index].add(value)
                if items[index] not in withheld:
                    kept[index].add(value)
    for exported, sets in released.items():
        for index, values in enumerate(sets):
            assert len(values) == 0 or len(values) >= l
            if items[index] not in diversity.withheld.get(exported, []):
                assert values == before[exported][index]  # only what had to go went
            else:
                assert 0 < len(before[exported][index]) < l


# -- l-diversity through the database ----------------------------------------------------------------

# community, age, heard, support, grid row r1 (None: not answered), for each respondent. k = 5 merges
# w and z into "other"; then, by hand:
#   (x, a1)     heard yes/no,   support all agree            -> support withheld (5 answers)
#   (y, a1)     heard all no,   support diverse, r1 agree ×2 -> heard (5) and grid__r1 (2) withheld
#   (other, a1) heard all yes,  support agree ×3, disagree ×2 -> heard withheld (5), support kept
RESPONDENTS = (
    [("x", "a1", heard, "agree", None) for heard in ("yes", "no", "yes", "no", "yes")]
    + [("y", "a1", "no", support, r1) for support, r1 in [
        ("agree", "agree"), ("neutral", "agree"), ("disagree", None), ("dont_know", None), ("agree", None)
    ]]
    + [("z", "a1", "yes", "agree", None)] * 3
    + [("w", "a1", "yes", "disagree", None)] * 2
)  # fmt: skip
OPINION_ITEMS = [
    "heard", "which__a", "which__b", "which__c", "which__none", "support", "grid__r1", "grid__r2",
    "priorities__rank1", "priorities__rank2", "priorities__rank3",
]  # fmt: skip


def submit_respondents() -> None:
    make_questionnaire(export_definition())
    for community, age, heard, support, r1 in RESPONDENTS:
        answers: Answers = {"consent": "yes", "heard": heard, "support": support, "community": community, "age": age}
        if r1 is not None:
            answers["grid"] = {"r1": r1}
        submit(CODE, answers)


def test_opinion_items_are_the_categorical_answers_that_are_not_quasi_identifiers(app: Flask):
    make_questionnaire(export_definition())
    dataset = build_dataset(CODE)
    # Not: metadata, consent, ratings (score, lean), numbers, text, the demographic questions.
    assert opinion_items(dataset.columns, ["community", "age"]) == OPINION_ITEMS
    assert opinion_items(dataset.columns, ["community", "support"]) == [i for i in OPINION_ITEMS if i != "support"]


def test_partner_export_withholds_homogeneous_items_per_class(app: Flask):
    submit_respondents()
    dataset, report = partner_dataset(CODE, k=5)
    assert report.merged == {"community": ["w", "z"]}
    diversity = report.l_diversity
    assert diversity is not None
    assert diversity.opinion_items == OPINION_ITEMS
    assert diversity.withheld == {
        ("other", "a1"): ["heard"],
        ("x", "a1"): ["support"],
        ("y", "a1"): ["heard", "grid__r1"],
    }
    assert (diversity.classes, diversity.cells_withheld) == (3, 4)
    assert diversity.rows_withheld == {"heard": 10, "support": 5, "grid__r1": 2}
    assert dataset.privacy["k_anonymity"]["l_diversity"] == diversity.as_dict()

    rows = [dict(zip(dataset.names, row, strict=True)) for row in dataset.rows()]
    by_class: dict[str, list[Answers]] = {}
    for row in rows:
        by_class.setdefault(row["community"], []).append(row)
    assert sorted((row["heard"], row["support"]) for row in by_class["x"]) == [
        ("no", None), ("no", None), ("yes", None), ("yes", None), ("yes", None)
    ]  # fmt: skip
    assert sorted(row["support"] for row in by_class["y"]) == ["agree", "agree", "disagree", "dont_know", "neutral"]
    assert {row["heard"] for row in by_class["y"]} == {None} and {row["grid__r1"] for row in rows} == {None}
    assert sorted(row["support"] for row in by_class["other"]) == ["agree"] * 3 + ["disagree"] * 2
    assert {row["heard"] for row in by_class["other"]} == {None}
    assert {row["consent"] for row in rows} == {"yes"}  # consent is not an opinion item


def test_no_exported_class_has_a_single_value_on_an_opinion_item(app: Flask, tmp_path: Path):
    """Read back from the written file: rows grouped by their quasi-identifiers."""
    make_questionnaire(export_definition())
    for i in range(60):
        answers = sample_answers(i)
        if i % 12 < 6:  # half the classes answer support diversely, the rest alike
            answers["support"] = ("agree", "disagree", "neutral", "dont_know")[(i // 12) % 4]
            answers.pop("story", None)
        submit(CODE, answers)
    out = io.BytesIO()
    summary = export_responses(CODE, "csv", out, partner=True, k=5)
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8"))))
    assert len(rows) == summary.rows_written == 60
    classes: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        classes.setdefault((row["community"], row["age"]), []).append(row)
    assert min(len(members) for members in classes.values()) >= 5
    kept = 0
    for members in classes.values():
        for item in OPINION_ITEMS:
            values = {row[item] for row in members} - {""}
            assert len(values) != 1, item
            kept += len(values) >= 2
    assert kept > 0  # not everything was withheld
    assert summary.k_anonymity is not None and summary.k_anonymity.l_diversity is not None
    assert summary.k_anonymity.l_diversity.cells_withheld > 0  # and something was


def test_the_data_package_notes_what_l_diversity_withheld(app: Flask):
    submit_respondents()
    out = io.BytesIO()
    export_responses(CODE, "datapackage", out, partner=True, k=5)
    with zipfile.ZipFile(out) as archive:
        note = archive.read("PRIVACY.md").decode("utf-8")
        package = json.loads(archive.read("datapackage.json"))
    assert "## l-diversity" in note and "Distinct l = 2" in note
    assert "4 (group, item) cell(s) withheld; 3 group(s) checked" in note
    assert "`heard` 10, `support` 5, `grid__r1` 2." in note
    assert package["privacy"]["k_anonymity"]["l_diversity"]["cells_withheld"] == 4


def test_a_refused_export_reports_no_l_diversity(app: Flask):
    submit_table(TABLE)
    with pytest.raises(ExportRefusedError) as caught:
        partner_dataset(CODE, k=5, generalise=False)
    assert caught.value.errors["k_anonymity"]["l_diversity"] is None
