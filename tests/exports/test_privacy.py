"""Partner microdata: k-anonymity over the demographic questions, generalised or refused (P9)."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import pyreadstat
import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.exports.errors import ExportRefusedError
from survey.exports.privacy import partner_dataset, plan_k_anonymity
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
